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
  /** Time of the earliest pending timer (undefined when none is pending). */
  get nextAt(): number | undefined {
    let at: number | undefined;
    for (const t of this.timers.values()) if (at === undefined || t.at < at) at = t.at;
    return at;
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

/** Let every queued promise continuation run (one macrotask turn: the microtask queue drains before it). */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Move `clock` forward by `ms`, one due timer at a time, letting the promise continuations of each timer run
 * before the next one fires (so a timer set by a continuation counts from the time its cause fired).
 */
export async function runFor(clock: ManualClock, ms: number): Promise<void> {
  const end = clock.now() + ms;
  await settle();
  for (let at = clock.nextAt; at !== undefined && at <= end; at = clock.nextAt) {
    clock.advance(at - clock.now());
    await settle();
  }
  clock.advance(end - clock.now());
  await settle();
}

/** Run `clock` until `done()` holds (checked after every timer); throws when it does not within `limit` ms. */
export async function runUntil(clock: ManualClock, done: () => boolean, limit = 3_600_000): Promise<void> {
  const end = clock.now() + limit;
  await settle();
  while (!done()) {
    const at = clock.nextAt;
    if (at === undefined || at > end) throw new Error(`runUntil: not done after ${limit} virtual ms (${clock.pending} timers pending)`);
    clock.advance(at - clock.now());
    await settle();
  }
}
