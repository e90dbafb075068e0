/**
 * The shard's protocol as a sans-IO state machine: inputs in, effects out. No sockets, no timers, no token.
 *
 * Inputs are method calls (`connect()`, `message(conn, bytes)`, `closed(conn, code)`, `timer(name)`,
 * `identifyGranted(conn)`, `command(id, op, d)`, ...); each one may append {@link Effect}s to
 * {@link ShardCore.effects}, which the driver (`src/shard.ts`) applies in order: open or close a socket, write a
 * payload, (re)arm a named timer at an absolute virtual time, ask the identify queue for a turn, settle a
 * command, emit an event. Every protocol decision lives here: the close-code table (through `decide()`),
 * heartbeats and zombie detection, resume vs identify, send priority and the 120 / 60 s limit, payload size
 * checks, the event filter and sequence bookkeeping. Time comes from the `now` function given to the
 * constructor, randomness from `random`: with a virtual clock and a seeded random every run is reproducible.
 *
 * Beside it, each with one concern the core calls into: `shard-core-io.ts` (options, effects, counters, the
 * effect-appending base class), `payload.ts` (encoding and size checks, the connect URL), `guild-wait.ts` and
 * `silence.ts` (the `guildsReady` and `silent` bookkeeping), `session.ts` (the decision table).
 *
 * @packageDocumentation
 */
import type { GatewayReadyDispatchData } from 'discord-api-types/v10';
import { Backoff } from './backoff.js';
import { scanHeader, parsePayload } from './decode.js';
import { DecodeError, GatewayError, SendError, ShardlineError } from './errors.js';
import { parseRateLimited, type DisconnectKind, type DispatchEvent, type GuildMembersChunk, type PresenceData, type StateCause } from './events.js';
import { GUILDS_TIMEOUT, GuildWait, guildIdOf, readyGuilds } from './guild-wait.js';
import { Heartbeat } from './heartbeat.js';
import { intentNames, uncoveredEvents } from './intents.js';
import { RateLimit } from './ratelimit.js';
import { decide, fatalCloseError, RESUMABLE_CLOSE_CODE, type DisconnectCause, type Session } from './session.js';
import { connectUrl, encodeCommand, identifyData, identifySize, MAX_PAYLOAD_BYTES } from './payload.js';
import { CoreOutput, type ShardCoreOptions, type TimerName } from './shard-core-io.js';
import { Silence } from './silence.js';
import { canTransition, type ShardState } from './state.js';

export { API_VERSION, MAX_PAYLOAD_BYTES } from './payload.js';
export type { Effect, ShardCoreOptions, ShardCounters, TimerName } from './shard-core-io.js';

interface Conn {
  readonly id: number;
  /** This connection RESUMEs (decided when it was opened). */
  readonly resuming: boolean;
  /** Opened on `resume_gateway_url`. */
  readonly viaResumeUrl: boolean;
  hello: boolean;
  /** Waiting for an identify turn. */
  awaitingTurn: boolean;
  /** IDENTIFY or RESUME written. */
  authSent: boolean;
}

interface QueuedCommand {
  id: number;
  op: number;
  data: string;
  presence: PresenceData | undefined;
}

/** Identify / resume / fatal, as data. */
type Action = 'resume' | 'identify' | 'fatal';

/** Failed connects to `resume_gateway_url` in a row after which the RESUME goes through the base gateway URL. */
const RESUME_URL_MISSES = 2;

/** Raw bytes kept in a skipped dispatch's error: enough to see what went wrong, bounded. */
const RAW_ERROR_BYTES = 64 * 1024;

export class ShardCore extends CoreOutput {
  lastCloseCode: number | null = null;
  readonly heartbeat = new Heartbeat();

