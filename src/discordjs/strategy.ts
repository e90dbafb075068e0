/**
 * {@link ShardlineStrategy}: an `@discordjs/ws` `IShardingStrategy` that runs the manager's shards on a shardline
 * {@link Cluster}, so discord.js 14 (or a bare `@discordjs/ws` 2.x manager) gets shardline's gateway handling.
 * @packageDocumentation
 */
import type { APIGatewayBotInfo } from 'discord-api-types/v10';
import { Cluster } from '../cluster.js';
import type { Clock } from '../clock.js';
import { ShardlineError } from '../errors.js';
import type { PresenceData, ShardEvent } from '../events.js';
import type { TransportCompression } from '../inflate.js';
import type { IdentifyQueue } from '../queue.js';
import { isSession, type Session } from '../session.js';
import type { ShardOptions } from '../shard.js';
import type { ShardState } from '../state.js';
import { detectShape, ManagerEmitter, managerToken, type DiscordjsManager, type DiscordjsSessionInfo, type EventShape } from './shapes.js';
import { ShardlineIdentifyThrottler } from './throttler.js';

/** Options of {@link ShardlineStrategy}. All optional: without them everything comes from the manager. */
export interface ShardlineStrategyOptions {
  /** Transport compression. Default: `'zlib-stream'` when the manager asks for compression, else none. */
  compression?: TransportCompression | false;
  /** Spread the shards over n worker threads (inflate and filter there). Default 0: this thread. */
  workers?: number;
  /**
   * Decides when each shard may IDENTIFY (e.g. a `RedisIdentifyQueue` shared by several processes). Default: the
   * manager's `buildIdentifyThrottler(manager)` (a {@link ShardlineIdentifyThrottler} is unwrapped to its queue).
   */
  identifyQueue?: IdentifyQueue;
  /**
   * Resume these shards (by id) instead of identifying. Only for managers that do not need READY (a bare
   * `@discordjs/ws` manager): a discord.js `Client` fills `client.user` and its guild cache from READY, which a
   * resumed session never sends, so it would never become ready. Default: the manager's `retrieveSessionInfo`.
   */
  sessions?: Record<number, Session>;
  /** Gateway URL. Default: the `url` of the manager's `/gateway/bot` answer (tests: the simulator's `sim.url`). */
  gatewayUrl?: string;
  /** Forward shardline's per-shard debug lines to the manager's `debug` event (one line per event: costly). Default false. */
  debug?: boolean;
  /** Event shape of the manager's events. Default `'auto'`: detected from the manager (1.x when unsure). */
  eventShape?: EventShape | 'auto';
  /** More options for each shard (e.g. timeouts); the manager's identify options are applied first. */
  shardOptions?: (id: number) => Partial<ShardOptions>;
  /** Time source (tests: `scaledClock(...)`, the simulator's clock). Default real time. */
  clock?: Clock;
  /**
   * Told about each shardline {@link Cluster} the strategy creates (on every spawn: `login()`, a shard count
   * change), before it connects: attach metrics, the status page, logs or a session store to it.
   *
   * @example
   * ```ts
   * new ShardlineStrategy(manager, { onCluster: (cluster) => void serveStatus(cluster, { port: 8080 }) })
   * ```
   */
  onCluster?: (cluster: Cluster) => void;
}

/** `WebSocketShardStatus` of `@discordjs/ws` (1.x and 2.x): Idle 0, Connecting 1, Resuming 2, Ready 3. */
export type DiscordjsShardStatus = 0 | 1 | 2 | 3;

const STATUS: Record<ShardState, DiscordjsShardStatus> = {
  idle: 0,
  closed: 0,
  fatal: 0,
  connecting: 1,
  identifying: 1,
  reconnecting: 1,
  resuming: 2,
  ready: 3,
};

