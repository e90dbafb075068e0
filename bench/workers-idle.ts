/**
 * `node --import tsx bench/workers-idle.ts`: memory of idle shards in handler mode, one thread against worker
 * threads. A {@link Cluster} with N shards (`handler`: `bench/workers-handler.ts`) connects to the bench gateway
 * (`bench/server.ts` in idle mode: HELLO and READY, then nothing; `--warm-bytes` adds that much GUILD_CREATE per
 * shard after READY), waits `--settle` ms, collects garbage in every thread and reports:
 *   - RSS growth of the process over a baseline taken after loading shardline (every thread: main, workers, V8);
 *   - JS heap in use over all isolates: the main thread's growth plus each worker's whole heap (the handler posts
 *     its thread's `heapUsed` after a GC there).
 * Two shard counts (default 20 and 100) give the marginal cost of a shard (slope) and the fixed cost of the
 * configuration (the worker isolates; intercept), beside the plain per-shard average at the larger count.
 *
 * Flags: --shards a,b (default 20,100) · --workers a,b (default 0,2) · --reps N (default 3; medians) ·
 * --settle ms (default 3000) · --warm-bytes N (default 0) · --json PATH.
 *
 * Each measured client is a fresh plain-`node --expose-gc` process loading shardline from `dist/` (run
 * `npm run build` first), transpiled with the server to `bench/.out/workers-idle/`.
 * @module
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as Shardline from '../src/index.js';
import { BENCH_INTENTS, BENCH_TOKEN, ChildPool, median, nextMessage, transpileBench, type ServerCommand, type ServerReport } from './common.js';

interface Job {
  port: number;
  shards: number;
  workers: number;
  settleMs: number;
  warmBytes: number;
  root: string;
  handlerPath: string;
}

interface Result {
  type: 'result';
  shards: number;
  workers: number;
  /** RSS growth over the baseline, bytes. */
  rss: number;
  /** Main-thread heap in use, growth over the baseline, bytes. */
  mainHeap: number;
  /** Heap in use of each worker thread (whole), bytes. */
  workerHeaps: number[];
}

type ClientMsg = Result | { type: 'error'; message: string };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function gcTwice(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
}

async function runClient(job: Job): Promise<void> {
  const sl = (await import(pathToFileURL(join(job.root, 'dist', 'index.js')).href)) as typeof Shardline;
  process.env.SHARDLINE_BENCH_HEAP = '1'; // the handler posts its thread's heap (workers copy process.env at start)
  gcTwice();
  await sleep(200);
  gcTwice();
  const before = process.memoryUsage();
  const cluster = new sl.Cluster({
    token: BENCH_TOKEN,
    intents: BENCH_INTENTS,
    shards: job.shards,
    gatewayUrl: `ws://127.0.0.1:${job.port}`,
    identifyQueue: { acquire: async () => {} },
    startAhead: job.shards,
    workers: job.workers,
    compression: 'zlib-stream',
    handler: job.handlerPath,
  });
  const heaps = new Map<number, { heap: number; at: number }>();
  cluster.on('handlerMessage', (m) => {
    const v = m.value as { heap?: number; worker: number | null };
    if (typeof v.heap === 'number' && v.worker !== null) heaps.set(v.worker, { heap: v.heap, at: performance.now() });
  });
  cluster.on('shardError', (err, id) => {
    void send({ type: 'error', message: `shard ${id}: ${err.message}` }).then(() => process.exit(1));
  });
  await cluster.connect();
  await sleep(job.settleMs);
  gcTwice();
  const t = performance.now();
  // every worker posts its heap after a GC there every 500 ms: wait for one taken after this point
  for (const end = t + 10_000; performance.now() < end; await sleep(50)) {
    if (heaps.size === job.workers && [...heaps.values()].every((h) => h.at > t + 600)) break;
  }
  gcTwice();
  const after = process.memoryUsage();
  await send({
    type: 'result',
    shards: job.shards,
    workers: job.workers,
    rss: after.rss - before.rss,
    mainHeap: after.heapUsed - before.heapUsed,
    workerHeaps: [...heaps.values()].map((h) => h.heap),
  });
  process.exit(0);
}

function send(msg: ClientMsg): Promise<void> {
  return new Promise((res) => {
    if (!process.send) res();
    else process.send(msg, undefined, undefined, () => res());
  });
}

// ---- orchestrator -----------------------------------------------------------------------------------------

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH_DIR, '..');
const OUT = join(BENCH_DIR, '.out', 'workers-idle');

interface Options {
  shards: number[];
  workers: number[];
  reps: number;
  settleMs: number;
  warmBytes: number;
  json: string | null;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { shards: [20, 100], workers: [0, 2], reps: 3, settleMs: 3000, warmBytes: 0, json: null };
  const ints = (v: string | undefined, flag: string, min: number): number[] => {
    const xs = (v ?? '').split(',').map(Number);
    if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < min)) throw new Error(`${flag} needs integers >= ${min}`);
    return xs;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--shards') o.shards = ints(argv[++i], a, 1);
    else if (a === '--workers') o.workers = ints(argv[++i], a, 0);
    else if (a === '--reps') o.reps = ints(argv[++i], a, 1)[0]!;
    else if (a === '--settle') o.settleMs = ints(argv[++i], a, 0)[0]!;
    else if (a === '--warm-bytes') o.warmBytes = ints(argv[++i], a, 0)[0]!;
    else if (a === '--json') o.json = resolve(argv[++i] ?? '');
    else throw new Error(`unknown flag ${a}`);
  }
  return o;
}

