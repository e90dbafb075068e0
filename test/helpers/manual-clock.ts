import type { Clock, TimerHandle } from '../../src/clock.js';

/** A clock that only moves when the test calls `advance`. */
export class ManualClock implements Clock {
  readonly scale = 1;
  private t = 0;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id as unknown as TimerHandle;
  }
  clearTimeout(h: TimerHandle | undefined): void {
    if (h !== undefined) this.timers.delete(h as unknown as number);
  }
  get pending(): number {
    return this.timers.size;
  }
  /** Move time forward, firing due timers in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}
