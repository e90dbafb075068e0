import type { Clock, TimerHandle } from './clock.js';
import { SendError } from './errors.js';

/** Options of a {@link SendLimiter}. */
export interface SendLimiterOptions {
  clock: Clock;
  /** Payloads per window. Default 120. */
  limit?: number;
  /** Window length in ms. Default 60 000. */
  window?: number;
  /** Commands that may wait (while rate limited or reconnecting). Default 1000; more is a `QUEUE_FULL` error. */
  maxQueued?: number;
  /** Presence updates (op 3) allowed per 20 s. Default 5. */
  presenceLimit?: number;
  /**
   * Extra ms added to each window so that network jitter (the gateway counts receipt times, not send times)
   * can never push a burst over the limit. Default 1000.
   */
  margin?: number;
}

interface Queued {
  data: string;
  op: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * The outgoing rate limit of one shard: at most `limit` payloads in any sliding `window` per connection,
 * heartbeats included. Heartbeat and handshake slots are reserved, so a flood of commands can never delay a
 * heartbeat: commands may use only `limit - reserved` slots of a window. Commands wait in a bounded FIFO that
 * survives reconnects; the window starts afresh on every connection (the gateway counts per connection).
 */
export class SendLimiter {
  private readonly clock: Clock;
  private readonly limit: number;
  private readonly window: number;
  private readonly maxQueued: number;
  private readonly presenceLimit: number;
  /** Send times in this connection's window (ring of at most `limit`). */
  private log: number[] = [];
  private presenceLog: number[] = [];
  private reserved = 3;
  private readonly queue: Queued[] = [];
  private timer: TimerHandle | undefined;
  private writer: ((data: string) => void) | null = null;

  constructor(opts: SendLimiterOptions) {
    this.clock = opts.clock;
    this.limit = opts.limit ?? 120;
    this.window = (opts.window ?? 60_000) + (opts.margin ?? 1000);
    this.maxQueued = opts.maxQueued ?? 1000;
    this.presenceLimit = opts.presenceLimit ?? 5;
  }

  /**
   * A new connection got HELLO: fresh window, heartbeat reservation from the interval
   * (`ceil(window / interval) + 1` beats, plus one IDENTIFY/RESUME), commands not yet allowed.
   */
  reset(heartbeatInterval: number): void {
    this.log = [];
    this.presenceLog = [];
    const beats = heartbeatInterval > 0 ? Math.ceil(this.window / heartbeatInterval) + 1 : 2;
    this.reserved = Math.min(this.limit - 1, beats + 1);
    this.writer = null;
    this.stopTimer();
  }

  /** Commands may flow through `write` (state is ready); null stops them (connection lost). */
  open(write: ((data: string) => void) | null): void {
    this.writer = write;
    if (write) this.drain();
    else this.stopTimer();
  }

  /** Record a heartbeat or handshake payload sent outside the queue. Always allowed by the reservation. */
  record(): void {
    this.log.push(this.clock.now());
  }

  /** Slots a command could use right now. */
  get available(): number {
    this.prune();
    return Math.max(0, this.limit - this.reserved - this.log.length);
  }

  /** Commands waiting. */
  get queued(): number {
    return this.queue.length;
  }

  /** Queue a command; resolves when it has been written to the socket. */
  enqueue(data: string, op: number): Promise<void> {
    if (this.queue.length >= this.maxQueued) {
      return Promise.reject(
        new SendError('QUEUE_FULL', `${this.queue.length} commands are already waiting to be sent (maxQueued); slow down or raise the limit`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ data, op, resolve, reject });
      this.drain();
    });
  }

  /** Reject every waiting command (the shard is closing for good). */
  rejectAll(err: Error): void {
    this.stopTimer();
    for (const q of this.queue.splice(0)) q.reject(err);
  }

  private prune(): void {
    const cutoff = this.clock.now() - this.window;
    let i = 0;
    while (i < this.log.length && this.log[i]! <= cutoff) i++;
    if (i) this.log.splice(0, i);
    const pcut = this.clock.now() - 21_000;
    let j = 0;
    while (j < this.presenceLog.length && this.presenceLog[j]! <= pcut) j++;
    if (j) this.presenceLog.splice(0, j);
  }

  private drain(): void {
    if (!this.writer || this.timer !== undefined) return;
    while (this.queue.length && this.writer) {
      this.prune();
      const head = this.queue[0]!;
      let waitUntil: number | null = null;
      if (this.log.length >= this.limit - this.reserved) waitUntil = this.log[0]! + this.window;
      else if (head.op === 3 && this.presenceLog.length >= this.presenceLimit) waitUntil = this.presenceLog[0]! + 21_000;
      if (waitUntil !== null) {
        this.timer = this.clock.setTimeout(() => {
          this.timer = undefined;
          this.drain();
        }, Math.max(1, waitUntil - this.clock.now() + 1));
        return;
      }
      this.queue.shift();
      const now = this.clock.now();
      this.log.push(now);
      if (head.op === 3) this.presenceLog.push(now);
      try {
        this.writer(head.data);
        head.resolve();
      } catch (err) {
        head.reject(err as Error);
      }
    }
  }

  private stopTimer(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}
