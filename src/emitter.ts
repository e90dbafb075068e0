import { EventEmitter } from 'node:events';

/** A listener of a typed event. */
export type Listener<A extends unknown[]> = (...args: A) => void;

/**
 * `EventEmitter` with typed event names and arguments. `error` is only emitted when someone listens, so an
 * unobserved error never throws out of the socket handler (malformed frames must not crash the process).
 */
export class TypedEmitter<M extends { [K in keyof M]: unknown[] }> extends EventEmitter {
  override on<K extends keyof M & string>(event: K, listener: Listener<M[K]>): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }
  override once<K extends keyof M & string>(event: K, listener: Listener<M[K]>): this {
    return super.once(event, listener as (...args: unknown[]) => void);
  }
  override off<K extends keyof M & string>(event: K, listener: Listener<M[K]>): this {
    return super.off(event, listener as (...args: unknown[]) => void);
  }
  /**
   * Add `listener` for `event`; returns the function that removes it again.
   * @example
   * ```ts
   * const stop = shard.listen('dispatch', (e) => console.log(e.type));
   * stop();
   * ```
   */
  listen<K extends keyof M & string>(event: K, listener: Listener<M[K]>): () => void {
    this.on(event, listener);
    return () => void this.off(event, listener);
  }
  override emit<K extends keyof M & string>(event: K, ...args: M[K]): boolean {
    if (event === 'error' && this.listenerCount('error') === 0) return false;
    return super.emit(event, ...args);
  }
}
