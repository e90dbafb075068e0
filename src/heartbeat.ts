/**
 * Heartbeats of one connection, as pure state: no timers, no socket. The shard core asks when the next beat is
 * due ({@link Heartbeat.dueAt}), and on that tick asks {@link Heartbeat.tick} whether to beat or to call the
 * connection a zombie. Time is always passed in.
 *
 * Rules:
 * - first beat at `interval × random[0,1)` after HELLO, then every `interval`;
 * - a regular beat whose predecessor got no ACK and saw no inbound traffic means a zombie; with traffic (ACKs can
 *   queue behind an event flood) `lateAckTolerance` beats are tolerated;
 * - a beat the server asked for (op 1) is sent at once and does not touch the zombie bookkeeping, so its ACK
 *   arriving after the next regular beat can never look like a dead connection;
 * - while the shard itself stops reading (consumer back-pressure) a missing ACK says nothing: zombie detection is
 *   suspended, and after the pause the connection gets one interval and a fresh tolerance;
 * - a tick that comes late (the process was stalled: GC, a blocking handler, a starved host) says nothing either:
 *   the ACK may be unread in the socket, or, with a peer in the same process, not even written yet. It counts like
 *   a beat with traffic: tolerated up to `lateAckTolerance` times in a row, so a dead connection on a process that
 *   stalls at every tick is still detected.
 */
export interface HeartbeatOptions {
  /** Beats tolerated without an ACK while other traffic still arrives. Default 2. */
  lateAckTolerance?: number;
  /** Latency samples kept. Default 10. */
  samples?: number;
}

/** What a tick decided. */
export type TickResult = 'beat' | 'zombie';

export class Heartbeat {
  /** ms between beats, from HELLO; 0 before HELLO. */
  interval = 0;
  /** Virtual time the next regular beat is due, or null when not beating. */
  dueAt: number | null = null;
  /** ACKs received (each adds a latency sample). */
  acks = 0;
  private sentAt: number | null = null;
  private acked = true;
  private inbound = false;
  private lateBeats = 0;
  private paused = false;
  private readonly recent: number[] = [];
  private readonly tolerance: number;
  private readonly samples: number;

  constructor(opts: HeartbeatOptions = {}) {
    this.tolerance = opts.lateAckTolerance ?? 2;
    this.samples = opts.samples ?? 10;
  }

  /** HELLO: start beating; the first beat is due after `interval × jitter` (jitter in [0, 1)). */
  start(interval: number, now: number, jitter: number): void {
    this.interval = interval;
    this.acked = true;
    this.inbound = false;
    this.sentAt = null;
    this.lateBeats = 0;
    this.dueAt = now + Math.floor(interval * jitter);
  }

  /** The connection ended: no more beats. Latency samples are kept. */
  stop(): void {
    this.dueAt = null;
    this.sentAt = null;
  }

  /** Any message arrived. */
  noteInbound(): void {
    this.inbound = true;
  }

  /** The regular beat is due: beat (and schedule the next one), or the connection is a zombie. */
  tick(now: number): TickResult {
    if (!this.acked && !this.paused) {
      // Late by more than a tenth of the interval (at least 1 s): the process, not the peer, was not keeping time.
      const late = this.dueAt !== null && now - this.dueAt > Math.max(1000, this.interval / 10);
      if (!(this.inbound || late) || this.lateBeats >= this.tolerance) {
        this.dueAt = null;
        return 'zombie';
      }
      this.lateBeats++;
    }
    this.inbound = false;
    this.acked = false;
    if (this.sentAt === null) this.sentAt = now;
    this.dueAt = now + this.interval;
    return 'beat';
  }

  /** The server asked for a beat (op 1) and one is sent now: only the latency clock starts, if idle. */
  requested(now: number): void {
    if (this.sentAt === null) this.sentAt = now;
  }

  /** Heartbeat ACK (op 11). Returns the round trip in ms of the beat it answers, or null. */
  ack(now: number): number | null {
    this.acks++;
    this.acked = true;
    this.lateBeats = 0;
    if (this.sentAt === null) return null;
    const rtt = Math.round(now - this.sentAt);
    this.sentAt = null;
    this.recent.push(rtt);
    if (this.recent.length > this.samples) this.recent.shift();
    return rtt;
  }

  /** Suspend (true) or restore (false) zombie detection while the shard does not read its socket. */
  setPaused(paused: boolean): void {
    if (this.paused && !paused) {
      this.lateBeats = 0;
      this.inbound = true;
    }
    this.paused = paused;
  }

  /** Recent round trips (ms, oldest first) and their average. */
  get latency(): { recent: number[]; average: number | null } {
    const recent = this.recent.slice();
    const average = recent.length ? Math.round(recent.reduce((a, b) => a + b, 0) / recent.length) : null;
    return { recent, average };
  }
}
