/**
 * The stage a reshard inserts into the cluster's {@link DeliveryPipeline}: while the new set comes up, every
 * dispatch the running set delivers is recorded by the {@link OverlapDedupe}; the new set's dispatches are
 * withheld (or dropped as duplicates), its READY / RESUMED and initial GUILD_CREATE burst suppressed. At the
 * switch the withheld events are released, and new-set events are still checked against the old set's last
 * deliveries until none is left (or `dedupeWindow` passes); then the stage removes itself.
 * @packageDocumentation
 */
import type { Clock, TimerHandle } from './clock.js';
import type { DispatchEvent, ReadyData, StateChange } from './events.js';
import type { DeliveryPipeline, DeliveryStage } from './pipeline.js';
import { OverlapDedupe } from './reshard-dedupe.js';

export interface OverlapStageOptions {
  clock: Clock;
  from: number;
  to: number;
  /** New-set events withheld at most before the new set stops reading its sockets. */
  maxBufferedEvents: number;
  /** How long after the switch new-set events are still checked against the old set's deliveries. */
  dedupeWindow: number;
  /** Stop / restart reading the new set's sockets. */
  setNewPaused(paused: boolean): void;
  debug(message: string): void;
  /** Something the reshard waits for may have changed. */
  kick(): void;
  /** Handler mode: the verdict on a new-set dispatch waiting in its thread (true: handle it; false: drop it). */
  verdict?(ref: HeldRef, handle: boolean): void;
  /** The stage left the pipeline (nothing more to check). */
  finished?(): void;
}

/**
 * Handler mode: a new-set dispatch waiting in the lane of the thread that runs its shard, for a verdict from this
 * stage (the main thread sees its routing key and fingerprint only).
 */
export interface HeldRef {
  readonly held: true;
  readonly shardId: number;
  /** The thread's name for the waiting dispatch (not its sequence, which restarts when the shard IDENTIFYs again). */
  readonly ticket: number;
}

const isRef = (x: DispatchEvent | HeldRef): x is HeldRef => (x as HeldRef).held === true;

/** The reshard's de-duplication, as a pipeline stage. Inserted on creation. */
export class OverlapStage implements DeliveryStage {
  readonly dedupe: OverlapDedupe<DispatchEvent | HeldRef>;
  /** New-set READY / RESUMED and initial GUILD_CREATEs not delivered. */
  suppressed = 0;
  /** Old-set dispatches dropped after the switch. */
  droppedOld = 0;
  /** Withheld events released at the switch. */
  replayed = 0;
  readonly #o: OverlapStageOptions;
  readonly #bursts = new Map<number, { guilds: Set<string>; readyAt: number }>();
  #switched = false;
  #newPaused = false;
  #timer: TimerHandle | undefined;
  #remove: (() => void) | null;

  constructor(pipeline: DeliveryPipeline, o: OverlapStageOptions) {
    this.#o = o;
    this.dedupe = new OverlapDedupe<DispatchEvent | HeldRef>(o.from, o.to, (item) => {
      if (isRef(item)) o.verdict?.(item, false);
    });
    this.#remove = pipeline.insert(this);
  }

