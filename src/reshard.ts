/**
 * Zero-downtime resharding of a {@link Cluster}: a second shard set with the new shard count identifies next to
 * the running one, its events are withheld (and reconciled with what the running set delivers) until it is
 * complete, then one synchronous switch moves delivery, command routing and status to it and the old set is
 * closed. See `docs/RESHARDING.md` for the dedupe method and its limits.
 *
 * Used through `cluster.reshard()` and `cluster.autoReshard()`; the classes here are exported for tests and
 * for readers, the cluster wires them up.
 * @packageDocumentation
 */
import { sleep, type Clock, type TimerHandle } from './clock.js';
import type { ShardSink } from './cluster-status.js';
import { ShardlineError } from './errors.js';
import { toStateChange, type ShardEvent, type StateChange } from './events.js';
import type { DeliveryPipeline, PipelineInput } from './pipeline.js';
import type { Placement } from './placement.js';
import { abortable, type ApiSessionStartLimit, type IdentifyQueue } from './queue.js';
import { roundUp } from './reshard-policy.js';
import { OverlapStage, type HeldRef } from './reshard-stage.js';
import type { StartupScheduler } from './scheduler.js';
import type { ShardState } from './state.js';

export { OverlapDedupe, fingerprint, routingKey } from './reshard-dedupe.js';
export { ReshardPolicy, roundUp, type PolicyHost } from './reshard-policy.js';

/** States of a running shard that do not hold the switch back (the others: it is reconnecting). */
const SETTLED = new Set<ShardState>(['ready', 'fatal', 'closed', 'idle']);
/** Virtual ms between checks of the switch conditions that no event announces (consumer back-pressure, old shard states). */
const POLL_EVERY = 100;

// ---- public types ---------------------------------------------------------------------------------------

/** Options of `cluster.reshard()`. Durations are virtual ms on the cluster's clock. */
export interface ReshardOptions {
  /** Cancel the reshard: the new set is closed, the running set is left untouched, the promise rejects. */
  signal?: AbortSignal;
  /**
   * Share of the remaining daily session starts (`session_start_limit.remaining`) the new set may use. The
   * reshard needs one IDENTIFY per new shard and refuses to start (`RESHARD_BUDGET`) when
   * `newTotal > floor(remaining * budgetShare)`. Default 1.
   */
  budgetShare?: number;
  /** Give up (and keep the running set) when the new set is not complete after this long. Default: twice its identify windows + 60 s. */
  timeout?: number;
  /** How long a new shard's initial GUILD_CREATE burst may take after its READY before the switch goes ahead anyway. Default 15 000. */
  guildTimeout?: number;
  /**
   * How long the switch may wait for the running set to catch up (see docs/RESHARDING.md: no running shard is
   * reconnecting, the consumer is not behind, and a heartbeat barrier on every running shard). Default 30 000. When
   * it passes, the reshard is aborted (`RESHARD_ABORTED`, nothing switched): switching anyway could lose events only
   * the running set had received.
   */
  catchUpTimeout?: number;
  /** New-set events withheld at most; beyond it the new set stops reading its sockets until the old set catches up. Default 50 000. */
  maxBufferedEvents?: number;
  /** How long after the switch new-set events are still checked against what the old set delivered. Default 30 000. */
  dedupeWindow?: number;
}

/** What a completed reshard did. Counts are dispatches. */
export interface ReshardResult {
  from: number;
  to: number;
  /** Virtual ms from `reshard()` to the switch. */
  elapsed: number;
  /** Real ms the synchronous switch took (delivery of withheld events included). */
  switchDuration: number;
  /** New-set dispatches received before the switch (suppressed session events excluded). */
  received: number;
  /** New-set dispatches dropped because the old set had delivered them (until the result is built). */
  deduplicated: number;
  /** Withheld new-set dispatches delivered at the switch (the old set had not delivered them yet). */
  replayed: number;
  /** New-set READY / RESUMED and initial GUILD_CREATEs not delivered (the user already knows those guilds). */
  suppressed: number;
  /** Old-set dispatches dropped after the switch point (the new set delivers them). */
  droppedOld: number;
  /** Most new-set dispatches withheld at once. */
  maxBuffered: number;
  /** Virtual ms from "every new shard complete" to the switch (the catch-up wait and heartbeat barrier). */
  catchUp: number;
}

