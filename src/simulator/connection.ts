/**
 * One client connection of the simulator: query parsing, HELLO, inbound decoding and validation order,
 * heartbeats and ACKs, the send limit, and a strictly ordered (compressed) outbound queue.
 * Session logic (IDENTIFY / RESUME / requests) is delegated to a {@link ConnectionHost}.
 * @packageDocumentation
 */
import zlib from 'node:zlib';
import { WebSocket } from 'ws';
import type { Clock, TimerHandle } from '../clock.js';
import { createCompressor, garbageFrame, splitFrames, zstdAvailable, type MessageCompressor } from './compress.js';
import { WindowLimiter } from './limits.js';
import { controlEnvelope, type SessionSink, type SimSession } from './session.js';
import type { ResolvedOptions, SimCompression, SimConnectionInfo, SimStats } from './types.js';

/** Largest client payload the gateway accepts (bytes). */
export const MAX_CLIENT_PAYLOAD = 4096;
/** [SIM] With IDENTIFY `compress: true` (and no transport compression) messages of at least this many bytes are
 *  sent as independent zlib streams in binary frames. */
export const PAYLOAD_COMPRESS_THRESHOLD = 1024;
/** Ops a client may send. */
const CLIENT_OPS: ReadonlySet<number> = new Set([1, 2, 3, 4, 6, 8, 31, 43]);

/** What a connection needs from the simulator. */
export interface ConnectionHost {
  readonly clock: Clock;
  readonly opts: ResolvedOptions;
  readonly stats: SimStats;
  /** A decoded client payload (before it is acted on). */
  onPayload(conn: SimConnection, op: number, d: unknown): void;
  onHeartbeat(conn: SimConnection, d: unknown): void;
  onIdentify(conn: SimConnection, d: unknown): void;
  onResume(conn: SimConnection, d: unknown): void;
  /** Ops 3, 4, 8, 31, 43 after authentication. */
  onRequest(conn: SimConnection, op: number, d: unknown): void;
  onClosed(conn: SimConnection, code: number, reason: string, byClient: boolean): void;
  /** A bug in the simulator surfaced while handling client input (the connection is closed with 4000). */
  onError(err: Error): void;
}

/** Parsed request line of a gateway connection. */
export interface ConnectionRequest {
  path: string;
  query: Record<string, string>;
  resumeUrlUsed: boolean;
}

/** A simulated gateway connection. */
export class SimConnection implements SessionSink {
  readonly compression: SimCompression | null;
  readonly encoding: string;
  readonly version: number | null;
  readonly openedAt: number;
  shardId: number | null = null;
  total: number | null = null;
  session: SimSession | null = null;
  identified = false;
  resumed = false;
  acking: boolean;
  /** Close code the server chose, when the server closed (or terminated) the socket. */
  serverCloseCode: number | null = null;
  /** Payload compression (IDENTIFY `compress: true`); ignored when transport compression is on. */
  payloadCompression = false;
  /** Whether the session should survive a server-side close (set by fault helpers). */
  keepSessionOnClose: boolean | null = null;

  private compressor: MessageCompressor | null = null;
  private chain: Promise<void> = Promise.resolve();
  private closing = false;
  private closed = false;
  private corruptNext = false;
  private readonly limiter: WindowLimiter;
  private readonly presenceLimiter: WindowLimiter | null;
  private heartbeatInterval = 0;
  private heartbeatTimer: TimerHandle | undefined;
  private readonly timers = new Set<TimerHandle>();

  constructor(
    readonly id: number,
    private readonly ws: WebSocket,
    readonly request: ConnectionRequest,
    private readonly host: ConnectionHost,
  ) {
    const { opts, clock } = host;
    this.openedAt = clock.now();
    this.acking = opts.ackHeartbeats;
    const v = request.query.v;
    this.version = v !== undefined && /^\d+$/.test(v) ? Number(v) : null;
    this.encoding = request.query.encoding ?? 'json';
    const c = request.query.compress;
    this.compression = c === 'zlib-stream' || c === 'zstd-stream' ? c : null;
    this.limiter = new WindowLimiter(clock, opts.rateLimit.limit, opts.rateLimit.window, opts.rateLimit.mode);
    this.presenceLimiter = opts.presenceLimit ? new WindowLimiter(clock, opts.presenceLimit.limit, opts.presenceLimit.window) : null;
    ws.on('message', (data, isBinary) => this.onMessage(toBuffer(data), isBinary));
    ws.on('close', (code, reason) => this.onSocketClose(code, reason.toString()));
    ws.on('error', () => {
      /* a 'close' always follows */
    });
  }

