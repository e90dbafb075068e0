/**
 * Start-up scheduling: brings a set of shards up through the cluster's identify queue, as fast as the identify
 * lanes allow and no faster. Used by `connect()` (the running set, and a retry of its failed shards) and by a
 * reshard (its new set), so both share the lanes, the pacing and the failure reporting.
 *
 * Pacing: `startAhead × max_concurrency` shards connect at once; a shard's start slot frees half a window after
 * its identify turn (or when it is ready, or failed), so the next shard of the lane connects mid-window, never
 * while IDENTIFYs are on the wire, and no socket idles long unidentified. Resumes do not use the identify queue
 * and start `RESUME_CONCURRENCY` at a time next to the lanes.
 * @packageDocumentation
 */
import { sleep, type Clock } from './clock.js';
import type { ClusterProgress, IdentifyTurnEvent } from './cluster-status.js';
import { ShardlineError } from './errors.js';
import type { StateChange } from './events.js';
import type { IdentifyQueue } from './queue.js';
import type { ShardState } from './state.js';

/** Resumes started at once (they do not use the identify queue). */
const RESUME_CONCURRENCY = 32;
/** Virtual ms after a shard's identify turn at which the next shard of its lane starts connecting. */
const START_STAGGER = 2500;

/** Why `connect()` failed: the shards that stopped for good (the others keep running). */
export class ClusterConnectError extends ShardlineError {
  readonly failures: { shardId: number; error: Error }[];
  constructor(failures: { shardId: number; error: Error }[], total: number) {
    const list = failures
      .slice(0, 5)
      .map((f) => `shard ${f.shardId}: ${f.error.message}`)
      .join('; ');
    const more = failures.length > 5 ? `; and ${failures.length - 5} more` : '';
    super('SHARDS_FAILED', `${failures.length} of ${total} shards failed to start (${list}${more}). The other shards keep running; fix the cause, then cluster.restartShard(id).`);
    this.name = 'ClusterConnectError';
    this.failures = failures;
  }
}

export interface StartFailure {
  shardId: number;
  error: Error;
}

/** The identify queue of one shard set: the cluster's lanes, plus the turn notifications its start-up paces with. */
export class StartGate implements IdentifyQueue {
  /** Shards of a running start-up waiting for their turn. */
  readonly grants = new Map<number, () => void>();
  readonly #inner: IdentifyQueue;
  readonly #onTurn: ((shardId: number) => void) | null;

  constructor(inner: IdentifyQueue, onTurn: ((shardId: number) => void) | null) {
    this.#inner = inner;
    this.#onTurn = onTurn;
  }

  async acquire(shardId: number, signal?: AbortSignal): Promise<void> {
    await this.#inner.acquire(shardId, signal);
    this.#onTurn?.(shardId);
    this.grants.get(shardId)?.();
  }
}

/** One start-up: which shards, how to connect one, and who is told what. */
export interface StartPlan {
  /** Shards that IDENTIFY, in order (through the identify lanes). */
  ids: readonly number[];
  /** Shards that RESUME (no identify turn). */
  resume?: readonly number[];
  connect(shardId: number): Promise<void>;
  /** Stops starting further shards (the ones started settle on their own). */
  signal: AbortSignal;
  /** A shard failed for good (it is also in the result). */
  onFailure?(shardId: number, error: Error): void;
  /** Told about every state change of the set while it starts (`connect({ onProgress })`). */
  progress?: {
    report(progress: ClusterProgress): void;
    /** `clock.now()` the elapsed time counts from. */
    startedAt: number;
    /** The set's shard count, and its shards counted by state (read from where they run). */
    total: number;
    count(): Map<ShardState, number>;
  };
}

