/**
 * Options of a {@link Cluster} (and their validation), and the cluster's constants.
 * @packageDocumentation
 */
import type { Clock } from './clock.js';
import type { RemoteCommands } from './cluster-commands.js';
import { ShardlineError, type UnknownEventError } from './errors.js';
import { resolveEvents, type EventName } from './event-names.js';
import type { HandlerSource } from './handler/define.js';
import { handlerUrl } from './handler/runner.js';
import type { TransportCompression } from './inflate.js';
import { AllIntents } from './intents.js';
import type { IdentifyQueue, LocalIdentifyQueue } from './queue.js';
import type { AutoReshardOptions } from './reshard.js';
import { isSession, type Session } from './session.js';
import { API_VERSION, type ShardOptions } from './shard.js';
import type { WorkerRestartPolicy } from './worker/host.js';

/** Default REST base used for `GET /gateway/bot`. */
export const DEFAULT_API_URL = `https://discord.com/api/v${API_VERSION}`;
/**
 * Spacing of the default identify queue's lane grid, ms: the gateway's 5000 plus 2 % for clock and network jitter,
 * so N shards start within ~2 % of ceil(N / max_concurrency) identify windows.
 */
export const CLUSTER_IDENTIFY_WINDOW = 5100;

/**
 * How worker threads that exit on their own are restarted (`ClusterOptions.workerRestart`). Durations are virtual
 * ms of the cluster's clock.
 */
export interface WorkerRestartOptions {
  /** Respawns allowed within `windowMs`; the next exit stops the worker's shards (`fatal`, `WORKER_EXITED`). Default 5. */
  maxRestarts?: number;
  /** Window over which exits are counted. Default 300 000 (5 min). */
  windowMs?: number;
  /** Back-off before the first respawn; doubled for each further exit within the window. Default 1000. */
  initialDelay?: number;
  /** Upper bound of the back-off. Default 30 000. */
  maxDelay?: number;
}

