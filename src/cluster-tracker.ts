/**
 * What a cluster does, observed from the main thread: one listener on its `shardEvent` stream counts dispatches by
 * type and by shard, disconnects by cause (as the bounded labels of {@link disconnectCause}), guild loading,
 * RATE_LIMITED answers and `silent` reports, and hands heartbeat round trips on. One {@link ClusterTracker} per
 * cluster, shared by everything that reads it: the metrics (`metrics.ts`), the status page and the gateway proxy.
 * @packageDocumentation
 */
import type { Cluster } from './cluster.js';
import type { DisconnectedEvent, ShardEvent } from './events.js';
import { CLOSE_CODES } from './session.js';

/**
 * A disconnect cause as a short, bounded label: `close_4000`, `zombie`, `op7`, `op9`, `op9_resumable`, ...;
 * `worker_exit` when a worker thread died with the connection (worker mode). Read from the event's structured
 * `kind` (never parsed out of its text).
 */
export function disconnectCause(event: Pick<DisconnectedEvent, 'code' | 'kind' | 'action'>): string {
  switch (event.kind) {
    case 'close':
    case 'connect-failed': {
      const c = event.code;
      if (c === null) return 'close_other';
      return CLOSE_CODES[c] || (c >= 1000 && c <= 1015) ? `close_${c}` : 'close_other';
    }
    case 'reconnect-request':
      return 'op7';
    case 'invalid-session':
      return event.action === 'resume' ? 'op9_resumable' : 'op9';
    case 'zombie':
      return 'zombie';
    case 'hello-timeout':
      return 'hello_timeout';
    case 'ready-timeout':
      return 'ready_timeout';
    case 'malformed':
      return 'malformed';
    case 'worker-exit':
      return 'worker_exit';
    case 'silent':
      return 'silent';
  }
}

/** The last disconnect of one shard. */
export interface LastDisconnect {
  cause: string;
  action: DisconnectedEvent['action'];
  code: number | null;
  /** `Date.now()` when it happened. */
  at: number;
}

/**
 * Listens to one cluster's event stream (`shardEvent`, in the main thread, so it works with `workers: n` too) with
 * one listener, and counts dispatches by type and by shard and disconnects by cause, and hands heartbeat round
 * trips to whoever observes them (the metrics' latency histogram). One per cluster, shared by everything that needs
 * it; the listener is removed when the last user releases it.
 * @internal
 */
export class ClusterTracker {
  private static readonly trackers = new WeakMap<Cluster, ClusterTracker>();

  /** Dispatches delivered, by type. */
  readonly byType = new Map<string, number>();
  /** Dispatches delivered, by shard id. */
  readonly byShard: number[] = [];
  /** Disconnects by `cause\0action`. */
  readonly disconnects = new Map<string, { cause: string; action: string; count: number }>();
  readonly lastDisconnect = new Map<number, LastDisconnect>();
  /** Shards whose guilds of the current session are loaded (`guildsReady`), → how many were still unavailable. */
  readonly guildsReady = new Map<number, number>();
  /** RATE_LIMITED answers, by opcode. */
  readonly rateLimited = new Map<number, number>();
  /** `silent` reports, by shard id. */
  readonly silent: number[] = [];
  readonly createdAt = Date.now();
  private users = 0;
  private readonly latencyObservers = new Set<(ms: number, shardId: number) => void>();
  private readonly onEvent: (e: ShardEvent) => void;
  /**
   * Count one dispatch delivered outside the `shardEvent` stream: finished by a handler module (handler mode), or
   * handed over unparsed by `ShardOptions.forwardRaw` (the gateway proxy counts those here).
   */
  readonly countDispatch: (shardId: number, type: string) => void;

  private constructor(private readonly cluster: Cluster) {
    const byType = this.byType;
    const byShard = this.byShard;
    const observers = this.latencyObservers;
    this.countDispatch = (shardId, type) => {
      byType.set(type, (byType.get(type) ?? 0) + 1);
      byShard[shardId] = (byShard[shardId] ?? 0) + 1;
    };
    // The only per-event work of metrics and the status page: a switch and an increment or two.
    this.onEvent = (e) => {
      switch (e.kind) {
        case 'dispatch': {
          const d = e.event;
          byType.set(d.type, (byType.get(d.type) ?? 0) + 1);
          byShard[d.shardId] = (byShard[d.shardId] ?? 0) + 1;
          return;
        }
        case 'disconnected': {
          const cause = disconnectCause({ code: e.code, kind: e.cause, action: e.action });
          const key = `${cause}\0${e.action}`;
          const row = this.disconnects.get(key);
          if (row) row.count++;
          else this.disconnects.set(key, { cause, action: e.action, count: 1 });
          this.lastDisconnect.set(e.shardId, { cause, action: e.action, code: e.code, at: Date.now() });
          return;
        }
        case 'heartbeatAck':
          if (e.latency !== null) for (const fn of observers) fn(e.latency, e.shardId);
          return;
        case 'guildsReady':
          this.guildsReady.set(e.shardId, e.unavailable.length);
          return;
        case 'state':
          if (e.to === 'identifying' || e.to === 'fatal') this.guildsReady.delete(e.shardId); // a new session loads its guilds anew
          return;
        case 'rateLimited':
          this.rateLimited.set(e.opcode, (this.rateLimited.get(e.opcode) ?? 0) + 1);
          return;
        case 'silent':
          this.silent[e.shardId] = (this.silent[e.shardId] ?? 0) + 1;
          return;
        default:
          return;
      }
    };
  }

  /** The tracker of `cluster`, created (and its listener added) on first use. Call `release()` when done. */
  static acquire(cluster: Cluster): ClusterTracker {
    let t = ClusterTracker.trackers.get(cluster);
    if (!t) {
      t = new ClusterTracker(cluster);
      ClusterTracker.trackers.set(cluster, t);
    }
    if (t.users++ === 0) {
      cluster.on('shardEvent', t.onEvent);
      cluster.on('dispatchHandled', t.countDispatch);
    }
    return t;
  }

  /** Stop listening when nobody else uses this tracker (counts are kept for a later acquire). */
  release(): void {
    if (this.users === 0 || --this.users > 0) return;
    this.cluster.off('shardEvent', this.onEvent);
    this.cluster.off('dispatchHandled', this.countDispatch);
  }

  /** Be told every heartbeat round trip (ms) of every shard as its ACK arrives; returns the removal. */
  observeLatency(fn: (ms: number, shardId: number) => void): () => void {
    this.latencyObservers.add(fn);
    return () => void this.latencyObservers.delete(fn);
  }

  /** Dispatches delivered in total. */
  get dispatches(): number {
    let n = 0;
    for (const v of this.byType.values()) n += v;
    return n;
  }
}
