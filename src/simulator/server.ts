/**
 * {@link GatewaySimulator}: a real `ws` gateway plus a Discord-shaped REST API (src/simulator/rest.ts) on one loopback port.
 * @packageDocumentation
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { scaledClock, systemClock, type Clock } from '../clock.js';
import { SimConnection } from './connection.js';
import { SimulatorCore } from './core.js';
import { generateGuildIds, isSnowflake, shardForGuild } from './fixtures.js';
import { IdentifyBuckets, SessionStartBudget } from './limits.js';
import { applyOptions, resolveOptions } from './options.js';
import type { SimSession } from './session.js';
import type { SimRest, SimRestRequest } from './rest.js';
import { createRest, readRestBody, writeRest } from './rest-http.js';
import { prng, startTraffic } from './traffic.js';
import type { GatewaySimulatorOptions, ReceivedPayload, ResolvedOptions, SimConnectionInfo, SimRuntimeOptions, SimSessionInfo, SimStats, SimulatorEvents, TrafficOptions } from './types.js';

/** Target of {@link GatewaySimulator.dispatch}. */
export type DispatchTarget = number | { guildId: string } | 'all';

/**
 * A local Discord gateway for offline tests: HELLO, heartbeats, IDENTIFY/READY/GUILD_CREATE, RESUME with replay,
 * every documented close code, rate limits, identify buckets, zlib-stream / zstd-stream transport compression,
 * and a fault-injection API. All timers run on an injectable {@link Clock}.
 *
 * Connect to {@link GatewaySimulator.url} with `?v=10&encoding=json[&compress=zlib-stream]`; READY's
 * `resume_gateway_url` is `url + '/resume'`, so tests can tell a resume connection from a fresh one.
 *
 * @example
 * ```ts
 * const sim = await GatewaySimulator.start({ guilds: 8, timeScale: 0.01 });
 * sim.on('identify', (ev) => console.log('shard', ev.shardId, 'identified'));
 * // ... point your client at sim.url / sim.apiUrl with token 'sim-token' ...
 * sim.dispatch({ guildId: sim.guildIds[0]! }, 'MESSAGE_CREATE', { content: 'hi', guild_id: sim.guildIds[0] });
 * sim.terminate(0); // abrupt disconnect: the client should RESUME
 * await sim.stop();
 * ```
 */
export class GatewaySimulator extends EventEmitter<SimulatorEvents> {
  /** The simulator's clock (virtual time). */
  readonly clock: Clock;
  /** Guild ids of the simulated bot. */
  readonly guildIds: readonly string[];
  private readonly opts: ResolvedOptions;
  private readonly core: SimulatorCore;
  private readonly wss: WebSocketServer;
  private readonly sockets = new Set<Socket>();
  private readonly traffic = new Set<() => void>();
  private readonly random: () => number;
  private nextConnectionId = 1;
  private host = '127.0.0.1';
  private listenPort = 0;
  private stopping: Promise<void> | null = null;
  private readonly rest: SimRest;

