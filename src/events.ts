import type { GatewayDispatchPayload, GatewayGuildMembersChunkDispatchData, GatewayPresenceUpdateData, GatewayReadyDispatchData, PresenceUpdateStatus } from 'discord-api-types/v10';
import type { Session } from './session.js';
import type { ShardState } from './state.js';

/** Every dispatch type `discord-api-types` knows. Types it does not know arrive as {@link UnknownDispatchEvent}. */
export type DispatchType = GatewayDispatchPayload['t'];

/** A dispatch of a type `discord-api-types` knows, with `data` typed by `type`. */
export type KnownDispatchEvent = {
  [P in GatewayDispatchPayload as P['t']]: { shardId: number; type: P['t']; sequence: number; data: P['d'] };
}[DispatchType];

/**
 * A dispatch whose type `discord-api-types` does not know (`READY_SUPPLEMENTAL`, a type Discord adds after this
 * release): delivered as it came, without an error, `data` as parsed from the gateway's JSON.
 */
export interface UnknownDispatchEvent {
  shardId: number;
  type: string;
  sequence: number;
  data: unknown;
}

/**
 * One dispatch, as delivered by a shard or cluster (`dispatch` listeners, `events()`): a union discriminated by
 * `type`. A known type gives typed `data`; every other type arrives through the explicit last variant, an
 * {@link UnknownDispatchEvent}.
 *
 * Inside this union the unknown variant's `data` is typed `never`, not `unknown`: TypeScript cannot express "any
 * string except the known names", so comparing `e.type` with a known name keeps the unknown variant in the
 * narrowed type, and an `unknown` there would erase the typed `data` of every known branch. `never` vanishes from
 * that union instead. In a branch for a type this version does not know, treat `data` as unknown: assign the event
 * to an `UnknownDispatchEvent` or check the shape before use (`isKnownDispatch(e)` tells them apart).
 *
 * @example
 * ```ts
 * shard.on('dispatch', (e) => {
 *   if (e.type === 'MESSAGE_CREATE') console.log(e.data.content); // e.data is APIMessage-shaped
 *   else if (!isKnownDispatch(e)) {
 *     const unknown: UnknownDispatchEvent = e; // e.g. READY_SUPPLEMENTAL: data is unknown
 *     console.log('new dispatch type', unknown.type, unknown.data);
 *   }
 * });
 * ```
 */
export type DispatchEvent = KnownDispatchEvent | (UnknownDispatchEvent & { data: never });

/** The `d` of one GUILD_MEMBERS_CHUNK. */
export type GuildMembersChunk = GatewayGuildMembersChunkDispatchData;
export type ReadyData = GatewayReadyDispatchData;

/** Payload of the `debug` event: one line, never containing the token. */
export interface DebugEvent {
  shardId: number;
  message: string;
}

/** Payload of the `stateChange` event. */
export interface StateChange {
  shardId: number;
  from: ShardState;
  to: ShardState;
  reason: string;
  /** The same cause, structured. */
  cause: StateCause;
}

/** Payload of the `disconnected` event. */
export interface DisconnectedEvent {
  shardId: number;
  /** Close code seen (1006 for an abrupt close), or null when the shard ended the socket itself. */
  code: number | null;
  /** Human readable cause, e.g. `close 4000 Unknown error` or `zombie connection`. */
  cause: string;
  /** Bounded label of the cause, for metrics and logs. */
  kind: DisconnectKind;
  /** What the shard does next. */
  action: 'resume' | 'identify' | 'fatal' | 'closed';
}

/** Payload of the `rateLimited` event: the gateway refused a request for going too fast. */
export interface RateLimitedEvent {
  shardId: number;
  /** The opcode refused (8: request guild members). */
  opcode: number;
  /** Wait this long before asking again, in ms. */
  retryAfter: number;
  /** The guild of the refused request, when Discord said. */
  guildId: string | null;
  /** The nonce of the refused request, when it had one. */
  nonce: string | null;
}

/** Payload of the `guildsReady` event: the guilds READY listed as unavailable have arrived (or the wait ran out). */
export interface GuildsReadyEvent {
  /** The shard (on a Cluster's event: -1, the sums over every shard). */
  shardId: number;
  /** How many guilds were loaded (received their GUILD_CREATE). */
  guilds: number;
  /** Ids still missing when `guildsTimeout` ran out (empty when every guild arrived). */
  unavailable: string[];
}

/** Payload of the `silent` event: heartbeats are ACKed but no dispatch arrived for `silentTimeout` ms. */
export interface SilentEvent {
  shardId: number;
  /** Ms since the last dispatch. */
  since: number;
  /** Guilds the shard holds. */
  guilds: number;
}

/** Map of the shard's events to their listener arguments. */
export interface ShardEventMap {
  /** Everything the shard reports, as one typed stream (see {@link ShardEvent}). */
  event: [event: ShardEvent];
  dispatch: [event: DispatchEvent];
  ready: [data: ReadyData, shardId: number];
  resumed: [session: Session, shardId: number];
  debug: [event: DebugEvent];
  stateChange: [change: StateChange];
  disconnected: [event: DisconnectedEvent];
  error: [error: Error, shardId: number];
  rateLimited: [event: RateLimitedEvent];
  guildsReady: [event: GuildsReadyEvent];
  silent: [event: SilentEvent];
}

