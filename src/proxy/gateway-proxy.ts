/**
 * {@link GatewayProxy}: holds the real gateway sessions (a {@link Cluster}) and speaks Discord's gateway protocol to
 * any number of bot processes, so a bot restart costs nothing upstream and loses nothing.
 * @packageDocumentation
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';
import type { WebSocket } from 'ws';
import { systemClock, type Clock } from '../clock.js';
import { Cluster } from '../cluster.js';
import { DEFAULT_API_URL, type ClusterOptions } from '../cluster-options.js';
import { TypedEmitter } from '../emitter.js';
import { redact, ShardlineError } from '../errors.js';
import type { RedisConnection } from '../distributed/redis-client.js';
import type { ShardEvent } from '../events.js';
import type { HandlerLogEvent, HandlerMessageEvent } from '../handler/define.js';
import { ClusterTracker } from '../cluster-tracker.js';
import type { Session } from '../session.js';
import type { StatusSection } from '../status-page/sections.js';
import { CACHE_EVENTS, GuildCache } from './cache.js';
import { ClientConnection, type ClientHub } from './client-conn.js';
import { ClientSession, type SessionState } from './client-session.js';
import type { ClientCompression } from './compress.js';
import { ContentStripper, stripsContent } from './filter.js';
import { ProxyHandler } from './handler.js';
import { proxySettings, type GatewayProxyOptions, type ProxySettings } from './options.js';
import { ProxyStore } from './persist.js';
import type { StoredSession } from './persist-replay.js';
import { ProxyServer } from './server.js';
import { resumePos } from './resume-map.js';
import { proxyStatusSection } from './status.js';
import { ShardStream } from './stream.js';
import { expandRef, guildCreates, readyData } from './synth.js';

/** Counters and sizes of a running proxy (also on its metrics and status page). */
export interface ProxyStats {
  /**
   * Per upstream shard: clients attached (`bursts` of them still receiving their READY burst: GUILD_CREATEs and the
   * catch-up from the ring), replay ring depth and bytes, guilds, commands forwarded.
   */
  shards: { id: number; clients: number; bursts: number; ringDepth: number; ringBytes: number; guilds: number; commands: number; state: string }[];
  /** Guilds in the cache. */
  guilds: number;
  /** Bytes the guild cache holds: compressed guilds, their pending changes, open guilds' JSON (docs/PROXY.md). */
  cacheBytes: number;
  /** Connected clients. */
  clients: number;
  /** Disconnected client sessions kept for RESUME. */
  detachedSessions: number;
  /** Client IDENTIFYs answered since start. */
  identifies: number;
  /** Client RESUMEs replayed since start. */
  resumes: number;
  /** Client RESUMEs refused with op 9 (unknown session, older than the ring). */
  resumesRefused: number;
  /** Client commands (op 3, 4, 8, 31, 43) forwarded upstream since start. */
  forwardedCommands: number;
  /** REST requests forwarded upstream since start. */
  restRequests: number;
  /** Clients closed (4000) because the replay ring moved past them while their READY burst was written. */
  burstOverflows: number;
  /** Upstream dispatches the `handler` module finished (or failed on, reported) since start; 0 without one. */
  handled: number;
}

/** Events of a {@link GatewayProxy}. */
export interface GatewayProxyEventMap {
  /** A problem the proxy recovered from or cannot fix itself (Redis down, a command the upstream refused, ...). */
  error: [error: Error];
  /** A client identified (`resumed: false`) or resumed on a shard. */
  client: [event: { shardId: number; sessionId: string; resumed: boolean }];
  /** A value the `handler` module posted (`ctx.post`); `worker` is always null (it runs in the proxy's thread). */
  handlerMessage: [event: HandlerMessageEvent];
  /** A line the `handler` module logged (`ctx.log`). */
  handlerLog: [event: HandlerLogEvent];
}

interface Detached {
  state: SessionState;
  conn: ClientConnection | null;
  timer: ReturnType<typeof setTimeout> | null;
}

interface PendingRequest {
  conn: ClientConnection;
  nonce: unknown;
}

