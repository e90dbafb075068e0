import WebSocket from 'ws';
import type {
  GatewayReadyDispatchData,
  GatewayRequestGuildMembersData,
  GatewayVoiceStateUpdateData,
} from 'discord-api-types/v10';
import { Backoff, type BackoffOptions } from './backoff.js';
import { EventChannel } from './channel.js';
import { setDeadline, systemClock, type Clock, type TimerHandle } from './clock.js';
import { scanHeader, parsePayload } from './decode.js';
import { TypedEmitter } from './emitter.js';
import { GatewayError, SendError, ShardlineError, redact } from './errors.js';
import type { DispatchEvent, GuildMembersChunk, PresenceData, ShardEventMap } from './events.js';
import { Heartbeater } from './heartbeat.js';
import { createInflater, type Inflater, type TransportCompression } from './inflate.js';
import { AllIntents, intentNames, intentsForEvent } from './intents.js';
import { MemberRequest } from './members.js';
import { LocalIdentifyQueue, type IdentifyQueue } from './queue.js';
import { SendLimiter } from './ratelimit.js';
import { CLOSE_CODES, decide, isSession, RESUMABLE_CLOSE_CODE, type DisconnectCause, type Session } from './session.js';
import { canTransition, type ShardState } from './state.js';

/** Gateway API version spoken by shardline. */
export const API_VERSION = 10;
/** Default gateway URL (only used when you connect to Discord for real). */
export const DEFAULT_GATEWAY_URL = 'wss://gateway.discord.gg';
/** Largest payload the gateway accepts from a client, in bytes. */
export const MAX_PAYLOAD_BYTES = 4096;

/** Options of a {@link Shard}. Only `token` and `intents` are required. */
export interface ShardOptions {
  /** Bot token (with or without the `Bot ` prefix). Never logged. */
  token: string;
  /** Gateway intents, e.g. `Intents.Guilds | Intents.GuildMessages`. */
  intents: number;
  /** Shard id. Default 0. */
  id?: number;
  /** Shard count. Default 1. */
  total?: number;
  /** Gateway URL; a `ws://` URL for the simulator. Default `wss://gateway.discord.gg`. */
  gatewayUrl?: string;
  /** Transport compression. Default `'zlib-stream'`. */
  compression?: TransportCompression | false;
  /**
   * Dispatch types to deliver, e.g. `['MESSAGE_CREATE']`. Others are never parsed (only their sequence number
   * is read). Default: all.
   */
  events?: Iterable<string>;
  /** Resume this session instead of identifying. */
  session?: Session | null;
  /** Initial presence sent with IDENTIFY. */
  presence?: PresenceData;
  /** 50–250: member count above which offline members are not sent. Default 50. */
  largeThreshold?: number;
  /** IDENTIFY connection properties. Default `{ os: process.platform, browser: 'shardline', device: 'shardline' }`. */
  properties?: { os?: string; browser?: string; device?: string };
  /** Decides when this shard may IDENTIFY. Default: a private {@link LocalIdentifyQueue} with one lane. */
  identifyQueue?: IdentifyQueue;
  /** Time source for every timer. Default real time; tests pass `scaledClock(0.01)`. */
  clock?: Clock;
  /** Random source in [0, 1) (heartbeat jitter, back-off, op 9 wait). */
  random?: () => number;
  /** ms to wait for HELLO after opening the socket. Default 20 000. */
  helloTimeout?: number;
  /** ms to wait for READY / RESUMED after IDENTIFY / RESUME. Default 120 000. */
  readyTimeout?: number;
  /** Resume attempts in a row that may fail before the shard identifies anew. Default 3. */
  maxResumeAttempts?: number;
  /** Reconnect back-off. Default 1 s doubling to 60 s, with jitter; the first retry is immediate. */
  backoff?: BackoffOptions;
  /** Commands that may wait while rate limited or reconnecting. Default 1000. */
  maxQueuedCommands?: number;
  /** Dispatches buffered per `events()` iterator before the shard stops reading the socket. Default 10 000. */
  eventBufferSize?: number;
  /** Largest decompressed message accepted, bytes. Default 64 MiB. */
  maxMessageSize?: number;
  /** Resume after close 4009 (undocumented missed-heartbeat close) instead of identifying. Default false. */
  resumeOnSessionTimeout?: boolean;
  /** Outgoing limit per connection. Default 120 per 60 000 ms (the gateway's). */
  rateLimit?: { limit?: number; window?: number };
  /** ms to wait for all GUILD_MEMBERS_CHUNKs of a request. Default 30 000. */
  memberRequestTimeout?: number;
  /**
   * Hand wanted dispatches over unparsed: called with the raw JSON text of the whole payload instead of parsing it
   * and emitting `dispatch` (READY, RESUMED, GUILD_CREATE, GUILD_DELETE and member chunks are still parsed and
   * emitted). For forwarding events to another thread or process that parses them once. Default: none.
   */
  forwardRaw?: (type: string, sequence: number, json: string) => void;
}