/**
 * An `@discordjs/ws` `IShardingStrategy` on shardline: each shard of the manager is a shardline shard (synchronous
 * inflate, so events reach the manager once and in order; zombie detection, resume logic, rate limits, identify
 * lanes), and the manager gets the events it expects, in the shape of its own `@discordjs/ws` version (1.x for
 * discord.js 14, 2.x for a bare 2.x manager): `dispatch`, `ready` (before READY's dispatch), `resumed`, `hello`,
 * `closed`, `heartbeat`, `error`, and `debug`. The token, intents, shard ids and count, presence, large threshold,
 * identify properties, compression and identify throttler come from the manager's options; `/gateway/bot` comes
 * from `manager.fetchGatewayInformation()` (the manager's REST client).
 *
 * @example
 * ```ts
 * import { Client, GatewayIntentBits } from 'discord.js';
 * import { ShardlineStrategy } from 'shardline/discordjs';
 *
 * const client = new Client({
 *   intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages],
 *   ws: { buildStrategy: (manager) => new ShardlineStrategy(manager, { workers: 2 }) },
 * });
 * client.on('messageCreate', (m) => console.log(m.content));
 * await client.login(process.env.DISCORD_TOKEN);
 * ```
 */
export class ShardlineStrategy {
  /** The manager's event shape in use (`'v1'`: `@discordjs/ws` 1.x, as in discord.js 14; `'v2'`: 2.x). */
  readonly eventShape: EventShape;
  readonly #manager: DiscordjsManager;
  readonly #options: ShardlineStrategyOptions;
  readonly #emit: ManagerEmitter;
  #cluster: Cluster | null = null;
  #detach: (() => void) | null = null;
  /** Per shard: last sequence delivered, and whether this strategy delivered a READY for its session. */
  readonly #seq = new Map<number, number>();
  readonly #sawReady = new Set<number>();
  /** Per shard: the resume URL of its session (the status rows do not carry it). */
  readonly #lastUrl = new Map<number, string>();
  #total = 0;

  constructor(manager: DiscordjsManager, options: ShardlineStrategyOptions = {}) {
    if (manager === null || typeof manager !== 'object' || typeof manager.fetchGatewayInformation !== 'function') {
      throw new ShardlineError('INVALID_OPTION', 'ShardlineStrategy: pass the manager that buildStrategy(manager) receives');
    }
    validate(options);
    this.#manager = manager;
    this.#options = options;
    const detected = detectShape(manager);
    this.eventShape = options.eventShape && options.eventShape !== 'auto' ? options.eventShape : detected.shape;
    this.#emit = new ManagerEmitter(manager, this.eventShape);
    if (!detected.certain && (options.eventShape ?? 'auto') === 'auto') {
      this.#emit.debug(undefined, `ShardlineStrategy: could not tell the @discordjs/ws version of the manager; emitting 1.x-shaped events (set eventShape to choose)`);
    }
  }

  /** The shardline cluster running the shards (null before `spawn()` and after `destroy()`): status, metrics, logs. */
  get cluster(): Cluster | null {
    return this.#cluster;
  }