const MAX_PENDING_NONCES = 10_000;

/**
 * A gateway proxy. Upstream it runs a {@link Cluster} (identify queue, resume, compression, workers as usual);
 * on its own port it serves Discord's gateway websocket (`zlib-stream`, `zstd-stream` or no transport
 * compression) and `GET /api/v10/gateway[/bot]`, and forwards every other `/api/` request to the upstream API.
 * A client that IDENTIFYs gets a synthesized READY and GUILD_CREATEs from the cache, then the live dispatches of
 * its shard with its own sequence numbers, filtered by its intents; a client that RESUMEs gets what it missed
 * from the shard's replay ring. With `handler`, the bot's handler module runs here too, on every upstream dispatch
 * (see {@link GatewayProxyOptions.handler}).
 *
 * @example
 * ```ts
 * import { GatewayProxy } from 'shardline/proxy';
 * import { Intents } from 'shardline';
 * const proxy = await GatewayProxy.start({ token: process.env.DISCORD_TOKEN!, intents: Intents.Guilds | Intents.GuildMessages, port: 7878 });
 * console.log(proxy.url, proxy.apiUrl); // point the bot's gateway and REST base here
 * // ...
 * await proxy.close();
 * ```
 */
export class GatewayProxy extends TypedEmitter<GatewayProxyEventMap> {
  private upstream: Cluster | null = null;
  /**
   * The upstream cluster's tracker (what its status page and metrics read), held from before `connect()` so that a
   * page attached after `start()` still shows the shards' READY / guilds loaded, and fed the raw-mode dispatches,
   * which bypass the `shardEvent` stream.
   */
  private tracker: ClusterTracker | null = null;
  readonly #tokenHash: Buffer;
  /** The bot token: only here (never in an enumerable field, a log line or an error). */
  readonly #token: string;
  private readonly settings: ProxySettings;
  private readonly cache = new GuildCache();
  private readonly streams = new Map<number, ShardStream>();
  private readonly sessions = new Map<string, Detached>();
  private readonly pending = new Map<string, PendingRequest>();
  /** Message content stripped once per dispatch for every client without MessageContent. */
  private readonly stripper = new ContentStripper();
  /** Prefix of this process's op 8 nonces (a restarted proxy tells the old process's answers from its own). */
  private readonly noncePrefix = `sl:${randomBytes(4).toString('hex')}:`;
  private server: ProxyServer | null = null;
  private store: ProxyStore | null = null;
  private user = '{}';
  private application = '{}';
  private readonly raw: boolean;
  /** The bot's handler module, run here on every upstream dispatch (`handler`); null without one. */
  private readonly handler: ProxyHandler | null;
  /**
   * With a `handler` and Redis, per shard after a restart: the upstream resumed from where the handler had stopped,
   * before the stored sequence; the dispatches up to `upTo` of that session are already in the cache, the ring and
   * the clients' streams, so they go to the handler only.
   */
  private readonly replayed = new Map<number, { sessionId: string; upTo: number }>();
  private readonly apiUrl_: string;
  private readonly clock: Clock;
  private readonly intents: number;
  private readonly clusterOptions: Omit<ClusterOptions, 'token'>;
  private nonces = 0;
  private tags = 0;
  private closing: Promise<void> | null = null;
  private readonly counters = { identifies: 0, resumes: 0, resumesRefused: 0, forwardedCommands: 0, restRequests: 0, burstOverflows: 0 };

