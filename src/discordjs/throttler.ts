/**
 * `ws.buildIdentifyThrottler` backed by a shardline {@link IdentifyQueue}: discord.js / `@discordjs/ws` processes
 * that share one queue (e.g. `RedisIdentifyQueue`) share the identify lanes and the daily session start budget.
 * @packageDocumentation
 */
import type { IdentifyQueue } from '../queue.js';

/**
 * An `@discordjs/ws` `IIdentifyThrottler` (1.x and 2.x: `waitForIdentify(shardId, signal)`) that waits for a turn
 * of a shardline {@link IdentifyQueue}. Works with the stock strategies of `@discordjs/ws` as well as with
 * {@link ShardlineStrategy}, which takes the queue out of it and uses it directly (no extra hop).
 *
 * A spent daily budget rejects `waitForIdentify` with the queue's `IDENTIFY_BUDGET_EXHAUSTED` error (with
 * `onExhausted: 'error'`, the default of shardline's queues): {@link ShardlineStrategy} stops that shard (`fatal`);
 * the stock `@discordjs/ws` strategies treat a rejection as a reason to reconnect.
 *
 * @example
 * ```ts
 * import { Client, GatewayIntentBits } from 'discord.js';
 * import { RedisIdentifyQueue } from 'shardline/distributed';
 * import { ShardlineIdentifyThrottler, ShardlineStrategy } from 'shardline/discordjs';
 *
 * const queue = new RedisIdentifyQueue({ redis: process.env.REDIS_URL!, bot: 'mybot', maxConcurrency: 1 });
 * const client = new Client({
 *   intents: [GatewayIntentBits.Guilds],
 *   ws: {
 *     buildStrategy: (manager) => new ShardlineStrategy(manager),
 *     buildIdentifyThrottler: () => new ShardlineIdentifyThrottler(queue),
 *   },
 * });
 * ```
 */
export class ShardlineIdentifyThrottler {
  /** The queue turns are taken from. */
  readonly queue: IdentifyQueue;

  constructor(queue: IdentifyQueue) {
    if (typeof queue?.acquire !== 'function') throw new TypeError('ShardlineIdentifyThrottler: pass an IdentifyQueue (an object with acquire(shardId, signal))');
    this.queue = queue;
  }

  /** Resolves when shard `shardId` may IDENTIFY; rejects with the signal's reason when `signal` aborts. */
  waitForIdentify(shardId: number, signal?: AbortSignal): Promise<void> {
    return this.queue.acquire(shardId, signal);
  }
}

/**
 * `ws.buildIdentifyThrottler` for a discord.js `Client` (or a `@discordjs/ws` `WebSocketManager`) from a shardline
 * identify queue: `buildIdentifyThrottler: shardlineIdentifyThrottler(queue)`.
 *
 * @example
 * ```ts
 * const queue = new RedisIdentifyQueue({ redis: process.env.REDIS_URL!, bot: 'mybot', maxConcurrency: 16 });
 * new Client({ intents, ws: { buildIdentifyThrottler: shardlineIdentifyThrottler(queue) } });
 * ```
 */
export function shardlineIdentifyThrottler(queue: IdentifyQueue): () => ShardlineIdentifyThrottler {
  const throttler = new ShardlineIdentifyThrottler(queue);
  return () => throttler;
}