/** Presence for IDENTIFY and op 3; `status` accepts the plain strings (`'online'`, `'idle'`, `'dnd'`, `'invisible'`). */
export type PresenceData = Omit<GatewayPresenceUpdateData, 'status'> & { status: PresenceUpdateStatus | `${PresenceUpdateStatus}` };

/**
 * Why a shard changed state: structured, so observers (metrics, logs, the status page, workers, the resharder)
 * never parse prose. `reason` is the same cause as one line of text for people.
 */
export interface StateCause {
  /**
   * What happened: `connect` (user called connect), `hello` (HELLO received), `identify-slot` (waiting for
   * / granted an identify turn), `ready`, `resumed`, `disconnect` (the connection ended; see `disconnect`),
   * `close` (user closed the shard), `fatal` (stopped for good), `worker-exit` (the thread running it died).
   */
  kind: 'connect' | 'hello' | 'identify-slot' | 'ready' | 'resumed' | 'disconnect' | 'close' | 'fatal' | 'worker-exit';
  /** Close code received, when the connection ended with one. */
  code?: number | null;
  /** Whether the session survives this change (it can be resumed). */
  resumable?: boolean;
  /** One line for people, never containing the token. */
  reason: string;
}

/** A bounded, machine-readable label of why a connection ended. */
export type DisconnectKind = 'close' | 'reconnect-request' | 'invalid-session' | 'zombie' | 'hello-timeout' | 'ready-timeout' | 'malformed' | 'connect-failed' | 'worker-exit' | 'silent';

/**
 * Everything one shard reports, as one typed stream (`shard.on('event', …)`): state changes with a structured
 * cause, dispatches, heartbeats, disconnects, errors and debug lines. Every observer of a shard (cluster, metrics,
 * logs, status page, worker host, resharder, distributed adapters) consumes this one stream; none mirrors state.
 *
 * @example
 * ```ts
 * shard.on('event', (e) => {
 *   if (e.kind === 'state') console.log(`shard ${e.shardId}: ${e.from} → ${e.to} (${e.cause.kind})`);
 *   else if (e.kind === 'disconnected') console.log(e.code, e.cause, e.action);
 * });
 * ```
 */
export type ShardEvent =
  | { kind: 'state'; shardId: number; from: ShardState; to: ShardState; cause: StateCause }
  | { kind: 'dispatch'; shardId: number; event: DispatchEvent }
  | { kind: 'ready'; shardId: number; data: ReadyData; session: Session }
  | { kind: 'resumed'; shardId: number; session: Session }
  | {
      kind: 'disconnected';
      shardId: number;
      /** Close code received (1006 for an abrupt loss), or null when the shard ended the socket itself. */
      code: number | null;
      /** Bounded label of the cause. */
      cause: DisconnectKind;
      /** The cause as text, e.g. `close 4000 Unknown error`. */
      label: string;
      /** What the shard does next. */
      action: 'resume' | 'identify' | 'fatal' | 'closed';
    }
  | { kind: 'heartbeat'; shardId: number; sequence: number | null; requested: boolean }
  | { kind: 'heartbeatAck'; shardId: number; latency: number | null }
  | ({ kind: 'rateLimited' } & RateLimitedEvent)
  | ({ kind: 'guildsReady' } & GuildsReadyEvent)
  | ({ kind: 'silent' } & SilentEvent)
  | { kind: 'error'; shardId: number; error: Error }
  | { kind: 'debug'; shardId: number; message: string };

/** The named `stateChange` / `shardStateChange` payload of a `state` event. */
export function toStateChange(e: Extract<ShardEvent, { kind: 'state' }>): StateChange {
  return { shardId: e.shardId, from: e.from, to: e.to, reason: e.cause.reason, cause: e.cause };
}

/** The named `disconnected` / `shardDisconnected` payload of a `disconnected` event. */
export function toDisconnectedEvent(e: Extract<ShardEvent, { kind: 'disconnected' }>): DisconnectedEvent {
  return { shardId: e.shardId, code: e.code, cause: e.label, kind: e.cause, action: e.action };
}

/** The `rateLimited` event of a RATE_LIMITED dispatch's `d` (`{ opcode, retry_after: s, meta: { guild_id, nonce } }`), each field checked. */
export function parseRateLimited(shardId: number, d: unknown): Extract<ShardEvent, { kind: 'rateLimited' }> {
  const p = (d ?? {}) as { opcode?: unknown; retry_after?: unknown; meta?: { guild_id?: unknown; nonce?: unknown } | null };
  const secs = typeof p.retry_after === 'number' && Number.isFinite(p.retry_after) && p.retry_after > 0 ? p.retry_after : 0;
  const meta = p.meta ?? {};
  return {
    kind: 'rateLimited',
    shardId,
    opcode: typeof p.opcode === 'number' ? p.opcode : -1,
    retryAfter: Math.ceil(secs * 1000),
    guildId: typeof meta.guild_id === 'string' ? meta.guild_id : null,
    nonce: typeof meta.nonce === 'string' ? meta.nonce : null,
  };
}