  private constructor(options: GatewayProxyOptions) {
    super();
    this.settings = proxySettings(options);
    const token = String(options.token ?? '')
      .trim()
      .replace(/^Bot\s+/i, '');
    this.#tokenHash = createHash('sha256').update(token).digest();
    this.#token = token;
    this.raw = (options.workers ?? 0) === 0;
    this.apiUrl_ = options.apiUrl ?? DEFAULT_API_URL;
    this.clock = options.clock ?? systemClock;
    this.intents = options.intents;
    const {
      port: _p,
      host: _h,
      replaySize: _r,
      heartbeatInterval: _hb,
      resumeTimeout: _rt,
      maxDetachedSessions: _m,
      redis: _redis,
      redisKey: _rk,
      persistInterval: _pi,
      guildsTimeout: _gt,
      token: _token,
      // the handler runs here, never in the upstream cluster (its handler mode would keep the dispatches from us)
      handler: _handler,
      handlerErrors: _handlerErrors,
      ...clusterOptions
    } = options;
    this.clusterOptions = clusterOptions;
    const url = this.settings.handler;
    this.handler =
      url === null
        ? null
        : new ProxyHandler(url, {
            cluster: () => this.cluster,
            message: (e) => this.emitGuarded('handlerMessage', e),
            log: (e) => this.emitGuarded('handlerLog', e), // the runner removed the token (redact below)
            report: (err) => this.report(err),
            redact: (text) => redact(text, this.#token),
          });
  }

  /** Create the upstream cluster (resuming `sessions`). */
  private createCluster(sessions: Record<number, Session>): Cluster {
    const o = this.clusterOptions;
    const user = o.shardOptions;
    const cluster = new Cluster({
      ...o,
      token: this.#token,
      sessions: { ...sessions, ...(o.sessions ?? {}) },
      shardOptions: (id) => ({
        ...(user?.(id) ?? {}),
        ...(this.raw ? { forwardRaw: (type: string, seq: number, json: string) => this.onRaw(id, type, seq, json) } : {}),
      }),
    });
    cluster.on('shardEvent', (e) => this.onShardEvent(e));
    cluster.on('error', (err) => this.report(err));
    this.tracker = ClusterTracker.acquire(cluster);
    return cluster;
  }

  /**
   * Start the upstream cluster, wait until every shard is READY and its guilds have arrived (at most
   * `guildsTimeout`), then listen for clients.
   *
   * `prepare` is called with the proxy before anything starts: the place to add listeners for what happens while it
   * starts — the `handler`'s posts and log lines about READY and the GUILD_CREATEs, `error` reports.
   *
   * @example
   * ```ts
   * const proxy = await GatewayProxy.start({ token, intents, handler: './handler.js' }, (p) => {
   *   p.on('handlerMessage', ({ shardId, value }) => console.log(shardId, value));
   * });
   * ```
   * @throws ClusterConnectError when shards fail for good; ShardlineError for bad options or a Redis failure;
   * HandlerError `HANDLER_LOAD_FAILED` when the `handler` module cannot be loaded or its `init` fails.
   */
  static async start(options: GatewayProxyOptions, prepare?: (proxy: GatewayProxy) => void): Promise<GatewayProxy> {
    const proxy = new GatewayProxy(options);
    try {
      prepare?.(proxy);
      await proxy.open(options);
    } catch (err) {
      await proxy.close().catch(() => undefined);
      throw err;
    }
    return proxy;
  }

  /** The upstream cluster (for its status, metrics, presence updates). */
  get cluster(): Cluster {
    if (this.upstream === null) throw new ShardlineError('PROXY_NOT_STARTED', 'the proxy has no upstream cluster yet: use the proxy GatewayProxy.start() resolved with');
    return this.upstream;
  }

  /** `ws://host:port`: the gateway URL for clients. */
  get url(): string {
    return this.server?.url ?? '';
  }

  /** `http://host:port/api/v10`: the REST base for clients. */
  get apiUrl(): string {
    return this.server?.apiUrl ?? '';
  }

  /** Counters and sizes (clients per shard, ring depth, cache bytes, forwarded commands, ...), for metrics and status. */
  stats(): ProxyStats {
    const states = new Map((this.upstream?.status() ?? []).map((s) => [s.id, s.state as string]));
    const shards = [...this.streams.values()].map((s) => ({
      id: s.id,
      clients: s.clients.size,
      bursts: [...s.clients].filter((c) => c.session.pulling).length,
      ringDepth: s.ring.size,
      ringBytes: s.ring.bytes(),
      guilds: s.guilds.size,
      commands: s.commands,
      state: states.get(s.id) ?? 'unknown',
    }));
    let clients = 0;
    for (const s of this.streams.values()) clients += s.clients.size;
    let detached = 0;
    for (const d of this.sessions.values()) if (d.conn === null) detached++;
    return { shards, guilds: this.cache.size, cacheBytes: this.cache.bytes(), clients, detachedSessions: detached, ...this.counters, handled: this.handler?.handled ?? 0 };
  }

  /**
   * The proxy's section of the status page: cards for cache guilds and bytes, connected clients, detached sessions,
   * client identifies/resumes and forwarded commands; a row per upstream shard with clients attached, replay ring
   * depth and bytes, guilds and commands forwarded.
   *
   * @example
   * ```ts
   * import { serveStatus } from 'shardline';
   * const status = await serveStatus(proxy.cluster, { port: 8080, title: 'proxy', sections: () => [proxy.statusSection()] });
   * ```
   */
  statusSection(): StatusSection {
    return proxyStatusSection(this.stats());
  }

  /** Bytes the cache holds for one guild, or for all (see docs/PROXY.md for the memory this takes). */
  cacheBytes(guildId?: string): number {
    return this.cache.bytes(guildId);
  }

  /**
   * Stop: close every client (1001), persist (with `redis`) and close the upstream resumably when persisting —
   * a restarted proxy resumes those sessions — or for good otherwise. Releases every socket and timer.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  /** A summary without secrets. */
  [inspect.custom](): string {
    return `GatewayProxy ${inspect({ url: this.url, shards: this.streams.size, guilds: this.cache.size })}`;
  }

  /** A summary without secrets, for `JSON.stringify`. */
  toJSON(): { url: string; apiUrl: string; shards: number; guilds: number } {
    return { url: this.url, apiUrl: this.apiUrl, shards: this.streams.size, guilds: this.cache.size };
  }

  // ---- start-up / shut-down --------------------------------------------------------------------------

  private async open(options: GatewayProxyOptions): Promise<void> {
    const s = this.settings;
    // The handler module is loaded and its init() ran before anything opens: a broken one costs no IDENTIFY.
    await this.handler?.ready();
    let sessions: Record<number, Session> = {};
    if (options.redis !== undefined) {
      this.store = await ProxyStore.open(options.redis as RedisConnection, options.redisKey ?? 'default', s.persistInterval, (err) => this.report(err));
      const saved = await this.store.load();
      for (const [id, g] of Object.entries(saved.guilds)) this.cache.restore(id, g);
      if (saved.user) this.setUser(saved.user);
      if (saved.application) this.application = saved.application;
      for (const [id, ids] of Object.entries(saved.shardGuilds)) for (const g of ids) this.stream(Number(id)).guilds.add(g);
      sessions = { ...saved.sessions };
      for (const [id, session] of Object.entries(saved.sessions)) {
        this.stream(Number(id)).session = { ...session };
        // the handler had not finished everything received: resume upstream from where it stopped (what it misses
        // is replayed by the gateway and given to the handler only; see onDispatch)
        const h = this.handler ? saved.handled[Number(id)] : undefined;
        if (h && h.sessionId === session.sessionId && h.sequence < session.sequence) {
          sessions[Number(id)] = { ...session, sequence: h.sequence };
          this.replayed.set(Number(id), { sessionId: session.sessionId, upTo: session.sequence });
        }
      }
      // the rings before the upstream RESUME replays into them, so positions continue where the store left them
      for (const [id, r] of saved.replay.rings) this.stream(id).restoreRing(r.newest, r.entries);
      for (const s of saved.replay.sessions) this.restoreSession(s);
      this.trimDetached();
    }
    this.upstream = this.createCluster(sessions);
    await this.cluster.connect();
    const ids = new Set(this.cluster.ids);
    for (const id of ids) this.stream(id);
    for (const id of this.streams.keys()) if (!ids.has(id)) this.streams.delete(id);
    for (const [id, d] of this.sessions) if (!ids.has(d.state.shardId)) this.dropSession(id);
    await this.waitGuilds();
    this.server = await ProxyServer.listen(s.host, s.port, {
      gateway: (bot, auth) => this.gatewayInfo(bot, auth),
      upstreamOrigin: new URL(new URL(this.apiUrl_).origin),
      client: (ws, compression) => this.accept(ws, compression),
      rest: () => this.counters.restRequests++,
    });
    this.store?.start(() => this.persistState());
  }

  private async waitGuilds(): Promise<void> {
    const clock = this.clock;
    const end = clock.now() + this.settings.guildsTimeout;
    const missing = (): boolean => {
      for (const st of this.streams.values()) for (const g of st.guilds) if (!this.cache.has(g) && !this.cache.isUnavailable(g)) return true;
      return false;
    };
    while (missing() && clock.now() < end) await new Promise((r) => setTimeout(r, 5));
  }

  private async doClose(): Promise<void> {
    for (const st of this.streams.values()) for (const c of [...st.clients]) c.close(1001, 'Proxy shutting down.');
    for (const d of this.sessions.values()) if (d.timer) clearTimeout(d.timer);
    await this.server?.close();
    if (this.upstream === null) {
      this.sessions.clear();
      await this.handler?.close();
      await this.store?.close(null);
      return;
    }
    this.tracker?.release();
    this.tracker = null;
    if (this.store) {
      const sessions = await this.cluster.close({ resumable: true });
      for (const [id, s] of Object.entries(sessions)) {
        const st = this.streams.get(Number(id));
        if (st) st.session = s;
      }
      // every dispatch read is handled before the sessions are written: a restart neither loses nor repeats one
      await this.handler?.close();
      // the client sessions (all detached now) are written too: clients RESUME on the restarted proxy
      await this.store.close(this.persistState());
    } else {
      await this.cluster.close();
      await this.handler?.close();
    }
    this.sessions.clear();
  }

  // ---- upstream --------------------------------------------------------------------------------------

  private stream(id: number): ShardStream {
    let st = this.streams.get(id);
    if (st === undefined) this.streams.set(id, (st = new ShardStream(id, this.settings.replaySize)));
    return st;
  }

  private onShardEvent(e: ShardEvent): void {
    if (e.kind === 'ready') {
      const st = this.stream(e.shardId);
      this.setUser(JSON.stringify(e.data.user));
      this.application = JSON.stringify(e.data.application);
      st.guilds.clear();
      for (const g of e.data.guilds) st.guilds.add(g.id);
      st.session = { ...e.session };
      this.store?.markMeta();
      // a new upstream session: ring entries from now on are not what a restored session's client was sent
      for (const d of this.sessions.values()) if (d.state.shardId === e.shardId) d.state.ahead = false;
      return;
    }
    if (e.kind === 'resumed') {
      const st = this.stream(e.shardId);
      const before = st.session;
      st.session = { ...e.session };
      // resumed behind what the cache holds (for the handler): the stored sequence stays that of the cache
      if (before?.sessionId === e.session.sessionId && before.sequence > st.session.sequence) st.session.sequence = before.sequence;
      return;
    }
    if (e.kind !== 'dispatch') return;
    const { type, sequence, data } = e.event;
    if (type === 'READY' || type === 'RESUMED') {
      // not for clients (each gets its own), but the handler sees them as a cluster's handler does
      this.handler?.dispatch(e.shardId, type, sequence, '', data, this.streams.get(e.shardId)?.session?.sessionId ?? null);
      return;
    }
    if (this.raw && type !== 'GUILD_MEMBERS_CHUNK') return;
    this.onDispatch(e.shardId, type, sequence, JSON.stringify(data), data);
  }

  /** A dispatch in raw mode: the whole payload's JSON text, `d` spliced out without parsing. */
  private onRaw(shardId: number, type: string, seq: number, json: string): void {
    this.tracker?.countDispatch(shardId, type);
    // Runs inside the shard's socket handler: a payload that does not parse is reported and skipped, never thrown.
    try {
      const d = spliceD(json);
      if (d === null) {
        const parsed = JSON.parse(json) as { d: unknown };
        this.onDispatch(shardId, type, seq, JSON.stringify(parsed.d), parsed.d);
      } else this.onDispatch(shardId, type, seq, d, undefined);
    } catch (err) {
      this.report(new ShardlineError('PROXY_DISPATCH_FAILED', `shard ${shardId}: dispatch ${type} seq ${seq} could not be handled and was not forwarded: ${(err as Error).message}`, { cause: err }));
    }
  }

  private onDispatch(shardId: number, type: string, seq: number, d: string, parsed: unknown): void {
    const st = this.stream(shardId);
    const replayed = this.replayed.get(shardId);
    if (replayed !== undefined) {
      if (st.session?.sessionId === replayed.sessionId && seq <= replayed.upTo) {
        // replayed for the handler only: the cache, the ring and the clients have it since before the restart
        if (type !== 'GUILD_MEMBERS_CHUNK' && type !== 'RATE_LIMITED') this.handler?.dispatch(shardId, type, seq, d, parsed, replayed.sessionId);
        return;
      }
      this.replayed.delete(shardId);
    }
    if (st.session !== null) st.session.sequence = seq;
    if (type === 'GUILD_MEMBERS_CHUNK' || type === 'RATE_LIMITED') {
      const data = (parsed ?? JSON.parse(d)) as Record<string, unknown>;
      if (type === 'GUILD_MEMBERS_CHUNK') this.applyCache(st, type, data, undefined);
      if (this.answer(type, data)) return;
      d = JSON.stringify(data);
      parsed = data;
    } else if (CACHE_EVENTS.has(type)) {
      parsed ??= JSON.parse(d);
      this.applyCache(st, type, parsed, d);
    }
    const pos = st.record(type, d, parsed, this.cache);
    for (const c of st.clients) {
      c.session.deliver(type, d, pos);
      c.drain();
    }
    // after the cache and the clients: the handler never delays them (only its back-pressure can)
    this.handler?.dispatch(shardId, type, seq, d, parsed, st.session?.sessionId ?? null);
  }

  private applyCache(st: ShardStream, type: string, data: unknown, text: string | undefined): void {
    this.cache.apply(type, data, text);
    const o = data as { id?: unknown; guild_id?: unknown; unavailable?: unknown };
    if (type === 'GUILD_CREATE' && typeof o.id === 'string') st.guilds.add(o.id);
    else if (type === 'GUILD_DELETE' && typeof o.id === 'string' && o.unavailable !== true) st.guilds.delete(o.id);
    const gid = typeof o.guild_id === 'string' ? o.guild_id : typeof o.id === 'string' && type.startsWith('GUILD_') ? o.id : null;
    if (gid !== null) this.store?.markGuild(gid);
    if (type === 'GUILD_CREATE' || type === 'GUILD_DELETE') this.store?.markMeta();
  }

  /** Route an answer to a client's op 8 (by the proxy's nonce) to that client only. True when routed. */
  private answer(type: string, data: Record<string, unknown>): boolean {
    const meta = type === 'RATE_LIMITED' ? (data.meta as Record<string, unknown> | undefined) : data;
    const nonce = meta?.nonce;
    if (typeof nonce !== 'string') return false;
    const p = this.pending.get(nonce);
    // A proxy nonce no longer pending (dropped, or sent by the process before a restart and replayed upstream):
    // the answer was some client's own, never part of the shared stream.
    if (p === undefined) return nonce.startsWith('sl:');
    const last = type === 'RATE_LIMITED' || (data.chunk_index as number) >= (data.chunk_count as number) - 1;
    if (last) this.pending.delete(nonce);
    if (p.nonce === undefined) delete meta!.nonce;
    else meta!.nonce = p.nonce;
    p.conn.session.private(type, JSON.stringify(data));
    p.conn.drain();
    this.store?.soon(); // a private dispatch shifts the client's sequence numbers: persist it before a crash can lose it
    return true;
  }

  // ---- clients ---------------------------------------------------------------------------------------

  private checkToken(token: string): boolean {
    return timingSafeEqual(createHash('sha256').update(token).digest(), this.#tokenHash);
  }

  private gatewayInfo(bot: boolean, auth: string | undefined): unknown | null {
    const url = this.url;
    if (!bot) return { url };
    const token = (auth ?? '').replace(/^Bot\s+/i, '');
    if (!this.checkToken(token)) return null;
    const total = this.cluster.total ?? 1;
    return { url, shards: total, session_start_limit: { total: 1_000_000, remaining: 1_000_000, reset_after: 0, max_concurrency: Math.max(16, total) } };
  }

  private accept(ws: WebSocket, compression: ClientCompression | null): void {
    const total = this.cluster.total ?? 1;
    const ids = new Set(this.cluster.ids);
    const session = new ClientSession({
      heartbeatInterval: this.settings.heartbeatInterval,
      heartbeatSlack: Math.max(5000, this.settings.heartbeatInterval / 4),
      checkToken: (t) => this.checkToken(t),
      total,
      hasShard: (id) => ids.has(id),
      upstreamIntents: this.intents,
      now: Date.now,
      stripContent: (type, d) => this.stripper.d(type, d),
      expand: (type, ref, intents) => expandRef(this.cache, type, ref, intents),
    });
    new ClientConnection(ws, compression, session, this.hub, `c${(this.tags++).toString(36)}`);
  }

  private readonly hub: ClientHub = {
    identify: (conn, shardId, intents) => {
      const st = this.stream(shardId);
      const id = randomBytes(16).toString('hex');
      // READY's guild list, fixed: a guild joined during the burst arrives by the catch-up from the ring (once)
      const guilds = [...st.guilds];
      const ready = readyData({ user: this.user, application: this.application, sessionId: id, resumeUrl: this.url, shard: [shardId, this.cluster.total ?? 1] }, guilds);
      // GUILD_CREATEs are built one at a time as the client's socket drains, then the ring is caught up from here
      conn.session.start(id, ready, guildCreates(this.cache, guilds, intents), st.ring.newest, st.ring);
      const state = conn.session.session!;
      this.sessions.set(id, { state, conn, timer: null });
      st.clients.add(conn);
      this.counters.identifies++;
      this.emit('client', { shardId, sessionId: id, resumed: false });
    },
    resume: (conn, sessionId, seq) => {
      const d = this.sessions.get(sessionId);
      const st = d ? this.streams.get(d.state.shardId) : undefined;
      const pos = d && st ? resumePos(d.state, seq, st.ring) : null;
      const replay = st && pos !== null ? st.ring.after(pos) : null;
      if (!d || !st || pos === null || replay === null) {
        this.counters.resumesRefused++;
        conn.session.invalidate();
        return;
      }
      if (d.timer) clearTimeout(d.timer);
      d.timer = null;
      const previous = d.conn;
      d.conn = conn;
      if (previous !== null && previous !== conn) {
        st.clients.delete(previous);
        previous.close(4000, 'Session resumed on another connection.');
      }
      conn.session.resume(d.state, pos, replay);
      st.clients.add(conn);
      this.store?.soon();
      this.counters.resumes++;
      this.emit('client', { shardId: st.id, sessionId, resumed: true });
    },
    command: (conn, op, d) => {
      const state = conn.session.session;
      if (state === null) return;
      const st = this.stream(state.shardId);
      let payload = d;
      if (op === 8) {
        const nonce = d.nonce;
        if (nonce !== undefined && (typeof nonce !== 'string' || Buffer.byteLength(nonce) > 32)) return conn.close(4001, 'Invalid nonce.');
        const ours = `${this.noncePrefix}${(this.nonces++).toString(36)}`;
        this.pending.set(ours, { conn, nonce });
        if (this.pending.size > MAX_PENDING_NONCES) this.pending.delete(this.pending.keys().next().value!);
        payload = { ...d, nonce: ours };
      }
      st.commands++;
      this.counters.forwardedCommands++;
      this.cluster
        .send(state.shardId, { op, d: payload } as never)
        .catch((err: Error) => this.report(new ShardlineError('PROXY_COMMAND_FAILED', `shard ${state.shardId}: op ${op} from a client was not sent: ${err.message}`, { cause: err })));
    },
    closed: (conn) => {
      if (conn.session.overflowed) this.counters.burstOverflows++;
      const state = conn.session.session;
      if (state === null) return;
      this.streams.get(state.shardId)?.clients.delete(conn);
      const d = this.sessions.get(state.id);
      if (d === undefined || d.conn !== conn) return;
      d.conn = null;
      if (this.closing) return;
      this.expire(state.id, d);
      this.trimDetached();
    },
  };

  /** Forget a detached session after `resumeTimeout`. */
  private expire(id: string, d: Detached): void {
    d.timer = setTimeout(() => this.sessions.delete(id), this.settings.resumeTimeout);
    d.timer.unref();
  }

  private dropSession(id: string): void {
    const d = this.sessions.get(id);
    if (d?.timer) clearTimeout(d.timer);
    this.sessions.delete(id);
  }

  /** A client session read back from Redis: detached, resumable for `resumeTimeout` from now. */
  private restoreSession(s: StoredSession): void {
    const state: SessionState = { ...s, stripContent: stripsContent(s.intents, this.intents) };
    const d: Detached = { state, conn: null, timer: null };
    this.sessions.set(s.id, d);
    this.expire(s.id, d);
  }

  private trimDetached(): void {
    let detached = 0;
    for (const d of this.sessions.values()) if (d.conn === null) detached++;
    for (const [id, d] of this.sessions) {
      if (detached <= this.settings.maxDetachedSessions) break;
      if (d.conn !== null) continue;
      if (d.timer) clearTimeout(d.timer);
      this.sessions.delete(id);
      detached--;
    }
  }

  private persistState(): Parameters<ProxyStore['flush']>[0] {
    const sessions: Record<number, { sessionId: string; sequence: number; resumeUrl: string }> = {};
    const shardGuilds: Record<number, string[]> = {};
    for (const st of this.streams.values()) {
      if (st.session) sessions[st.id] = { ...st.session };
      shardGuilds[st.id] = [...st.guilds];
    }
    const clients = [...this.sessions.values()].map((d) => ({ state: d.state, attached: d.conn !== null }));
    const rings = [...this.streams.values()].map((st) => [st.id, st.ring] as const);
    const handled = this.handler?.positions();
    return { sessions, shardGuilds, user: this.user, application: this.application, cache: this.cache, replay: { rings, sessions: clients }, ...(handled ? { handled } : {}) };
  }

  /** The bot user (JSON text from a READY or Redis), and its id for the MessageContent exceptions. */
  private setUser(json: string): void {
    this.user = json;
    let id: unknown;
    try {
      id = (JSON.parse(json) as { id?: unknown } | null)?.id;
    } catch {
      id = null;
    }
    this.stripper.botId = typeof id === 'string' ? id : null;
  }

  private report(err: Error): void {
    if (this.listenerCount('error') !== 0) this.emit('error', err);
  }

  /** Emit a handler event; a throwing listener is reported, never thrown into the handler's lane. */
  private emitGuarded<K extends 'handlerMessage' | 'handlerLog'>(event: K, ...args: GatewayProxyEventMap[K]): void {
    try {
      this.emit(event, ...args);
    } catch (err) {
      this.report(new ShardlineError('LISTENER_ERROR', `a ${event} listener threw: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
    }
  }
}

/**
 * `d` of a dispatch payload as JSON text, cut out of the payload without parsing, when the payload has Discord's
 * layout (`{"t":"…","s":…,"op":0,"d":…}`, `d` last); null otherwise (the caller parses).
 */
export function spliceD(json: string): string | null {
  if (!json.startsWith('{"t":"')) return null;
  const at = json.indexOf(',"d":');
  if (at < 0 || json.charCodeAt(json.length - 1) !== 125) return null;
  // Only scalars before "d" (no nested value), and "d" is the last key: the header is `"t":"…","s":n,"op":0`.
  const head = json.slice(1, at);
  if (head.includes('{') || head.includes('[') || !/^"t":"[A-Z0-9_]+","s":\d+,"op":0$/.test(head)) return null;
  return json.slice(at + 5, -1);
}
