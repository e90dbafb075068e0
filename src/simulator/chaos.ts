/**
 * Chaos mode of the gateway simulator: a seeded fault injector and a client-side delivery ledger.
 *
 * - {@link ChaosMonkey} picks faults at random (from a seeded PRNG, so a failing run can be replayed with the same
 *   seed) and applies them to a running {@link GatewaySimulator}: abrupt drops, every non-fatal close code, op 7,
 *   op 9 true/false, zombies (ACKs stopped), ACKs withheld behind an event flood, split and corrupt frames,
 *   garbage frames, expired sessions. Each fault says what the protocol lets the client do next (`expect`).
 * - {@link DeliveryLedger} checks, from what a client delivered, that every dispatch of a session arrived exactly
 *   once and in order (sequence continuity across resumes), and that a new session only started where the
 *   protocol forced one. It knows nothing about the client library: feed it `(shardId, sessionId, seq, type)`.
 *
 * The soak runner (`bench/soak.ts`, `npm run soak`) wires both to a `Cluster`.
 * @packageDocumentation
 */
import type { TimerHandle } from '../clock.js';
import type { GatewaySimulator } from './server.js';
import { prng } from './traffic.js';

/** Kinds of fault the monkey injects. */
export type FaultKind =
  | 'terminate'
  | 'close'
  | 'reconnect'
  | 'invalidate-resumable'
  | 'invalidate'
  | 'zombie'
  | 'late-ack-flood'
  | 'heartbeat-request'
  | 'split-frames'
  | 'corrupt-frame'
  | 'garbage'
  | 'expire-session';

/** What the protocol lets a correct client do after a fault. */
export type FaultExpectation =
  /** drop the connection and RESUME the same session */
  | 'resume'
  /** drop the connection and IDENTIFY a new session (op 9 false, 4001/4007/4009, expired session) */
  | 'identify'
  /** keep the connection: nothing to do (or answer a heartbeat request) */
  | 'none'
  /** either keep the connection or RESUME; never a new session */
  | 'recover';

/** Close codes after which a client may resume (or which are not gateway codes at all). */
export const RESUMABLE_CHAOS_CLOSE_CODES: readonly number[] = [1000, 1001, 1011, 3000, 4000, 4002, 4003, 4005, 4008, 4999];
/** Close codes after which the session is gone: the client must IDENTIFY anew. */
export const NEW_SESSION_CLOSE_CODES: readonly number[] = [4001, 4007, 4009];
/** Close codes that must stop exactly the shard that got them. */
export const FATAL_CLOSE_CODES: readonly number[] = [4004, 4010, 4011, 4012, 4013, 4014];

/** Default relative weights of the fault kinds. */
export const DEFAULT_FAULT_WEIGHTS: Readonly<Record<FaultKind, number>> = {
  terminate: 10,
  close: 16,
  reconnect: 8,
  'invalidate-resumable': 6,
  invalidate: 5,
  zombie: 5,
  'late-ack-flood': 4,
  'heartbeat-request': 5,
  'split-frames': 4,
  'corrupt-frame': 8,
  garbage: 8,
  'expire-session': 4,
};

/** One injected fault. */
export interface InjectedFault {
  kind: FaultKind;
  /** Kind with detail, for counting: `close:4000`, `garbage:bytes`, ... */
  label: string;
  shardId: number;
  expect: FaultExpectation;
  /** For `none`/`recover` faults: virtual ms after which the fault is over (no disconnect needed to finish it). */
  duration: number;
  /** False when the simulator had no live connection for the shard (nothing happened). */
  applied: boolean;
}

/** Options of a {@link ChaosMonkey}. */
export interface ChaosOptions {
  /** Seed of the PRNG that picks faults and their details. */
  seed: number;
  /** Relative weights; kinds left out use {@link DEFAULT_FAULT_WEIGHTS}, weight 0 disables a kind. */
  weights?: Partial<Record<FaultKind, number>>;
  /** Heartbeat interval the simulator sends (virtual ms), to size zombie / late-ACK faults. Default 41 250. */
  heartbeatInterval?: number;
  /** Dispatch used to flood a shard: called `n` times. Default: `sim.dispatch(shardId, 'TYPING_START', ...)`. */
  flood?: (shardId: number, n: number) => void;
}