/** Payload of the cluster's `reshard` event. */
export type ReshardEvent =
  | { kind: 'started'; from: number; to: number; reason: 'manual' | 'policy' }
  | { kind: 'switched'; from: number; to: number; result: ReshardResult }
  | { kind: 'aborted'; from: number; to: number; error: Error }
  /** The periodic policy decided not to reshard although the threshold was passed (e.g. budget). */
  | { kind: 'skipped'; from: number; to: number; reason: string };

/** Options of `cluster.autoReshard()` / `ClusterOptions.autoReshard`. Durations are virtual ms. */
export interface AutoReshardOptions {
  /** Time between two checks of `GET /gateway/bot`. Default 900 000 (15 min). */
  interval?: number;
  /** Reshard when the bot's guilds divided by the shard count pass this. Default 2000 (Discord closes a shard with 4011 above 2500). */
  guildsPerShard?: number;
  /**
   * Never spend more than this share of the remaining daily session starts on one reshard: a reshard to `n`
   * shards needs `n <= floor(remaining * budgetShare)`, otherwise it is skipped (reported) and retried at the
   * next check. Default 0.5.
   */
  budgetShare?: number;
  /** Options of each reshard the policy starts (its own `budgetShare` wins). */
  reshard?: Omit<ReshardOptions, 'signal' | 'budgetShare'>;
}

// ---- internal contract with the cluster ---------------------------------------------------------------------

/** `GET /gateway/bot`, the parts resharding uses. */
export interface GatewayBotInfo {
  shards: number;
  session_start_limit: ApiSessionStartLimit;
}

/** A shard set built by the cluster for the resharder (internal): where its shards run. */
export type ShardSet = Placement;

/** What the resharder needs from the cluster (internal). */
export interface ReshardHost {
  readonly clock: Clock;
  readonly total: number;
  readonly maxConcurrency: number;
  /** Aborts when the cluster closes. */
  readonly signal: AbortSignal;
  /** The cluster's delivery: the reshard adds the new set's input and its dedupe stage to it. */
  readonly pipeline: DeliveryPipeline;
  /** The cluster's start-up scheduler: the new set comes up through the same lanes and pacing. */
  readonly scheduler: StartupScheduler;
  /** The running set and its pipeline input. */
  running(): { set: ShardSet; input: PipelineInput };
  /** Session starts left according to the cluster's own identify queue (null: unknown / not a local queue). */
  localBudget(): number | null;
  /** Fetch `/gateway/bot` and refresh the cluster's own queue's budget from it. */
  fetchGatewayBot(): Promise<GatewayBotInfo>;
  /** Create (not connect) a set of `total` fresh shards reporting to `sink`, identifying through `queue`. */
  createSet(total: number, sink: ShardSink, queue: IdentifyQueue): ShardSet;
  /** Make `set` (reporting to `input`) the running set, synchronously; returns the previous set. */
  adopt(set: ShardSet, input: PipelineInput): ShardSet;
  debug(message: string): void;
  emit(event: ReshardEvent): void;
}

// ---- the reshard ----------------------------------------------------------------------------------------------

type Phase = 'starting' | 'overlap' | 'switched' | 'done' | 'aborted';

/** Errors a failed reshard rejects with as they are; anything else becomes the cause of a `RESHARD_ABORTED`. */
const PASS_THROUGH = new Set(['RESHARD_ABORTED', 'RESHARD_BUDGET', 'RESHARD_NOOP', 'RESHARD_FAILED', 'INVALID_OPTION', 'INVALID_SHARD']);

/** One reshard of a cluster. Created by `cluster.reshard()`. */
export class Resharder {
  private phase: Phase = 'starting';
  private readonly ac = new AbortController();
  private readonly startedAt: number;
  private from: number;
  private to = 0;
  private set: ShardSet | null = null;
  private input: PipelineInput | null = null;
  private stage: OverlapStage | null = null;
  private readonly timers = new Set<TimerHandle>();
  private waiter: { check: () => boolean; resolve: () => void } | null = null;
  private switchDuration = 0;
  private switchedAt = 0;
  private catchUpStartedAt = 0;
  private readonly options: ReshardOptions;

  constructor(
    private readonly host: ReshardHost,
    private readonly requested: number | undefined,
    options: ReshardOptions,
    private readonly reason: 'manual' | 'policy',
  ) {
    this.options = options;
    this.from = host.total;
    this.startedAt = host.clock.now();
  }

