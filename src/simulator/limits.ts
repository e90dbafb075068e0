/**
 * Rate limits of the simulated gateway: the per-connection send limit, identify buckets and the session start
 * budget. All of them read time from the simulator's clock and need no timers.
 * @packageDocumentation
 */
import type { Clock } from '../clock.js';

/** Counts events in a fixed window (starting at construction) or a sliding window. */
export class WindowLimiter {
  private windowStart: number;
  private count = 0;
  private readonly stamps: number[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly limit: number,
    private readonly window: number,
    private readonly mode: 'fixed' | 'sliding' = 'fixed',
  ) {
    this.windowStart = clock.now();
  }

  /** Record one event; false when it exceeds the limit. */
  hit(): boolean {
    const now = this.clock.now();
    if (this.mode === 'sliding') {
      while (this.stamps.length > 0 && this.stamps[0]! <= now - this.window) this.stamps.shift();
      this.stamps.push(now);
      return this.stamps.length <= this.limit;
    }
    if (now - this.windowStart >= this.window) {
      this.windowStart += Math.floor((now - this.windowStart) / this.window) * this.window;
      this.count = 0;
    }
    this.count++;
    return this.count <= this.limit;
  }
}

/** One IDENTIFY per bucket (`shard_id % max_concurrency`) per window. */
export class IdentifyBuckets {
  private readonly last = new Map<number, number>();
  constructor(
    private readonly clock: Clock,
    public window: number,
  ) {}

  /** Take the bucket's slot; false if it was used less than `window` ago. */
  tryAcquire(bucket: number): boolean {
    const now = this.clock.now();
    const prev = this.last.get(bucket);
    if (prev !== undefined && now - prev < this.window) return false;
    this.last.set(bucket, now);
    return true;
  }
}

/** `session_start_limit`: a budget of IDENTIFYs that refills `resetAfter` ms after the window started. */
export class SessionStartBudget {
  private resetAt: number;
  private remainingCount: number;
  private static readonly DAY = 86_400_000;

  constructor(
    private readonly clock: Clock,
    readonly total: number,
    remaining: number,
    resetAfter: number,
  ) {
    this.remainingCount = remaining;
    this.resetAt = clock.now() + resetAfter;
  }

  private refresh(): void {
    const now = this.clock.now();
    if (now >= this.resetAt) {
      this.remainingCount = this.total;
      this.resetAt = now + SessionStartBudget.DAY;
    }
  }

  get remaining(): number {
    this.refresh();
    return this.remainingCount;
  }

  /** Milliseconds until the budget refills. */
  get resetAfter(): number {
    this.refresh();
    return Math.max(0, Math.round(this.resetAt - this.clock.now()));
  }

  /** Use one session start; false when none is left. */
  tryConsume(): boolean {
    this.refresh();
    if (this.remainingCount <= 0) return false;
    this.remainingCount--;
    return true;
  }
}

/** Per-guild limit of "all members" requests (1 per guild per 30 s, §4.4). */
export class KeyedCooldown {
  private readonly last = new Map<string, number>();
  constructor(
    private readonly clock: Clock,
    private readonly window: () => number,
  ) {}

  /** 0 when allowed (and the slot is taken); otherwise milliseconds until it is. */
  take(key: string): number {
    const now = this.clock.now();
    const prev = this.last.get(key);
    const window = this.window();
    if (prev !== undefined && now - prev < window) return window - (now - prev);
    this.last.set(key, now);
    return 0;
  }
}
