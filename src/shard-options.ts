/**
 * The options of a {@link Shard} ({@link ShardOptions}, {@link ShardConnectOptions}), their defaults, their
 * checks at construction (each bad option throws the {@link ShardlineError} that says what to fix), and their
 * translation into the core's plain options (`ShardCoreOptions`, no token).
 *
 * @packageDocumentation
 */
import type { BackoffOptions } from './backoff.js';
import type { Clock } from './clock.js';
import { ShardlineError, type UnknownEventError } from './errors.js';
import { resolveEvents, type EventName } from './event-names.js';
import type { PresenceData, UnknownDispatchEvent } from './events.js';
import type { TransportCompression } from './inflate.js';
import { AllIntents } from './intents.js';
import type { IdentifyQueue, LocalIdentifyQueue } from './queue.js';
import { isSession, type Session } from './session.js';
import type { ShardCoreOptions } from './shard-core-io.js';
import type { Shard } from './shard.js';

// Shared by every shard that keeps the defaults (per-shard copies cost ~150 B each, thousands of shards per process).
const DEFAULT_PROPERTIES: Readonly<{ os: string; browser: string; device: string }> = Object.freeze({ os: process.platform, browser: 'shardline', device: 'shardline' });
const NO_OPTIONS: Readonly<Record<string, never>> = Object.freeze({});

/** Default gateway URL (only used when you connect to Discord for real). */
export const DEFAULT_GATEWAY_URL = 'wss://gateway.discord.gg';

/** Options of a {@link Shard}. Only `token` and `intents` are required. */
export interface ShardOptions {
  /** Bot token (with or without the `Bot ` prefix). Never logged, never shown by `util.inspect` or `JSON.stringify`. */
  token: string;
  /** Gateway intents, e.g. `Intents.Guilds | Intents.GuildMessages`. */
  intents: number;
  /** Shard id. Default 0. */
  id?: number;
  /** Shard count. Default 1. */
  total?: number;
  /** Gateway URL; a `ws://` URL for the simulator. Default `wss://gateway.discord.gg`. */
  gatewayUrl?: string;
  /** Transport compression. Default `'zlib-stream'`. */
  compression?: TransportCompression | false;
  /**
   * Dispatch types to deliver, e.g. `['MESSAGE_CREATE']`. Others are never parsed (only their sequence number
   * is read). Default: all (types this version does not know included, as {@link UnknownDispatchEvent}s).
   * A name this version does not know throws an {@link UnknownEventError} here, naming the closest known one.
   */
  events?: Iterable<EventName>;
  /**
   * Dispatch types Discord added after this release, delivered in addition to `events` (as
   * {@link UnknownDispatchEvent}s): not checked against the known names, only their form (UPPER_SNAKE_CASE).
   * Only needed with `events`. Example: `{ events: ['MESSAGE_CREATE'], extraEvents: ['GUILD_SOMETHING_NEW'] }`.
   */
  extraEvents?: Iterable<string>;
  /** Resume this session instead of identifying. */
  session?: Session | null;
  /** Initial presence sent with IDENTIFY. */
  presence?: PresenceData;
  /** 50–250: member count above which offline members are not sent. Default 50. */
  largeThreshold?: number;
  /** IDENTIFY connection properties. Default `{ os: process.platform, browser: 'shardline', device: 'shardline' }`. */
  properties?: { os?: string; browser?: string; device?: string };
  /** Decides when this shard may IDENTIFY. Default: a private {@link LocalIdentifyQueue} with one lane. */
  identifyQueue?: IdentifyQueue;
  /** Time source for every timer. Default real time; tests pass `scaledClock(0.01)`. */
  clock?: Clock;
  /** Random source in [0, 1) (heartbeat jitter, back-off, op 9 wait). */
  random?: () => number;
  /** ms to wait for HELLO after opening the socket. Default 20 000. */
  helloTimeout?: number;
  /** ms to wait for READY / RESUMED after IDENTIFY / RESUME. Default 120 000. */
  readyTimeout?: number;
  /** RESUMEs in a row that may go unanswered (no RESUMED) before the shard identifies anew. Default 3. */
  maxResumeAttempts?: number;
  /** Reconnect back-off. Default 1 s doubling to 60 s, with jitter; the first retry is immediate. */
  backoff?: BackoffOptions;
  /** Commands that may wait while rate limited or reconnecting. Default 1000. */
  maxQueuedCommands?: number;
  /** Dispatches buffered per `events()` iterator before the shard stops reading the socket. Default 10 000. */
  eventBufferSize?: number;
  /** Largest decompressed message accepted, bytes. Default 64 MiB. */
  maxMessageSize?: number;
  /** Resume after close 4009 (undocumented missed-heartbeat close) instead of identifying. Default false. */
  resumeOnSessionTimeout?: boolean;
  /** Outgoing limit per connection. Default 120 per 60 000 ms (the gateway's). */
  rateLimit?: { limit?: number; window?: number };
  /** ms to wait for all GUILD_MEMBERS_CHUNKs of a request. Default 30 000. */
  memberRequestTimeout?: number;
  /**
   * ms without an awaited GUILD_CREATE after which `guildsReady` is emitted anyway, listing the guilds still missing
   * in `unavailable` (the wait starts at READY and each awaited GUILD_CREATE restarts it). Default 15 000.
   */
  guildsTimeout?: number;
  /**
   * ms without any dispatch, while heartbeats are ACKed, after which a shard that has guilds emits `silent` (checked
   * once per heartbeat interval, so it fires up to one interval late). A known failure of the real gateway. Default:
   * off.
   */
  silentTimeout?: number;
  /** What a `silent` shard does besides reporting: `'resume'` closes the connection and RESUMEs. Default `'report'`. */
  silentAction?: 'report' | 'resume';
  /**
   * Hand wanted dispatches over unparsed: called with the raw JSON text of the whole payload instead of parsing it
   * and emitting `dispatch` (READY, RESUMED and member chunks are still parsed). For forwarding events to another
   * thread or process that parses them once. Default: none.
   */
  forwardRaw?: (type: string, sequence: number, json: string) => void;
}

