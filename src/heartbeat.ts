import { setDeadline, type Clock, type TimerHandle } from './clock.js';

/** Options of a {@link Heartbeater}. */
export interface HeartbeaterOptions {
  clock: Clock;
  /** Send one heartbeat now (op 1 with the last sequence). */
  send: () => void;
  /** The connection is a zombie: no ACK and no inbound traffic since the last beat. */
  onZombie: () => void;
  /** Random source in [0, 1) for the first-beat jitter. */
  random?: () => number;
  /**
   * Beats tolerated without an ACK while other traffic still arrives (ACKs can queue behind an event flood
   * on a busy shard). Default 2; after that the connection is a zombie even with traffic.
   */
  lateAckTolerance?: number;
  /** How many latency samples to keep. Default 10. */
  samples?: number;
}

/**
 * Heartbeats for one connection: the first beat after `interval × random[0,1)`, then every `interval`;
 * zombie detection; latency from beat to ACK.
 */
export class Heartbeater {
  private timer: TimerHandle | undefined;
  private interval = 0;
  private sentAt: number | null = null;
  private acked = true;
  private inbound = false;
  private lateBeats = 0;
  private paused = false;
  private readonly recentRtt: number[] = [];
  private readonly opts: Required<Omit<HeartbeaterOptions, 'random'>> & { random: () => number };

  constructor(opts: HeartbeaterOptions) {
    this.opts = { lateAckTolerance: 2, samples: 10, random: Math.random, ...opts };
  }

  /** Start beating at `interval` ms (from HELLO). */
  start(interval: number): void {
    this.stop();
    this.interval = interval;
    this.acked = true;
    this.sentAt = null;
    this.lateBeats = 0;
    this.schedule(interval * this.opts.random());
  }

  /** Stop beating (connection closed). Latency samples are kept. */
  stop(): void {
    this.opts.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Note that a message arrived (any op). Cheap: called for every frame. */
  noteInbound(): void {
    this.inbound = true;
  }

  /**
   * Suspend zombie detection while the shard itself stops reading (consumer back-pressure): a missing ACK then
   * says nothing about the connection.
   */
  setPaused(paused: boolean): void {
    // After a pause the ACKs wait behind everything that piled up in our own socket meanwhile, and the socket is
    // read again only from the next I/O poll on: the resumed connection gets one full interval to deliver (counted
    // as inbound traffic) and the late-ACK tolerance starts afresh. A connection that then delivers nothing at all
    // is a zombie one beat later.
    if (this.paused && !paused) {
      this.lateBeats = 0;
      this.inbound = true;
    }
    this.paused = paused;
  }

  /** Heartbeat ACKs received so far (each adds a latency sample), for telling new samples from seen ones. */
  acks = 0;

  /** Heartbeat ACK (op 11) received. */
  ack(): void {
    this.acks++;
    this.acked = true;
    this.lateBeats = 0;
    if (this.sentAt !== null) {
      this.recentRtt.push(Math.round(this.opts.clock.now() - this.sentAt));
      if (this.recentRtt.length > this.opts.samples) this.recentRtt.shift();
      this.sentAt = null;
    }
  }

  /** The server asked for a heartbeat (op 1): beat now, keep the interval timer as it is. */
  beatNow(): void {
    this.sendBeat();
  }

  /** Round trips of recent heartbeats (ms, oldest first) and their average. */
  get latency(): { recent: number[]; average: number | null } {
    const recent = this.recentRtt.slice();
    const average = recent.length ? Math.round(recent.reduce((a, b) => a + b, 0) / recent.length) : null;
    return { recent, average };
  }

  /** The interval from HELLO, 0 before the first HELLO. */
  get heartbeatInterval(): number {
    return this.interval;
  }

  private schedule(ms: number): void {
    // A late tick (stalled event loop) runs after the next I/O poll: the ACK may be sitting unread in the socket.
    const timer = setDeadline(this.opts.clock, ms, () => this.timer === timer, () => {
      this.timer = undefined;
      this.tick();
    });
    this.timer = timer;
  }

  private tick(): void {
    if (!this.acked && !this.paused) {
      if (!this.inbound || this.lateBeats >= this.opts.lateAckTolerance) {
        this.opts.onZombie();
        return;
      }
      this.lateBeats++;
    }
    this.sendBeat();
    this.schedule(this.interval);
  }

  private sendBeat(): void {
    this.inbound = false;
    this.acked = false;
    if (this.sentAt === null) this.sentAt = this.opts.clock.now();
    this.opts.send();
  }
}
