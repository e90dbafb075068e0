/**
 * How a cluster comes up (`cluster.connect()`): learn the shard count, gateway URL and identify limits from
 * `GET /gateway/bot` (retried with back-off when the connect is bounded), create the identify lanes and the first
 * shard set, start the shards through the lanes, and — with `timeout` / `signal` — give up with a
 * {@link GatewayUnreachableError} that says which phase did not finish. Concurrent calls share one attempt; after a
 * {@link ClusterConnectError} the next call starts the shards that failed.
 * @packageDocumentation
 */
import type { Clock } from './clock.js';
import { abortError, bounded, checkTimeout } from './bounded.js';
import { IdentifyLanes } from './cluster-identify.js';
import { apiBase, range, type ClusterOptions } from './cluster-options.js';
import type { ShardSetFactory } from './cluster-sets.js';
import type { ClusterConnectOptions, ClusterProgress, IdentifyTurnEvent } from './cluster-status.js';
import { GatewayUnreachableError, ShardlineError, redact } from './errors.js';
import { GatewayBotSource, type GatewayBot } from './gateway-bot.js';
import type { DeliveryPipeline, PipelineInput } from './pipeline.js';
import type { Placement } from './placement.js';
import type { IdentifyBudgetEvent } from './queue.js';
import { ClusterConnectError } from './scheduler.js';
import type { Session } from './session.js';

/** The cluster state start-up reads and fills in. */
export interface ClusterStartupHost {
  readonly clock: Clock;
  /** Aborts when the cluster closes. */
  readonly signal: AbortSignal;
  readonly pipeline: DeliveryPipeline;
  readonly options: Omit<ClusterOptions, 'token'>;
  readonly sets: ShardSetFactory;
  /** Sessions to resume, by shard id. */
  readonly sessions: Record<number, Session>;
  /** Shard count and ids (count null: `shards: 'auto'`, not learnt yet). */
  total(): number | null;
  ids(): readonly number[];
  /** The shard count is learnt: run shards `ids` of `total`. */
  setShards(total: number, ids: number[]): void;
  /** The running set (null until the first one is created). */
  running(): { set: Placement; input: PipelineInput } | null;
  /** The first set is created: it runs now. */
  begin(set: Placement, input: PipelineInput): void;
  /** The first `connect()` has settled (the cluster may reshard from now on). */
  settle(): void;
  closed(): boolean;
  /** A bounded connect gave up: close the cluster (resumably). */
  giveUp(): void;
  onBudget(event: IdentifyBudgetEvent): void;
  onTurn(event: IdentifyTurnEvent): void;
  debug(message: string): void;
}

/** One per cluster: its `connect()` calls, the identify lanes and `GET /gateway/bot` they set up. */
export class ClusterStartup {
  /** `GET /gateway/bot`, with the attempts of a bounded connect (for GatewayUnreachableError). */
  readonly gatewayBot: GatewayBotSource;
  readonly #token: string;
  readonly #host: ClusterStartupHost;
  #connecting: Promise<void> | null = null;
  #lanes: IdentifyLanes | null = null;
  #gatewayUrl: string | null = null;
  #settled = false;

  constructor(token: string, host: ClusterStartupHost) {
    this.#token = token;
    this.#host = host;
    this.gatewayBot = new GatewayBotSource(token, {
      base: apiBase(host.options),
      clock: host.clock,
      signal: host.signal,
      debug: (m) => host.debug(m),
      onRetry: (err, delay, attempt) => {
        host.pipeline.shardError(err, -1);
        host.debug(`${err.message}; retrying in ${delay} ms (attempt ${attempt})`);
      },
    });
  }

  /** Created once the identify limits are known; the first set identifies through its `gate`. */
  get lanes(): IdentifyLanes | null {
    return this.#lanes;
  }

  /** Gateway URL in use (known once the first attempt learnt it, or given). */
  get gatewayUrl(): string | null {
    return this.#gatewayUrl;
  }

  /** A `connect()` has settled (every shard ready or failed for good). */
  get settled(): boolean {
    return this.#settled;
  }

  /** `GET /gateway/bot` for a reshard; its `session_start_limit` also refreshes the default queue's budget. */
  async refreshGatewayBot(): Promise<GatewayBot> {
    const bot = await this.gatewayBot.fetch();
    this.#lanes?.refreshBudget(bot.session_start_limit);
    return bot;
  }

