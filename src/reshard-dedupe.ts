/**
 * The overlap de-duplication of a reshard, independent of sockets: events are matched by routing key and content
 * fingerprint between the running set and the new set (see docs/RESHARDING.md, "Dedupe").
 * @packageDocumentation
 */
import type { DispatchEvent } from './events.js';

/** Old-set fingerprints kept per routing key while the new set has not seen them. */
const MAX_OLD_PER_KEY = 4096;

/** Routing key of a dispatch: its guild id, or `#<shardId>` for events without a guild (DMs go to shard 0). */
export function routingKey(e: DispatchEvent): string {
  const d = e.data as { guild_id?: unknown; id?: unknown } | null;
  if (d !== null && typeof d === 'object') {
    if (typeof d.guild_id === 'string') return d.guild_id;
    if ((e.type === 'GUILD_CREATE' || e.type === 'GUILD_UPDATE' || e.type === 'GUILD_DELETE') && typeof d.id === 'string') return d.id;
  }
  return `#${e.shardId}`;
}

/**
 * Content fingerprint of a dispatch: a 53-bit hash of its type and `JSON.stringify(data)` (shard id and sequence
 * excluded — they differ between the two sessions that receive the same event).
 */
export function fingerprint(e: DispatchEvent): number {
  return hash53(`${e.type}\u0000${JSON.stringify(e.data) ?? ''}`);
}

