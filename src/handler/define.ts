/**
 * The bot's handler module: one file that runs on the events of the shards it is given, in whichever thread runs
 * them (`new Cluster({ workers: n, handler })` imports it once in each worker thread; with `workers: 0` it runs in
 * this thread). The module's default export is a {@link Handler}, best written with {@link defineHandler}.
 *
 * @example
 * ```ts
 * // handler.ts (compiled to handler.js)
 * import { defineHandler } from 'shardline';
 * export default defineHandler({
 *   async dispatch(event, ctx) {
 *     if (event.type !== 'MESSAGE_CREATE' || event.data.content !== '!ping') return;
 *     ctx.log.info(`ping in ${event.data.channel_id}`);
 *     ctx.post({ pong: event.data.id }); // reaches cluster.on('handlerMessage') in the main thread
 *   },
 * });
 * // main.ts
 * const cluster = new Cluster({ token, intents, workers: 2, handler: new URL('./handler.js', import.meta.url) });
 * cluster.on('handlerMessage', (m) => console.log(m.shardId, m.value));
 * await cluster.connect();
 * ```
 * @packageDocumentation
 */
import type { GatewayCommand } from '../cluster-status.js';
import type { GuildMembersQuery, VoiceStateOptions } from '../cluster-commands.js';
import type { DispatchEvent, GuildMembersChunk, PresenceData } from '../events.js';

/** Log lines of a handler: they reach the main thread as the cluster's `handlerLog` events (and `routeLogs()`). */
export interface HandlerLogger {
  /** A debug line (`routeLogs()` level `debug`). */
  debug(message: string): void;
  /** An info line. */
  info(message: string): void;
  /** A warning. */
  warn(message: string): void;
  /** An error line (the handler goes on; throw to report a failed event). */
  error(message: string): void;
}

/**
 * What a handler can do outside of one shard: cluster-level commands are routed to the shard that owns the guild,
 * wherever it runs (this worker, another worker through the main thread, or `remoteCommands`).
 */
export interface HandlerScope {
  /** Index of the worker thread running this copy of the handler; null in this thread (`workers: 0`). */
  readonly worker: number | null;
  /** Lines reach the main thread as `handlerLog` events, tagged with the shard (in a context) and worker. */
  readonly log: HandlerLogger;
  /**
   * Send `value` (JSON-serialisable; it crosses threads as JSON) to the main thread: the cluster emits it as a `handlerMessage` event. Posted
   * while handling an event, it is delivered together with that event's acknowledgement: when the worker crashes and
   * the event is handled again after the RESUME, the first attempt's posts were never delivered (exactly once).
   */
  post(value: unknown): void;
  /** Request guild members (op 8) on the shard owning the guild; resolves with every chunk. */
  requestGuildMembers(guildId: string, options?: GuildMembersQuery): Promise<GuildMembersChunk[]>;
  /** Join, move or leave a voice channel (op 4) on the shard owning the guild. */
  updateVoiceState(guildId: string, state: VoiceStateOptions): Promise<void>;
  /** Ask for guilds' soundboard sounds (op 31) on the shards owning them. */
  requestSoundboardSounds(guildIds: Iterable<string>): Promise<void>;
  /** Send a gateway command on any shard of the cluster. */
  sendTo(shardId: number, payload: GatewayCommand): Promise<void>;
}

/** A handler's context for one event: its shard's commands, and everything of {@link HandlerScope}. */
export interface HandlerContext extends HandlerScope {
  /** The shard the event came from. */
  readonly shardId: number;
  /** Send a gateway command on this event's shard. */
  send(payload: GatewayCommand): Promise<void>;
  /** Update this shard's presence (op 3). */
  updatePresence(presence: PresenceData): Promise<void>;
}

/**
 * The default export of a handler module.
 *
 * Each shard's dispatches are handled one at a time, in order: the next waits until the promise `dispatch` returned
 * settled, and only then is the event counted as handled (a worker that crashes resumes its shards from the last
 * handled event, so nothing is lost or handled twice). Handlers of different shards run concurrently. A handler
 * that throws is reported (a `HandlerError` on `shardError`, with the event type and shard) and the next event
 * follows, unless the cluster's `handlerErrors` is `'exit'`. Do not wait inside `dispatch` for a later event of the
 * same shard: it comes after this one.
 */
export interface Handler {
  /** Once per thread, before the first event. */
  init?(scope: HandlerScope): void | Promise<void>;
  /** One dispatch (parsed once, in the thread that runs its shard). */
  dispatch(event: DispatchEvent, ctx: HandlerContext): void | Promise<void>;
  /** When the cluster closes, after the last event. */
  close?(): void | Promise<void>;
}

/**
 * Type a handler module's default export (identity at run time).
 *
 * @example
 * ```ts
 * export default defineHandler({ dispatch(event, ctx) { if (event.type === 'GUILD_CREATE') ctx.log.info(event.data.name); } });
 * ```
 */
export function defineHandler<H extends Handler>(handler: H): H {
  return handler;
}

/** Where a handler module is: a file URL, a file URL string, or a path (relative to the working directory). */
export type HandlerSource = URL | string;

/** A cluster's `handlerMessage` event: a value a handler posted. */
export interface HandlerMessageEvent {
  /** The shard of the event being handled when it was posted; null when posted outside an event (e.g. `init`). */
  shardId: number | null;
  /** The worker thread that posted it; null: this thread (`workers: 0`). */
  worker: number | null;
  /** What was posted (a JSON round trip of it). */
  value: unknown;
}

/** A cluster's `handlerLog` event: a line a handler logged. */
export interface HandlerLogEvent {
  /** Which of `ctx.log`'s methods was called. */
  level: 'debug' | 'info' | 'warn' | 'error';
  /** The shard of the context it was logged through; null for the scope given to `init`. */
  shardId: number | null;
  /** The worker thread; null: this thread. */
  worker: number | null;
  /** The line (the token removed). */
  message: string;
}