  /** Validate the query string, then send HELLO (or op 7). */
  start(): void {
    const { opts } = this.host;
    if (this.version === null || !opts.versions.includes(this.version)) {
      this.close(4012, 'Invalid API version');
      return;
    }
    if (this.encoding !== 'json') {
      this.close(4002, `encoding=${this.encoding.slice(0, 20)} is not supported by the simulator (json only)`);
      return;
    }
    const c = this.request.query.compress;
    if (c !== undefined && this.compression === null) {
      this.close(4000, `unsupported compress=${c.slice(0, 20)}`);
      return;
    }
    if (this.compression === 'zstd-stream' && !zstdAvailable()) {
      this.close(4000, 'zstd-stream unavailable: the optional zstd-napi package is not installed');
      return;
    }
    if (this.compression) this.compressor = createCompressor(this.compression);
    if (opts.helloOp7) {
      this.sendReconnect();
      return;
    }
    this.heartbeatInterval = opts.heartbeatInterval;
    this.sendJson(controlEnvelope(10, { heartbeat_interval: this.heartbeatInterval, _trace: ['["gateway-sim",{"micros":0}]'] }));
    this.armHeartbeatDeadline();
  }

  /** Socket is open and not closing. */
  get open(): boolean {
    return !this.closing && !this.closed && this.ws.readyState === WebSocket.OPEN;
  }

  get authenticated(): boolean {
    return this.identified || this.resumed;
  }

  info(): SimConnectionInfo {
    return {
      id: this.id,
      shardId: this.shardId,
      total: this.total,
      sessionId: this.session?.id ?? null,
      compression: this.compression,
      encoding: this.encoding,
      version: this.version,
      path: this.request.path,
      resumeUrlUsed: this.request.resumeUrlUsed,
      acking: this.acking,
      identified: this.identified,
      resumed: this.resumed,
      query: { ...this.request.query },
      openedAt: this.openedAt,
    };
  }

  // ---------------------------------------------------------------- outbound

  /** Queue one serialized gateway message (compressed if the connection uses transport compression). */
  sendJson(json: string): void {
    this.enqueue(json, true);
  }

  /** Queue raw data; `compress: false` bypasses the compressor. */
  sendRaw(data: string | Buffer, compress = true): void {
    this.enqueue(data, compress);
  }

  sendControl(op: number, d: unknown): void {
    this.sendJson(controlEnvelope(op, d));
  }

  /** Replace the next outbound message with garbage bytes. */
  corruptNextFrame(): void {
    this.corruptNext = true;
  }

  /** op 7, then close after `reconnectCloseDelay` unless the client closed first. */
  sendReconnect(): void {
    this.sendControl(7, null);
    const { reconnectCloseDelay, reconnectCloseCode } = this.host.opts;
    if (reconnectCloseDelay !== false) this.later(reconnectCloseDelay, () => this.close(reconnectCloseCode, 'Reconnect requested'));
  }

  private enqueue(data: string | Buffer, compress: boolean): void {
    if (!this.open) return;
    this.chain = this.chain.then(() => this.write(data, compress)).catch((err: unknown) => this.fail(err));
  }

  private async write(data: string | Buffer, compress: boolean): Promise<void> {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return;
    const stats = this.host.stats;
    if (this.compressor && compress) {
      let out = await this.compressor.compress(typeof data === 'string' ? Buffer.from(data) : data);
      if (this.corruptNext) {
        this.corruptNext = false;
        out = garbageFrame(this.compression) as Buffer;
      }
      if (this.closed || this.ws.readyState !== WebSocket.OPEN) return;
      // Only zlib-stream messages may span websocket messages (they end with 00 00 FF FF); a zstd-stream message is
      // always one websocket message (zstd has no end-of-message marker).
      const split = this.compression === 'zlib-stream' ? this.host.opts.frameSplit : false;
      for (const part of split ? splitFrames(out, split) : [out]) {
        this.ws.send(part, { binary: true });
        stats.bytesSent += part.length;
      }
    } else {
      let out: string | Buffer = data;
      if (this.payloadCompression && compress && typeof data === 'string' && data.length >= PAYLOAD_COMPRESS_THRESHOLD) {
        out = zlib.deflateSync(data);
      }
      if (this.corruptNext) {
        this.corruptNext = false;
        out = typeof out === 'string' ? (garbageFrame(null) as string) : Buffer.from(garbageFrame('zlib-stream'));
      }
      this.ws.send(out, { binary: typeof out !== 'string' });
      stats.bytesSent += typeof out === 'string' ? Buffer.byteLength(out) : out.length;
    }
    stats.messagesSent++;
  }

  private fail(err: unknown): void {
    if (this.closed) return;
    this.host.onError(err instanceof Error ? err : new Error(String(err)));
    this.terminate();
  }

  // ---------------------------------------------------------------- closing

