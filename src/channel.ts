/**
 * A bounded async-iterable queue: the producer pushes synchronously and is told when the buffer passes its
 * high-water mark (so it can stop reading the socket) and when it has drained below half of it again.
 */
export class EventChannel<T> implements AsyncIterable<T> {
  private readonly buffer: T[] = [];
  private head = 0;
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | null = null;
  private ended = false;
  private error: unknown = null;
  private full = false;

  constructor(
    private readonly highWaterMark: number,
    private readonly onPressure: (full: boolean) => void = () => {},
    private readonly onReturn: () => void = () => {},
  ) {}

  /** Items waiting to be consumed. */
  get size(): number {
    return this.buffer.length - this.head;
  }

  /** Add an item; ignored after end. */
  push(item: T): void {
    if (this.ended) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve({ value: item, done: false });
      return;
    }
    this.buffer.push(item);
    if (!this.full && this.size >= this.highWaterMark) {
      this.full = true;
      this.onPressure(true);
    }
  }

  /** No more items; consumers finish after draining, or throw `error` when given. */
  end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    if (error !== undefined) this.error = error;
    if (this.waiter && this.size === 0) {
      const w = this.waiter;
      this.waiter = null;
      if (this.error !== null) w.reject(this.error);
      else w.resolve({ value: undefined, done: true });
    }
  }

  private take(): T {
    const item = this.buffer[this.head]!;
    this.buffer[this.head++] = undefined as T;
    if (this.head > 1024 && this.head * 2 > this.buffer.length) {
      this.buffer.splice(0, this.head);
      this.head = 0;
    }
    if (this.full && this.size <= this.highWaterMark >> 1) {
      this.full = false;
      this.onPressure(false);
    }
    return item;
  }

  /** An iterator that is its own async iterable (for `events()`-style APIs: `for await` over it, or call `next()`). */
  iterator(): AsyncIterableIterator<T> {
    const it = this[Symbol.asyncIterator]();
    return Object.assign(it, { [Symbol.asyncIterator]: () => it }) as AsyncIterableIterator<T>;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.size > 0) return Promise.resolve({ value: this.take(), done: false });
        if (this.ended) {
          if (this.error !== null) {
            const e = this.error;
            this.error = null;
            return Promise.reject(e);
          }
          return Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve, reject) => {
          this.waiter = { resolve, reject };
        });
      },
      return: () => {
        this.ended = true;
        this.buffer.length = 0;
        this.head = 0;
        if (this.full) {
          this.full = false;
          this.onPressure(false);
        }
        this.onReturn();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