  private _state: ShardState = 'idle';
  private conn: Conn | null = null;
  private connIds = 0;
  private sessionId: string | null = null;
  private resumeUrl: string | null = null;
  private seq = 0;
  /** RESUMEs sent in a row without RESUMED. */
  private resumeAttempts = 0;
  /** Connections to the resume URL in a row that ended before HELLO. */
  private resumeUrlMisses = 0;
  private presence: PresenceData | undefined;
  private readonly limit: RateLimit;
  private readonly backoff: Backoff;
  private readonly queue: QueuedCommand[] = [];
  private commandsAt: number | null = null;
  /** The consumer wants the socket not read. */
  private wantPaused = false;
  /** The socket is not being read (only applied to a ready session: a handshake always completes). */
  private readPaused = false;
  private badSeq: { seq: number; count: number } | null = null;
  /**
   * While guilds load (null otherwise, so an idle shard pays one field): the ids READY listed as unavailable whose
   * GUILD_CREATE has not arrived, and the virtual time of the last awaited one (the `guilds` timeout counts from it).
   */
  private guildWait: GuildWait | null = null;
  /** Guilds READY listed (for `guildsReady` and `silent`). */
  private guildCount = 0;
  /**
   * With `silentTimeout` only (created on the first check): the sequence seen at the last check and since when it
   * has not moved (`since` -1: `silent` already reported for this silence).
   */
  private silence: Silence | null = null;

  constructor(options: ShardCoreOptions) {
    super(options);
    this.presence = options.presence;
    this.limit = new RateLimit(options.rateLimit);
    this.backoff = new Backoff({ random: options.random, ...options.backoff });
    if (options.session) {
      this.sessionId = options.session.sessionId;
      this.seq = options.session.sequence;
      this.resumeUrl = options.session.resumeUrl;
    }
  }

  get state(): ShardState {
    return this._state;
  }

  /** The session to resume, or null. */
  get session(): Session | null {
    return this.sessionId !== null && this.resumeUrl !== null ? { sessionId: this.sessionId, sequence: this.seq, resumeUrl: this.resumeUrl } : null;
  }

  /** Commands waiting to be written. */
  get queued(): number {
    return this.queue.length;
  }

  /** The connection id the driver should have open, or null. */
  get connection(): number | null {
    return this.conn?.id ?? null;
  }

  // ---- inputs: the user ------------------------------------------------------------------------------

  /** Start (or, during a reconnect back-off, hurry) a connection. A no-op while one is open or opening. */
  connect(): void {
    const s = this._state;
    if (s === 'connecting' || s === 'identifying' || s === 'resuming' || s === 'ready') return;
    if (s === 'reconnecting') this.setTimer('reconnect', null);
    else this.backoff.reset();
    this.open({ kind: 'connect', reason: s === 'reconnecting' ? 'connect() called during the reconnect back-off' : 'connect() called' });
  }

  /**
   * Close the shard: the socket (with a code that keeps the session unless `resumable` is false), every timer,
   * every waiting command. Returns the session when `resumable`.
   */
  close(resumable: boolean, code?: number): Session | null {
    const session = resumable ? this.session : null;
    const conn = this.conn;
    if (conn) this.endConn(conn, code ?? (resumable ? RESUMABLE_CLOSE_CODE : 1000));
    this.setTimer('reconnect', null);
    this.stopGuildsWait();
    if (!resumable) this.clearSession();
    const reason = resumable ? 'closed by user (resumable)' : 'closed by user';
    if (this._state !== 'closed') this.transition('closed', { kind: 'close', resumable, reason });
    this.rejectQueued(new SendError('SHARD_CLOSED', `shard ${this.o.id} was closed`));
    this.wantPaused = false;
    this.syncRead();
    return session;
  }