const mb = (b: number): string => (b / 1048576).toFixed(1);
const kb = (b: number): string => (b / 1024).toFixed(0);
const heapOf = (r: Result): number => r.mainHeap + r.workerHeaps.reduce((a, b) => a + b, 0);

async function orchestrate(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(join(ROOT, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  await transpileBench(BENCH_DIR, OUT, ['common.ts', 'payloads.ts', 'server.ts', 'workers-idle.ts', 'workers-handler.ts']);
  (await import('./fixtures.js')).ensureFixtures(OUT);
  const pool = new ChildPool(OUT, ROOT);
  process.on('exit', () => pool.killAll());
  const server: ChildProcess = pool.start('server.js', [], []);
  const results: Result[] = [];
  try {
    const { port } = await nextMessage<ServerReport, { port: number }>(server, 'bench server', 15_000, (m) => (m.type === 'listening' ? { port: m.port } : undefined));
    const request = (cmd: ServerCommand, type: ServerReport['type']) => {
      const p = nextMessage<ServerReport, true>(server, `bench server ${cmd.cmd}`, 60_000, (m) => (m.type === type ? true : undefined));
      server.send(cmd);
      return p;
    };
    await request({ cmd: 'idle', warmBytes: opts.warmBytes }, 'prepared');
    console.log(`# idle shards in handler mode: node ${process.version}, ${availableParallelism()} CPUs; settle ${opts.settleMs} ms, warm bytes ${opts.warmBytes}, ${opts.reps} rep(s)\n`);
    for (let rep = 1; rep <= opts.reps; rep++) {
      for (const shards of opts.shards) {
        for (const workers of opts.workers) {
          const job: Job = { port, shards, workers, settleMs: opts.settleMs, warmBytes: opts.warmBytes, root: ROOT, handlerPath: join(OUT, 'workers-handler.js') };
          const child = pool.start('workers-idle.js', ['--client'], ['--expose-gc']);
          try {
            const done = nextMessage<ClientMsg, ClientMsg>(child, `${shards} shards, workers: ${workers}`, 120_000, (m) => m);
            child.send(job);
            const r = await done;
            if (r.type === 'error') throw new Error(r.message);
            results.push(r);
            console.error(`  rep ${rep}: ${shards} shards, workers: ${workers}: RSS +${mb(r.rss)} MB, heap (all isolates) ${mb(heapOf(r))} MB`);
          } finally {
            await pool.stop(child);
            await request({ cmd: 'close-all' }, 'stats');
          }
        }
      }
    }
  } finally {
    await pool.stop(server, 0);
  }
  const [lo, hi] = [Math.min(...opts.shards), Math.max(...opts.shards)];
  const lines = [
    `| workers | RSS at ${lo} / ${hi} shards | RSS per shard at ${hi} (all in) | RSS per added shard (slope) | fixed RSS (intercept) | JS heap, all isolates, at ${hi} | heap per shard at ${hi} (all in) | heap per added shard | fixed heap |`,
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const workers of opts.workers) {
    const at = (n: number, f: (r: Result) => number) => median(results.filter((r) => r.workers === workers && r.shards === n).map(f));
    const rss = (n: number) => at(n, (r) => r.rss);
    const heap = (n: number) => at(n, heapOf);
    const slope = (f: (n: number) => number) => (hi === lo ? Number.NaN : (f(hi) - f(lo)) / (hi - lo));
    lines.push(
      `| ${workers} | ${mb(rss(lo))} / ${mb(rss(hi))} MB | ${kb(rss(hi) / hi)} KB | ${kb(slope(rss))} KB | ${mb(rss(hi) - slope(rss) * hi)} MB | ` +
        `${mb(heap(hi))} MB | ${kb(heap(hi) / hi)} KB | ${kb(slope(heap))} KB | ${mb(heap(hi) - slope(heap) * hi)} MB |`,
    );
  }
  console.log(lines.join('\n'));
  if (opts.json) {
    mkdirSync(dirname(opts.json), { recursive: true });
    writeFileSync(opts.json, JSON.stringify({ node: process.version, options: opts, results }, null, 2));
  }
}

if (process.argv[2] === '--client') {
  process.once('message', (raw: unknown) => {
    runClient(raw as Job).catch((err: Error) => send({ type: 'error', message: err.stack ?? err.message }).then(() => process.exit(1)));
  });
  process.on('disconnect', () => process.exit(0));
} else {
  orchestrate().catch((err: Error) => {
    console.error(err.stack ?? err.message);
    process.exitCode = 1;
  });
}
