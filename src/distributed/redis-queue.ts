/**
 * {@link RedisIdentifyQueue}: the identify lanes and the daily session start budget, shared by every process of a
 * bot through Redis.
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { sleep, systemClock, type Clock } from '../clock.js';
import { TypedEmitter } from '../emitter.js';
import { GatewayError, ShardlineError } from '../errors.js';
import { abortable, type ApiSessionStartLimit, type IdentifyBudgetEvent, type IdentifyQueue, type SessionStartBudget } from '../queue.js';
import { closeRedis, keyPrefix, LuaScript, openRedis, toVirtual, whenReady, type RedisConnection, type RedisHandle } from './redis-client.js';

/** Options of a {@link RedisIdentifyQueue}. Every duration is in real milliseconds (Redis expiries are real time). */
export interface RedisIdentifyQueueOptions {
  /** The Redis server shared by every process of the bot. */
  redis: RedisConnection;
  /** Bot name or id; names the keys (`shardline:{bot}:`). Required unless `prefix` is given. */
  bot?: string;
  /** Key prefix. Default `shardline:{bot}:`. */
  prefix?: string;
  /** `session_start_limit.max_concurrency`: number of lanes. Every process must use the same value. Default 1. */
  maxConcurrency?: number;
  /** Time between two IDENTIFYs of one lane, real ms. Default 5500 (the gateway's 5000 plus a margin). */
  window?: number;
  /** Seed the shared daily budget (see {@link RedisIdentifyQueue.setBudget}). Default: none stored by this process. */
  budget?: SessionStartBudget;
  /**
   * Refuse to grant while no budget is stored in Redis (e.g. after Redis lost its data). Default: true when
   * `budget` is given — the queue re-seeds the key from the last budget it knew, never granting blindly.
   */
  requireBudget?: boolean;
  /** When the budget is spent: `'error'` (default) rejects with `IDENTIFY_BUDGET_EXHAUSTED`; `'wait'` waits for the refill. */
  onExhausted?: 'wait' | 'error';
  /** Wait between attempts while Redis is unreachable, real ms. Default 1000. */
  retryInterval?: number;
  /** Time-out of one Redis command, real ms. Default 2000. */
  commandTimeout?: number;
  /** Clock used for the waits (durations are converted from real ms with its `scale`). Default real time. */
  clock?: Clock;
  /** Told when Redis fails while someone waits (the wait goes on; nobody identifies unthrottled). */
  onUnavailable?: (event: RedisUnavailableEvent) => void;
  /** Told when the shared budget runs out or refills. */
  onBudget?: (event: IdentifyBudgetEvent) => void;
}

/** Reported while Redis cannot be reached: every waiter keeps waiting. */
export interface RedisUnavailableEvent {
  error: Error;
  /** Shard whose turn is held up. */
  shardId: number;
  /** Consecutive failed attempts. */
  attempts: number;
  /** Real ms until the next attempt. */
  retryIn: number;
}

/** Shared budget, as stored in Redis. */
export interface SharedBudget {
  total: number;
  remaining: number;
  /** Epoch ms (Redis server time) at which it refills. */
  resetAt: number;
  /** ms until then. */
  resetIn: number;
  period: number;
}

/** Events of a {@link RedisIdentifyQueue}. */
export interface RedisIdentifyQueueEvents {
  /** Redis failed during a wait; the wait continues. */
  unavailable: [event: RedisUnavailableEvent];
  /** Redis answered again after failures. */
  recovered: [event: { shardId: number; attempts: number }];
  /** The shared budget ran out (once per period per process) or refilled. */
  budget: [event: IdentifyBudgetEvent];
  /** A shard was granted its IDENTIFY. `remaining` is the shared budget after it (-1 without a budget). */
  grant: [event: { shardId: number; lane: number; remaining: number }];
}

const DAY = 86_400_000;

// KEYS[1] lane key, KEYS[2] budget key. ARGV[1] window ms, ARGV[2] holder, ARGV[3] '1' when a budget is required.
// Returns {1, remaining} granted | {0, pttl} lane busy | {-1, resetIn, total, resetAt} budget spent | {-2} budget missing.
const ACQUIRE = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then return {0, ttl} end
if ttl == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return {0, tonumber(ARGV[1])}
end
local remaining = -1
if redis.call('EXISTS', KEYS[2]) == 1 then
  local b = redis.call('HMGET', KEYS[2], 'total', 'remaining', 'resetAt', 'period')
  local total = tonumber(b[1]) or 0
  local rem = tonumber(b[2]) or 0
  local resetAt = tonumber(b[3]) or 0
  local period = tonumber(b[4]) or 86400000
  if now >= resetAt then
    rem = total
    resetAt = now + period
    redis.call('HSET', KEYS[2], 'remaining', rem, 'resetAt', resetAt)
  end
  if rem <= 0 then return {-1, resetAt - now, total, resetAt} end
  rem = rem - 1
  redis.call('HSET', KEYS[2], 'remaining', rem)
  remaining = rem
