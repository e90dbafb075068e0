/**
 * REST rate limits of the simulator: fixed-window buckets per route and major parameter plus a global limit,
 * reported with Discord's `X-RateLimit-*` headers. Time comes from the simulator's clock; no timers.
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../clock.js';

/** A request budget: `limit` requests per `window` virtual ms. */
export interface RestLimit {
  /** Requests allowed per window. */
  limit: number;
  /** Window length in virtual ms (starts at the first request of a bucket). */
  window: number;
}

/** REST rate-limit settings of the simulator (`GatewaySimulatorOptions.rest.rateLimits`). */
export interface RestRateLimitOptions {
  /** Budget of every bucket without its own entry in `routes`. Default 50 per 1000 virtual ms. */
  default?: RestLimit;
  /**
   * Budgets by route, keyed by `'METHOD /template'` (e.g. `'POST /channels/:channel_id/messages'`) or by the
   * template alone (any method). Buckets are per route and major parameter (channel, guild), as on Discord.
   */
  routes?: Record<string, RestLimit>;
  /** Budget over all routes (per bot token). Default 50 per 1000 virtual ms; false disables it. */
  global?: RestLimit | false;
}

/** The verdict of {@link RestRateLimiter.take}. */
export interface RateVerdict {
  allowed: boolean;
  /** Headers to add to the answer (`X-RateLimit-*`; `Retry-After` and scope on a 429). */
  headers: Record<string, string>;
  /** On a 429: seconds until the request may be retried (virtual seconds). */
  retryAfter?: number;
  /** On a 429: the global limit was hit (not the route's). */
  global?: boolean;
}

interface Bucket {
  count: number;
  resetAt: number;
}

const DEFAULT_LIMIT: RestLimit = { limit: 50, window: 1000 };
const MAX_BUCKETS = 10_000;

function checkLimit(name: string, l: RestLimit): RestLimit {
  if (!(Number.isInteger(l.limit) && l.limit >= 1)) throw new RangeError(`${name}.limit must be a positive integer, got ${l.limit}`);
  if (!(l.window > 0 && Number.isFinite(l.window))) throw new RangeError(`${name}.window must be a positive number of ms, got ${l.window}`);
  return { limit: l.limit, window: l.window };
}

/** Per-route and global REST buckets on a clock. */
export class RestRateLimiter {
  private defaultLimit: RestLimit = DEFAULT_LIMIT;
  private routeLimits = new Map<string, RestLimit>();
  private globalLimit: RestLimit | false = DEFAULT_LIMIT;
  private readonly buckets = new Map<string, Bucket>();
  private readonly hashes = new Map<string, string>();

  constructor(
    private readonly clock: Clock,
    options: RestRateLimitOptions = {},
  ) {
    this.configure(options);
  }

  /** Replace the settings (validated). Existing buckets keep their window. */
  configure(options: RestRateLimitOptions): void {
    if (options.default !== undefined) this.defaultLimit = checkLimit('rateLimits.default', options.default);
    if (options.routes !== undefined) {
      this.routeLimits = new Map(Object.entries(options.routes).map(([k, v]) => [k, checkLimit(`rateLimits.routes['${k}']`, v)]));
    }
    if (options.global !== undefined) this.globalLimit = options.global === false ? false : checkLimit('rateLimits.global', options.global);
  }

  /** Count one request of `method route` (bucket `major`) for `token`; says whether it may proceed. */
  take(method: string, route: string, major: string, token: string): RateVerdict {
    const now = this.clock.now();
    const who = tokenKey(token);
    if (this.globalLimit) {
      const g = this.hit(`global:${who}`, this.globalLimit, now);
      if (!g.allowed) {
        const retryAfter = round3((g.bucket.resetAt - now) / 1000);
        return { allowed: false, global: true, retryAfter, headers: { 'X-RateLimit-Global': 'true', 'X-RateLimit-Scope': 'global', 'Retry-After': String(Math.ceil(retryAfter)) } };
      }
    }
    const limit = this.routeLimits.get(`${method} ${route}`) ?? this.routeLimits.get(route) ?? this.defaultLimit;
    const { allowed, bucket } = this.hit(`${method} ${route}:${major}:${who}`, limit, now);
    const resetAfter = round3((bucket.resetAt - now) / 1000);
    const headers: Record<string, string> = {
      'X-RateLimit-Limit': String(limit.limit),
      'X-RateLimit-Remaining': String(Math.max(0, limit.limit - bucket.count)),
      'X-RateLimit-Reset': ((Date.now() + (bucket.resetAt - now)) / 1000).toFixed(3),
      'X-RateLimit-Reset-After': resetAfter.toFixed(3),
      'X-RateLimit-Bucket': this.hashOf(`${method} ${route}`),
    };
    if (allowed) return { allowed, headers };
    headers['X-RateLimit-Scope'] = 'user';
    headers['Retry-After'] = String(Math.ceil(resetAfter));
    return { allowed: false, global: false, retryAfter: resetAfter, headers };
  }

  private hit(key: string, limit: RestLimit, now: number): { allowed: boolean; bucket: Bucket } {
    let b = this.buckets.get(key);
    if (!b || now >= b.resetAt) {
      if (!b && this.buckets.size >= MAX_BUCKETS) this.sweep(now);
      b = { count: 0, resetAt: now + limit.window };
      this.buckets.set(key, b);
    }
    if (b.count >= limit.limit) return { allowed: false, bucket: b };
    b.count++;
    return { allowed: true, bucket: b };
  }

  private sweep(now: number): void {
    for (const [k, b] of this.buckets) if (now >= b.resetAt) this.buckets.delete(k);
    if (this.buckets.size >= MAX_BUCKETS) this.buckets.clear();
  }

  private hashOf(route: string): string {
    let h = this.hashes.get(route);
    if (!h) {
      h = createHash('sha1').update(route).digest('hex').slice(0, 32);
      this.hashes.set(route, h);
    }
    return h;
  }
}

/** Buckets are keyed by a digest of the token, so the token itself is never kept in them. */
function tokenKey(token: string): string {
  return token === '' ? '' : createHash('sha256').update(token).digest('base64url').slice(0, 16);
}

function round3(n: number): number {
  return Math.max(0, Math.round(n * 1000) / 1000);
}
