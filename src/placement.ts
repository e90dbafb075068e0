/**
 * Where a cluster's shards run: all in this thread (one {@link ShardGroup}), or spread round robin over worker
 * threads (one {@link WorkerHost} each). A {@link Placement} is one shard set (the running one, or a reshard's new
 * one): it owns the backends and routes every per-shard call to the backend that runs the shard. It makes no
 * protocol decision; shard states are read from the backends (no copy is kept here).
 * @packageDocumentation
 */
import type { Clock } from './clock.js';
import type { NoncedMemberRequest } from './cluster-commands.js';
import { resolveEvents } from './event-names.js';
import { redact } from './errors.js';
import type { MemberRequest } from './members.js';
import { ShardGroup } from './cluster-group.js';
import type { GatewayCommand, ShardBackend, ShardSink, ShardStatus, WorkerExitEvent } from './cluster-status.js';
import type { IdentifyQueue } from './queue.js';
import type { Session } from './session.js';
import type { Shard, ShardOptions } from './shard.js';
import type { ShardState } from './state.js';
import { WorkerHost, cloneableShardOptions, type HostHandlerLink, type WorkerRestartPolicy } from './worker/host.js';
import type { HandlerRunner } from './handler/runner.js';
import { localRunner } from './handler/cluster-link.js';

/** How to build one shard set. */
export interface PlacementOptions {
  ids: readonly number[];
  total: number;
  /** 0: every shard in this thread; n: spread over n worker threads (at most one per shard). */
  workers: number;
  /** Full options of one shard (token included: called while building, never stored). */
  shardOptions: (id: number) => ShardOptions;
  /** Where every backend of the set reports. */
  sink: ShardSink;
  /** The identify queue of the set's shards. */
  queue: IdentifyQueue;
  clock: Clock;
  /** Worker mode: the respawn policy (null: a worker that exits stops its shards). */
  restart: WorkerRestartPolicy | null;
  onWorkerExit: (event: WorkerExitEvent) => void;
  debug: (message: string) => void;
  /**
   * Handler mode: the module (file URL) every thread of the set runs on its shards' dispatches, what a throw does,
   * and where posts, log lines and cluster-level commands go.
   */
  handler?: { url: string; errors: 'report' | 'exit'; link: HostHandlerLink } | null;
  /** Handler mode, a reshard's new set: every dispatch waits for a verdict (see {@link Placement.verdict}). */
  gated?: boolean;
}

/** One shard set and where each of its shards runs. */
export class Placement {
  readonly ids: readonly number[];
  readonly total: number;
  readonly #backends: ShardBackend[] = [];
  readonly #owners = new Map<number, ShardBackend>();
  /** Handler mode in this thread: the runner between the shards and the sink. */
  readonly #runner: HandlerRunner | null = null;
  #pausedByCluster = false;
  #pausedByHandler = false;