interface Connection {
  readonly id: number;
  readonly ws: WebSocket;
  readonly inflater: Inflater | null;
  readonly resuming: boolean;
  helloTimer: TimerHandle | undefined;
  readyTimer: TimerHandle | undefined;
  identifyAbort: AbortController | null;
  helloSeen: boolean;
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: Error) => void;
}

let connectionIds = 0;

/**
 * One websocket session with Discord's gateway: identifies (or resumes), heartbeats, detects zombie
 * connections, reconnects by the protocol's rules, inflates `zlib-stream`, rate-limits what it sends and
 * delivers typed dispatches.
 *
 * @example
 * ```ts
 * import { Shard, Intents } from 'shardline';
 * const shard = new Shard({ token: process.env.DISCORD_TOKEN!, intents: Intents.Guilds | Intents.GuildMessages });
 * shard.on('dispatch', (e) => {
 *   if (e.type === 'MESSAGE_CREATE') console.log(`#${e.data.channel_id}: ${e.data.content}`);
 * });
 * await shard.connect();
 * ```
 */
export class Shard extends TypedEmitter<ShardEventMap> {
  /** Shard id. */
  readonly id: number;
  /** Shard count. */
  readonly total: number;
  /** Intents sent in IDENTIFY. */
  readonly intents: number;

  readonly #token: string;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly gatewayUrl: string;
  private readonly compression: TransportCompression | false;
  private readonly wanted: Set<string> | null;
  private readonly identifyQueue: IdentifyQueue;
  private readonly heartbeater: Heartbeater;
  private readonly limiter: SendLimiter;
  private readonly backoff: Backoff;
  private readonly opts: ShardOptions;

  private _state: ShardState = 'idle';
  private conn: Connection | null = null;
  private sessionId: string | null = null;
  private resumeUrl: string | null = null;
  private seq = 0;
  private resumeAttempts = 0;
  private reconnectTimer: TimerHandle | undefined;
  private connecting: Deferred | null = null;
  private readonly channels = new Set<EventChannel<DispatchEvent>>();
  private pressure = 0;
  private userPaused = false;
  private presence: PresenceData | undefined;
  private readonly memberRequests = new Map<string, MemberRequest>();
  private nonceCounter = 0;
  private badSeq: { seq: number; count: number } | null = null;
  /** Times each reconnect cause happened, for status and metrics. */
  readonly counters = { reconnects: 0, resumes: 0, identifies: 0, zombies: 0, filtered: 0, dispatches: 0, decodeErrors: 0 };
  /** Last close code received from the gateway. */
  lastCloseCode: number | null = null;
  /** Payloads written to the socket, by op (heartbeats, IDENTIFY, RESUME and commands). Read by metrics. */
  readonly payloadsSent = new Map<number, number>();
  /** Inflate totals of the connections already closed (the current one is added by {@link Shard.inflateStats}). */
  private readonly inflatePast = { bytesIn: 0, bytesOut: 0, messages: 0 };

  constructor(options: ShardOptions) {
    super();
    this.opts = options;
    if (typeof options.token !== 'string' || options.token.trim() === '') {
      throw new ShardlineError('INVALID_TOKEN', 'no token given: pass the bot token from the Developer Portal (e.g. process.env.DISCORD_TOKEN)');
    }
    this.#token = options.token.trim().replace(/^Bot\s+/i, '');
    const intents = options.intents;
    if (!Number.isInteger(intents) || intents < 0 || intents > 0x7fffffff || (intents & ~AllIntents) !== 0) {
      throw new ShardlineError('INVALID_INTENTS', `intents must be a bitfield of documented Intents values, got ${String(intents)}`);
    }
    this.intents = intents;
    this.id = options.id ?? 0;
    this.total = options.total ?? 1;
    if (!Number.isInteger(this.total) || this.total < 1 || !Number.isInteger(this.id) || this.id < 0 || this.id >= this.total) {
      throw new ShardlineError('INVALID_SHARD', `shard id must be an integer in [0, total) and total >= 1, got id ${this.id} of ${this.total}`);
    }
    const lt = options.largeThreshold;
    if (lt !== undefined && (!Number.isInteger(lt) || lt < 50 || lt > 250)) {
      throw new ShardlineError('INVALID_OPTION', `largeThreshold must be an integer from 50 to 250, got ${lt}`);
    }
    if (options.session != null && !isSession(options.session)) {
      throw new ShardlineError('INVALID_SESSION', 'session must be { sessionId: string, sequence: integer >= 0, resumeUrl: string }');
    }
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.gatewayUrl = options.gatewayUrl ?? DEFAULT_GATEWAY_URL;
    this.compression = options.compression === undefined ? 'zlib-stream' : options.compression;
    this.wanted = options.events ? new Set(options.events) : null;
    this.identifyQueue = options.identifyQueue ?? new LocalIdentifyQueue({ clock: this.clock });
    this.backoff = new Backoff({ random: this.random, ...options.backoff });
    if (options.session) this.adoptSession(options.session);
    this.presence = options.presence;
    this.limiter = new SendLimiter({
      clock: this.clock,
      maxQueued: options.maxQueuedCommands,
      limit: options.rateLimit?.limit,
      window: options.rateLimit?.window,
    });
    this.heartbeater = new Heartbeater({
      clock: this.clock,
      random: this.random,
      send: () => this.sendHeartbeat(),
      onZombie: () => {
        this.counters.zombies++;
        this.drop({ kind: 'zombie' });
      },
    });
  }

