import { EventChannel } from './channel.js';
import type { Clock, TimerHandle } from './clock.js';
import { ShardlineError, type RateLimitedError } from './errors.js';
import type { GuildMembersChunk } from './events.js';

/**
 * The answer to one Request Guild Members (op 8): `await` it for every chunk, or iterate it to handle chunks as
 * they arrive. Chunks are matched by nonce; it completes after `chunk_count` chunks and fails after a timeout.
 */
export class MemberRequest implements PromiseLike<GuildMembersChunk[]>, AsyncIterable<GuildMembersChunk> {
  /** The nonce sent with the request. */
  readonly nonce: string;
  private readonly chunks: GuildMembersChunk[] = [];
  private readonly channel = new EventChannel<GuildMembersChunk>(Number.MAX_SAFE_INTEGER);
  private readonly promise: Promise<GuildMembersChunk[]>;
  private resolve!: (chunks: GuildMembersChunk[]) => void;
  private reject!: (err: Error) => void;
  private timer: TimerHandle | undefined;
  private done = false;
  private readonly timeout: number;
  /** Rate-limited answers still to be retried, and how to send the request again (from the shard's `{ retry }`). */
  private readonly retry: { retries: number; resend: () => void } | null;

  constructor(
    nonce: string,
    private readonly clock: Clock,
    timeout: number,
    private readonly onDone: () => void,
    retry: { retries: number; resend: () => void } | null = null,
  ) {
    this.retry = retry;
    this.nonce = nonce;
    this.promise = new Promise((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    this.promise.catch(() => undefined); // observed through then() or iteration; never unhandled
    this.timeout = timeout;
    this.armTimeout();
  }

  private armTimeout(): void {
    this.timer = this.clock.setTimeout(() => this.fail(new ShardlineError('MEMBER_REQUEST_TIMEOUT', `no complete answer to member request ${this.nonce} within ${this.timeout} ms`)), this.timeout);
  }

  /**
   * The gateway answered RATE_LIMITED: fail with `err`, or (retries left) wait `err.retryAfter` and ask again, the
   * answer timeout restarting with the new request.
   */
  rateLimited(err: RateLimitedError): void {
    if (this.done) return;
    const retry = this.retry;
    if (retry === null || retry.retries <= 0) {
      this.fail(err);
      return;
    }
    retry.retries--;
    this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => {
      if (this.done) return;
      this.armTimeout();
      retry.resend();
    }, err.retryAfter);
  }

  /** A chunk with this request's nonce arrived. */
  push(chunk: GuildMembersChunk): void {
    if (this.done) return;
    this.chunks.push(chunk);
    this.channel.push(chunk);
    if (this.chunks.length >= chunk.chunk_count) this.settle(null);
  }

  /** End the request with an error. */
  fail(err: Error): void {
    this.settle(err);
  }

  private settle(err: Error | null): void {
    if (this.done) return;
    this.done = true;
    this.clock.clearTimeout(this.timer);
    this.onDone();
    if (err) {
      this.channel.end(err);
      this.reject(err);
    } else {
      this.chunks.sort((a, b) => a.chunk_index - b.chunk_index);
      this.channel.end();
      this.resolve(this.chunks);
    }
  }

  // biome-ignore lint/suspicious/noThenProperty: a MemberRequest is deliberately awaitable (PromiseLike) and iterable
  then<A = GuildMembersChunk[], B = never>(onfulfilled?: ((value: GuildMembersChunk[]) => A | PromiseLike<A>) | null, onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.promise.then(onfulfilled, onrejected);
  }

  [Symbol.asyncIterator](): AsyncIterator<GuildMembersChunk> {
    return this.channel[Symbol.asyncIterator]();
  }
}