  /** True until the switch or the abort. */
  get active(): boolean {
    return this.phase === 'starting' || this.phase === 'overlap';
  }

  /** Run the reshard. Rejects with `RESHARD_*` errors; the running set is untouched unless it resolves. */
  async run(): Promise<ReshardResult> {
    const userSignal = this.options.signal;
    const userAbort = () => this.abort(asError(userSignal!.reason, 'reshard cancelled'));
    const clusterAbort = () => this.abort(new ShardlineError('CLUSTER_CLOSED', 'the cluster was closed'));
    try {
      if (userSignal?.aborted) throw asError(userSignal.reason, 'reshard cancelled');
      userSignal?.addEventListener('abort', userAbort, { once: true });
      this.host.signal.addEventListener('abort', clusterAbort, { once: true });
      await this.decide();
      this.host.emit({ kind: 'started', from: this.from, to: this.to, reason: this.reason });
      this.host.debug(`reshard ${this.from} → ${this.to}: starting ${this.to} new shards next to the running ${this.from}`);
      this.begin();
      if (this.handling) {
        // Handler mode: the running set reports what its handler finishes from before the first new IDENTIFY on.
        this.recording = true;
        await abortable(this.host.running().set.recordHandled(true), this.ac.signal);
      }
      const timeout = this.options.timeout ?? Math.ceil(this.to / this.host.maxConcurrency) * 5100 * 2 + 60_000;
      this.later(timeout, () => this.abort(new ShardlineError('RESHARD_TIMEOUT', `the new set of ${this.to} shards was not complete after ${Math.round(timeout / 1000)} s`)));
      await this.startAll();
      await this.waitBursts();
      await this.waitCatchUp();
      if (this.handling) {
        // Handler mode: the running set's handlers stop (what they read next is the new set's to handle), and every
        // fingerprint of what they handled is in before the switch releases anything.
        this.frozen = true;
        await abortable(this.host.running().set.freeze(true), this.ac.signal);
      }
      this.switchOver();
      const old = this.oldSet;
      this.oldSet = null;
      await old?.close(false);
      this.phase = 'done';
      const result = this.result();
      this.host.debug(
        `reshard ${this.from} → ${this.to}: done; switch took ${result.switchDuration.toFixed(2)} ms, ${result.replayed} withheld events released, ` +
          `${result.deduplicated} duplicates dropped, ${result.suppressed} session events suppressed`,
      );
      this.host.emit({ kind: 'switched', from: this.from, to: this.to, result });
      return result;
    } catch (err) {
      const error = this.phase === 'switched' || this.phase === 'done' ? (err as Error) : await this.cleanup(err);
      throw error;
    } finally {
      userSignal?.removeEventListener('abort', userAbort);
      this.host.signal.removeEventListener('abort', clusterAbort);
      for (const t of this.timers) this.host.clock.clearTimeout(t);
      this.timers.clear();
      this.waiter = null;
    }
  }

  /** Handler mode: the sets run a handler in their threads; the dedupe works on fingerprints and verdicts. */
  private get handling(): boolean {
    return this.host.running().set.handling;
  }

  private recording = false;
  private frozen = false;

  /** Handler mode: the running set's handler finished a dispatch of `key` / `fp` (reported by its thread). */
  onOldHandled(key: string, fp: number): void {
    if (this.phase === 'overlap') this.stage?.oldHandled(key, fp);
  }

  /** Handler mode: a dispatch of the new set waits in its thread for a verdict. */
  onNewHeld(shardId: number, ticket: number, type: string, key: string, fp: number, burst: boolean): void {
    const ref: HeldRef = { held: true, shardId, ticket };
    if (this.phase === 'aborted') return; // the set is being closed
    if (this.stage) this.stage.onNewHeld(ref, type, key, fp, burst);
    else this.set?.verdict(shardId, ticket, true);
  }

  /** Stop the post-switch dedupe (cluster closing, or the next reshard starting). */
  dispose(): void {
    if (this.active) this.abort(new ShardlineError('CLUSTER_CLOSED', 'the cluster was closed'));
    this.stage?.finish();
  }

  // ---- steps -------------------------------------------------------------------------------------------

