import { EventChannel } from './channel.js';
import type { Clock, TimerHandle } from './clock.js';
import type { GatewayRequestGuildMembersData } from 'discord-api-types/v10';
import { RateLimitedError, ShardlineError } from './errors.js';
import type { GuildMembersChunk, ShardEvent } from './events.js';
import { Intents } from './intents.js';

/** Options of {@link Shard.requestGuildMembers}. */
export interface MemberRequestOptions {
  /**
   * When the gateway answers RATE_LIMITED: `false` (default) fails the request at once with a
   * {@link RateLimitedError}; `true` waits `retryAfter` and asks again, up to 3 times; a number sets how many times.
   */
  retry?: boolean | number;
}

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

// ---- the shard's side of a member request (src/shard.ts keeps the map of open requests by nonce) -------------

/** Retries of a rate-limited member request with `retry: true`. */
const MEMBER_REQUEST_RETRIES = 3;

/** A nonce for the `n`th member request of shard `shardId` that gave none (at most 32 bytes). */
export function memberNonce(shardId: number, n: number): string {
  return `sl${shardId.toString(36)}-${n.toString(36)}-${Date.now().toString(36)}`;
}

/** How many times a rate-limited request is asked again: `retry: true` 3, a positive number that many, else 0. */
export function memberRetries(options: MemberRequestOptions): number {
  const r = options.retry;
  return r === true ? MEMBER_REQUEST_RETRIES : typeof r === 'number' && r > 0 ? Math.floor(r) : 0;
}

/** A member request the gateway would never answer fully with these intents: the error that says so, or null. */
export function missingIntentError(shardId: number, intents: number, r: GatewayRequestGuildMembersData): ShardlineError | null {
  const all = 'query' in r && r.query === '' && (r.limit ?? 0) === 0 && !('user_ids' in r && r.user_ids !== undefined);
  if (all && (intents & Intents.GuildMembers) === 0) {
    return new ShardlineError(
      'MISSING_INTENT',
      `shard ${shardId}: requesting every member of guild ${r.guild_id} (query '' and limit 0) needs the GuildMembers intent: add Intents.GuildMembers (privileged: enable it in the Developer Portal) or ask by query / user_ids`,
    );
  }
  if (r.presences === true && (intents & Intents.GuildPresences) === 0) {
    return new ShardlineError(
      'MISSING_INTENT',
      `shard ${shardId}: presences: true needs the GuildPresences intent: add Intents.GuildPresences (privileged: enable it in the Developer Portal) or leave presences out`,
    );
  }
  return null;
}

/** The error a member request fails (or retries) with when the gateway answered RATE_LIMITED for its nonce. */
export function memberRateLimitedError(e: Extract<ShardEvent, { kind: 'rateLimited' }>): RateLimitedError {
  const message = `shard ${e.shardId}: the gateway rate limited member request ${e.nonce}${e.guildId ? ` for guild ${e.guildId}` : ''}: retry after ${e.retryAfter} ms`;
  return new RateLimitedError(message, { retryAfter: e.retryAfter, opcode: e.opcode, guildId: e.guildId, shardId: e.shardId });
}
