/**
 * {@link RedisSessionStore}: gateway sessions in Redis so a restarted process resumes instead of identifying, and
 * per-shard ownership leases so two processes never run the same shard. Beside it: `redis-sessions-follow.ts` (how
 * `attach()` follows a shard's or cluster's sessions) and `redis-sessions-lua.ts` (the atomic scripts it runs in Redis).
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { sleep, systemClock, type Clock } from '../clock.js';
import type { Cluster } from '../cluster.js';
import { TypedEmitter } from '../emitter.js';
import { ShardlineError } from '../errors.js';
import { isSession, type Session } from '../session.js';
import { followSessions, type AttachOptions, type SessionUpdate } from './redis-sessions-follow.js';
import type { Shard } from '../shard.js';
import { closeRedis, keyPrefix, openRedis, toVirtual, whenReady, withTimeout, type RedisConnection, type RedisHandle } from './redis-client.js';
import { RELEASE_LEASES, RENEW_LEASES, TAKE_LEASE, WRITE_SESSIONS } from './redis-sessions-lua.js';

/** Options of a {@link RedisSessionStore}. Every duration is in real milliseconds. */
export interface RedisSessionStoreOptions {
  /** The Redis server shared by every process of the bot. */
  redis: RedisConnection;
  /** Bot name or id; names the keys (`shardline:{bot}:`). Required unless `prefix` is given. */
  bot?: string;
  /** Key prefix. Default `shardline:{bot}:`. */
  prefix?: string;
  /** How often coalesced session updates are written. Default 1000. */
  flushInterval?: number;
  /** Stored sessions expire this long after their last write (Discord forgets them after a few minutes). Default 900 000. */
  sessionTtl?: number;
  /** Ownership lease time-to-live; a crashed owner's shards are free again after it. Default 15 000. */
  leaseTtl?: number;
  /** How often held leases are renewed. Default `leaseTtl / 3`. */
  renewInterval?: number;
  /**
   * This process's owner id, stored in its leases. Default `host:pid:random` (unique per process). A stable id lets a
   * restarted process take its leases back at once, which is only safe when your orchestrator never runs two
   * instances with that id.
   */
  ownerId?: string;
  /** Time-out of one Redis command. Default 2000. */
  commandTimeout?: number;
  /** Clock for waits (durations are converted from real ms with its `scale`). Default real time. */
  clock?: Clock;
}

/** A stored session with its bookkeeping. */
export interface StoredSession extends Session {
  shardId: number;
  /** Shard count the session was identified with. */
  total: number;
  /** Epoch ms at which the session started (READY); a newer session replaces an older one, never the reverse. */
  startedAt: number;
  /** Owner id of the writer. */
  owner: string;
  /** Epoch ms of the last write. */
  updatedAt: number;
}

/** Events of a {@link RedisSessionStore}. */
export interface RedisSessionStoreEvents {
  /** A write, renewal or read failed (writes are retried on the next flush). */
  error: [error: Error];
  /**
   * This process no longer owns the shard: another owner holds its lease, or the lease could not be renewed
   * before it expired. Stop the shard (`cluster.close` / `shard.close`): another process may run it.
   */
  leaseLost: [event: { shardId: number; reason: 'taken' | 'expired' }];
  /** After each flush that wrote something. */
  flush: [event: { written: number; stale: number; fenced: number }];
}

interface Entry {
  sessionId: string;
  sequence: number;
  resumeUrl: string;
  total: number;
  startedAt: number;
  dirty: boolean;
}

