/**
 * Messages between the main thread ({@link WorkerHost}) and a shard worker (`entry.ts`).
 *
 * Events travel worker → main in batches: every item produced during one turn of the worker's event loop
 * goes into one array, sent as a single JSON string (a flat string copy instead of a structured clone of
 * every parsed payload). Items keep the order in which the shards produced them.
 * @packageDocumentation
 */
import { GatewayError, HandlerError, SendError, ShardlineError } from '../errors.js';
import type { GuildMembersChunk, ShardEvent } from '../events.js';
import type { ShardOptions } from '../shard.js';
import type { ShardState } from '../state.js';
import type { ShardIo } from '../cluster-status.js';
import type { HandlerLogEvent } from '../handler/define.js';
import type { RouteMethod } from '../handler/runner.js';

/** `workerData` of a shard worker. */
export interface WorkerSpec {
  index: number;
  ids: number[];
  /** Full options of each shard, plain data only (no clock, queue or functions). */
  shardOptions: Record<number, Partial<ShardOptions>>;
  /** Scale of the cluster's clock; the worker runs `scaledClock(clockScale)`. */
  clockScale: number;
  /**
   * Handler mode: the module's file URL; dispatches are handled in the worker and never reach the main thread.
   * `marks`: the shared `HandledMarks` buffer (`marks.ts`) of this thread (where each shard's handler has got to), set by the host.
   */
  handler?: {
    url: string;
    errors: 'report' | 'exit';
    marks?: SharedArrayBuffer;
    /** Reshard, new set: dispatches wait for the main thread's verdicts (until `ungate`). */
    gated?: boolean;
    /** Reshard, running set: report the key and fingerprint of every handled dispatch (`RECORD_LINE`). */
    record?: boolean;
  };
}

/** A serialised error (the class is rebuilt on the other side so `instanceof` and `code` keep working). */
export interface WireError {
  name: string;
  code?: string;
  message: string;
  closeCode?: number | null;
  shardId?: number | null;
  eventType?: string | null;
}

/** Status row: id, state, latency, sessionId, sequence, reconnects, identifies, resumes, lastCloseCode, guilds, error. */
export type StatusRow = [number, ShardState, number | null, string | null, number, number, number, number, number | null, number | null, string | null, ShardIo | null];

/**
 * A batch is newline-separated lines. `ITEM_LINE` + JSON of a {@link BatchItem}; or `RAW_LINE` +
 * `shardId \t sequence \t type \t rawPayloadJson` for a dispatch the worker did not parse (the main thread parses
 * it once, instead of the worker parsing it and the main thread parsing it again from a re-serialised batch).
 */
export const ITEM_LINE = 'j';
export const RAW_LINE = 'r';
/**
 * Handler mode: `shardId \t sequence`, the handler finished the shard's dispatches up to that sequence. Sent only
 * where the position must travel with the batch: after the posts of the events it covers (they arrive together or
 * not at all), and before a session mark (see `marks.ts`); every other handled dispatch is recorded in the
 * shared `HandledMarks` alone.
 */
export const ACK_LINE = 'a';
/** Handler mode: `shardId \t type \t count \t type \t count …`, dispatches handled since the last such line (metrics). */
export const COUNT_LINE = 'c';
/** Reshard, running set: `shardId \t fingerprint \t routingKey`, the handler finished such a dispatch (an `a` line follows). */
export const RECORD_LINE = 'k';
/** Reshard, new set: `shardId \t ticket \t burst(0|1) \t fingerprint \t type \t routingKey`, a dispatch waits for its verdict. */
export const HELD_LINE = 'g';

/** A {@link ShardEvent} as it crosses the thread boundary (an `error` event's error serialised). */
export type WireShardEvent = Exclude<ShardEvent, { kind: 'error' }> | { kind: 'error'; shardId: number; error: WireError };

/**
 * One batched item: a shard's event (its one stream, in order), a status row, or a GUILD_MEMBERS_CHUNK answering a
 * member request the main thread made (matched there by its nonce).
 */
