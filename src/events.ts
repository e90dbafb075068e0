import type {
  GatewayDispatchPayload,
  GatewayGuildMembersChunkDispatchData,
  GatewayPresenceUpdateData,
  GatewayReadyDispatchData,
  PresenceUpdateStatus,
} from 'discord-api-types/v10';
import type { Session } from './session.js';
import type { ShardState } from './state.js';

/** Every dispatch type `discord-api-types` knows. Unknown types are still delivered (typed as the union's `string`). */
export type DispatchType = GatewayDispatchPayload['t'];

/**
 * One dispatch, as delivered by a shard or cluster: a discriminated union on `type`.
 *
 * @example
 * ```ts
 * shard.on('dispatch', (e) => {
 *   if (e.type === 'MESSAGE_CREATE') console.log(e.data.content); // e.data is APIMessage-shaped
 * });
 * ```
 */
export type DispatchEvent = {
  [P in GatewayDispatchPayload as P['t']]: { shardId: number; type: P['t']; sequence: number; data: P['d'] };
}[DispatchType];

/** A dispatch whose type is not (yet) in `discord-api-types`; delivered as-is. */
export interface UnknownDispatchEvent {
  shardId: number;
  type: string;
  sequence: number;
  data: unknown;
}

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
}

/** Payload of the `disconnected` event. */
export interface DisconnectedEvent {
  shardId: number;
  /** Close code seen (1006 for an abrupt close), or null when the shard ended the socket itself. */
  code: number | null;
  /** Human readable cause, e.g. `close 4000 Unknown error` or `zombie connection`. */
  cause: string;
  /** What the shard does next. */
  action: 'resume' | 'identify' | 'fatal' | 'closed';
}

/** Map of the shard's events to their listener arguments. */
export interface ShardEventMap {
  dispatch: [event: DispatchEvent];
  ready: [data: ReadyData, shardId: number];
  resumed: [session: Session, shardId: number];
  debug: [event: DebugEvent];
  stateChange: [change: StateChange];
  disconnected: [event: DisconnectedEvent];
  error: [error: Error, shardId: number];
}

/** Presence for IDENTIFY and op 3; `status` accepts the plain strings (`'online'`, `'idle'`, `'dnd'`, `'invisible'`). */
export type PresenceData = Omit<GatewayPresenceUpdateData, 'status'> & { status: PresenceUpdateStatus | `${PresenceUpdateStatus}` };
