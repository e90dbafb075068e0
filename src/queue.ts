import { sleep, systemClock, type Clock } from './clock.js';
import { GatewayError } from './errors.js';

/**
 * Decides when a shard may send IDENTIFY. Implement it to share the identify rate between processes
 * (see `RedisIdentifyQueue`). RESUMEs never go through it.
 *
 * @example
 * ```ts
 * const queue: IdentifyQueue = { acquire: async (shardId, signal) => { await myService.waitTurn(shardId, signal); } };
 * new Shard({ token, intents, identifyQueue: queue });
 * ```
 */
export interface IdentifyQueue {
  /** Resolve when shard `shardId` may identify; reject with the signal's reason when aborted. */
  acquire(shardId: number, signal?: AbortSignal): Promise<void>;
}

/** The daily session start budget (`session_start_limit` of `GET /gateway/bot`), in camelCase. */
export interface SessionStartBudget {
  /** IDENTIFYs allowed per reset period. */
  total: number;
  /** IDENTIFYs left in the current period. Default `total`. */
  remaining?: number;
  /** ms until the budget refills to `total`. */
  resetAfter: number;
  /** Length of the following periods, ms. Default 86 400 000 (24 h). */
  period?: number;
}

/** `session_start_limit` exactly as `GET /gateway/bot` returns it. */
export interface ApiSessionStartLimit {
  total: number;
  remaining: number;
  reset_after: number;
  max_concurrency: number;
}

/** Reported by {@link LocalIdentifyQueueOptions.onBudget}. */
export interface IdentifyBudgetEvent {
  /** `exhausted`: no IDENTIFY left (reported once per period); `refilled`: the period reset. */
  kind: 'exhausted' | 'refilled';
  remaining: number;
  total: number;
  /** Clock time at which the budget refills. */
  resetAt: number;
  /** ms from now until then. */
  resetIn: number;
  /** What waiters do: wait for the refill, or fail with `IDENTIFY_BUDGET_EXHAUSTED`. */
  policy: 'wait' | 'error';
}

/** Options of a {@link LocalIdentifyQueue}. */
export interface LocalIdentifyQueueOptions {
  /** `session_start_limit.max_concurrency`: number of lanes. Default 1. */
  maxConcurrency?: number;
  /** Time between two IDENTIFYs of one lane, ms. Default 5250 (the gateway's 5000 plus a safety margin for jitter). */
  window?: number;
  /**
   * Floor between two actual grants of one lane, ms. Default `window`: every grant waits a full window after the
   * previous one really happened, so a late timer delays later grants too. A smaller floor (e.g. 5000) schedules
   * grants on a fixed grid of `window` spacing instead, so lateness does not add up, at the cost of a smaller
   * margin after a late grant.
   */
  minGap?: number;
  /** Daily session start budget to guard. Default: none (unlimited). */
  budget?: SessionStartBudget;
  /** When the budget is spent: `'error'` (default) rejects with `IDENTIFY_BUDGET_EXHAUSTED`; `'wait'` waits for the refill. */
  onExhausted?: 'wait' | 'error';
  /** Told when the budget runs out and when it refills. */
  onBudget?: (event: IdentifyBudgetEvent) => void;
  clock?: Clock;
}

const DAY = 86_400_000;

/**
 * The identify queue of one process: one lane per `shard_id % max_concurrency`, each admitting one IDENTIFY
 * per window; lanes run in parallel; waits are FIFO per lane and cancellable. Optionally guards the daily
 * session start budget: every grant uses one start; when none is left it either fails fast with a
 * {@link GatewayError} `IDENTIFY_BUDGET_EXHAUSTED` or waits for the refill (never a silent stall: `onBudget`
 * is told), and after a refill the lanes resume at their normal pace (never a burst).
 *
 * @example
 * ```ts
 * import { LocalIdentifyQueue, Shard } from 'shardline';
 * const gw = await (await fetch('https://discord.com/api/v10/gateway/bot', { headers: { Authorization: `Bot ${token}` } })).json();
 * const queue = LocalIdentifyQueue.fromSessionStartLimit(gw.session_start_limit, {
 *   onExhausted: 'wait',
 *   onBudget: (e) => console.warn(`identify budget ${e.kind}; refills in ${Math.round(e.resetIn / 60000)} min`),
 * });
 * const shards = [0, 1].map((id) => new Shard({ token, intents: 1, id, total: 2, identifyQueue: queue }));
 * await Promise.all(shards.map((s) => s.connect()));
 * ```
 */
export class LocalIdentifyQueue implements IdentifyQueue {
  readonly maxConcurrency: number;
  readonly window: number;
  readonly minGap: number;
  readonly onExhausted: 'wait' | 'error';
  protected readonly clock: Clock;
  private readonly lanes = new Map<number, Promise<void>>();
  /** Per lane: the scheduled time of the last grant and when it really happened. */
  private readonly last = new Map<number, { slot: number; at: number }>();
  private readonly onBudget: ((event: IdentifyBudgetEvent) => void) | undefined;
  private budget: { total: number; remaining: number; resetAt: number; period: number } | null = null;
  private exhaustedReported = false;

  constructor(opts: LocalIdentifyQueueOptions = {}) {
    this.maxConcurrency = Math.max(1, Math.floor(opts.maxConcurrency ?? 1));
    this.window = opts.window ?? 5250;
    this.minGap = Math.min(opts.minGap ?? this.window, this.window);
    this.clock = opts.clock ?? systemClock;
    this.onExhausted = opts.onExhausted ?? 'error';
    this.onBudget = opts.onBudget;
    if (opts.budget) this.setBudget(opts.budget);
  }

