/**
 * Exponential back-off with full jitter for reconnect attempts: attempt 0 is immediate, then
 * `base * 2^(n-1)` capped at `max`, each multiplied by a random factor in [0.5, 1).
 */
export interface BackoffOptions {
  /** First non-zero delay in ms. Default 1000. */
  base?: number;
  /** Upper bound in ms. Default 60 000. */
  max?: number;
  /** Random source in [0, 1). */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly base: number;
  private readonly max: number;
  private readonly random: () => number;

  constructor(opts: BackoffOptions = {}) {
    this.base = opts.base ?? 1000;
    this.max = opts.max ?? 60_000;
    this.random = opts.random ?? Math.random;
  }

  /** Number of consecutive failures so far. */
  get attempts(): number {
    return this.attempt;
  }

  /** The delay before the next attempt, and count it. */
  next(): number {
    const n = this.attempt++;
    if (n === 0) return 0;
    const raw = Math.min(this.max, this.base * 2 ** Math.min(n - 1, 30));
    return Math.round(raw * (0.5 + this.random() * 0.5));
  }

  /** Forget past failures (after a successful READY/RESUMED). */
  reset(): void {
    this.attempt = 0;
  }
}
