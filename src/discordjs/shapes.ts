/**
 * The `@discordjs/ws` manager as {@link ShardlineStrategy} sees it (structural types: shardline never imports
 * `@discordjs/ws`), and the two shapes in which its events are emitted: 1.x (discord.js 14) passes one object with
 * the shard id inside (`emit('dispatch', { data, shardId })`), 2.x passes positional arguments with the shard id last
 * (`emit('dispatch', payload, shardId)`).
 * @packageDocumentation
 */
import type { APIGatewayBotInfo } from 'discord-api-types/v10';
import type { ShardlineIdentifyThrottler } from './throttler.js';

/** `SessionInfo` of `@discordjs/ws` (both versions). */
export interface DiscordjsSessionInfo {
  /** `resume_gateway_url` of READY. */
  resumeURL: string;
  /** Last sequence number received (as of the last update: READY, RESUMED, or the disconnect). */
  sequence: number;
  /** `session_id` of READY. */
  sessionId: string;
  /** The bot's shard count when the shard identified. */
  shardCount: number;
  shardId: number;
}

/**
 * The options of an `@discordjs/ws` `WebSocketManager` that {@link ShardlineStrategy} reads (1.x and 2.x). Only
 * `intents` is required; the rest is read when present.
 */
export interface DiscordjsManagerOptions {
  /** Gateway intents (a bit field). */
  intents: number;
  /** 1.x keeps the token here; 2.x behind `manager.token`. */
  token?: string;
  /** Non-null: zlib-stream transport compression (1.x `'zlib-stream'`, 2.x a `CompressionMethod` number). */
  compression?: unknown;
  /** Presence sent with IDENTIFY. */
  initialPresence?: unknown;
  /** IDENTIFY's `large_threshold`. */
  largeThreshold?: number | null;
  /** IDENTIFY's connection properties. */
  identifyProperties?: { os?: string; browser?: string; device?: string };
  /** A stored session of the shard (`SessionInfo`, sync or async), resumed when its `shardCount` matches. */
  retrieveSessionInfo?(shardId: number): unknown;
  /** Told the shard's session on READY, RESUMED and each disconnect (null when it ends); never awaited. */
  updateSessionInfo?(shardId: number, info: DiscordjsSessionInfo | null): unknown;
  /** Builds the identify throttler (an `IIdentifyThrottler`; a {@link ShardlineIdentifyThrottler} is unwrapped). */
  buildIdentifyThrottler?(manager: never): unknown;
}

/**
 * The `@discordjs/ws` `WebSocketManager` handed to `buildStrategy(manager)`: discord.js 14's own (1.x) or a 2.x one.
 * Typed structurally so that shardline needs no `@discordjs/ws` at all.
 */
export interface DiscordjsManager {
  /** The manager's options (1.x and 2.x). */
  readonly options: DiscordjsManagerOptions;
  /** `GET /gateway/bot` through the manager's REST client (cached by the manager). */
  fetchGatewayInformation(force?: boolean): Promise<APIGatewayBotInfo>;
  /** The bot's total shard count (the manager's `shardCount`, else from `/gateway/bot`). */
  getShardCount(): Promise<number>;
}

/** How events are passed to the manager's listeners: `@discordjs/ws` 1.x (one object) or 2.x (positional). */
export type EventShape = 'v1' | 'v2';

/** The events a strategy emits on the manager (`WebSocketShardEvents` values, the same in 1.x and 2.x). */
export type ManagerEvent = 'closed' | 'debug' | 'dispatch' | 'error' | 'heartbeat' | 'hello' | 'ready' | 'resumed';

interface Emitter {
  emit(event: string, ...args: unknown[]): unknown;
  listenerCount(event: string): number;
}

/**
 * The event shape of `manager`, by capability: 2.x managers have `setToken()` and keep the token out of `options`;
 * 1.x managers keep it in `options.token`. Anything else is treated as 1.x (the version discord.js 14 brings).
 */
export function detectShape(manager: DiscordjsManager): { shape: EventShape; certain: boolean } {
  if (typeof (manager as { setToken?: unknown }).setToken === 'function') return { shape: 'v2', certain: true };
  if (typeof manager.options?.token === 'string') return { shape: 'v1', certain: true };
  return { shape: 'v1', certain: false };
}

/** The token of `manager`: 2.x's `manager.token` getter (it throws when unset), else 1.x's `options.token`. */
export function managerToken(manager: DiscordjsManager): string | null {
  try {
    const t = (manager as { token?: unknown }).token;
    if (typeof t === 'string' && t !== '') return t;
  } catch {
    // 2.x throws "Token has not been set"
  }
  const t = manager.options?.token;
  return typeof t === 'string' && t !== '' ? t : null;
}

/**
 * Emits one event on the manager in its version's shape. `payload` holds the 1.x object's fields; `args` the 2.x
 * positional arguments (without the shard id, which is appended).
 */
export class ManagerEmitter {
  readonly shape: EventShape;
  readonly #emitter: Emitter;

  constructor(manager: DiscordjsManager, shape: EventShape) {
    this.shape = shape;
    this.#emitter = manager as unknown as Emitter;
    if (typeof this.#emitter.emit !== 'function') throw new TypeError('ShardlineStrategy: the manager is not an event emitter (pass the manager given to buildStrategy)');
  }

  listens(event: ManagerEvent): boolean {
    const count = this.#emitter.listenerCount;
    return typeof count !== 'function' || count.call(this.#emitter, event) > 0;
  }

  /** Emit `event` for `shardId`; a throwing listener is returned (never thrown into the shard's event path). */
  emit(event: ManagerEvent, shardId: number | undefined, payload: Record<string, unknown>, args: unknown[]): unknown {
    try {
      if (this.shape === 'v1') this.#emitter.emit(event, { ...payload, shardId });
      else this.#emitter.emit(event, ...args, shardId);
      return null;
    } catch (err) {
      return err;
    }
  }

  dispatch(shardId: number, data: unknown): unknown {
    return this.emit('dispatch', shardId, { data }, [data]);
  }
  ready(shardId: number, data: unknown): unknown {
    return this.emit('ready', shardId, { data }, [data]);
  }
  closed(shardId: number, code: number): unknown {
    return this.emit('closed', shardId, { code }, [code]);
  }
  /** `shardId` undefined: a line of the strategy itself (discord.js prints it as the manager's). */
  debug(shardId: number | undefined, message: string): unknown {
    return this.emit('debug', shardId, { message }, [message]);
  }
  error(shardId: number, error: Error): unknown {
    // An `error` event nobody listens to would throw out of the emitter.
    if (!this.listens('error')) return null;
    return this.emit('error', shardId, { error }, [error]);
  }
  heartbeat(shardId: number, stats: { ackAt: number; heartbeatAt: number; latency: number }): unknown {
    return this.emit('heartbeat', shardId, stats, [stats]);
  }
  hello(shardId: number): unknown {
    return this.emit('hello', shardId, {}, []);
  }
  resumed(shardId: number): unknown {
    return this.emit('resumed', shardId, {}, []);
  }
}