  /**
   * Queue command `id` (`{ op, d }`); settled by a `command` effect. Rejected at once when the shard is closed,
   * the payload is over 4096 bytes or the queue is full. A presence update (op 3) is remembered for later
   * IDENTIFYs only once it is accepted.
   */
  command(id: number, op: number, d: unknown): void {
    if (this._state === 'closed' || this._state === 'fatal') {
      this.settle(id, new SendError('SHARD_CLOSED', `shard ${this.o.id} is ${this._state}; connect() it again before sending`));
      return;
    }
    const data = encodeCommand(op, d);
    if (typeof data !== 'string') {
      this.settle(id, data);
      return;
    }
    if (this.queue.length >= this.o.maxQueuedCommands) {
      this.settle(id, new SendError('QUEUE_FULL', `${this.queue.length} commands are already waiting to be sent (maxQueuedCommands); slow down or raise the limit`));
      return;
    }
    let presence: PresenceData | undefined;
    if (op === 3) {
      presence = d as PresenceData;
      if (identifySize(this.o, presence) > MAX_PAYLOAD_BYTES) {
        this.settle(id, new SendError('PAYLOAD_TOO_LARGE', `this presence would make IDENTIFY larger than ${MAX_PAYLOAD_BYTES} bytes: shorten it`));
        return;
      }
      this.presence = presence; // accepted: later IDENTIFYs carry it
    }
    this.queue.push({ id, op, data, presence });
    this.drain();
  }

  /** Stop (true) or restart (false) reading the socket: consumer back-pressure. Zombie detection is suspended meanwhile. */
  pause(paused: boolean): void {
    this.wantPaused = paused;
    this.syncRead();
  }

  // ---- inputs: the socket ----------------------------------------------------------------------------

  /** The socket of `conn` is open (informational; HELLO is what counts). */
  opened(conn: number): void {
    if (this.conn?.id !== conn) return;
    this.debug(`connection ${conn} open`);
  }

  /** One whole gateway message (decompressed) arrived on `conn`. The hot path. */
  message(conn: number, bytes: Uint8Array): void {
    const c = this.conn;
    if (c === null || c.id !== conn) return;
    this.heartbeat.noteInbound();
    let header: ReturnType<typeof scanHeader>;
    try {
      header = scanHeader(bytes);
    } catch {
      header = null; // the scan must never throw; if it ever does, the frame is malformed
    }
    if (header === null) {
      this.counters.decodeErrors++;
      this.report(new DecodeError(`shard ${this.o.id}: gateway sent a message that is not a gateway payload (${bytes.length} bytes)`));
      this.drop(c, { kind: 'malformed' }, null);
      return;
    }
    switch (header.op) {
      case 0:
        this.onDispatch(c, bytes, header.t, header.s);
        return;
      case 11: {
        const rtt = this.heartbeat.ack(this.o.now());
        this.emit({ kind: 'heartbeatAck', shardId: this.o.id, latency: rtt });
        return;
      }
      case 1:
        this.debug('gateway requested a heartbeat');
        this.requestedBeat(c);
        return;
      case 10:
        this.onHello(c, bytes);
        return;
      case 7:
        this.debug('gateway asked to reconnect (op 7)');
        this.drop(c, { kind: 'reconnect-request' }, null);
        return;
      case 9: {
        const p = this.parse(c, bytes);
        if (p) this.drop(c, { kind: 'invalid-session', resumable: p.d === true }, null);
        return;
      }
      default:
        this.counters.unknownOps++;
        this.debug(`gateway sent op ${header.op}, unknown to this version: ignored`);
    }
  }

  /** Transport data of `conn` could not be decoded (corrupt or oversize compressed data). */
  malformed(conn: number, error: Error): void {
    const c = this.conn;
    if (c === null || c.id !== conn) return;
    this.counters.decodeErrors++;
    this.report(error);
    this.drop(c, { kind: 'malformed' }, null);
  }

  /** The socket of `conn` closed (`code` 1006 for an abrupt loss). */
  closed(conn: number, code: number, reason = ''): void {
    const c = this.conn;
    if (c === null || c.id !== conn) return;
    this.lastCloseCode = code;
    this.drop(c, { kind: 'close', code, reason: reason.slice(0, 200) }, code);
  }

  /** The socket of `conn` could not be opened at all (bad URL, DNS, refused). */
  openFailed(conn: number, error: Error): void {
    const c = this.conn;
    if (c === null || c.id !== conn) return;
    this.debug(`connection ${conn} failed: ${error.message}`);
    this.drop(c, { kind: 'close', code: 1006, reason: error.message.slice(0, 200) }, 1006, 'connect-failed');
  }

