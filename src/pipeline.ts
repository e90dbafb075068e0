/**
 * The path from shard events to the cluster's user: every shard set reports into a {@link PipelineInput}; the
 * pipeline turns what the delivering sets report into cluster events (`dispatch`, `shardStateChange`, `ready`, ...),
 * feeds the bounded `events()` channels and turns their back-pressure into `setPaused` on the running shards.
 *
 * A reshard does not rewrite any of this: it adds a second input whose events are diverted to it (the new set),
 * inserts a {@link DeliveryStage} that sees every dispatch before it is delivered (the overlap de-duplication),
 * and at its switch promotes the new input and retires the old one.
 * @packageDocumentation
 */
import { EventChannel } from './channel.js';
import type { Clock } from './clock.js';
import type { ClusterEventMap, ShardSink } from './cluster-status.js';
import type { TypedEmitter } from './emitter.js';
import { ShardlineError } from './errors.js';
import { toDisconnectedEvent, toStateChange, type DispatchEvent, type GuildsReadyEvent, type ShardEvent, type StateChange } from './events.js';
import type { ShardState } from './state.js';

/** The running shard set, as the pipeline sees it: where states are read and back-pressure is applied. */
export interface RunningShards {
  readonly ids: readonly number[];
  state(shardId: number): ShardState;
  setPaused(paused: boolean): void;
  /** The shard's status (its guild count, for a shard that resumed a session and so loads no guilds). */
  status?(shardId: number): { guilds?: number };
}

/** What the pipeline needs from the cluster. */
export interface PipelineOutput {
  readonly clock: Clock;
  /** Where cluster events are emitted (the cluster itself). */
  readonly emitter: TypedEmitter<ClusterEventMap>;
  /** The running set (null before `connect()` created it). */
  running(): RunningShards | null;
  /** A cluster-level debug line. */
  debug(message: string): void;
}

/** A stage inserted into the pipeline (a reshard's de-duplication). */
export interface DeliveryStage {
  /** A dispatch of a delivering set, before it is delivered: false drops it. */
  admit(event: DispatchEvent): boolean;
  /** A state change of a delivering set, after it was delivered. */
  stateChanged?(change: StateChange): void;
}

type Mode = 'deliver' | 'divert' | 'retired';

/** Where one shard set reports. `sink` is what its backends call; the pipeline decides where that goes. */
export class PipelineInput {
  readonly sink: ShardSink;
  #mode: Mode;
  #divert: ShardSink | null;
  #onDropped: (() => void) | null = null;

