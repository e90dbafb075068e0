/**
 * The cluster's side of resharding: when `cluster.reshard()` may start one, the {@link Resharder} that runs it
 * (one at a time; the last one's post-switch dedupe window lasts until the next or `close()`), and the periodic
 * {@link ReshardPolicy} of `cluster.autoReshard()`. The reshard itself is `reshard.ts`.
 * @packageDocumentation
 */
import type { Clock } from './clock.js';
import type { ShardSink, ShardStatus } from './cluster-status.js';
import { ShardlineError } from './errors.js';
import type { DeliveryPipeline, PipelineInput } from './pipeline.js';
import type { Placement } from './placement.js';
import type { IdentifyQueue } from './queue.js';
import { ReshardPolicy, Resharder, type AutoReshardOptions, type GatewayBotInfo, type ReshardEvent, type ReshardOptions, type ReshardResult } from './reshard.js';
import type { StartupScheduler } from './scheduler.js';

/** The cluster internals resharding reads and drives. */
export interface ClusterReshardHost {
  readonly clock: Clock;
  /** Aborts when the cluster closes. */
  readonly signal: AbortSignal;
  readonly pipeline: DeliveryPipeline;
  /** Shard count and ids of the running set (null count: not known yet). */
  total(): number | null;
  ids(): readonly number[];
  maxConcurrency(): number;
  /** The start-up scheduler (there once `connect()` has settled). */
  scheduler(): StartupScheduler;
  /** Session starts left according to the cluster's own identify queue (null: unknown / not a local queue). */
  localBudget(): number | null;
  /** `connect()` has settled (a reshard needs it). */
  settled(): boolean;
  closed(): boolean;
  status(): ShardStatus[];
  running(): { set: Placement; input: PipelineInput };
  /** `GET /gateway/bot`, refreshing the cluster's own queue's budget. */
  fetchGatewayBot(): Promise<GatewayBotInfo>;
  /** Create (not connect) a set of `total` fresh shards reporting to `sink`, identifying through `queue`. */
  createSet(total: number, sink: ShardSink, queue: IdentifyQueue): Placement;
  /** Make `set` (reporting to `input`) the running set, synchronously; returns the previous set. */
  adopt(set: Placement, input: PipelineInput): Placement;
  debug(message: string): void;
  emit(event: ReshardEvent): void;
}

/** The reshards of one cluster: at most one runs; the policy, when started, asks for them. */
export class ClusterResharding {
  readonly #host: ClusterReshardHost;
  #resharder: Resharder | null = null;
  /** The running (or last) reshard, settled either way: `close()` waits for it. */
  #run: Promise<void> | null = null;
  #policy: ReshardPolicy | null = null;

  constructor(host: ClusterReshardHost) {
    this.#host = host;
  }

  /** The last reshard started (its new set reports held dispatches to it; its old set's handled ones too). */
  get current(): Resharder | null {
    return this.#resharder;
  }

  /** The autoReshard() policy runs. */
  get policyRunning(): boolean {
    return this.#policy !== null;
  }

  /** Start a reshard to `total` shards (default: the recommended count); rejects when one cannot start now. */
  start(total: number | undefined, options: ReshardOptions, reason: 'manual' | 'policy'): Promise<ReshardResult> {
    const h = this.#host;
    const count = h.total();
    if (h.closed()) return Promise.reject(new ShardlineError('CLUSTER_CLOSED', 'the cluster is closed'));
    if (!h.settled() || count === null) {
      return Promise.reject(new ShardlineError('NOT_STARTED', 'reshard() needs a cluster whose connect() has settled'));
    }
    if (this.#resharder?.active) return Promise.reject(new ShardlineError('RESHARD_IN_PROGRESS', 'a reshard is already running; await it (or abort it) first'));
    const ids = h.ids();
    if (ids.length !== count) {
      return Promise.reject(
        new ShardlineError('RESHARD_UNSUPPORTED', `this cluster runs ${ids.length} of ${count} shards (shards: { ids, total }); resharding needs every shard of the bot in one cluster`),
      );
    }
    this.#resharder?.dispose(); // the previous reshard's post-switch dedupe window ends here
    const resharder = new Resharder(
      {
        clock: h.clock,
        total: count,
        maxConcurrency: h.maxConcurrency(),
        signal: h.signal,
        pipeline: h.pipeline,
        scheduler: h.scheduler(),
        running: () => h.running(),
        localBudget: () => h.localBudget(),
        fetchGatewayBot: () => h.fetchGatewayBot(),
        createSet: (n, sink, queue) => h.createSet(n, sink, queue),
        adopt: (set, input) => h.adopt(set as Placement, input),
        debug: (m) => h.debug(m),
        emit: (e) => h.emit(e),
      },
      total,
      options,
      reason,
    );
    this.#resharder = resharder;
    const run = resharder.run();
    this.#run = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Start (or restart with new options) the periodic policy; returns a function that stops it. */
  auto(options: AutoReshardOptions): () => void {
    const h = this.#host;
    this.#policy?.stop();
    const policy = new ReshardPolicy(
      {
        clock: h.clock,
        total: () => h.total(),
        maxConcurrency: () => h.maxConcurrency(),
        status: () => h.status(),
        busy: () => this.#resharder?.active === true || !h.settled(),
        closed: () => h.closed(),
        fetchGatewayBot: () => h.fetchGatewayBot(),
        reshard: (total, opts) => this.start(total, opts, 'policy'),
        debug: (m) => h.debug(m),
        emit: (e) => h.emit(e),
      },
      options,
    );
    this.#policy = policy;
    policy.start();
    return () => {
      policy.stop();
      if (this.#policy === policy) this.#policy = null;
    };
  }

  /** Stop the policy, end the last reshard (aborting it when it still runs) and wait until it settled. */
  async close(): Promise<void> {
    this.#policy?.stop();
    this.#policy = null;
    this.#resharder?.dispose();
    await this.#run;
  }
}