/** Options of {@link Shard.connect}. */
export interface ShardConnectOptions {
  /**
   * Give up when the shard is not ready after this many ms (on the shard's clock): the promise rejects with a
   * {@link GatewayUnreachableError}, the shard is closed (its session kept, `shard.session`) and every socket and
   * timer is released. Default: none (retry with back-off until ready, a fatal close or `close()`).
   */
  timeout?: number;
  /** Abort the connect: the promise rejects with an `AbortError` and the shard is closed as for `timeout`. */
  signal?: AbortSignal;
}

/** A {@link ShardOptions} that passed its checks: the token without its `Bot ` prefix, and the resolved values. */
export interface CheckedShardOptions {
  token: string;
  intents: number;
  id: number;
  total: number;
  gatewayUrl: string;
  events: ReadonlySet<string> | null;
}

/** Check `options` in a fixed order, throwing the first problem as a {@link ShardlineError} that says what to fix. */
export function checkShardOptions(options: ShardOptions): CheckedShardOptions {
  if (typeof options.token !== 'string' || options.token.trim() === '') {
    throw new ShardlineError('INVALID_TOKEN', 'no token given: pass the bot token from the Developer Portal (e.g. process.env.DISCORD_TOKEN)');
  }
  const token = options.token.trim().replace(/^Bot\s+/i, '');
  const intents = options.intents;
  if (!Number.isInteger(intents) || intents < 0 || intents > 0x7fffffff || (intents & ~AllIntents) !== 0) {
    throw new ShardlineError('INVALID_INTENTS', `intents must be a bitfield of documented Intents values, got ${String(intents)}`);
  }
  const id = options.id ?? 0;
  const total = options.total ?? 1;
  if (!Number.isInteger(total) || total < 1 || !Number.isInteger(id) || id < 0 || id >= total) {
    throw new ShardlineError('INVALID_SHARD', `shard id must be an integer in [0, total) and total >= 1, got id ${id} of ${total}`);
  }
  const lt = options.largeThreshold;
  if (lt !== undefined && (!Number.isInteger(lt) || lt < 50 || lt > 250)) {
    throw new ShardlineError('INVALID_OPTION', `largeThreshold must be an integer from 50 to 250, got ${lt}`);
  }
  if (options.session != null && !isSession(options.session)) {
    throw new ShardlineError('INVALID_SESSION', 'session must be { sessionId: string, sequence: integer >= 0, resumeUrl: string }');
  }
  if (options.silentAction !== undefined && options.silentAction !== 'report' && options.silentAction !== 'resume') {
    throw new ShardlineError('INVALID_OPTION', `silentAction must be 'report' or 'resume', got ${JSON.stringify(options.silentAction)}`);
  }
  const gatewayUrl = options.gatewayUrl ?? DEFAULT_GATEWAY_URL;
  if (!URL.canParse(gatewayUrl) || !/^wss?:$/.test(new URL(gatewayUrl).protocol)) {
    throw new ShardlineError('INVALID_OPTION', `gatewayUrl must be a ws:// or wss:// URL, got ${JSON.stringify(gatewayUrl)}`);
  }
  const events = resolveEvents(options.events, options.extraEvents);
  return { token, intents, id, total, gatewayUrl, events };
}

/** The core's options: plain data with every default filled, the token only by its length. */
export function shardCoreOptions(
  options: ShardOptions,
  v: CheckedShardOptions,
  compression: TransportCompression | false,
  now: () => number,
  debugListeners: { listenerCount(event: 'debug'): number },
): ShardCoreOptions {
  const props = options.properties;
  const o: ShardCoreOptions = {
    id: v.id,
    total: v.total,
    intents: v.intents,
    gatewayUrl: v.gatewayUrl,
    compression,
    events: v.events, // a cluster's filter is shared by its shards, not copied
    raw: options.forwardRaw !== undefined,
    session: options.session ?? null,
    presence: options.presence,
    largeThreshold: options.largeThreshold ?? 50,
    properties: props ? { os: props.os ?? process.platform, browser: props.browser ?? 'shardline', device: props.device ?? 'shardline' } : DEFAULT_PROPERTIES,
    tokenLength: Buffer.byteLength(v.token),
    now,
    random: options.random ?? Math.random,
    helloTimeout: options.helloTimeout ?? 20_000,
    readyTimeout: options.readyTimeout ?? 120_000,
    maxResumeAttempts: options.maxResumeAttempts ?? 3,
    backoff: options.backoff ?? NO_OPTIONS,
    maxQueuedCommands: options.maxQueuedCommands ?? 1000,
    resumeOnSessionTimeout: options.resumeOnSessionTimeout ?? false,
    rateLimit: options.rateLimit ?? NO_OPTIONS,
    guildsTimeout: positiveOption('guildsTimeout', options.guildsTimeout),
    silentTimeout: positiveOption('silentTimeout', options.silentTimeout),
    silentAction: options.silentAction,
    debugListeners,
  };
  return o;
}

/** A positive finite number of ms, or undefined. */
function positiveOption(name: string, v: number | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!(v > 0) || !Number.isFinite(v)) throw new ShardlineError('INVALID_OPTION', `${name} must be a positive number of ms, got ${String(v)}`);
  return v;
}
