/**
 * `GET /gateway/bot`: the recommended shard count, the gateway URL and the identify limits.
 * @packageDocumentation
 */
import { GatewayError, redact } from './errors.js';
import type { ApiSessionStartLimit } from './queue.js';

export interface GatewayBot {
  url: string;
  shards: number;
  session_start_limit: ApiSessionStartLimit;
}

/** Fetch `{apiUrl}/gateway/bot` with `token` (never put in an error message). */
export async function fetchGatewayBot(apiUrl: string, token: string, signal: AbortSignal, debug: (message: string) => void): Promise<GatewayBot> {
  const base = apiUrl.replace(/\/+$/, '');
  const url = `${base}/gateway/bot`;
  let res: Response;
  try {
    res = await fetch(url, {
      headers: { Authorization: `Bot ${token}`, 'User-Agent': 'DiscordBot (https://github.com/shardline/shardline, 0.1.0) shardline' },
      signal: AbortSignal.any([signal, AbortSignal.timeout(15_000)]),
    });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw new GatewayError('GATEWAY_BOT_FAILED', `GET ${url} failed: ${redact((err as Error).message, token)}`, { cause: err });
  }
  const body = (await res.json().catch(() => null)) as Partial<GatewayBot> | null;
  if (res.status === 401) {
    throw new GatewayError('INVALID_TOKEN', `GET ${url} answered 401: the token was rejected; check DISCORD_TOKEN (Developer Portal → Bot)`);
  }
  const l = body?.session_start_limit;
  if (!res.ok || !body || typeof body.url !== 'string' || !Number.isInteger(body.shards) || !l || !Number.isInteger(l.max_concurrency)) {
    throw new GatewayError('GATEWAY_BOT_FAILED', `GET ${url} answered ${res.status} without { url, shards, session_start_limit }`);
  }
  debug(`/gateway/bot: ${body.shards} shards recommended, max_concurrency ${l.max_concurrency}, ${l.remaining}/${l.total} session starts left (reset in ${Math.round(l.reset_after / 60000)} min)`);
  return body as GatewayBot;
}
