/**
 * Forward a REST request under `/api/` to the upstream API unchanged: method, path, query, headers and body
 * streamed up; status, headers and body streamed back.
 * @packageDocumentation
 */
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host']);

/**
 * Stream `req` to `upstreamOrigin` + the same path (e.g. `https://discord.com` + `/api/v10/channels/1/messages`)
 * and the answer back to `res`. A failure to reach the upstream answers 502 with a JSON body.
 */
export function forwardRest(req: IncomingMessage, res: ServerResponse, upstreamOrigin: URL, onDone?: (status: number) => void): void {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
  headers.host = upstreamOrigin.host;
  const send = upstreamOrigin.protocol === 'https:' ? httpsRequest : httpRequest;
  const up = send(
    {
      protocol: upstreamOrigin.protocol,
      hostname: upstreamOrigin.hostname,
      port: upstreamOrigin.port,
      method: req.method,
      path: req.url,
      headers,
    },
    (answer) => {
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(answer.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, out);
      answer.pipe(res);
      answer.once('end', () => onDone?.(answer.statusCode ?? 502));
      answer.once('error', () => res.destroy());
    },
  );
  up.on('error', (err) => {
    if (res.headersSent) return void res.destroy();
    const body = JSON.stringify({ message: `proxy: upstream API unreachable: ${err.message}`, code: 0 });
    res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    onDone?.(502);
  });
  req.once('aborted', () => up.destroy());
  res.once('close', () => {
    if (!res.writableFinished) up.destroy();
  });
  req.pipe(up);
}
