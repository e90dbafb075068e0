/**
 * A small HTTP listener shared by the metrics endpoint and the status page: listen on a port, tell the URL,
 * close without waiting for idle keep-alive sockets.
 * @packageDocumentation
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ShardlineError } from '../errors.js';

/** A `(req, res)` request handler, mountable on `node:http`, Express, Fastify's `raw`, ... */
export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** A started HTTP server. */
export interface HttpEndpoint {
  /** `http://host:port` (no trailing slash). */
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  /** Stop listening and drop open connections. Idempotent. */
  close(): Promise<void>;
}

/** Where to listen. */
export interface ListenOptions {
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Interface. Default `127.0.0.1` (pass `0.0.0.0` to expose it to other machines). */
  host?: string;
}

/** Start `handler` on `host:port`. Rejects with a clear error when the port is taken. */
export async function listenHttp(handler: RequestHandler, options: ListenOptions, what: string): Promise<HttpEndpoint> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ShardlineError('INVALID_OPTION', `${what} port must be an integer from 0 to 65535, got ${String(port)}`);
  }
  const server = createServer((req, res) => {
    try {
      handler(req, res);
    } catch (err) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`internal error: ${(err as Error).message}\n`);
    }
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new ShardlineError('PORT_IN_USE', `${what}: port ${port} on ${host} is already in use; pick another port`)
          : new ShardlineError('LISTEN_FAILED', `${what}: cannot listen on ${host}:${port}: ${err.message}`),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const addr = server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${shownHost}:${actual}`,
    port: actual,
    server,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** Path of a request without its query string. */
export function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