/**
 * Gateway sessions (`sessionId`, `sequence`, `resumeUrl` and the shard count) in Redis, so a restarted process
 * resumes its shards instead of identifying, plus an ownership lease per shard so two processes never run one
 * shard at once.
 *
 * Attached to a {@link Shard} or {@link Cluster}, it never awaits Redis on the event path: updates are coalesced per
 * shard in memory and written every `flushInterval` (and on {@link RedisSessionStore.close}) by one Lua script that
 * only ever raises a stored sequence (a late write cannot lower it), lets a newer session replace an older one, and
 * — for shards whose lease this store holds — refuses to write unless the lease is still this process's.
 *
 * @example
 * ```ts
 * import { Cluster, Intents } from 'shardline';
 * import { RedisSessionStore } from 'shardline/distributed';
 * const ids = [0, 1, 2, 3];
 * const store = new RedisSessionStore({ redis: 'redis://10.0.0.5:6379', bot: 'mybot' });
 * await store.acquireLeases(ids, { wait: 30_000 });       // fails with LEASE_HELD if another live process runs them
 * store.on('leaseLost', ({ shardId }) => void cluster.close()); // someone else owns it now: stop at once
 * const sessions = await store.load(ids, 16);               // resume what the previous process left
 * const cluster = new Cluster({ token, intents: Intents.Guilds, shards: { ids, total: 16 }, sessions });
 * store.attach(cluster);
 * await cluster.connect();
 * // deploy: close resumably, write the last sequences, release the leases
 * const last = await cluster.close({ resumable: true });
 * store.save(last);
 * await store.close();
 * ```
 */
export class RedisSessionStore extends TypedEmitter<RedisSessionStoreEvents> {
  readonly prefix: string;
  /** Owner id written into leases and sessions. */
  readonly ownerId: string;
  private readonly opts: RedisSessionStoreOptions;
  private readonly clock: Clock;
  private readonly entries = new Map<number, Entry>();
  /** Held leases: shard id → Date.now() of the last successful renewal. */
  private readonly held = new Map<number, number>();
  private handle: Promise<RedisHandle> | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private renewTimer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();
  private readonly detachers = new Set<() => void>();
  private closed = false;

  constructor(options: RedisSessionStoreOptions) {
    super();
    this.opts = options;
    this.prefix = keyPrefix(options.bot, options.prefix);
    this.ownerId = options.ownerId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.clock = options.clock ?? systemClock;
  }

  /** Redis key of a shard's session (a hash). */
  sessionKey(shardId: number): string {
    return `${this.prefix}session:${shardId}`;
  }

  /** Redis key of a shard's ownership lease (a string holding the owner id). */
  leaseKey(shardId: number): string {
    return `${this.prefix}lease:${shardId}`;
  }