  // ---- inputs: the identify queue and timers -----------------------------------------------------------

  /** The identify queue granted `conn` its turn. */
  identifyGranted(conn: number): void {
    const c = this.conn;
    if (c === null || c.id !== conn || !c.awaitingTurn) return;
    c.awaitingTurn = false;
    this.counters.identifies++;
    this.clearSession(); // a new session: no old session id may survive next to a reset sequence
    this.debug(`IDENTIFY shard [${this.o.id}, ${this.o.total}] intents ${intentNames(this.o.intents).join('|') || 0}`);
    this.writeAuth(c, 2, identifyData(this.o, this.presence));
  }

  /** The identify queue failed for `conn` (e.g. the daily budget is spent): the shard stops with that error. */
  identifyFailed(conn: number, error: Error): void {
    const c = this.conn;
    if (c === null || c.id !== conn || !c.awaitingTurn) return;
    c.awaitingTurn = false;
    this.fail(error instanceof GatewayError ? error : new GatewayError('IDENTIFY_QUEUE', `shard ${this.o.id}: identify queue failed: ${error.message}`, { shardId: this.o.id, cause: error }));
  }

  /** Timer `name` reached its deadline. */
  timer(name: TimerName): void {
    const c = this.conn;
    switch (name) {
      case 'reconnect':
        if (this._state === 'reconnecting') this.open({ kind: 'disconnect', reason: 'reconnect back-off over' });
        return;
      case 'hello':
        if (c && !c.hello) this.drop(c, { kind: 'hello-timeout' }, null);
        return;
      case 'ready':
        if (c && c.authSent && this._state !== 'ready') this.drop(c, { kind: 'ready-timeout' }, null);
        return;
      case 'heartbeat':
        if (c && c.hello) this.regularBeat(c);
        return;
      case 'commands':
        this.commandsAt = null;
        this.drain();
        return;
      case 'guilds':
        this.guildsTimer();
        return;
    }
  }

  // ---- the protocol --------------------------------------------------------------------------------------

  private open(cause: StateCause): void {
    const viaResume = this.resumeUrl !== null && this.sessionId !== null && this.resumeUrlMisses < RESUME_URL_MISSES;
    const resuming = this.sessionId !== null && this.resumeUrl !== null;
    const url = connectUrl(viaResume ? this.resumeUrl : null, this.o.gatewayUrl, this.o.compression);
    if (url === null) {
      this.fail(new GatewayError('CONNECT_FAILED', `shard ${this.o.id}: gatewayUrl is not a URL: ${JSON.stringify(this.o.gatewayUrl)}`, { shardId: this.o.id }));
      return;
    }
    const conn: Conn = { id: ++this.connIds, resuming, viaResumeUrl: viaResume, hello: false, awaitingTurn: false, authSent: false };
    this.conn = conn;
    this.transition('connecting', { ...cause, reason: `${cause.reason}; ${resuming ? 'resume' : 'identify'} via ${url.host}` });
    this.effects.push({ type: 'open', conn: conn.id, url: url.href });
    this.setTimer('hello', this.o.now() + this.o.helloTimeout);
  }

