/**
 * Structured logs: route a cluster's or a shard's events to `pino` or any logger with the same shape
 * (`logger.info(fields, message)`). No dependency: {@link Logger} is structural.
 *
 * @example
 * ```ts
 * import pino from 'pino';
 * import { Cluster, routeLogs } from 'shardline';
 * const cluster = new Cluster({ token, intents });
 * const stop = routeLogs(cluster, pino(), { level: 'info' });
 * await cluster.connect();
 * // stop() removes the listeners
 * ```
 * @packageDocumentation
 */
import { Cluster } from './cluster.js';
import type { ClusterReadyEvent, WorkerExitEvent } from './cluster-status.js';
import { redact } from './errors.js';
import type { DebugEvent, ShardEvent } from './events.js';
import type { IdentifyBudgetEvent } from './queue.js';
import type { Shard } from './shard.js';

/** What shardline needs of a logger: pino's, bunyan's or winston-like `(fields, message)` methods. */
export interface Logger {
  debug(fields: object, message?: string): void;
  info(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
}

/** Lowest level routed. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** Options of {@link routeLogs}. */
export interface RouteLogsOptions {
  /**
   * Lowest level to route. Default `'info'`. `'debug'` also routes the shards' debug lines, which cost a string
   * per event on busy shards, so they are only produced while routed.
   */
  level?: LogLevel;
  /** Extra strings to remove from every message and field (shardline already removes the token). */
  redact?: string[];
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/**
 * Send `target`'s events to `logger` with structured fields, and return a function that stops it (and removes
 * every listener it added). Shard-level lines come from the one event stream (`event` on a Shard, `shardEvent` on a
 * Cluster); the cluster's own events (`ready`, `identifyBudget`, `workerExit`, `error`, its debug lines) from
 * their named events.
 *
 * | event | level | fields |
 * |---|---|---|
 * | debug lines | debug | `shardId` |
 * | state changes | info (`fatal`: error) | `shardId, from, to, cause` (kind), `code`, `resumable`, `reason` |
 * | disconnects | warn | `shardId, code, kind, cause, action` |
 * | shard errors (recovered; a stopped shard is logged by its state change) | warn | `shardId, err: { name, code, message }` |
 * | cluster errors not tied to a stopped shard | error | `err` |
 * | all shards ready, identify budget | info / warn | `shards, elapsed` / `remaining, total, resetIn` |
 * | guilds loaded (`guildsReady`) | info (warn with unavailable guilds) | `shardId, guilds, unavailable` (a count) |
 * | handler log lines (`handlerLog`, handler mode) | the line's level | `shardId`, `worker` |
 * | gateway rate limit, silent shard | warn | `shardId, opcode, retryAfter, guildId` / `shardId, since, guilds` |
 */
export function routeLogs(target: Cluster | Shard, logger: Logger, options: RouteLogsOptions = {}): () => void {
  const min = RANK[options.level ?? 'info'];
  if (min === undefined) throw new TypeError(`level must be one of ${Object.keys(RANK).join(', ')}; got ${String(options.level)}`);
  const secrets = (options.redact ?? []).filter((s) => typeof s === 'string' && s.length >= 4);
  const clean = (s: string): string => secrets.reduce((acc, secret) => redact(acc, secret), s);
  const emit = (level: Exclude<LogLevel, 'silent'>, fields: Record<string, unknown>, message: string) => {
    if (RANK[level] < min) return;
    const safe: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(fields)) safe[k] = typeof v === 'string' ? clean(v) : v;
    try {
      logger[level](safe, clean(message));
    } catch {
      // a failing logger must not break the gateway
    }
  };
  const shardFields = (id: number) => (id >= 0 ? { shardId: id } : {});
  const errFields = (err: Error) => {
    const code = (err as Error & { code?: unknown }).code;
    return { name: err.name, ...(typeof code === 'string' ? { code } : {}), message: clean(err.message) };
  };

