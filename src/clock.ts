/**
 * Time source used by every timer in shardline (heartbeats, identify windows, rate-limit windows,
 * back-off, timeouts) and by the simulator. Injecting a scaled clock lets tests run a 41 s heartbeat
 * or a 60 s rate window in milliseconds without changing any protocol logic.
 *
 * @example
 * ```ts
 * import { scaledClock } from 'shardline';
 * const clock = scaledClock(0.01); // 41 250 ms heartbeats fire every ~412 real ms
 * ```
 */
export interface Clock {
  /** Current time in (virtual) milliseconds. Monotonic. */
  now(): number;
  /** Run `fn` after `ms` virtual milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancel a timer made by {@link Clock.setTimeout}. Safe to call twice or with `undefined`. */
  clearTimeout(handle: TimerHandle | undefined): void;
  /** Virtual milliseconds per real millisecond is `1 / scale`; 1 for the system clock. */
  readonly scale: number;
}

/** Opaque timer handle. */
export type TimerHandle = { readonly __timer: unique symbol } | ReturnType<typeof setTimeout>;

/**
 * A clock whose virtual time runs `1 / scale` times faster than real time.
 * `scale` 1 is real time, 0.01 makes every duration 100 times shorter.
 */
export function scaledClock(scale: number): Clock {
  if (!(scale > 0) || !Number.isFinite(scale)) throw new RangeError(`clock scale must be a positive number, got ${scale}`);
  const origin = performance.now();
  return {
    scale,
    now: () => (performance.now() - origin) / scale,
    setTimeout: (fn, ms) => setTimeout(fn, Math.max(0, ms * scale)),
    clearTimeout: (h) => {
      if (h !== undefined) clearTimeout(h as ReturnType<typeof setTimeout>);
    },
  };
}

/** Real time. */
export const systemClock: Clock = scaledClock(1);

/**
 * A timeout for judging a peer (handshake, heartbeat ACK): `fn` runs after `ms`, but when the timer fires late
 * (the event loop was stalled by GC, a blocking handler or a busy host) only after the next I/O poll, because
 * Node runs timers before it reads sockets and the awaited message may be sitting unread. `stillDue` is checked
 * just before `fn` runs; return false there when the awaited message arrived meanwhile.
 */
export function setDeadline(clock: Clock, ms: number, stillDue: () => boolean, fn: () => void): TimerHandle {
  const due = clock.now() + ms;
  return clock.setTimeout(() => {
    if (clock.now() <= due) {
      if (stillDue()) fn();
      return;
    }
    setImmediate(() => {
      if (stillDue()) fn();
    });
  }, ms);
}

/** Sleep on a clock; rejects with the signal's reason when aborted. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clock.clearTimeout(handle);
      reject(signal!.reason);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
