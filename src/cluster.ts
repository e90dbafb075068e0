/**
 * The {@link Cluster}: many shards, one event stream. It wires three parts together and holds no shard state of
 * its own: where the shards run ({@link Placement}), how a set of shards is brought up through the identify lanes
 * ({@link StartupScheduler}), and how their events reach the user ({@link DeliveryPipeline}). A reshard
 * (`reshard.ts`) uses the same three: a second placement, the same scheduler, a dedupe stage in the pipeline.
 * @packageDocumentation
 */
import { setMaxListeners, type EventEmitter } from 'node:events';
import { inspect, type InspectOptionsStylized } from 'node:util';
import { sleep, systemClock, type Clock } from './clock.js';
import type { ClusterConnectOptions, ClusterEventMap, ClusterProgress, ClusterShard, IdentifyStatus, GatewayCommand, ShardSink, ShardStatus, WorkerExitEvent } from './cluster-status.js';
import { TypedEmitter } from './emitter.js';
import { allOrReport, byShard, failedMemberRequest, memberRequestData, voiceStateData, type GuildMembersQuery, type VoiceStateOptions } from './cluster-commands.js';
import { Backoff } from './backoff.js';
import { abortError, bounded, checkTimeout } from './bounded.js';
import { GatewayError, GatewayUnreachableError, ShardlineError, redact } from './errors.js';
import { resolveEvents, type EventName } from './event-names.js';
import type { GatewayRequestGuildMembersData, GatewayVoiceStateUpdateData } from 'discord-api-types/v10';
import type { DispatchEvent, PresenceData } from './events.js';
import type { MemberRequest } from './members.js';
import { AllIntents } from './intents.js';
import { DeliveryPipeline, type PipelineInput } from './pipeline.js';
import { Placement } from './placement.js';
import { LocalIdentifyQueue, type IdentifyBudgetEvent, type IdentifyQueue } from './queue.js';
import { isSession, type Session } from './session.js';
import { CLUSTER_IDENTIFY_WINDOW, DEFAULT_API_URL, restartPolicy, type ClusterOptions } from './cluster-options.js';
import { fetchGatewayBot, type GatewayBot } from './gateway-bot.js';
import { ClusterConnectError, StartupScheduler, type StartGate } from './scheduler.js';
import type { ShardOptions } from './shard.js';
import type { ShardState } from './state.js';
import type { HostHandlerLink, WorkerHost, WorkerRestartPolicy } from './worker/host.js';
import { checkHandler, handlerLink } from './handler/cluster-link.js';
import { handlerUrl } from './handler/runner.js';
import { ReshardPolicy, Resharder, type AutoReshardOptions, type GatewayBotInfo, type ReshardHost, type ReshardOptions, type ReshardResult } from './reshard.js';