  /** Clean close after everything already queued was sent. False when already closing. */
  close(code: number, reason = ''): boolean {
    if (this.closing || this.closed) return false;
    this.closing = true;
    this.serverCloseCode = code;
    this.clearTimers();
    const r = truncateReason(reason);
    this.chain = this.chain
      .then(() => {
        if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, r);
      })
      .catch(() => this.ws.terminate());
    return true;
  }

  /** Abrupt close: the socket is destroyed, the client sees 1006. */
  terminate(): boolean {
    if (this.closed) return false;
    this.closing = true;
    this.serverCloseCode ??= 1006;
    this.clearTimers();
    this.ws.terminate();
    return true;
  }

  private onSocketClose(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimers();
    this.compressor?.close();
    this.compressor = null;
    const byClient = this.serverCloseCode === null;
    this.host.onClosed(this, this.serverCloseCode ?? code, reason, byClient);
  }

  // ---------------------------------------------------------------- inbound

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (!this.open) return;
    try {
      this.handle(data, isBinary);
    } catch (err) {
      // Malformed input must never crash the simulator.
      this.close(4000, 'internal simulator error');
      this.host.onError(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private handle(data: Buffer, _isBinary: boolean): void {
    const host = this.host;
    host.stats.payloadsReceived++;
    if (!this.limiter.hit()) {
      this.close(4008, 'You are being rate limited.');
      return;
    }
    if (data.length > MAX_CLIENT_PAYLOAD) {
      this.close(4002, 'Error while decoding payload: payload too large');
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(data.toString('utf8'));
    } catch {
      this.close(4002, 'Error while decoding payload.');
      return;
    }
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
      this.close(4002, 'Error while decoding payload.');
      return;
    }
    const { op, d } = msg as { op?: unknown; d?: unknown };
    if (typeof op !== 'number' || !CLIENT_OPS.has(op)) {
      this.close(4001, 'Unknown opcode.');
      return;
    }
    host.onPayload(this, op, d);
    if (op === 1) return this.onHeartbeat(d);
    if (!this.authenticated && op !== 2 && op !== 6) {
      this.close(4003, 'Not authenticated.');
      return;
    }
    if (op === 2 || op === 6) {
      if (this.authenticated) {
        this.close(4005, 'Already authenticated.');
        return;
      }
      return op === 2 ? host.onIdentify(this, d) : host.onResume(this, d);
    }
    if (op === 3 && this.presenceLimiter && !this.presenceLimiter.hit()) {
      this.close(4008, 'You are being rate limited (presence updates).');
      return;
    }
    host.onRequest(this, op, d);
  }

  private onHeartbeat(d: unknown): void {
    if (d !== null && d !== undefined && !(typeof d === 'number' && Number.isInteger(d) && d >= 0)) {
      this.close(4001, 'Invalid heartbeat payload.');
      return;
    }
    this.host.stats.heartbeats++;
    this.armHeartbeatDeadline();
    if (this.acking) this.sendControl(11, null);
    this.host.onHeartbeat(this, d ?? null);
  }

  // ---------------------------------------------------------------- timers

  private armHeartbeatDeadline(): void {
    const { clock, opts } = this.host;
    clock.clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    if (this.heartbeatInterval <= 0 || !this.open) return;
    const deadline = this.heartbeatInterval * 1.5 + opts.heartbeatSlack;
    const expire = (): void => {
      this.heartbeatTimer = undefined;
      const code = this.host.opts.missedHeartbeatClose;
      if (code !== false && this.open) {
        this.keepSessionOnClose = true;
        this.close(code, 'Session timed out (missed heartbeats).');
      }
    };
    // The deadline counts only time this process was awake to read heartbeats: a timer that fires late
    // (this process stalled; timers also run before socket reads) grants the client the time it was late,
    // once, so a heartbeat that arrived or was due during the stall is read first. A silent client still
    // times out, a little later.
    const arm = (ms: number, graced: boolean): void => {
      const due = clock.now() + ms;
      const timer = clock.setTimeout(() => {
        if (this.heartbeatTimer !== timer) return;
        const late = clock.now() - due;
        if (!graced && late > 0) arm(Math.min(late, deadline), true);
        else expire();
      }, ms);
      this.heartbeatTimer = timer;
    };
    arm(deadline, false);
  }

  /** Run `fn` after `ms` virtual ms unless the connection closed. */
  later(ms: number, fn: () => void): void {
    const { clock } = this.host;
    const h = clock.setTimeout(() => {
      this.timers.delete(h);
      if (this.open) fn();
    }, ms);
    this.timers.add(h);
  }

  private clearTimers(): void {
    const { clock } = this.host;
    clock.clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    for (const h of this.timers) clock.clearTimeout(h);
    this.timers.clear();
  }
}

function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function truncateReason(reason: string): string {
  let r = reason;
  while (Buffer.byteLength(r) > 123) r = r.slice(0, -1);
  return r;
}
