/**
 * The {@link Cluster}: many shards, one event stream. It holds which shards it runs and wires the parts that do the
 * work, holding no shard state of its own: where the shards run ({@link Placement}, made by `cluster-sets.ts`), how
 * a set of shards is brought up through the identify lanes (`cluster-connect.ts`, `cluster-identify.ts`, the
 * `StartupScheduler`), how their events reach the user ({@link DeliveryPipeline}), and where a command goes
 * (`cluster-routing.ts`). A reshard (`cluster-reshard.ts`, `reshard.ts`) uses the same parts: a second placement,
 * the same scheduler, a dedupe stage in the pipeline. The options and their checks are `cluster-options.ts`.
 * @packageDocumentation
 */
import { setMaxListeners, type EventEmitter } from 'node:events';
import { inspect, type InspectOptionsStylized } from 'node:util';
import { systemClock, type Clock } from './clock.js';
import type { ClusterConnectOptions, ClusterEventMap, ClusterShard, IdentifyStatus, GatewayCommand, ShardStatus, WorkerExitEvent } from './cluster-status.js';
import { TypedEmitter } from './emitter.js';
import type { GuildMembersQuery, VoiceStateOptions } from './cluster-commands.js';
import { GatewayUnreachableError, ShardlineError, redact } from './errors.js';
import type { GatewayRequestGuildMembersData, GatewayVoiceStateUpdateData } from 'discord-api-types/v10';
import type { DispatchEvent, PresenceData } from './events.js';
import type { MemberRequest } from './members.js';
import { DeliveryPipeline, type PipelineInput } from './pipeline.js';
import type { Placement } from './placement.js';
import type { IdentifyBudgetEvent } from './queue.js';
import type { Session } from './session.js';
import { checkClusterOptions, checkShards, range, type ClusterOptions } from './cluster-options.js';
import { budgetLine } from './cluster-identify.js';
import { ClusterStartup } from './cluster-connect.js';
import { ClusterResharding } from './cluster-reshard.js';
import { CommandRouter } from './cluster-routing.js';
import { ShardSetFactory } from './cluster-sets.js';
import { ClusterConnectError } from './scheduler.js';
import type { ShardState } from './state.js';
import type { WorkerHost } from './worker/host.js';
import type { AutoReshardOptions, ReshardOptions, ReshardResult } from './reshard.js';

export { ClusterConnectError } from './scheduler.js';
export { CLUSTER_IDENTIFY_WINDOW, DEFAULT_API_URL, type ClusterOptions, type WorkerRestartOptions } from './cluster-options.js';

/**
 * Within the library only (not exported by the package): pause every running shard of `cluster` (true) until
 * released (false), combined with the `events()` back-pressure (the gateway proxy's handler when it is behind).
 */
export let holdDelivery: (cluster: Cluster, paused: boolean) => void;

/**
 * Many shards, one event stream: fetches the recommended shard count and identify limits, starts every shard
 * as fast as the identify lanes allow (`ceil(N / max_concurrency)` windows of 5 s), keeps per-shard health,
 * restarts shards individually, and optionally spreads the shards over worker threads to use every core.
 * A shard that fails for good is reported and does not take the others down.
 *
 * @example
 * ```ts
 * import { Cluster, Intents } from 'shardline';
 * const cluster = new Cluster({ token: process.env.DISCORD_TOKEN!, intents: Intents.Guilds | Intents.GuildMessages, workers: 4 });
 * cluster.on('dispatch', (e) => {
 *   if (e.type === 'MESSAGE_CREATE') console.log(`shard ${e.shardId}: ${e.data.content}`);
 * });
 * cluster.on('error', (err) => console.error(err.message));
 * await cluster.connect({ onProgress: (p) => console.log(`${p.ready}/${p.total} shards ready`) });
 * console.table(cluster.status());
 * // on shutdown: keep the sessions to resume them after a restart
 * const sessions = await cluster.close({ resumable: true });
 * ```
 */