  /** Current lifecycle state. */
  get state(): ShardState {
    return this._state;
  }

  /** The session to resume (sequence is the last one received), or null before READY / after a non-resumable close. */
  get session(): Session | null {
    return this.sessionId && this.resumeUrl ? { sessionId: this.sessionId, sequence: this.seq, resumeUrl: this.resumeUrl } : null;
  }

  /** Heartbeat round trips in ms (most recent last) and their average. */
  get latency(): { recent: number[]; average: number | null } {
    return this.heartbeater.latency;
  }

  /** Commands waiting to be sent. */
  get queuedCommands(): number {
    return this.limiter.queued;
  }

  /** Heartbeat ACKs received so far; each one adds a sample to `latency.recent` (kept: the last 10). For metrics. */
  get heartbeatAcks(): number {
    return this.heartbeater.acks;
  }

  /**
   * Transport decompression totals over every connection so far (compressed bytes in, decompressed bytes out,
   * messages), the compressed bytes the current connection holds for an incomplete message, and its backend.
   */
  get inflateStats(): { bytesIn: number; bytesOut: number; messages: number; bufferSize: number; backend: string | null } {
    const live = this.conn?.inflater;
    const cur = live?.stats ?? null;
    const past = this.inflatePast;
    return {
      bytesIn: past.bytesIn + (cur?.bytesIn ?? 0),
      bytesOut: past.bytesOut + (cur?.bytesOut ?? 0),
      messages: past.messages + (cur?.messages ?? 0),
      bufferSize: cur?.bufferSize ?? 0,
      backend: live?.backend ?? null,
    };
  }

  /**
   * Connect, then IDENTIFY (or RESUME a given session). Resolves on READY or RESUMED; rejects with a
   * {@link GatewayError} when the gateway ends the session for good (bad token, disallowed intents, ...)
   * or when {@link Shard.close} is called first. Reconnects afterwards are automatic.
   */
  connect(): Promise<void> {
    if (this._state === 'ready') return Promise.resolve();
    if (this.connecting) return this.connecting.promise;
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.connecting = { promise, resolve, reject };
    this.backoff.reset();
    this.openSocket('connect() called');
    return promise;
  }

  /**
   * The shard's dispatches as an async iterable. Create it before `connect()` to see every event. When the
   * consumer falls `eventBufferSize` events behind, the shard stops reading its socket until it catches up.
   * The iteration ends when the shard is closed, and throws the {@link GatewayError} of a fatal close.
   */
  events(): AsyncIterableIterator<DispatchEvent> {
    let full = false;
    const channel: EventChannel<DispatchEvent> = new EventChannel<DispatchEvent>(
      this.opts.eventBufferSize ?? 10_000,
      (isFull) => {
        if (isFull !== full) {
          full = isFull;
          this.setPressure(isFull ? 1 : -1);
        }
      },
      () => this.channels.delete(channel),
    );
    if (this._state === 'closed' || this._state === 'fatal') channel.end();
    else this.channels.add(channel);
    const it = channel[Symbol.asyncIterator]();
    return Object.assign(it, { [Symbol.asyncIterator]: () => it }) as AsyncIterableIterator<DispatchEvent>;
  }