/**
 * Seeded fault injector for a running simulator.
 *
 * @example
 * ```ts
 * const monkey = new ChaosMonkey(sim, { seed: 42 });
 * const fault = monkey.inject(3);          // a random fault on shard 3
 * console.log(fault.label, fault.expect);  // e.g. 'close:4007' 'identify'
 * ```
 */
export class ChaosMonkey {
  /** The PRNG of this monkey (exposed so a runner can draw from the same seeded stream). */
  readonly random: () => number;
  /** Faults injected, by label. */
  readonly counts: Record<string, number> = {};
  private readonly kinds: FaultKind[];
  private readonly cumulative: number[];
  private readonly interval: number;
  private splitUntil = 0;
  private splitTimer: TimerHandle | undefined;
  private readonly timers = new Set<TimerHandle>();

  constructor(
    private readonly sim: GatewaySimulator,
    private readonly opts: ChaosOptions,
  ) {
    this.random = prng(opts.seed);
    this.interval = opts.heartbeatInterval ?? 41_250;
    const weights = { ...DEFAULT_FAULT_WEIGHTS, ...opts.weights };
    this.kinds = (Object.keys(weights) as FaultKind[]).filter((k) => weights[k] > 0);
    const total = this.kinds.reduce((n, k) => n + weights[k], 0);
    if (!(total > 0)) throw new RangeError('chaos: every fault weight is 0');
    let run = 0;
    this.cumulative = this.kinds.map((k) => (run += weights[k] / total));
  }

  /** A random integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  /** Pick one of `items` at random. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** Pick a fault kind by weight. */
  pickKind(): FaultKind {
    const r = this.random();
    const i = this.cumulative.findIndex((c) => r < c);
    return this.kinds[i < 0 ? this.kinds.length - 1 : i]!;
  }

  /** Inject a fault of `kind` (default: a random one) on `shardId`. */
  inject(shardId: number, kind: FaultKind = this.pickKind()): InjectedFault {
    const sim = this.sim;
    const I = this.interval;
    let label: string = kind;
    let expect: FaultExpectation = 'resume';
    let duration = 0;
    let applied: boolean;
    switch (kind) {
      case 'terminate':
        applied = sim.terminate(shardId);
        break;
      case 'close': {
        const fresh = this.random() < 0.3;
        const code = fresh ? this.pick(NEW_SESSION_CLOSE_CODES) : this.pick(RESUMABLE_CHAOS_CLOSE_CODES);
        label = `close:${code}`;
        expect = fresh ? 'identify' : 'resume';
        applied = sim.closeConnection(shardId, code, 'chaos');
        break;
      }
      case 'reconnect':
        applied = sim.sendReconnect(shardId);
        break;
      case 'invalidate-resumable':
        applied = sim.invalidateSession(shardId, true);
        break;
      case 'invalidate':
        expect = 'identify';
        applied = sim.invalidateSession(shardId, false);
        break;
      case 'zombie':
        applied = sim.setAcks(shardId, false);
        break;
      case 'late-ack-flood': {
        // ACKs withheld for at most 1.5 intervals while a flood is on the wire: a busy shard, not a zombie.
        expect = 'none';
        duration = 3 * I;
        applied = sim.setAcks(shardId, false);
        if (applied) {
          const n = 100 + this.int(300);
          label = `late-ack-flood`;
          (this.opts.flood ?? ((id, count) => defaultFlood(sim, id, count)))(shardId, n);
          this.later(1.5 * I, () => sim.setAcks(shardId, true));
        }
        break;
      }
      case 'heartbeat-request':
        expect = 'none';
        duration = I / 4;
        applied = sim.requestHeartbeat(shardId);
        break;
      case 'split-frames': {
        // Process-wide simulator option: every compressed message split into pieces of `size` bytes for a while.
        expect = 'none';
        const size = 1 + this.int(this.random() < 0.3 ? 16 : 400);
        duration = 2 * I;
        label = size <= 16 ? 'split-frames:tiny' : 'split-frames';
        applied = true;
        sim.setOptions({ frameSplit: size });
        this.splitUntil = Math.max(this.splitUntil, sim.clock.now() + duration);
        sim.clock.clearTimeout(this.splitTimer);
        this.splitTimer = sim.clock.setTimeout(() => sim.setOptions({ frameSplit: false }), duration);
        break;
      }
      case 'corrupt-frame':
        applied = sim.corruptNextFrame(shardId);
        break;
      case 'garbage': {
        const g = garbage(this.random);
        label = `garbage:${g.kind}`;
        expect = g.expect;
        duration = I / 4;
        applied = sim.sendRaw(shardId, g.data, { compress: g.compress });
        break;
      }
      case 'expire-session':
        expect = 'identify';
        applied = sim.expireSession(shardId);
        break;
    }
    if (applied) this.counts[label] = (this.counts[label] ?? 0) + 1;
    return { kind, label, shardId, expect, duration, applied };
  }