export { ClusterConnectError } from './scheduler.js';
export { CLUSTER_IDENTIFY_WINDOW, DEFAULT_API_URL, type ClusterOptions, type WorkerRestartOptions } from './cluster-options.js';

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
  readonly #token: string;
  /** The options without the token (which lives in `#token` only). */
  private readonly options: Omit<ClusterOptions, 'token'>;
  private readonly clock: Clock;
  private readonly abort = new AbortController();
  private readonly sessions: Record<number, Session>;
  private readonly pipeline: DeliveryPipeline;
  /** The running shard set and its pipeline input (null until `connect()` created the shards). */
  private running: { set: Placement; input: PipelineInput } | null = null;
  private readonly handles = new Map<number, ClusterShard>();
  private _total: number | null = null;
  private _ids: number[] = [];
  private _gatewayUrl: string | null = null;
  private _maxConcurrency = 1;
  /** Created once the identify limits are known; the running set identifies through `gate`. */
  private scheduler: StartupScheduler | null = null;
  private gate: StartGate | null = null;
  /** The queue behind the scheduler and its daily total (for identifyStatus()). */
  private identifyInner: IdentifyQueue | null = null;
  private identifyTotal: number | null = null;
  private connecting: Promise<void> | null = null;
  /** `GET /gateway/bot` attempts of a bounded connect, and the last failure (for GatewayUnreachableError). */
  private restAttempts = 0;
  private restError: Error | null = null;
  private closing: Promise<Record<number, Session>> | null = null;
  private settled = false;
  private resharder: Resharder | null = null;
  private reshardRun: Promise<void> | null = null;
  private policy: ReshardPolicy | null = null;
  /** Last presence given to updatePresence(): a resharded set identifies with it. */
  private presence: PresenceData | undefined;
  /** Member request nonces made here. */
  private nonces = 0;
  /** Respawn policy of the worker threads (null: a worker that exits stops its shards). */
  private readonly workerRestart: WorkerRestartPolicy | null;
  /** Handler mode: the module's file URL (null: dispatches are delivered as events here). */
  private readonly handlerUrl: string | null;
  #handlerLink: HostHandlerLink | null = null;

  constructor(options: ClusterOptions) {
    super();
    if (typeof options?.token !== 'string' || options.token.trim() === '') {
      throw new ShardlineError('INVALID_TOKEN', 'no token given: pass the bot token from the Developer Portal (e.g. process.env.DISCORD_TOKEN)');
    }
    const intents = options.intents;
    if (!Number.isInteger(intents) || intents < 0 || (intents & ~AllIntents) !== 0) {
      throw new ShardlineError('INVALID_INTENTS', `intents must be a bitfield of documented Intents values, got ${String(intents)}`);
    }
    const workers = options.workers ?? 0;
    if (!Number.isInteger(workers) || workers < 0) throw new ShardlineError('INVALID_OPTION', `workers must be an integer >= 0, got ${String(workers)}`);
    this.workerRestart = restartPolicy(options.workerRestart);
    this.handlerUrl = options.handler === undefined ? null : handlerUrl(options.handler);
    const handlerErrors = options.handlerErrors ?? 'report';
    if (handlerErrors !== 'report' && handlerErrors !== 'exit') throw new ShardlineError('INVALID_OPTION', `handlerErrors must be 'report' or 'exit', got ${String(handlerErrors)}`);
    if (handlerErrors === 'exit' && workers === 0) throw new ShardlineError('INVALID_OPTION', `handlerErrors: 'exit' needs worker threads (workers >= 1): in this thread it would end the process`);
    // Checked here, not at connect(): a typo in `events` throws where the cluster is built.
    this.#events = resolveEvents(options.events, options.extraEvents) ?? undefined;
    this.#extraEvents = options.extraEvents ? [...options.extraEvents] : undefined;
    this.#token = options.token.trim().replace(/^Bot\s+/i, '');
    const { token: _token, ...rest } = options;
    this.options = rest;
    setMaxListeners(0, this.abort.signal); // one listener per pending start-up wait
    this.clock = options.clock ?? systemClock;
    this.sessions = {};
    for (const [id, s] of Object.entries(options.sessions ?? {})) {
      if (!isSession(s)) throw new ShardlineError('INVALID_SESSION', `sessions[${id}] must be { sessionId, sequence, resumeUrl }`);
      this.sessions[Number(id)] = s;
    }
    const shards = options.shards ?? 'auto';
    if (typeof shards === 'number') this.setShards(shards, range(shards));
    else if (typeof shards === 'object') this.setShards(shards.total, shards.ids);
    else if (shards !== 'auto') throw new ShardlineError('INVALID_SHARD', `shards must be 'auto', a count, or { ids, total }`);
    this.pipeline = new DeliveryPipeline({ clock: this.clock, emitter: this, running: () => this.running?.set ?? null, debug: (m) => this.debugLine(m) }, options.eventBufferSize ?? 10_000);
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
    return this._maxConcurrency;
  }

  /** Gateway URL in use (known after `connect()` when not given). */
  get gatewayUrl(): string | null {
    return this._gatewayUrl;
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
    const { timeout, signal, waitForGuilds } = options;
    const invalid = checkTimeout(timeout);
    if (invalid) return Promise.reject(invalid);
    if (signal?.aborted) return Promise.reject(abortError(signal, 'cluster connect aborted'));
    const bounded = timeout !== undefined || signal !== undefined;
    if (!this.connecting) {
      const attempt = this.doConnect(options.onProgress ?? null, bounded);
      this.connecting = attempt;
      attempt.catch(() => {
        if (this.connecting === attempt && !this.closing) this.connecting = null;
      });
    }
    const attempt = this.connecting;
    if (!bounded && !waitForGuilds) return attempt;
    const whole = waitForGuilds ? attempt.then(() => this.pipeline.whenGuildsReady()) : attempt;
    if (!bounded) return whole;
    return this.bounded(whole, timeout, signal, waitForGuilds === true);
  }

  /** `whole`, bounded by `timeout` and `signal`: whichever ends first closes the cluster (resumable). */
  private bounded(whole: Promise<void>, timeout: number | undefined, signal: AbortSignal | undefined, guilds: boolean): Promise<void> {
    let attempts = 0;
    const offObserve = this.pipeline.observe((c) => {
      if (c.to === 'connecting') attempts++;
    });
    const timedOut = () => {
      const ready = this.running?.set.countStates().get('ready') ?? 0;
      const phase =
        this.running === null
          ? `GET /gateway/bot did not succeed (${this.restAttempts} attempt(s)${this.restError ? `; last: ${this.restError.message}` : ''})`
          : ready < this._ids.length
            ? `${ready} of ${this._ids.length} shards ready after ${attempts} connect attempt(s)`
            : guilds
              ? 'every shard is ready but their guilds are still loading'
              : 'not every shard was ready';
      const message = `cluster not up within ${timeout} ms: ${phase}; check gatewayUrl / apiUrl and the network`;
      return new GatewayUnreachableError(redact(message, this.#token), { attempts: this.restAttempts + attempts, cause: this.restError ?? undefined });
    };
    const result = bounded(whole, {
      clock: this.clock,
      timeout,
      signal,
      abortMessage: 'cluster connect aborted',
      timedOut,
      giveUp: () => {
        this.close({ resumable: true }).catch(() => undefined); // its own errors were reported as they happened
      },
    });
    result.then(offObserve, offObserve);
    return result;
  }

  /** A redacted summary (never the token): ids, total, shard states. */
  toJSON(): { ids: number[]; total: number | null; maxConcurrency: number; gatewayUrl: string | null; workers: number; states: Partial<Record<ShardState, number>>; closed: boolean } {
    const states: Partial<Record<ShardState, number>> = {};
    for (const [state, n] of this.running?.set.countStates() ?? []) states[state] = n;
    return {
      ids: [...this._ids],
      total: this._total,
      maxConcurrency: this._maxConcurrency,
      gatewayUrl: this._gatewayUrl,
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
    this.route(id);
    const cluster = this;
    const created: ClusterShard = {
      id,
      get state() {
        return cluster.running?.set.state(id) ?? 'idle';
      },
      status: () => this.route(id).status(id),
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
    if (this._total === null) throw new ShardlineError('NOT_STARTED', 'the shard count is not known yet: connect() first or pass shards');
    let id: bigint;
    try {
      id = BigInt(guildId);
    } catch {
      throw new ShardlineError('INVALID_SNOWFLAKE', `not a snowflake: ${String(guildId).slice(0, 40)}`);
    }
    if (id < 0n) throw new ShardlineError('INVALID_SNOWFLAKE', `not a snowflake: ${String(guildId)}`);
    return Number((id >> 22n) % BigInt(this._total));
  }

  /** A command for the shard owning a guild: this cluster's shard, or through `remoteCommands` another process's. */
  private async sendRouted(shardId: number, payload: GatewayCommand): Promise<void> {
    const remote = this.options.remoteCommands;
    if (remote && !this._ids.includes(shardId)) await remote.send(shardId, payload);
    else await this.send(shardId, payload);
  }

  /** Send a command on one shard (routed to the thread that owns it). */
  send(shardId: number, payload: GatewayCommand): Promise<void> {
    try {
      return this.route(shardId).send(shardId, payload);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Update the presence of every shard (op 3): every running shard of this cluster, in this thread or in worker
   * threads, and with `remoteCommands` the bot's shards other processes run too. Rejects with `PRESENCE_FAILED`
   * (after trying all) if some could not send it. Shards resharded in later identify with it.
   */
  async updatePresence(presence: PresenceData): Promise<void> {
    this.presence = presence;
    const set = this.running?.set;
    const ids = this._ids.filter((id) => set && set.state(id) !== 'fatal' && set.state(id) !== 'closed');
    const calls = ids.map((id) => ({ shardId: id, run: () => this.send(id, { op: 3, d: presence }) }));
    const remote = this.options.remoteCommands;
    if (remote && this._total !== null) {
      for (let id = 0; id < this._total; id++) if (!this._ids.includes(id)) calls.push({ shardId: id, run: () => remote.send(id, { op: 3, d: presence }).then(() => undefined) });
    }
    await allOrReport(calls, 'PRESENCE_FAILED', 'presence');
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
    const request = memberRequestData(guild, options);
    let shardId = -1;
    try {
      if (this.closing) throw new ShardlineError('CLUSTER_CLOSED', 'the cluster is closed');
      shardId = this.shardIdFor(request.guild_id);
    } catch (err) {
      return failedMemberRequest(request.nonce ?? 'unsent', this.clock, err as Error);
    }
    const nonce = request.nonce ?? `c${shardId.toString(36)}-${(this.nonces++).toString(36)}-${Date.now().toString(36)}`;
    const sent = { ...request, nonce };
    const set = this.running?.set;
    if (set?.owner(shardId)) return set.requestGuildMembers(shardId, sent);
    const remote = this.options.remoteCommands;
    if (remote && !this._ids.includes(shardId)) return remote.requestGuildMembers(shardId, sent);
    try {
      this.route(shardId);
      throw new ShardlineError('UNKNOWN_SHARD', `shard ${shardId} is not running`);
    } catch (err) {
      return failedMemberRequest(nonce, this.clock, err as Error);
    }
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
    const d = voiceStateData(guild, state);
    await this.sendRouted(this.shardIdFor(d.guild_id), { op: 4, d });
  }

  /**
   * Ask for the soundboard sounds of guilds (op 31): the guilds are split by the shard that owns each, and each shard
   * is asked for its own (in this thread, a worker, or with `remoteCommands` another process). The answers arrive as
   * SOUNDBOARD_SOUNDS dispatches. Resolves once every shard sent its request; rejects with `SOUNDBOARD_FAILED`
   * (after trying all) when some could not.
   */
  async requestSoundboardSounds(guildIds: Iterable<string>): Promise<void> {
    const groups = byShard(guildIds, (g) => this.shardIdFor(g));
    const calls = [...groups].map(([shardId, ids]) => ({ shardId, run: () => this.sendRouted(shardId, { op: 31, d: { guild_ids: ids } }) }));
    await allOrReport(calls, 'SOUNDBOARD_FAILED', 'soundboard request');
  }

  /**
   * The identify queue: shards waiting for a turn now, lanes, and the daily session start budget (`remaining`,
   * `total`, virtual ms until it refills) when the queue is a {@link LocalIdentifyQueue}; null fields otherwise.
   */
  identifyStatus(): IdentifyStatus {
    const q = this.identifyInner instanceof LocalIdentifyQueue ? this.identifyInner : null;
    const remaining = q ? q.remaining : null;
    const resetAt = q?.resetAt ?? null;
    return {
      maxConcurrency: this._maxConcurrency,
      waiting: this.scheduler?.waiting ?? 0,
      remaining: remaining === Infinity ? null : remaining,
      total: remaining === null || remaining === Infinity ? null : this.identifyTotal,
      resetIn: resetAt === null ? null : Math.max(0, resetAt - this.clock.now()),
    };
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
    const set = this.route(id);
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
    return this.startReshard(total, options, 'manual');
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
    this.policy?.stop();
    const policy = new ReshardPolicy(
      {
        clock: this.clock,
        total: () => this._total,
        maxConcurrency: () => this._maxConcurrency,
        status: () => this.status(),
        busy: () => this.resharder?.active === true || !this.settled,
        closed: () => this.closing !== null,
        fetchGatewayBot: () => this.refreshGatewayBot(),
        reshard: (total, opts) => this.startReshard(total, opts, 'policy'),
        debug: (m) => this.debugLine(m),
        emit: (e) => this.pipeline.guard(() => this.emit('reshard', e)),
      },
      options,
    );
    this.policy = policy;
    policy.start();
    return () => {
      policy.stop();
      if (this.policy === policy) this.policy = null;
    };
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
    this.policy?.stop();
    this.policy = null;
    this.resharder?.dispose();
    await this.reshardRun;
    const sessions = (await this.running?.set.close(resumable)) ?? {};
    this.pipeline.end();
    const self = this as unknown as EventEmitter;
    self.removeAllListeners('newListener');
    self.removeAllListeners('removeListener');
    return sessions;
  }

  private async doConnect(onProgress: ((p: ClusterProgress) => void) | null, retryRest: boolean): Promise<void> {
    const startedAt = this.clock.now();
    this.pipeline.expectReady(startedAt);
    this.restAttempts = 0;
    this.restError = null;
    // A retry after a ClusterConnectError starts the shards that failed; any other failure happened before the
    // shards were created, and the retry starts from scratch.
    const retry = this.running !== null;
    if (!retry) await this.prepare(retryRest);
    if (this.abort.signal.aborted) throw this.abort.signal.reason;
    const set = this.running!.set;
    const ids = retry ? this._ids.filter((id) => set.state(id) === 'fatal' || set.state(id) === 'idle') : this._ids;
    const resume = retry ? [] : ids.filter((id) => this.sessions[id]);
    const fresh = retry ? ids : ids.filter((id) => !this.sessions[id]);
    this.debugLine(`starting ${ids.length} shards of ${this._total}: ${resume.length} resume, ${fresh.length} identify over ${this._maxConcurrency} lane(s)`);
    const failures = await this.scheduler!.start(this.gate!, {
      ids: fresh,
      resume,
      connect: (id) => set.connect(id),
      signal: this.abort.signal,
      progress: onProgress ? { report: onProgress, startedAt, total: this._ids.length, count: () => set.countStates() } : undefined,
    });
    this.settled = true;
    if (this.options.autoReshard && !this.abort.signal.aborted && !this.policy) this.autoReshard(this.options.autoReshard);
    if (this.abort.signal.aborted) throw new ShardlineError('CLUSTER_CLOSED', 'the cluster was closed before every shard was ready');
    if (failures.length > 0) throw new ClusterConnectError(failures, this._ids.length);
  }

  /** Learn the shard count, gateway URL and identify limits; create the shards (not yet connected). */
  private async prepare(retryRest: boolean): Promise<void> {
    const o = this.options;
    if (this.handlerUrl !== null) await checkHandler(this.handlerUrl, (o.workers ?? 0) === 0);
    let bot: GatewayBot | null = null;
    if (this.apiBase() === null) {
      // gatewayUrl without apiUrl: the token goes to no host the user did not name (no discord.com REST call).
      if (this._total === null) this.setShards(1, [0]);
      this.debugLine(`gatewayUrl is set and apiUrl is not: GET /gateway/bot skipped (no REST call); ${this._total} shard(s), one identify lane, no daily budget check`);
    } else if (this._total === null || !o.gatewayUrl || !o.identifyQueue) bot = retryRest ? await this.fetchGatewayBotRetrying() : await this.fetchGatewayBot();
    if (this._total === null) this.setShards(bot!.shards, range(bot!.shards));
    this._gatewayUrl = o.gatewayUrl ?? bot!.url;
    const limit = bot?.session_start_limit;
    this._maxConcurrency = Math.max(1, limit?.max_concurrency ?? queueLanes(o.identifyQueue));
    const inner =
      o.identifyQueue ??
      new LocalIdentifyQueue({
        clock: this.clock,
        maxConcurrency: this._maxConcurrency,
        window: CLUSTER_IDENTIFY_WINDOW,
        budget: limit ? { total: limit.total, remaining: limit.remaining, resetAfter: limit.reset_after } : undefined,
        onExhausted: o.onIdentifyBudgetExhausted ?? 'error',
        onBudget: (e) => this.onBudget(e),
      });
    this.identifyInner = inner;
    this.identifyTotal = o.identifyQueue ? null : (limit?.total ?? null);
    this.scheduler = new StartupScheduler({
      clock: this.clock,
      inner,
      maxConcurrency: this._maxConcurrency,
      startAhead: o.startAhead ?? 1,
      onTurn: (e) => {
        this.pipeline.guard(() => this.emit('identifyTurn', e));
        this.debugLine(`identify turn: shard ${e.shardId} (lane ${e.lane})`);
      },
      observe: (fn) => this.pipeline.observe(fn),
    });
    this.gate = this.scheduler.gate();
    const input = this.pipeline.input();
    const set = this.place(this._ids, this._total!, input.sink, this.gate, false);
    this.running = { set, input };
    this.syncDebug();
    if (this.pipeline.behind) set.setPaused(true);
  }

  /**
   * Create (not connect) the shards `ids` of `total`, in this thread or spread over the worker threads, all
   * reporting to `sink`. `fresh`: a resharded set (new sessions, the last presence given to updatePresence()).
   */
  private place(ids: number[], total: number, sink: ShardSink, queue: IdentifyQueue, fresh: boolean): Placement {
    return new Placement({
      ids,
      total,
      workers: this.options.workers ?? 0,
      shardOptions: (id) => this.shardOptions(id, total, fresh),
      sink,
      queue,
      clock: this.clock,
      restart: this.workerRestart,
      onWorkerExit: (e) => this.onWorkerExit(e),
      debug: (m) => this.debugLine(m),
      handler: this.handlerUrl === null ? null : { url: this.handlerUrl, errors: this.options.handlerErrors ?? 'report', link: this.linkHandler(fresh ? this.resharder : null) },
      // handler mode: a reshard's new set handles nothing before the overlap dedupe's verdict (docs/RESHARDING.md)
      gated: fresh && this.handlerUrl !== null,
    });
  }

  /**
   * Where the handler's posts, log lines and cluster-level commands arrive (one for every shard set); a reshard's
   * new set also reports its held dispatches, to the reshard that made it (not to a later one).
   */
  private linkHandler(resharder: Resharder | null = null): HostHandlerLink {
    const link = this.baseLink();
    return resharder ? { ...link, held: (shardId, ticket, type, key, fp, burst) => resharder.onNewHeld(shardId, ticket, type, key, fp, burst) } : link;
  }

  private baseLink(): HostHandlerLink {
    this.#handlerLink ??= handlerLink({
      requestGuildMembers: (guildId, options) => this.requestGuildMembers(guildId, options),
      updateVoiceState: (guildId, state) => this.updateVoiceState(guildId, state),
      requestSoundboardSounds: (ids) => this.requestSoundboardSounds(ids),
      send: (shardId, payload) => this.send(shardId, payload),
      message: (e) => this.pipeline.guard(() => this.emit('handlerMessage', e)),
      // A handler may log what it was given (an error, a config): the token never leaves as a log line.
      log: (e) => this.pipeline.guard(() => this.emit('handlerLog', { ...e, message: redact(e.message, this.#token) })),
      handled: (shardId, type) => {
        if (this.listenerCount('dispatchHandled') !== 0) this.pipeline.guard(() => this.emit('dispatchHandled', shardId, type));
      },
      recorded: (key, fp) => this.resharder?.onOldHandled(key, fp),
      held: () => undefined, // only a reshard's new set holds dispatches (see linkHandler)
    });
    return this.#handlerLink;
  }

  /** The running set, when it runs shard `id` (throws otherwise). */
  private route(id: number): Placement {
    const set = this.running?.set;
    if (set?.owner(id)) return set;
    if (this._ids.includes(id)) throw new ShardlineError('NOT_STARTED', `shard ${id} has not been created yet: call connect() first`);
    throw new ShardlineError('UNKNOWN_SHARD', `shard ${id} is not part of this cluster (ids ${describeIds(this._ids)})`);
  }

  private syncDebug(): void {
    this.running?.set.setDebug(this.listenerCount('debug') > 0);
  }

  /** The `events` filter, one checked Set for every shard (workers get it as an array, with `extraEvents`). */
  #events: ReadonlySet<string> | undefined;
  #extraEvents: string[] | undefined;

  /** Full options of one shard (without clock / queue). */
  private shardOptions(id: number, total = this._total!, fresh = false): ShardOptions {
    const o = this.options;
    const per = o.shardOptions?.(id) ?? {};
    return {
      token: this.#token,
      intents: o.intents,
      gatewayUrl: this._gatewayUrl!,
      compression: o.compression,
      events: this.#events as ReadonlySet<EventName> | undefined, // one checked Set shared by every shard of this thread
      extraEvents: this.#extraEvents,
      ...per,
      ...(fresh && this.presence ? { presence: this.presence } : {}),
      id,
      total,
      session: fresh ? null : (this.sessions[id] ?? per.session ?? null),
    };
  }

  private startReshard(total: number | undefined, options: ReshardOptions, reason: 'manual' | 'policy'): Promise<ReshardResult> {
    if (this.closing) return Promise.reject(new ShardlineError('CLUSTER_CLOSED', 'the cluster is closed'));
    if (!this.settled || this._total === null) {
      return Promise.reject(new ShardlineError('NOT_STARTED', 'reshard() needs a cluster whose connect() has settled'));
    }
    if (this.resharder?.active) return Promise.reject(new ShardlineError('RESHARD_IN_PROGRESS', 'a reshard is already running; await it (or abort it) first'));
    if (this._ids.length !== this._total) {
      return Promise.reject(
        new ShardlineError('RESHARD_UNSUPPORTED', `this cluster runs ${this._ids.length} of ${this._total} shards (shards: { ids, total }); resharding needs every shard of the bot in one cluster`),
      );
    }
    this.resharder?.dispose(); // the previous reshard's post-switch dedupe window ends here
    const resharder = new Resharder(this.reshardHost(), total, options, reason);
    this.resharder = resharder;
    const run = resharder.run();
    this.reshardRun = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** `GET /gateway/bot` for a reshard; its `session_start_limit` also refreshes the default queue's budget. */
  private async refreshGatewayBot(): Promise<GatewayBotInfo> {
    const bot = await this.fetchGatewayBot();
    const l = bot.session_start_limit;
    if (!this.options.identifyQueue && this.identifyInner instanceof LocalIdentifyQueue) {
      this.identifyInner.setBudget({ total: l.total, remaining: l.remaining, resetAfter: l.reset_after });
    }
    return bot;
  }

  /** The cluster internals a reshard uses (see reshard.ts). */
  private reshardHost(): ReshardHost {
    return {
      clock: this.clock,
      total: this._total!,
      maxConcurrency: this._maxConcurrency,
      signal: this.abort.signal,
      pipeline: this.pipeline,
      scheduler: this.scheduler!,
      running: () => this.running!,
      localBudget: () => {
        const q = this.identifyInner instanceof LocalIdentifyQueue ? this.identifyInner : null;
        return q && q.remaining !== Infinity ? q.remaining : null;
      },
      fetchGatewayBot: () => this.refreshGatewayBot(),
      createSet: (total, sink, queue) => this.place(range(total), total, sink, queue, true),
      adopt: (set, input) => this.adopt(set, input),
      debug: (m) => this.debugLine(m),
      emit: (e) => this.pipeline.guard(() => this.emit('reshard', e)),
    };
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

  /** The REST base `GET /gateway/bot` may use: `apiUrl`, else discord.com only when no `gatewayUrl` was given either. */
  private apiBase(): string | null {
    return this.options.apiUrl ?? (this.options.gatewayUrl ? null : DEFAULT_API_URL);
  }

  /** `GET /gateway/bot` retried with back-off while it fails for a reason that may pass (network, 5xx, bad body); not a 401. */
  private async fetchGatewayBotRetrying(): Promise<GatewayBot> {
    const backoff = new Backoff();
    for (;;) {
      this.restAttempts++;
      try {
        const bot = await this.fetchGatewayBot();
        this.restError = null;
        return bot;
      } catch (err) {
        if (this.abort.signal.aborted || !(err instanceof GatewayError) || err.code !== 'GATEWAY_BOT_FAILED') throw err;
        this.restError = err;
        const delay = backoff.next();
        this.pipeline.shardError(err, -1);
        this.debugLine(`${err.message}; retrying in ${delay} ms (attempt ${this.restAttempts})`);
        await sleep(this.clock, delay, this.abort.signal);
      }
    }
  }

  private fetchGatewayBot(): Promise<GatewayBot> {
    const base = this.apiBase();
    if (base === null) {
      return Promise.reject(
        new ShardlineError('NO_API_URL', 'GET /gateway/bot needs apiUrl: this cluster has gatewayUrl set and no apiUrl, so it makes no REST call (pass apiUrl, or the shard count)'),
      );
    }
    return fetchGatewayBot(base, this.#token, this.abort.signal, (m) => this.debugLine(m));
  }

  private setShards(total: number, ids: number[]): void {
    if (!Number.isInteger(total) || total < 1) throw new ShardlineError('INVALID_SHARD', `shard count must be an integer >= 1, got ${String(total)}`);
    const seen = new Set<number>();
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= total || seen.has(id)) {
        throw new ShardlineError('INVALID_SHARD', `shard ids must be distinct integers in [0, ${total}), got ${String(id)}`);
      }
      seen.add(id);
    }
    if (ids.length === 0) throw new ShardlineError('INVALID_SHARD', 'no shard ids given');
    this._total = total;
    this._ids = [...ids].sort((a, b) => a - b);
  }

  private onBudget(e: IdentifyBudgetEvent): void {
    const when = `${Math.round(e.resetIn / 60000)} min`;
    const line =
      e.kind === 'refilled'
        ? `identify budget refilled: ${e.remaining}/${e.total}`
        : `identify budget exhausted (0 of ${e.total} left, refills in ${when}): ${e.policy === 'wait' ? 'shards that must IDENTIFY wait for the refill' : 'shards that must IDENTIFY fail with IDENTIFY_BUDGET_EXHAUSTED'}`;
    this.pipeline.guard(() => this.emit('identifyBudget', e));
    this.debugLine(line, this.listenerCount('identifyBudget') === 0);
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

/** Lanes a user's identify queue declares (`maxConcurrency` of LocalIdentifyQueue, RedisIdentifyQueue, ...), else 1. */
function queueLanes(queue: IdentifyQueue | undefined): number {
  const lanes = (queue as { maxConcurrency?: unknown } | undefined)?.maxConcurrency;
  return typeof lanes === 'number' && Number.isInteger(lanes) && lanes >= 1 ? lanes : 1;
}

function range(n: number): number[] {
  return Array.from({ length: Math.max(0, n) }, (_, i) => i);
}

function describeIds(ids: readonly number[]): string {
  if (ids.length === 0) return 'none yet';
  const contiguous = ids.every((id, i) => i === 0 || id === ids[i - 1]! + 1);
  return contiguous ? `${ids[0]}–${ids[ids.length - 1]}` : ids.slice(0, 8).join(', ') + (ids.length > 8 ? ', …' : '');
}
