/**
 * Zero-downtime resharding of a {@link Cluster}: a second shard set with the new shard count identifies next to
 * the running one, its events are withheld (and reconciled with what the running set delivers) until it is
 * complete, then one synchronous switch moves delivery, command routing and status to it and the old set is
 * closed. See `docs/RESHARDING.md` for the dedupe method and its limits.
 *
 * Used through `cluster.reshard()` and `cluster.autoReshard()`; the classes here are exported for tests and
 * for readers, the cluster wires them up.
 * @packageDocumentation
 */
import { sleep, type Clock, type TimerHandle } from './clock.js';
import type { ShardBackend, ShardSink, ShardStatus } from './cluster-status.js';
import { ShardlineError } from './errors.js';
import type { DispatchEvent, ReadyData, StateChange } from './events.js';
import { abortable, type ApiSessionStartLimit, type IdentifyQueue } from './queue.js';
import type { ShardState } from './state.js';

/** Virtual ms after a new shard's identify turn at which the next shard of its lane starts connecting. */
const START_STAGGER = 2500;
/** Virtual ms between checks of the switch conditions that no event announces (consumer back-pressure, old shard states). */
const POLL_EVERY = 100;
/** Old-set fingerprints kept per routing key while the new set has not seen them. */
const MAX_OLD_PER_KEY = 4096;

// ---- public types ---------------------------------------------------------------------------------------

/** Options of `cluster.reshard()`. Durations are virtual ms on the cluster's clock. */
export interface ReshardOptions {
  /** Cancel the reshard: the new set is closed, the running set is left untouched, the promise rejects. */
  signal?: AbortSignal;
  /**
   * Share of the remaining daily session starts (`session_start_limit.remaining`) the new set may use. The
   * reshard needs one IDENTIFY per new shard and refuses to start (`RESHARD_BUDGET`) when
   * `newTotal > floor(remaining * budgetShare)`. Default 1.
   */
  budgetShare?: number;
  /** Give up (and keep the running set) when the new set is not complete after this long. Default: twice its identify windows + 60 s. */
  timeout?: number;
  /** How long a new shard's initial GUILD_CREATE burst may take after its READY before the switch goes ahead anyway. Default 15 000. */
  guildTimeout?: number;
  /**
   * How long the switch may wait for the running set to catch up (see docs/RESHARDING.md: no running shard is
   * reconnecting, the consumer is not behind, and a heartbeat barrier on every running shard). Default 30 000. When
   * it passes, the reshard is aborted (`RESHARD_ABORTED`, nothing switched): switching anyway could lose events only
   * the running set had received.
   */
  catchUpTimeout?: number;
  /** New-set events withheld at most; beyond it the new set stops reading its sockets until the old set catches up. Default 50 000. */
  maxBufferedEvents?: number;
  /** How long after the switch new-set events are still checked against what the old set delivered. Default 30 000. */
  dedupeWindow?: number;
}

/** What a completed reshard did. Counts are dispatches. */
export interface ReshardResult {
  from: number;
  to: number;
  /** Virtual ms from `reshard()` to the switch. */
  elapsed: number;
  /** Real ms the synchronous switch took (delivery of withheld events included). */
  switchDuration: number;
  /** New-set dispatches received before the switch (suppressed session events excluded). */
  received: number;
  /** New-set dispatches dropped because the old set had delivered them (until the result is built). */
  deduplicated: number;
  /** Withheld new-set dispatches delivered at the switch (the old set had not delivered them yet). */
  replayed: number;
  /** New-set READY / RESUMED and initial GUILD_CREATEs not delivered (the user already knows those guilds). */
  suppressed: number;
  /** Old-set dispatches dropped after the switch point (the new set delivers them). */
  droppedOld: number;
  /** Most new-set dispatches withheld at once. */
  maxBuffered: number;
  /** Virtual ms from "every new shard complete" to the switch (the catch-up wait and heartbeat barrier). */
  catchUp: number;
}

/** Payload of the cluster's `reshard` event. */
export type ReshardEvent =
  | { kind: 'started'; from: number; to: number; reason: 'manual' | 'policy' }
  | { kind: 'switched'; from: number; to: number; result: ReshardResult }
  | { kind: 'aborted'; from: number; to: number; error: Error }
  /** The periodic policy decided not to reshard although the threshold was passed (e.g. budget). */
  | { kind: 'skipped'; from: number; to: number; reason: string };

/** Options of `cluster.autoReshard()` / `ClusterOptions.autoReshard`. Durations are virtual ms. */
export interface AutoReshardOptions {
  /** Time between two checks of `GET /gateway/bot`. Default 900 000 (15 min). */
  interval?: number;
  /** Reshard when the bot's guilds divided by the shard count pass this. Default 2000 (Discord closes a shard with 4011 above 2500). */
  guildsPerShard?: number;
  /**
   * Never spend more than this share of the remaining daily session starts on one reshard: a reshard to `n`
   * shards needs `n <= floor(remaining * budgetShare)`, otherwise it is skipped (reported) and retried at the
   * next check. Default 0.5.
   */
  budgetShare?: number;
  /** Options of each reshard the policy starts (its own `budgetShare` wins). */
  reshard?: Omit<ReshardOptions, 'signal' | 'budgetShare'>;
}

