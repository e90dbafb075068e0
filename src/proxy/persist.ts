/**
 * {@link ProxyStore}: the proxy's upstream sessions and guild cache in Redis. Sessions and the guilds changed since
 * the last write go in one `MULTI` every `interval`, so the stored sequence and the stored cache always describe
 * the same moment: a restarted proxy RESUMEs from that sequence and the gateway replays exactly what the stored
 * cache lacks. (Not the `RedisSessionStore` of `shardline/distributed`: its sequences are written on their own
 * schedule, which could run ahead of the cache.)
 * @packageDocumentation
 */
import type { Redis } from 'ioredis';
import { closeRedis, openRedis, whenReady, type RedisConnection, type RedisHandle } from '../distributed/redis-client.js';
import { ShardlineError } from '../errors.js';
import { isSession, type Session } from '../session.js';
import type { CachedGuildSnapshot, GuildCache } from './cache.js';
import type { HandledPosition } from './handler.js';
import { ReplayPersister, type LoadedReplay, type ReplaySource } from './persist-replay.js';

/** What the proxy writes each time. */
export interface PersistState {
  sessions: Record<number, Session>;
  shardGuilds: Record<number, string[]>;
  user: string;
  application: string;
  cache: GuildCache;
  /** The replay rings and client sessions (persist-replay.ts), written in the same MULTI. */
  replay?: ReplaySource;
  /** With a `handler`: per shard, the last upstream dispatch it finished (written in the same MULTI). */
  handled?: Record<number, HandledPosition>;
}

/** What a starting proxy reads back. */
export interface LoadedState {
  sessions: Record<number, Session>;
  shardGuilds: Record<number, string[]>;
  user: string | null;
  application: string | null;
  guilds: Record<string, CachedGuildSnapshot>;
  replay: LoadedReplay;
  /** What the handler had finished per shard at the last write (empty without a handler). */
  handled: Record<number, HandledPosition>;
}

/** Redis persistence of one proxy's upstream state. */
export class ProxyStore {
  private readonly dirty = new Set<string>();
  private metaDirty = true;
  private timer: ReturnType<typeof setInterval> | null = null;
  private writing: Promise<void> | null = null;
  private state: (() => PersistState) | null = null;
  private soonTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly replay: ReplayPersister;

  private constructor(
    private readonly handle: RedisHandle,
    private readonly prefix: string,
    private readonly interval: number,
    private readonly onError: (err: Error) => void,
  ) {
    this.replay = new ReplayPersister(prefix);
  }

  /** Connect (waits up to 5 s for Redis). */
  static async open(conn: RedisConnection, key: string, interval: number, onError: (err: Error) => void): Promise<ProxyStore> {
    const handle = await openRedis(conn, 'proxy', onError);
    try {
      await whenReady(handle.redis, 5000);
    } catch (err) {
      await closeRedis(handle);
      throw err;
    }
    return new ProxyStore(handle, `shardline:proxy:{${key}}:`, interval, onError);
  }

  private get redis(): Redis {
    return this.handle.redis;
  }

  /** Read everything stored. */
  async load(): Promise<LoadedState> {
    const [meta, guilds] = await Promise.all([this.redis.hgetall(`${this.prefix}meta`), this.redis.hgetall(`${this.prefix}guilds`)]);
    const out: LoadedState = { sessions: {}, shardGuilds: {}, user: meta.user ?? null, application: meta.application ?? null, guilds: {}, replay: await this.replay.load(this.redis), handled: {} };
    try {
      const sessions = meta.sessions ? (JSON.parse(meta.sessions) as Record<string, unknown>) : {};
      for (const [id, s] of Object.entries(sessions)) if (isSession(s)) out.sessions[Number(id)] = s;
      out.shardGuilds = meta.shardGuilds ? (JSON.parse(meta.shardGuilds) as Record<number, string[]>) : {};
      for (const [id, text] of Object.entries(guilds)) out.guilds[id] = JSON.parse(text) as CachedGuildSnapshot;
      const handled = meta.handled ? (JSON.parse(meta.handled) as Record<string, unknown>) : {};
      for (const [id, h] of Object.entries(handled)) {
        const p = h as Partial<HandledPosition> | null;
        if (typeof p?.sessionId === 'string' && Number.isInteger(p.sequence) && p.sequence! >= 0) out.handled[Number(id)] = { sessionId: p.sessionId, sequence: p.sequence! };
      }
    } catch (err) {
      throw new ShardlineError('PROXY_STORE_CORRUPT', `the proxy state in Redis (${this.prefix}*) is not readable: delete those keys: ${(err as Error).message}`, { cause: err });
    }
    return out;
  }

  markGuild(guildId: string): void {
    this.dirty.add(guildId);
  }

  markMeta(): void {
    this.metaDirty = true;
  }

  /** Write every `interval` from `state()`. */
  start(state: () => PersistState): void {
    this.state = state;
    this.timer = setInterval(() => this.tick(), this.interval);
    this.timer.unref();
  }

  /** Write as soon as possible, besides the interval (coalesced): for rare changes a restart must not miss. */
  soon(): void {
    if (this.soonTimer !== null || this.state === null || this.timer === null) return;
    this.soonTimer = setTimeout(() => {
      this.soonTimer = null;
      if (this.writing) void this.writing.then(() => this.soon());
      else this.tick();
    }, 0);
    this.soonTimer.unref();
  }

  private tick(): void {
    if (this.writing || this.state === null) return;
    this.writing = this.flush(this.state())
      .catch((err: Error) => this.onError(new ShardlineError('REDIS_UNAVAILABLE', `proxy state not written: ${err.message}`, { cause: err })))
      .finally(() => {
        this.writing = null;
      });
  }

  /** One write: the sessions, the meta data and the guilds changed since the last write, atomically. */
  async flush(s: PersistState): Promise<void> {
    const m = this.redis.multi();
    const guilds = [...this.dirty];
    this.dirty.clear();
    for (const id of guilds) {
      const snap = s.cache.snapshotGuild(id);
      if (snap === null) m.hdel(`${this.prefix}guilds`, id);
      else m.hset(`${this.prefix}guilds`, id, JSON.stringify(snap));
    }
    const meta: Record<string, string> = { sessions: JSON.stringify(s.sessions) };
    if (s.handled) meta.handled = JSON.stringify(s.handled);
    if (this.metaDirty) {
      this.metaDirty = false;
      Object.assign(meta, { user: s.user, application: s.application, shardGuilds: JSON.stringify(s.shardGuilds) });
    }
    m.hset(`${this.prefix}meta`, meta);
    const written = s.replay ? this.replay.write(m, s.replay) : null;
    try {
      await m.exec();
      written?.();
    } catch (err) {
      for (const id of guilds) this.dirty.add(id);
      this.metaDirty = true;
      throw err;
    }
  }

  /** Stop writing; with a state, write it one last time. Closes the connection if the store opened it. */
  async close(state: PersistState | null): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.soonTimer) clearTimeout(this.soonTimer);
    this.timer = null;
    this.soonTimer = null;
    await this.writing;
    if (state !== null) {
      this.metaDirty = true;
      await this.flush(state).catch((err: Error) => this.onError(err));
    }
    await closeRedis(this.handle);
  }
}