  /** Shards whose lease this store holds. */
  get leases(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  /**
   * Sessions stored for `shardIds` that were identified with `total` shards, ready to pass as `sessions` to a
   * {@link Cluster} (or `session` to a {@link Shard}). Sessions of another shard count are skipped (they cannot be
   * resumed by a differently sharded process). The loaded sessions become this store's known state.
   */
  async load(shardIds: Iterable<number>, total: number): Promise<Record<number, Session>> {
    const ids = [...shardIds];
    const stored = await this.read(ids);
    const out: Record<number, Session> = {};
    for (const s of stored) {
      if (!s || s.total !== total) continue;
      out[s.shardId] = { sessionId: s.sessionId, sequence: s.sequence, resumeUrl: s.resumeUrl };
      const cur = this.entries.get(s.shardId);
      if (!cur || cur.startedAt <= s.startedAt) {
        this.entries.set(s.shardId, { sessionId: s.sessionId, sequence: s.sequence, resumeUrl: s.resumeUrl, total: s.total, startedAt: s.startedAt, dirty: false });
      }
    }
    return out;
  }

  /** The stored sessions of `shardIds` as they are in Redis (null where none is stored). */
  async read(shardIds: Iterable<number>): Promise<(StoredSession | null)[]> {
    const ids = [...shardIds];
    if (ids.length === 0) return [];
    const redis = await this.connected();
    const results = (await withTimeout(redis.pipeline(ids.map((id) => ['hgetall', this.sessionKey(id)])).exec(), this.timeout, 'HGETALL')) ?? [];
    return ids.map((shardId, i) => {
      const [err, h] = results[i] ?? [null, null];
      if (err || !h || typeof h !== 'object') return null;
      const r = h as Record<string, string>;
      const s = {
        shardId,
        sessionId: r.sessionId ?? '',
        sequence: Number(r.sequence),
        resumeUrl: r.resumeUrl ?? '',
        total: Number(r.total),
        startedAt: Number(r.startedAt),
        owner: r.owner ?? '',
        updatedAt: Number(r.updatedAt),
      };
      return isSession(s) && s.sessionId !== '' && Number.isInteger(s.total) ? s : null;
    });
  }

  /**
   * Record a session change for the next flush. Synchronous and cheap (safe on the event path). A new `sessionId`
   * with `resumeUrl` and `total` replaces the shard's session; otherwise only a higher `sequence` of the known
   * session is kept (updates for another session are ignored as stale).
   */
  update(shardId: number, patch: SessionUpdate): void {
    if (this.closed) return;
    const cur = this.entries.get(shardId);
    if (cur && cur.sessionId === patch.sessionId) {
      if (patch.sequence !== undefined && patch.sequence > cur.sequence) {
        cur.sequence = patch.sequence;
        cur.dirty = true;
      }
      if (patch.resumeUrl !== undefined && patch.resumeUrl !== cur.resumeUrl) {
        cur.resumeUrl = patch.resumeUrl;
        cur.dirty = true;
      }
      return;
    }
    if (patch.resumeUrl === undefined || patch.total === undefined) return; // a sequence of an unknown / older session
    const startedAt = patch.startedAt ?? Date.now();
    if (cur && startedAt < cur.startedAt) return;
    this.entries.set(shardId, { sessionId: patch.sessionId, sequence: patch.sequence ?? 0, resumeUrl: patch.resumeUrl, total: patch.total, startedAt, dirty: true });
  }

  /** Record sessions returned by `cluster.close({ resumable: true })` / `shard.close(...)` (only raises sequences). */
  save(sessions: Record<number, Session>, total?: number): void {
    for (const [id, s] of Object.entries(sessions)) {
      const shardId = Number(id);
      const t = total ?? this.entries.get(shardId)?.total;
      this.update(shardId, t === undefined ? { sessionId: s.sessionId, sequence: s.sequence } : { ...s, total: t });
    }
  }

  /**
   * Follow a shard's or cluster's sessions: READY starts a new session, RESUMED confirms one, and (with
   * `sequence: 'dispatch'`) every dispatch raises the sequence, all read from one listener on the source's event
   * stream (`event` / `shardEvent`). The listener only touches memory; writes happen on the flush interval. Returns
   * a function that detaches.
   */
  attach(source: Shard | Cluster, options: AttachOptions = {}): () => void {
    if (this.closed) throw new ShardlineError('STORE_CLOSED', 'the session store is closed');
    const detach = followSessions(source, options, {
      known: (shardId) => this.entries.get(shardId),
      seed: (shardId, session, total) => {
        if (!this.entries.has(shardId)) this.entries.set(shardId, { ...session, total, startedAt: 0, dirty: false });
      },
      update: (shardId, patch) => this.update(shardId, patch),
    });
    this.startFlushing();
    const once = () => {
      if (this.detachers.delete(once)) detach();
    };
    this.detachers.add(once);
    return once;
  }

  /** Write every pending update now (one Lua call). Failed writes stay pending for the next flush. */
  flush(): Promise<void> {
    const run = this.flushing.then(() => this.flushOnce());
    this.flushing = run.catch(() => undefined);
    return run;
  }

  /** Delete the stored sessions of `shardIds` (e.g. after a non-resumable shutdown) and forget them. */
  async clear(shardIds: Iterable<number>): Promise<void> {
    const ids = [...shardIds];
    for (const id of ids) this.entries.delete(id);
    if (ids.length === 0) return;
    const redis = await this.connected();
    await withTimeout(redis.del(...ids.map((id) => this.sessionKey(id))), this.timeout, 'DEL');
  }

  // ---- leases ---------------------------------------------------------------------------------------------

  /**
   * Take ownership of a shard for `leaseTtl` (renewed automatically until released or closed). Throws a
   * {@link ShardlineError} `LEASE_HELD` naming the holder when another live process owns it — or, with `wait`,
   * waits up to that many ms for its lease to be released or to expire (e.g. after the owner crashed).
   */
  async acquireLease(shardId: number, options: { wait?: number; signal?: AbortSignal } = {}): Promise<void> {
    if (this.closed) throw new ShardlineError('STORE_CLOSED', 'the session store is closed');
    const redis = await this.connected();
    const deadline = Date.now() + (options.wait ?? 0);
    for (;;) {
      options.signal?.throwIfAborted();
      const r = (await TAKE_LEASE.run(redis, [this.leaseKey(shardId)], [this.ownerId, this.leaseTtl], this.timeout)) as [number, number?, string?];
      if (r[0] === 1) {
        this.held.set(shardId, Date.now());
        this.startRenewing();
        return;
      }
      const pttl = Math.max(0, Number(r[1] ?? 0));
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new ShardlineError(
          'LEASE_HELD',
          `shard ${shardId} is owned by another live process (${r[2]}); its lease ${this.leaseKey(shardId)} expires in ${pttl} ms unless renewed. ` +
            `Two processes must never run one shard: stop the other one, or pass { wait } to wait for a crashed owner's lease to expire.`,
        );
      }
      await sleep(this.clock, toVirtual(Math.min(left, Math.max(10, pttl + 5), 1000), this.clock.scale), options.signal);
    }
  }

