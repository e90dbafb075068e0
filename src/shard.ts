import { inspect } from 'node:util';
import WebSocket from 'ws';
import type { GatewayRequestGuildMembersData, GatewayVoiceStateUpdateData } from 'discord-api-types/v10';
import { EventChannel } from './channel.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { TypedEmitter } from './emitter.js';
import { GatewayError, GatewayUnreachableError, RateLimitedError, SendError, ShardlineError, redact } from './errors.js';
import { toDisconnectedEvent, toStateChange, type DispatchEvent, type PresenceData, type ShardEvent, type ShardEventMap } from './events.js';
import type { Inflater, TransportCompression } from './inflate.js';
import { abortError, bounded, type ConnectAttempt, checkTimeout, connectAttempt, unreachableError } from './bounded.js';
import { MemberRequest, type MemberRequestOptions, memberNonce, memberRateLimitedError, memberRetries, missingIntentError } from './members.js';
import { LocalIdentifyQueue, type IdentifyQueue } from './queue.js';
import type { Session } from './session.js';
import { checkShardOptions, shardCoreOptions, type ShardConnectOptions, type ShardOptions } from './shard-options.js';
import { API_VERSION, MAX_PAYLOAD_BYTES, ShardCore, type Effect, type ShardCounters, type TimerName } from './shard-core.js';
import { closeInflater, closeSocket, type InflateTotals, inflateStats, openSocket, type Socket } from './shard-socket.js';
import type { ShardState } from './state.js';

export { API_VERSION, MAX_PAYLOAD_BYTES };
export { DEFAULT_GATEWAY_URL, type ShardConnectOptions, type ShardOptions } from './shard-options.js';
export type { MemberRequestOptions } from './members.js';

