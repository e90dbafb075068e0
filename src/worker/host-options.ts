/**
 * What a {@link WorkerHost} is given by its cluster: the restart policy, where it reports, and the handler link.
 * @packageDocumentation
 */
import type { Clock } from '../clock.js';
import type { WorkerExitEvent } from '../cluster-status.js';
import type { HandlerLogEvent } from '../handler/define.js';
import type { RouteMethod } from '../handler/runner.js';
import type { WorkerHost } from './host.js';

/** When and how often a worker that exited on its own is started again (see `ClusterOptions.workerRestart`). */
export interface WorkerRestartPolicy {
  /** Respawns allowed within `windowMs`; the exit after that many stops the worker's shards. */
  maxRestarts: number;
  /** Virtual ms over which exits are counted. */
  windowMs: number;
  /** Virtual ms before the first respawn; doubled for every further exit within the window. */
  initialDelay: number;
  /** Upper bound of the back-off, virtual ms. */
  maxDelay: number;
}

/** How a {@link WorkerHost} reports to its cluster and supervises its thread. */
export interface WorkerHostOptions {
  /** The cluster's clock: the respawn back-off and the exit window run on it. Default `scaledClock(spec.clockScale)`. */
  clock?: Clock;
  /** null (default): an unexpected exit stops the worker's shards (`fatal`, `WORKER_EXITED`). */
  restart?: WorkerRestartPolicy | null;
  /** Told about every exit the host did not ask for, once its shards' states say what happens to them. */
  onExit?: (event: WorkerExitEvent) => void;
  /** A cluster-level debug line. */
  debug?: (message: string) => void;
  /** Handler mode (`spec.handler` set): where the handler's posts, log lines and cluster-level commands go. */
  handler?: HostHandlerLink;
}

/** The main thread's side of a worker's handler. */
export interface HostHandlerLink {
  message(shardId: number | null, worker: number | null, value: unknown): void;
  log(level: HandlerLogEvent['level'], shardId: number | null, worker: number | null, message: string): void;
  route(method: RouteMethod, args: unknown[]): Promise<unknown>;
  /** The handler finished a dispatch of the shard (counted by metrics). */
  handled(shardId: number, type: string): void;
  /** Reshard, running set: the handler finished a dispatch of routing key `key` and fingerprint `fp`. */
  recorded?(key: string, fp: number): void;
  /** Reshard, new set: a dispatch waits in its thread for a verdict ({@link WorkerHost.verdict}). */
  held?(shardId: number, ticket: number, type: string, key: string, fp: number, burst: boolean): void;
}
