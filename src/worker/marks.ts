/**
 * Handler mode: where each shard's handler has got to, in memory shared by a worker and its host, so that the
 * worker need not tell the main thread about every event it handled.
 *
 * Per shard two numbers: a session *epoch* and the sequence of the last dispatch its handler finished within it.
 * The worker writes them (a plain store per handled dispatch, nothing posted); the host reads them only once the
 * thread has exited (the thread's end orders every write before the read), to learn where the new thread must
 * RESUME. The epoch ties the sequence to a session: both sides count the same session marks ({@link sessionMark}),
 * the worker when it passes such an event on, the host when the event reaches it in a batch. Equal counts: the
 * sequence belongs to the session the host knows; different counts (the worker died before the batch with the
 * mark arrived): the host keeps the position its batches carried, which the worker brings up to date in the batch
 * of every mark (see `entry.ts`).
 * @packageDocumentation
 */
import type { ShardEvent } from '../events.js';

/** An event after which a shard's dispatches belong to another session (or to none), or start from a new point. */
export function sessionMark(e: ShardEvent): boolean {
  return e.kind === 'ready' || e.kind === 'resumed' || (e.kind === 'state' && (e.to === 'identifying' || e.to === 'fatal'));
}

/** The shared slots of one worker's shards: `[epoch, sequence]` per shard, in the order of `ids`. */
export class HandledMarks {
  readonly buffer: SharedArrayBuffer;
  readonly #a: Float64Array;
  readonly #slot = new Map<number, number>();

  /** `buffer`: the worker's copy of the host's buffer; omitted: a new zeroed one (host, per thread started). */
  constructor(ids: readonly number[], buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(ids.length * 2 * Float64Array.BYTES_PER_ELEMENT);
    this.#a = new Float64Array(this.buffer);
    ids.forEach((id, i) => this.#slot.set(id, i * 2));
  }

  /** Worker: the handler finished the shard's dispatch `sequence` (of the current epoch). */
  handled(shardId: number, sequence: number): void {
    const i = this.#slot.get(shardId);
    if (i !== undefined) this.#a[i + 1] = sequence;
  }

  /** Worker: a session mark was passed on (and posted): a new epoch, nothing handled in it yet. */
  mark(shardId: number): void {
    const i = this.#slot.get(shardId);
    if (i === undefined) return;
    this.#a[i + 1] = 0;
    this.#a[i]!++;
  }

  /** Host, after the thread exited: the shard's epoch and last handled sequence in it (0: none). */
  read(shardId: number): { epoch: number; sequence: number } {
    const i = this.#slot.get(shardId);
    return i === undefined ? { epoch: -1, sequence: 0 } : { epoch: this.#a[i]!, sequence: this.#a[i + 1]! };
  }
}