  private constructor(
    options: GatewaySimulatorOptions,
    private readonly server: Server,
  ) {
    super();
    this.opts = resolveOptions(options);
    this.clock = options.clock ?? (options.timeScale !== undefined ? scaledClock(options.timeScale) : systemClock);
    this.guildIds = resolveGuilds(options.guilds, this.opts.shards);
    this.random = prng(this.opts.seed);
    this.core = new SimulatorCore(this.opts, this.clock, this.guildIds, this, () => this.resumeUrl);
    this.rest = createRest(this, options.rest, this.opts, this.core);
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 1 << 20, perMessageDeflate: false, clientTracking: true });
    server.on('request', (req, res) => this.onHttp(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(req, socket, head));
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  /** Start a simulator listening on `host:port` (default 127.0.0.1, a free port). */
  static async start(options: GatewaySimulatorOptions = {}): Promise<GatewaySimulator> {
    const server = createServer();
    const sim = new GatewaySimulator(options, server);
    const host = options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    sim.host = host;
    sim.listenPort = typeof addr === 'object' && addr ? addr.port : 0;
    return sim;
  }

  /** `ws://host:port` — append `?v=10&encoding=json[&compress=...]`. */
  get url(): string {
    const h = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `ws://${h}:${this.listenPort}`;
  }

  /** READY's `resume_gateway_url`: the same server, path `/resume`. */
  get resumeUrl(): string {
    return `${this.url}/resume`;
  }

  /** `http://host:port/api/v10`. */
  get apiUrl(): string {
    return `${this.apiBaseUrl}/v10`;
  }

  /** `http://host:port/api`: the API root without a version (discord.js `rest.api`, discordeno `proxy.baseUrl`). */
  get apiBaseUrl(): string {
    return `${this.url.replace(/^ws/, 'http')}/api`;
  }

  get port(): number {
    return this.listenPort;
  }

  /**
   * What to spread into a `Cluster`'s options to run it against this simulator: the first accepted token, the
   * gateway and REST URLs (so nothing is asked of discord.com) and the simulator's clock.
   *
   * @example
   * ```ts
   * const cluster = new Cluster({ ...sim.clusterOptions(), intents: Intents.Guilds });
   * ```
   */
  clusterOptions(): { token: string; gatewayUrl: string; apiUrl: string; clock: Clock } {
    return { token: this.opts.tokens[0] ?? 'sim-token', gatewayUrl: this.url, apiUrl: this.apiUrl, clock: this.clock };
  }

  /**
   * What to spread into a `Shard`'s options to run it against this simulator: the first accepted token, the
   * gateway URL and the simulator's clock. `new Shard({ ...sim.shardOptions(), intents: Intents.Guilds })`.
   */
  shardOptions(): { token: string; gatewayUrl: string; clock: Clock } {
    return { token: this.opts.tokens[0] ?? 'sim-token', gatewayUrl: this.url, clock: this.clock };
  }

  // ------------------------------------------------------------------ inspection

  /** Live connections, optionally of one shard. */
  connections(shardId?: number): SimConnectionInfo[] {
    const out: SimConnectionInfo[] = [];
    for (const c of this.core.connections.values()) if (shardId === undefined || c.shardId === shardId) out.push(c.info());
    return out;
  }

  /** Sessions (expired ones too, bounded). */
  sessions(): SimSessionInfo[] {
    return this.core.sessions.all().map((s) => s.info());
  }

  /** A snapshot of the counters. */
  get stats(): SimStats {
    const s = this.core.stats;
    return { ...s, closesByCode: { ...s.closesByCode }, sessionStartRemaining: this.core.budget.remaining };
  }

  /** Client payloads received (last 10 000, tokens redacted), optionally of one shard. */
  received(shardId?: number): ReceivedPayload[] {
    return this.core.received(shardId);
  }

  /**
   * REST calls received (the last 10 000, oldest first; no token in them): what a bot sent. Each call is also
   * emitted as a `rest` event.
   *
   * @example Assert that a bot answered `!ping` over REST
   * ```ts
   * // discord.js: new Client({ intents, rest: { api: sim.apiBaseUrl } }) logs in with a token the simulator accepts
   * sim.dispatch({ guildId }, 'MESSAGE_CREATE', { ...userMessage, content: '!ping' });
   * // ... once the bot replied:
   * const post = sim.restRequests().find((r) => r.route === '/channels/:channel_id/messages');
   * assert.equal((post?.body as { content: string }).content, 'pong');
   * ```
   */
  restRequests(): SimRestRequest[] {
    return this.rest.requests();
  }

  /** Guild ids routed to `shardId` when the bot runs `total` shards. */
  guildsForShard(shardId: number, total: number): string[] {
    return [...this.core.guildsForShard(shardId, total)];
  }

  // ------------------------------------------------------------------ scripting

  /**
   * Send dispatch `t` to a shard (every live session with that shard id), to the shard owning `guildId`
   * (routed per session's shard count), or to every session. Events are buffered for replay even while the
   * socket is down; sessions whose intents exclude the event get nothing (§5.1, unless `filterIntents: false`).
   * An INTERACTION_CREATE with an `id` and `token` is also remembered by the REST API: its callback (type 4 / 5)
   * creates the response message (MESSAGE_CREATE), and its token works for `/webhooks/{app}/{token}` follow-ups and
   * `…/messages/@original`.
   * @returns the sequence numbers assigned (one per receiving session).
   */
  dispatch(target: DispatchTarget, t: string, d: unknown): number[] {
    if (typeof t !== 'string' || t.length === 0) throw new TypeError('dispatch: t must be a non-empty string');
    if (t === 'INTERACTION_CREATE') this.rest.noteInteraction(d);
    const out: number[] = [];
    for (const s of this.targetSessions(target)) {
      const seq = this.core.deliver(s, t, d);
      if (seq !== null) out.push(seq);
    }
    return out;
  }

  /** Stream fixture events at `eventsPerSecond` (virtual). Returns a stop function. */
  startTraffic(opts: TrafficOptions): () => void {
    const stop = startTraffic(this.core, opts, this.random, (s) => this.traffic.add(s));
    return () => {
      stop();
      this.traffic.delete(stop);
    };
  }

  // ------------------------------------------------------------------ faults

  /** Clean close of the shard's newest live connection (default code 4000). */
  closeConnection(shardId: number, code = 4000, reason = ''): boolean {
    return this.core.newestConnection(shardId)?.close(code, reason) ?? false;
  }

  /** Destroy the shard's newest live socket without a close frame (client sees 1006). */
  terminate(shardId: number): boolean {
    return this.core.newestConnection(shardId)?.terminate() ?? false;
  }

  /** Stop / resume ACKing heartbeats on a shard's newest connection, or on every connection and new ones ('all'). */
  setAcks(shardId: number | 'all', enabled: boolean): boolean {
    if (shardId === 'all') {
      this.opts.ackHeartbeats = enabled;
      for (const c of this.core.connections.values()) c.acking = enabled;
      return true;
    }
    const c = this.core.newestConnection(shardId);
    if (!c) return false;
    c.acking = enabled;
    return true;
  }

  /** Send op 1 (the client must heartbeat immediately). */
  requestHeartbeat(shardId: number): boolean {
    return this.withConnection(shardId, (c) => c.sendControl(1, null));
  }

  /** Send op 7 RECONNECT; the server closes the socket `reconnectCloseDelay` later unless the client did. */
  sendReconnect(shardId: number): boolean {
    return this.withConnection(shardId, (c) => c.sendReconnect());
  }

  /** Send op 9 with `d: resumable`. With `false` the session is really invalidated. */
  invalidateSession(shardId: number, resumable: boolean): boolean {
    return this.withConnection(shardId, (c) => {
      this.core.invalidSession(c, resumable);
      if (!resumable) {
        if (c.session) this.core.expireSession(c.session);
        c.identified = false;
        c.resumed = false;
      }
    });
  }

  /** Replace the shard's next outbound message with garbage bytes. */
  corruptNextFrame(shardId: number): boolean {
    return this.withConnection(shardId, (c) => c.corruptNextFrame());
  }

  /** Send raw data, through the connection's compressor unless `compress: false`. */
  sendRaw(shardId: number, data: string | Buffer, opts: { compress?: boolean } = {}): boolean {
    return this.withConnection(shardId, (c) => c.sendRaw(data, opts.compress ?? true));
  }

  /** Expire a session (by id, or every session of a shard). A connected session's socket is closed with 4009. */
  expireSession(sessionIdOrShardId: string | number): boolean {
    const list =
      typeof sessionIdOrShardId === 'string' ? [this.core.sessions.get(sessionIdOrShardId)].filter((s): s is SimSession => s !== undefined && !s.expired) : this.core.sessions.live(sessionIdOrShardId);
    for (const s of list) {
      const conn = [...this.core.connections.values()].find((c) => c.session === s && c.open);
      this.core.expireSession(s);
      if (conn) {
        conn.keepSessionOnClose = false;
        conn.close(4009, 'Session timed out.');
      }
    }
    return list.length > 0;
  }

  /** Change options at run time (connection-level settings apply to new connections). */
  setOptions(partial: SimRuntimeOptions): void {
    applyOptions(this.opts, partial);
    if (partial.rest !== undefined) this.rest.configure(partial.rest);
    if (partial.identifyWindow !== undefined) this.core.identifyBuckets = new IdentifyBuckets(this.clock, this.opts.identifyWindow);
    if (partial.sessionStartLimit !== undefined) {
      const l = this.opts.sessionStartLimit;
      this.core.budget = new SessionStartBudget(this.clock, l.total, l.remaining, l.resetAfter);
    }
  }

  /** Close every connection (1001), release every timer, socket and listener. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    for (const stop of this.traffic) stop();
    this.traffic.clear();
    this.core.dispose();
    const closed: Promise<void>[] = [];
    for (const ws of this.wss.clients) {
      closed.push(new Promise((resolve) => ws.once('close', () => resolve())));
    }
    for (const c of [...this.core.connections.values()]) c.close(1001, 'Simulator stopping.');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closed), new Promise<void>((r) => (timer = setTimeout(r, 250)))]);
    clearTimeout(timer);
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    for (const s of this.sockets) s.destroy();
    await serverClosed;
    this.core.dispose();
    this.server.removeAllListeners();
  }

  // ------------------------------------------------------------------ internals

  private withConnection(shardId: number, fn: (c: SimConnection) => void): boolean {
    const c = this.core.newestConnection(shardId);
    if (!c) return false;
    fn(c);
    return true;
  }

  private targetSessions(target: DispatchTarget): SimSession[] {
    const live = this.core.sessions.live();
    if (target === 'all') return live;
    if (typeof target === 'number') return live.filter((s) => s.shardId === target);
    if (!isSnowflake(target.guildId)) throw new TypeError('dispatch: guildId must be a snowflake string');
    return live.filter((s) => shardForGuild(target.guildId, s.total) === s.shardId);
  }

  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => {});
    if (this.stopping) return void socket.destroy();
    const parsed = new URL(req.url ?? '/', 'ws://sim.invalid');
    const path = parsed.pathname;
    const resumeUrlUsed = path === '/resume' || path.startsWith('/resume/');
    if (path !== '/' && path !== '' && !resumeUrlUsed) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const query: Record<string, string> = {};
    for (const [k, v] of parsed.searchParams) query[k] = v;
    this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      const conn = new SimConnection(this.nextConnectionId++, ws, { path, query, resumeUrlUsed }, this.core);
      this.core.connections.set(conn.id, conn);
      this.core.stats.connections++;
      this.core.emit('connection', conn.info());
      conn.start();
    });
  }

  private onHttp(req: IncomingMessage, res: ServerResponse): void {
    readRestBody(req, (body) => {
      if (body === null) return writeRest(res, { status: 413, headers: {}, body: { message: 'Request entity too large', code: 40005 } });
      writeRest(res, this.rest.handle({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body }));
    });
  }
}

function resolveGuilds(guilds: number | string[] | undefined, shards: number): string[] {
  if (Array.isArray(guilds)) {
    for (const g of guilds) if (!isSnowflake(g)) throw new RangeError(`guild id ${String(g)} is not a snowflake`);
    return [...new Set(guilds)];
  }
  const n = guilds ?? 4;
  if (!(n >= 0) || !Number.isInteger(n)) throw new RangeError(`guilds must be a non-negative integer, got ${n}`);
  return generateGuildIds(n, shards);
}