  constructor(pipeline: DeliveryPipeline, divert: ShardSink | null) {
    this.#mode = divert ? 'divert' : 'deliver';
    this.#divert = divert;
    const p = pipeline;
    this.sink = {
      event: (e) => {
        if (this.#mode === 'deliver') p.event(e);
        else if (this.#mode === 'divert') this.#divert!.event(e);
        else if (e.kind === 'dispatch') this.#onDropped?.();
      },
    };
  }

  get mode(): Mode {
    return this.#mode;
  }

  /** From now on this set's events are delivered. */
  promote(): void {
    this.#mode = 'deliver';
    this.#divert = null;
  }

  /** From now on this set's events go nowhere (`onDropped` counts its dispatches). */
  retire(onDropped?: () => void): void {
    this.#mode = 'retired';
    this.#divert = null;
    this.#onDropped = onDropped ?? null;
  }

  /** Deliver this set's events again (an aborted reshard restores the running set's input). */
  restore(): void {
    this.promote();
    this.#onDropped = null;
  }
}

/** Shard events → cluster events and `events()` channels, with back-pressure. One per cluster. */
export class DeliveryPipeline {
  readonly #out: PipelineOutput;
  readonly #bufferSize: number;
  readonly #channels = new Set<EventChannel<DispatchEvent>>();
  readonly #stages: DeliveryStage[] = [];
  readonly #observers = new Set<(change: StateChange) => void>();
  #pressure = 0;
  /** Held by {@link hold} (one unit of pressure). */
  #held = false;
  #ended = false;
  #readyReported = false;
  #startedAt = 0;
  /** Each running shard's `guildsReady` until the cluster's own is emitted (then null: once per cluster). */
  #guilds: Map<number, GuildsReadyEvent> | null = new Map();
  /** Shards seen sending READY while guilds load: their own `guildsReady` follows (a RESUME does not end the wait). */
  #identified: Set<number> | null = new Set();
  #guildsWaiters: { resolve: () => void; reject: (e: Error) => void }[] | null = null;

  constructor(out: PipelineOutput, bufferSize: number) {
    this.#out = out;
    this.#bufferSize = bufferSize;
  }

  /** The consumer is behind: the running shards do not read their sockets. */
  get behind(): boolean {
    return this.#pressure > 0;
  }

  /**
   * Pause every running shard (true) until released (false), besides the `events()` channels' back-pressure: the
   * gateway proxy's handler when it is behind. Applied to a reshard's new set too (see {@link behind}).
   */
  hold(held: boolean): void {
    if (held === this.#held || this.#ended) return;
    this.#held = held;
    this.#setPressure(held ? 1 : -1);
  }

  /** A new `events()` iterator (see `Cluster.events()`). */
  events(): AsyncIterableIterator<DispatchEvent> {
    // The channel reports only transitions (full, then drained to half), so each one is one unit of pressure.
    const channel: EventChannel<DispatchEvent> = new EventChannel<DispatchEvent>(
      this.#bufferSize,
      (full) => this.#setPressure(full ? 1 : -1),
      () => this.#channels.delete(channel),
    );
    if (this.#ended) channel.end();
    else this.#channels.add(channel);
    return channel.iterator();
  }

  /** An input for one shard set: delivered, or (with `divert`) reported to `divert` until promoted. */
  input(divert: ShardSink | null = null): PipelineInput {
    return new PipelineInput(this, divert);
  }

  /** Insert a stage; returns its removal. */
  insert(stage: DeliveryStage): () => void {
    this.#stages.push(stage);
    return () => {
      const i = this.#stages.indexOf(stage);
      if (i >= 0) this.#stages.splice(i, 1);
    };
  }

  /** Be told about every delivered state change; returns the removal. */
  observe(fn: (change: StateChange) => void): () => void {
    this.#observers.add(fn);
    return () => this.#observers.delete(fn);
  }

  /**
   * Put one event on the `shardEvent` stream only (not on the named events): e.g. the READY of a resharded set's
   * shard at the switch, which observers that keep sessions need but users (who know those guilds) do not.
   */
  stream(e: ShardEvent): void {
    if (this.#out.emitter.listenerCount('shardEvent') !== 0) this.guard(() => this.#out.emitter.emit('shardEvent', e));
  }

  /** A `connect()` starts: `ready` is emitted once every running shard is ready. */
  expectReady(startedAt: number): void {
    this.#startedAt = startedAt;
    this.#readyReported = false;
  }

  /** The cluster's `guildsReady` was emitted. */
  get guildsReady(): boolean {
    return this.#guilds === null;
  }

  /** Resolves once the cluster's `guildsReady` is emitted; rejects with `error` when the pipeline ends first. */
  whenGuildsReady(): Promise<void> {
    if (this.#guilds === null) return Promise.resolve();
    if (this.#ended) return Promise.reject(new ShardlineError('CLUSTER_CLOSED', 'the cluster was closed before its guilds were loaded'));
    return new Promise((resolve, reject) => (this.#guildsWaiters ??= []).push({ resolve, reject }));
  }

  /** Emit the cluster's `guildsReady` (shardId -1, the sums) once every running shard reported its own (or is fatal). */
  #checkGuilds(): void {
    const seen = this.#guilds;
    const running = this.#out.running();
    if (seen === null || seen.size === 0 || !running) return;
    for (const id of running.ids) if (!seen.has(id) && running.state(id) !== 'fatal') return;
    let guilds = 0;
    const unavailable: string[] = [];
    for (const id of running.ids) {
      const e = seen.get(id);
      if (!e) continue;
      guilds += e.guilds;
      for (const g of e.unavailable) unavailable.push(g);
    }
    this.#guilds = null;
    this.#identified = null;
    const event: GuildsReadyEvent = { shardId: -1, guilds, unavailable };
    this.guard(() => this.#out.emitter.emit('guildsReady', event));
    const waiters = this.#guildsWaiters;
    this.#guildsWaiters = null;
    if (waiters) for (const w of waiters) w.resolve();
  }

  /**
   * A shard that resumed a session it did not start here (given in `sessions`, or after its worker thread died)
   * loads no guilds and reports no `guildsReady`: its guilds count as loaded (those the cluster knows of).
   */
  #resumedGuilds(shardId: number): void {
    const seen = this.#guilds;
    if (seen === null || seen.has(shardId) || this.#identified?.has(shardId)) return;
    const guilds = this.#out.running()?.status?.(shardId).guilds ?? 0;
    seen.set(shardId, { shardId, guilds, unavailable: [] });
    this.#checkGuilds();
  }

  /** Emit `ready` if every running shard is ready and it was not emitted for this `connect()` yet. */
  checkReady(): void {
    if (this.#readyReported) return;
    const running = this.#out.running();
    if (!running) return;
    const ids = running.ids;
    for (let i = ids.length - 1; i >= 0; i--) if (running.state(ids[i]!) !== 'ready') return;
    this.#readyReported = true;
    this.guard(() => this.#out.emitter.emit('ready', { shards: ids.length, elapsed: this.#out.clock.now() - this.#startedAt }));
  }

  /**
   * Deliver one dispatch to the consumer (the `shardEvent` stream, channels and `dispatch` listeners), past every
   * stage. `streamed`: the stream event it came in as (built when absent, e.g. for the events a reshard releases).
   */
  deliver(event: DispatchEvent, streamed?: ShardEvent): void {
    const emitter = this.#out.emitter;
    if (emitter.listenerCount('shardEvent') !== 0) this.stream(streamed ?? { kind: 'dispatch', shardId: event.shardId, event });
    for (const ch of this.#channels) ch.push(event);
    if (emitter.listenerCount('dispatch') === 0) return;
    try {
      emitter.emit('dispatch', event);
    } catch (err) {
      this.shardError(new ShardlineError('LISTENER_ERROR', `a dispatch listener threw: ${(err as Error)?.message ?? String(err)}`, { cause: err }), event.shardId);
    }
  }

  /** The cluster closes: channels end after their buffered events, nothing is paused any more. */
  end(): void {
    this.#ended = true;
    for (const ch of this.#channels) ch.end();
    this.#channels.clear();
    this.#observers.clear();
    this.#pressure = 0;
    this.#held = false;
    const waiters = this.#guildsWaiters;
    this.#guildsWaiters = null;
    if (waiters) for (const w of waiters) w.reject(new ShardlineError('CLUSTER_CLOSED', 'the cluster was closed before its guilds were loaded'));
  }

  /** Run a listener call; a throwing listener is reported, never thrown into a shard's socket handler. */
  guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.shardError(new ShardlineError('LISTENER_ERROR', `a cluster listener threw: ${(err as Error)?.message ?? String(err)}`, { cause: err }), -1);
    }
  }

  shardError(error: Error, shardId: number): void {
    try {
      this.#out.emitter.emit('shardError', error, shardId);
    } catch {
      // a throwing error listener must not break the shard that reported
    }
  }

  // ---- what a delivering input reports (called by PipelineInput) ----------------------------------------

  /** One event of a delivering shard: the `shardEvent` stream, and the named cluster events that are views of it. @internal */
  event(e: ShardEvent): void {
    const emitter = this.#out.emitter;
    if (e.kind === 'dispatch') {
      const stages = this.#stages;
      for (let i = 0; i < stages.length; i++) if (!stages[i]!.admit(e.event)) return;
      this.deliver(e.event, e);
      return;
    }
    if (emitter.listenerCount('shardEvent') !== 0) this.guard(() => emitter.emit('shardEvent', e));
    switch (e.kind) {
      case 'ready':
        this.#identified?.add(e.shardId);
        this.guard(() => emitter.emit('shardReady', e.shardId, e.data));
        this.checkReady();
        return;
      case 'resumed':
        this.guard(() => emitter.emit('shardResumed', e.shardId, e.session));
        this.checkReady();
        this.#resumedGuilds(e.shardId);
        return;
      case 'state': {
        const change = toStateChange(e);
        this.guard(() => emitter.emit('shardStateChange', change));
        for (const fn of this.#observers) this.guard(() => fn(change));
        for (const s of this.#stages) s.stateChanged?.(change);
        if (this.#guilds !== null) {
          // A new thread's shard resumes and does not continue the dead thread's wait for guilds.
          if (e.cause.kind === 'worker-exit') this.#identified?.delete(e.shardId);
          if (e.to === 'fatal') this.#checkGuilds();
        }
        return;
      }
      case 'guildsReady':
        if (this.#guilds === null) return;
        this.#guilds.set(e.shardId, e);
        this.#checkGuilds();
        return;
      case 'disconnected': {
        const event = toDisconnectedEvent(e);
        this.guard(() => emitter.emit('shardDisconnected', event));
        return;
      }
      case 'error':
        this.shardError(e.error, e.shardId);
        if (this.#out.running()?.state(e.shardId) === 'fatal') this.guard(() => emitter.emit('error', e.error));
        return;
      case 'debug':
        this.guard(() => emitter.emit('debug', { shardId: e.shardId, message: e.message }));
        return;
      default:
        return; // heartbeats, rateLimited, silent: only on the shardEvent stream
    }
  }

  #setPressure(delta: number): void {
    const before = this.#pressure > 0;
    this.#pressure = Math.max(0, this.#pressure + delta);
    const after = this.#pressure > 0;
    if (before === after) return;
    this.#out.debug(after ? 'event consumer is behind: pausing every shard' : 'event consumer caught up: resuming every shard');
    this.#out.running()?.setPaused(after);
  }
}
