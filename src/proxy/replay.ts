/**
 * {@link ReplayRing}: the last N dispatches of one upstream shard, kept for client RESUMEs.
 * @packageDocumentation
 */

/** One dispatch kept for replay: its type and its `d` as JSON text (serialised once, shared by every client). */
export interface RingEntry {
  /** Stream position: 1 for the first dispatch the proxy received for this shard, +1 for each one after. */
  readonly pos: number;
  readonly type: string;
  /** The `d` text, or for a reference (`ref`) the small text naming what to build at replay (`{"id":"<guild>"}`). */
  readonly d: string;
  /**
   * True when `d` is a reference: the dispatch's payload is rebuilt from the cache when replayed (a GUILD_CREATE
   * whose guild the cache holds; see {@link ReplayRing.pushRef}). Absent for a dispatch kept whole.
   */
  readonly ref?: true;
}

/** The reference text kept for a GUILD_CREATE of guild `id` (also what intent filtering looks at). */
export const guildRef = (id: string): string => `{"id":${JSON.stringify(id)}}`;

/** The guild id of a reference made by {@link guildRef}, or null when `d` is not one. */
export function refGuild(d: string): string | null {
  try {
    const o = JSON.parse(d) as { id?: unknown };
    return typeof o === 'object' && o !== null && typeof o.id === 'string' ? o.id : null;
  } catch {
    return null;
  }
}

/**
 * A fixed-size ring of one shard's dispatches, addressed by stream position. Positions grow forever (they are not
 * Discord's sequence numbers: upstream re-identifies restart those, the stream position does not); the ring holds
 * positions `oldest..newest`. Memory is bounded by `capacity` entries (their `d` texts are the ones already built
 * for the clients).
 */
export class ReplayRing {
  readonly capacity: number;
  private readonly types: string[];
  private readonly ds: string[];
  /** 1 where the slot holds a reference (see {@link pushRef}). */
  private readonly refs: Uint8Array;
  private next: number;
  /** First position ever stored in this ring (a ring restored after a proxy restart starts later than 1). */
  private readonly first: number;

  constructor(capacity: number, startPos = 1) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`replay ring capacity must be an integer >= 1, got ${capacity}`);
    this.capacity = capacity;
    this.types = new Array<string>(capacity);
    this.ds = new Array<string>(capacity);
    this.refs = new Uint8Array(capacity);
    this.next = startPos;
    this.first = startPos;
  }

  /** Position the next pushed entry gets. */
  get nextPos(): number {
    return this.next;
  }

  /** Position of the newest entry (0 when the stream has none). */
  get newest(): number {
    return this.next - 1;
  }

  /** Position of the oldest entry still held (`newest + 1` when empty). */
  get oldest(): number {
    return Math.max(this.next - this.capacity, this.first);
  }

  /** Entries held. */
  get size(): number {
    return this.next - this.oldest;
  }

  /** Append one dispatch; returns its position. */
  push(type: string, d: string): number {
    return this.put(type, d, 0);
  }

  /**
   * Append one dispatch kept as a reference (`ref`, e.g. {@link guildRef}) instead of its payload: the replay
   * builds it from the cache at that moment. Returns its position.
   */
  pushRef(type: string, ref: string): number {
    return this.put(type, ref, 1);
  }

  private put(type: string, d: string, ref: number): number {
    const pos = this.next++;
    const i = pos % this.capacity;
    this.types[i] = type;
    this.ds[i] = d;
    this.refs[i] = ref;
    return pos;
  }

  private entry(pos: number): RingEntry {
    const i = pos % this.capacity;
    return this.refs[i] === 1 ? { pos, type: this.types[i]!, d: this.ds[i]!, ref: true } : { pos, type: this.types[i]!, d: this.ds[i]! };
  }

  /**
   * Every entry after `pos`, oldest first, or null when some of them are no longer held (the caller then refuses
   * the RESUME). `pos === newest` gives an empty list.
   */
  after(pos: number): RingEntry[] | null {
    if (!Number.isInteger(pos) || pos > this.newest || pos < 0) return null;
    if (pos + 1 < this.oldest) return null;
    const out: RingEntry[] = [];
    for (let p = pos + 1; p <= this.newest; p++) out.push(this.entry(p));
    return out;
  }

  /** The entry at `pos`, or null when it is not held. */
  at(pos: number): RingEntry | null {
    if (!Number.isInteger(pos) || pos < this.oldest || pos > this.newest) return null;
    return this.entry(pos);
  }

  /** Bytes of the `d` texts (a reference's own text, not what it builds) and types held (UTF-16 length; one byte per character for ASCII JSON in V8's one-byte strings). */
  bytes(): number {
    let n = 0;
    for (let p = this.oldest; p <= this.newest; p++) n += this.ds[p % this.capacity]!.length + this.types[p % this.capacity]!.length;
    return n;
  }
}
