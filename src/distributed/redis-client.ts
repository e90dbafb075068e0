/**
 * Internal helpers shared by the Redis-backed parts: lazy loading of the optional `ioredis` peer dependency,
 * connection ownership, command time-outs and Lua scripts run by SHA with a fallback after a server restart.
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';
import type { Redis, RedisOptions } from 'ioredis';
import { ShardlineError } from '../errors.js';

/**
 * A Redis connection: an `ioredis` client you own (shardline never closes it), a `redis://` URL, or
 * `ioredis` options (shardline creates the client, never queues commands while disconnected, and closes it).
 */
export type RedisConnection = Redis | string | RedisOptions;

/** A Redis client and whether shardline created it (and so must close it). */
export interface RedisHandle {
  readonly redis: Redis;
  readonly owned: boolean;
}

/** True for something that looks like an ioredis client (so a user's instance is used as is). */
function isClient(value: unknown): value is Redis {
  return typeof value === 'object' && value !== null && typeof (value as { evalsha?: unknown }).evalsha === 'function';
}

/**
 * Open (or adopt) a Redis client. Created clients fail commands at once while disconnected
 * (`enableOfflineQueue: false`) and reconnect forever, so callers can tell "Redis is down" from "waiting".
 */
export async function openRedis(conn: RedisConnection, name: string, onError: (err: Error) => void): Promise<RedisHandle> {
  if (isClient(conn)) return { redis: conn, owned: false };
  let mod: { Redis?: unknown; default?: unknown };
  try {
    mod = (await import('ioredis')) as unknown as { Redis?: unknown; default?: unknown };
  } catch (err) {
    throw new ShardlineError('MISSING_PEER_DEPENDENCY', `${name} needs the optional peer dependency "ioredis": run \`npm install ioredis\` (it is not installed with shardline).`, { cause: err });
  }
  const RedisCtor = (mod.Redis ?? mod.default) as unknown as new (...args: unknown[]) => Redis;
  const defaults: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
    connectionName: `shardline:${name}`,
  };
  const redis = typeof conn === 'string' ? new RedisCtor(conn, defaults) : new RedisCtor({ ...defaults, ...conn });
  // ioredis prints unhandled 'error' events to the console; route them to the owner instead.
  redis.on('error', (err: Error) => onError(err));
  return { redis, owned: true };
}

/** Resolve when the client is connected (or reject after `timeout` ms). */
export function whenReady(redis: Redis, timeout: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new ShardlineError('REDIS_UNAVAILABLE', `Redis did not become ready within ${timeout} ms (status ${redis.status})`));
    }, timeout);
    timer.unref();
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}

/** Close a client shardline created (QUIT, then disconnect if it hangs); leave a user's client alone. */
export async function closeRedis(handle: RedisHandle | null): Promise<void> {
  if (!handle?.owned) return;
  const r = handle.redis;
  if (r.status === 'end') return;
  if (r.status !== 'ready') {
    r.disconnect(false);
    return;
  }
  await withTimeout(r.quit(), 1000, 'QUIT').catch(() => r.disconnect(false));
}

/** Reject with a `REDIS_TIMEOUT` error when `promise` does not settle within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ShardlineError('REDIS_TIMEOUT', `Redis ${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A Lua script run with EVALSHA, falling back to EVAL when the server does not know it (e.g. after a restart). */
export class LuaScript {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: string[], args: (string | number)[], timeout: number): Promise<unknown> {
    try {
      return await withTimeout(redis.evalsha(this.sha, keys.length, ...keys, ...args), timeout, 'EVALSHA');
    } catch (err) {
      if (!String((err as Error)?.message).includes('NOSCRIPT')) throw err;
      return await withTimeout(redis.eval(this.source, keys.length, ...keys, ...args), timeout, 'EVAL');
    }
  }
}

/**
 * `shardline:{bot}:` unless a prefix is given. The braces are literal: they make `bot` the Redis Cluster hash tag,
 * so every key of a bot lives in one slot and the multi-key scripts work on a Redis Cluster too.
 */
export function keyPrefix(bot: string | undefined, prefix: string | undefined): string {
  if (prefix !== undefined) return prefix;
  if (!bot || !/^[A-Za-z0-9_-]{1,64}$/.test(bot)) {
    throw new ShardlineError('INVALID_OPTION', `bot must be 1–64 characters of A–Z, a–z, 0–9, _ or - (it names Redis keys and NATS subjects), got ${JSON.stringify(bot)}`);
  }
  return `shardline:{${bot}}:`;
}

/** Real milliseconds → virtual milliseconds of `clock` (Redis expiries run in real time). */
export function toVirtual(realMs: number, scale: number): number {
  return realMs / scale;
}