  /** Cancel pending fault timers and undo process-wide faults (ACKs on, no frame splitting). */
  stop(): void {
    for (const t of this.timers) this.sim.clock.clearTimeout(t);
    this.timers.clear();
    this.sim.clock.clearTimeout(this.splitTimer);
    this.splitTimer = undefined;
    this.sim.setOptions({ frameSplit: false });
    this.sim.setAcks('all', true);
  }

  /** Run `fn` after `ms` on the simulator's clock (a manual clock in tests: the fault ends when the test says). */
  private later(ms: number, fn: () => void): void {
    const t = this.sim.clock.setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }
}

function defaultFlood(sim: GatewaySimulator, shardId: number, n: number): void {
  const guild = sim.guildsForShard(shardId, Math.max(1, sim.sessions().find((s) => s.shardId === shardId && !s.expired)?.total ?? 1))[0];
  for (let i = 0; i < n; i++) sim.dispatch(shardId, 'TYPING_START', { channel_id: '1', user_id: '2', timestamp: i, guild_id: guild });
}

/** Garbage a gateway should never send, with what a client may do about it. */
export function garbage(random: () => number): { kind: string; data: string | Buffer; compress: boolean; expect: FaultExpectation } {
  const int = (n: number): number => Math.floor(random() * n);
  const bytes = (n: number): Buffer => {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = int(256);
    return b;
  };
  const compress = random() < 0.6;
  switch (int(7)) {
    case 0:
      return { kind: 'bytes', data: bytes(1 + int(300)), compress, expect: 'resume' };
    case 1:
      return { kind: 'text', data: bytes(1 + int(200)).toString('latin1'), compress, expect: 'resume' };
    case 2: {
      // A fresh bogus seq each time: the same unparseable seq twice makes the client skip to it (see RELIABILITY.md).
      const full = `{"t":"MESSAGE_CREATE","s":${1_000_000 + int(1_000_000_000)},"op":0,"d":{"id":"1","content":"truncated"}}`;
      return { kind: 'truncated', data: full.slice(0, 1 + int(full.length - 2)), compress, expect: 'recover' };
    }
    case 3:
      return { kind: 'json', data: JSON.stringify(pickJson(random)), compress, expect: 'recover' };
    case 4:
      return { kind: 'unknown-op', data: `{"t":null,"s":null,"op":${100 + int(900)},"d":null}`, compress, expect: 'none' };
    case 5:
      return { kind: 'bad-envelope', data: pickBadEnvelope(random), compress, expect: 'recover' };
    default:
      return { kind: 'empty', data: '', compress, expect: 'recover' };
  }
}

function pickJson(random: () => number): unknown {
  const values: unknown[] = [null, true, 0, -1, 'op', [], {}, [1, 2, 3], { op: '0' }, { d: { op: 0 } }, { op: null }, { op: 1.5 }, { s: 1, t: 'X' }, [{ op: 0 }]];
  return values[Math.floor(random() * values.length)];
}

function pickBadEnvelope(random: () => number): string {
  const list = [
    '{"t":5,"s":1,"op":0,"d":{}}',
    '{"t":"X","s":"1","op":0,"d":{}}',
    '{"t":"X","s":1.5,"op":0,"d":{}}',
    '{"op":"11"}',
    '{"op":1e999}',
    '{"op":-0.5}',
    '{"t":"READY","s":1,"op":0,"d":',
    '{"t":"GUILD_CREATE","s":1,"op":0,"d":{"id":"1"}',
    '{"op":9,"d":',
    '{"op":10,"d":{"heartbeat_interval":',
  ];
  return list[Math.floor(random() * list.length)]!;
}

/** A broken invariant. */
export interface LedgerViolation {
  kind: 'duplicate' | 'gap' | 'out-of-order' | 'unforced-new-session' | 'dispatch-before-ready' | 'session-start' | 'content' | 'lost' | string;
  shardId: number;
  detail: string;
}