function hash53(s: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

interface Withheld<T> {
  item: T;
  key: string;
  fp: number;
  dropped: boolean;
}

interface OldSeen {
  fp: number;
  at: number;
}

/** `(id >> 22) % total` of a snowflake routing key; -1 when the key is not a snowflake. */
function snowflakeShard(key: string, total: number): number {
  try {
    return Number((BigInt(key) >> 22n) % BigInt(total));
  } catch {
    return -1;
  }
}

/**
 * The overlap bookkeeping, independent of sockets. Per routing key it keeps two queues: `newAhead`, new-set events
 * the old set has not delivered yet (withheld), and `oldAhead`, fingerprints of old-set deliveries the new set has
 * not received yet. Every arriving event is first matched against the other side's queue:
 *
 * - old event matches a withheld new event: that new event is dropped (delivered once, by the old set);
 * - new event matches an old fingerprint: dropped; older old fingerprints of that key are discarded (the gateway
 *   sent them to the old session only, before the new session existed — per-key order makes that certain);
 * - new event matches nothing: the old fingerprints of that key are discarded for the same reason and the event is
 *   withheld.
 *
 * At the switch the old set stops delivering, the still-withheld events are released in arrival order, and new
 * events keep being matched against the remaining old fingerprints until those run out (or `dedupeWindow`).
 */
export class OverlapDedupe<T = DispatchEvent> {
  private readonly newAhead = new Map<string, Withheld<T>[]>();
  private withheld: Withheld<T>[] = [];
  private droppedInList = 0;
  private readonly oldAhead = new Map<string, OldSeen[]>();
  private readonly aligned = new Set<string>();
  private readonly routes = new Map<string, number>();
  /** New shards whose IDENTIFY turn came: old events of their keys are recorded from then on. */
  readonly started = new Set<number>();
  /**
   * Old shards that started a new session (IDENTIFY again) during the overlap. Events the gateway sent while such a
   * shard had no session reached the new set only, so for its keys "the new set got an event the old set did not
   * deliver" no longer proves the old fingerprints before it old-only: they are kept (until matched or expired).
   */
  readonly reidentified = new Set<number>();
  buffered = 0;
  maxBuffered = 0;
  oldSize = 0;
  received = 0;
  deduplicated = 0;

  /**
   * `T`: what is withheld (the events; in handler mode, references to events waiting in the new set's workers).
   * `onDrop`: a withheld item was dropped because the old set delivered it.
   */
  constructor(
    readonly from: number,
    readonly to: number,
    private readonly onDrop?: (item: T) => void,
  ) {}

  /** The new shard a key routes to, or null when the new set has no counterpart (a `#id` key with id >= to). */
  newShardOf(key: string): number | null {
    if (key.charCodeAt(0) === 35 /* # */) {
      const id = Number(key.slice(1));
      return id < this.to ? id : null;
    }
    let shard = this.routes.get(key);
    if (shard === undefined) {
      shard = snowflakeShard(key, this.to);
      if (this.routes.size > 1_000_000) this.routes.clear();
      this.routes.set(key, shard);
    }
    return shard < 0 ? null : shard;
  }

  /** The old shard a key routes to (-1: not a snowflake). */
  oldShardOf(key: string): number {
    return key.charCodeAt(0) === 35 /* # */ ? Number(key.slice(1)) : snowflakeShard(key, this.from);
  }

  /** Whether the old set receives this key's events at all (`#id` keys only exist on old shards below `from`). */
  hasOldCounterpart(key: string): boolean {
    return key.charCodeAt(0) !== 35 || Number(key.slice(1)) < this.from;
  }

  /** The old set delivered `e` (called before it is delivered). */
  old(e: DispatchEvent, now: number): void {
    const key = routingKey(e);
    const n = this.newShardOf(key);
    if (n === null || !this.started.has(n)) return;
    this.oldKeyed(key, fingerprint(e), now);
  }

  /** The old set delivered (handler mode: handled) an event of routing key `key` and fingerprint `fp`. */
  oldKeyed(key: string, fp: number, now: number): void {
    const n = this.newShardOf(key);
    if (n === null || !this.started.has(n)) return;
    const q = this.newAhead.get(key);
    if (q) {
      const i = q.findIndex((w) => w.fp === fp);
      if (i >= 0) {
        const w = q[i]!;
        q.splice(i, 1);
        if (q.length === 0) this.newAhead.delete(key);
        w.dropped = true;
        this.droppedInList++;
        this.buffered--;
        this.deduplicated++;
        this.aligned.add(key);
        this.compact();
        this.onDrop?.(w.item);
        return;
      }
    }
    let o = this.oldAhead.get(key);
    if (!o) this.oldAhead.set(key, (o = []));
    o.push({ fp, at: now });
    this.oldSize++;
    if (o.length > MAX_OLD_PER_KEY) {
      o.shift();
      this.oldSize--;
    }
  }

  /** A new-set event before the switch: true when it was withheld (false: already delivered by the old set). */
  withhold(e: DispatchEvent & T): boolean {
    return this.withholdKeyed(routingKey(e), fingerprint(e), e);
  }

  /** {@link withhold} by routing key and fingerprint, withholding `item`. */
  withholdKeyed(key: string, fp: number, item: T): boolean {
    this.received++;
    if (this.matchOld(key, fp)) return false;
    const w: Withheld<T> = { item, key, fp, dropped: false };
    let q = this.newAhead.get(key);
    if (!q) this.newAhead.set(key, (q = []));
    q.push(w);
    this.withheld.push(w);
    this.buffered++;
    if (this.buffered > this.maxBuffered) this.maxBuffered = this.buffered;
    return true;
  }

  /** After the switch: true when `e` must be delivered. */
  pass(e: DispatchEvent): boolean {
    if (this.oldSize === 0) return true;
    const key = routingKey(e);
    if (!this.oldAhead.has(key)) return true;
    return !this.matchOld(key, fingerprint(e));
  }

  /** {@link pass} by routing key and fingerprint. */
  passKeyed(key: string, fp: number): boolean {
    if (this.oldSize === 0 || !this.oldAhead.has(key)) return true;
    return !this.matchOld(key, fp);
  }

  /** Keys with withheld events whose overlap the old set has not reached yet (it may still owe older events of them). */
  unaligned(): number {
    let n = 0;
    for (const key of this.newAhead.keys()) {
      // A re-identified old shard never delivers what it missed: its keys' withheld events may stay unmatched
      // (the barrier still proves it delivered everything it received).
      if (this.hasOldCounterpart(key) && !this.aligned.has(key) && (this.reidentified.size === 0 || !this.reidentified.has(this.oldShardOf(key)))) n++;
    }
    return n;
  }

  /** The switch: every still-withheld event, in arrival order; the withheld state is cleared. */
  release(): T[] {
    const out: T[] = [];
    for (const w of this.withheld) if (!w.dropped) out.push(w.item);
    this.withheld = [];
    this.newAhead.clear();
    this.droppedInList = 0;
    this.buffered = 0;
    return out;
  }

  /** Forget old fingerprints older than `before` (clock time). */
  expire(before: number): void {
    for (const [key, o] of this.oldAhead) {
      let i = 0;
      while (i < o.length && o[i]!.at < before) i++;
      if (i === 0) continue;
      o.splice(0, i);
      this.oldSize -= i;
      if (o.length === 0) this.oldAhead.delete(key);
    }
  }

  clear(): void {
    this.release();
    this.oldAhead.clear();
    this.oldSize = 0;
    this.aligned.clear();
    this.routes.clear();
    this.reidentified.clear();
  }

  /** Match a new event against the old fingerprints of its key; discards the ones it proves old-only. */
  private matchOld(key: string, fp: number): boolean {
    const o = this.oldAhead.get(key);
    if (!o) return false;
    const i = o.findIndex((s) => s.fp === fp);
    if (i >= 0) {
      o.splice(0, i + 1);
      this.oldSize -= i + 1;
      if (o.length === 0) this.oldAhead.delete(key);
      this.deduplicated++;
      this.aligned.add(key);
      return true;
    }
    // A re-identified old shard missed events the new set got: the old fingerprints may still come (keep them).
    if (this.reidentified.size !== 0 && this.reidentified.has(this.oldShardOf(key))) return false;
    // The old set delivered these and the new set got a later event first: they never reach the new set.
    this.oldSize -= o.length;
    this.oldAhead.delete(key);
    return false;
  }

  private compact(): void {
    if (this.droppedInList > 1024 && this.droppedInList * 2 > this.withheld.length) {
      this.withheld = this.withheld.filter((w) => !w.dropped);
      this.droppedInList = 0;
    }
  }
}