  /** `cluster.connect(options)` (see there); the caller has checked that the cluster is not closed. */
  connect(options: ClusterConnectOptions): Promise<void> {
    const { timeout, signal, waitForGuilds } = options;
    const invalid = checkTimeout(timeout);
    if (invalid) return Promise.reject(invalid);
    if (signal?.aborted) return Promise.reject(abortError(signal, 'cluster connect aborted'));
    const isBounded = timeout !== undefined || signal !== undefined;
    if (!this.#connecting) {
      const attempt = this.run(options.onProgress ?? null, isBounded);
      this.#connecting = attempt;
      attempt.catch(() => {
        if (this.#connecting === attempt && !this.#host.closed()) this.#connecting = null;
      });
    }
    const attempt = this.#connecting;
    if (!isBounded && !waitForGuilds) return attempt;
    const whole = waitForGuilds ? attempt.then(() => this.#host.pipeline.whenGuildsReady()) : attempt;
    if (!isBounded) return whole;
    return this.bounded(whole, timeout, signal, waitForGuilds === true);
  }

  /** `whole`, bounded by `timeout` and `signal`: whichever ends first closes the cluster (resumable). */
  private bounded(whole: Promise<void>, timeout: number | undefined, signal: AbortSignal | undefined, guilds: boolean): Promise<void> {
    const h = this.#host;
    const rest = this.gatewayBot;
    let attempts = 0;
    const offObserve = h.pipeline.observe((c) => {
      if (c.to === 'connecting') attempts++;
    });
    const timedOut = () => {
      const running = h.running();
      const ready = running?.set.countStates().get('ready') ?? 0;
      const count = h.ids().length;
      const phase =
        running === null
          ? `GET /gateway/bot did not succeed (${rest.attempts} attempt(s)${rest.lastError ? `; last: ${rest.lastError.message}` : ''})`
          : ready < count
            ? `${ready} of ${count} shards ready after ${attempts} connect attempt(s)`
            : guilds
              ? 'every shard is ready but their guilds are still loading'
              : 'not every shard was ready';
      const message = `cluster not up within ${timeout} ms: ${phase}; check gatewayUrl / apiUrl and the network`;
      return new GatewayUnreachableError(redact(message, this.#token), { attempts: rest.attempts + attempts, cause: rest.lastError ?? undefined });
    };
    const result = bounded(whole, { clock: h.clock, timeout, signal, abortMessage: 'cluster connect aborted', timedOut, giveUp: () => h.giveUp() });
    result.then(offObserve, offObserve);
    return result;
  }

  /** One attempt: the first creates the shards; a retry after a ClusterConnectError starts the failed ones again. */
  private async run(onProgress: ((p: ClusterProgress) => void) | null, retryRest: boolean): Promise<void> {
    const h = this.#host;
    const startedAt = h.clock.now();
    h.pipeline.expectReady(startedAt);
    this.gatewayBot.reset();
    // A retry after a ClusterConnectError starts the shards that failed; any other failure happened before the
    // shards were created, and the retry starts from scratch.
    const retry = h.running() !== null;
    if (!retry) await this.prepare(retryRest);
    if (h.signal.aborted) throw h.signal.reason;
    const set = h.running()!.set;
    const all = h.ids();
    const ids = retry ? all.filter((id) => set.state(id) === 'fatal' || set.state(id) === 'idle') : all;
    const resume = retry ? [] : ids.filter((id) => h.sessions[id]);
    const fresh = retry ? ids : ids.filter((id) => !h.sessions[id]);
    const lanes = this.#lanes!;
    h.debug(`starting ${ids.length} shards of ${h.total()}: ${resume.length} resume, ${fresh.length} identify over ${lanes.maxConcurrency} lane(s)`);
    const failures = await lanes.scheduler.start(lanes.gate, {
      ids: fresh,
      resume,
      connect: (id) => set.connect(id),
      signal: h.signal,
      progress: onProgress ? { report: onProgress, startedAt, total: all.length, count: () => set.countStates() } : undefined,
    });
    this.#settled = true;
    h.settle();
    if (h.signal.aborted) throw new ShardlineError('CLUSTER_CLOSED', 'the cluster was closed before every shard was ready');
    if (failures.length > 0) throw new ClusterConnectError(failures, h.ids().length);
  }

  /** Learn the shard count, gateway URL and identify limits; create the shards (not yet connected). */
  private async prepare(retryRest: boolean): Promise<void> {
    const h = this.#host;
    const o = h.options;
    await h.sets.checkHandler();
    let bot: GatewayBot | null = null;
    if (this.gatewayBot.base === null) {
      // gatewayUrl without apiUrl: the token goes to no host the user did not name (no discord.com REST call).
      if (h.total() === null) h.setShards(1, [0]);
      h.debug(`gatewayUrl is set and apiUrl is not: GET /gateway/bot skipped (no REST call); ${h.total()} shard(s), one identify lane, no daily budget check`);
    } else if (h.total() === null || !o.gatewayUrl || !o.identifyQueue) bot = retryRest ? await this.gatewayBot.fetchRetrying() : await this.gatewayBot.fetch();
    if (h.total() === null) h.setShards(bot!.shards, range(bot!.shards));
    this.#gatewayUrl = o.gatewayUrl ?? bot!.url;
    const lanes = new IdentifyLanes({
      clock: h.clock,
      queue: o.identifyQueue,
      limit: bot?.session_start_limit,
      onExhausted: o.onIdentifyBudgetExhausted ?? 'error',
      startAhead: o.startAhead ?? 1,
      onBudget: (e) => h.onBudget(e),
      onTurn: (e) => h.onTurn(e),
      observe: (fn) => h.pipeline.observe(fn),
    });
    this.#lanes = lanes;
    const input = h.pipeline.input();
    h.begin(h.sets.create([...h.ids()], h.total()!, input.sink, lanes.gate, false), input);
  }
}
