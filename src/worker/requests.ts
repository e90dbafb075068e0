/**
 * The main thread's answers to what a worker thread asks of it: turns of the cluster's identify queue (its lanes
 * are global, so they are granted here, in the one queue) and the handler's cluster-level commands (routed to the
 * shard that owns the guild, wherever it runs).
 * @packageDocumentation
 */
import type { Worker } from 'node:worker_threads';
import { ShardlineError } from '../errors.js';
import type { RouteMethod } from '../handler/runner.js';
import type { IdentifyQueue } from '../queue.js';
import type { HostHandlerLink } from './host-options.js';
import { toWire, type ToWorker } from './protocol.js';

export class ThreadRequests {
  /** Identify waits in progress, by the thread's request id. */
  private readonly acquires = new Map<number, AbortController>();

  constructor(
    private readonly queue: IdentifyQueue,
    private readonly link: HostHandlerLink | null,
    /** Post to the current thread (nothing when it is not running). */
    private readonly post: (msg: ToWorker) => void,
    /** The current thread. */
    private readonly current: () => Worker,
  ) {}

  /** The thread's shard waits for its identify turn: granted (or denied) when the queue says so. */
  acquire(id: number, shardId: number): void {
    const ac = new AbortController();
    this.acquires.set(id, ac);
    // Request ids restart at 1 in a respawned thread: only settle the request this controller belongs to.
    const mine = () => this.acquires.get(id) === ac && this.acquires.delete(id);
    this.queue.acquire(shardId, ac.signal).then(
      () => {
        if (mine()) this.post({ t: 'grant', id });
      },
      (err: unknown) => {
        if (mine()) this.post({ t: 'deny', id, error: toWire(err) });
      },
    );
  }

  /** The thread no longer waits for that turn. */
  abort(id: number): void {
    const ac = this.acquires.get(id);
    this.acquires.delete(id);
    ac?.abort(new ShardlineError('ABORTED', 'identify wait cancelled'));
  }

  /** Handler mode: a cluster-level command; the answer goes to the thread that asked (not to a respawned one). */
  route(id: number, method: RouteMethod, args: unknown[]): void {
    const worker = this.current();
    const answer = (m: ToWorker) => {
      if (this.current() === worker) this.post(m);
    };
    const run = this.link ? this.link.route(method, args) : Promise.reject(new ShardlineError('NOT_SUPPORTED', 'no handler link'));
    run.then(
      (value) => answer({ t: 'routed', id, ok: true, value: value ?? undefined }),
      (err: unknown) => answer({ t: 'routed', id, ok: false, error: toWire(err) }),
    );
  }

  /** Cancel every identify wait (the thread exited, or the host closes). */
  cancelAll(reason: string): void {
    for (const ac of this.acquires.values()) ac.abort(new ShardlineError('ABORTED', reason));
    this.acquires.clear();
  }
}
