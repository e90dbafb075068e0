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

/** A real millisecond (the event loop polls for I/O meanwhile): time for work on the thread pool (zlib). */
const realMs = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 1));

export interface DriveOptions {
  /** What is awaited, for the failure message. */
  what?: string;
  /** Give up after this much virtual time. Default one virtual hour. */
  limit?: number;
  /** The most virtual time one step moves (default 1000 ms; to the next due timer when it is nearer). */
  step?: number;
  /**
   * A number that changes whenever the sockets did something (e.g. {@link simActivity}): time moves only once it
   * stayed the same for two event-loop turns and a real millisecond, so a message on its way (HELLO, IDENTIFY, a
   * heartbeat ACK) arrives at the virtual time it was sent. Without it each step waits that long once.
   */
  activity?: () => number;
  /** Give up after this many real ms (default 20 000): a step that never goes quiet, or sockets that never answer. */
  realLimit?: number;
  /** @internal driveFor: the time to reach even when no timer is due. */
  to?: number;
}

/** Messages and connections a simulator saw or sent: an activity measure for {@link DriveOptions.activity}. */
export function simActivity(...sims: { readonly stats: { connections: number; payloadsReceived: number; messagesSent: number; bytesSent: number } }[]): () => number {
  return () => sims.reduce((n, s) => n + s.stats.connections + s.stats.payloadsReceived + s.stats.messagesSent + s.stats.bytesSent, 0);
}

/**
 * Run `clock` while real sockets in this process work, until `done()` holds. Between steps of at most `step`
 * virtual ms (to the next due timer when it is nearer) the event loop polls for I/O until the sockets are quiet.
 * Time moves only here, so a loaded machine makes the test slower, never late: a heartbeat cannot miss an ACK that
 * is already on its way, an IDENTIFY cannot arrive after its window. Throws when `done()` does not hold within
 * `limit` virtual ms (or `realLimit` real ms).
 */
export async function driveUntil(clock: ManualClock, done: () => boolean, o: DriveOptions = {}): Promise<void> {
  const step = o.step ?? 1000;
  const limit = o.limit ?? 3_600_000;
  const end = clock.now() + limit;
  const realEnd = Date.now() + (o.realLimit ?? 20_000);
  const activity = o.activity ?? (() => 0);
  // two event-loop turns (each polls for I/O) and a real millisecond in which the sockets did nothing
  const quiet = async (): Promise<void> => {
    for (let last = activity(), turn = 0; turn < 3; turn++) {
      await (turn < 2 ? settle() : realMs());
      const now = activity();
      if (now !== last) turn = -1;
      last = now;
      if (done() || Date.now() > realEnd) return;
    }
  };
  await quiet();
  while (!done()) {
    const what = o.what ?? 'the condition';
    if (clock.now() >= end) throw new Error(`driveUntil: ${what} not reached after ${limit} virtual ms`);
    if (Date.now() > realEnd) throw new Error(`driveUntil: ${what} not reached after ${o.realLimit ?? 20_000} real ms (virtual ${clock.now()} ms, ${clock.pending} timers pending)`);
    // with no timer due, only the sockets can move things on (driveFor still lets its time pass)
    const at = clock.nextAt ?? o.to;
    if (at !== undefined) clock.advance(Math.max(0, Math.min(at, clock.now() + step, end) - clock.now()));
    await quiet();
  }
}

/** Resolve with what `p` resolves to (or reject with its reason), running `clock` meanwhile like {@link driveUntil}. */
export async function drive<T>(clock: ManualClock, p: Promise<T>, o: DriveOptions = {}): Promise<T> {
  let settled = false;
  const watched = p.then(
    (v) => {
      settled = true;
      return v;
    },
    (e: unknown) => {
      settled = true;
      throw e;
    },
  );
  watched.catch(() => {}); // returned below: never an unhandled rejection while the clock runs
  await driveUntil(clock, () => settled, o);
  return watched;
}

/** Run `clock` for `ms` virtual ms like {@link driveUntil}: in steps, with the sockets quiet between them. */
export async function driveFor(clock: ManualClock, ms: number, o: Omit<DriveOptions, 'limit' | 'to'> = {}): Promise<void> {
  const end = clock.now() + ms;
  await driveUntil(clock, () => clock.now() >= end, { realLimit: 60_000, ...o, limit: ms + 1, to: end });
}

/** What a test drives a {@link ManualClock} with: `run` awaits a promise, `until` a condition, both stepping time only while the simulators' sockets are quiet. */
export interface Driver {
  run<T>(p: PromiseLike<T>, what?: string): Promise<T>;
  until(done: () => boolean, what?: string): Promise<void>;
}

/** {@link drive} / {@link driveUntil} on `clock`, with the activity of `sims` ({@link simActivity}). */
export function driver(clock: ManualClock, ...sims: Parameters<typeof simActivity>): Driver {
  const activity = simActivity(...sims);
  return {
    run: (p, what) => drive(clock, Promise.resolve(p), { what, activity }),
    until: (done, what) => driveUntil(clock, done, { what, activity }),
  };
}