  /** The new shard count and the budget check. */
  private async decide(): Promise<void> {
    const share = this.options.budgetShare ?? 1;
    if (!(share > 0 && share <= 1)) throw new ShardlineError('INVALID_OPTION', `budgetShare must be in (0, 1], got ${String(share)}`);
    const req = this.requested;
    if (req !== undefined && (!Number.isInteger(req) || req < 1)) {
      throw new ShardlineError('INVALID_SHARD', `shard count must be an integer >= 1, got ${String(req)}`);
    }
    let bot: GatewayBotInfo | null = null;
    let fetchError: Error | null = null;
    try {
      bot = await abortable(this.host.fetchGatewayBot(), this.ac.signal);
    } catch (err) {
      if (this.ac.signal.aborted) throw this.ac.signal.reason;
      fetchError = err as Error;
    }
    const mc = bot?.session_start_limit.max_concurrency ?? this.host.maxConcurrency;
    if (req === undefined) {
      if (!bot) throw new ShardlineError('RESHARD_FAILED', `cannot learn the recommended shard count: ${fetchError!.message}`, { cause: fetchError });
      this.to = roundUp(bot.shards, mc);
    } else this.to = req;
    if (this.to === this.from) {
      throw new ShardlineError(
        'RESHARD_NOOP',
        `the cluster already runs ${this.from} shards${req === undefined ? ' (the count /gateway/bot recommends, rounded up to a multiple of max_concurrency)' : ''}`,
      );
    }
    const remaining = bot?.session_start_limit.remaining ?? this.host.localBudget();
    if (remaining === null) {
      throw new ShardlineError('RESHARD_BUDGET', `cannot check the identify budget before resharding: GET /gateway/bot failed (${fetchError?.message ?? 'unknown'})`, {
        cause: fetchError,
      });
    }
    const allowed = Math.floor(remaining * share);
    if (this.to > allowed) {
      throw new ShardlineError(
        'RESHARD_BUDGET',
        `resharding to ${this.to} shards needs ${this.to} IDENTIFYs but only ${allowed} may be spent (${remaining} session starts left × budgetShare ${share}); ` +
          `the ${this.from} running shards are untouched. Retry after the budget resets (session_start_limit.reset_after).`,
      );
    }
  }

  /** Build the new set (reporting to the reshard, not the user) and insert the dedupe stage into the pipeline. */
  private begin(): void {
    this.phase = 'overlap';
    const host = this.host;
    const stage = (this.stage = new OverlapStage(host.pipeline, {
      clock: host.clock,
      from: this.from,
      to: this.to,
      maxBufferedEvents: this.options.maxBufferedEvents ?? 50_000,
      dedupeWindow: this.options.dedupeWindow ?? 30_000,
      setNewPaused: (paused) => this.set?.setPaused(paused),
      debug: (m) => host.debug(m),
      kick: () => this.kick(),
      verdict: (ref, handle) => this.set?.verdict(ref.shardId, ref.ticket, handle),
      // handler mode: nothing more to check, the new set's threads handle their dispatches directly
      finished: () => {
        if (this.phase !== 'aborted') this.set?.ungate();
      },
    }));
    const sink: ShardSink = {
      event: (e) => {
        switch (e.kind) {
          case 'dispatch':
            stage.onNew(e.event);
            return;
          case 'ready':
            stage.onNewReady(e.shardId, e.data);
            this.newReady.set(e.shardId, e);
            return;
          case 'guildsReady':
            // The shard's initial burst is over (it follows its GUILD_CREATEs; in handler mode the only sign of them).
            stage.onNewGuildsReady(e.shardId, e.unavailable);
            return;
          case 'state':
            this.onNewState(toStateChange(e));
            return;
          case 'disconnected':
            host.debug(`reshard: new shard ${e.shardId}/${this.to} disconnected (${e.label}; ${e.action})`);
            return;
          case 'error':
            host.debug(`reshard: new shard ${e.shardId}/${this.to}: ${e.error.message}`);
            if (this.set?.state(e.shardId) === 'fatal') this.failed(e.shardId, e.error);
            return;
          default:
            return;
        }
      },
    };
    this.input = host.pipeline.input(sink);
    // The new session cannot exist before its IDENTIFY is sent: old-set deliveries of this shard's keys are
    // recorded from its turn on (earlier ones are certainly old-only, so they are not kept to be confused with).
    this.gate = host.scheduler.gate((id) => stage.dedupe.started.add(id));
    this.set = host.createSet(this.to, this.input.sink, this.gate);
    const clock = host.clock;
    this.every(1000, () => stage.dedupe.expire(clock.now() - (this.options.dedupeWindow ?? 30_000)));
    this.every(POLL_EVERY, () => this.kick());
  }

