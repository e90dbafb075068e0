/**
 * How a cluster makes its shard sets — the first one at `connect()` and a reshard's new one: every shard's options
 * (token, intents, the checked `events` filter, its session or the last presence), where the shards run (this
 * thread or worker threads, with their restart policy), and in handler mode the link that carries the handler's
 * posts, logs and commands back to the cluster.
 * @packageDocumentation
 */
import type { Clock } from './clock.js';
import type { CheckedClusterOptions, ClusterOptions } from './cluster-options.js';
import type { ShardSink, WorkerExitEvent } from './cluster-status.js';
import type { EventName } from './event-names.js';
import type { PresenceData } from './events.js';
import { checkHandler, handlerLink, type HandlerClusterSide } from './handler/cluster-link.js';
import { Placement } from './placement.js';
import type { IdentifyQueue } from './queue.js';
import type { Resharder } from './reshard.js';
import type { Session } from './session.js';
import type { ShardOptions } from './shard.js';
import type { HostHandlerLink, WorkerRestartPolicy } from './worker/host.js';

/** What the sets need of the cluster. */
export interface ShardSetHost {
  readonly clock: Clock;
  /** Sessions to resume, by shard id (the cluster's own record: a reshard empties it). */
  readonly sessions: Record<number, Session>;
  /** The gateway URL (known once `connect()` asked `GET /gateway/bot`, or given). */
  gatewayUrl(): string;
  /** The last presence given to `updatePresence()`: a resharded set identifies with it. */
  presence(): PresenceData | undefined;
  /** The reshard running now (its old set's handled dispatches are recorded for its dedupe). */
  resharder(): Resharder | null;
  onWorkerExit(event: WorkerExitEvent): void;
  debug(message: string): void;
  /** Where the handler's commands, posts, logs and handled reports go (handler mode). */
  handler: Omit<HandlerClusterSide, 'recorded' | 'held'>;
}

/** Makes the cluster's shard sets. */
export class ShardSetFactory {
  /** Handler mode: the module's file URL (null: dispatches are delivered as events to the cluster). */
  readonly handlerUrl: string | null;
  readonly #token: string;
  readonly #options: Omit<ClusterOptions, 'token'>;
  readonly #host: ShardSetHost;
  /** Respawn policy of the worker threads (null: a worker that exits stops its shards). */
  readonly #workerRestart: WorkerRestartPolicy | null;
  /** The `events` filter, one checked Set for every shard (workers get it as an array, with `extraEvents`). */
  readonly #events: ReadonlySet<string> | undefined;
  readonly #extraEvents: string[] | undefined;
  #handlerLink: HostHandlerLink | null = null;

  constructor(options: Omit<ClusterOptions, 'token'>, checked: CheckedClusterOptions, host: ShardSetHost) {
    this.#token = checked.token;
    this.#options = options;
    this.#host = host;
    this.#workerRestart = checked.workerRestart;
    this.handlerUrl = checked.handlerUrl;
    this.#events = checked.events;
    this.#extraEvents = checked.extraEvents;
  }

  /** Handler mode: fail early when the handler module cannot be loaded (`HANDLER_LOAD_FAILED`). */
  async checkHandler(): Promise<void> {
    if (this.handlerUrl !== null) await checkHandler(this.handlerUrl, (this.#options.workers ?? 0) === 0);
  }

  /**
   * Create (not connect) the shards `ids` of `total`, in this thread or spread over the worker threads, all
   * reporting to `sink`. `fresh`: a resharded set (new sessions, the last presence given to updatePresence()).
   */
  create(ids: number[], total: number, sink: ShardSink, queue: IdentifyQueue, fresh: boolean): Placement {
    const h = this.#host;
    const url = this.handlerUrl;
    return new Placement({
      ids,
      total,
      workers: this.#options.workers ?? 0,
      shardOptions: (id) => this.shardOptions(id, total, fresh),
      sink,
      queue,
      clock: h.clock,
      restart: this.#workerRestart,
      onWorkerExit: (e) => h.onWorkerExit(e),
      debug: (m) => h.debug(m),
      handler: url === null ? null : { url, errors: this.#options.handlerErrors ?? 'report', link: this.linkHandler(fresh ? h.resharder() : null) },
      // handler mode: a reshard's new set handles nothing before the overlap dedupe's verdict (docs/RESHARDING.md)
      gated: fresh && url !== null,
    });
  }

  /**
   * Where the handler's posts, log lines and cluster-level commands arrive (one for every shard set); a reshard's
   * new set also reports its held dispatches, to the reshard that made it (not to a later one).
   */
  private linkHandler(resharder: Resharder | null): HostHandlerLink {
    const h = this.#host;
    this.#handlerLink ??= handlerLink({
      ...h.handler,
      recorded: (key, fp) => h.resharder()?.onOldHandled(key, fp),
      held: () => undefined, // only a reshard's new set holds dispatches (see below)
    });
    const link = this.#handlerLink;
    return resharder ? { ...link, held: (shardId, ticket, type, key, fp, burst) => resharder.onNewHeld(shardId, ticket, type, key, fp, burst) } : link;
  }

  /** Full options of one shard (without clock / queue). */
  private shardOptions(id: number, total: number, fresh: boolean): ShardOptions {
    const o = this.#options;
    const per = o.shardOptions?.(id) ?? {};
    const presence = fresh ? this.#host.presence() : undefined;
    return {
      token: this.#token,
      intents: o.intents,
      gatewayUrl: this.#host.gatewayUrl(),
      compression: o.compression,
      events: this.#events as ReadonlySet<EventName> | undefined, // one checked Set shared by every shard of this thread
      extraEvents: this.#extraEvents,
      ...per,
      ...(presence ? { presence } : {}),
      id,
      total,
      session: fresh ? null : (this.#host.sessions[id] ?? per.session ?? null),
    };
  }
}