  /**
   * A queue for the `session_start_limit` of `GET /gateway/bot`: `max_concurrency` lanes and the daily budget.
   */
  static fromSessionStartLimit(limit: ApiSessionStartLimit, opts: Omit<LocalIdentifyQueueOptions, 'maxConcurrency' | 'budget'> = {}): LocalIdentifyQueue {
    return new LocalIdentifyQueue({
      ...opts,
      maxConcurrency: limit.max_concurrency,
      budget: { total: limit.total, remaining: limit.remaining, resetAfter: limit.reset_after },
    });
  }

  /** The lane (rate-limit key) of a shard. */
  laneOf(shardId: number): number {
    return shardId % this.maxConcurrency;
  }

  /** IDENTIFYs left in the current budget period (Infinity without a budget). */
  get remaining(): number {
    this.refresh();
    return this.budget ? this.budget.remaining : Infinity;
  }

  /** Clock time at which the budget refills (null without a budget). */
  get resetAt(): number | null {
    return this.budget ? this.budget.resetAt : null;
  }

  /** Replace the budget, e.g. with fresh `session_start_limit` values from `GET /gateway/bot`. */
  setBudget(budget: SessionStartBudget | null): void {
    if (budget === null) {
      this.budget = null;
      return;
    }
    const { total, resetAfter } = budget;
    const remaining = budget.remaining ?? total;
    if (!(total >= 0) || !(remaining >= 0) || !(resetAfter >= 0)) {
      throw new RangeError(`identify budget must have total, remaining, resetAfter >= 0; got ${total}, ${remaining}, ${resetAfter}`);
    }
    this.budget = { total, remaining: Math.min(remaining, total), resetAt: this.clock.now() + resetAfter, period: budget.period ?? DAY };
    this.exhaustedReported = false;
  }

  acquire(shardId: number, signal?: AbortSignal): Promise<void> {
    const lane = this.laneOf(shardId);
    const previous = this.lanes.get(lane) ?? Promise.resolve();
    const turn = previous.then(async () => {
      signal?.throwIfAborted();
      // Fail fast (or wait for the refill) before spending a lane window on a start that cannot happen.
      while (this.budgetWait(shardId) > 0) await sleep(this.clock, this.budgetWait(shardId), signal);
      const now = this.clock.now();
      const prev = this.last.get(lane);
      const slot = prev ? Math.max(now, prev.slot + this.window, prev.at + this.minGap) : now;
      if (slot > now) await sleep(this.clock, slot - now, signal);
      // Another lane may have taken the last start while this one slept. Check and take without yielding.
      for (let wait = this.budgetWait(shardId); wait > 0; wait = this.budgetWait(shardId)) await sleep(this.clock, wait, signal);
      const at = this.clock.now();
      this.last.set(lane, { slot: at - slot > this.window ? at : slot, at });
      if (this.budget) this.budget.remaining--;
    });
    // The lane continues after this turn whether it was granted, failed or cancelled.
    const tail = turn.catch(() => undefined);
    this.lanes.set(lane, tail);
    void tail.then(() => {
      if (this.lanes.get(lane) === tail) this.lanes.delete(lane);
    });
    return signal ? abortable(turn, signal) : turn;
  }

  /**
   * 0 when a session start is available now; otherwise ms until the refill (policy 'wait'), or throws
   * `IDENTIFY_BUDGET_EXHAUSTED` (policy 'error'). Synchronous, so check-and-take cannot race between lanes.
   */
  private budgetWait(shardId: number): number {
    this.refresh();
    const b = this.budget;
    if (!b || b.remaining > 0) return 0;
    const resetIn = Math.max(0, b.resetAt - this.clock.now());
    if (!this.exhaustedReported) {
      this.exhaustedReported = true;
      this.onBudget?.({ kind: 'exhausted', remaining: 0, total: b.total, resetAt: b.resetAt, resetIn, policy: this.onExhausted });
    }
    if (this.onExhausted === 'error') {
      throw new GatewayError(
        'IDENTIFY_BUDGET_EXHAUSTED',
        `shard ${shardId}: the daily session start budget is spent (0 of ${b.total} IDENTIFYs left; it refills in ${formatDuration(resetIn)}). ` +
          `Resume saved sessions instead of identifying, or pass onExhausted: 'wait' to wait for the refill.`,
        { shardId },
      );
    }
    return Math.max(1, resetIn);
  }

  private refresh(): void {
    const b = this.budget;
    if (!b || this.clock.now() < b.resetAt) return;
    const now = this.clock.now();
    b.remaining = b.total;
    b.resetAt = now + b.period;
    const wasExhausted = this.exhaustedReported;
    this.exhaustedReported = false;
    if (wasExhausted) {
      this.onBudget?.({ kind: 'refilled', remaining: b.remaining, total: b.total, resetAt: b.resetAt, resetIn: b.period, policy: this.onExhausted });
    }
  }
}

function formatDuration(ms: number): string {
  if (ms < 60_000) return `${Math.ceil(ms / 1000)} s`;
  const min = Math.ceil(ms / 60_000);
  if (ms < 3_600_000) return `${min} min`;
  // whole minutes first: 1 h 59 min 30 s is "2 h", never "1 h 60 min"
  const h = Math.floor(min / 60);
  return min % 60 === 0 ? `${h} h` : `${h} h ${min % 60} min`;
}

/** Settle with `promise`, or reject at once with the signal's reason when it aborts first. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
