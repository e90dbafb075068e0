/**
 * Error types. Every error shardline raises is a {@link ShardlineError} with a stable `code`, so callers
 * can branch on `err.code` instead of parsing messages. No message ever contains the bot token.
 */

/** Base class of every error shardline raises. */
export class ShardlineError extends Error {
  /** Stable, machine-readable error code. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ShardlineError';
    this.code = code;
  }
}

/**
 * The gateway closed the session in a way that must not be retried (bad token, invalid shard,
 * disallowed intents, ...) or a connect attempt failed for good. `closeCode` is the gateway close code
 * when there is one; the message says what to fix.
 */
export class GatewayError extends ShardlineError {
  readonly closeCode: number | null;
  readonly shardId: number | null;
  constructor(code: string, message: string, opts: { closeCode?: number | null; shardId?: number | null; cause?: unknown } = {}) {
    super(code, message, { cause: opts.cause });
    this.name = 'GatewayError';
    this.closeCode = opts.closeCode ?? null;
    this.shardId = opts.shardId ?? null;
  }
}

/**
 * The cluster's `handler` threw (or its promise rejected) on a dispatch, or its module could not be loaded
 * (`HANDLER_LOAD_FAILED`). Reported on `shardError` with the shard; the next event follows (unless `handlerErrors`
 * is `'exit'`). The handler's own error is the `cause` (in worker mode its name and message are in `message`).
 */
export class HandlerError extends ShardlineError {
  /** The shard whose event was being handled (-1: not tied to one, e.g. loading the module). */
  readonly shardId: number;
  /** The dispatch type being handled (null: not tied to one). */
  readonly eventType: string | null;
  constructor(code: 'HANDLER_FAILED' | 'HANDLER_LOAD_FAILED', message: string, opts: { shardId: number; eventType: string | null; cause?: unknown }) {
    super(code, message, { cause: opts.cause });
    this.name = 'HandlerError';
    this.shardId = opts.shardId;
    this.eventType = opts.eventType;
  }
}

/** Malformed input from the server: bad JSON, a frame without an envelope, or an unknown op. */
export class DecodeError extends ShardlineError {
  /** The payload's text (at most 64 KiB) when a dispatch was skipped because it failed to parse twice. */
  readonly raw: string | undefined;
  constructor(message: string, options?: { cause?: unknown; raw?: string }) {
    super('DECODE_ERROR', message, options);
    this.name = 'DecodeError';
    this.raw = options?.raw;
  }
}

/** Corrupt or oversized transport-compressed data. */
export class InflateError extends ShardlineError {
  constructor(code: 'INFLATE_CORRUPT' | 'INFLATE_TOO_LARGE' | 'INFLATE_UNAVAILABLE', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'InflateError';
  }
}

/** A command could not be sent: too large, shard closed, or the offline queue is full. */
export class SendError extends ShardlineError {
  constructor(code: 'PAYLOAD_TOO_LARGE' | 'SHARD_CLOSED' | 'QUEUE_FULL' | 'NOT_CONNECTED' | 'ABORTED', message: string) {
    super(code, message);
    this.name = 'SendError';
  }
}

/**
 * The gateway refused a request for going too fast (a `RATE_LIMITED` dispatch, today for op 8 member requests).
 * `retryAfter` is in ms; retry after it, or pass `{ retry: true }` to let the shard wait and retry by itself.
 */
export class RateLimitedError extends ShardlineError {
  /** How long to wait before asking again, in ms. */
  readonly retryAfter: number;
  /** The opcode that was rate limited (8: request guild members). */
  readonly opcode: number;
  /** The guild the refused request was for, when Discord said. */
  readonly guildId: string | null;
  readonly shardId: number | null;
  constructor(message: string, opts: { retryAfter: number; opcode: number; guildId?: string | null; shardId?: number | null }) {
    super('RATE_LIMITED', message);
    this.name = 'RateLimitedError';
    this.retryAfter = opts.retryAfter;
    this.opcode = opts.opcode;
    this.guildId = opts.guildId ?? null;
    this.shardId = opts.shardId ?? null;
  }
}

/**
 * The gateway (or the REST endpoint that names it) could not be reached before `connect({ timeout })` ran out.
 * Every attempt was retried with back-off and reported as it happened; `attempts` says how many there were and
 * `cause` holds the last failure.
 */
export class GatewayUnreachableError extends ShardlineError {
  /** Connect attempts made before giving up. */
  readonly attempts: number;
  readonly shardId: number | null;
  constructor(message: string, opts: { attempts: number; shardId?: number | null; cause?: unknown }) {
    super('GATEWAY_UNREACHABLE', message, { cause: opts.cause });
    this.name = 'GatewayUnreachableError';
    this.attempts = opts.attempts;
    this.shardId = opts.shardId ?? null;
  }
}

/**
 * A dispatch name in the `events` option that this version does not know, e.g. a typo (`MESSAGE_CRAETE`). Thrown
 * at construction of a {@link Shard} or {@link Cluster}, so a typo never silently delivers nothing. A `TypeError`
 * (bad input of the wrong shape) that carries the project's stable `code` like every {@link ShardlineError}.
 * A type Discord added after this release can be listed in `extraEvents` instead.
 *
 * @example
 * ```ts
 * try {
 *   new Shard({ token, intents, events: ['MESSAGE_CRAETE'] as never });
 * } catch (err) {
 *   if (err instanceof UnknownEventError) console.error(err.message); // ... did you mean MESSAGE_CREATE?
 * }
 * ```
 */
export class UnknownEventError extends TypeError {
  /** Always `UNKNOWN_EVENT`. */
  readonly code = 'UNKNOWN_EVENT';
  /** The name that was given. */
  readonly event: string;
  /** The closest known dispatch name, when one is near. */
  readonly suggestion: string | null;
  constructor(event: string, suggestion: string | null, message: string) {
    super(message);
    this.name = 'UnknownEventError';
    this.event = event;
    this.suggestion = suggestion;
  }
}

/**
 * Remove every occurrence of `secret` (and of `Bot secret`) from a string. Used on every debug line and
 * error message that could echo user input, so the token can never leak.
 */
export function redact(text: string, secret: string | undefined): string {
  if (!secret || secret.length < 4) return text;
  return text.split(secret).join('[redacted]');
}
