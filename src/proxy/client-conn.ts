/**
 * {@link ClientConnection}: the driver of one downstream client — its websocket, transport compressor and
 * heartbeat deadline — applying the effects of its {@link ClientSession}.
 * @packageDocumentation
 */
import WebSocket from 'ws';
import { createCompressor, type ClientCompression, type SyncCompressor } from './compress.js';
import type { ClientSession } from './client-session.js';

/** What a connection asks of the proxy. */
export interface ClientHub {
  identify(conn: ClientConnection, shardId: number, intents: number): void;
  resume(conn: ClientConnection, sessionId: string, seq: number): void;
  command(conn: ClientConnection, op: number, d: Record<string, unknown>): void;
  closed(conn: ClientConnection): void;
}

/** A client this far behind (bytes queued on its socket) is disconnected (4000); it can RESUME from the ring. */
export const MAX_CLIENT_BUFFER = 32 * 1024 * 1024;

/** One downstream client connection. */
export class ClientConnection {
  private readonly compressor: SyncCompressor | null;
  private deadline: ReturnType<typeof setTimeout> | null = null;
  private draining = false;
  private ended = false;
  /** Called when a send made during the READY burst has been written out: the session may write more. */
  private readonly flushed = (): void => {
    if (this.ended || !this.session.pulling) return;
    this.session.pull(this.ws.bufferedAmount);
    this.drain();
  };
  /** Proxy nonce prefix of this connection's op 8 requests. */
  readonly tag: string;

  constructor(
    readonly ws: WebSocket,
    readonly compression: ClientCompression | null,
    readonly session: ClientSession,
    private readonly hub: ClientHub,
    tag: string,
  ) {
    this.tag = tag;
    this.compressor = compression === null ? null : createCompressor(compression);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        this.session.close(4002, 'Error while decoding payload.');
      } else {
        this.session.message(data.toString('utf8'), data.length);
      }
      this.drain();
    });
    ws.on('error', () => {});
    ws.on('close', () => this.end());
    session.open();
    this.drain();
  }

  /** Apply the session's pending effects (call after every input to it). */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    const effects = this.session.effects;
    let i = 0;
    try {
      while (i < effects.length) {
        const e = effects[i++]!;
        switch (e.type) {
          case 'send':
            this.write(e.data);
            break;
          case 'close':
            if (this.ws.readyState === WebSocket.OPEN) this.ws.close(e.code, e.reason);
            else this.ws.terminate();
            this.end();
            break;
          case 'deadline':
            if (this.deadline !== null) clearTimeout(this.deadline);
            this.deadline = null;
            if (e.at !== null) {
              this.deadline = setTimeout(
                () => {
                  this.deadline = null;
                  this.session.timer();
                  this.drain();
                },
                Math.max(0, e.at - Date.now()),
              );
              this.deadline.unref();
            }
            break;
          case 'identify':
            this.hub.identify(this, e.shardId, e.intents);
            break;
          case 'resume':
            this.hub.resume(this, e.sessionId, e.seq);
            break;
          case 'command':
            this.hub.command(this, e.op, e.d);
            break;
        }
      }
    } finally {
      effects.splice(0, i);
      this.draining = false;
    }
    if (effects.length !== 0) this.drain();
  }

  /** Close with `code` (through the session, so it is recorded there). */
  close(code: number, reason: string): void {
    this.session.close(code, reason);
    this.drain();
  }

  private write(text: string): void {
    const ws = this.ws;
    if (ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > MAX_CLIENT_BUFFER) {
      this.session.close(4000, 'Client too slow.');
      return;
    }
    // During the READY burst every send reports when it is written out; the session pulls its next payloads then.
    const done = this.session.pulling ? this.flushed : undefined;
    if (this.compressor === null) ws.send(text, done);
    else ws.send(this.compressor.compress(Buffer.from(text)), { binary: true }, done);
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.deadline !== null) clearTimeout(this.deadline);
    this.deadline = null;
    this.session.ended();
    this.compressor?.close();
    this.ws.removeAllListeners('message');
    this.hub.closed(this);
  }
}
