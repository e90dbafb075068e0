/**
 * Shared state of a simulator and the session protocol: IDENTIFY, READY + GUILD_CREATE streaming, RESUME and
 * replay, dispatch delivery with intent filtering, and what a closed socket does to its session.
 * @packageDocumentation
 */
import type { EventEmitter } from 'node:events';
import type { Clock } from '../clock.js';
import type { ConnectionHost, SimConnection } from './connection.js';
import { dispatchAllowed, I, intentsValid, needsContentStrip, PRIVILEGED_INTENTS, stripMessageContent } from './events.js';
import { BOT_APPLICATION, BOT_USER, buildGuildCreate, shardForGuild } from './fixtures.js';
import { IdentifyBuckets, KeyedCooldown, SessionStartBudget } from './limits.js';
import { handleRequest } from './requests.js';
import { SimSession, SessionStore } from './session.js';
import type { ReceivedPayload, ResolvedOptions, SimStats, SimulatorEvents } from './types.js';

/** Server close codes after which the session is gone (not resumable). */
const NON_RESUMABLE = new Set([4001, 4004, 4007, 4010, 4011, 4012, 4013, 4014]);
const RECEIVED_LOG_SIZE = 10_000;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

/** Simulator state + the session protocol. One per {@link GatewaySimulator}. */
export class SimulatorCore implements ConnectionHost {
  readonly sessions = new SessionStore();
  readonly connections = new Map<number, SimConnection>();
  readonly stats: SimStats;
  identifyBuckets: IdentifyBuckets;
  budget: SessionStartBudget;
  readonly memberCooldown: KeyedCooldown;
  private readonly revokedTokens = new Set<string>();
  private readonly log: ReceivedPayload[] = [];
  private logHead = 0;
  private readonly shardGuilds = new Map<string, string[]>();
  private readonly guildIndex: Map<string, number>;

  constructor(
    readonly opts: ResolvedOptions,
    readonly clock: Clock,
    readonly guildIds: readonly string[],
    private readonly events: EventEmitter<SimulatorEvents>,
    private readonly resumeUrl: () => string,
  ) {
    this.guildIndex = new Map(guildIds.map((id, i) => [id, i]));
    this.identifyBuckets = new IdentifyBuckets(clock, opts.identifyWindow);
    const l = opts.sessionStartLimit;
    this.budget = new SessionStartBudget(clock, l.total, l.remaining, l.resetAfter);
    this.memberCooldown = new KeyedCooldown(clock, 30_000);
    this.stats = {
      connections: 0,
      identifies: 0,
      resumes: 0,
      resumeFailures: 0,
      invalidSessions: 0,
      closesByCode: {},
      dispatches: 0,
      payloadsReceived: 0,
      sessionStartRemaining: l.remaining,
      heartbeats: 0,
      bytesSent: 0,
      messagesSent: 0,
    };
  }

  /** Emit without letting a throwing listener break the protocol. */
  emit<K extends keyof SimulatorEvents>(name: K, ...args: SimulatorEvents[K]): void {
    try {
      (this.events.emit as (n: K, ...a: SimulatorEvents[K]) => boolean)(name, ...args);
    } catch (err) {
      if (name !== 'error' && this.events.listenerCount('error') > 0) this.emit('error', err as Error);
    }
  }

  onError(err: Error): void {
    if (this.events.listenerCount('error') > 0) this.emit('error', err);
  }

  /** Guild ids routed to `shardId` of `total`. */
  guildsForShard(shardId: number, total: number): string[] {
    const key = `${shardId}/${total}`;
    let list = this.shardGuilds.get(key);
    if (!list) {
      list = this.guildIds.filter((g) => shardForGuild(g, total) === shardId);
      this.shardGuilds.set(key, list);
    }
    return list;
  }

  /** True when the bot is in `guildId` and the guild is on the session's shard. */
  sessionHasGuild(session: SimSession, guildId: string): boolean {
    return this.guildIndex.has(guildId) && shardForGuild(guildId, session.total) === session.shardId;
  }

