/**
 * ShardCore's contract with its driver: the options it is built from ({@link ShardCoreOptions}, plain data, no
 * token), the effects it emits ({@link Effect}, {@link TimerName}), its counters ({@link ShardCounters}), and
 * {@link CoreOutput}, the base class holding the effect list and the helpers that append to it (events, debug
 * lines, timers, command settlements, payloads written by op). The protocol itself is in `src/shard-core.ts`.
 *
 * @packageDocumentation
 */
import type { BackoffOptions } from './backoff.js';
import type { DispatchEvent, GuildMembersChunk, PresenceData, ShardEvent } from './events.js';
import type { GatewayError } from './errors.js';
import type { Session } from './session.js';

/** The timers a shard uses; each name has at most one deadline at a time. */
export type TimerName = 'hello' | 'ready' | 'heartbeat' | 'reconnect' | 'commands' | 'guilds';

/** What the driver must do. Applied in order. */
export type Effect =
  /** Open a new socket to `url`; later inputs about it carry `conn`. */
  | { type: 'open'; conn: number; url: string }
  /** Write a text frame on `conn`. */
  | { type: 'send'; conn: number; op: number; data: string }
  /** Write IDENTIFY (op 2) or RESUME (op 6) on `conn`: the driver adds `token` to `d` and serialises. */
  | { type: 'auth'; conn: number; op: 2 | 6; d: Record<string, unknown> }
  /** Close `conn` with `code`, or drop it at once (`code: null`, a dead socket gets no close handshake). */
  | { type: 'close'; conn: number; code: number | null }
  /** Arm `timer` for virtual time `at` (replacing any earlier deadline), or clear it (`at: null`). */
  | { type: 'timer'; timer: TimerName; at: number | null }
  /** Ask the identify queue for a turn for `conn`; answer with `identifyGranted` / `identifyFailed`. */
  | { type: 'identify'; conn: number }
  /** The identify turn for `conn` is no longer wanted (connection gone, shard closed). */
  | { type: 'cancelIdentify'; conn: number }
  /** Stop (true) or restart (false) reading the socket. */
  | { type: 'read'; paused: boolean }
  /** Command `id` was written (`error: null`) or will never be (the error says why). */
  | { type: 'command'; id: number; error: Error | null }
  /** A wanted dispatch, parsed. */
  | { type: 'dispatch'; event: DispatchEvent }
  /** A wanted dispatch in raw mode: its whole payload's bytes, valid until the input call returns. */
  | { type: 'raw'; t: string; s: number; bytes: Uint8Array }
  /** A GUILD_MEMBERS_CHUNK (always parsed; matched to member requests by nonce). */
  | { type: 'chunk'; data: GuildMembersChunk }
  /** The shard stopped for good with `error` (after its `state` and `error` events). */
  | { type: 'fatal'; error: GatewayError }
  /** Anything else the shard reports. */
  | { type: 'event'; event: ShardEvent };

/** Options of a {@link ShardCore}: plain data, no token. */
export interface ShardCoreOptions {
  id: number;
  total: number;
  intents: number;
  gatewayUrl: string;
  compression: 'zlib-stream' | 'zstd-stream' | false;
  /** Wanted dispatch types; null: all. */
  events: ReadonlySet<string> | null;
  /** Deliver wanted dispatches as raw bytes (READY, RESUMED and member chunks are still parsed). */
  raw: boolean;
  session: Session | null;
  presence: PresenceData | undefined;
  largeThreshold: number;
  properties: { os: string; browser: string; device: string };
  /** Length of the token the driver adds to IDENTIFY / RESUME (for the size check). */
  tokenLength: number;
  now: () => number;
  random: () => number;
  helloTimeout: number;
  readyTimeout: number;
  maxResumeAttempts: number;
  backoff: BackoffOptions;
  maxQueuedCommands: number;
  resumeOnSessionTimeout: boolean;
  rateLimit: { limit?: number; window?: number; presenceLimit?: number; margin?: number };
  /** Ms without an awaited GUILD_CREATE after which `guildsReady` is emitted with the missing ids. Default 15 000. */
  guildsTimeout?: number;
  /** Ms without any dispatch (heartbeats ACKed) after which a shard with guilds emits `silent`. 0 / absent: off. */
  silentTimeout?: number;
  /** What a silent shard does besides reporting: `'resume'` closes the connection and RESUMEs. Default `'report'`. */
  silentAction?: 'report' | 'resume';
  /**
   * Whoever is told debug lines (the `Shard`): they are wanted while it has a `'debug'` listener (besides
   * {@link ShardCore.debugging}); asked only where a line would be built. An object, not a closure: an idle shard
   * keeps no function and context for it.
   */
  debugListeners?: { listenerCount(event: 'debug'): number };
}