// ---- internal contract with the cluster ---------------------------------------------------------------------

/** `GET /gateway/bot`, the parts resharding uses. */
export interface GatewayBotInfo {
  shards: number;
  session_start_limit: ApiSessionStartLimit;
}

/** A shard set built by the cluster for the resharder (internal). */
export interface ShardSet {
  total: number;
  backends: ShardBackend[];
  owners: Map<number, ShardBackend>;
  /** The sink every backend of the set reports to; its methods are swapped, never the object. */
  sink: ShardSink;
}

/** What the resharder needs from the cluster (internal). */
export interface ReshardHost {
  readonly clock: Clock;
  readonly total: number;
  readonly maxConcurrency: number;
  readonly startAhead: number;
  /** Sink of the running set (methods are swapped during a reshard, restored on abort). */
  readonly setSink: ShardSink;
  /** The cluster's own delivery (what a set's sink does outside a reshard). */
  readonly mainSink: ShardSink;
  /** Aborts when the cluster closes. */
  readonly signal: AbortSignal;
  /** The event consumer is behind (the running set's sockets are paused). */
  isBehind(): boolean;
  /** States of the running set's shards. */
  runningStates(): ShardState[];
  /** `ShardBackend.barrier()` of every ready shard of the running set. */
  barrier(): Promise<void>;
  identifyQueue(): IdentifyQueue;
  /** Session starts left according to the cluster's own identify queue (null: unknown / not a local queue). */
  localBudget(): number | null;
  /** Fetch `/gateway/bot` and refresh the cluster's own queue's budget from it. */
  fetchGatewayBot(): Promise<GatewayBotInfo>;
  createSet(total: number, sink: ShardSink, queue: IdentifyQueue): ShardSet;
  /** Make `set` the running set (synchronously); returns the previous set's backends. */
  adopt(set: ShardSet, states: Map<number, ShardState>): ShardBackend[];
  debug(message: string): void;
  emit(event: ReshardEvent): void;
}

// ---- dedupe --------------------------------------------------------------------------------------------

/** Routing key of a dispatch: its guild id, or `#<shardId>` for events without a guild (DMs go to shard 0). */
export function routingKey(e: DispatchEvent): string {
  const d = e.data as { guild_id?: unknown; id?: unknown } | null;
  if (d !== null && typeof d === 'object') {
    if (typeof d.guild_id === 'string') return d.guild_id;
    if ((e.type === 'GUILD_CREATE' || e.type === 'GUILD_UPDATE' || e.type === 'GUILD_DELETE') && typeof d.id === 'string') return d.id;
  }
  return `#${e.shardId}`;
}

/**
 * Content fingerprint of a dispatch: a 53-bit hash of its type and `JSON.stringify(data)` (shard id and sequence
 * excluded — they differ between the two sessions that receive the same event).
 */
export function fingerprint(e: DispatchEvent): number {
  return hash53(`${e.type}\u0000${JSON.stringify(e.data) ?? ''}`);
}