  /** Create the shards `shardIds` of the manager's shard count (not connected yet). Replaces any previous set. */
  async spawn(shardIds: number[]): Promise<void> {
    if (this.#cluster) await this.destroy({ reason: 'respawning' });
    const m = this.#manager;
    const token = managerToken(m);
    if (token === null) throw new ShardlineError('INVALID_TOKEN', 'the manager has no token: pass token to the WebSocketManager (or log the client in)');
    const [info, total] = await Promise.all([m.fetchGatewayInformation(), m.getShardCount()]);
    const o = this.#options;
    const identifyQueue = o.identifyQueue ? withLanes(o.identifyQueue, info) : await this.#throttlerQueue(info);
    const sessions = { ...(await this.#storedSessions(shardIds, total)), ...(o.sessions ?? {}) };
    const mo = m.options;
    const identify: Partial<ShardOptions> = {};
    if (mo.initialPresence) identify.presence = mo.initialPresence as PresenceData;
    if (typeof mo.largeThreshold === 'number') identify.largeThreshold = mo.largeThreshold;
    if (mo.identifyProperties) identify.properties = mo.identifyProperties;
    const cluster = new Cluster({
      token,
      intents: Number(mo.intents),
      shards: { ids: shardIds, total },
      gatewayUrl: o.gatewayUrl ?? info.url,
      compression: o.compression ?? (mo.compression === null || mo.compression === undefined ? false : 'zlib-stream'),
      identifyQueue,
      sessions,
      workers: o.workers ?? 0,
      clock: o.clock,
      shardOptions: (id) => ({ ...identify, ...(o.shardOptions?.(id) ?? {}) }),
    });
    this.#total = total;
    this.#seq.clear();
    this.#sawReady.clear();
    const onEvent = (e: ShardEvent): void => this.#onEvent(e);
    const onDebug = (e: { shardId: number; message: string }): void => void this.#emit.debug(e.shardId, e.message);
    cluster.on('shardEvent', onEvent);
    if (o.debug) cluster.on('debug', onDebug);
    // Errors reach the manager through the event stream; this keeps the cluster's own `error` from throwing.
    const onError = (): void => undefined;
    cluster.on('error', onError);
    this.#detach = () => {
      cluster.off('shardEvent', onEvent);
      cluster.off('debug', onDebug);
      cluster.off('error', onError);
    };
    this.#cluster = cluster;
    o.onCluster?.(cluster);
    this.#emit.debug(undefined, `ShardlineStrategy: ${shardIds.length} shard(s) of ${total} on shardline (${this.eventShape} events, ${o.workers ?? 0} worker thread(s))`);
  }

  /** Connect every spawned shard; resolves when all are ready (rejects with `ClusterConnectError` naming the failed ones). */
  async connect(): Promise<void> {
    const cluster = this.#cluster;
    if (!cluster) throw new ShardlineError('NOT_STARTED', 'ShardlineStrategy: no shards spawned (manager.connect() spawns them)');
    await cluster.connect();
  }

  /** Close every shard (their sessions end, as with the stock strategies) and release every socket, timer and thread. */
  async destroy(options: { code?: number; reason?: string } = {}): Promise<void> {
    const cluster = this.#cluster;
    if (!cluster) return;
    // Taken now: a spawn() while this close is in flight installs its own cluster and listeners.
    const detach = this.#detach;
    this.#cluster = null;
    this.#detach = null;
    const ids = [...cluster.ids];
    this.#emit.debug(undefined, `ShardlineStrategy: destroying ${ids.length} shard(s)${options.reason ? ` (${options.reason})` : ''}`);
    try {
      await cluster.close({ resumable: false });
    } finally {
      detach?.();
      for (const id of ids) this.#updateSession(id, null);
    }
  }

  /**
   * Send a gateway command on one shard (rate limited by shardline; queued while the shard reconnects). The promise
   * rejects when the command cannot be sent (too large, queue full, unknown shard); the failure is also emitted as
   * the manager's `error` event, so a caller that does not await (discord.js does not) never sees an unhandled
   * rejection.
   */
  send(shardId: number, payload: { op: number; d?: unknown }): Promise<void> {
    const cluster = this.#cluster;
    const sent = cluster
      ? cluster.send(shardId, { op: payload.op, d: payload.d } as Parameters<Cluster['send']>[1])
      : Promise.reject(new ShardlineError('NOT_STARTED', `shard ${shardId} is not running (spawn and connect first)`));
    sent.catch((err: Error) => this.#emit.error(shardId, err));
    return sent;
  }

  /**
   * Each shard's `WebSocketShardStatus` by id: a `Collection` of `@discordjs/collection` when it can be loaded, else a
   * `Map` (`Collection` extends `Map`).
   */
  async fetchStatus<T extends ReadonlyMap<number, number> = Map<number, DiscordjsShardStatus>>(): Promise<T> {
    const Ctor = await collectionClass();
    const out = new Ctor() as Map<number, DiscordjsShardStatus>;
    for (const s of this.#cluster?.status() ?? []) out.set(s.id, STATUS[s.state]);
    return out as unknown as T;
  }

  // ---- internals -------------------------------------------------------------------------------------

  #onEvent(e: ShardEvent): void {
    const em = this.#emit;
    let thrown: unknown = null;
    switch (e.kind) {
      case 'dispatch': {
        const ev = e.event;
        this.#seq.set(e.shardId, ev.sequence);
        thrown = em.dispatch(e.shardId, { op: 0, t: ev.type, s: ev.sequence, d: ev.data });
        break;
      }
      case 'ready':
        this.#sawReady.add(e.shardId);
        this.#seq.set(e.shardId, e.session.sequence);
        this.#updateSession(e.shardId, e.session);
        thrown = em.ready(e.shardId, e.data);
        break;
      case 'resumed':
        if (!this.#sawReady.has(e.shardId)) {
          em.debug(
            e.shardId,
            'resumed a stored session: no READY was sent on it, so a discord.js Client does not learn its user and guilds from this shard (it needs a fresh IDENTIFY or a gateway proxy)',
          );
        }
        this.#updateSession(e.shardId, e.session);
        thrown = em.resumed(e.shardId);
        break;
      case 'state':
        if (e.cause.kind === 'hello') thrown = em.hello(e.shardId);
        break;
      case 'disconnected': {
        const code = e.code ?? (e.action === 'resume' ? 4200 : 1000);
        if (e.action === 'resume') {
          const s = this.#cluster?.status().find((x) => x.id === e.shardId);
          if (s?.sessionId) this.#updateSession(e.shardId, { sessionId: s.sessionId, sequence: this.#seq.get(e.shardId) ?? s.sequence, resumeUrl: '' }, true);
        } else if (e.action !== 'closed') {
          this.#sawReady.delete(e.shardId);
          this.#updateSession(e.shardId, null);
        }
        thrown = em.closed(e.shardId, code);
        break;
      }
      case 'heartbeatAck':
        if (e.latency !== null) {
          const ackAt = Date.now();
          thrown = em.heartbeat(e.shardId, { ackAt, heartbeatAt: ackAt - e.latency, latency: e.latency });
        }
        break;
      case 'error':
        thrown = em.error(e.shardId, e.error);
        break;
      default:
        break;
    }
    if (thrown !== null) {
      const msg = thrown instanceof Error ? thrown.message : String(thrown);
      em.error(e.shardId, new ShardlineError('LISTENER_ERROR', `a manager listener of ${e.kind} threw: ${msg}`, { cause: thrown }));
    }
  }

  /** Keep the manager's session info (discord.js reads it on HELLO) without awaiting it on the event path. */
  #updateSession(shardId: number, session: Session | null, keepUrl = false): void {
    const update = this.#manager.options.updateSessionInfo;
    if (typeof update !== 'function') return;
    let info: DiscordjsSessionInfo | null = null;
    if (session) {
      const prev = keepUrl ? (this.#lastUrl.get(shardId) ?? session.resumeUrl) : session.resumeUrl;
      this.#lastUrl.set(shardId, prev);
      info = { sessionId: session.sessionId, sequence: session.sequence, resumeURL: prev, shardId, shardCount: this.#total };
    } else {
      this.#lastUrl.delete(shardId);
    }
    try {
      const r = update.call(this.#manager.options, shardId, info) as Promise<unknown> | undefined;
      if (r && typeof r.then === 'function') r.then(undefined, (err: Error) => this.#emit.error(shardId, err));
    } catch (err) {
      this.#emit.error(shardId, err as Error);
    }
  }
  /** Sessions the manager's `retrieveSessionInfo` holds for these shards (of this shard count). */
  async #storedSessions(ids: number[], total: number): Promise<Record<number, Session>> {
    const retrieve = this.#manager.options.retrieveSessionInfo;
    const out: Record<number, Session> = {};
    if (typeof retrieve !== 'function') return out;
    for (const id of ids) {
      const info = (await retrieve.call(this.#manager.options, id)) as Partial<DiscordjsSessionInfo> | null | undefined;
      if (!info || info.shardCount !== total) continue;
      const s = { sessionId: info.sessionId, sequence: info.sequence, resumeUrl: info.resumeURL };
      if (isSession(s)) out[id] = s;
    }
    return out;
  }

  /** The manager's identify throttler as a shardline queue (ours unwrapped), with the lanes of `/gateway/bot`. */
  async #throttlerQueue(info: APIGatewayBotInfo): Promise<IdentifyQueue & { maxConcurrency: number }> {
    const build = this.#manager.options.buildIdentifyThrottler;
    const maxConcurrency = Math.max(1, info.session_start_limit?.max_concurrency ?? 1);
    if (typeof build !== 'function') {
      throw new ShardlineError('INVALID_OPTION', 'the manager has no buildIdentifyThrottler: pass identifyQueue in the ShardlineStrategy options');
    }
    const throttler = (await build.call(this.#manager.options, this.#manager as never)) as { waitForIdentify?: unknown } | null;
    if (throttler instanceof ShardlineIdentifyThrottler) {
      const q = throttler.queue as IdentifyQueue & { maxConcurrency?: unknown };
      const lanes = typeof q.maxConcurrency === 'number' ? q.maxConcurrency : maxConcurrency;
      return { maxConcurrency: lanes, acquire: (id, signal) => q.acquire(id, signal) };
    }
    if (!throttler || typeof throttler.waitForIdentify !== 'function') {
      throw new ShardlineError('INVALID_OPTION', 'buildIdentifyThrottler(manager) did not return an identify throttler (an object with waitForIdentify(shardId, signal))');
    }
    const wait = throttler.waitForIdentify as (shardId: number, signal: AbortSignal) => Promise<void>;
    return { maxConcurrency, acquire: (id, signal) => wait.call(throttler, id, signal ?? new AbortController().signal) };
  }

  /** A summary without the token. */
  toJSON(): { eventShape: EventShape; shards: number[]; total: number } {
    return { eventShape: this.eventShape, shards: [...(this.#cluster?.ids ?? [])], total: this.#total };
  }
}

/** `queue` as is when it declares its lanes (`maxConcurrency`), else with those of `/gateway/bot` (start-up pacing). */
function withLanes(queue: IdentifyQueue, info: APIGatewayBotInfo): IdentifyQueue {
  if (typeof (queue as { maxConcurrency?: unknown }).maxConcurrency === 'number') return queue;
  const maxConcurrency = Math.max(1, info.session_start_limit?.max_concurrency ?? 1);
  return { maxConcurrency, acquire: (id, signal) => queue.acquire(id, signal) } as IdentifyQueue;
}

function validate(o: ShardlineStrategyOptions): void {
  if (o === null || typeof o !== 'object') throw new ShardlineError('INVALID_OPTION', 'ShardlineStrategy options must be an object');
  if (o.compression !== undefined && o.compression !== false && o.compression !== 'zlib-stream' && o.compression !== 'zstd-stream') {
    throw new ShardlineError('INVALID_OPTION', `compression must be 'zlib-stream', 'zstd-stream' or false, got ${String(o.compression)}`);
  }
  if (o.workers !== undefined && (!Number.isInteger(o.workers) || o.workers < 0)) {
    throw new ShardlineError('INVALID_OPTION', `workers must be an integer >= 0, got ${String(o.workers)}`);
  }
  if (o.identifyQueue !== undefined && typeof o.identifyQueue?.acquire !== 'function') {
    throw new ShardlineError('INVALID_OPTION', 'identifyQueue must be an IdentifyQueue (an object with acquire(shardId, signal))');
  }
  if (o.gatewayUrl !== undefined && (typeof o.gatewayUrl !== 'string' || !/^wss?:\/\//.test(o.gatewayUrl))) {
    throw new ShardlineError('INVALID_OPTION', `gatewayUrl must be a ws:// or wss:// URL, got ${String(o.gatewayUrl).slice(0, 200)}`);
  }
  if (o.onCluster !== undefined && typeof o.onCluster !== 'function') throw new ShardlineError('INVALID_OPTION', 'onCluster must be a function');
  if (o.eventShape !== undefined && o.eventShape !== 'auto' && o.eventShape !== 'v1' && o.eventShape !== 'v2') {
    throw new ShardlineError('INVALID_OPTION', `eventShape must be 'auto', 'v1' or 'v2', got ${String(o.eventShape)}`);
  }
}

type MapCtor = new () => Map<number, number>;
let collection: Promise<MapCtor> | null = null;

/** `Collection` of `@discordjs/collection` when it can be loaded (discord.js brings it), else `Map`. */
function collectionClass(): Promise<MapCtor> {
  const specifier = '@discordjs/collection';
  collection ??= import(specifier).then(
    (mod: { Collection?: unknown }) => (typeof mod.Collection === 'function' && mod.Collection.prototype instanceof Map ? (mod.Collection as MapCtor) : Map),
    () => Map,
  );
  return collection;
}