  private onHello(c: Conn, bytes: Uint8Array): void {
    const p = this.parse(c, bytes);
    if (!p) return;
    const interval = (p.d as { heartbeat_interval?: unknown } | null)?.heartbeat_interval;
    if (typeof interval !== 'number' || !(interval > 0) || !Number.isFinite(interval)) {
      this.counters.decodeErrors++;
      this.report(new GatewayError('DECODE_ERROR', `shard ${this.o.id}: HELLO without a valid heartbeat_interval`, { shardId: this.o.id }));
      this.drop(c, { kind: 'malformed' }, null);
      return;
    }
    if (c.hello) {
      this.report(new GatewayError('UNEXPECTED_HELLO', `shard ${this.o.id}: gateway sent a second HELLO on one connection; ignored`, { shardId: this.o.id }));
      return;
    }
    c.hello = true;
    if (c.viaResumeUrl) this.resumeUrlMisses = 0;
    this.setTimer('hello', null);
    this.debug(`HELLO: heartbeat every ${interval} ms`);
    const now = this.o.now();
    this.limit.reset(interval);
    this.heartbeat.start(interval, now, this.o.random());
    this.setTimer('heartbeat', this.heartbeat.dueAt);
    if (c.resuming && this.sessionId !== null) {
      this.resumeAttempts++;
      this.counters.resumes++;
      this.transition('resuming', { kind: 'hello', resumable: true, reason: `resuming session at seq ${this.seq} (attempt ${this.resumeAttempts})` });
      this.writeAuth(c, 6, { session_id: this.sessionId, seq: this.seq });
    } else {
      c.awaitingTurn = true;
      this.transition('identifying', { kind: 'hello', resumable: false, reason: 'waiting for the identify queue' });
      this.effects.push({ type: 'identify', conn: c.id });
    }
  }

  private writeAuth(c: Conn, op: 2 | 6, d: Record<string, unknown>): void {
    c.authSent = true;
    this.limit.record(this.o.now(), op);
    this.countSent(op);
    this.effects.push({ type: 'auth', conn: c.id, op, d });
    this.setTimer('ready', this.o.now() + this.o.readyTimeout);
  }

  /** Bytes of the IDENTIFY this presence would produce (token included by length). */
  identifySize(presence: PresenceData | undefined): number {
    return identifySize(this.o, presence);
  }

  private regularBeat(c: Conn): void {
    const now = this.o.now();
    if (this.heartbeat.tick(now) === 'zombie') {
      this.counters.zombies++;
      this.drop(c, { kind: 'zombie' }, null);
      return;
    }
    this.writeBeat(c, now, false);
    this.setTimer('heartbeat', this.heartbeat.dueAt);
    if (this.o.silentTimeout && this._state === 'ready') this.checkSilent(c, now);
  }

  /**
   * Called on each regular beat (the previous one was ACKed, or the shard would be a zombie): when the sequence has
   * not moved for `silentTimeout` on a shard with guilds, report `silent` once (and RESUME when asked).
   */
  private checkSilent(c: Conn, now: number): void {
    if (this.silence === null) {
      this.silence = new Silence(this.seq, now);
      return;
    }
    const since = this.silence.check(this.seq, now, this.guildCount, this.o.silentTimeout!);
    if (since < 0) return;
    this.counters.silent++;
    this.emit({ kind: 'silent', shardId: this.o.id, since, guilds: this.guildCount });
    if (this.o.silentAction === 'resume') this.drop(c, { kind: 'silent' }, null);
  }

  /** Ready again (READY / RESUMED): the silence clock restarts. */
  private noteActive(): void {
    this.silence?.restart(this.seq, this.o.now()); // null: nothing to restart (or silentTimeout off)
  }

  private requestedBeat(c: Conn): void {
    if (!c.hello) return;
    const now = this.o.now();
    // A requested beat uses a command slot: it must never take a regular beat's reserved room.
    if (this.limit.nextSlot(now, 1) > now) {
      this.debug('heartbeat request not answered: the rate limit is spent (the next regular beat follows)');
      return;
    }
    this.heartbeat.requested(now);
    this.writeBeat(c, now, true);
  }

  private writeBeat(c: Conn, now: number, requested: boolean): void {
    const sequence = this.seq > 0 ? this.seq : null;
    this.limit.record(now, 1);
    this.countSent(1);
    this.effects.push({ type: 'send', conn: c.id, op: 1, data: `{"op":1,"d":${sequence === null ? 'null' : sequence}}` });
    this.emit({ kind: 'heartbeat', shardId: this.o.id, sequence, requested });
  }