  constructor(o: PlacementOptions) {
    this.ids = [...o.ids];
    this.total = o.total;
    const ids = this.ids;
    const workers = Math.min(o.workers, ids.length);
    try {
      if (workers === 0) {
        const h = o.handler;
        let sink = o.sink;
        if (h) {
          // handlerErrors 'exit' needs worker threads (checked by the cluster): here a throw is reported
          const runner = localRunner(h.url, h.link, {
            pass: (e) => o.sink.event(e),
            // asked for the token on each use (a handler's error to report), never kept here
            redact: (text) => redact(text, o.shardOptions(ids[0]!).token),
            send: (shardId, payload) => this.send(shardId, payload),
            owns: (shardId) => this.#owners.has(shardId),
            pause: (paused) => {
              this.#pausedByHandler = paused;
              for (const b of this.#backends) b.setPaused(this.#pausedByCluster || paused);
            },
            // A module whose init() fails handles nothing: every shard reports it (a worker's shards stop instead).
            failed: (error) => {
              for (const shardId of ids) o.sink.event({ kind: 'error', shardId, error });
            },
          });
          if (o.gated) runner.gated(true);
          this.#runner = runner;
          sink = { event: (e) => runner.event(e) };
        }
        this.#add(new ShardGroup(ids, (id) => ({ ...o.shardOptions(id), clock: o.clock, identifyQueue: o.queue }), sink), ids);
      } else {
        for (let w = 0; w < workers; w++) {
          const mine = ids.filter((_, k) => k % workers === w);
          const shardOptions: Record<number, Partial<ShardOptions>> = {};
          for (const id of mine) {
            const full = o.shardOptions(id);
            resolveEvents(full.events, full.extraEvents); // a bad per-shard `events` throws here, not in the worker
            shardOptions[id] = cloneableShardOptions(full);
          }
          const handler = o.handler ? { url: o.handler.url, errors: o.handler.errors, gated: o.gated === true } : undefined;
          const host = new WorkerHost({ index: w, ids: mine, shardOptions, clockScale: o.clock.scale, ...(handler ? { handler } : {}) }, o.sink, o.queue, {
            clock: o.clock,
            restart: o.restart,
            onExit: o.onWorkerExit,
            debug: o.debug,
            ...(o.handler ? { handler: o.handler.link } : {}),
          });
          this.#add(host, mine);
        }
        o.debug(`${ids.length} shards spread over ${workers} worker threads`);
      }
    } catch (err) {
      // e.g. a throwing shardOptions(): the worker threads already started must not keep the process alive
      void this.close(false);
      throw err;
    }
  }

  /** The backend running shard `id` (undefined when it is not part of this set). */
  owner(id: number): ShardBackend | undefined {
    return this.#owners.get(id);
  }

  /** The worker threads of this set (empty in this-thread mode). */
  workerHosts(): WorkerHost[] {
    return this.#backends.filter((b): b is WorkerHost => b instanceof WorkerHost);
  }

  get workers(): number {
    return this.workerHosts().length;
  }

  state(id: number): ShardState {
    return this.#owners.get(id)?.state(id) ?? 'idle';
  }

  status(id: number): ShardStatus {
    const owner = this.#owners.get(id);
    if (owner) return owner.status(id);
    return { id, state: 'idle', latency: null, sessionId: null, sequence: 0, reconnects: 0, identifies: 0, resumes: 0, lastCloseCode: null };
  }

  /** Count the set's shards by state (read from the backends). */
  countStates(): Map<ShardState, number> {
    const counts = new Map<ShardState, number>();
    for (const id of this.ids) {
      const s = this.state(id);
      counts.set(s, (counts.get(s) ?? 0) + 1);
    }
    return counts;
  }

  local(id: number): Shard | undefined {
    return this.#owners.get(id)?.local(id);
  }

  connect(id: number): Promise<void> {
    return this.#owners.get(id)!.connect(id);
  }

  send(id: number, payload: GatewayCommand): Promise<void> {
    return this.#owners.get(id)!.send(id, payload);
  }

  requestGuildMembers(id: number, request: NoncedMemberRequest): MemberRequest {
    return this.#owners.get(id)!.requestGuildMembers(id, request);
  }

  restart(id: number, resume: boolean): Promise<void> {
    return this.#owners.get(id)!.restart(id, resume);
  }

  /** `ShardBackend.barrier()` of every ready shard: each has delivered what the gateway sent it before now. */
  async barrier(): Promise<void> {
    const ready = this.ids.filter((id) => this.state(id) === 'ready');
    await Promise.all(
      ready.map((id) =>
        this.#owners
          .get(id)!
          .barrier(id)
          .then(() => this.#runner?.drained(id)),
      ),
    );
  }

  // ---- handler mode during a reshard (see docs/RESHARDING.md, "Handler mode") ------------------------------

  /** Whether the set runs a handler (its dispatches are handled where its shards run, never seen here). */
  get handling(): boolean {
    return this.#runner !== null || this.workerHosts().some((h) => h.handling);
  }

  /** Running set: report (or stop reporting) the key and fingerprint of every dispatch the handler finished. */
  async recordHandled(on: boolean): Promise<void> {
    this.#runner?.record(on);
    await Promise.all(this.workerHosts().map((h) => h.record(on)));
  }

  /** Running set at the switch: stop handling (resolves once every fingerprint arrived), or go on (`false`). */
  async freeze(on: boolean): Promise<void> {
    await Promise.all([this.#runner?.freeze(on), ...this.workerHosts().map((h) => h.freeze(on))]);
  }

  /** New set: the verdict on a dispatch waiting in the thread of shard `id` (true: handle it). */
  verdict(id: number, ticket: number, handle: boolean): void {
    if (this.#runner) this.#runner.decide(id, ticket, handle);
    else (this.#owners.get(id) as WorkerHost | undefined)?.verdict(id, ticket, handle);
  }

  /** New set: the overlap is over; dispatches are handled without verdicts. */
  ungate(): void {
    this.#runner?.gated(false);
    for (const h of this.workerHosts()) h.ungate();
  }

  setPaused(paused: boolean): void {
    this.#pausedByCluster = paused;
    for (const b of this.#backends) b.setPaused(paused || this.#pausedByHandler);
  }

  setDebug(enabled: boolean): void {
    for (const b of this.#backends) b.setDebug(enabled);
  }

  /** Close every shard; resolves with the sessions worth resuming (when `resumable`). */
  async close(resumable: boolean): Promise<Record<number, Session>> {
    const runner = this.#runner;
    // Frozen at a reshard's switch: what it holds is dropped at once (its shards may be paused by it).
    const dropped = runner?.frozen ? runner.close() : null;
    const parts = await Promise.all(this.#backends.map((b) => b.close(resumable).catch(() => ({}) as Record<number, Session>)));
    if (dropped) await dropped;
    else if (runner) {
      // Handler mode: every event read is handled, then the handler's close() — bounded, like a worker's close.
      await runner.closeWithin();
    }
    return Object.assign({}, ...parts) as Record<number, Session>;
  }

  #add(backend: ShardBackend, ids: readonly number[]): void {
    this.#backends.push(backend);
    for (const id of ids) this.#owners.set(id, backend);
  }
}