/**
 * One websocket session with Discord's gateway: identifies (or resumes), heartbeats, detects zombie
 * connections, reconnects by the protocol's rules, inflates `zlib-stream`, rate-limits what it sends and
 * delivers typed dispatches.
 *
 * The protocol itself is a sans-IO state machine (`ShardCore`); this class is its driver: it owns the socket,
 * the timers and the token, and turns the core's effects into I/O and events.
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
  readonly #core: ShardCore;
  readonly #clock: Clock;
  readonly #queue: IdentifyQueue;
  readonly #compression: TransportCompression | false;
  readonly #maxMessageSize: number;
  readonly #eventBufferSize: number;
  readonly #memberRequestTimeout: number;
  readonly #forwardRaw: ShardOptions['forwardRaw'];
  // Per-shard memory matters (thousands of idle shards per process): one socket field instead of a map, fixed
  // timer slots, and the rarely used collections created on first use.
  #socket: Socket | null = null;
  #closing: Set<Promise<void>> | null = null;
  readonly #timers: Record<TimerName, TimerHandle | undefined> = { hello: undefined, ready: undefined, heartbeat: undefined, reconnect: undefined, commands: undefined, guilds: undefined };
  #commands: Map<number, { resolve: () => void; reject: (e: Error) => void }> | null = null;
  #channels: Set<EventChannel<DispatchEvent>> | null = null;
  #memberRequests: Map<string, MemberRequest> | null = null;
  #inflatePast: InflateTotals | null = null;
  #draining = false;
  #commandIds = 0;
  #nonces = 0;
  #connecting: ConnectAttempt | null = null;
  #pressure = 0;
  #userPaused = false;

  constructor(options: ShardOptions) {
    super();
    const v = checkShardOptions(options);
    this.#token = v.token;
    this.intents = v.intents;
    this.id = v.id;
    this.total = v.total;
    this.#clock = options.clock ?? systemClock;
    this.#queue = options.identifyQueue ?? new LocalIdentifyQueue({ clock: this.#clock });
    this.#compression = options.compression === undefined ? 'zlib-stream' : options.compression;
    this.#maxMessageSize = options.maxMessageSize ?? 64 * 1024 * 1024;
    this.#eventBufferSize = options.eventBufferSize ?? 10_000;
    this.#memberRequestTimeout = options.memberRequestTimeout ?? 30_000;
    this.#forwardRaw = options.forwardRaw;
    const clock = this.#clock;
    const now = clock === systemClock ? systemClock.now : () => clock.now(); // systemClock's now needs no `this`
    this.#core = new ShardCore(shardCoreOptions(options, v, this.#compression, now, this)); // the shard itself tells whether debug lines are wanted (no closure per shard)
    if (options.presence !== undefined && this.#core.identifySize(options.presence) > MAX_PAYLOAD_BYTES) {
      throw new ShardlineError('INVALID_OPTION', `presence makes IDENTIFY larger than ${MAX_PAYLOAD_BYTES} bytes: shorten it`);
    }
  }

  /** Current lifecycle state. */
  get state(): ShardState {
    return this.#core.state;
  }

  /** The session to resume (sequence is the last one received), or null before READY / after a non-resumable close. */
  get session(): Session | null {
    return this.#core.session;
  }

  /** Heartbeat round trips in ms (most recent last) and their average. */
  get latency(): { recent: number[]; average: number | null } {
    return this.#core.heartbeat.latency;
  }

  /** Commands waiting to be sent. */
  get queuedCommands(): number {
    return this.#core.queued;
  }

  /** Heartbeat ACKs received so far; each one adds a sample to `latency.recent` (kept: the last 10). For metrics. */
  get heartbeatAcks(): number {
    return this.#core.heartbeat.acks;
  }

  /** What happened so far: reconnects, resumes, identifies, zombies, filtered / delivered / skipped dispatches, ... */
  get counters(): Readonly<ShardCounters> {
    return this.#core.counters;
  }

  /** Last close code received from the gateway. */
  get lastCloseCode(): number | null {
    return this.#core.lastCloseCode;
  }

  /** Payloads written to the socket, by op (heartbeats, IDENTIFY, RESUME and commands). Read by metrics. */
  get payloadsSent(): ReadonlyMap<number, number> {
    return this.#core.sent;
  }

  /** True while the socket is not being read (by `pause()` or a full `events()` buffer). */
  get paused(): boolean {
    return this.#pressure > 0;
  }

  /**
   * Transport decompression totals over every connection so far (compressed bytes in, decompressed bytes out,
   * messages), the compressed bytes the current connection holds for an incomplete message, and its backend.
   */
  get inflateStats(): { bytesIn: number; bytesOut: number; messages: number; bufferSize: number; backend: string | null } {
    const conn = this.#core.connection;
    return inflateStats(this.#inflatePast, conn !== null && this.#socket?.conn === conn ? this.#socket.inflater : null);
  }

  /**
   * Connect, then IDENTIFY (or RESUME a given session). Resolves on READY or RESUMED; rejects with a
   * {@link GatewayError} when the gateway ends the session for good (bad token, disallowed intents, ...)
   * or when {@link Shard.close} is called first. Reconnects afterwards are automatic; calling it during a
   * reconnect's back-off reconnects at once (never a second socket).
   *
   * An unreachable gateway (refused, DNS, no HELLO) is retried with back-off and reported as it happens (a
   * `disconnected` event with kind `connect-failed` and a `stateChange` per attempt). Without `timeout` that goes
   * on until the shard is ready or closed; with `timeout` (ms on the shard's clock) the promise rejects with a
   * {@link GatewayUnreachableError}, and when `signal` aborts with an error named `AbortError`; either way the shard
   * is then closed, keeping its session, and no socket or timer of it is left.
   *
   * @example
   * ```ts
   * try {
   *   await shard.connect({ timeout: 30_000, signal: AbortSignal.timeout(60_000) });
   * } catch (err) {
   *   if (err instanceof GatewayUnreachableError) console.error(`gateway unreachable after ${err.attempts} attempts`);
   * }
   * ```
   */
  connect(options: ShardConnectOptions = {}): Promise<void> {
    const { timeout, signal } = options;
    const invalid = checkTimeout(timeout);
    if (invalid) return Promise.reject(invalid);
    if (this.#core.state === 'ready') return Promise.resolve();
    if (signal?.aborted) return Promise.reject(abortError(signal, `shard ${this.id}: connect aborted`));
    const pending = (this.#connecting ??= connectAttempt());
    this.#core.connect(); // a no-op while a connection is open or opening; hurries a reconnect's back-off
    this.#drain();
    if (timeout === undefined && signal === undefined) return pending.promise;
    return bounded(pending.promise, {
      clock: this.#clock,
      timeout,
      signal,
      abortMessage: `shard ${this.id}: connect aborted`,
      timedOut: () => unreachableError(this.id, timeout!, pending, (m) => redact(m, this.#token)),
      giveUp: () => {
        if (this.#connecting === pending) this.close({ resumable: true }).catch(() => undefined);
      },
    });
  }

  /**
   * The shard's dispatches as an async iterable. Create it before `connect()` to see every event. When the
   * consumer falls `eventBufferSize` events behind, the shard stops reading its socket until it catches up.
   * The iteration ends when the shard is closed, and throws the {@link GatewayError} of a fatal close.
   */
  events(): AsyncIterableIterator<DispatchEvent> {
    // The channel reports only transitions (full, then drained to half), so each one is one unit of pressure.
    const channel: EventChannel<DispatchEvent> = new EventChannel<DispatchEvent>(
      this.#eventBufferSize,
      (full) => this.#setPressure(full ? 1 : -1),
      () => this.#channels?.delete(channel),
    );
    const s = this.#core.state;
    if (s === 'closed' || s === 'fatal') channel.end();
    else (this.#channels ??= new Set()).add(channel);
    return channel.iterator();
  }

  /**
   * Send a raw gateway command (rate limited; waits while reconnecting). Resolves once written to the socket.
   * Rejects with a {@link SendError} when the encoded payload exceeds 4096 bytes, the queue is full, or the
   * shard is closed.
   */
  send(payload: { op: number; d: unknown }): Promise<void> {
    const id = ++this.#commandIds;
    const commands = (this.#commands ??= new Map());
    const promise = new Promise<void>((resolve, reject) => commands.set(id, { resolve, reject }));
    this.#core.command(id, payload.op, payload.d);
    this.#drain();
    return promise;
  }

  /**
   * Update the bot's presence (op 3; at most 5 per 20 s, queued beyond that). Once accepted, the presence is
   * also sent with any later IDENTIFY, so a re-identified shard keeps it; a presence too large to IDENTIFY with
   * is rejected and not remembered.
   */
  updatePresence(presence: PresenceData): Promise<void> {
    return this.send({ op: 3, d: presence });
  }

  /**
   * Stop reading the socket (back-pressure from a slow consumer) until {@link Shard.resume}. Heartbeats keep
   * going and zombie detection is suspended meanwhile; a reconnect completes its handshake and then pauses.
   */
  pause(): void {
    if (this.#userPaused) return;
    this.#userPaused = true;
    this.#setPressure(1);
  }

  /** Resume reading after {@link Shard.pause}. */
  resume(): void {
    if (!this.#userPaused) return;
    this.#userPaused = false;
    this.#setPressure(-1);
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
   * When the gateway answers RATE_LIMITED (e.g. a second request for every member of a guild within 30 s) the
   * request fails at once with a {@link RateLimitedError} (`retryAfter` ms) — or, with `{ retry: true }`, waits
   * `retryAfter` and asks again, at most 3 times. A request these intents can never be answered for (every member
   * without `GuildMembers`, `presences: true` without `GuildPresences`) fails at once with `MISSING_INTENT`.
   *
   * @example
   * ```ts
   * const chunks = await shard.requestGuildMembers({ guild_id: '123', query: '', limit: 0 }, { retry: true });
   * for await (const chunk of shard.requestGuildMembers({ guild_id: '123', user_ids: ['456'] })) console.log(chunk.members);
   * ```
   */
  requestGuildMembers(request: GatewayRequestGuildMembersData, options: MemberRequestOptions = {}): MemberRequest {
    const nonce = request.nonce ?? memberNonce(this.id, this.#nonces++);
    const d = { ...request, nonce };
    const send = () => void this.send({ op: 8, d }).catch((err: Error) => req.fail(err));
    const retries = memberRetries(options);
    const req = new MemberRequest(nonce, this.#clock, this.#memberRequestTimeout, () => this.#memberRequests?.delete(nonce), retries > 0 ? { retries, resend: send } : null);
    if (Buffer.byteLength(nonce) > 32) {
      req.fail(new SendError('PAYLOAD_TOO_LARGE', 'nonce must be at most 32 bytes'));
      return req;
    }
    const missing = missingIntentError(this.id, this.intents, request);
    if (missing) {
      req.fail(missing);
      return req;
    }
    (this.#memberRequests ??= new Map()).set(nonce, req);
    send();
    return req;
  }

  /**
   * Close the shard. With `resumable: true` the socket is closed with a non-1000 code so the session survives,
   * and the session is returned to be handed to a new shard (`new Shard({ session })`) within a few minutes.
   * Pending commands are rejected, iterators end, every timer and socket is released.
   */
  async close(options: { resumable?: boolean; code?: number } = {}): Promise<Session | null> {
    const session = this.#core.close(options.resumable ?? false, options.code);
    this.#drain();
    this.#finish(new SendError('SHARD_CLOSED', `shard ${this.id} was closed`), undefined);
    if (this.#closing) await Promise.all([...this.#closing]);
    return session;
  }

  /** A summary without secrets, for `console.log(shard)` and `util.inspect`. */
  [inspect.custom](): string {
    return `Shard ${inspect({ id: this.id, total: this.total, state: this.state, session: this.session?.sessionId ?? null })}`;
  }

  /** A summary without secrets, for `JSON.stringify(shard)` (and loggers that serialise it). */
  toJSON(): { id: number; total: number; intents: number; state: ShardState; sessionId: string | null; sequence: number } {
    const session = this.session;
    return { id: this.id, total: this.total, intents: this.intents, state: this.state, sessionId: session?.sessionId ?? null, sequence: session?.sequence ?? 0 };
  }

  // ---- the driver: feed the core, apply its effects ----------------------------------------------------

  /** Apply the core's pending effects in order (effects of inputs made by listeners meanwhile are applied too). */
  #drain(): void {
    const effects = this.#core.effects;
    if (this.#draining || effects.length === 0) return;
    this.#draining = true;
    let i = 0;
    try {
      while (i < effects.length) this.#apply(effects[i++]!);
    } finally {
      effects.splice(0, i);
      this.#draining = false;
    }
  }

  #apply(e: Effect): void {
    switch (e.type) {
      case 'dispatch':
        this.#deliver(e.event);
        return;
      case 'send': {
        const socket = this.#socket;
        if (socket !== null && socket.conn === e.conn && socket.ws.readyState === WebSocket.OPEN) socket.ws.send(e.data);
        return;
      }
      case 'raw':
        this.#forwardRaw?.(e.t, e.s, Buffer.from(e.bytes.buffer, e.bytes.byteOffset, e.bytes.byteLength).toString('utf8'));
        return;
      case 'event':
        this.#event(e.event);
        return;
      case 'timer':
        this.#arm(e.timer, e.at);
        return;
      case 'auth': {
        const socket = this.#socket;
        if (socket !== null && socket.conn === e.conn && socket.ws.readyState === WebSocket.OPEN) socket.ws.send(JSON.stringify({ op: e.op, d: { token: this.#token, ...e.d } }));
        return;
      }
      case 'command': {
        const c = this.#commands?.get(e.id);
        if (!c) return;
        this.#commands!.delete(e.id);
        if (e.error) c.reject(e.error);
        else c.resolve();
        return;
      }
      case 'open':
        if (this.#connecting) this.#connecting.attempts++;
        this.#open(e.conn, e.url);
        return;
      case 'close':
        this.#teardown(e.conn, e.code);
        return;
      case 'identify':
        this.#acquire(e.conn);
        return;
      case 'cancelIdentify':
        if (this.#socket?.conn === e.conn) this.#socket.identifyAbort?.abort(new ShardlineError('ABORTED', 'connection closed'));
        return;
      case 'read': {
        const conn = this.#core.connection;
        const ws = conn !== null && this.#socket?.conn === conn ? this.#socket.ws : undefined;
        if (e.paused) ws?.pause();
        else ws?.resume();
        return;
      }
      case 'chunk': {
        const nonce = e.data.nonce;
        if (nonce) this.#memberRequests?.get(nonce)?.push(e.data);
        return;
      }
      case 'fatal':
        this.#finish(new SendError('SHARD_CLOSED', `shard ${this.id} stopped: ${e.error.message}`), e.error);
        return;
    }
  }

  #deliver(event: DispatchEvent): void {
    if (this.listenerCount('dispatch') !== 0) {
      try {
        this.emit('dispatch', event);
      } catch (err) {
        this.#report(new ShardlineError('LISTENER_ERROR', `a dispatch listener threw: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
      }
    }
    const channels = this.#channels;
    if (channels !== null && channels.size !== 0) for (const ch of channels) ch.push(event);
    if (this.listenerCount('event') !== 0) this.#emitEvent({ kind: 'dispatch', shardId: this.id, event });
  }

  /** One event from the core: redacted, on the one stream, and on the named events. */
  #event(e: ShardEvent): void {
    switch (e.kind) {
      case 'state':
        if (e.cause.reason.includes(this.#token)) e.cause.reason = redact(e.cause.reason, this.#token);
        this.#emitEvent(e);
        this.#safeEmit('stateChange', toStateChange(e));
        return;
      case 'ready':
        this.#emitEvent(e);
        this.#safeEmit('ready', e.data, e.shardId);
        this.#settleConnect();
        return;
      case 'resumed':
        this.#emitEvent(e);
        this.#safeEmit('resumed', e.session, e.shardId);
        this.#settleConnect();
        return;
      case 'disconnected':
        if (this.#connecting) this.#connecting.lastCause = e.label;
        this.#emitEvent(e);
        this.#safeEmit('disconnected', toDisconnectedEvent(e));
        return;
      case 'rateLimited': {
        this.#emitEvent(e);
        const { kind: _k, ...event } = e;
        this.#safeEmit('rateLimited', event);
        const req = e.nonce !== null ? this.#memberRequests?.get(e.nonce) : undefined;
        if (req) req.rateLimited(memberRateLimitedError(e));
        return;
      }
      case 'guildsReady': {
        this.#emitEvent(e);
        const { kind: _k, ...event } = e;
        this.#safeEmit('guildsReady', event);
        return;
      }
      case 'silent': {
        this.#emitEvent(e);
        const { kind: _k, ...event } = e;
        this.#safeEmit('silent', event);
        return;
      }
      case 'error':
        this.#report(e.error);
        return;
      case 'debug':
        this.#debug(e.message);
        return;
      default:
        this.#emitEvent(e);
    }
  }

  #emitEvent(e: ShardEvent): void {
    if (this.listenerCount('event') === 0) return;
    try {
      this.emit('event', e);
    } catch (err) {
      if (e.kind !== 'error') this.#report(new ShardlineError('LISTENER_ERROR', `an event listener threw: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
    }
  }

  /** Emit a named event; a listener that throws is reported, never breaks the protocol. */
  #safeEmit<K extends 'stateChange' | 'ready' | 'resumed' | 'disconnected' | 'rateLimited' | 'guildsReady' | 'silent'>(name: K, ...args: ShardEventMap[K]): void {
    try {
      this.emit(name, ...args);
    } catch (err) {
      this.#report(new ShardlineError('LISTENER_ERROR', `a ${name} listener threw: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
    }
  }

  #report(err: Error): void {
    if (err.message.includes(this.#token)) err.message = redact(err.message, this.#token);
    if (this.#core.debugOn) this.#debug(`error: ${err.message}`);
    this.#emitEvent({ kind: 'error', shardId: this.id, error: err });
    try {
      this.emit('error', err, this.id);
    } catch {
      // an error listener that throws has nowhere left to report to
    }
  }

  #debug(message: string): void {
    const safe = redact(message, this.#token);
    this.#emitEvent({ kind: 'debug', shardId: this.id, message: safe });
    if (this.listenerCount('debug') === 0) return;
    try {
      this.emit('debug', { shardId: this.id, message: safe });
    } catch {
      // a debug listener that throws is ignored
    }
  }

  #open(conn: number, url: string): void {
    let inflater: Inflater | null;
    let ws: WebSocket;
    try {
      ({ ws, inflater } = openSocket(url, this.#compression, this.#maxMessageSize));
    } catch (err) {
      const error = new GatewayError('CONNECT_FAILED', `shard ${this.id}: cannot open ${new URL(url).host}: ${(err as Error).message}`, { shardId: this.id, cause: err });
      queueMicrotask(() => {
        this.#core.openFailed(conn, error);
        this.#drain();
      });
      return;
    }
    if (this.#socket !== null) this.#teardown(this.#socket.conn, null); // never two sockets (the core closes first)
    this.#socket = { conn, ws, inflater, identifyAbort: null };
    // Until the socket opens, an error is why the connect failed (refused, DNS, an HTTP answer instead of an upgrade).
    let failure: Error | null | undefined = null;
    // 'message' is added once the socket is open (ws emits 'open' before it reads a frame): the socket's listener
    // table then holds three names (error, close, message) and 'open''s deleted slot, rebuilt at the size for three
    // (~0.1 KB less per shard than four names registered at once).
    ws.once('open', () => {
      failure = undefined;
      ws.on('message', (data: Buffer, isBinary: boolean) => this.#message(conn, inflater, data, isBinary));
      this.#core.opened(conn);
      this.#drain();
    });
    ws.on('error', (err: Error) => {
      if (failure === null) failure = err;
      if (this.#core.debugOn) this.#debug(`connection ${conn} socket error: ${err.message}`);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      if (failure !== undefined) {
        const why = redact(failure?.message ?? `closed with ${code} before it opened`, this.#token);
        const error = new GatewayError('CONNECT_FAILED', `shard ${this.id}: cannot connect to ${new URL(ws.url).host}: ${why}`, { shardId: this.id, cause: failure }); // ws.url, not url: the closure would keep the string alive per connection
        this.#core.openFailed(conn, error);
        this.#drain();
        const pending = this.#connecting;
        if (pending) {
          pending.lastCause = why;
          pending.lastError = error;
        }
        return;
      }
      this.#core.closed(conn, code, reason.toString('utf8'));
      this.#drain();
    });
  }

  /** Hot path: one websocket message. */
  #message(conn: number, inflater: Inflater | null, data: Buffer, isBinary: boolean): void {
    let message: Buffer = data;
    if (inflater !== null && isBinary) {
      let out: Buffer | null;
      try {
        // Transient output (a process-wide scratch buffer, overwritten by the next transient push): the core
        // and every effect it produces consume it before this call returns.
        out = inflater.push(data, true);
      } catch (err) {
        this.#core.malformed(conn, err as Error);
        this.#drain();
        return;
      }
      if (out === null) return;
      message = out;
    }
    this.#core.message(conn, message);
    this.#drain();
  }

  #acquire(conn: number): void {
    const socket = this.#socket;
    if (socket === null || socket.conn !== conn) return;
    const signal = (socket.identifyAbort ??= new AbortController()).signal;
    // Once the queue has answered, the controller has nothing left to cancel: drop it (~0.6 KB per idle shard).
    const settled = (): void => {
      if (socket.identifyAbort?.signal === signal) socket.identifyAbort = null;
    };
    this.#queue.acquire(this.id, signal).then(
      () => {
        if (signal.aborted) return;
        settled();
        this.#core.identifyGranted(conn);
        this.#drain();
      },
      (err: unknown) => {
        if (signal.aborted) return;
        settled();
        const error = err instanceof Error ? err : new Error(String(err));
        if (error.message.includes(this.#token)) error.message = redact(error.message, this.#token);
        this.#core.identifyFailed(conn, error);
        this.#drain();
      },
    );
  }

  /** Release one connection: inflater, listeners, socket. Its close completes in the background (close() awaits it). */
  #teardown(conn: number, code: number | null): void {
    const socket = this.#socket;
    if (socket === null || socket.conn !== conn) return;
    this.#socket = null;
    socket.identifyAbort?.abort(new ShardlineError('ABORTED', 'connection closed'));
    if (socket.inflater) this.#inflatePast = closeInflater(socket.inflater, this.#inflatePast);
    socket.ws.removeAllListeners();
    const closed = closeSocket(socket.ws, code);
    if (closed === null) return;
    const closing = (this.#closing ??= new Set());
    closing.add(closed);
    void closed.then(() => closing.delete(closed));
  }

  /**
   * Arm (or clear) a timer. A timer that fires late (the event loop was stalled by GC, a blocking handler or a busy
   * host) hands its input to the core only after the next I/O poll: Node runs timers before it reads sockets, and
   * the message that makes the deadline moot (an ACK, HELLO, READY) may be sitting unread.
   */
  #arm(name: TimerName, at: number | null): void {
    const clock = this.#clock;
    const prev = this.#timers[name];
    if (prev !== undefined) clock.clearTimeout(prev);
    if (at === null) {
      this.#timers[name] = undefined;
      return;
    }
    // One closure per armed timer, its handle as the identity (an idle shard keeps its heartbeat armed).
    let handle: TimerHandle | undefined;
    const made = clock.setTimeout(
      () => {
        if (handle === undefined || this.#timers[name] !== handle) return;
        if (clock.now() <= at + 1) this.#fire(name, handle);
        else setImmediate(() => this.#fire(name, handle!));
      },
      Math.max(0, at - clock.now()),
    );
    handle = made ?? ({} as TimerHandle); // a custom clock that returns no handle still gets an identity
    this.#timers[name] = handle;
  }

  #fire(name: TimerName, handle: TimerHandle): void {
    if (this.#timers[name] !== handle) return;
    this.#timers[name] = undefined;
    this.#core.timer(name);
    this.#drain();
  }

  #settleConnect(): void {
    const c = this.#connecting;
    this.#connecting = null;
    c?.resolve();
  }

  /** End everything that waits on this shard. */
  #finish(sendError: Error, fatal: GatewayError | undefined): void {
    const commands = this.#commands;
    if (commands) {
      for (const [id, c] of commands) {
        commands.delete(id);
        c.reject(sendError);
      }
    }
    if (this.#channels) {
      for (const ch of this.#channels) ch.end(fatal);
      this.#channels.clear();
    }
    if (this.#pressure !== 0) {
      this.#pressure = 0;
      this.#userPaused = false;
      this.#core.pause(false);
      this.#drain();
    }
    if (this.#memberRequests) {
      for (const req of this.#memberRequests.values()) req.fail(sendError);
      this.#memberRequests.clear();
    }
    const timers = this.#timers;
    for (const name of Object.keys(timers) as TimerName[]) {
      const t = timers[name];
      if (t !== undefined) this.#clock.clearTimeout(t);
      timers[name] = undefined;
    }
    const c = this.#connecting;
    this.#connecting = null;
    c?.reject(fatal ?? new GatewayError('SHARD_CLOSED', `shard ${this.id} was closed before it was ready`, { shardId: this.id }));
  }

  #setPressure(delta: number): void {
    const before = this.#pressure > 0;
    this.#pressure = Math.max(0, this.#pressure + delta);
    const after = this.#pressure > 0;
    if (before === after) return;
    this.#core.pause(after);
    this.#drain();
  }
}
