/**
 * {@link ReplayRing}: the last N dispatches of one upstream shard, kept for client RESUMEs.
 * @packageDocumentation
 */

/** One dispatch kept for replay: its type and its `d` as JSON text (serialised once, shared by every client). */
export interface RingEntry {
  /** Stream position: 1 for the first dispatch the proxy received for this shard, +1 for each one after. */
  readonly pos: number;
  readonly type: string;
  readonly d: string;
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
  private next: number;
  /** First position ever stored in this ring (a ring restored after a proxy restart starts later than 1). */
  private readonly first: number;

  constructor(capacity: number, startPos = 1) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`replay ring capacity must be an integer >= 1, got ${capacity}`);
    this.capacity = capacity;
    this.types = new Array<string>(capacity);
    this.ds = new Array<string>(capacity);
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
    const pos = this.next++;
    const i = pos % this.capacity;
    this.types[i] = type;
    this.ds[i] = d;
    return pos;
  }

  /**
   * Every entry after `pos`, oldest first, or null when some of them are no longer held (the caller then refuses
   * the RESUME). `pos === newest` gives an empty list.
   */
  after(pos: number): RingEntry[] | null {
    if (!Number.isInteger(pos) || pos > this.newest || pos < 0) return null;
    if (pos + 1 < this.oldest) return null;
    const out: RingEntry[] = [];
    for (let p = pos + 1; p <= this.newest; p++) {
      const i = p % this.capacity;
      out.push({ pos: p, type: this.types[i]!, d: this.ds[i]! });
    }
    return out;
  }

  /** The entry at `pos`, or null when it is not held. */
  at(pos: number): RingEntry | null {
    if (!Number.isInteger(pos) || pos < this.oldest || pos > this.newest) return null;
    const i = pos % this.capacity;
    return { pos, type: this.types[i]!, d: this.ds[i]! };
  }

  /** Bytes of the `d` texts held (UTF-16 length; one byte per character for ASCII JSON in V8's one-byte strings). */
  bytes(): number {
    let n = 0;
    for (let p = this.oldest; p <= this.newest; p++) n += this.ds[p % this.capacity]!.length + this.types[p % this.capacity]!.length;
    return n;
  }
}
