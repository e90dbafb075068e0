/**
 * The main thread's side of a cluster's handler (`ClusterOptions.handler`): checks the module before the shards
 * start, turns the handler's posts and log lines into cluster events, and carries out its cluster-level commands
 * (routed to the shard owning the guild, wherever it runs). {@link localRunner} runs the module in this thread
 * (a cluster with `workers: 0`, the gateway proxy).
 * @packageDocumentation
 */
import { access } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { GatewayCommand } from '../cluster-status.js';
import type { GuildMembersQuery, VoiceStateOptions } from '../cluster-commands.js';
import { HandlerError } from '../errors.js';
import type { MemberRequest } from '../members.js';
import type { HostHandlerLink } from '../worker/host.js';
import type { HandlerLogEvent, HandlerMessageEvent } from './define.js';
import { HandlerRunner, loadHandler, type RunnerHooks } from './runner.js';

/** What the link needs of the cluster. */
export interface HandlerClusterSide {
  requestGuildMembers(guildId: string, options?: GuildMembersQuery): MemberRequest;
  updateVoiceState(guildId: string, state: VoiceStateOptions): Promise<void>;
  requestSoundboardSounds(guildIds: Iterable<string>): Promise<void>;
  send(shardId: number, payload: GatewayCommand): Promise<void>;
  message(event: HandlerMessageEvent): void;
  log(event: HandlerLogEvent): void;
  handled(shardId: number, type: string): void;
  /** Reshard (handler mode): see {@link HostHandlerLink.recorded} and {@link HostHandlerLink.held}. */
  recorded(key: string, fp: number): void;
  held(shardId: number, ticket: number, type: string, key: string, fp: number, burst: boolean): void;
}

export function handlerLink(c: HandlerClusterSide): HostHandlerLink {
  return {
    message: (shardId, worker, value) => c.message({ shardId, worker, value }),
    log: (level, shardId, worker, message) => c.log({ level, shardId, worker, message }),
    handled: (shardId, type) => c.handled(shardId, type),
    recorded: (key, fp) => c.recorded(key, fp),
    held: (shardId, ticket, type, key, fp, burst) => c.held(shardId, ticket, type, key, fp, burst),
    async route(method, args) {
      switch (method) {
        case 'members':
          return await c.requestGuildMembers(args[0] as string, args[1] as GuildMembersQuery | undefined);
        case 'voice':
          return c.updateVoiceState(args[0] as string, args[1] as VoiceStateOptions);
        case 'soundboard':
          return c.requestSoundboardSounds(args[0] as string[]);
        case 'sendTo':
          return c.send(args[0] as number, args[1] as GatewayCommand);
      }
    },
  };
}

/**
 * Fail early, in the main thread, with a {@link HandlerError} `HANDLER_LOAD_FAILED`: in this thread the module is
 * imported and its default export checked; for worker threads only that the file exists (it is imported there).
 */
export async function checkHandler(url: string, inThisThread: boolean): Promise<void> {
  try {
    if (inThisThread) {
      const h = await loadHandler(url);
      if (!h || typeof h.dispatch !== 'function') throw new TypeError('its default export has no dispatch(event, ctx) function (export default defineHandler({ dispatch ... }))');
    } else if (url.startsWith('file:')) await access(fileURLToPath(url));
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new HandlerError('HANDLER_LOAD_FAILED', `handler ${url} could not be loaded: ${why}`, { shardId: -1, eventType: null, cause: err });
  }
}

/** What a runner in this thread does itself; everything else (posts, log lines, counts, commands) goes to the link. */
export type LocalRunnerSide = Pick<RunnerHooks, 'pass' | 'send' | 'owns' | 'pause' | 'failed' | 'redact'> & {
  /** A dispatch was handled (or failed and was reported): its shard and sequence, in each shard's order. */
  finished?(shardId: number, sequence: number): void;
};

/**
 * A {@link HandlerRunner} in this thread (worker `null`; a throw is reported, as there is no thread to end): what
 * the handler posts and logs, its finished dispatches and its cluster-level commands go to `link`.
 */
export function localRunner(url: string, link: HostHandlerLink, side: LocalRunnerSide): HandlerRunner {
  return new HandlerRunner(loadHandler(url), {
    ...side,
    worker: null,
    handlerErrors: 'report',
    done: (shardId, sequence, type, posts) => {
      for (const value of posts) link.message(shardId, null, value);
      link.handled(shardId, type);
      side.finished?.(shardId, sequence);
    },
    post: (shardId, value) => link.message(shardId, null, value),
    log: (level, shardId, message) => link.log(level, shardId, null, message),
    exit: () => undefined,
    route: (method, args) => link.route(method, args),
    recorded: (_shardId, _sequence, key, fp) => link.recorded?.(key, fp),
    held: (shardId, ticket, type, key, fp, burst) => link.held?.(shardId, ticket, type, key, fp, burst),
  });
}
