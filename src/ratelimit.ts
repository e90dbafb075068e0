/**
 * The gateway's outgoing rate limit for one connection, as pure state (time is passed in, no timers):
 * at most `limit` payloads in any sliding `window`, heartbeats included, and at most `presenceLimit` presence
 * updates per 20 s. Heartbeat and handshake slots are reserved, so commands (and server-requested beats) may use
 * only `limit - reserved` slots of a window and can never delay a regular heartbeat. Every payload written is
 * recorded exactly once, by {@link RateLimit.record}.
 */
export interface RateLimitOptions {
  /** Payloads per window. Default 120. */
  limit?: number;
  /** Window length in ms. Default 60 000. */
  window?: number;
  /** Presence updates (op 3) allowed per 20 s. Default 5. */
  presenceLimit?: number;
  /**
   * Extra ms added to each window so that network jitter (the gateway counts receipt times, not send times)
   * can never push a burst over the limit. Default 1000.
   */
  margin?: number;
}

const PRESENCE_WINDOW = 20_000;

export class RateLimit {
  readonly limit: number;
  /** Window including the margin. */
  readonly window: number;
  private readonly presenceLimit: number;
  private readonly presenceWindow: number;
  /** Send times in the current window, oldest first. */
  private log: number[] = [];
  /** Presence updates (op 3) in the window; created by the first one (most shards never send one). */
  private presenceLog: number[] | null = null;
  /** Slots kept for regular heartbeats and the one IDENTIFY/RESUME of the connection. */
  reserved = 3;

  constructor(opts: RateLimitOptions = {}) {
    this.limit = opts.limit ?? 120;
    const margin = opts.margin ?? 1000;
    this.window = (opts.window ?? 60_000) + margin;
    this.presenceLimit = opts.presenceLimit ?? 5;
    this.presenceWindow = PRESENCE_WINDOW + margin;
  }

  /** A new connection got HELLO: a fresh window, and the reservation for its heartbeats and handshake. */
  reset(heartbeatInterval: number): void {
    this.log = [];
    this.presenceLog = null;
    const beats = heartbeatInterval > 0 ? Math.ceil(this.window / heartbeatInterval) + 1 : 2;
    this.reserved = Math.min(this.limit - 1, beats + 1);
  }

  /** Record one payload written now. */
  record(now: number, op: number): void {
    // Prune here too: an idle shard only ever records heartbeats, and its log must not grow for as long as the
    // connection lives. A short log is copied at its exact size (a push would give it room for 16 more).
    this.prune(now);
    const log = this.log;
    if (log.length < 8) this.log = log.concat(now);
    else log.push(now);
    if (op === 3) (this.presenceLog ??= []).push(now);
  }

  /** Payloads sent in the window ending now. */
  used(now: number): number {
    this.prune(now);
    return this.log.length;
  }

  /**
   * When a command (or a server-requested beat) of `op` may be sent: `now` or earlier means at once, otherwise the
   * virtual time to try again.
   */
  nextSlot(now: number, op: number): number {
    this.prune(now);
    let at = now;
    if (this.log.length >= this.limit - this.reserved) {
      // The oldest entries that must leave the window before one slot frees up.
      const over = this.log.length - (this.limit - this.reserved);
      at = Math.max(at, this.log[over]! + this.window + 1);
    }
    const presences = this.presenceLog;
    if (op === 3 && presences !== null && presences.length >= this.presenceLimit) {
      const over = presences.length - this.presenceLimit;
      at = Math.max(at, presences[over]! + this.presenceWindow + 1);
    }
    return at;
  }

  private prune(now: number): void {
    const cutoff = now - this.window;
    let i = 0;
    while (i < this.log.length && this.log[i]! <= cutoff) i++;
    if (i) this.log.splice(0, i);
    const presences = this.presenceLog;
    if (presences === null) return;
    const pcut = now - this.presenceWindow;
    let j = 0;
    while (j < presences.length && presences[j]! <= pcut) j++;
    if (j) presences.splice(0, j);
  }
}