export class Cluster extends TypedEmitter<ClusterEventMap> {
  static {
    holdDelivery = (cluster, paused) => cluster.pipeline.hold(paused);
  }
  readonly #token: string;
  /** The options without the token (which lives in `#token` only). */
  private readonly options: Omit<ClusterOptions, 'token'>;
  private readonly clock: Clock;
  private readonly abort = new AbortController();
  /** Sessions to resume, by shard id (a reshard's switch empties it). */
  private readonly sessions: Record<number, Session>;
  private _total: number | null = null;
  private _ids: number[] = [];
  /** The running shard set and its pipeline input (null until `connect()` created the shards). */
  private running: { set: Placement; input: PipelineInput } | null = null;
  private readonly handles = new Map<number, ClusterShard>();
  /** Last presence given to updatePresence(): a resharded set identifies with it. */
  private presence: PresenceData | undefined;
  private closing: Promise<Record<number, Session>> | null = null;
  // The parts, one file each.
  private readonly pipeline: DeliveryPipeline;
  private readonly sets: ShardSetFactory;
  private readonly router: CommandRouter;
  /** `connect()`: `GET /gateway/bot`, the identify lanes, the first shard set. */
  private readonly startup: ClusterStartup;
  private readonly resharding: ClusterResharding;

  constructor(options: ClusterOptions) {
    super();
    const checked = checkClusterOptions(options);
    this.#token = checked.token;
    const { token: _token, ...rest } = options;
    this.options = rest;
    setMaxListeners(0, this.abort.signal); // one listener per pending start-up wait
    this.clock = options.clock ?? systemClock;
    this.sessions = checked.sessions;
    if (checked.shards) {
      this._total = checked.shards.total;
      this._ids = checked.shards.ids;
    }
    this.sets = new ShardSetFactory(rest, checked, {
      clock: this.clock,
      sessions: this.sessions,
      gatewayUrl: () => this.startup.gatewayUrl!,
      presence: () => this.presence,
      resharder: () => this.resharding.current,
      onWorkerExit: (e) => this.onWorkerExit(e),
      debug: (m) => this.debugLine(m),
      handler: {
        requestGuildMembers: (guildId, options) => this.requestGuildMembers(guildId, options),
        updateVoiceState: (guildId, state) => this.updateVoiceState(guildId, state),
        requestSoundboardSounds: (ids) => this.requestSoundboardSounds(ids),
        send: (shardId, payload) => this.send(shardId, payload),
        message: (e) => this.pipeline.guard(() => this.emit('handlerMessage', e)),
        log: (e) => this.pipeline.guard(() => this.emit('handlerLog', e)), // the runner removed the token
        handled: (shardId, type) => {
          if (this.listenerCount('dispatchHandled') !== 0) this.pipeline.guard(() => this.emit('dispatchHandled', shardId, type));
        },
      },
    });
    this.router = new CommandRouter({
      clock: this.clock,
      remote: rest.remoteCommands,
      running: () => this.running?.set ?? null,
      total: () => this._total,
      ids: () => this._ids,
      closed: () => this.closing !== null,
    });
    this.pipeline = new DeliveryPipeline({ clock: this.clock, emitter: this, running: () => this.running?.set ?? null, debug: (m) => this.debugLine(m) }, options.eventBufferSize ?? 10_000);
    this.startup = new ClusterStartup(this.#token, {
      clock: this.clock,
      signal: this.abort.signal,
      pipeline: this.pipeline,
      options: rest,
      sets: this.sets,
      sessions: this.sessions,
      total: () => this._total,
      ids: () => this._ids,
      setShards: (total, ids) => this.setShards(total, ids),
      running: () => this.running,
      begin: (set, input) => {
        this.running = { set, input };
        this.syncDebug();
        if (this.pipeline.behind) set.setPaused(true);
      },
      settle: () => {
        if (this.options.autoReshard && !this.abort.signal.aborted && !this.resharding.policyRunning) this.autoReshard(this.options.autoReshard);
      },
      closed: () => this.closing !== null,
      giveUp: () => {
        this.close({ resumable: true }).catch(() => undefined); // its own errors were reported as they happened
      },
      onBudget: (e) => this.onBudget(e),
      onTurn: (e) => {
        this.pipeline.guard(() => this.emit('identifyTurn', e));
        this.debugLine(`identify turn: shard ${e.shardId} (lane ${e.lane})`);
      },
      debug: (m) => this.debugLine(m),
    });
    this.resharding = new ClusterResharding({
      clock: this.clock,
      signal: this.abort.signal,
      pipeline: this.pipeline,
      total: () => this._total,
      ids: () => this._ids,
      maxConcurrency: () => this.maxConcurrency,
      scheduler: () => this.startup.lanes!.scheduler,
      localBudget: () => this.startup.lanes?.localBudget() ?? null,
      settled: () => this.startup.settled,
      closed: () => this.closing !== null,
      status: () => this.status(),
      running: () => this.running!,
      fetchGatewayBot: () => this.startup.refreshGatewayBot(),
      createSet: (total, sink, queue) => this.sets.create(range(total), total, sink, queue, true),
      adopt: (set, input) => this.adopt(set, input),
      debug: (m) => this.debugLine(m),
      emit: (e) => this.pipeline.guard(() => this.emit('reshard', e)),
    });
    // Shard debug lines cost a string per event: forward them only while someone listens.
    const self = this as unknown as EventEmitter;
    self.on('newListener', (event: string) => {
      if (event === 'debug') queueMicrotask(() => this.syncDebug());
    });
    self.on('removeListener', (event: string) => {
      if (event === 'debug') this.syncDebug();
    });
  }

  /** Shard count of the bot (known after `connect()` with `shards: 'auto'`). */
  get total(): number | null {
    return this._total;
  }

  /** Ids of the shards this cluster runs. */
  get ids(): readonly number[] {
    return this._ids;
  }

  /** Identify lanes (`max_concurrency`). */
  get maxConcurrency(): number {
    return this.startup.lanes?.maxConcurrency ?? 1;
  }

  /** Gateway URL in use (known after `connect()` when not given). */
  get gatewayUrl(): string | null {
    return this.startup.gatewayUrl;
  }

  /**
   * Dispatches of every shard as one async iterable, in each shard's order. Create it before `connect()` to see
   * every event. When the consumer falls `eventBufferSize` behind, every shard stops reading its socket until it
   * catches up (quiet shards are never starved: all shards pause and resume together). Ends on `close()`.
   */
  events(): AsyncIterableIterator<DispatchEvent> {
    return this.pipeline.events();
  }

  /**
   * Start every shard. Resolves when all are ready; rejects with a {@link ClusterConnectError} naming the shards
   * that failed for good (bad token, invalid shard, spent identify budget, ...) once the rest are ready — those
   * keep running. `onProgress` is told about every state change during start-up. Calls made while an attempt is
   * in flight share it; after a failure the next call tries again (after a `ClusterConnectError`: the failed shards).
   *
   * `waitForGuilds: true` resolves only once every shard's guilds are loaded (the `guildsReady` event). `timeout`
   * (ms) and `signal` bound the wait: the promise rejects with a {@link GatewayUnreachableError} (not wrapped) or
   * an error named `AbortError`, and the cluster is closed resumably, releasing every socket and timer. Meanwhile an
   * unreachable gateway is retried by each shard with back-off (`shardDisconnected` with kind `connect-failed`,
   * `shardStateChange`), and a failing `GET /gateway/bot` is retried too (each failure on `shardError` with shard
   * id -1). Without them, a failing `GET /gateway/bot` rejects at once and unreachable shards retry until ready.
   *
   * @example
   * ```ts
   * await cluster.connect({ waitForGuilds: true, timeout: 120_000 }); // every guild loaded, or GatewayUnreachableError
   * ```
   */
  connect(options: ClusterConnectOptions = {}): Promise<void> {
    if (this.closing) return Promise.reject(new ShardlineError('CLUSTER_CLOSED', 'the cluster is closed; create a new one'));
    return this.startup.connect(options);
  }

  /** A redacted summary (never the token): ids, total, shard states. */
  toJSON(): { ids: number[]; total: number | null; maxConcurrency: number; gatewayUrl: string | null; workers: number; states: Partial<Record<ShardState, number>>; closed: boolean } {
    const states: Partial<Record<ShardState, number>> = {};
    for (const [state, n] of this.running?.set.countStates() ?? []) states[state] = n;
    return {
      ids: [...this._ids],
      total: this._total,
      maxConcurrency: this.maxConcurrency,
      gatewayUrl: this.startup.gatewayUrl,
      workers: this.options.workers ?? 0,
      states,
      closed: this.closing !== null,
    };
  }

  [inspect.custom](depth: number, options: InspectOptionsStylized, show: typeof inspect): string {
    if (depth < 0) return options.stylize('[Cluster]', 'special');
    return `Cluster ${show(this.toJSON(), { ...options, depth: options.depth === null ? null : depth - 1 })}`;
  }

  /** The shard `id` (throws when it is not part of this cluster or the cluster has not started). */
  shard(id: number): ClusterShard {
    const handle = this.handles.get(id);
    if (handle) return handle;
    this.router.route(id);
    const cluster = this;
    const created: ClusterShard = {
      id,
      get state() {
        return cluster.running?.set.state(id) ?? 'idle';
      },
      status: () => this.router.route(id).status(id),
      send: (payload) => this.send(id, payload),
      updatePresence: (presence) => this.send(id, { op: 3, d: presence }),
      restart: (opts) => this.restartShard(id, opts),
      get shard() {
        return cluster.running?.set.local(id);
      },
    };
    this.handles.set(id, created);
    return created;
  }

  /** The shard that receives a guild's events: `(guild_id >> 22) % total`, computed exactly with BigInt. */
  shardIdFor(guildId: string | bigint): number {
    return this.router.shardIdFor(guildId);
  }

  /** Send a command on one shard (routed to the thread that owns it). */
  send(shardId: number, payload: GatewayCommand): Promise<void> {
    return this.router.send(shardId, payload);
  }

  /**
   * Update the presence of every shard (op 3): every running shard of this cluster, in this thread or in worker
   * threads, and with `remoteCommands` the bot's shards other processes run too. Rejects with `PRESENCE_FAILED`
   * (after trying all) if some could not send it. Shards resharded in later identify with it.
   */
  async updatePresence(presence: PresenceData): Promise<void> {
    this.presence = presence;
    await this.router.updatePresence(presence);
  }

  /**
   * Request guild members (op 8) on the shard that owns the guild (`shardIdFor(guildId)`), wherever it runs: this
   * thread, a worker thread (the chunks come back to this thread), or — with `remoteCommands` — another process.
   * The result is the Shard's: a {@link MemberRequest}, both a promise of every GUILD_MEMBERS_CHUNK and an async
   * iterable of the chunks as they arrive. `options` default to `{ query: '', limit: 0 }` (every member); a full
   * request object (`{ guild_id, ... }`) is accepted too. Failures (not a snowflake, a shard nobody runs, a closed
   * shard, the timeout) reject it.
   *
   * @example
   * ```ts
   * const chunks = await cluster.requestGuildMembers('175928847299117063');
   * for await (const chunk of cluster.requestGuildMembers(guildId, { user_ids: ['80351110224678912'] })) console.log(chunk.members);
   * ```
   */
  requestGuildMembers(guildId: string | bigint, options?: GuildMembersQuery): MemberRequest;
  /** The same with a full Request Guild Members payload (`{ guild_id, query, limit }` or `{ guild_id, user_ids }`, ...). */
  requestGuildMembers(request: GatewayRequestGuildMembersData): MemberRequest;
  requestGuildMembers(guild: string | bigint | GatewayRequestGuildMembersData, options?: GuildMembersQuery): MemberRequest {
    return this.router.requestGuildMembers(guild, options);
  }

  /**
   * Join, move or leave a voice channel (op 4) through the shard that owns the guild, wherever it runs (as
   * `requestGuildMembers()`). Resolves once sent.
   *
   * @example
   * ```ts
   * await cluster.updateVoiceState(guildId, { channel_id: voiceChannelId, self_mute: false, self_deaf: true });
   * await cluster.updateVoiceState(guildId, { channel_id: null, self_mute: false, self_deaf: false }); // leave
   * ```
   */
  updateVoiceState(guildId: string | bigint, state: VoiceStateOptions): Promise<void>;
  /** The same with a full Voice State Update payload (`{ guild_id, channel_id, self_mute, self_deaf }`). */
  updateVoiceState(state: GatewayVoiceStateUpdateData): Promise<void>;
  async updateVoiceState(guild: string | bigint | GatewayVoiceStateUpdateData, state?: VoiceStateOptions): Promise<void> {
    await this.router.updateVoiceState(guild, state);
  }

  /**
   * Ask for the soundboard sounds of guilds (op 31): the guilds are split by the shard that owns each, and each shard
   * is asked for its own (in this thread, a worker, or with `remoteCommands` another process). The answers arrive as
   * SOUNDBOARD_SOUNDS dispatches. Resolves once every shard sent its request; rejects with `SOUNDBOARD_FAILED`
   * (after trying all) when some could not.
   */
  async requestSoundboardSounds(guildIds: Iterable<string>): Promise<void> {
    await this.router.requestSoundboardSounds(guildIds);
  }

  /**
   * The identify queue: shards waiting for a turn now, lanes, and the daily session start budget (`remaining`,
   * `total`, virtual ms until it refills) when the queue is a {@link LocalIdentifyQueue}; null fields otherwise.
   */
  identifyStatus(): IdentifyStatus {
    return this.startup.lanes?.status() ?? { maxConcurrency: 1, waiting: 0, remaining: null, total: null, resetIn: null };
  }

  /** Health of every shard, by id. Synchronous; in worker mode refreshed with every event batch and once a second. */
  status(): ShardStatus[] {
    const set = this.running?.set;
    return this._ids.map((id) => (set ? set.status(id) : { id, state: 'idle', latency: null, sessionId: null, sequence: 0, reconnects: 0, identifies: 0, resumes: 0, lastCloseCode: null }));
  }

  /**
   * Close one shard and connect it again, resuming its session (unless `resume: false` or it has none, e.g.
   * after a fatal close). Resolves when it is ready again.
   */
  async restartShard(id: number, options: { resume?: boolean } = {}): Promise<void> {
    if (this.closing) throw new ShardlineError('CLUSTER_CLOSED', 'the cluster is closed');
    const set = this.router.route(id);
    this.debugLine(`restarting shard ${id} (${options.resume === false ? 'new session' : 'resume'})`);
    await set.restart(id, options.resume ?? true);
  }

  /**
   * Change the shard count without downtime. A new set of `total` shards (default: the count `GET /gateway/bot`
   * recommends, rounded up to a multiple of `max_concurrency`) identifies through the identify queue next to the
   * running set; its events are withheld and reconciled with what the running set delivers until it is complete;
   * then, at one synchronous switch point, delivery, `shardIdFor()`, `shard(id)`, `send()` and `status()` move to
   * the new set and the old set is closed. No dispatch is delivered twice or lost across the switch (see
   * docs/RESHARDING.md for how and for the limits). The new set's READY and initial GUILD_CREATEs are not
   * delivered: those guilds are already known.
   *
   * Rejects — leaving the running set untouched — with `RESHARD_BUDGET` before any connection when the new set's
   * IDENTIFYs do not fit in `budgetShare` of the remaining session starts, and with `RESHARD_ABORTED` when a new
   * shard fails for good (e.g. 4011, 4014), `options.signal` aborts, the new set does not come up within
   * `timeout`, or the cluster is closed. Works in worker mode too (the new set gets its own worker threads).
   * Needs a cluster that runs every shard of the bot (not `shards: { ids, total }`) and a settled `connect()`.
   *
   * @example
   * ```ts
   * cluster.on('reshard', (e) => console.log(e.kind, e.from, '→', e.to));
   * const r = await cluster.reshard(); // or cluster.reshard(32)
   * console.log(`now ${r.to} shards; switch took ${r.switchDuration.toFixed(1)} ms`);
   * ```
   */
  reshard(total?: number, options: ReshardOptions = {}): Promise<ReshardResult> {
    return this.resharding.start(total, options, 'manual');
  }

  /**
   * Start the periodic resharding policy: every `interval` (default 15 min) compare the guilds per shard with
   * `guildsPerShard` (default 2000); when passed, fetch `GET /gateway/bot` and reshard to the larger of the
   * recommended count and `ceil(guilds / guildsPerShard)` (rounded up to a multiple of `max_concurrency`), only if
   * that fits in `budgetShare` (default 0.5) of the remaining session starts — otherwise a `reshard` event of kind
   * `skipped` is emitted and the next check tries again. Returns a function that stops the policy.
   */
  autoReshard(options: AutoReshardOptions = {}): () => void {
    if (this.closing) throw new ShardlineError('CLUSTER_CLOSED', 'the cluster is closed');
    return this.resharding.auto(options);
  }

  /**
   * Close every shard and release every timer, socket, worker and listener. With `resumable: true` the
   * sessions survive and are returned, to be passed as `sessions` to a new cluster (within a few minutes).
   * Identify waits are cancelled; `events()` iterators end after their buffered events.
   */
  close(options: { resumable?: boolean } = {}): Promise<Record<number, Session>> {
    this.closing ??= this.doClose(options.resumable ?? false);
    return this.closing;
  }

  // ---- internals ---------------------------------------------------------------------------------------

  private async doClose(resumable: boolean): Promise<Record<number, Session>> {
    this.abort.abort(new ShardlineError('CLUSTER_CLOSED', 'the cluster was closed'));
    await this.resharding.close();
    const sessions = (await this.running?.set.close(resumable)) ?? {};
    this.pipeline.end();
    const self = this as unknown as EventEmitter;
    self.removeAllListeners('newListener');
    self.removeAllListeners('removeListener');
    return sessions;
  }

  private syncDebug(): void {
    this.running?.set.setDebug(this.listenerCount('debug') > 0);
  }

  /** The reshard's switch: `set` (reporting to `input`) becomes the running set, synchronously. Returns the previous one. */
  private adopt(set: Placement, input: PipelineInput): Placement {
    const old = this.running!.set;
    this.running = { set, input };
    this._total = set.total;
    this._ids = range(set.total);
    for (const id of this.handles.keys()) if (id >= set.total) this.handles.delete(id);
    for (const id of Object.keys(this.sessions)) delete this.sessions[Number(id)];
    set.setPaused(this.pipeline.behind);
    set.setDebug(this.listenerCount('debug') > 0);
    this.pipeline.checkReady();
    return old;
  }

  private setShards(total: number, ids: number[]): void {
    this._ids = checkShards(total, ids);
    this._total = total;
  }

  private onBudget(e: IdentifyBudgetEvent): void {
    this.pipeline.guard(() => this.emit('identifyBudget', e));
    this.debugLine(budgetLine(e), this.listenerCount('identifyBudget') === 0);
  }

  private onWorkerExit(e: WorkerExitEvent): void {
    this.pipeline.guard(() => this.emit('workerExit', e));
    const line = e.restarting ? `${e.reason}; respawning it in ${e.delay} ms (restart ${e.restarts}, ${e.recentExits} exit(s) in the window); ${e.shards.length} shard(s) will reconnect` : e.reason;
    this.debugLine(line, this.listenerCount('workerExit') === 0, 'SHARDLINE_WORKER_EXIT');
  }

  /** A cluster-level debug line (shardId -1). `always` also prints a warning (`code`) when nobody listens to debug. */
  private debugLine(message: string, always = false, code = 'SHARDLINE_IDENTIFY_BUDGET'): void {
    if (this.listenerCount('debug') > 0) this.pipeline.guard(() => this.emit('debug', { shardId: -1, message: redact(message, this.#token) }));
    else if (always) process.emitWarning(`shardline cluster: ${redact(message, this.#token)}`, { code });
  }
}

/**
 * The worker hosts of a cluster in worker mode (its running set). For tests and failure drills, e.g.
 * `await workerHosts(cluster)[0]!.terminate()` to crash a worker thread; not part of the package's exports.
 * @internal
 */
export function workerHosts(cluster: Cluster): WorkerHost[] {
  return cluster['running']?.set.workerHosts() ?? [];
}