function hash53(s: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

interface Withheld {
  event: DispatchEvent;
  key: string;
  fp: number;
  dropped: boolean;
}

interface OldSeen {
  fp: number;
  at: number;
}

/**
 * The overlap bookkeeping, independent of sockets. Per routing key it keeps two queues: `newAhead`, new-set events
 * the old set has not delivered yet (withheld), and `oldAhead`, fingerprints of old-set deliveries the new set has
 * not received yet. Every arriving event is first matched against the other side's queue:
 *
 * - old event matches a withheld new event: that new event is dropped (delivered once, by the old set);
 * - new event matches an old fingerprint: dropped; older old fingerprints of that key are discarded (the gateway
 *   sent them to the old session only, before the new session existed — per-key order makes that certain);
 * - new event matches nothing: the old fingerprints of that key are discarded for the same reason and the event is
 *   withheld.
 *
 * At the switch the old set stops delivering, the still-withheld events are released in arrival order, and new
 * events keep being matched against the remaining old fingerprints until those run out (or `dedupeWindow`).
 */
export class OverlapDedupe {
  private readonly newAhead = new Map<string, Withheld[]>();
  private withheld: Withheld[] = [];
  private droppedInList = 0;
  private readonly oldAhead = new Map<string, OldSeen[]>();
  private readonly aligned = new Set<string>();
  private readonly routes = new Map<string, number>();
  /** New shards whose IDENTIFY turn came: old events of their keys are recorded from then on. */
  readonly started = new Set<number>();
  buffered = 0;
  maxBuffered = 0;
  oldSize = 0;
  received = 0;
  deduplicated = 0;

  constructor(
    readonly from: number,
    readonly to: number,
  ) {}

  /** The new shard a key routes to, or null when the new set has no counterpart (a `#id` key with id >= to). */
  newShardOf(key: string): number | null {
    if (key.charCodeAt(0) === 35 /* # */) {
      const id = Number(key.slice(1));
      return id < this.to ? id : null;
    }
    let shard = this.routes.get(key);
    if (shard === undefined) {
      try {
        shard = Number((BigInt(key) >> 22n) % BigInt(this.to));
      } catch {
        shard = -1;
      }
      if (this.routes.size > 1_000_000) this.routes.clear();
      this.routes.set(key, shard);
    }
    return shard < 0 ? null : shard;
  }

  /** Whether the old set receives this key's events at all (`#id` keys only exist on old shards below `from`). */
  hasOldCounterpart(key: string): boolean {
    return key.charCodeAt(0) !== 35 || Number(key.slice(1)) < this.from;
  }

  /** The old set delivered `e` (called before it is delivered). */
  old(e: DispatchEvent, now: number): void {
    const key = routingKey(e);
    const n = this.newShardOf(key);
    if (n === null || !this.started.has(n)) return;
    const fp = fingerprint(e);
    const q = this.newAhead.get(key);
    if (q) {
      const i = q.findIndex((w) => w.fp === fp);
      if (i >= 0) {
        const w = q[i]!;
        q.splice(i, 1);
        if (q.length === 0) this.newAhead.delete(key);
        w.dropped = true;
        this.droppedInList++;
        this.buffered--;
        this.deduplicated++;
        this.aligned.add(key);
        this.compact();
        return;
      }
    }
    let o = this.oldAhead.get(key);
    if (!o) this.oldAhead.set(key, (o = []));
    o.push({ fp, at: now });
    this.oldSize++;
    if (o.length > MAX_OLD_PER_KEY) {
      o.shift();
      this.oldSize--;
    }
  }

  /** A new-set event before the switch: true when it was withheld (false: already delivered by the old set). */
  withhold(e: DispatchEvent): boolean {
    this.received++;
    const key = routingKey(e);
    const fp = fingerprint(e);
    if (this.matchOld(key, fp)) return false;
    const w: Withheld = { event: e, key, fp, dropped: false };
    let q = this.newAhead.get(key);
    if (!q) this.newAhead.set(key, (q = []));
    q.push(w);
    this.withheld.push(w);
    this.buffered++;
    if (this.buffered > this.maxBuffered) this.maxBuffered = this.buffered;
    return true;
  }

  /** After the switch: true when `e` must be delivered. */
  pass(e: DispatchEvent): boolean {
    if (this.oldSize === 0) return true;
    const key = routingKey(e);
    if (!this.oldAhead.has(key)) return true;
    return !this.matchOld(key, fingerprint(e));
  }

  /** Keys with withheld events whose overlap the old set has not reached yet (it may still owe older events of them). */
  unaligned(): number {
    let n = 0;
    for (const key of this.newAhead.keys()) if (this.hasOldCounterpart(key) && !this.aligned.has(key)) n++;
    return n;
  }

  /** The switch: every still-withheld event, in arrival order; the withheld state is cleared. */
  release(): DispatchEvent[] {
    const out: DispatchEvent[] = [];
    for (const w of this.withheld) if (!w.dropped) out.push(w.event);
    this.withheld = [];
    this.newAhead.clear();
    this.droppedInList = 0;
    this.buffered = 0;
    return out;
  }

  /** Forget old fingerprints older than `before` (clock time). */
  expire(before: number): void {
    for (const [key, o] of this.oldAhead) {
      let i = 0;
      while (i < o.length && o[i]!.at < before) i++;
      if (i === 0) continue;
      o.splice(0, i);
      this.oldSize -= i;
      if (o.length === 0) this.oldAhead.delete(key);
    }
  }

  clear(): void {
    this.release();
    this.oldAhead.clear();
    this.oldSize = 0;
    this.aligned.clear();
    this.routes.clear();
  }

  /** Match a new event against the old fingerprints of its key; discards the ones it proves old-only. */
  private matchOld(key: string, fp: number): boolean {
    const o = this.oldAhead.get(key);
    if (!o) return false;
    const i = o.findIndex((s) => s.fp === fp);
    if (i >= 0) {
      o.splice(0, i + 1);
      this.oldSize -= i + 1;
      if (o.length === 0) this.oldAhead.delete(key);
      this.deduplicated++;
      this.aligned.add(key);
      return true;
    }
    // The old set delivered these and the new set got a later event first: they never reach the new set.
    this.oldSize -= o.length;
    this.oldAhead.delete(key);
    return false;
  }

  private compact(): void {
    if (this.droppedInList > 1024 && this.droppedInList * 2 > this.withheld.length) {
      this.withheld = this.withheld.filter((w) => !w.dropped);
      this.droppedInList = 0;
    }
  }
}

// ---- the reshard ----------------------------------------------------------------------------------------------

type Phase = 'starting' | 'overlap' | 'switched' | 'done' | 'aborted';

/** Errors a failed reshard rejects with as they are; anything else becomes the cause of a `RESHARD_ABORTED`. */
const PASS_THROUGH = new Set(['RESHARD_ABORTED', 'RESHARD_BUDGET', 'RESHARD_NOOP', 'RESHARD_FAILED', 'INVALID_OPTION', 'INVALID_SHARD']);

/** Round `n` up to a multiple of `m`. */
export function roundUp(n: number, m: number): number {
  const k = Math.max(1, Math.floor(m));
  return Math.ceil(n / k) * k;
}

/** One reshard of a cluster. Created by `cluster.reshard()`. */
export class Resharder {
  private phase: Phase = 'starting';
  private readonly ac = new AbortController();
  private readonly startedAt: number;
  private from: number;
  private to = 0;
  private set: ShardSet | null = null;
  private dedupe: OverlapDedupe | null = null;
  private readonly states = new Map<number, ShardState>();
  private readonly bursts = new Map<number, { guilds: Set<string>; readyAt: number }>();
  private readonly grants = new Map<number, () => void>();
  private readonly timers = new Set<TimerHandle>();
  private waiter: { check: () => boolean; resolve: () => void } | null = null;
  private newPaused = false;
  private suppressed = 0;
  private droppedOld = 0;
  private replayed = 0;
  private switchDuration = 0;
  private switchedAt = 0;
  private catchUpStartedAt = 0;
  private dedupeTimer: TimerHandle | undefined;
  private readonly options: ReshardOptions;

  constructor(
    private readonly host: ReshardHost,
    private readonly requested: number | undefined,
    options: ReshardOptions,
    private readonly reason: 'manual' | 'policy',
  ) {
    this.options = options;
    this.from = host.total;
    this.startedAt = host.clock.now();
  }

  /** True until the switch or the abort. */
  get active(): boolean {
    return this.phase === 'starting' || this.phase === 'overlap';
  }

  /** Run the reshard. Rejects with `RESHARD_*` errors; the running set is untouched unless it resolves. */
  async run(): Promise<ReshardResult> {
    const userSignal = this.options.signal;
    const userAbort = () => this.abort(asError(userSignal!.reason, 'reshard cancelled'));
    const clusterAbort = () => this.abort(new ShardlineError('CLUSTER_CLOSED', 'the cluster was closed'));
    try {
      if (userSignal?.aborted) throw asError(userSignal.reason, 'reshard cancelled');
      userSignal?.addEventListener('abort', userAbort, { once: true });
      this.host.signal.addEventListener('abort', clusterAbort, { once: true });
      await this.decide();
      this.host.emit({ kind: 'started', from: this.from, to: this.to, reason: this.reason });
      this.host.debug(`reshard ${this.from} → ${this.to}: starting ${this.to} new shards next to the running ${this.from}`);
      this.begin();
      const timeout = this.options.timeout ?? Math.ceil(this.to / this.host.maxConcurrency) * 5100 * 2 + 60_000;
      this.later(timeout, () => this.abort(new ShardlineError('RESHARD_TIMEOUT', `the new set of ${this.to} shards was not complete after ${Math.round(timeout / 1000)} s`)));
      await this.startAll();
      await this.waitBursts();
      await this.waitCatchUp();
      this.switchOver();
      const old = this.oldBackends;
      this.oldBackends = [];
      await Promise.all(old.map((b) => b.close(false).catch(() => undefined)));
      this.phase = 'done';
      const result = this.result();
      this.host.debug(
        `reshard ${this.from} → ${this.to}: done; switch took ${result.switchDuration.toFixed(2)} ms, ${result.replayed} withheld events released, ` +
          `${result.deduplicated} duplicates dropped, ${result.suppressed} session events suppressed`,
      );
      this.host.emit({ kind: 'switched', from: this.from, to: this.to, result });
      return result;
    } catch (err) {
      const error = this.phase === 'switched' || this.phase === 'done' ? (err as Error) : await this.cleanup(err);
      throw error;
    } finally {
      userSignal?.removeEventListener('abort', userAbort);
      this.host.signal.removeEventListener('abort', clusterAbort);
      for (const t of this.timers) this.host.clock.clearTimeout(t);
      this.timers.clear();
      this.waiter = null;
    }
  }

  /** Stop the post-switch dedupe (cluster closing, or the next reshard starting). */
  dispose(): void {
    if (this.active) this.abort(new ShardlineError('CLUSTER_CLOSED', 'the cluster was closed'));
    this.finishDedupe();
  }

  // ---- steps -------------------------------------------------------------------------------------------

  private oldBackends: ShardBackend[] = [];

  /** The new shard count and the budget check. */
  private async decide(): Promise<void> {
    const share = this.options.budgetShare ?? 1;
    if (!(share > 0 && share <= 1)) throw new ShardlineError('INVALID_OPTION', `budgetShare must be in (0, 1], got ${String(share)}`);
    const req = this.requested;
    if (req !== undefined && (!Number.isInteger(req) || req < 1)) {
      throw new ShardlineError('INVALID_SHARD', `shard count must be an integer >= 1, got ${String(req)}`);
    }
    let bot: GatewayBotInfo | null = null;
    let fetchError: Error | null = null;
    try {
      bot = await abortable(this.host.fetchGatewayBot(), this.ac.signal);
    } catch (err) {
      if (this.ac.signal.aborted) throw this.ac.signal.reason;
      fetchError = err as Error;
    }
    const mc = bot?.session_start_limit.max_concurrency ?? this.host.maxConcurrency;
    if (req === undefined) {
      if (!bot) throw new ShardlineError('RESHARD_FAILED', `cannot learn the recommended shard count: ${fetchError!.message}`, { cause: fetchError });
      this.to = roundUp(bot.shards, mc);
    } else this.to = req;
    if (this.to === this.from) {
      throw new ShardlineError('RESHARD_NOOP', `the cluster already runs ${this.from} shards${req === undefined ? ' (the count /gateway/bot recommends, rounded up to a multiple of max_concurrency)' : ''}`);
    }
    const remaining = bot?.session_start_limit.remaining ?? this.host.localBudget();
    if (remaining === null) {
      throw new ShardlineError('RESHARD_BUDGET', `cannot check the identify budget before resharding: GET /gateway/bot failed (${fetchError?.message ?? 'unknown'})`, {
        cause: fetchError,
      });
    }
    const allowed = Math.floor(remaining * share);
    if (this.to > allowed) {
      throw new ShardlineError(
        'RESHARD_BUDGET',
        `resharding to ${this.to} shards needs ${this.to} IDENTIFYs but only ${allowed} may be spent (${remaining} session starts left × budgetShare ${share}); ` +
          `the ${this.from} running shards are untouched. Retry after the budget resets (session_start_limit.reset_after).`,
      );
    }
  }

  /** Build the new set and start recording what the old set delivers. */
  private begin(): void {
    this.phase = 'overlap';
    const dedupe = (this.dedupe = new OverlapDedupe(this.from, this.to));
    const grants = this.grants;
    const inner = this.host.identifyQueue();
    const queue: IdentifyQueue = {
      acquire: async (shardId, signal) => {
        await inner.acquire(shardId, signal);
        // The new session cannot exist before this IDENTIFY is sent: old-set deliveries of this shard's keys are
        // recorded from here on (earlier ones are certainly old-only, so they are not kept to be confused with).
        dedupe.started.add(shardId);
        grants.get(shardId)?.();
      },
    };
    const sink: ShardSink = {
      dispatch: (e) => this.onNew(e),
      ready: (id, data) => this.onNewReady(id, data),
      resumed: () => undefined,
      stateChange: (c) => this.onNewState(c),
      disconnected: (e) => this.host.debug(`reshard: new shard ${e.shardId}/${this.to} disconnected (${e.cause}; ${e.action})`),
      error: (err, id) => {
        this.host.debug(`reshard: new shard ${id}/${this.to}: ${err.message}`);
        if (this.states.get(id) === 'fatal') this.failed(id, err);
      },
      debug: () => undefined,
    };
    this.set = this.host.createSet(this.to, sink, queue);
    for (let id = 0; id < this.to; id++) this.states.set(id, 'idle');
    const main = this.host.mainSink;
    const old = this.host.setSink;
    const clock = this.host.clock;
    old.dispatch = (e) => {
      dedupe.old(e, clock.now());
      main.dispatch(e);
      this.unpauseIfDrained();
      this.kick();
    };
    const stateChange = main.stateChange;
    old.stateChange = (c) => {
      stateChange(c);
      this.kick();
    };
    this.every(1000, () => dedupe.expire(clock.now() - (this.options.dedupeWindow ?? 30_000)));
    this.every(POLL_EVERY, () => this.kick());
  }

  /** Connect every new shard through the identify lanes (like `connect()`); resolves when all are ready. */
  private async startAll(): Promise<void> {
    const set = this.set!;
    const signal = this.ac.signal;
    const ready: Promise<void>[] = [];
    const start = (id: number): Promise<void> => {
      const done = set.owners
        .get(id)!
        .connect(id)
        .catch((err: Error) => this.failed(id, err));
      ready.push(done);
      const granted = new Promise<void>((resolve) => {
        this.grants.set(id, resolve);
        signal.addEventListener('abort', () => resolve(), { once: true });
      }).then(() => (signal.aborted ? undefined : sleep(this.host.clock, START_STAGGER, signal).catch(() => undefined)));
      return Promise.race([done, granted]).finally(() => this.grants.delete(id));
    };
    const ids = Array.from({ length: this.to }, (_, i) => i);
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < ids.length && !signal.aborted) await start(ids[next++]!);
    };
    const ahead = Math.max(1, this.host.startAhead) * this.host.maxConcurrency;
    await abortable(Promise.all(Array.from({ length: Math.min(ahead, ids.length) }, lane)), signal);
    await abortable(Promise.all(ready), signal);
    signal.throwIfAborted();
    this.host.debug(`reshard ${this.from} → ${this.to}: every new shard is ready after ${Math.round(this.host.clock.now() - this.startedAt)} ms`);
  }

  /** Wait for the new shards' initial GUILD_CREATE bursts (bounded by `guildTimeout` after each READY). */
  private async waitBursts(): Promise<void> {
    const limit = this.options.guildTimeout ?? 15_000;
    const clock = this.host.clock;
    const pending = () => {
      for (const b of this.bursts.values()) if (b.guilds.size > 0 && clock.now() - b.readyAt < limit) return true;
      return false;
    };
    await this.waitUntil(() => !pending());
  }

  /**
   * Wait until the old set has delivered everything the gateway sent it before the last new session existed (bounded
   * by `catchUpTimeout`): no old shard is reconnecting, the consumer is not behind, the keys the new set has withheld
   * events for have been seen in the overlap by the old set, and finally a heartbeat barrier on every old shard —
   * its socket read up to the ACK of a heartbeat sent now (sockets are ordered), so no old-only event is still unread.
   */
  private async waitCatchUp(): Promise<void> {
    const dedupe = this.dedupe!;
    this.catchUpStartedAt = this.host.clock.now();
    let timedOut = false;
    let expire!: () => void;
    const expired = new Promise<void>((resolve) => (expire = resolve));
    const limit = this.options.catchUpTimeout ?? 30_000;
    const timer = this.later(limit, () => {
      timedOut = true;
      expire();
      this.kick();
    });
    for (;;) {
      await this.waitUntil(() => {
        if (timedOut) return true;
        if (this.host.isBehind()) return false;
        if (this.host.runningStates().some((s) => s !== 'ready' && s !== 'fatal' && s !== 'closed' && s !== 'idle')) return false;
        return dedupe.unaligned() === 0;
      });
      if (timedOut) break;
      const barrier = this.host.barrier().then(
        () => true,
        (err: Error) => {
          this.host.debug(`reshard: barrier on the running set failed (${err.message}); retrying`);
          return false;
        },
      );
      if (await abortable(Promise.race([barrier, expired.then(() => false)]), this.ac.signal)) break;
      if (timedOut) break;
      await sleep(this.host.clock, POLL_EVERY, this.ac.signal);
    }
    this.host.clock.clearTimeout(timer);
    this.timers.delete(timer);
    if (timedOut) {
      throw new ShardlineError(
        'RESHARD_ABORTED',
        `reshard ${this.from} → ${this.to} aborted: the running set did not catch up within ${Math.round(limit / 1000)} s ` +
          `(a shard reconnecting, the event consumer stalled, or no heartbeat ACK); nothing was switched — the ${this.from} running shards are untouched`,
      );
    }
  }

  /** The switch point: synchronous from the first line to the last. */
  private switchOver(): void {
    const t0 = performance.now();
    const host = this.host;
    const set = this.set!;
    const dedupe = this.dedupe!;
    const main = host.mainSink;
    this.phase = 'switched';
    // 1. The old set stops delivering (its late events were sent to the new set too).
    const old = host.setSink;
    old.dispatch = () => {
      this.droppedOld++;
    };
    for (const k of ['ready', 'resumed', 'stateChange', 'disconnected', 'error', 'debug'] as const) (old as unknown as Record<string, () => void>)[k] = () => undefined;
    // 2. Routing, status and back-pressure move to the new set.
    this.oldBackends = host.adopt(set, this.states);
    // Not paused: a paused socket would not read the close handshake. Its events now go nowhere (step 1).
    for (const b of this.oldBackends) b.setPaused(false);
    this.newPaused = false;
    // 3. Withheld events the old set had not delivered, in arrival order.
    const released = dedupe.release();
    this.replayed = released.length;
    // 4. From now on the new set delivers (still checked against the old set's last deliveries for a while).
    const sink = set.sink;
    Object.assign(sink, main);
    if (dedupe.oldSize > 0) {
      sink.dispatch = (e) => {
        if (dedupe.pass(e)) main.dispatch(e);
        if (dedupe.oldSize === 0) this.finishDedupe();
      };
      this.dedupeTimer = host.clock.setTimeout(() => this.finishDedupe(), this.options.dedupeWindow ?? 30_000);
    } else this.finishDedupe();
    for (const e of released) main.dispatch(e);
    this.switchDuration = performance.now() - t0;
    this.switchedAt = host.clock.now();
  }

  private finishDedupe(): void {
    this.host.clock.clearTimeout(this.dedupeTimer);
    this.dedupeTimer = undefined;
    if (this.set && (this.phase === 'switched' || this.phase === 'done')) this.set.sink.dispatch = this.host.mainSink.dispatch;
    this.dedupe?.clear();
  }

  /** Undo everything but the running set; returns the error to reject with. */
  private async cleanup(err: unknown): Promise<Error> {
    this.phase = 'aborted';
    if (!this.ac.signal.aborted) this.ac.abort(err);
    const reason = (this.ac.signal.reason ?? err) as Error;
    const error =
      reason instanceof ShardlineError && PASS_THROUGH.has(reason.code)
        ? reason
        : new ShardlineError('RESHARD_ABORTED', `reshard ${this.from} → ${this.to || '?'} aborted: ${reason?.message ?? String(reason)} — the ${this.from} running shards are untouched`, {
            cause: reason,
          });
    Object.assign(this.host.setSink, this.host.mainSink);
    if (this.set) {
      const quiet = this.set.sink;
      for (const k of Object.keys(quiet)) (quiet as unknown as Record<string, () => void>)[k] = () => undefined;
      await Promise.all(this.set.backends.map((b) => b.close(false).catch(() => undefined)));
    }
    this.dedupe?.clear();
    this.host.debug(`reshard aborted: ${error.message}`);
    if (this.set) this.host.emit({ kind: 'aborted', from: this.from, to: this.to, error });
    return error;
  }

  // ---- new-set events -------------------------------------------------------------------------------------

  private onNew(e: DispatchEvent): void {
    const type = e.type as string;
    if (type === 'READY' || type === 'RESUMED') {
      this.suppressed++;
      return;
    }
    if (type === 'GUILD_CREATE' || (type === 'GUILD_DELETE' && (e.data as { unavailable?: boolean }).unavailable === true)) {
      const burst = this.bursts.get(e.shardId);
      if (burst?.guilds.delete((e.data as { id: string }).id)) {
        this.suppressed++;
        this.kick();
        return;
      }
    }
    const dedupe = this.dedupe!;
    if (dedupe.withhold(e) && !this.newPaused && dedupe.buffered >= (this.options.maxBufferedEvents ?? 50_000)) {
      this.newPaused = true;
      this.host.debug(`reshard: ${dedupe.buffered} new-set events withheld; the new set stops reading until the running set catches up`);
      for (const b of this.set!.backends) b.setPaused(true);
    }
    this.kick();
  }

  private unpauseIfDrained(): void {
    if (this.newPaused && this.dedupe!.buffered <= (this.options.maxBufferedEvents ?? 50_000) >> 1) {
      this.newPaused = false;
      for (const b of this.set!.backends) b.setPaused(false);
    }
  }

  private onNewReady(id: number, data: ReadyData): void {
    this.bursts.set(id, { guilds: new Set(data.guilds.map((g) => g.id)), readyAt: this.host.clock.now() });
  }

  private onNewState(c: StateChange): void {
    this.states.set(c.shardId, c.to);
    // The shard reports the error right after the state: prefer it (it carries the close code).
    if (c.to === 'fatal') queueMicrotask(() => this.failed(c.shardId, new ShardlineError('SHARD_FATAL', c.reason)));
    this.kick();
  }

  // ---- plumbing -----------------------------------------------------------------------------------------

  /** A new shard stopped for good: the reshard is over. */
  private failed(id: number, err: Error): void {
    this.abort(new ShardlineError('RESHARD_ABORTED', `new shard ${id} of ${this.to} failed: ${err.message} — the ${this.from} running shards are untouched`, { cause: err }));
  }

  private abort(error: Error): void {
    if (!this.active || this.ac.signal.aborted) return;
    this.ac.abort(error);
    this.kick();
  }

  private kick(): void {
    const w = this.waiter;
    if (w && (this.ac.signal.aborted || w.check())) {
      this.waiter = null;
      w.resolve();
    }
  }

  private async waitUntil(check: () => boolean): Promise<void> {
    this.ac.signal.throwIfAborted();
    if (check()) return;
    await new Promise<void>((resolve) => (this.waiter = { check, resolve }));
    this.ac.signal.throwIfAborted();
  }

  private later(ms: number, fn: () => void): TimerHandle {
    const handle = this.host.clock.setTimeout(() => {
      this.timers.delete(handle);
      fn();
    }, ms);
    this.timers.add(handle);
    return handle;
  }

  private every(ms: number, fn: () => void): void {
    const tick = () => {
      fn();
      if (this.active) this.later(ms, tick);
    };
    this.later(ms, tick);
  }

  private result(): ReshardResult {
    const d = this.dedupe!;
    return {
      from: this.from,
      to: this.to,
      elapsed: this.switchedAt - this.startedAt,
      switchDuration: this.switchDuration,
      received: d.received,
      deduplicated: d.deduplicated,
      replayed: this.replayed,
      suppressed: this.suppressed,
      droppedOld: this.droppedOld,
      maxBuffered: d.maxBuffered,
      catchUp: this.switchedAt - this.catchUpStartedAt,
    };
  }
}