interface ShardTrack {
  sessionId: string | null;
  last: number;
  /** New sessions the protocol forced and that have not started yet. */
  forced: string[];
}

interface SessionTrack {
  shardId: number;
  last: number;
  ended: boolean;
  /** Expected marker per seq, not yet delivered. */
  markers: Map<number, string>;
}

/**
 * Client-side delivery checker: exactly once, in order, per session; a new session only where forced.
 *
 * @example
 * ```ts
 * const ledger = new DeliveryLedger();
 * shard.on('dispatch', (e) => ledger.onDispatch(e.shardId, shard.session!.sessionId, e.sequence, e.type, e.data));
 * sim.invalidateSession(0, false);
 * ledger.allowNewSession(0, 'op 9 false');
 * ```
 */
export class DeliveryLedger {
  readonly violations: LedgerViolation[] = [];
  /** Dispatches seen. */
  events = 0;
  /** Sessions started after the first one of their shard. */
  newSessions = 0;
  /** Markers delivered (and matching). */
  markersDelivered = 0;
  /** Markers assigned to a session that ended by force before they were delivered (allowed loss). */
  markersLostToNewSession = 0;
  private readonly shards = new Map<number, ShardTrack>();
  private readonly sessions = new Map<string, SessionTrack>();
  /** Stop recording after this many violations (the count keeps going). */
  violationCount = 0;

  /**
   * @param maxRecorded violations kept in {@link violations} (all are counted)
   * @param context called for every violation; what it returns is appended to the detail (e.g. the shard's recent history)
   */
  constructor(
    private readonly maxRecorded = 200,
    private readonly context?: (shardId: number) => string,
  ) {}

  private shard(id: number): ShardTrack {
    let s = this.shards.get(id);
    if (!s) this.shards.set(id, (s = { sessionId: null, last: 0, forced: [] }));
    return s;
  }

  private violation(kind: LedgerViolation['kind'], shardId: number, detail: string): void {
    this.violationCount++;
    const extra = this.context?.(shardId);
    if (this.violations.length < this.maxRecorded) this.violations.push({ kind, shardId, detail: extra ? `${detail} [${extra}]` : detail });
  }

  /** Record any other broken invariant (liveness, leaks, ...), so every violation is counted in one place. */
  report(kind: string, shardId: number, detail: string): void {
    this.violation(kind, shardId, detail);
  }

  /** The protocol forced a new session on `shardId` (the next READY of that shard may start one). */
  allowNewSession(shardId: number, reason: string): void {
    this.shard(shardId).forced.push(reason);
  }

  /** Forced new sessions of `shardId` that did not start yet. */
  pendingNewSessions(shardId: number): number {
    return this.shard(shardId).forced.length;
  }

  /** Current session and last delivered seq of a shard. */
  position(shardId: number): { sessionId: string | null; last: number } {
    const s = this.shard(shardId);
    return { sessionId: s.sessionId, last: s.last };
  }

  /** The simulator assigned `seq` of `sessionId` to a dispatch carrying `marker`; the client must deliver it with that seq. */
  expectMarker(shardId: number, sessionId: string, seq: number, marker: string): void {
    let s = this.sessions.get(sessionId);
    if (!s) this.sessions.set(sessionId, (s = { shardId, last: 0, ended: false, markers: new Map() }));
    if (s.ended || seq <= s.last) {
      // Assigned to a session the client already left (by force), or already past: never delivered.
      if (s.ended) this.markersLostToNewSession++;
      else this.violation('lost', shardId, `marker ${marker} assigned seq ${seq} of session ${short(sessionId)} at or below the delivered ${s.last}`);
      return;
    }
    s.markers.set(seq, marker);
  }

