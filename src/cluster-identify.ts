/**
 * The cluster's identify lanes: the queue every shard set identifies through (the user's `identifyQueue`, or a
 * {@link LocalIdentifyQueue} holding the daily session start budget of `GET /gateway/bot`), the
 * {@link StartupScheduler} on top of it, and what `cluster.identifyStatus()` reports about them.
 * @packageDocumentation
 */
import type { Clock } from './clock.js';
import { CLUSTER_IDENTIFY_WINDOW } from './cluster-options.js';
import type { IdentifyStatus, IdentifyTurnEvent } from './cluster-status.js';
import type { StateChange } from './events.js';
import { LocalIdentifyQueue, type ApiSessionStartLimit, type IdentifyBudgetEvent, type IdentifyQueue } from './queue.js';
import { StartupScheduler, type StartGate } from './scheduler.js';

/** What the lanes are made of, once the identify limits are known. */
export interface IdentifyLanesOptions {
  clock: Clock;
  /** The user's queue (`ClusterOptions.identifyQueue`); undefined: a local queue with `limit`'s budget. */
  queue: IdentifyQueue | undefined;
  /** `session_start_limit` of `GET /gateway/bot` (undefined when it was not fetched). */
  limit: ApiSessionStartLimit | undefined;
  onExhausted: 'wait' | 'error';
  startAhead: number;
  onBudget(event: IdentifyBudgetEvent): void;
  onTurn(event: IdentifyTurnEvent): void;
  observe(fn: (change: StateChange) => void): () => void;
}

/** One per cluster, created by `connect()` once the limits are known; a reshard's new set shares it. */
export class IdentifyLanes {
  readonly maxConcurrency: number;
  readonly scheduler: StartupScheduler;
  /** The queue the first shard set identifies through. */
  readonly gate: StartGate;
  readonly #clock: Clock;
  /** The queue when it is a LocalIdentifyQueue (the default one or the user's): its budget is known. */
  readonly #local: LocalIdentifyQueue | null;
  /** The default queue is ours: a newer `session_start_limit` refreshes its budget. */
  readonly #own: boolean;
  /** The daily total of the default queue's budget (for identifyStatus()). */
  readonly #total: number | null;

  constructor(o: IdentifyLanesOptions) {
    this.#clock = o.clock;
    const limit = o.limit;
    this.maxConcurrency = Math.max(1, limit?.max_concurrency ?? queueLanes(o.queue));
    const inner =
      o.queue ??
      new LocalIdentifyQueue({
        clock: o.clock,
        maxConcurrency: this.maxConcurrency,
        window: CLUSTER_IDENTIFY_WINDOW,
        budget: limit ? { total: limit.total, remaining: limit.remaining, resetAfter: limit.reset_after } : undefined,
        onExhausted: o.onExhausted,
        onBudget: o.onBudget,
      });
    this.#local = inner instanceof LocalIdentifyQueue ? inner : null;
    this.#own = o.queue === undefined;
    this.#total = o.queue ? null : (limit?.total ?? null);
    this.scheduler = new StartupScheduler({ clock: o.clock, inner, maxConcurrency: this.maxConcurrency, startAhead: o.startAhead, onTurn: o.onTurn, observe: o.observe });
    this.gate = this.scheduler.gate();
  }

  /** The queue, the lanes and the daily budget (budget fields null unless the queue is a LocalIdentifyQueue). */
  status(): IdentifyStatus {
    const remaining = this.#local ? this.#local.remaining : null;
    const resetAt = this.#local?.resetAt ?? null;
    return {
      maxConcurrency: this.maxConcurrency,
      waiting: this.scheduler.waiting,
      remaining: remaining === Infinity ? null : remaining,
      total: remaining === null || remaining === Infinity ? null : this.#total,
      resetIn: resetAt === null ? null : Math.max(0, resetAt - this.#clock.now()),
    };
  }

  /** Session starts left in the local queue (null: not a LocalIdentifyQueue, or no budget). */
  localBudget(): number | null {
    const q = this.#local;
    return q && q.remaining !== Infinity ? q.remaining : null;
  }

  /** A newer `session_start_limit` (a reshard's `GET /gateway/bot`) refreshes the default queue's budget. */
  refreshBudget(limit: ApiSessionStartLimit): void {
    if (this.#own) this.#local?.setBudget({ total: limit.total, remaining: limit.remaining, resetAfter: limit.reset_after });
  }
}

/** The status of a cluster whose lanes are not known yet (before `connect()` learnt the limits). */
export const NO_LANES: IdentifyStatus = { maxConcurrency: 1, waiting: 0, remaining: null, total: null, resetIn: null };

/** The debug line (or warning) of a budget event. */
export function budgetLine(e: IdentifyBudgetEvent): string {
  const when = `${Math.round(e.resetIn / 60000)} min`;
  return e.kind === 'refilled'
    ? `identify budget refilled: ${e.remaining}/${e.total}`
    : `identify budget exhausted (0 of ${e.total} left, refills in ${when}): ${e.policy === 'wait' ? 'shards that must IDENTIFY wait for the refill' : 'shards that must IDENTIFY fail with IDENTIFY_BUDGET_EXHAUSTED'}`;
}

/** Lanes a user's identify queue declares (`maxConcurrency` of LocalIdentifyQueue, RedisIdentifyQueue, ...), else 1. */
function queueLanes(queue: IdentifyQueue | undefined): number {
  const lanes = (queue as { maxConcurrency?: unknown } | undefined)?.maxConcurrency;
  return typeof lanes === 'number' && Number.isInteger(lanes) && lanes >= 1 ? lanes : 1;
}