function asError(reason: unknown, fallback: string): Error {
  return reason instanceof Error ? reason : new ShardlineError('ABORTED', reason === undefined ? fallback : String(reason));
}

// ---- the periodic policy -------------------------------------------------------------------------------------

/** What the policy needs from the cluster (internal). */
export interface PolicyHost {
  readonly clock: Clock;
  total(): number | null;
  maxConcurrency(): number;
  status(): ShardStatus[];
  busy(): boolean;
  closed(): boolean;
  fetchGatewayBot(): Promise<GatewayBotInfo>;
  reshard(total: number, options: ReshardOptions): Promise<ReshardResult>;
  debug(message: string): void;
  emit(event: ReshardEvent): void;
}

/**
 * Checks `GET /gateway/bot` every `interval` and reshards when the guilds per shard pass `guildsPerShard`, to the
 * larger of the recommended count and `ceil(guilds / guildsPerShard)`, rounded up to a multiple of
 * `max_concurrency` — only when that many IDENTIFYs fit in `budgetShare` of the remaining session starts.
 */
export class ReshardPolicy {
  private timer: TimerHandle | undefined;
  private stopped = false;
  private running: Promise<void> | null = null;
  readonly options: Required<Pick<AutoReshardOptions, 'interval' | 'guildsPerShard' | 'budgetShare'>> & Pick<AutoReshardOptions, 'reshard'>;

