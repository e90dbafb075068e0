/**
 * {@link ProxyServer}: the proxy's HTTP + websocket listener. `GET /api/vN/gateway[/bot]` is answered by the proxy,
 * every other `/api/` request is forwarded upstream, and websocket upgrades become client connections.
 * @packageDocumentation
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { zstdSupported, type ClientCompression } from './compress.js';
import { forwardRest } from './rest-forward.js';

/** What the server asks of the proxy. */
export interface ServerHooks {
  /** The body of `GET /gateway` (`bot: false`) or `/gateway/bot`, or null for 401 (a wrong token). */
  gateway(bot: boolean, authorization: string | undefined): unknown | null;
  /** Where other `/api/` requests go (scheme + host + port; the path is kept). */
  upstreamOrigin: URL;
  /** A websocket client connected. */
  client(ws: WebSocket, compression: ClientCompression | null): void;
  /** A forwarded REST request finished with `status` (for metrics). */
  rest?(status: number): void;
}

/** The listener of a proxy. */
export class ProxyServer {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: false, clientTracking: true });
  private readonly sockets = new Set<Socket>();
  private port = 0;

  private constructor(
    private readonly server: Server,
    private readonly host: string,
    private readonly hooks: ServerHooks,
  ) {
    server.on('request', (req, res) => this.onHttp(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(req, socket, head));
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  /** Listen on `host:port` (port 0: a free one). */
  static async listen(host: string, port: number, hooks: ServerHooks): Promise<ProxyServer> {
    const server = createServer();
    const s = new ProxyServer(server, host, hooks);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    s.port = typeof addr === 'object' && addr ? addr.port : port;
    return s;
  }

  /** `ws://host:port`. */
  get url(): string {
    const h = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `ws://${h}:${this.port}`;
  }

  /** `http://host:port/api/v10`. */
  get apiUrl(): string {
    return `${this.url.replace(/^ws/, 'http')}/api/v10`;
  }

  /** Stop listening and end every connection. */
  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
  }

  private onHttp(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://proxy.invalid').pathname.replace(/\/+$/, '');
    const m = /^\/api\/v\d+\/gateway(\/bot)?$/.exec(path);
    if (m && req.method === 'GET') {
      const body = this.hooks.gateway(m[1] !== undefined, req.headers.authorization);
      return json(res, body === null ? 401 : 200, body ?? { message: '401: Unauthorized', code: 0 });
    }
    if (path.startsWith('/api/')) return forwardRest(req, res, this.hooks.upstreamOrigin, this.hooks.rest);
    json(res, 404, { message: '404: Not Found', code: 0 });
  }

  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => {});
    const url = new URL(req.url ?? '/', 'ws://proxy.invalid');
    const compress = url.searchParams.get('compress');
    const encoding = url.searchParams.get('encoding') ?? 'json';
    let compression: ClientCompression | null = null;
    if (compress === 'zlib-stream' || (compress === 'zstd-stream' && zstdSupported())) compression = compress;
    else if (compress !== null && compress !== '') return refuse(socket, 400, `unsupported compress=${compress}`);
    if (encoding !== 'json') return refuse(socket, 400, 'only encoding=json is supported');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.hooks.client(ws, compression));
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function refuse(socket: Socket, status: number, reason: string): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