  /** Newest live connection of a shard. */
  newestConnection(shardId: number): SimConnection | undefined {
    let best: SimConnection | undefined;
    for (const c of this.connections.values()) if (c.shardId === shardId && c.open && (!best || c.id > best.id)) best = c;
    return best;
  }

  // ------------------------------------------------------------------ delivery

  /** Dispatch `d` to a session, applying intent filtering. Returns the seq or null when filtered out. */
  deliver(session: SimSession, t: string, d: unknown): number | null {
    if (session.expired) return null;
    let data = d;
    if (this.opts.filterIntents) {
      if (!dispatchAllowed(t, d, session.intents)) return null;
      if (needsContentStrip(t, session.intents)) data = stripMessageContent(d);
    }
    this.stats.dispatches++;
    return session.push(t, JSON.stringify(data ?? null));
  }

  /** Like {@link deliver} for a guild event whose `d` is already JSON text (traffic fast path). */
  deliverJson(session: SimSession, t: string, dJson: string): number | null {
    if (session.expired) return null;
    if (this.opts.filterIntents) {
      if (!dispatchAllowed(t, undefined, session.intents, true)) return null;
      if (needsContentStrip(t, session.intents)) return this.deliver(session, t, JSON.parse(dJson));
    }
    this.stats.dispatches++;
    return session.push(t, dJson);
  }

  // ------------------------------------------------------------------ ConnectionHost

  onPayload(conn: SimConnection, op: number, d: unknown): void {
    const safe = isObj(d) && 'token' in d ? { ...d, token: '[redacted]' } : d;
    let shardId = conn.shardId;
    if (op === 2 && shardId === null && isObj(d)) shardId = Array.isArray(d.shard) && isInt(d.shard[0]) ? d.shard[0] : 0;
    const entry: ReceivedPayload = { op, d: safe, at: this.clock.now(), connectionId: conn.id, shardId };
    if (this.log.length < RECEIVED_LOG_SIZE) this.log.push(entry);
    else {
      this.log[this.logHead] = entry;
      this.logHead = (this.logHead + 1) % RECEIVED_LOG_SIZE;
    }
    this.emit('payload', { connectionId: conn.id, shardId, op, d: safe });
  }

  /** Logged client payloads, oldest first. */
  received(shardId?: number): ReceivedPayload[] {
    const ordered = this.log.slice(this.logHead).concat(this.log.slice(0, this.logHead));
    return shardId === undefined ? ordered : ordered.filter((p) => p.shardId === shardId);
  }

  onHeartbeat(conn: SimConnection, d: unknown): void {
    this.emit('heartbeat', { shardId: conn.shardId, d, connectionId: conn.id });
  }

  onRequest(conn: SimConnection, op: number, d: unknown): void {
    handleRequest(this, conn, op, d);
  }

  /** The token is accepted (and was not reset); a leading `Bot ` is allowed. */
  tokenOk(token: unknown): token is string {
    if (typeof token !== 'string') return false;
    const t = token.startsWith('Bot ') ? token.slice(4) : token;
    return this.opts.tokens.includes(t) && !this.revokedTokens.has(t);
  }