  constructor(
    private readonly host: PolicyHost,
    options: AutoReshardOptions = {},
  ) {
    const interval = options.interval ?? 900_000;
    const guildsPerShard = options.guildsPerShard ?? 2000;
    const budgetShare = options.budgetShare ?? 0.5;
    if (!(interval > 0)) throw new ShardlineError('INVALID_OPTION', `autoReshard.interval must be > 0, got ${String(interval)}`);
    if (!(guildsPerShard > 0)) throw new ShardlineError('INVALID_OPTION', `autoReshard.guildsPerShard must be > 0, got ${String(guildsPerShard)}`);
    if (!(budgetShare > 0 && budgetShare <= 1)) throw new ShardlineError('INVALID_OPTION', `autoReshard.budgetShare must be in (0, 1], got ${String(budgetShare)}`);
    this.options = { interval, guildsPerShard, budgetShare, reshard: options.reshard };
  }

  start(): void {
    if (this.stopped || this.timer !== undefined) return;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    this.host.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One check (also what the timer runs). Resolves when the check — and a reshard it started — is over. */
  check(): Promise<void> {
    this.running ??= this.doCheck()
      .catch((err: Error) => this.host.debug(`autoReshard: check failed: ${err.message}`))
      .finally(() => (this.running = null));
    return this.running;
  }

  private schedule(): void {
    this.timer = this.host.clock.setTimeout(() => {
      this.timer = undefined;
      void this.check().finally(() => {
        if (!this.stopped && !this.host.closed()) this.schedule();
      });
    }, this.options.interval);
  }

  private async doCheck(): Promise<void> {
    const h = this.host;
    const total = h.total();
    if (total === null || h.closed() || h.busy()) return;
    const guilds = h.status().reduce((n, s) => n + (s.guilds ?? 0), 0);
    const per = guilds / total;
    const { guildsPerShard, budgetShare } = this.options;
    if (per <= guildsPerShard) {
      h.debug(`autoReshard: ${guilds} guilds over ${total} shards (${per.toFixed(1)} per shard) is within ${guildsPerShard}`);
      return;
    }
    const bot = await h.fetchGatewayBot();
    const mc = bot.session_start_limit.max_concurrency || h.maxConcurrency();
    const to = roundUp(Math.max(bot.shards, Math.ceil(guilds / guildsPerShard)), mc);
    if (to <= total) return;
    const allowed = Math.floor(bot.session_start_limit.remaining * budgetShare);
    if (to > allowed) {
      const reason = `budget: resharding to ${to} needs ${to} IDENTIFYs, only ${allowed} allowed (${bot.session_start_limit.remaining} left × ${budgetShare})`;
      h.debug(`autoReshard: skipped (${reason})`);
      h.emit({ kind: 'skipped', from: total, to, reason });
      return;
    }
    h.debug(`autoReshard: ${guilds} guilds over ${total} shards (${per.toFixed(1)} per shard) passed ${guildsPerShard}: resharding to ${to}`);
    await h.reshard(to, { ...this.options.reshard, budgetShare });
  }
}