  private gate: ReturnType<StartupScheduler['gate']> | null = null;

  /** Connect every new shard through the cluster's scheduler (like `connect()`); resolves when all are ready. */
  private async startAll(): Promise<void> {
    const set = this.set!;
    const signal = this.ac.signal;
    const ids = Array.from({ length: this.to }, (_, i) => i);
    await abortable(this.host.scheduler.start(this.gate!, { ids, connect: (id) => set.connect(id), signal, onFailure: (id, err) => this.failed(id, err) }), signal);
    signal.throwIfAborted();
    this.host.debug(`reshard ${this.from} → ${this.to}: every new shard is ready after ${Math.round(this.host.clock.now() - this.startedAt)} ms`);
  }

  /** Wait for the new shards' initial GUILD_CREATE bursts (bounded by `guildTimeout` after each READY). */
  private async waitBursts(): Promise<void> {
    const limit = this.options.guildTimeout ?? 15_000;
    await this.waitUntil(() => !this.stage!.burstsPending(limit));
  }

  /**
   * Wait until the old set has delivered everything the gateway sent it before the last new session existed (bounded
   * by `catchUpTimeout`): no old shard is reconnecting, the consumer is not behind, the keys the new set has withheld
   * events for have been seen in the overlap by the old set, and finally a heartbeat barrier on every old shard —
   * its socket read up to the ACK of a heartbeat sent now (sockets are ordered), so no old-only event is still unread.
   */
  private async waitCatchUp(): Promise<void> {
    const dedupe = this.stage!.dedupe;
    const host = this.host;
    this.catchUpStartedAt = this.host.clock.now();
    let timedOut = false;
    let expire!: () => void;
    const expired = new Promise<void>((resolve) => (expire = resolve));
    const limit = this.options.catchUpTimeout ?? 30_000;
    const timer = this.later(limit, () => {
      timedOut = true;
      expire();
      this.kick();
    });
    for (;;) {
      await this.waitUntil(() => {
        if (timedOut) return true;
        if (host.pipeline.behind) return false;
        const running = host.running().set;
        if (running.ids.some((id) => !SETTLED.has(running.state(id)))) return false;
        // A new shard without a session at the switch would miss what the running set still received (and drops).
        if (!this.newSettled()) return false;
        return dedupe.unaligned() === 0;
      });
      if (timedOut) break;
      const barrier = host
        .running()
        .set.barrier()
        .then(
          () => true,
          (err: Error) => {
            this.host.debug(`reshard: barrier on the running set failed (${err.message}); retrying`);
            return false;
          },
        );
      // The barrier proves the running set; a new shard that lost its session meanwhile waits for another round.
      if ((await abortable(Promise.race([barrier, expired.then(() => false)]), this.ac.signal)) && this.newSettled()) break;
      if (timedOut) break;
      await sleep(this.host.clock, POLL_EVERY, this.ac.signal);
    }
    this.host.clock.clearTimeout(timer);
    this.timers.delete(timer);
    if (timedOut) {
      throw new ShardlineError(
        'RESHARD_ABORTED',
        `reshard ${this.from} → ${this.to} aborted: the running set did not catch up within ${Math.round(limit / 1000)} s ` +
          `(a shard reconnecting, the event consumer stalled, or no heartbeat ACK); nothing was switched — the ${this.from} running shards are untouched`,
      );
    }
  }

  /** Every new shard has a session (none is reconnecting, resuming or identifying again). */
  private newSettled(): boolean {
    const set = this.set!;
    return set.ids.every((id) => SETTLED.has(set.state(id)));
  }

