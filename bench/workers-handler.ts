/**
 * The handler module of `bench/workers.ts --handler-work N`: a fixed amount of CPU per dispatch (N rounds of an
 * integer hash, no allocation), a per-shard completeness and order check (`s` 2, 3, …), and a progress post to the
 * main thread every 1000 dispatches of a shard and at its last one: `[shardId, handled, outOfOrder, messageCreates]`;
 * with `SHARDLINE_BENCH_HEAP` set, its thread's heap every 500 ms (`bench/workers-idle.ts`).
 * Plain object export (what `defineHandler` returns), so the transpiled file imports nothing.
 */
const WORK = Number(process.env.SHARDLINE_BENCH_WORK ?? 0);
const PER_SHARD = Number(process.env.SHARDLINE_BENCH_PER_SHARD ?? 0);
const handled = new Map<number, [count: number, bad: number, messageCreates: number]>();
let sink = 0;

interface Event {
  shardId: number;
  type: string;
  sequence: number;
}

export default {
  /**
   * `SHARDLINE_BENCH_HEAP` (`bench/workers-idle.ts`): every 500 ms, collect garbage in this thread (when `--expose-gc`
   * reached it) and post `{ heap }`, this thread's JS heap in use, bytes.
   */
  init(scope: { worker: number | null; post(value: unknown): void }): void {
    if (!process.env.SHARDLINE_BENCH_HEAP) return;
    const gc = (globalThis as { gc?: () => void }).gc;
    setInterval(() => {
      gc?.();
      scope.post({ heap: process.memoryUsage().heapUsed, worker: scope.worker });
    }, 500).unref();
  },
  dispatch(event: Event, ctx: { post(value: unknown): void }): void {
    if (event.type === 'READY') return;
    let x = event.sequence;
    for (let i = 0; i < WORK; i++) x = (Math.imul(x, 31) + i) | 0;
    sink ^= x;
    const id = event.shardId;
    let h = handled.get(id);
    if (!h) handled.set(id, (h = [0, 0, 0]));
    if (event.sequence !== h[0] + 2) h[1]++;
    h[0]++;
    if (event.type === 'MESSAGE_CREATE') h[2]++;
    if (h[0] % 1000 === 0 || h[0] === PER_SHARD) ctx.post([id, h[0], h[1], h[2], sink & 1]);
  },
};