/** Options of a {@link Cluster}. Only `token` and `intents` are required. */
export interface ClusterOptions {
  /** Bot token (with or without the `Bot ` prefix). Never logged. */
  token: string;
  /** Gateway intents of every shard (a shard may override them in `shardOptions`). */
  intents: number;
  /**
   * Which shards to run: `'auto'` (default) uses the count recommended by `GET /gateway/bot`; a number runs
   * shards `0..n-1` of `n`; `{ ids, total }` runs some shards of a larger bot (e.g. one machine of several).
   */
  shards?: 'auto' | number | { ids: number[]; total: number };
  /**
   * Gateway URL. Default: the `url` from `GET /gateway/bot`. Setting it without `apiUrl` means the cluster makes no
   * REST call at all (the token goes only to the hosts you configured): `GET /gateway/bot` is skipped,
   * `shards: 'auto'` runs 1 shard, identifies use one lane (`max_concurrency` 1) without a daily budget, and a cluster
   * `debug` line says so. Pass `shards` (and `apiUrl` or an `identifyQueue` for more lanes) when that is not right.
   */
  gatewayUrl?: string;
  /**
   * REST base for `GET /gateway/bot` (shard count, gateway URL, identify limits). Default
   * `https://discord.com/api/v10`, but only when `gatewayUrl` is not set either (see `gatewayUrl`).
   */
  apiUrl?: string;
  /**
   * Decides when each shard may IDENTIFY (share one between processes to share the rate). Default: a
   * {@link LocalIdentifyQueue} built from `session_start_limit` (`max_concurrency` lanes, the daily budget).
   */
  identifyQueue?: IdentifyQueue;
  /** With the default queue: what happens when the daily session start budget is spent. Default `'error'`. */
  onIdentifyBudgetExhausted?: 'wait' | 'error';
  /** Resume these shards (by id) instead of identifying, e.g. the result of a previous `close({ resumable: true })`. */
  sessions?: Record<number, Session>;
  /**
   * Where commands go for the bot's shards this cluster does not run (`shards: { ids, total }`, the rest run in
   * other processes): `cluster.requestGuildMembers()`, `updateVoiceState()`, `requestSoundboardSounds()` and
   * `updatePresence()` reach them through it. `NatsBroker.remoteCommands()` (`shardline/distributed`) is one.
   * Default: none (such a command rejects with `UNKNOWN_SHARD`).
   */
  remoteCommands?: RemoteCommands;
  /** Per-shard options (presence, large threshold, ...). In worker mode only plain data survives (no functions). */
  shardOptions?: (id: number) => Partial<ShardOptions>;
  /** 0 (default): every shard in this thread; n: shards spread over n worker threads (round robin by id). */
  workers?: number;
  /**
   * Worker mode: what happens when a worker thread exits without being asked to (an uncaught exception, out of
   * memory, `process.exit()` in a worker, ...). Default on: after a back-off (1 s, doubling, at most 30 s) a new
   * worker starts with the same shards, and each shard that was running RESUMEs its session from the last dispatch
   * the main thread delivered — what the dead worker had read but not passed on is replayed by the gateway, what
   * the replay repeats is dropped, so no event is lost or delivered twice (a shard without a session identifies).
   * Shards that were `fatal` or `closed` stay so. More than `maxRestarts` exits within `windowMs` (default 5 in
   * 5 min), or `false`, and the worker's shards stop instead: state `fatal`, a `GatewayError` `WORKER_EXITED` on
   * `error` / `shardError`. Every exit is reported as a `workerExit` event (and a debug line).
   *
   * @example
   * ```ts
   * const cluster = new Cluster({ token, intents, workers: 4, workerRestart: { maxRestarts: 3, windowMs: 600_000 } });
   * cluster.on('workerExit', (e) =>
   *   console.warn(`${e.reason}: ${e.restarting ? `respawning in ${e.delay} ms (restart ${e.restarts})` : 'its shards stopped'}`),
   * );
   * ```
   */
  workerRestart?: false | WorkerRestartOptions;
  /**
   * The bot's handler module (a file URL, a file URL string, or a path from the working directory): its default
   * export ({@link Handler}, see `defineHandler`) runs on every dispatch in the thread that runs the shard, parsed
   * once there. With `workers: n` each worker imports it and the main thread never sees a dispatch (no `dispatch`
   * events; it keeps start-up, the identify queue, health, status, metrics and resharding); with `workers: 0` it
   * runs in this thread. A worker that crashes resumes its shards from the last event the handler finished.
   * Values the handler posts arrive as `handlerMessage` events, its log lines as `handlerLog`.
   *
   * @example
   * ```ts
   * const cluster = new Cluster({ token, intents, workers: 2, handler: new URL('./handler.js', import.meta.url) });
   * cluster.on('handlerMessage', ({ shardId, value }) => console.log(shardId, value));
   * ```
   */
  handler?: HandlerSource;
  /**
   * What a handler that throws does: `'report'` (default) reports a `HandlerError` (`HANDLER_FAILED`, with the event
   * type and shard) on `shardError` and goes on with the next event; `'exit'` (worker mode only) ends the worker,
   * which is respawned per `workerRestart` and handles the event again after the RESUME.
   */
  handlerErrors?: 'report' | 'exit';
  /**
   * Dispatch types to deliver (others are never parsed), e.g. `['MESSAGE_CREATE']`. Default: all. Checked when the
   * cluster is constructed: a name this version does not know throws an {@link UnknownEventError} naming the
   * closest known one (`MESSAGE_CRAETE` → `MESSAGE_CREATE`).
   */
  events?: Iterable<EventName>;
  /**
   * Dispatch types Discord added after this release, delivered in addition to `events` (as `UnknownDispatchEvent`s):
   * only their form is checked (UPPER_SNAKE_CASE). Only needed with `events`.
   */
  extraEvents?: Iterable<string>;
  /** Transport compression of every shard. Default `'zlib-stream'`. */
  compression?: TransportCompression | false;
  /** Time source. Default real time; tests pass `scaledClock(...)`. In worker mode only its `scale` is used. */
  clock?: Clock;
  /** Dispatches buffered per `events()` iterator before the shards stop reading their sockets. Default 10 000. */
  eventBufferSize?: number;
  /**
   * Shards per identify lane connected at once during start-up. Default 1: the next shard of a lane connects half
   * a window after the previous one's identify turn and waits ~2.5 s for its own, so no socket idles long unidentified.
   */
  startAhead?: number;
  /**
   * Reshard automatically (see {@link Cluster.autoReshard}) once `connect()` has settled: checks `GET /gateway/bot`
   * every `interval` and reshards when the guilds per shard pass `guildsPerShard`. Default: off.
   */
  autoReshard?: AutoReshardOptions;
}

/** What `new Cluster(options)` keeps of the options once they are checked. */
export interface CheckedClusterOptions {
  /** The token, trimmed, without a `Bot ` prefix. */
  token: string;
  /** Respawn policy of the worker threads (null: a worker that exits stops its shards). */
  workerRestart: WorkerRestartPolicy | null;
  /** Handler mode: the module's file URL (null: dispatches are delivered as events). */
  handlerUrl: string | null;
  /** The `events` filter, one checked Set for every shard (undefined: every event). */
  events: ReadonlySet<string> | undefined;
  extraEvents: string[] | undefined;
  /** Sessions to resume, by shard id. */
  sessions: Record<number, Session>;
  /** The shards to run (null: `'auto'`, the count `GET /gateway/bot` recommends). */
  shards: { total: number; ids: number[] } | null;
}

/**
 * Check `options` where the cluster is built (a typo throws there, not at `connect()`): a {@link ShardlineError}
 * for the first bad option (`INVALID_TOKEN`, `INVALID_INTENTS`, `INVALID_OPTION`, `INVALID_SESSION`, `INVALID_SHARD`),
 * an {@link UnknownEventError} for an unknown event name.
 */