  /**
   * Send a raw gateway command (rate limited; waits while reconnecting). Resolves once written to the socket.
   * Rejects with a {@link SendError} when the encoded payload exceeds 4096 bytes, the queue is full, or the
   * shard is closed.
   */
  send(payload: { op: number; d: unknown }): Promise<void> {
    if (this._state === 'closed' || this._state === 'fatal') {
      return Promise.reject(new SendError('SHARD_CLOSED', `shard ${this.id} is ${this._state}; connect() it again before sending`));
    }
    const data = JSON.stringify({ op: payload.op, d: payload.d });
    const bytes = Buffer.byteLength(data);
    if (bytes > MAX_PAYLOAD_BYTES) {
      return Promise.reject(
        new SendError('PAYLOAD_TOO_LARGE', `op ${payload.op} payload is ${bytes} bytes; the gateway accepts at most ${MAX_PAYLOAD_BYTES}`),
      );
    }
    const sent = this.limiter.enqueue(data, payload.op);
    sent.then(() => this.countSent(payload.op), () => undefined);
    return sent;
  }

  private countSent(op: number): void {
    this.payloadsSent.set(op, (this.payloadsSent.get(op) ?? 0) + 1);
  }

  /**
   * Update the bot's presence (op 3; at most 5 per 20 s, queued beyond that). The presence is also remembered
   * and sent with any later IDENTIFY, so a re-identified shard keeps it.
   */
  updatePresence(presence: PresenceData): Promise<void> {
    this.presence = presence;
    return this.send({ op: 3, d: presence });
  }

  /**
   * Stop reading the socket (back-pressure from a slow consumer) until {@link Shard.resume}. Heartbeats keep
   * going and zombie detection is suspended meanwhile; a reconnect completes its handshake and then pauses.
   */
  pause(): void {
    if (this.userPaused) return;
    this.userPaused = true;
    this.setPressure(1);
  }

  /** Resume reading after {@link Shard.pause}. */
  resume(): void {
    if (!this.userPaused) return;
    this.userPaused = false;
    this.setPressure(-1);
  }

  /** True while the socket is not being read (by `pause()` or a full `events()` buffer). */
  get paused(): boolean {
    return this.pressure > 0;
  }

  /** Join, move or leave a voice channel (op 4). */
  updateVoiceState(state: GatewayVoiceStateUpdateData): Promise<void> {
    return this.send({ op: 4, d: state });
  }

  /** Ask for the soundboard sounds of guilds (op 31); answers arrive as SOUNDBOARD_SOUNDS dispatches. */
  requestSoundboardSounds(guildIds: string[]): Promise<void> {
    return this.send({ op: 31, d: { guild_ids: guildIds } });
  }

  /**
   * Request guild members (op 8). The result is both a promise of every GUILD_MEMBERS_CHUNK and an async
   * iterable of the chunks as they arrive, matched by nonce (one is generated when not given).
   *
   * @example
   * ```ts
   * const chunks = await shard.requestGuildMembers({ guild_id: '123', query: '', limit: 0 });
   * for await (const chunk of shard.requestGuildMembers({ guild_id: '123', user_ids: ['456'] })) console.log(chunk.members);
   * ```
   */
  requestGuildMembers(request: GatewayRequestGuildMembersData): MemberRequest {
    const nonce = request.nonce ?? `sl${this.id.toString(36)}-${(this.nonceCounter++).toString(36)}-${Date.now().toString(36)}`;
    const req = new MemberRequest(nonce, this.clock, this.opts.memberRequestTimeout ?? 30_000, () => this.memberRequests.delete(nonce));
    if (Buffer.byteLength(nonce) > 32) {
      req.fail(new SendError('PAYLOAD_TOO_LARGE', 'nonce must be at most 32 bytes'));
      return req;
    }
    this.memberRequests.set(nonce, req);
    this.send({ op: 8, d: { ...request, nonce } }).catch((err: Error) => req.fail(err));
    return req;
  }

  /**
   * Close the shard. With `resumable: true` the socket is closed with a non-1000 code so the session survives,
   * and the session is returned to be handed to a new shard (`new Shard({ session })`) within a few minutes.
   * Pending commands are rejected, iterators end, every timer and socket is released.
   */
  async close(options: { resumable?: boolean; code?: number } = {}): Promise<Session | null> {
    const resumable = options.resumable ?? false;
    const session = resumable ? this.session : null;
    this.clock.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const conn = this.conn;
    const closed = conn ? this.teardown(conn, options.code ?? (resumable ? RESUMABLE_CLOSE_CODE : 1000), false) : Promise.resolve();
    if (!resumable) this.clearSession();
    if (this._state !== 'closed') this.transition('closed', resumable ? 'closed by user (resumable)' : 'closed by user');
    const err = new SendError('SHARD_CLOSED', `shard ${this.id} was closed`);
    this.finish(err, undefined);
    await closed;
    return session;
  }

  // ---- connection lifecycle ---------------------------------------------------------------------------

