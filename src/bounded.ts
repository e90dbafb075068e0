/**
 * `connect({ timeout, signal })` for the Shard and the Cluster: one promise bounded by a timer on the caller's clock
 * and an `AbortSignal`; whichever ends first rejects it and tells the owner to release everything.
 * @packageDocumentation
 */
import type { Clock, TimerHandle } from './clock.js';
import { GatewayUnreachableError, ShardlineError } from './errors.js';

/** How a connect is bounded. */
export interface Bounds {
  clock: Clock;
  /** ms of `clock`; undefined: no limit. */
  timeout: number | undefined;
  signal: AbortSignal | undefined;
  /** The error the promise rejects with when `timeout` runs out (built then, so it can say what was seen). */
  timedOut(): Error;
  /** The message of the `AbortError` when the signal's reason is not one. */
  abortMessage: string;
  /** The bound was hit (after the promise was rejected): release the sockets and timers. */
  giveUp(): void;
}

/** A `timeout` option: undefined or a positive finite number of ms (a TypeError-free check for user input). */
export function checkTimeout(timeout: unknown): ShardlineError | null {
  if (timeout === undefined || (typeof timeout === 'number' && timeout > 0 && Number.isFinite(timeout))) return null;
  return new ShardlineError('INVALID_OPTION', `connect({ timeout }) must be a positive number of ms, got ${String(timeout)}`);
}

/** The error an aborted `signal` rejects with: its reason when that is an `AbortError`, else a new one (reason as cause). */
export function abortError(signal: AbortSignal, message: string): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  return new DOMException(message, { name: 'AbortError', cause: reason });
}

/** `work`, bounded: resolves or rejects with it, unless the timeout or the signal comes first. Leaves no timer or listener. */
export function bounded(work: Promise<void>, b: Bounds): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let timer: TimerHandle | undefined;
    const signal = b.signal;
    const done = () => {
      if (timer !== undefined) b.clock.clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const fail = (err: Error) => {
      done();
      reject(err);
      b.giveUp();
    };
    const onAbort = () => fail(abortError(signal!, b.abortMessage));
    if (signal?.aborted) return onAbort();
    if (b.timeout !== undefined) timer = b.clock.setTimeout(() => fail(b.timedOut()), b.timeout);
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(
      () => {
        done();
        resolve();
      },
      (err: Error) => {
        done();
        reject(err);
      },
    );
  });
}

/** One connect in progress: its promise, how to settle it, and what was seen so far (for {@link GatewayUnreachableError}). */
export interface ConnectAttempt {
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: Error) => void;
  /** Sockets opened for this connect. */
  attempts: number;
  /** The last connection loss, as text, and the error of the last failed connect. */
  lastCause: string | null;
  lastError: Error | null;
}

/** A new pending {@link ConnectAttempt}. */
export function connectAttempt(): ConnectAttempt {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject, attempts: 0, lastCause: null, lastError: null };
}

/** The error of shard `shardId`'s connect that reached no gateway within `timeout` ms; `redact` cleans the message (the token). */
export function unreachableError(shardId: number, timeout: number, a: ConnectAttempt, redact: (message: string) => string): GatewayUnreachableError {
  const last = a.lastCause ? `; last: ${a.lastCause}` : '';
  const message = `shard ${shardId}: gateway not reached within ${timeout} ms (${a.attempts} connect attempt(s)${last}); check gatewayUrl and the network`;
  return new GatewayUnreachableError(redact(message), { attempts: a.attempts, shardId, cause: a.lastError ?? a.lastCause ?? undefined });
}