export type BatchItem =
  | ['v', WireShardEvent]
  | ['s', StatusRow]
  | ['m', GuildMembersChunk]
  /** Handler mode: a value the handler posted (with the shard of the event it handled, or null). */
  | ['p', number | null, unknown]
  /** Handler mode: a line the handler logged. */
  | ['l', HandlerLogEvent['level'], number | null, string];

export function eventToWire(e: ShardEvent): WireShardEvent {
  return e.kind === 'error' ? { kind: 'error', shardId: e.shardId, error: toWire(e.error) } : e;
}

export function eventFromWire(e: WireShardEvent): ShardEvent {
  return e.kind === 'error' ? { kind: 'error', shardId: e.shardId, error: fromWire(e.error) } : e;
}

export type CallMethod = 'connect' | 'send' | 'members' | 'restart' | 'close' | 'barrier' | 'record' | 'freeze';

/** main → worker. */
export type ToWorker =
  | { t: 'call'; id: number; method: CallMethod; args: unknown[] }
  | { t: 'grant'; id: number }
  | { t: 'deny'; id: number; error: WireError }
  | { t: 'pause'; paused: boolean }
  /** The main thread has processed a batch (flow control: the worker stops reading its sockets when too many wait). */
  | { t: 'ack' }
  | { t: 'debug'; enabled: boolean }
  /** Reshard, new set: verdicts on held dispatches, flat `[shardId, ticket, handle (0|1), …]` (a ticket names a held dispatch). */
  | { t: 'verdicts'; v: number[] }
  /** Reshard, new set: the overlap is over; every dispatch is handled without a verdict. */
  | { t: 'ungate' }
  /** The answer to a handler's routed command. */
  | { t: 'routed'; id: number; ok: true; value?: unknown }
  | { t: 'routed'; id: number; ok: false; error: WireError };

/** worker → main. */
export type FromWorker =
  | { t: 'batch'; data: string }
  | { t: 'result'; id: number; ok: true; value?: unknown }
  | { t: 'result'; id: number; ok: false; error: WireError }
  | { t: 'acquire'; id: number; shardId: number }
  | { t: 'abort'; id: number }
  /** Handler mode: a cluster-level command of the handler, carried out by the main thread. */
  | { t: 'route'; id: number; method: RouteMethod; args: unknown[] }
  /** Handler mode: the handler module could not be loaded; the worker exits next and is not respawned. */
  | { t: 'loadFailed'; error: WireError };

export function toWire(err: unknown): WireError {
  const e = err instanceof Error ? err : new Error(String(err));
  const out: WireError = { name: e.name, message: e.message };
  if (e instanceof ShardlineError) out.code = e.code;
  if (e instanceof GatewayError) {
    out.closeCode = e.closeCode;
    out.shardId = e.shardId;
  }
  if (e instanceof HandlerError) {
    out.shardId = e.shardId;
    out.eventType = e.eventType;
  }
  return out;
}

export function fromWire(w: WireError): Error {
  switch (w.name) {
    case 'GatewayError':
      return new GatewayError(w.code ?? 'UNKNOWN', w.message, { closeCode: w.closeCode ?? null, shardId: w.shardId ?? null });
    case 'HandlerError':
      return new HandlerError((w.code ?? 'HANDLER_FAILED') as ConstructorParameters<typeof HandlerError>[0], w.message, { shardId: w.shardId ?? -1, eventType: w.eventType ?? null });
    case 'SendError':
      return new SendError((w.code ?? 'SHARD_CLOSED') as ConstructorParameters<typeof SendError>[0], w.message);
    default: {
      if (w.code !== undefined) {
        const e = new ShardlineError(w.code, w.message);
        if (w.name !== 'ShardlineError') e.name = w.name;
        return e;
      }
      const e = new Error(w.message);
      e.name = w.name;
      return e;
    }
  }
}