elseif ARGV[3] == '1' then
  return {-2}
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
return {1, remaining}
`);

// KEYS[1] budget key. ARGV total, remaining, resetAfter, period. Within the current period the stored remaining only
// ever goes down (another process may have spent starts this one does not know about); a new period replaces it.
const SEED = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local total = tonumber(ARGV[1])
local rem = math.max(0, math.min(tonumber(ARGV[2]), total))
local resetAt = now + tonumber(ARGV[3])
local cur = redis.call('HMGET', KEYS[1], 'remaining', 'resetAt')
if cur[1] and cur[2] and now < tonumber(cur[2]) then
  rem = math.min(rem, tonumber(cur[1]))
  resetAt = tonumber(cur[2])
end
redis.call('HSET', KEYS[1], 'total', total, 'remaining', rem, 'resetAt', resetAt, 'period', ARGV[4])
return {rem, resetAt - now}
`);

const READ = new LuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'total', 'remaining', 'resetAt', 'period')
if not b[1] then return false end
local rem = tonumber(b[2])
local resetAt = tonumber(b[3])
if now >= resetAt then rem = tonumber(b[1]) end
return {tonumber(b[1]), rem, resetAt, resetAt - now, tonumber(b[4])}
`);

/**
 * An {@link IdentifyQueue} shared by every process (and machine) of a bot through Redis: one lane per
 * `shard_id % max_concurrency` admitting one IDENTIFY per `window` (an atomic check-and-set in a Lua script),
 * and the daily `session_start_limit` budget as one shared counter that never goes below 0. When the budget is
 * spent, waiters fail with a {@link GatewayError} `IDENTIFY_BUDGET_EXHAUSTED` (or wait for the refill with
 * `onExhausted: 'wait'`). Waits are FIFO per lane within a process and cancellable with an `AbortSignal`.
 *
 * Fails safe: while Redis cannot be reached, waiters keep waiting (reported through `unavailable` /
 * `onUnavailable`) and nobody identifies unthrottled; they continue when Redis answers again.
 *
 * @example
 * ```ts
 * import { Cluster, Intents } from 'shardline';
 * import { RedisIdentifyQueue } from 'shardline/distributed';
 * const gw = await (await fetch('https://discord.com/api/v10/gateway/bot', { headers: { Authorization: `Bot ${token}` } })).json();
 * const queue = RedisIdentifyQueue.fromSessionStartLimit(gw.session_start_limit, { redis: 'redis://10.0.0.5:6379', bot: 'mybot' });
 * queue.on('unavailable', (e) => console.warn(`redis down (${e.error.message}); shard ${e.shardId} keeps waiting`));
 * const cluster = new Cluster({ token, intents: Intents.Guilds, shards: { ids: [0, 1, 2, 3], total: 16 }, identifyQueue: queue });
 * await cluster.connect();
 * // ...
 * await cluster.close({ resumable: true });
 * await queue.close();
 * ```
 */
export class RedisIdentifyQueue extends TypedEmitter<RedisIdentifyQueueEvents> implements IdentifyQueue {
  readonly maxConcurrency: number;
  readonly window: number;
  readonly prefix: string;
  readonly onExhausted: 'wait' | 'error';
  private readonly opts: RedisIdentifyQueueOptions;
  private readonly clock: Clock;
  private readonly holder = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private readonly lanes = new Map<number, Promise<void>>();
  private handle: Promise<RedisHandle> | null = null;
  /** The last budget this process knew (to re-seed Redis after it lost its data). `resetAt` is local epoch ms. */
  private lastBudget: { total: number; remaining: number; resetAt: number; period: number } | null = null;
  private requireBudget: boolean;
  private exhaustedReported = false;
  private closed = false;
  private readonly closer = new AbortController();

  constructor(options: RedisIdentifyQueueOptions) {
    super();
    this.opts = options;
    this.prefix = keyPrefix(options.bot, options.prefix);
    this.maxConcurrency = Math.max(1, Math.floor(options.maxConcurrency ?? 1));
    this.window = options.window ?? 5500;
    if (!(this.window >= 1)) throw new ShardlineError('INVALID_OPTION', `window must be >= 1 ms, got ${this.window}`);
    this.onExhausted = options.onExhausted ?? 'error';
    this.clock = options.clock ?? systemClock;
    this.requireBudget = options.requireBudget ?? options.budget !== undefined;
    if (options.budget) this.remember(normalise(options.budget));
  }

  /** A queue for the `session_start_limit` of `GET /gateway/bot`: `max_concurrency` lanes, the shared budget seeded. */
  static fromSessionStartLimit(limit: ApiSessionStartLimit, options: Omit<RedisIdentifyQueueOptions, 'maxConcurrency' | 'budget'>): RedisIdentifyQueue {
    return new RedisIdentifyQueue({
      ...options,
      maxConcurrency: limit.max_concurrency,
      budget: { total: limit.total, remaining: limit.remaining, resetAfter: limit.reset_after },
    });
  }

  /** Redis key of a lane. */
  laneKey(lane: number): string {
    return `${this.prefix}identify:lane:${lane}`;
  }

  /** Redis key of the shared budget (a hash: total, remaining, resetAt, period). */
  get budgetKey(): string {
    return `${this.prefix}identify:budget`;
  }

  /** The lane (rate-limit key) of a shard. */
  laneOf(shardId: number): number {
    return shardId % this.maxConcurrency;
  }

  /**
   * Store the budget from fresh `session_start_limit` values. Within the current period the shared `remaining`
   * only ever goes down (another process may have spent starts this one does not know about); once the stored
   * period is over, the new values replace it.
   */
  async setBudget(budget: SessionStartBudget): Promise<SharedBudget> {
    const b = normalise(budget);
    this.remember(b);
    this.requireBudget = this.opts.requireBudget ?? true;
    const redis = await this.redis();
    const [remaining, resetIn] = (await SEED.run(redis, [this.budgetKey], [b.total, b.remaining!, b.resetAfter, b.period!], this.timeout)) as [number, number];
    this.exhaustedReported = false;
    return { total: b.total, remaining, resetAt: Date.now() + resetIn, resetIn, period: b.period! };
  }

  /** The shared budget as stored in Redis, or null when none is stored. */
  async budget(): Promise<SharedBudget | null> {
    const redis = await this.redis();
    const r = (await READ.run(redis, [this.budgetKey], [], this.timeout)) as [number, number, number, number, number] | null;
    if (!r) return null;
    return { total: r[0], remaining: r[1], resetAt: r[2], resetIn: Math.max(0, r[3]), period: r[4] };
  }

  acquire(shardId: number, signal?: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(new ShardlineError('QUEUE_CLOSED', 'the identify queue is closed'));
    const lane = this.laneOf(shardId);
    const previous = this.lanes.get(lane) ?? Promise.resolve();
    const turn = previous.then(() => this.take(shardId, lane, signal));
    const tail = turn.catch(() => undefined);
    this.lanes.set(lane, tail);
    void tail.then(() => {
      if (this.lanes.get(lane) === tail) this.lanes.delete(lane);
    });
    return signal ? abortable(turn, signal) : turn;
  }

  /** Stop: pending waits fail with `QUEUE_CLOSED`; a Redis client created by the queue is closed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closer.abort(new ShardlineError('QUEUE_CLOSED', 'the identify queue was closed'));
    const handle = this.handle ? await this.handle.catch(() => null) : null;
    await closeRedis(handle);
    this.removeAllListeners();
  }

  // ---- internals ------------------------------------------------------------------------------------------

  private get timeout(): number {
    return this.opts.commandTimeout ?? 2000;
  }

  private async redis(): Promise<Redis> {
    this.handle ??= openRedis(this.opts.redis, 'RedisIdentifyQueue', () => {
      // connection errors are reported by the waiters that hit them
    });
    const { redis } = await this.handle;
    if (redis.status !== 'ready') await whenReady(redis, this.timeout);
    return redis;
  }

  /** One turn of a lane: loop until Redis grants it, the budget fails it, or the signal aborts it. */
  private async take(shardId: number, lane: number, signal: AbortSignal | undefined): Promise<void> {
    const both = signal ? AbortSignal.any([signal, this.closer.signal]) : this.closer.signal;
    const retry = this.opts.retryInterval ?? 1000;
    let failures = 0;
    for (;;) {
      both.throwIfAborted();
      let result: number[];
      try {
        const redis = await this.redis();
        result = (await ACQUIRE.run(redis, [this.laneKey(lane), this.budgetKey], [this.window, this.holder, this.requireBudget ? '1' : '0'], this.timeout)) as number[];
      } catch (err) {
        if (err instanceof ShardlineError && err.code === 'MISSING_PEER_DEPENDENCY') throw err;
        failures++;
        const event: RedisUnavailableEvent = { error: err as Error, shardId, attempts: failures, retryIn: retry };
        this.report(() => this.opts.onUnavailable?.(event));
        this.report(() => this.emit('unavailable', event));
        await sleep(this.clock, toVirtual(retry, this.clock.scale), both);
        continue;
      }
      if (failures > 0) {
        const attempts = failures;
        failures = 0;
        this.report(() => this.emit('recovered', { shardId, attempts }));
      }
      const [code, a, total, resetAt] = result;
      if (code === 1) {
        if (this.lastBudget && a! >= 0) this.lastBudget.remaining = Math.min(this.lastBudget.remaining, a!);
        if (this.exhaustedReported) {
          this.exhaustedReported = false;
          this.budgetEvent('refilled', a!, total ?? a!, Date.now(), 0);
        }
        this.report(() => this.emit('grant', { shardId, lane, remaining: a! }));
        return;
      }
      if (code === 0) {
        // Lane busy: come back when its key expires (plus a little jitter so processes do not collide).
        await sleep(this.clock, toVirtual(Math.max(1, a!) + 1 + Math.floor(Math.random() * 5), this.clock.scale), both);
        continue;
      }
      if (code === -2) {
        // Redis has no budget (e.g. it restarted empty): put back the last one this process knew; never grant blindly.
        if (!this.lastBudget) {
          throw new GatewayError(
            'IDENTIFY_BUDGET_UNKNOWN',
            `shard ${shardId}: no identify budget is stored at ${this.budgetKey} and this process has none to seed it; call setBudget() with session_start_limit`,
            { shardId },
          );
        }
        try {
          const redis = await this.redis();
          const b = this.lastBudget;
          const now = Date.now();
          if (now >= b.resetAt) {
            b.remaining = b.total;
            b.resetAt = now + b.period;
          }
          await SEED.run(redis, [this.budgetKey], [b.total, b.remaining, b.resetAt - now, b.period], this.timeout);
        } catch {
          // next loop reports it
        }
        continue;
      }
      // Budget spent.
      const resetIn = Math.max(0, a!);
      if (!this.exhaustedReported) {
        this.exhaustedReported = true;
        this.budgetEvent('exhausted', 0, total ?? 0, resetAt ?? Date.now() + resetIn, resetIn);
      }
      if (this.onExhausted === 'error') {
        throw new GatewayError(
          'IDENTIFY_BUDGET_EXHAUSTED',
          `shard ${shardId}: the daily session start budget shared through ${this.budgetKey} is spent (0 of ${total} IDENTIFYs left; it refills in ${Math.ceil(resetIn / 1000)} s). ` +
            `Resume saved sessions instead of identifying, or pass onExhausted: 'wait' to wait for the refill.`,
          { shardId },
        );
      }
      // Wait for the refill, but look again at least every 30 s: another process may store a fresh budget.
      await sleep(this.clock, toVirtual(Math.min(Math.max(1, resetIn), 30_000), this.clock.scale), both);
    }
  }

  private remember(b: Required<SessionStartBudget>): void {
    this.lastBudget = { total: b.total, remaining: b.remaining, resetAt: Date.now() + b.resetAfter, period: b.period };
  }

  private budgetEvent(kind: 'exhausted' | 'refilled', remaining: number, total: number, resetAt: number, resetIn: number): void {
    const event: IdentifyBudgetEvent = { kind, remaining, total, resetAt, resetIn, policy: this.onExhausted };
    this.report(() => this.opts.onBudget?.(event));
    this.report(() => this.emit('budget', event));
  }

  /** Run a user callback; a throwing listener must not break the queue. */
  private report(fn: () => void): void {
    try {
      fn();
    } catch {
      // ignored: listeners are told, never trusted
    }
  }
}

function normalise(b: SessionStartBudget): Required<SessionStartBudget> {
  const remaining = b.remaining ?? b.total;
  if (!(b.total >= 0) || !(remaining >= 0) || !(b.resetAfter >= 0)) {
    throw new RangeError(`identify budget must have total, remaining, resetAfter >= 0; got ${b.total}, ${remaining}, ${b.resetAfter}`);
  }
  return { total: b.total, remaining: Math.min(remaining, b.total), resetAfter: b.resetAfter, period: b.period ?? DAY };
}