  /** One dispatch delivered by the client. `data` is checked for a marker (`content` starting with `mk:`). */
  onDispatch(shardId: number, sessionId: string | null, seq: number, type: string, data?: unknown): void {
    this.events++;
    const st = this.shard(shardId);
    if (sessionId === null) {
      this.violation('dispatch-before-ready', shardId, `${type} seq ${seq} delivered without a session`);
      return;
    }
    if (sessionId !== st.sessionId) {
      if (type !== 'READY') this.violation('dispatch-before-ready', shardId, `${type} seq ${seq} of new session ${short(sessionId)} before its READY`);
      if (st.sessionId !== null) {
        this.newSessions++;
        const reason = st.forced.shift();
        if (reason === undefined)
          this.violation('unforced-new-session', shardId, `session ${short(st.sessionId)} (last seq ${st.last}) replaced by ${short(sessionId)} without op 9 false / 4001 / 4007 / 4009 / expiry`);
        this.endSession(st.sessionId);
      } else {
        st.forced.length = 0;
      }
      if (seq !== 1) this.violation('session-start', shardId, `session ${short(sessionId)} starts at seq ${seq}`);
      st.sessionId = sessionId;
      st.last = seq;
      this.sessionTrack(shardId, sessionId).last = seq;
      this.checkMarker(shardId, sessionId, seq, data);
      return;
    }
    if (type === 'READY') this.violation('session-start', shardId, `second READY on session ${short(sessionId)} (seq ${seq})`);
    if (seq === st.last + 1) {
      st.last = seq;
    } else if (seq <= st.last) {
      this.violation('duplicate', shardId, `${type} seq ${seq} of session ${short(sessionId)} delivered again (last ${st.last})`);
      return;
    } else {
      this.violation('gap', shardId, `session ${short(sessionId)}: seq ${st.last + 1}..${seq - 1} never delivered (got ${type} ${seq})`);
      st.last = seq;
    }
    this.sessionTrack(shardId, sessionId).last = st.last;
    this.checkMarker(shardId, sessionId, seq, data);
  }

  /**
   * End of run: each shard's current session must have delivered up to `finalSeq(sessionId)` (the simulator's
   * seq), and every marker of a session at or below what it delivered must have arrived.
   */
  finish(finalSeq: (sessionId: string) => number | null): void {
    for (const [shardId, st] of this.shards) {
      if (st.sessionId === null) continue;
      const want = finalSeq(st.sessionId);
      if (want !== null && want !== st.last) this.violation('lost', shardId, `session ${short(st.sessionId)} delivered up to seq ${st.last}, the gateway sent ${want}`);
    }
    for (const [id, s] of this.sessions) {
      for (const [seq, marker] of s.markers) {
        if (seq <= s.last) this.violation('lost', s.shardId, `marker ${marker} (session ${short(id)} seq ${seq}) never delivered`);
      }
    }
  }

  /** Markers still expected (diagnostics). */
  get markersPending(): number {
    let n = 0;
    for (const s of this.sessions.values()) n += s.markers.size;
    return n;
  }

  private sessionTrack(shardId: number, sessionId: string): SessionTrack {
    let s = this.sessions.get(sessionId);
    if (!s) this.sessions.set(sessionId, (s = { shardId, last: 0, ended: false, markers: new Map() }));
    return s;
  }

  private endSession(sessionId: string): void {
    const s = this.sessions.get(sessionId);
    if (!s) return;
    s.ended = true;
    for (const [seq, marker] of s.markers) {
      if (seq <= s.last) this.violation('lost', s.shardId, `marker ${marker} (session ${short(sessionId)} seq ${seq}) never delivered`);
      else this.markersLostToNewSession++;
    }
    s.markers.clear();
    // Keep the ended entry small; drop it after a while to stay bounded on long runs.
    if (this.sessions.size > 5000) {
      for (const [id, t] of this.sessions) {
        if (this.sessions.size <= 4000) break;
        if (t.ended) this.sessions.delete(id);
      }
    }
  }

  private checkMarker(shardId: number, sessionId: string, seq: number, data: unknown): void {
    const content = (data as { content?: unknown } | null | undefined)?.content;
    if (typeof content !== 'string' || !content.startsWith('mk:')) return;
    const s = this.sessions.get(sessionId);
    const want = s?.markers.get(seq);
    if (want === undefined) {
      this.violation('content', shardId, `marker ${content} delivered as seq ${seq} of session ${short(sessionId)}, which was not assigned to a marker`);
      return;
    }
    if (want !== content) {
      this.violation('content', shardId, `seq ${seq} of session ${short(sessionId)} carried ${content}, the gateway sent ${want}`);
      return;
    }
    s!.markers.delete(seq);
    this.markersDelivered++;
  }
}

function short(id: string | null): string {
  return id === null ? 'none' : id.slice(0, 8);
}
