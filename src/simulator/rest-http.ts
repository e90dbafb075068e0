/**
 * Glue between the simulator's HTTP server and its REST API: the {@link RestHost} a simulator provides, bounded body
 * reading, and writing an answer (JSON, Discord's headers) before running its gateway side effects.
 * @packageDocumentation
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SimulatorCore } from './core.js';
import { type RestHttpResponse, SimRest, type SimRestOptions } from './rest.js';
import type { GatewaySimulator } from './server.js';
import type { ResolvedOptions } from './types.js';

/** Largest request body the simulator reads (bytes); larger → 413. */
export const MAX_REST_BODY = 8 << 20;

/** The REST API of `sim`. `options: false` serves only `GET /gateway` and `/gateway/bot` (everything else 404). */
export function createRest(sim: GatewaySimulator, options: SimRestOptions | boolean | undefined, opts: ResolvedOptions, core: SimulatorCore): SimRest {
  return new SimRest(
    {
      clock: sim.clock,
      guildIds: sim.guildIds,
      tokenValid: (token) => core.tokenOk(token),
      gatewayUrl: () => sim.url,
      gatewayBot: () => ({
        url: sim.url,
        shards: opts.shards,
        session_start_limit: {
          total: core.budget.total,
          remaining: core.budget.remaining,
          reset_after: core.budget.resetAfter,
          max_concurrency: opts.maxConcurrency,
        },
      }),
      applicationIntents: () => opts.applicationIntents,
      memberCount: () => opts.guildMemberCount,
      dispatchToGuild: (guildId, t, d) => void sim.dispatch({ guildId }, t, d),
    },
    typeof options === 'object' ? options : { enabled: options !== false },
    (r) => core.emit('rest', r),
  );
}

/** Read a request body up to {@link MAX_REST_BODY}; `null` when it is larger. */
export function readRestBody(req: IncomingMessage, done: (body: Buffer | null) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_REST_BODY) tooLarge = true;
    else if (!tooLarge) chunks.push(chunk);
  });
  req.on('end', () => done(tooLarge ? null : Buffer.concat(chunks)));
  req.on('error', () => {
    /* the socket is gone: nothing to answer */
  });
}

/** Write an answer, then run its side effects (a created message is dispatched after the HTTP answer, as on Discord). */
export function writeRest(res: ServerResponse, answer: RestHttpResponse): void {
  const headers: Record<string, string | number> = { ...answer.headers, via: '1.1 shardline-simulator' };
  if (answer.body === undefined) {
    res.writeHead(answer.status, headers);
    res.end();
  } else {
    const text = JSON.stringify(answer.body);
    res.writeHead(answer.status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }
  answer.after?.();
}
