/**
 * The main thread's side of a cluster's handler (`ClusterOptions.handler`): checks the module before the shards
 * start, turns the handler's posts and log lines into cluster events, and carries out its cluster-level commands
 * (routed to the shard owning the guild, wherever it runs).
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
import { loadHandler } from './runner.js';

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
