/**
 * Public types of the {@link Cluster}: per-shard status, progress, events, and the shard handle, plus the
 * internal contract between the cluster and where its shards run (this thread or worker threads).
 * @packageDocumentation
 */
import type { HandlerLogEvent, HandlerMessageEvent } from './handler/define.js';
import type { DebugEvent, DisconnectedEvent, DispatchEvent, GuildsReadyEvent, PresenceData, ReadyData, ShardEvent, StateChange } from './events.js';
import type { NoncedMemberRequest } from './cluster-commands.js';
import type { MemberRequest } from './members.js';
import type { IdentifyBudgetEvent } from './queue.js';
import type { ReshardEvent } from './reshard.js';
import type { Session } from './session.js';
import type { Shard } from './shard.js';
import type { ShardState } from './state.js';

/** Health of one shard, as returned by `cluster.status()`. Plain data. */
export interface ShardStatus {
  id: number;
  state: ShardState;
  /** Average heartbeat round trip, ms (null before the first ACK). */
  latency: number | null;
  sessionId: string | null;
  /** Last sequence number received. */
  sequence: number;
  /** Connections lost and re-established (resumes and new sessions). */
  reconnects: number;
  /** IDENTIFYs sent. */
  identifies: number;
  /** RESUMEs sent. */
  resumes: number;
  lastCloseCode: number | null;
  /** Guilds of this shard (from READY, GUILD_CREATE and GUILD_DELETE; only when those events are delivered). */
  guilds?: number;
  /** Worker thread index, in worker mode. */
  worker?: number;
  /** Why the shard stopped, when `state` is `fatal`. */
  error?: string;
  /** Traffic counters of the shard (filled in both thread and worker mode; used by metrics). */
  io?: ShardIo;
}

/** Per-shard traffic counters, as plain data that crosses thread boundaries. */
export interface ShardIo {
  /** Dispatches skipped unparsed by the `events` filter. */
  filtered: number;
  /** Commands waiting in the rate limiter. */
  queuedCommands: number;
  /** Payloads written to the gateway, by op. */
  payloadsSent: Record<number, number>;
  /** Heartbeat ACKs received. */
  heartbeatAcks: number;
  /** Recent heartbeat round trips, ms (oldest first). */
  recentLatency: number[];
  /** Transport decompression totals. */
  inflate: { bytesIn: number; bytesOut: number; bufferSize: number };
}

/** Reported to `connect({ onProgress })` whenever a shard changes state during start-up. */
export interface ClusterProgress {
  /** Shards of this cluster. */
  total: number;
  ready: number;
  failed: number;
  /** Shards connected and waiting for (or sending) their IDENTIFY / RESUME. */
  starting: number;
  /** The shard that changed, and its new state. */
  shardId: number;
  state: ShardState;
  /** Virtual ms since `connect()` was called. */
  elapsed: number;
}

/** Options of `cluster.connect()`. */
export interface ClusterConnectOptions {
  /** Told about every state change during start-up. */
  onProgress?: (progress: ClusterProgress) => void;
  /**
   * Resolve only once every shard's guilds are loaded (the cluster's `guildsReady`), not as soon as every shard is
   * ready. Default false.
   */
  waitForGuilds?: boolean;
  /**
   * Give up when the cluster is not up (ready, and with `waitForGuilds` its guilds loaded) after this many ms of the
   * cluster's clock: `connect()` rejects with a `GatewayUnreachableError` and the cluster is closed resumably
   * (`await cluster.close({ resumable: true })` then returns the sessions for a new cluster). With `timeout` or
   * `signal`, a failing `GET /gateway/bot` (network error, 5xx) is retried with back-off instead of failing at once.
   */
  timeout?: number;
  /** Abort the connect: it rejects with an error named `AbortError` and the cluster is closed as for `timeout`. */
  signal?: AbortSignal;
}

/** Payload of the cluster's `ready` event. */
export interface ClusterReadyEvent {
  /** Shards of this cluster (all of them ready). */
  shards: number;
  /** Virtual ms since `connect()` was called. */
  elapsed: number;
}

/** Payload of the cluster's `identifyTurn` event. */
export interface IdentifyTurnEvent {
  shardId: number;
  /** `shardId % max_concurrency`. */
  lane: number;
  /** Virtual ms the shard waited for its turn. */
  waited: number;
}

/** Returned by `cluster.identifyStatus()`. */
export interface IdentifyStatus {
  /** Identify lanes (`max_concurrency`). */
  maxConcurrency: number;
  /** Shards waiting for an identify turn now. */
  waiting: number;
  /** Session starts left today (null when the queue does not track a budget). */
  remaining: number | null;
  /** Session starts per period (null when unknown). */
  total: number | null;
  /** Virtual ms until the budget refills (null without a budget). */
  resetIn: number | null;
}

/**
 * Payload of the cluster's `workerExit` event: a worker thread (`workers: n`) ended without being asked to.
 * With `workerRestart` on (the default) a new worker with the same shards is started after `delay` virtual ms and
 * each shard resumes its session; `restarting: false` means the shards stopped for good (`fatal`,
 * `WORKER_EXITED`): restarts are off (`workerRestart: false`) or the worker kept crashing. Exits while the cluster
 * closes are not reported.
 */
export interface WorkerExitEvent {
  /** Index of the worker thread (as in `ShardStatus.worker`). */
  worker: number;
  /** Exit code of the thread (1 for an uncaught exception or `worker.terminate()`). */
  code: number;
  /** Why, e.g. `worker 0 exited (code 1): <message of the uncaught error>`. Never contains the token. */
  reason: string;
  /** Whether a new worker will be started for its shards. */
  restarting: boolean;
  /** Respawns of this worker so far, the one being scheduled included. */
  restarts: number;
  /** Unexpected exits of this worker within `workerRestart.windowMs`, this one included (compared with `maxRestarts`). */
  recentExits: number;
  /** Virtual ms until the respawn (null when not restarting). */
  delay: number | null;
  /** Restarting: the shards the new worker reconnects (resume, or identify without a session). Otherwise: the shards stopped. */
  shards: number[];
}