  /** State of a shard of the target (a fatal shard's error is already logged by its state change). */
  const stateOf = (shardId: number): string | undefined => {
    try {
      return target instanceof Cluster ? target.shard(shardId).state : target.state;
    } catch {
      return undefined;
    }
  };
  // An error reported both on the stream and on the cluster's `shardError` is logged once, by whichever comes first.
  const logged = new WeakSet<Error>();
  const onShardError = (err: Error, shardId: number) => {
    if (logged.has(err)) return;
    logged.add(err);
    if (stateOf(shardId) === 'fatal') return;
    emit('warn', { ...shardFields(shardId), err: errFields(err) }, err.message);
  };
  /** The one stream of the shard (or of every shard of the cluster): everything shard-level is logged from here. */
  const onEvent = (e: ShardEvent) => {
    switch (e.kind) {
      case 'state': {
        const c = e.cause;
        emit(
          e.to === 'fatal' ? 'error' : 'info',
          {
            shardId: e.shardId,
            from: e.from,
            to: e.to,
            cause: c.kind,
            ...(c.code != null ? { code: c.code } : {}),
            ...(c.resumable !== undefined ? { resumable: c.resumable } : {}),
            reason: c.reason,
          },
          `shard ${e.shardId}: ${e.from} → ${e.to}`,
        );
        return;
      }
      case 'disconnected':
        emit('warn', { shardId: e.shardId, code: e.code, kind: e.cause, cause: e.label, action: e.action }, `shard ${e.shardId} disconnected: ${e.label}; ${e.action}`);
        return;
      case 'error':
        onShardError(e.error, e.shardId);
        return;
      case 'debug':
        emit('debug', shardFields(e.shardId), e.message);
        return;
      case 'rateLimited':
        emit('warn', { shardId: e.shardId, opcode: e.opcode, retryAfter: e.retryAfter, guildId: e.guildId }, `shard ${e.shardId}: gateway rate limited op ${e.opcode}; retry after ${e.retryAfter} ms`);
        return;
      case 'guildsReady':
        emit(
          e.unavailable.length ? 'warn' : 'info',
          { shardId: e.shardId, guilds: e.guilds, unavailable: e.unavailable.length },
          `shard ${e.shardId}: ${e.guilds} guilds loaded${e.unavailable.length ? `, ${e.unavailable.length} still unavailable` : ''}`,
        );
        return;
      case 'silent':
        emit('warn', { shardId: e.shardId, since: e.since, guilds: e.guilds }, `shard ${e.shardId}: no dispatch for ${e.since} ms although heartbeats are ACKed (silent)`);
        return;
      default:
        return; // dispatches, READY / RESUMED (logged by their state change), heartbeats
    }
  };
  /**
   * Shards produce debug lines only while someone listens to `debug`: this listener turns them on (they are then
   * logged from the stream) and carries the cluster's own lines (`shardId` -1), which are not shard events.
   */
  const onDebug = (e: DebugEvent) => {
    if (e.shardId < 0) emit('debug', {}, e.message);
  };

  const off: (() => void)[] = [];
  if (target instanceof Cluster) {
    const c = target;
    // A shard that stops for good is logged by its state change (with the reason); other cluster errors here.
    const onError = (err: Error) => {
      const shardId = (err as Error & { shardId?: unknown }).shardId;
      if (typeof shardId === 'number' && stateOf(shardId) === 'fatal') return;
      emit('error', { err: errFields(err) }, err.message);
    };
    const onReady = (e: ClusterReadyEvent) => emit('info', { shards: e.shards, elapsed: e.elapsed }, `all ${e.shards} shards ready`);
    const onBudget = (e: IdentifyBudgetEvent) =>
      emit(e.kind === 'exhausted' ? 'warn' : 'info', { remaining: e.remaining, total: e.total, resetIn: e.resetIn, policy: e.policy }, `identify budget ${e.kind}`);
    const onWorkerExit = (e: WorkerExitEvent) =>
      emit(
        e.restarting ? 'warn' : 'error',
        { worker: e.worker, code: e.code, restarting: e.restarting, restarts: e.restarts, delay: e.delay, shards: e.shards },
        e.restarting ? `${e.reason}; respawning in ${e.delay} ms` : `${e.reason}; not respawned`,
      );
    if (min <= RANK.debug) off.push(c.listen('debug', onDebug));
    off.push(
      c.listen('shardEvent', onEvent),
      // The cluster's own reports that are not shard events (a cluster listener that threw); shard errors already
      // logged from the stream are skipped.
      c.listen('shardError', onShardError),
      c.listen('error', onError),
      c.listen('ready', onReady),
      c.listen('identifyBudget', onBudget),
      c.listen('workerExit', onWorkerExit),
      c.listen('handlerLog', (e) => emit(e.level, { ...(e.shardId !== null ? { shardId: e.shardId } : {}), ...(e.worker !== null ? { worker: e.worker } : {}) }, e.message)),
    );
  } else {
    const s = target;
    if (min <= RANK.debug) off.push(s.listen('debug', onDebug));
    off.push(s.listen('event', onEvent));
  }
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    for (const f of off) f();
  };
}
