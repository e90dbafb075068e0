/**
 * Silent-shard detection: heartbeats are ACKed but no dispatch has arrived for `silentTimeout` on a shard with
 * guilds. Checked once per regular heartbeat by comparing the sequence number (no per-dispatch cost); allocated on
 * the first check, only when `silentTimeout` is set. The core (`src/shard-core.ts`) emits `silent` and, with
 * `silentAction: 'resume'`, drops the connection.
 *
 * @packageDocumentation
 */

/** The sequence seen at the last check and since when it has not moved (`since` -1: already reported for this silence). */
export class Silence {
  private seq: number;
  private since: number;

  constructor(seq: number, now: number) {
    this.seq = seq;
    this.since = now;
  }

  /**
   * A regular beat at `now` with the sequence at `seq`: the ms of silence to report now (once per silence), or -1.
   * A shard without guilds (`guilds` 0) is never silent.
   */
  check(seq: number, now: number, guilds: number, timeout: number): number {
    if (seq !== this.seq) {
      this.restart(seq, now);
      return -1;
    }
    if (this.since < 0 || guilds === 0 || now - this.since < timeout) return -1;
    const since = now - this.since;
    this.since = -1; // reported: once per silence
    return since;
  }

  /** The silence clock restarts (a new sequence, or ready again after READY / RESUMED). */
  restart(seq: number, now: number): void {
    this.seq = seq;
    this.since = now;
  }
}