/** Counters of one shard, for status and metrics. */
export interface ShardCounters {
  reconnects: number;
  resumes: number;
  identifies: number;
  zombies: number;
  /** Dispatches skipped unparsed by the `events` filter. */
  filtered: number;
  /** Dispatches delivered. */
  dispatches: number;
  decodeErrors: number;
  /** Dispatches that failed to parse twice and were skipped (each reported as an `error` with its bytes). */
  skipped: number;
  /** Payloads with an op this version does not know: ignored (the protocol grows), counted here. */
  unknownOps: number;
  /** RATE_LIMITED dispatches received (requests the gateway refused for going too fast). */
  rateLimited: number;
  /** Times the shard was reported `silent` (heartbeats ACKed, no dispatch for `silentTimeout`). */
  silent: number;
}

/**
 * The output side of a {@link ShardCore}: the effect list, the counters, and the helpers that append effects. A
 * base class (not a member object) so a shard pays no extra allocation for it.
 */
export abstract class CoreOutput {
  readonly effects: Effect[] = [];
  readonly counters: ShardCounters = {
    reconnects: 0,
    resumes: 0,
    identifies: 0,
    zombies: 0,
    filtered: 0,
    dispatches: 0,
    decodeErrors: 0,
    skipped: 0,
    unknownOps: 0,
    rateLimited: 0,
    silent: 0,
  };
  /** Payloads written, by op (a new Map on each read; see {@link CoreOutput.countSent}). */
  get sent(): ReadonlyMap<number, number> {
    const m = new Map<number, number>();
    if (this.sentBeats !== 0) m.set(1, this.sentBeats);
    if (this.sentIdentifies !== 0) m.set(2, this.sentIdentifies);
    if (this.sentResumes !== 0) m.set(6, this.sentResumes);
    if (this.sentOps !== null) for (const [op, n] of this.sentOps) m.set(op, n);
    return m;
  }
  /** Produce `debug` events (string building costs; the driver turns it on while someone listens). */
  debugging = false;
  protected readonly o: ShardCoreOptions;
  // Payloads written by op: heartbeats, IDENTIFYs and RESUMEs (what every shard sends) in fields, the rest in a
  // map created by the first command (a map per shard costs ~0.2 KB; thousands of idle shards per process).
  private sentBeats = 0;
  private sentIdentifies = 0;
  private sentResumes = 0;
  private sentOps: Map<number, number> | null = null;

  constructor(options: ShardCoreOptions) {
    this.o = options;
  }

  /** Debug lines are produced (string building costs on busy shards, so only while someone listens). */
  get debugOn(): boolean {
    return this.debugging || (this.o.debugListeners !== undefined && this.o.debugListeners.listenerCount('debug') !== 0);
  }

  protected setTimer(timer: TimerName, at: number | null): void {
    this.effects.push({ type: 'timer', timer, at });
  }

  protected settle(id: number, error: Error | null): void {
    this.effects.push({ type: 'command', id, error });
  }

  protected countSent(op: number): void {
    if (op === 1) this.sentBeats++;
    else if (op === 2) this.sentIdentifies++;
    else if (op === 6) this.sentResumes++;
    else {
      const m = (this.sentOps ??= new Map());
      m.set(op, (m.get(op) ?? 0) + 1);
    }
  }

  protected emit(event: ShardEvent): void {
    this.effects.push({ type: 'event', event });
  }

  protected report(error: Error): void {
    this.emit({ kind: 'error', shardId: this.o.id, error });
  }

  protected debug(message: string): void {
    if (this.debugOn) this.emit({ kind: 'debug', shardId: this.o.id, message });
  }
}