  /** {@link RedisSessionStore.acquireLease} for several shards; on failure the leases taken here are released. */
  async acquireLeases(shardIds: Iterable<number>, options: { wait?: number; signal?: AbortSignal } = {}): Promise<void> {
    const taken: number[] = [];
    const end = Date.now() + (options.wait ?? 0);
    try {
      for (const id of shardIds) {
        const had = this.held.has(id);
        await this.acquireLease(id, { ...options, wait: Math.max(0, end - Date.now()) });
        if (!had) taken.push(id);
      }
    } catch (err) {
      await this.releaseLeases(taken).catch(() => undefined);
      throw err;
    }
  }

  /** Give up ownership of shards (only deletes leases this process still holds). */
  async releaseLeases(shardIds: Iterable<number>): Promise<void> {
    const ids = [...shardIds].filter((id) => this.held.delete(id));
    if (ids.length === 0) return;
    const redis = await this.connected();
    await RELEASE_LEASES.run(
      redis,
      ids.map((id) => this.leaseKey(id)),
      [this.ownerId],
      this.timeout,
    );
  }

  /**
   * Flush what is pending, release the leases (unless `releaseLeases: false`), stop every timer and close a Redis
   * client the store created. Idempotent.
   */
  async close(options: { releaseLeases?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    for (const d of [...this.detachers]) d();
    if (this.flushTimer) clearInterval(this.flushTimer);
    this.flushTimer = null;
    await this.flush().catch((err: Error) => this.fail(err));
    this.closed = true;
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = null;
    if (options.releaseLeases ?? true) await this.releaseLeases(this.held.keys()).catch((err: Error) => this.fail(err));
    this.held.clear();
    const handle = this.handle ? await this.handle.catch(() => null) : null;
    await closeRedis(handle);
    this.removeAllListeners();
  }

  // ---- internals ------------------------------------------------------------------------------------------

  private get timeout(): number {
    return this.opts.commandTimeout ?? 2000;
  }

  private get leaseTtl(): number {
    return this.opts.leaseTtl ?? 15_000;
  }

  private async connected(): Promise<Redis> {
    this.handle ??= openRedis(this.opts.redis, 'RedisSessionStore', () => {
      // reported by the operation that fails
    });
    const { redis } = await this.handle;
    await whenReady(redis, this.timeout * 2);
    return redis;
  }

  private startFlushing(): void {
    if (this.flushTimer || this.closed) return;
    this.flushTimer = setInterval(() => {
      this.flush().catch((err: Error) => this.fail(err));
    }, this.opts.flushInterval ?? 1000);
    this.flushTimer.unref();
  }

  private async flushOnce(): Promise<void> {
    const dirty: [number, Entry][] = [];
    for (const [id, e] of this.entries) if (e.dirty) dirty.push([id, e]);
    if (dirty.length === 0 || this.closed) return;
    const snapshot = dirty.map(([id, e]) => [id, { ...e }] as const);
    for (const [, e] of dirty) e.dirty = false;
    const keys: string[] = [];
    const args: (string | number)[] = [this.ownerId, this.opts.sessionTtl ?? 900_000];
    for (const [id, e] of snapshot) {
      keys.push(this.sessionKey(id), this.leaseKey(id));
      args.push(e.sessionId, e.sequence, e.resumeUrl, e.total, e.startedAt, this.held.has(id) ? '1' : '0');
    }
    let results: number[];
    try {
      const redis = await this.connected();
      results = (await WRITE_SESSIONS.run(redis, keys, args, this.timeout)) as number[];
    } catch (err) {
      for (const [id, e] of snapshot) {
        const cur = this.entries.get(id);
        if (cur && cur.sessionId === e.sessionId) cur.dirty = true;
      }
      throw new ShardlineError('SESSION_WRITE_FAILED', `writing ${snapshot.length} session(s) to Redis failed (retried on the next flush): ${(err as Error).message}`, { cause: err });
    }
    let written = 0;
    let stale = 0;
    let fenced = 0;
    results.forEach((r, i) => {
      const id = snapshot[i]![0];
      if (r >= 1) written++;
      else if (r === -2) stale++;
      else if (r === -1) {
        fenced++;
        if (this.held.delete(id)) this.guard(() => this.emit('leaseLost', { shardId: id, reason: 'taken' }));
      }
    });
    if (written + stale + fenced > 0) this.guard(() => this.emit('flush', { written, stale, fenced }));
  }

  private startRenewing(): void {
    if (this.renewTimer || this.closed) return;
    this.renewTimer = setInterval(() => void this.renew(), this.opts.renewInterval ?? Math.max(10, Math.floor(this.leaseTtl / 3)));
    this.renewTimer.unref();
  }

  private async renew(): Promise<void> {
    const ids = [...this.held.keys()];
    if (ids.length === 0) return;
    try {
      const redis = await this.connected();
      const r = (await RENEW_LEASES.run(
        redis,
        ids.map((id) => this.leaseKey(id)),
        [this.ownerId, this.leaseTtl],
        this.timeout,
      )) as number[];
      const now = Date.now();
      ids.forEach((id, i) => {
        if (!this.held.has(id)) return;
        if (r[i] === 1) this.held.set(id, now);
        else {
          this.held.delete(id);
          this.guard(() => this.emit('leaseLost', { shardId: id, reason: 'taken' }));
        }
      });
    } catch (err) {
      this.fail(new ShardlineError('LEASE_RENEW_FAILED', `renewing ${ids.length} shard lease(s) failed: ${(err as Error).message}`, { cause: err }));
      // Fail safe: once a lease may have expired, this process must assume another one owns the shard.
      const now = Date.now();
      for (const id of ids) {
        const last = this.held.get(id);
        if (last !== undefined && now - last >= this.leaseTtl) {
          this.held.delete(id);
          this.guard(() => this.emit('leaseLost', { shardId: id, reason: 'expired' }));
        }
      }
    }
  }

  private fail(err: Error): void {
    this.guard(() => this.emit('error', err));
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch {
      // a throwing listener must not break the store
    }
  }
}