  onIdentify(conn: SimConnection, d: unknown): void {
    if (!isObj(d) || typeof d.token !== 'string') return void conn.close(4001, 'Invalid IDENTIFY payload.');
    if (!this.tokenOk(d.token)) return void conn.close(4004, 'Authentication failed.');
    if (!isObj(d.properties)) return void conn.close(4001, 'Invalid IDENTIFY payload: properties.');
    if (d.large_threshold !== undefined && !(isInt(d.large_threshold) && d.large_threshold >= 50 && d.large_threshold <= 250))
      return void conn.close(4001, 'Invalid IDENTIFY payload: large_threshold.');
    // `compress` of any type is tolerated as Discord does (Oceanic sends its transport setting, e.g. 'zlib-stream');
    // only `true` turns payload compression on.
    let shardId = 0;
    let total = 1;
    if (d.shard !== undefined) {
      const s = d.shard;
      if (!Array.isArray(s) || s.length !== 2 || !isInt(s[0]) || !isInt(s[1]) || s[1] < 1 || s[0] < 0 || s[0] >= s[1]) return void conn.close(4010, 'Invalid shard.');
      [shardId, total] = s as [number, number];
    }
    const multiple = this.opts.largeBotShardMultiple;
    if (multiple !== undefined && multiple > 0 && total % multiple !== 0) return void conn.close(4010, 'Invalid shard.');
    if (this.guildsForShard(shardId, total).length > this.opts.maxGuildsPerShard) return void conn.close(4011, 'Sharding required.');
    if (!intentsValid(d.intents)) return void conn.close(4013, 'Invalid intent(s).');
    const intents = d.intents;
    if ((intents & PRIVILEGED_INTENTS & ~this.opts.applicationIntents) !== 0) return void conn.close(4014, 'Disallowed intent(s).');

    conn.shardId = shardId;
    conn.total = total;
    const { token: _token, ...payload } = d;
    const token = d.token.startsWith('Bot ') ? d.token.slice(4) : d.token;
    const event = { shardId, total, intents, connectionId: conn.id, payload };
    if (!this.identifyBuckets.tryAcquire(shardId % Math.max(1, this.opts.maxConcurrency))) {
      this.invalidSession(conn, false);
      this.emit('identify', { ...event, accepted: false, reason: 'identify bucket' });
      return;
    }
    if (!this.budget.tryConsume()) {
      this.stats.sessionStartRemaining = 0;
      this.emit('identify', { ...event, accepted: false, reason: 'session start limit' });
      if (this.opts.onSessionStartExhausted === 'reset-token') return this.revokeToken(token);
      return this.invalidSession(conn, false);
    }
    this.stats.sessionStartRemaining = this.budget.remaining;
    conn.identified = true;
    conn.payloadCompression = d.compress === true;
    this.stats.identifies++;
    this.emit('identify', { ...event, accepted: true });
    const ready = (): void => this.startSession(conn, shardId, total, intents, token, payload, d.shard !== undefined);
    if (this.opts.readyDelay > 0) conn.later(this.opts.readyDelay, ready);
    else ready();
  }

  /** Send op 9 and count it. */
  invalidSession(conn: SimConnection, resumable: boolean): void {
    this.stats.invalidSessions++;
    conn.sendControl(9, resumable);
  }

  /** [SIM] session start budget exhausted in 'reset-token' mode: the token is reset, every session closed with 4004. */
  private revokeToken(token: string): void {
    this.revokedTokens.add(token);
    for (const c of this.connections.values()) {
      if (c.session?.token === token || !c.authenticated) c.close(4004, 'Authentication failed (token reset).');
    }
    for (const s of this.sessions.live()) if (s.token === token) s.expire();
  }

  private startSession(conn: SimConnection, shardId: number, total: number, intents: number, token: string, identify: Obj, shardSent: boolean): void {
    if (!conn.open) return;
    const session = new SimSession(this.clock, shardId, total, intents, token, this.opts.replayBufferSize, identify);
    this.sessions.add(session);
    conn.session = session;
    session.attach(conn);
    const guilds = this.guildsForShard(shardId, total);
    const ready: Obj = {
      v: conn.version ?? 10,
      user_settings: {},
      user: BOT_USER,
      guilds: guilds.map((id) => ({ id, unavailable: true })),
      guild_join_requests: [],
      relationships: [],
      private_channels: [],
      presences: [],
      session_id: session.id,
      session_type: 'normal',
      resume_gateway_url: this.resumeUrl(),
      ...(shardSent ? { shard: [shardId, total] } : {}),
      application: BOT_APPLICATION,
      geo_ordered_rtc_regions: ['sim-local'],
      _trace: ['["gateway-sim",{"micros":0}]'],
    };
    this.stats.dispatches++;
    session.push('READY', JSON.stringify(ready));
    const unavailable = new Set(this.opts.unavailableGuilds);
    const delay = this.opts.guildCreateDelay;
    const presences = (intents & I.GUILD_PRESENCES) !== 0;
    guilds.forEach((gid, i) => {
      const send = (): void => {
        if (unavailable.has(gid)) this.deliver(session, 'GUILD_DELETE', { id: gid, unavailable: true });
        else this.deliver(session, 'GUILD_CREATE', buildGuildCreate(gid, this.guildIndex.get(gid) ?? i, { memberCount: this.opts.guildMemberCount, presences }));
      };
      if (delay > 0) session.later(delay * (i + 1), send);
      else send();
    });
    // After the synchronous GUILD_CREATE burst, so listeners' dispatches come after it.
    this.emit('ready', { shardId, sessionId: session.id, connectionId: conn.id });
  }