export interface SchedulerOptions {
  clock: Clock;
  /** The identify queue every shard set shares (the default local queue, or the user's). */
  inner: IdentifyQueue;
  maxConcurrency: number;
  /** Shards per identify lane connected at once. */
  startAhead: number;
  /** Every identify turn granted (after the wait). */
  onTurn(event: IdentifyTurnEvent): void;
  /** Subscribe to the state changes the cluster delivers; returns the removal. */
  observe(fn: (change: StateChange) => void): () => void;
}

/** Brings shard sets up through the identify lanes. One per cluster (created once the limits are known). */
export class StartupScheduler {
  readonly #o: SchedulerOptions;
  /** The cluster's queue: `inner`, plus the count of waiting shards and the `identifyTurn` report. */
  readonly queue: IdentifyQueue;
  #waiting = 0;

  constructor(o: SchedulerOptions) {
    this.#o = o;
    this.queue = {
      acquire: async (shardId, signal) => {
        const since = o.clock.now();
        this.#waiting++;
        try {
          await o.inner.acquire(shardId, signal);
        } finally {
          this.#waiting--;
        }
        o.onTurn({ shardId, lane: shardId % o.maxConcurrency, waited: o.clock.now() - since });
      },
    };
  }

  /** Shards waiting for an identify turn now. */
  get waiting(): number {
    return this.#waiting;
  }

  get maxConcurrency(): number {
    return this.#o.maxConcurrency;
  }

  /** The identify queue for one shard set (`onTurn`: told about each of the set's turns, before its pacing). */
  gate(onTurn: ((shardId: number) => void) | null = null): StartGate {
    return new StartGate(this.queue, onTurn);
  }

  /** Start `plan`'s shards through `gate` (the queue they were created with). Resolves with the failures once every started shard settled. */
  async start(gate: StartGate, plan: StartPlan): Promise<StartFailure[]> {
    const { clock } = this.#o;
    const { signal } = plan;
    const failures: StartFailure[] = [];
    const settled: Promise<void>[] = [];
    const progress = plan.progress;
    const stopObserving = progress ? this.#o.observe((change) => progress.report(this.#progress(progress, change))) : null;
    const start = (id: number): Promise<void> => {
      const done = plan.connect(id).catch((error: Error) => {
        failures.push({ shardId: id, error });
        plan.onFailure?.(id, error);
      });
      settled.push(done);
      let wake!: () => void;
      const granted = new Promise<void>((resolve) => {
        wake = resolve;
        gate.grants.set(id, resolve);
        signal.addEventListener('abort', wake, { once: true });
      }).then(() => (signal.aborted ? undefined : sleep(clock, START_STAGGER, signal).catch(() => undefined)));
      return Promise.race([done, granted]).finally(() => {
        gate.grants.delete(id);
        signal.removeEventListener('abort', wake);
      });
    };
    const ahead = Math.max(1, this.#o.startAhead) * this.#o.maxConcurrency;
    try {
      await Promise.all([limited(plan.resume ?? [], RESUME_CONCURRENCY, start, signal), limited(plan.ids, ahead, start, signal)]);
      await Promise.all(settled);
    } finally {
      stopObserving?.();
    }
    return failures.sort((a, b) => a.shardId - b.shardId);
  }

  #progress(p: NonNullable<StartPlan['progress']>, change: StateChange): ClusterProgress {
    const counts = p.count();
    const c = (s: ShardState) => counts.get(s) ?? 0;
    return {
      total: p.total,
      ready: c('ready'),
      failed: c('fatal'),
      starting: c('connecting') + c('identifying') + c('resuming') + c('reconnecting'),
      shardId: change.shardId,
      state: change.to,
      elapsed: this.#o.clock.now() - p.startedAt,
    };
  }
}

/** Run `fn` over `ids` in order, at most `limit` at a time (a slot is held until `fn`'s promise settles). */
async function limited(ids: readonly number[], limit: number, fn: (id: number) => Promise<void>, signal: AbortSignal): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < ids.length && !signal.aborted) await fn(ids[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, ids.length) }, lane));
}
