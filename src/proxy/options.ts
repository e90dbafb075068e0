/**
 * Options of a {@link GatewayProxy} and their validation.
 * @packageDocumentation
 */
import type { ClusterOptions } from '../cluster-options.js';
import { ShardlineError } from '../errors.js';
import type { HandlerSource } from '../handler/define.js';
import { handlerUrl } from '../handler/runner.js';

/** Options of {@link GatewayProxy.start}: a Cluster's (upstream) plus the proxy's own. */
export interface GatewayProxyOptions extends ClusterOptions {
  /** Port to listen on for clients (websocket and `/api/`). Default 0: a free port (read `url`). */
  port?: number;
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Dispatches kept per shard for client RESUMEs. Default 10 000. */
  replaySize?: number;
  /** Heartbeat interval told to clients in HELLO, real ms. Default 41 250. */
  heartbeatInterval?: number;
  /** How long a disconnected client's session can be resumed, real ms. Default 300 000. */
  resumeTimeout?: number;
  /** Disconnected client sessions kept for RESUME at most (the oldest is dropped). Default 1000. */
  maxDetachedSessions?: number;
  /**
   * Persist the upstream sessions and the guild cache in Redis, so a restarted proxy RESUMEs upstream (no IDENTIFY)
   * and still serves complete READY / GUILD_CREATEs. Needs the optional peer dependency `ioredis`.
   *
   * A `redis://` URL, an `ioredis` client you own (never closed by the proxy), or `ioredis` options. Typed as
   * `string | object` so that `shardline/proxy`'s declarations name no type of the optional `ioredis` (a project
   * without it still type-checks with `skipLibCheck` off).
   */
  redis?: string | object;
  /** Names the Redis keys (`shardline:proxy:{redisKey}:`). Default `default`. */
  redisKey?: string;
  /** How often the cache and sessions are written to Redis, real ms. Default 1000. */
  persistInterval?: number;
  /** Longest wait after the shards are READY for their guilds' GUILD_CREATEs, virtual ms. Default 15 000. */
  guildsTimeout?: number;
  /**
   * The bot's handler module (a file URL, a file URL string, or a path from the working directory), the same module
   * a Cluster runs with `handler`: its default export (`defineHandler({ dispatch })`) runs in the proxy's own thread
   * on every upstream dispatch, after the proxy has cached it and queued it for its clients (clients are not held up
   * by it, unless it falls 2048 dispatches behind over all shards: then the upstream shards stop reading their sockets
   * until half of those are handled). Each shard's dispatches are handled one at a time, in order. `ctx.send` and
   * `ctx.updatePresence` go to the event's upstream shard; `requestGuildMembers`, `updateVoiceState`,
   * `requestSoundboardSounds` and `sendTo` to the upstream cluster. Posts arrive as `handlerMessage` events, log
   * lines as `handlerLog`; a handler that throws is reported (a `HandlerError` `HANDLER_FAILED` with the event type
   * and shard, on `error`) and the next event follows. A module that cannot be loaded, or whose `init` fails, makes
   * `start()` reject with `HANDLER_LOAD_FAILED` before the upstream connects. See docs/PROXY.md, "A handler in the
   * proxy" (what a restart with `redis` means for it).
   *
   * @example
   * ```ts
   * const proxy = await GatewayProxy.start({ token, intents, port: 7878, handler: new URL('./handler.js', import.meta.url) });
   * proxy.on('handlerMessage', ({ shardId, value }) => console.log(shardId, value));
   * proxy.on('error', (err) => console.error(err.message)); // a throwing handler, among others
   * ```
   */
  handler?: HandlerSource;
  /**
   * What a handler that throws does: `'report'` (the default, and the only choice: the handler runs in the proxy's
   * thread, there is no worker to end). `'exit'` is refused with `INVALID_OPTION`.
   */
  handlerErrors?: 'report';
}

/** Validated proxy-only settings. */
export interface ProxySettings {
  port: number;
  host: string;
  replaySize: number;
  heartbeatInterval: number;
  resumeTimeout: number;
  maxDetachedSessions: number;
  persistInterval: number;
  guildsTimeout: number;
  /** The handler module's file URL; null: no handler. */
  handler: string | null;
}

function intOpt(name: string, v: number | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v < min || v > max) throw new ShardlineError('INVALID_OPTION', `${name} must be an integer from ${min} to ${max}, got ${String(v)}`);
  return v;
}

/** Defaults and validation of the proxy-only options. */
export function proxySettings(o: GatewayProxyOptions): ProxySettings {
  if ((o.handlerErrors as string | undefined) === 'exit') {
    throw new ShardlineError(
      'INVALID_OPTION',
      "handlerErrors 'exit' is not supported by the gateway proxy: its handler runs in the proxy's own thread, there is no worker to end; leave it out (a throwing handler is reported on 'error')",
    );
  }
  if (o.handlerErrors !== undefined && o.handlerErrors !== 'report') throw new ShardlineError('INVALID_OPTION', `handlerErrors must be 'report', got ${String(o.handlerErrors)}`);
  return {
    port: intOpt('port', o.port, 0, 0, 65535),
    host: o.host ?? '127.0.0.1',
    replaySize: intOpt('replaySize', o.replaySize, 10_000, 1, 10_000_000),
    heartbeatInterval: intOpt('heartbeatInterval', o.heartbeatInterval, 41_250, 100),
    resumeTimeout: intOpt('resumeTimeout', o.resumeTimeout, 300_000, 0),
    maxDetachedSessions: intOpt('maxDetachedSessions', o.maxDetachedSessions, 1000, 0),
    persistInterval: intOpt('persistInterval', o.persistInterval, 1000, 10),
    guildsTimeout: intOpt('guildsTimeout', o.guildsTimeout, 15_000, 0),
    handler: o.handler === undefined ? null : handlerUrl(o.handler),
  };
}