export function checkClusterOptions(options: ClusterOptions): CheckedClusterOptions {
  if (typeof options?.token !== 'string' || options.token.trim() === '') {
    throw new ShardlineError('INVALID_TOKEN', 'no token given: pass the bot token from the Developer Portal (e.g. process.env.DISCORD_TOKEN)');
  }
  const intents = options.intents;
  if (!Number.isInteger(intents) || intents < 0 || (intents & ~AllIntents) !== 0) {
    throw new ShardlineError('INVALID_INTENTS', `intents must be a bitfield of documented Intents values, got ${String(intents)}`);
  }
  const workers = options.workers ?? 0;
  if (!Number.isInteger(workers) || workers < 0) throw new ShardlineError('INVALID_OPTION', `workers must be an integer >= 0, got ${String(workers)}`);
  const workerRestart = restartPolicy(options.workerRestart);
  const handler = options.handler === undefined ? null : handlerUrl(options.handler);
  const handlerErrors = options.handlerErrors ?? 'report';
  if (handlerErrors !== 'report' && handlerErrors !== 'exit') throw new ShardlineError('INVALID_OPTION', `handlerErrors must be 'report' or 'exit', got ${String(handlerErrors)}`);
  if (handlerErrors === 'exit' && workers === 0) throw new ShardlineError('INVALID_OPTION', `handlerErrors: 'exit' needs worker threads (workers >= 1): in this thread it would end the process`);
  const events = resolveEvents(options.events, options.extraEvents) ?? undefined;
  const extraEvents = options.extraEvents ? [...options.extraEvents] : undefined;
  const sessions: Record<number, Session> = {};
  for (const [id, s] of Object.entries(options.sessions ?? {})) {
    if (!isSession(s)) throw new ShardlineError('INVALID_SESSION', `sessions[${id}] must be { sessionId, sequence, resumeUrl }`);
    sessions[Number(id)] = s;
  }
  const token = options.token.trim().replace(/^Bot\s+/i, '');
  return { token, workerRestart, handlerUrl: handler, events, extraEvents, sessions, shards: shardsOption(options.shards) };
}

/** `ClusterOptions.shards` as checked ids of a total (null: `'auto'`). */
function shardsOption(option: ClusterOptions['shards']): { total: number; ids: number[] } | null {
  const shards = option ?? 'auto';
  if (typeof shards === 'number') return { total: shards, ids: checkShards(shards, range(shards)) };
  if (typeof shards === 'object') return { total: shards.total, ids: checkShards(shards.total, shards.ids) };
  if (shards !== 'auto') throw new ShardlineError('INVALID_SHARD', `shards must be 'auto', a count, or { ids, total }`);
  return null;
}

/** Shard ids `ids` of `total` checked (distinct integers in `[0, total)`, at least one) and sorted. */
export function checkShards(total: number, ids: readonly number[]): number[] {
  if (!Number.isInteger(total) || total < 1) throw new ShardlineError('INVALID_SHARD', `shard count must be an integer >= 1, got ${String(total)}`);
  const seen = new Set<number>();
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= total || seen.has(id)) {
      throw new ShardlineError('INVALID_SHARD', `shard ids must be distinct integers in [0, ${total}), got ${String(id)}`);
    }
    seen.add(id);
  }
  if (ids.length === 0) throw new ShardlineError('INVALID_SHARD', 'no shard ids given');
  return [...ids].sort((a, b) => a - b);
}

/** `[0, n)`. */
export function range(n: number): number[] {
  return Array.from({ length: Math.max(0, n) }, (_, i) => i);
}

/** The REST base `GET /gateway/bot` may use: `apiUrl`, else discord.com only when no `gatewayUrl` was given either (null: no REST call). */
export function apiBase(options: Pick<ClusterOptions, 'apiUrl' | 'gatewayUrl'>): string | null {
  return options.apiUrl ?? (options.gatewayUrl ? null : DEFAULT_API_URL);
}

/** The worker restart policy from `ClusterOptions.workerRestart` (validated; null when off). */
export function restartPolicy(option: ClusterOptions['workerRestart']): WorkerRestartPolicy | null {
  if (option === false) return null;
  if (option !== undefined && (option === null || typeof option !== 'object')) {
    throw new ShardlineError('INVALID_OPTION', `workerRestart must be false or { maxRestarts, windowMs, initialDelay, maxDelay }, got ${String(option)}`);
  }
  const o = option ?? {};
  const policy: WorkerRestartPolicy = {
    maxRestarts: o.maxRestarts ?? 5,
    windowMs: o.windowMs ?? 300_000,
    initialDelay: o.initialDelay ?? 1000,
    maxDelay: o.maxDelay ?? 30_000,
  };
  if (!Number.isInteger(policy.maxRestarts) || policy.maxRestarts < 0) {
    throw new ShardlineError('INVALID_OPTION', `workerRestart.maxRestarts must be an integer >= 0, got ${String(policy.maxRestarts)}`);
  }
  for (const k of ['windowMs', 'initialDelay', 'maxDelay'] as const) {
    if (typeof policy[k] !== 'number' || !(policy[k] >= 0) || !Number.isFinite(policy[k])) {
      throw new ShardlineError('INVALID_OPTION', `workerRestart.${k} must be a finite number >= 0, got ${String(policy[k])}`);
    }
  }
  policy.maxDelay = Math.max(policy.maxDelay, policy.initialDelay);
  return policy;
}