  /** Write queued commands while the session is ready and the limit allows; otherwise arm the `commands` timer. */
  private drain(): void {
    const c = this.conn;
    if (c === null || this._state !== 'ready') return;
    while (this.queue.length !== 0) {
      const now = this.o.now();
      const head = this.queue[0]!;
      const at = this.limit.nextSlot(now, head.op);
      if (at > now) {
        if (this.commandsAt !== at) {
          this.commandsAt = at;
          this.setTimer('commands', at);
        }
        return;
      }
      this.queue.shift();
      this.limit.record(now, head.op);
      this.countSent(head.op);
      this.effects.push({ type: 'send', conn: c.id, op: head.op, data: head.data });
      this.settle(head.id, null);
    }
  }

  private onDispatch(c: Conn, bytes: Uint8Array, t: string | null, s: number | null): void {
    if (s !== null && s <= this.seq && this.sessionId !== null && t !== 'READY') {
      this.debug(`dropped duplicate dispatch ${t} seq ${s} (last ${this.seq})`);
      return;
    }
    const type = t ?? '';
    const wanted = this.o.events === null || this.o.events.has(type);
    const control = type === 'READY' || type === 'RESUMED' || type === 'GUILD_MEMBERS_CHUNK' || type === 'RATE_LIMITED';
    if (!wanted && !control) {
      if (s !== null) this.seq = s;
      this.counters.filtered++;
      if (type === 'GUILD_CREATE' && this.guildWait !== null) this.guildArrived(guildIdOf(bytes));
      return;
    }
    if (this.o.raw && !control) {
      if (s !== null) this.seq = s;
      this.counters.dispatches++;
      this.effects.push({ type: 'raw', t: type, s: s ?? this.seq, bytes });
      if (type === 'GUILD_CREATE' && this.guildWait !== null) this.guildArrived(guildIdOf(bytes));
      return;
    }
    let payload: ReturnType<typeof parsePayload>;
    try {
      payload = parsePayload(bytes);
    } catch (err) {
      this.counters.decodeErrors++;
      if (s !== null && this.badSeq?.seq === s && ++this.badSeq.count >= 2) {
        // The gateway replayed it and it failed again: skip it, loudly.
        this.seq = s;
        this.badSeq = null;
        this.counters.skipped++;
        const raw = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, RAW_ERROR_BYTES)).toString('utf8');
        this.report(
          new DecodeError(`shard ${this.o.id}: dispatch ${type} seq ${s} failed to parse twice and was skipped: ${(err as Error).message}`, {
            cause: err,
            raw,
          }),
        );
        return;
      }
      this.report(err as Error);
      if (s !== null && this.badSeq?.seq !== s) this.badSeq = { seq: s, count: 1 };
      // Resume from the last good sequence so the gateway replays this event.
      this.drop(c, { kind: 'malformed' }, null);
      return;
    }
    if (s !== null) this.seq = s;
    if (type === 'READY') this.onReady(payload.d as GatewayReadyDispatchData);
    else if (type === 'RESUMED') this.onResumed();
    else if (type === 'GUILD_MEMBERS_CHUNK') this.effects.push({ type: 'chunk', data: payload.d as GuildMembersChunk });
    else if (type === 'RATE_LIMITED') {
      // Counted and reported; the driver fails or retries the member request.
      this.counters.rateLimited++;
      this.emit(parseRateLimited(this.o.id, payload.d));
    }
    if (wanted) {
      this.counters.dispatches++;
      this.effects.push({ type: 'dispatch', event: { shardId: this.o.id, type, sequence: s ?? this.seq, data: payload.d } as DispatchEvent });
    }
    // After the dispatch: whoever sees `guildsReady` has seen every GUILD_CREATE before it.
    if (type === 'READY' && this._state === 'ready') this.startGuildsWait(payload.d as GatewayReadyDispatchData);
    else if (type === 'GUILD_CREATE' && this.guildWait !== null) this.guildArrived((payload.d as { id?: unknown } | null)?.id);
  }

  // ---- guilds loading: READY's unavailable guilds until their GUILD_CREATE ------------------------------

  /** After READY: wait for the guilds it listed as unavailable (a Set only while waiting), or report at once. */
  private startGuildsWait(d: GatewayReadyDispatchData): void {
    const { count, unavailable } = readyGuilds(d);
    this.guildCount = count;
    if (unavailable === null) {
      this.stopGuildsWait();
      this.emit({ kind: 'guildsReady', shardId: this.o.id, guilds: count, unavailable: [] });
      return;
    }
    const at = this.o.now();
    this.guildWait = new GuildWait(unavailable, at);
    this.setTimer('guilds', at + (this.o.guildsTimeout ?? GUILDS_TIMEOUT));
  }

  private guildArrived(id: unknown): void {
    if (this.guildWait!.arrived(id, this.o.now())) this.finishGuildsWait();
  }

  /** The `guilds` timer: fires `guildsTimeout` after READY and is pushed back by each awaited GUILD_CREATE. */
  private guildsTimer(): void {
    if (this.guildWait === null) return;
    const due = this.guildWait.at + (this.o.guildsTimeout ?? GUILDS_TIMEOUT);
    if (this.o.now() < due) this.setTimer('guilds', due);
    else this.finishGuildsWait();
  }

  private finishGuildsWait(): void {
    const missing = this.guildWait ? [...this.guildWait.ids] : [];
    this.guildWait = null;
    this.setTimer('guilds', null);
    this.emit({ kind: 'guildsReady', shardId: this.o.id, guilds: this.guildCount - missing.length, unavailable: missing });
  }

  private stopGuildsWait(): void {
    if (this.guildWait === null) return;
    this.guildWait = null;
    this.setTimer('guilds', null);
  }

  private onReady(d: GatewayReadyDispatchData): void {
    if (typeof d?.session_id !== 'string' || typeof d.resume_gateway_url !== 'string') {
      this.report(new GatewayError('DECODE_ERROR', `shard ${this.o.id}: READY without session_id / resume_gateway_url`, { shardId: this.o.id }));
      return;
    }
    this.setTimer('ready', null);
    this.sessionId = d.session_id;
    this.resumeUrl = d.resume_gateway_url;
    this.resumeAttempts = 0;
    this.resumeUrlMisses = 0;
    this.badSeq = null;
    this.backoff.reset();
    this.noteActive();
    this.transition('ready', { kind: 'ready', resumable: true, reason: `READY: session ${d.session_id.slice(0, 8)}…, ${d.guilds?.length ?? 0} guilds` });
    if (this.o.events && this.debugOn)
      for (const [t, need] of uncoveredEvents(this.o.events, this.o.intents)) this.debug(`events includes ${t} but intents lack ${intentNames(need).join(' or ')}: it will never arrive`);
    this.emit({ kind: 'ready', shardId: this.o.id, data: d, session: this.session! });
    this.syncRead();
    this.drain();
  }

  private onResumed(): void {
    if (this._state !== 'resuming') return;
    this.setTimer('ready', null);
    this.resumeAttempts = 0;
    this.resumeUrlMisses = 0;
    this.badSeq = null;
    this.backoff.reset();
    this.noteActive();
    this.transition('ready', { kind: 'resumed', resumable: true, reason: `RESUMED at seq ${this.seq}` });
    this.emit({ kind: 'resumed', shardId: this.o.id, session: this.session! });
    this.syncRead();
    this.drain();
  }

  private parse(c: Conn, bytes: Uint8Array): ReturnType<typeof parsePayload> | null {
    try {
      return parsePayload(bytes);
    } catch (err) {
      this.counters.decodeErrors++;
      this.report(err as Error);
      this.drop(c, { kind: 'malformed' }, null);
      return null;
    }
  }

  /**
   * Connection `c` ended (or must end) for `cause`: release it and act on the decision table — resume, identify
   * anew, or stop for good.
   */
  private drop(c: Conn, cause: DisconnectCause, code: number | null, kind: DisconnectKind = cause.kind): void {
    if (this.conn !== c) return;
    const missedResumeUrl = c.viaResumeUrl && !c.hello;
    // A dead socket gets no close handshake (it would hang): drop a zombie at once.
    this.endConn(c, cause.kind === 'zombie' ? null : RESUMABLE_CLOSE_CODE);
    if (missedResumeUrl) this.resumeUrlMisses++;
    const decision = decide(cause, { resumeOnSessionTimeout: this.o.resumeOnSessionTimeout });
    let action: Action = decision.action;
    if (action === 'resume' && this.session === null) action = 'identify';
    if (action === 'resume' && this.resumeAttempts >= this.o.maxResumeAttempts) {
      this.debug(`${this.resumeAttempts} RESUMEs in a row got no RESUMED; identifying anew`);
      action = 'identify';
    }
    this.emit({ kind: 'disconnected', shardId: this.o.id, code, cause: kind, label: decision.label, action });
    if (action === 'fatal') {
      this.fail(fatalCloseError(this.o.id, cause, decision));
      return;
    }
    if (action === 'identify') this.clearSession();
    this.counters.reconnects++;
    let delay = this.backoff.next();
    if (decision.identifyDelay) delay = Math.max(delay, 1000 + Math.floor(this.o.random() * 4000));
    this.transition('reconnecting', { kind: 'disconnect', code, resumable: action === 'resume', reason: `${decision.label}; ${action} in ${delay} ms` });
    this.setTimer('reconnect', this.o.now() + delay);
  }

  /** Release the current connection: close its socket, stop its timers and its identify turn. */
  private endConn(c: Conn, code: number | null): void {
    if (this.conn !== c) return;
    this.conn = null;
    if (c.awaitingTurn) {
      c.awaitingTurn = false;
      this.effects.push({ type: 'cancelIdentify', conn: c.id });
    }
    this.effects.push({ type: 'close', conn: c.id, code });
    this.heartbeat.stop();
    this.setTimer('hello', null);
    this.setTimer('ready', null);
    this.setTimer('heartbeat', null);
    if (this.commandsAt !== null) {
      this.commandsAt = null;
      this.setTimer('commands', null);
    }
    this.syncRead();
  }

  /** Stop for good with `err`. */
  private fail(err: GatewayError): void {
    const c = this.conn;
    if (c) this.endConn(c, 1000);
    this.setTimer('reconnect', null);
    this.stopGuildsWait();
    this.transition('fatal', { kind: 'fatal', code: err.closeCode, resumable: false, reason: err.message });
    this.report(err);
    this.rejectQueued(new SendError('SHARD_CLOSED', `shard ${this.o.id} stopped: ${err.message}`));
    this.wantPaused = false;
    this.syncRead();
    this.effects.push({ type: 'fatal', error: err });
  }

  private rejectQueued(err: Error): void {
    for (const q of this.queue.splice(0)) this.settle(q.id, err);
  }

  private clearSession(): void {
    this.stopGuildsWait(); // a new session loads its guilds anew
    this.sessionId = null;
    this.resumeUrl = null;
    this.seq = 0;
    this.resumeAttempts = 0;
    this.resumeUrlMisses = 0;
  }

  private syncRead(): void {
    const paused = this.wantPaused && this.conn !== null && this._state === 'ready';
    if (paused === this.readPaused) return;
    this.readPaused = paused;
    this.heartbeat.setPaused(paused);
    this.debug(paused ? 'event consumer is behind: pausing the socket' : 'event consumer caught up: resuming the socket');
    this.effects.push({ type: 'read', paused });
  }

  private transition(to: ShardState, cause: StateCause): void {
    const from = this._state;
    if (from === to) return;
    if (!canTransition(from, to)) {
      throw new ShardlineError('INTERNAL', `shard ${this.o.id}: illegal state transition ${from} → ${to} (${cause.reason})`);
    }
    this._state = to;
    this.debug(`${from} → ${to}: ${cause.reason}`);
    this.emit({ kind: 'state', shardId: this.o.id, from, to, cause });
  }
}
