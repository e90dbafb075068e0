/**
 * `GET /gateway/bot`: the recommended shard count, the gateway URL and the identify limits; and the cluster's
 * {@link GatewayBotSource}: which REST base it may ask, retried with back-off while the failure may pass.
 * @packageDocumentation
 */
import { Backoff } from './backoff.js';
import { sleep, type Clock } from './clock.js';
import { GatewayError, ShardlineError, redact } from './errors.js';
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

/** Where the cluster's `GET /gateway/bot` goes, and how it is retried. */
export interface GatewayBotSourceOptions {
  /** The REST base (null: the cluster makes no REST call, see `apiBase()` of cluster-options.ts). */
  base: string | null;
  clock: Clock;
  /** Aborts when the cluster closes. */
  signal: AbortSignal;
  debug(message: string): void;
  /** A failure that will be retried in `delay` ms (attempt `attempt`). */
  onRetry(error: GatewayError, delay: number, attempt: number): void;
}

/** The cluster's `GET /gateway/bot`: the REST base, the token, and the attempts of a retrying connect (for its timeout message). */
export class GatewayBotSource {
  /** Attempts of the current `fetchRetrying()` run, and its last failure. */
  attempts = 0;
  lastError: Error | null = null;
  readonly #token: string;
  readonly #o: GatewayBotSourceOptions;

  constructor(token: string, options: GatewayBotSourceOptions) {
    this.#token = token;
    this.#o = options;
  }

  /** The REST base `GET /gateway/bot` uses (null: none, no REST call is made). */
  get base(): string | null {
    return this.#o.base;
  }

  /** Forget the attempts of an earlier connect. */
  reset(): void {
    this.attempts = 0;
    this.lastError = null;
  }

  fetch(): Promise<GatewayBot> {
    const base = this.base;
    if (base === null) {
      return Promise.reject(
        new ShardlineError('NO_API_URL', 'GET /gateway/bot needs apiUrl: this cluster has gatewayUrl set and no apiUrl, so it makes no REST call (pass apiUrl, or the shard count)'),
      );
    }
    return fetchGatewayBot(base, this.#token, this.#o.signal, this.#o.debug);
  }

  /** `fetch()` retried with back-off while it fails for a reason that may pass (network, 5xx, bad body); not a 401. */
  async fetchRetrying(): Promise<GatewayBot> {
    const backoff = new Backoff();
    const { signal } = this.#o;
    for (;;) {
      this.attempts++;
      try {
        const bot = await this.fetch();
        this.lastError = null;
        return bot;
      } catch (err) {
        if (signal.aborted || !(err instanceof GatewayError) || err.code !== 'GATEWAY_BOT_FAILED') throw err;
        this.lastError = err;
        const delay = backoff.next();
        this.#o.onRetry(err, delay, this.attempts);
        await sleep(this.#o.clock, delay, signal);
      }
    }
  }
}