/** A command for one shard: `{ op, d }`. */
export interface GatewayCommand {
  op: number;
  d: unknown;
}

/** Map of the cluster's events to their listener arguments. */
export interface ClusterEventMap {
  /** A dispatch of any shard; `event.shardId` says which. */
  dispatch: [event: DispatchEvent];
  /**
   * Everything every running shard reports, as one typed stream ({@link ShardEvent}: state changes with structured
   * causes, dispatches, heartbeats, disconnects, errors, debug lines while someone listens to `debug`), wherever the
   * shard runs (this thread or a worker). The named events below are views of it.
   */
  shardEvent: [event: ShardEvent];
  /** Every shard is ready (once per `connect()`, or later when a restarted shard completes the set). */
  ready: [event: ClusterReadyEvent];
  shardReady: [shardId: number, data: ReadyData];
  shardResumed: [shardId: number, session: Session];
  shardStateChange: [change: StateChange];
  shardDisconnected: [event: DisconnectedEvent];
  /** Any error a shard reports; most are recovered from by reconnecting. */
  shardError: [error: Error, shardId: number];
  /** Cluster-level lines have `shardId` -1. Shard lines are only produced while someone listens. */
  debug: [event: DebugEvent];
  /** The daily identify budget ran out or refilled (default identify queue only). */
  identifyBudget: [event: IdentifyBudgetEvent];
  /** A shard got its identify turn after waiting `waited` virtual ms in the queue (for metrics). */
  identifyTurn: [event: IdentifyTurnEvent];
  /** The cluster lost something: a shard stopped for good (a `GatewayError` with `shardId`), or a worker died. */
  error: [error: Error];
  /** A reshard started, switched to the new set, was aborted, or (policy) was skipped. */
  reshard: [event: ReshardEvent];
  /** A worker thread exited on its own (worker mode): it is respawned (`restarting`) or its shards stop. */
  workerExit: [event: WorkerExitEvent];
  /**
   * Every shard reported `guildsReady` (its guilds arrived, or its `guildsTimeout` ran out): once per cluster, with
   * `shardId` -1, `guilds` the sum of the guilds loaded and `unavailable` every id still missing. A shard that
   * stopped for good does not hold it up. Each shard's own is on the `shardEvent` stream (`kind: 'guildsReady'`).
   */
  guildsReady: [event: GuildsReadyEvent];
  /** Handler mode (`handler`): a value the handler posted with `ctx.post()`, in this thread or a worker. */
  handlerMessage: [event: HandlerMessageEvent];
  /** Handler mode: a line the handler logged with `ctx.log` (also routed by `routeLogs()`). */
  handlerLog: [event: HandlerLogEvent];
  /**
   * Handler mode: the handler finished a dispatch of `type` on shard `shardId` (its resume point moved past it).
   * Instead of `dispatch` events, which handler mode does not give the main thread; `attachMetrics` counts these. A
   * worker thread sends its counts every 25 ms at most, so these come in small bursts, up to 25 ms late.
   */
  dispatchHandled: [shardId: number, type: string];
}

/** One shard of a cluster, wherever it runs. */
export interface ClusterShard {
  readonly id: number;
  readonly state: ShardState;
  status(): ShardStatus;
  send(payload: GatewayCommand): Promise<void>;
  updatePresence(presence: PresenceData): Promise<void>;
  /** Close and reconnect this shard only (resuming its session unless `resume: false`). Resolves when ready. */
  restart(options?: { resume?: boolean }): Promise<void>;
  /** The {@link Shard} itself when it runs in this thread (`workers: 0`); undefined in worker mode. */
  readonly shard: Shard | undefined;
}

/**
 * Where a cluster's shard events go (internal): the one typed stream of every shard ({@link ShardEvent}), wherever
 * the shard runs. Implemented by the cluster's delivery pipeline; called by shard groups and worker hosts.
 */
export interface ShardSink {
  event(event: ShardEvent): void;
}

/** A set of shards running somewhere (internal): in this thread, or in one worker. */
export interface ShardBackend {
  connect(shardId: number): Promise<void>;
  send(shardId: number, payload: GatewayCommand): Promise<void>;
  /** Request guild members (op 8) on the shard; its chunks come back to this thread through the returned request. */
  requestGuildMembers(shardId: number, request: NoncedMemberRequest): MemberRequest;
  restart(shardId: number, resume: boolean): Promise<void>;
  /**
   * Resolve once the shard has delivered every dispatch the gateway sent it before now: two heartbeats are sent
   * and the shard's socket is read up to an ACK of one of them (the socket is ordered). Used by a reshard's switch.
   */
  barrier(shardId: number): Promise<void>;
  status(shardId: number): ShardStatus;
  /** The shard's state (cheaper than `status()`: read on every state change by the cluster). */
  state(shardId: number): ShardState;
  /** Close every shard; resolves with the sessions worth resuming (when `resumable`). */
  close(resumable: boolean): Promise<Record<number, Session>>;
  /** Stop / restart reading the shards' sockets (event back-pressure). */
  setPaused(paused: boolean): void;
  /** Forward shard debug lines (costly on busy shards, so only while someone listens). */
  setDebug(enabled: boolean): void;
  /** The Shard object when it lives in this thread. */
  local(shardId: number): Shard | undefined;
}