  /** A dispatch about to be delivered: from the running set before the switch, from the new set after it. */
  admit(e: DispatchEvent): boolean {
    const dedupe = this.dedupe;
    if (!this.#switched) {
      dedupe.old(e, this.#o.clock.now());
      this.#unpauseIfDrained();
      this.#o.kick();
      return true;
    }
    const pass = dedupe.pass(e);
    if (dedupe.oldSize === 0) this.finish();
    return pass;
  }

  stateChanged(change: StateChange): void {
    if (this.#switched) return;
    // A running shard starts a new session: what the gateway sent while it had none reached the new set only.
    if (change.to === 'identifying' && !this.dedupe.reidentified.has(change.shardId)) {
      this.dedupe.reidentified.add(change.shardId);
      this.#o.debug(`reshard: running shard ${change.shardId} identifies again during the overlap; its keys' events are matched without discarding`);
    }
    this.#o.kick();
  }

  /** Handler mode: the running set handled an event of `key` / `fp` (reported by its thread), before the switch. */
  oldHandled(key: string, fp: number): void {
    if (this.#switched || this.#remove === null) return;
    this.dedupe.oldKeyed(key, fp, this.#o.clock.now());
    this.#unpauseIfDrained();
    this.#o.kick();
  }

  /**
   * Handler mode: a new-set dispatch waits in its thread. Before the switch it is suppressed (READY, RESUMED, the
   * initial burst: `burst`, as its thread saw it from the READY), dropped as a duplicate or withheld (its verdict
   * comes later); after it, checked against the old set's last deliveries.
   */
  onNewHeld(ref: HeldRef, type: string, key: string, fp: number, burst: boolean): void {
    const verdict = this.#o.verdict!;
    if (this.#remove === null) return verdict(ref, true);
    if (this.#switched) {
      verdict(ref, this.dedupe.passKeyed(key, fp));
      if (this.dedupe.oldSize === 0) this.finish();
      return;
    }
    if (type === 'READY' || type === 'RESUMED') {
      this.suppressed++;
      return verdict(ref, false);
    }
    if (burst) {
      this.#bursts.get(ref.shardId)?.guilds.delete(key);
      this.suppressed++;
      this.#o.kick();
      return verdict(ref, false);
    }
    if (!this.dedupe.withholdKeyed(key, fp, ref)) verdict(ref, false);
    else this.#withheld();
    this.#o.kick();
  }

  /** A new-set dispatch before the switch: suppressed, dropped as a duplicate, or withheld. */
  onNew(e: DispatchEvent): void {
    const type = e.type as string;
    if (type === 'READY' || type === 'RESUMED') {
      this.suppressed++;
      return;
    }
    if (type === 'GUILD_CREATE' || (type === 'GUILD_DELETE' && (e.data as { unavailable?: boolean }).unavailable === true)) {
      const burst = this.#bursts.get(e.shardId);
      if (burst?.guilds.delete((e.data as { id: string }).id)) {
        this.suppressed++;
        this.#o.kick();
        return;
      }
    }
    if (this.dedupe.withhold(e)) this.#withheld();
    this.#o.kick();
  }

  #withheld(): void {
    const dedupe = this.dedupe;
    if (!this.#newPaused && dedupe.buffered >= this.#o.maxBufferedEvents) {
      this.#newPaused = true;
      this.#o.debug(`reshard: ${dedupe.buffered} new-set events withheld; the new set stops reading until the running set catches up`);
      this.#o.setNewPaused(true);
    }
  }

  /** A new shard is READY: the guilds it lists arrive as its initial GUILD_CREATE burst. */
  onNewReady(id: number, data: ReadyData): void {
    this.#bursts.set(id, { guilds: new Set(data.guilds.map((g) => g.id)), readyAt: this.#o.clock.now() });
  }

  /**
   * A new shard reported `guildsReady`: of its initial burst only `unavailable` is still missing. (It follows the
   * shard's GUILD_CREATEs, so this changes nothing when they were seen here; in handler mode they are not.)
   */
  onNewGuildsReady(id: number, unavailable: readonly string[]): void {
    const burst = this.#bursts.get(id);
    if (!burst) return;
    burst.guilds = new Set(unavailable.filter((g) => burst.guilds.has(g)));
    this.#o.kick();
  }

  /** Some new shard's initial burst is still arriving (for at most `limit` ms after its READY). */
  burstsPending(limit: number): boolean {
    const now = this.#o.clock.now();
    for (const b of this.#bursts.values()) if (b.guilds.size > 0 && now - b.readyAt < limit) return true;
    return false;
  }

  /**
   * The switch (called synchronously, after the pipeline's inputs were swapped): returns the withheld events the
   * old set had not delivered, in arrival order, for the caller to deliver; from now on `admit` sees new-set events.
   */
  switchOver(): DispatchEvent[] {
    this.#switched = true;
    this.#newPaused = false;
    const all = this.dedupe.release();
    this.replayed = all.length;
    const released: DispatchEvent[] = [];
    for (const x of all) {
      if (isRef(x)) this.#o.verdict?.(x, true);
      else released.push(x);
    }
    if (this.dedupe.oldSize > 0) this.#timer = this.#o.clock.setTimeout(() => this.finish(), this.#o.dedupeWindow);
    else this.finish();
    return released;
  }

  /** Leave the pipeline and forget everything (post-switch window over, reshard aborted, or cluster closing). */
  finish(): void {
    this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    const was = this.#remove;
    this.#remove?.();
    this.#remove = null;
    // Withheld references still waiting (a reshard aborted before the switch): their set is being closed.
    this.dedupe.clear();
    if (was) this.#o.finished?.();
  }

  #unpauseIfDrained(): void {
    if (this.#newPaused && this.dedupe.buffered <= this.#o.maxBufferedEvents >> 1) {
      this.#newPaused = false;
      this.#o.setNewPaused(false);
    }
  }
}