  onResume(conn: SimConnection, d: unknown): void {
    if (!isObj(d) || typeof d.token !== 'string' || typeof d.session_id !== 'string' || !(d.seq === null || (isInt(d.seq) && d.seq >= 0))) return void conn.close(4001, 'Invalid RESUME payload.');
    if (!this.tokenOk(d.token)) return void conn.close(4004, 'Authentication failed.');
    const token = d.token.startsWith('Bot ') ? d.token.slice(4) : d.token;
    const seq = d.seq ?? 0;
    const session = this.sessions.get(d.session_id);
    const fail = (reason: string): void => {
      this.stats.resumeFailures++;
      this.invalidSession(conn, false);
      this.emit('resume', { sessionId: d.session_id as string, seq, shardId: session?.shardId ?? null, ok: false, connectionId: conn.id, reason });
    };
    if (!session || session.token !== token) return fail('unknown session');
    if (session.expired) return fail('session expired');
    if (seq > session.seq) {
      this.stats.resumeFailures++;
      this.expireSession(session);
      this.emit('resume', { sessionId: session.id, seq, shardId: session.shardId, ok: false, connectionId: conn.id, reason: 'invalid seq' });
      conn.close(4007, 'Invalid seq.');
      return;
    }
    const replay = session.replayAfter(seq);
    if (replay === null) return fail('events after seq are no longer buffered');
    const previous = session.sink as SimConnection | null;
    conn.resumed = true;
    conn.payloadCompression = session.identify.compress === true;
    conn.session = session;
    conn.shardId = session.shardId;
    conn.total = session.total;
    for (const json of replay) conn.sendJson(json);
    session.attach(conn);
    if (previous && previous !== conn && previous.open) {
      previous.keepSessionOnClose = true;
      previous.close(4000, 'Session resumed on another connection.');
    }
    this.stats.dispatches++;
    session.push('RESUMED', '{"_trace":["[\\"gateway-sim\\",{\\"micros\\":0}]"]}');
    this.stats.resumes++;
    this.emit('resume', { sessionId: session.id, seq, shardId: session.shardId, ok: true, connectionId: conn.id });
  }

  onClosed(conn: SimConnection, code: number, reason: string, byClient: boolean): void {
    this.connections.delete(conn.id);
    const key = String(code);
    this.stats.closesByCode[key] = (this.stats.closesByCode[key] ?? 0) + 1;
    const s = conn.session;
    if (s && s.sink === conn) {
      const keep = byClient ? code !== 1000 && code !== 1001 : (conn.keepSessionOnClose ?? !NON_RESUMABLE.has(code));
      if (keep) s.detach(conn, this.opts.sessionTimeout, () => this.expireSession(s));
      else this.expireSession(s);
    }
    this.emit('close', { connectionId: conn.id, shardId: conn.shardId, code, byClient, reason });
  }

  /** End a session for good. */
  expireSession(s: SimSession): void {
    s.expire();
  }

  /** Release every timer and session. */
  dispose(): void {
    this.sessions.clear();
  }
}