  /** The switch point: synchronous from the first line to the last. */
  private switchOver(): void {
    const t0 = performance.now();
    const host = this.host;
    const stage = this.stage!;
    this.phase = 'switched';
    // 1. The old set stops delivering (its late events were sent to the new set too).
    host.running().input.retire(() => stage.droppedOld++);
    // 2. Routing, status and back-pressure move to the new set, and so does delivery.
    this.input!.promote();
    this.oldSet = host.adopt(this.set!, this.input!);
    // Not paused: a paused socket would not read the close handshake. Its events now go nowhere (step 1).
    this.oldSet.setPaused(false);
    // 3. Withheld events the old set had not delivered, in arrival order; from then on the new set delivers
    //    (still checked against the old set's last deliveries for a while).
    //    Observers of the stream that keep sessions (session stores, brokers) learn the new sessions first.
    for (const ready of this.newReady.values()) host.pipeline.stream(ready);
    this.newReady.clear();
    for (const e of stage.switchOver()) host.pipeline.deliver(e);
    this.switchDuration = performance.now() - t0;
    this.switchedAt = host.clock.now();
  }

  private oldSet: ShardSet | null = null;
  /** The latest READY of each new shard, put on the `shardEvent` stream at the switch. */
  private readonly newReady = new Map<number, ShardEvent>();

  /** Undo everything but the running set; returns the error to reject with. */
  private async cleanup(err: unknown): Promise<Error> {
    this.phase = 'aborted';
    if (!this.ac.signal.aborted) this.ac.abort(err);
    const reason = (this.ac.signal.reason ?? err) as Error;
    const error =
      reason instanceof ShardlineError && PASS_THROUGH.has(reason.code)
        ? reason
        : new ShardlineError('RESHARD_ABORTED', `reshard ${this.from} → ${this.to || '?'} aborted: ${reason?.message ?? String(reason)} — the ${this.from} running shards are untouched`, {
            cause: reason,
          });
    this.stage?.finish();
    this.input?.retire();
    if (this.recording || this.frozen) {
      // Handler mode: the running set goes on as before (best effort: a thread that died meanwhile starts afresh).
      const running = this.host.running().set;
      await Promise.all([running.recordHandled(false), this.frozen ? running.freeze(false) : undefined]).catch(() => undefined);
    }
    if (this.set) await this.set.close(false);
    this.host.debug(`reshard aborted: ${error.message}`);
    if (this.set) this.host.emit({ kind: 'aborted', from: this.from, to: this.to, error });
    return error;
  }

  private onNewState(c: StateChange): void {
    // The shard reports the error right after the state: prefer it (it carries the close code).
    if (c.to === 'fatal') queueMicrotask(() => this.failed(c.shardId, new ShardlineError('SHARD_FATAL', c.reason)));
    this.kick();
  }

  // ---- plumbing -----------------------------------------------------------------------------------------

  /** A new shard stopped for good: the reshard is over. */
  private failed(id: number, err: Error): void {
    this.abort(new ShardlineError('RESHARD_ABORTED', `new shard ${id} of ${this.to} failed: ${err.message} — the ${this.from} running shards are untouched`, { cause: err }));
  }

  private abort(error: Error): void {
    if (!this.active || this.ac.signal.aborted) return;
    this.ac.abort(error);
    this.kick();
  }

  private kick(): void {
    const w = this.waiter;
    if (w && (this.ac.signal.aborted || w.check())) {
      this.waiter = null;
      w.resolve();
    }
  }

  private async waitUntil(check: () => boolean): Promise<void> {
    this.ac.signal.throwIfAborted();
    if (check()) return;
    await new Promise<void>((resolve) => (this.waiter = { check, resolve }));
    this.ac.signal.throwIfAborted();
  }

  private later(ms: number, fn: () => void): TimerHandle {
    const handle = this.host.clock.setTimeout(() => {
      this.timers.delete(handle);
      fn();
    }, ms);
    this.timers.add(handle);
    return handle;
  }

  private every(ms: number, fn: () => void): void {
    const tick = () => {
      fn();
      if (this.active) this.later(ms, tick);
    };
    this.later(ms, tick);
  }

  private result(): ReshardResult {
    const stage = this.stage!;
    const d = stage.dedupe;
    return {
      from: this.from,
      to: this.to,
      elapsed: this.switchedAt - this.startedAt,
      switchDuration: this.switchDuration,
      received: d.received,
      deduplicated: d.deduplicated,
      replayed: stage.replayed,
      suppressed: stage.suppressed,
      droppedOld: stage.droppedOld,
      maxBuffered: d.maxBuffered,
      catchUp: this.switchedAt - this.catchUpStartedAt,
    };
  }
}

function asError(reason: unknown, fallback: string): Error {
  return reason instanceof Error ? reason : new ShardlineError('ABORTED', reason === undefined ? fallback : String(reason));
}