  private openSocket(reason: string): void {
    this.reconnectTimer = undefined;
    const resuming = this.sessionId !== null && this.resumeUrl !== null;
    const base = resuming ? this.resumeUrl! : this.gatewayUrl;
    const url = new URL(base);
    url.searchParams.set('v', String(API_VERSION));
    url.searchParams.set('encoding', 'json');
    if (this.compression) url.searchParams.set('compress', this.compression);
    else url.searchParams.delete('compress');
    this.transition('connecting', `${reason}; ${resuming ? 'resume' : 'identify'} via ${url.host}`);
    if (resuming) this.resumeAttempts++;

    let inflater: Inflater | null = null;
    let ws: WebSocket;
    try {
      inflater = this.compression ? createInflater(this.compression, { maxMessageSize: this.opts.maxMessageSize }) : null;
      ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: this.opts.maxMessageSize ?? 64 * 1024 * 1024 });
    } catch (err) {
      inflater?.close();
      this.fail(new GatewayError('CONNECT_FAILED', `shard ${this.id}: cannot open ${url.host}: ${(err as Error).message}`, { shardId: this.id, cause: err }));
      return;
    }
    const conn: Connection = {
      id: ++connectionIds,
      ws,
      inflater,
      resuming,
      helloTimer: undefined,
      readyTimer: undefined,
      identifyAbort: null,
      helloSeen: false,
    };
    this.conn = conn;
    const helloTimer = setDeadline(this.clock, this.opts.helloTimeout ?? 20_000, () => conn.helloTimer === helloTimer && this.conn === conn, () =>
      this.drop({ kind: 'hello-timeout' }),
    );
    conn.helloTimer = helloTimer;
    ws.on('open', () => this.debug(`connection ${conn.id} open`));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (this.conn === conn) this.onMessage(conn, data, isBinary);
    });
    ws.on('error', (err: Error) => {
      if (this.conn === conn) this.debug(`connection ${conn.id} socket error: ${err.message}`);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      if (this.conn !== conn) return;
      this.lastCloseCode = code;
      this.drop({ kind: 'close', code, reason: reason.toString('utf8').slice(0, 200) }, code);
    });
  }

  /** Hot path: one websocket message. */
  private onMessage(conn: Connection, data: Buffer, isBinary: boolean): void {
    let message: Buffer = data;
    if (conn.inflater && isBinary) {
      let out: Buffer | null;
      try {
        // Transient output (a process-wide scratch buffer, overwritten by the next transient push): every use
        // of `message` below (scan, parse) finishes in this call and nothing keeps a reference to the bytes.
        out = conn.inflater.push(data, true);
      } catch (err) {
        this.reportError(err as Error);
        this.drop({ kind: 'malformed' });
        return;
      }
      if (out === null) return;
      message = out;
    }
    this.heartbeater.noteInbound();
    let header: ReturnType<typeof scanHeader>;
    try {
      header = scanHeader(message);
    } catch {
      header = null; // the scan must never throw; if it ever does, treat the frame as malformed
    }
    if (header === null) {
      this.counters.decodeErrors++;
      this.reportError(new GatewayError('DECODE_ERROR', `shard ${this.id}: gateway sent a message that is not a gateway payload (${message.length} bytes)`, { shardId: this.id }));
      this.drop({ kind: 'malformed' });
      return;
    }
    switch (header.op) {
      case 0:
        this.onDispatch(conn, message, header.t, header.s);
        return;
      case 11:
        this.heartbeater.ack();
        return;
      case 1:
        this.debug('gateway requested a heartbeat');
        this.heartbeater.beatNow();
        return;
      case 10:
        this.onHello(conn, message);
        return;
      case 7:
        this.debug('gateway asked to reconnect (op 7)');
        this.drop({ kind: 'reconnect-request' });
        return;
      case 9: {
        const payload = this.parse(message);
        if (payload) this.drop({ kind: 'invalid-session', resumable: payload.d === true });
        return;
      }
      default:
        this.reportError(new GatewayError('UNKNOWN_OP', `shard ${this.id}: gateway sent unknown op ${header.op}; ignored`, { shardId: this.id }));
    }
  }

  private parse(message: Buffer): ReturnType<typeof parsePayload> | null {
    try {
      return parsePayload(message);
    } catch (err) {
      this.counters.decodeErrors++;
      this.reportError(err as Error);
      this.drop({ kind: 'malformed' });
      return null;
    }
  }

  private onDispatch(conn: Connection, message: Buffer, t: string | null, s: number | null): void {
    if (s !== null) {
      if (s <= this.seq && this.sessionId !== null && t !== 'READY') {
        this.debug(`dropped duplicate dispatch ${t} seq ${s} (last ${this.seq})`);
        return;
      }
    }
    const type = t ?? '';
    const wanted = this.wanted === null || this.wanted.has(type);
    // Parsed even when not wanted: READY / RESUMED (compared directly: cheaper than a Set lookup)
    // and member chunks while a member request waits for them.
    if (!wanted && type !== 'READY' && type !== 'RESUMED' && !(type === 'GUILD_MEMBERS_CHUNK' && this.memberRequests.size > 0)) {
      if (s !== null) this.seq = s;
      this.counters.filtered++;
      return;
    }
    const forward = this.opts.forwardRaw;
    if (forward !== undefined && type !== 'READY' && type !== 'RESUMED' && type !== 'GUILD_CREATE' && type !== 'GUILD_DELETE' && type !== 'GUILD_MEMBERS_CHUNK') {
      if (s !== null) this.seq = s;
      this.counters.dispatches++;
      forward(type, s ?? this.seq, message.toString('utf8'));
      return;
    }
    let payload: ReturnType<typeof parsePayload>;
    try {
      payload = parsePayload(message);
    } catch (err) {
      this.counters.decodeErrors++;
      this.reportError(err as Error);
      if (s !== null) {
        // Resume from the last good sequence so the gateway replays this event; skip it if it fails twice.
        if (this.badSeq?.seq === s && ++this.badSeq.count >= 2) {
          this.seq = s;
          this.badSeq = null;
          return;
        }
        if (this.badSeq?.seq !== s) this.badSeq = { seq: s, count: 1 };
      }
      this.drop({ kind: 'malformed' });
      return;
    }
    if (s !== null) this.seq = s;
    if (type === 'READY') this.onReady(conn, payload.d as GatewayReadyDispatchData);
    else if (type === 'RESUMED') this.onResumed(conn);
    else if (type === 'GUILD_MEMBERS_CHUNK') {
      const chunk = payload.d as GuildMembersChunk;
      if (chunk.nonce) this.memberRequests.get(chunk.nonce)?.push(chunk);
    }
    if (!wanted) return;
    this.counters.dispatches++;
    const event = { shardId: this.id, type, sequence: s ?? this.seq, data: payload.d } as DispatchEvent;
    if (this.listenerCount('dispatch') > 0) {
      try {
        this.emit('dispatch', event);
      } catch (err) {
        this.reportError(new ShardlineError('LISTENER_ERROR', `a dispatch listener threw: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
      }
    }
    if (this.channels.size !== 0) for (const ch of this.channels) ch.push(event);
  }

  private onHello(conn: Connection, message: Buffer): void {
    const payload = this.parse(message);
    if (!payload) return;
    const interval = (payload.d as { heartbeat_interval?: unknown } | null)?.heartbeat_interval;
    if (typeof interval !== 'number' || !(interval > 0)) {
      this.reportError(new GatewayError('DECODE_ERROR', `shard ${this.id}: HELLO without a valid heartbeat_interval`, { shardId: this.id }));
      this.drop({ kind: 'malformed' });
      return;
    }
    if (conn.helloSeen) {
      this.reportError(new GatewayError('UNEXPECTED_HELLO', `shard ${this.id}: gateway sent a second HELLO on one connection; ignored`, { shardId: this.id }));
      return;
    }
    conn.helloSeen = true;
    this.clock.clearTimeout(conn.helloTimer);
    conn.helloTimer = undefined;
    this.debug(`HELLO: heartbeat every ${interval} ms`);
    this.limiter.reset(interval);
    this.heartbeater.start(interval);
    if (conn.resuming && this.sessionId) this.sendResume(conn);
    else void this.identify(conn);
  }

  private sendResume(conn: Connection): void {
    this.transition('resuming', `resuming session at seq ${this.seq} (attempt ${this.resumeAttempts})`);
    this.counters.resumes++;
    this.write(conn, JSON.stringify({ op: 6, d: { token: this.#token, session_id: this.sessionId, seq: this.seq } }));
    this.countSent(6);
    this.armReadyTimer(conn);
  }

  private async identify(conn: Connection): Promise<void> {
    this.transition('identifying', 'waiting for the identify queue');
    const abort = new AbortController();
    conn.identifyAbort = abort;
    try {
      await this.identifyQueue.acquire(this.id, abort.signal);
    } catch (err) {
      if (abort.signal.aborted || this.conn !== conn) return;
      // A queue that fails (e.g. the identify budget is spent) stops the shard with its error.
      this.fail(err instanceof GatewayError ? err : new GatewayError('IDENTIFY_QUEUE', `shard ${this.id}: identify queue failed: ${redact((err as Error).message, this.#token)}`, { shardId: this.id, cause: err }));
      return;
    }
    conn.identifyAbort = null;
    if (this.conn !== conn || conn.ws.readyState !== WebSocket.OPEN) return;
    this.counters.identifies++;
    this.clearSession(); // a new session: no old session id may survive next to a reset sequence
    const props = this.opts.properties ?? {};
    const d: Record<string, unknown> = {
      token: this.#token,
      intents: this.intents,
      shard: [this.id, this.total],
      properties: { os: props.os ?? process.platform, browser: props.browser ?? 'shardline', device: props.device ?? 'shardline' },
      large_threshold: this.opts.largeThreshold ?? 50,
      compress: false,
    };
    if (this.presence) d.presence = this.presence;
    this.debug(`IDENTIFY shard [${this.id}, ${this.total}] intents ${intentNames(this.intents).join('|') || 0}`);
    this.write(conn, JSON.stringify({ op: 2, d }));
    this.countSent(2);
    this.armReadyTimer(conn);
  }

  private armReadyTimer(conn: Connection): void {
    this.clock.clearTimeout(conn.readyTimer);
    const readyTimer = setDeadline(this.clock, this.opts.readyTimeout ?? 120_000, () => conn.readyTimer === readyTimer && this.conn === conn, () =>
      this.drop({ kind: 'ready-timeout' }),
    );
    conn.readyTimer = readyTimer;
  }

  private onReady(conn: Connection, d: GatewayReadyDispatchData): void {
    this.clock.clearTimeout(conn.readyTimer);
    conn.readyTimer = undefined;
    this.sessionId = d.session_id;
    this.resumeUrl = d.resume_gateway_url;
    this.resumeAttempts = 0;
    this.badSeq = null;
    this.backoff.reset();
    this.transition('ready', `READY: session ${d.session_id.slice(0, 8)}…, ${d.guilds?.length ?? 0} guilds`);
    this.warnUncoveredEvents();
    this.limiter.open((data) => this.write(conn, data));
    if (this.pressure > 0) conn.ws.pause();
    this.emit('ready', d, this.id);
    this.settleConnect();
  }

  private onResumed(conn: Connection): void {
    this.clock.clearTimeout(conn.readyTimer);
    conn.readyTimer = undefined;
    this.resumeAttempts = 0;
    this.badSeq = null;
    this.backoff.reset();
    this.transition('ready', `RESUMED at seq ${this.seq}`);
    this.limiter.open((data) => this.write(conn, data));
    if (this.pressure > 0) conn.ws.pause();
    this.emit('resumed', this.session!, this.id);
    this.settleConnect();
  }

  private settleConnect(): void {
    const c = this.connecting;
    this.connecting = null;
    c?.resolve();
  }

  private write(conn: Connection, data: string): void {
    if (conn.ws.readyState !== WebSocket.OPEN) throw new SendError('NOT_CONNECTED', `shard ${this.id} socket is not open`);
    conn.ws.send(data);
    this.limiter.record();
  }

  private sendHeartbeat(): void {
    const conn = this.conn;
    if (!conn || conn.ws.readyState !== WebSocket.OPEN) return;
    conn.ws.send(`{"op":1,"d":${this.seq > 0 ? this.seq : 'null'}}`);
    this.limiter.record();
    this.countSent(1);
  }

  /**
   * The current connection ended (or must end) for `cause`. Tear it down and act on the decision table:
   * resume, identify anew, or stop for good.
   */
  private drop(cause: DisconnectCause, receivedCode: number | null = null): void {
    const conn = this.conn;
    if (!conn) return;
    // A dead socket gets no close handshake (it would hang): terminate a zombie at once.
    void this.teardown(conn, cause.kind === 'zombie' ? null : RESUMABLE_CLOSE_CODE, true);
    const decision = decide(cause, { resumeOnSessionTimeout: this.opts.resumeOnSessionTimeout });
    let action = decision.action;
    if (action === 'resume' && (!this.sessionId || !this.resumeUrl)) action = 'identify';
    if (action === 'resume' && this.resumeAttempts >= (this.opts.maxResumeAttempts ?? 3)) {
      this.debug(`${this.resumeAttempts} resume attempts failed; identifying anew`);
      action = 'identify';
    }
    this.emit('disconnected', { shardId: this.id, code: receivedCode, cause: decision.label, kind: cause.kind, action });
    if (action === 'fatal') {
      const code = cause.kind === 'close' ? cause.code : null;
      const name = code !== null ? CLOSE_CODES[code]?.name ?? '' : '';
      this.fail(
        new GatewayError(`CLOSE_${code}`, `shard ${this.id}: gateway closed the session with ${code} ${name}: ${decision.fix ?? 'not retried'}`, {
          closeCode: code,
          shardId: this.id,
        }),
      );
      return;
    }
    if (action === 'identify') this.clearSession();
    this.counters.reconnects++;
    let delay = this.backoff.next();
    if (decision.identifyDelay) delay = Math.max(delay, 1000 + Math.floor(this.random() * 4000));
    this.transition('reconnecting', `${decision.label}; ${action} in ${delay} ms`);
    this.reconnectTimer = this.clock.setTimeout(() => this.openSocket(`reconnect after ${decision.label}`), delay);
  }

  /** Release one connection: timers, inflater, listeners, socket. Resolves when the socket is closed. */
  private teardown(conn: Connection, code: number | null, keepHandshakeShort: boolean): Promise<void> {
    if (this.conn === conn) this.conn = null;
    this.clock.clearTimeout(conn.helloTimer);
    this.clock.clearTimeout(conn.readyTimer);
    conn.helloTimer = conn.readyTimer = undefined;
    conn.identifyAbort?.abort(new ShardlineError('ABORTED', 'connection closed'));
    this.heartbeater.stop();
    this.limiter.open(null);
    // Called once per connection: every caller passes the current one, and this.conn is cleared above.
    if (conn.inflater) {
      const st = conn.inflater.stats;
      this.inflatePast.bytesIn += st.bytesIn;
      this.inflatePast.bytesOut += st.bytesOut;
      this.inflatePast.messages += st.messages;
    }
    conn.inflater?.close();
    const ws = conn.ws;
    ws.removeAllListeners('message');
    ws.removeAllListeners('open');
    ws.removeAllListeners('close');
    ws.removeAllListeners('error');
    ws.on('error', () => {}); // late socket errors of a discarded connection must not crash the process
    if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, keepHandshakeShort ? 1000 : 2000);
      timer.unref();
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (code === null || ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(code);
    });
  }

  /** Stop for good with `err`: state fatal, connect() rejects, iterators throw, commands are rejected. */
  private fail(err: GatewayError): void {
    this.clock.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    if (this.conn) void this.teardown(this.conn, 1000, true);
    this.transition('fatal', err.message);
    this.reportError(err);
    this.finish(new SendError('SHARD_CLOSED', `shard ${this.id} stopped: ${err.message}`), err);
  }

  /** End everything that waits on this shard. */
  private finish(sendError: Error, fatal: GatewayError | undefined): void {
    this.limiter.rejectAll(sendError);
    for (const ch of this.channels) ch.end(fatal);
    this.channels.clear();
    this.pressure = 0;
    this.userPaused = false;
    this.heartbeater.setPaused(false);
    for (const req of this.memberRequests.values()) req.fail(sendError);
    this.memberRequests.clear();
    const c = this.connecting;
    this.connecting = null;
    c?.reject(fatal ?? new GatewayError('SHARD_CLOSED', `shard ${this.id} was closed before it was ready`, { shardId: this.id }));
  }

  private adoptSession(session: Session): void {
    this.sessionId = session.sessionId;
    this.seq = session.sequence;
    this.resumeUrl = session.resumeUrl;
  }

  private clearSession(): void {
    this.sessionId = null;
    this.resumeUrl = null;
    this.seq = 0;
    this.resumeAttempts = 0;
  }

  private setPressure(delta: number): void {
    const before = this.pressure > 0;
    this.pressure = Math.max(0, this.pressure + delta);
    const after = this.pressure > 0;
    if (before === after) return;
    this.heartbeater.setPaused(after);
    const ws = this.conn?.ws;
    if (after) {
      this.debug('event consumer is behind: pausing the socket');
      ws?.pause();
    } else {
      this.debug('event consumer caught up: resuming the socket');
      ws?.resume();
    }
  }

  private transition(to: ShardState, reason: string): void {
    const from = this._state;
    if (from === to && to !== 'reconnecting') return;
    if (from !== to && !canTransition(from, to)) {
      this.debug(`ignored transition ${from} → ${to} (${reason})`);
      return;
    }
    this._state = to;
    const safe = redact(reason, this.#token);
    this.debug(`${from} → ${to}: ${safe}`);
    this.emit('stateChange', { shardId: this.id, from, to, reason: safe, cause: { kind: 'connect', reason: safe } });
  }

  private warnUncoveredEvents(): void {
    if (!this.wanted || this.listenerCount('debug') === 0) return;
    for (const t of this.wanted) {
      const need = intentsForEvent(t);
      if (need !== 0 && (need & this.intents) === 0) {
        this.debug(`events includes ${t} but intents lack ${intentNames(need).join(' or ')}: it will never arrive`);
      }
    }
  }

  private debug(message: string): void {
    if (this.listenerCount('debug') === 0) return;
    this.emit('debug', { shardId: this.id, message: redact(message, this.#token) });
  }

  private reportError(err: Error): void {
    if (err.message.includes(this.#token)) err.message = redact(err.message, this.#token);
    this.debug(`error: ${err.message}`);
    this.emit('error', err, this.id);
  }
}
