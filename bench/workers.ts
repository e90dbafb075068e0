/**
 * `npm run bench:workers`: do worker threads buy throughput? A {@link Cluster} with N shards (default 8) is
 * flooded by the bench gateway (`bench/server.ts`, its own process, replaying the same pre-compressed
 * zlib-stream bytes to every connection as fast as each socket drains) and the dispatches delivered on the main
 * thread are counted, for `workers: 0` (every shard in the main thread) and `workers: 1, 2, 3`.
 *
 * For context it also runs the same shards split over two processes (`workers: 0` each, `shards: { ids, total }`):
 * what the machine's cores give when nothing crosses a thread boundary.
 *
 * Figures per run (each run is a fresh plain-`node` process; shardline is loaded from `dist/`, never via tsx):
 *   - dispatches per second of wall time: the stream's dispatches (delivered to `cluster.on('dispatch')` on the
 *     main thread, or filtered out in the `filtered` workload) from just before the server starts the replay
 *     to the last dispatch of every shard; and the sustained rate between 20 % and 80 % of the stream (no
 *     start-up, no tail where one worker has finished and the other runs alone; JSON: `steady*`);
 *   - CPU per dispatch: `process.cpuUsage()` (all threads: main, workers, V8 and libuv helpers) and the main
 *     thread alone (`/proc/self/task/<pid>/stat`), plus the main thread's event-loop utilization;
 *   - how the dispatches reach the main thread: per main-thread callback (a worker's batch; with `workers: 0`
 *     one socket read) mean and max, and the longest time without any delivery;
 *   - peak RSS (the `on('dispatch')` path has no back-pressure: batches a busy main thread has not handled yet
 *     wait in its message queue).
 * Every run checks that every shard delivered every dispatch (`filtered`: exactly the wanted ones), each one once
 * and in order (`s` 2, 3, …), and that the consumer saw the MESSAGE_CREATEs.
 *
 * Flags:
 *   --quick            tiny counts; checks the harness, figures meaningless
 *   --shards N         shards of the cluster (default 8)
 *   --messages N       dispatches per shard (default 30 000)
 *   --reps N           repetitions (default 5); the configurations are interleaved within each repetition
 *   --workers a,b,…    configurations: a worker count, or pN for N processes with workers: 0 (default 0,1,2,3,p2)
 *   --only a,b         workloads: presences_off, presences_on, filtered (presences_on, the cluster asks only for
 *                      MESSAGE_CREATE and INTERACTION_CREATE) (default all three)
 *   --json PATH        also write the raw results
 *   --handler-work N   handler mode: the cluster runs `bench/workers-handler.ts` as its `handler` (in each worker, or
 *                      in the main thread with workers: 0, or in each of the pN processes), which does N rounds of
 *                      integer hashing per dispatch (fixed CPU), checks order and posts progress; rates are
 *                      dispatches handled per second. Workloads without a filter only.
 *   --callgrind        count instructions instead of time: every client process runs under `valgrind
 *                      --tool=callgrind` (all its threads, serialised; ~50x slower), once on a quarter of the stream
 *                      and once on all of it; instructions per dispatch = the difference of the totals over the
 *                      difference of the dispatches (start-up, connecting and loading cancel out). Noise-free where
 *                      wall-clock figures are not. Default 1 rep, --messages 4000.
 *
 * Environment: `SHARDLINE_BENCH_CPU_PROF=DIR` runs every measured client with `--cpu-prof --cpu-prof-dir=DIR` (one
 * profile per thread: main and each worker).
 *
 * Run: `npm run build && node --import tsx bench/workers.ts` (= `npm run bench:workers`). The orchestrator runs
 * under tsx; it transpiles this file, `common.ts` and `server.ts` to `bench/.out/workers/` and starts the server
 * and every measured client from there with plain `node` (the same file, with `--client`).
 *
 * @module
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as Shardline from '../src/index.js';
import {
  BENCH_INTENTS,
  BENCH_TOKEN,
  ChildPool,
  callgrindTotals,
  median,
  peakRss,
  transpileBench,
  buildWorkload,
  nextMessage,
  type MixName,
  type ServerCommand,
  type ServerReport,
  type WorkloadInfo,
} from './common.js';

// ---------------------------------------------------------------------------------------------------------
// IPC between the orchestrator and a measured client
// ---------------------------------------------------------------------------------------------------------

interface Job {
  port: number;
  /** Shard count of the bot. */
  shards: number;
  /** Shards this process runs (all of them, or half with two processes). */
  ids: number[];
  workers: number;
  /** Dispatches per shard after READY; they carry s = 2 … messages + 1. */
  messages: number;
  /** Dispatch types the cluster asks for (filtered in the worker / shard, never parsed otherwise); null: all. */
  events: string[] | null;
  /** With `events`: the `s` of every wanted dispatch, in stream order (the same for every shard). */
  wanted: number[] | null;
  root: string;
  /** Handler mode: rounds of CPU work per dispatch in `workers-handler.js` (run by `handler`); null: `on('dispatch')`. */
  handlerWork: number | null;
  /** Handler mode: the handler module's path. */
  handlerPath: string | null;
  /** Factor on the client's stall guard (under callgrind everything runs ~50x slower). */
  slow: number;
}

interface RunResult {
  type: 'result';
  workers: number;
  shards: number;
  expected: number;
  received: number;
  /** Completeness / order problems (empty when every shard delivered s = 2 … lastSeq exactly once, in order). */
  problems: string[];
  /** MESSAGE_CREATEs seen by the light consumer (a check that it really looked at `e.type`). */
  messageCreates: number;
  /** Stream dispatches the shards went through (delivered or filtered out): shards × messages. */
  streamed: number;
  /** Groups of dispatches delivered in one main-thread callback (a worker batch; with workers: 0 a socket read). */
  batches: number;
  maxBatch: number;
  /** Longest time the main thread got no dispatch while the stream was running, ms. */
  maxGapMs: number;
  wallMs: number;
  /** Start and end of the window, ms since the epoch (to combine the windows of two processes). */
  t0Abs: number;
  t1Abs: number;
  /** Process CPU (all threads) over the whole window, µs. */
  cpuUs: number;
  /** Main-thread CPU over the whole window, µs (from /proc; 10 ms ticks). */
  mainCpuUs: number | null;
  /** Main-thread event-loop utilization over the window (0..1). */
  elu: number;
  steadyMs: number;
  steadyCount: number;
  steadyCpuUs: number;
  steadyMainCpuUs: number | null;
  peakRss: number;
  /** `--callgrind`: instructions of the whole process (every thread), else null (set by the orchestrator). */
  ir?: number | null;
  /** `--callgrind`: of those, instructions in V8's optimizing compiler (one-off work; each worker isolate compiles its own). */
  irCompiler?: number | null;
}

type ClientMsg = { type: 'ready' } | { type: 'armed' } | RunResult | { type: 'error'; message: string };
type OrchestratorMsg = { cmd: 'job'; job: Job } | { cmd: 'arm' };

// ---------------------------------------------------------------------------------------------------------
// Client role (plain node, in bench/.out/workers/)
// ---------------------------------------------------------------------------------------------------------

function clientSend(msg: ClientMsg): Promise<void> {
  return new Promise((res) => {
    if (!process.send) res();
    else process.send(msg, undefined, undefined, () => res());
  });
}

async function clientFail(message: string): Promise<never> {
  await clientSend({ type: 'error', message });
  process.exit(1);
}

let clkTck = 100;
/** CPU time of the main thread (its tid is the pid), µs, or null off Linux. */
function mainThreadCpuUs(): number | null {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after "pid (comm) ": state=0 … utime=11, stime=12
    return ((Number(f[11]) + Number(f[12])) * 1e6) / clkTck;
  } catch {
    return null;
  }
}

interface Mark {
  t: number;
  cpu: NodeJS.CpuUsage;
  main: number | null;
}
const mark = (): Mark => ({ t: performance.now(), cpu: process.cpuUsage(), main: mainThreadCpuUs() });
const cpuDelta = (a: Mark, b: Mark): number => b.cpu.user - a.cpu.user + (b.cpu.system - a.cpu.system);
const mainDelta = (a: Mark, b: Mark): number | null => (a.main === null || b.main === null ? null : b.main - a.main);

async function runClient(job: Job): Promise<void> {
  try {
    clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    /* keep 100 */
  }
  const sl = (await import(pathToFileURL(join(job.root, 'dist', 'index.js')).href)) as typeof Shardline;
  const ids = job.ids;
  if (job.handlerWork !== null) {
    // read by the handler module (worker threads copy process.env when they start)
    process.env.SHARDLINE_BENCH_WORK = String(job.handlerWork);
    process.env.SHARDLINE_BENCH_PER_SHARD = String(job.messages);
  }
  const cluster = new sl.Cluster({
    token: BENCH_TOKEN,
    intents: BENCH_INTENTS,
    shards: { ids, total: job.shards },
    gatewayUrl: `ws://127.0.0.1:${job.port}`,
    identifyQueue: { acquire: async () => {} }, // grants at once (no 5 s identify windows on a local server)
    startAhead: job.shards, // connect every shard at once instead of one per half window
    workers: job.workers,
    compression: 'zlib-stream',
    // Durations 100x longer: no shard heartbeats during a run. A heartbeat arriving mid-replay makes the bench
    // server re-encode the whole stream for the held ACK afterwards (100s of ms of its CPU while it refills no
    // other socket), which would starve the client at random; the client's own heartbeat cost is negligible.
    clock: sl.scaledClock(100),
    ...(job.events ? { events: job.events as Shardline.EventName[] } : {}),
    ...(job.handlerPath ? { handler: job.handlerPath } : {}),
  });
  cluster.on('shardError', (err, id) => void clientFail(`shard ${id}: ${err.message}`));
  cluster.on('error', (err) => void clientFail(`cluster: ${err.message}`));

  const perShard = job.wanted ? job.wanted.length : job.messages;
  const expected = ids.length * perShard;
  // s of the k-th wanted dispatch of a shard (every dispatch: s = k + 2)
  const wanted = job.wanted ? Int32Array.from(job.wanted) : null;
  const pos = new Int32Array(job.shards); // dispatches delivered per shard
  const problems: string[] = [];
  let bad = 0;
  let received = 0;
  let messageCreates = 0;
  const q20 = Math.max(1, Math.floor(expected * 0.2));
  const q80 = Math.max(q20 + 1, Math.floor(expected * 0.8));
  let m0: Mark | null = null;
  let m20: Mark | null = null;
  let m80: Mark | null = null;
  let elu0: ReturnType<typeof performance.eventLoopUtilization> | null = null;
  let finished = false;

  const finish = (): void => {
    if (finished) return;
    finished = true;
    const m1 = mark();
    if (inBatch > maxBatch) maxBatch = inBatch; // the last group ends after this
    const elu = performance.eventLoopUtilization(elu0 ?? undefined).utilization;
    clearInterval(watchdog);
    for (const id of ids) {
      if (pos[id] !== perShard) problems.push(`shard ${id}: delivered ${pos[id]} of ${perShard}`);
    }
    if (received !== expected) problems.push(`received ${received} of ${expected} dispatches`);
    if (bad > 0 && job.handlerWork === null) problems.push(`${bad} dispatches out of order, duplicated or after a gap`);
    const s20 = m20 ?? m0!;
    const s80 = m80 ?? m1;
    void clientSend({
      type: 'result',
      workers: job.workers,
      shards: ids.length,
      expected,
      received,
      problems,
      messageCreates,
      streamed: ids.length * job.messages,
      batches,
      maxBatch,
      maxGapMs,
      wallMs: m1.t - m0!.t,
      t0Abs: performance.timeOrigin + m0!.t,
      t1Abs: performance.timeOrigin + m1.t,
      cpuUs: cpuDelta(m0!, m1),
      mainCpuUs: mainDelta(m0!, m1),
      elu,
      steadyMs: s80.t - s20.t,
      steadyCount: q80 - q20,
      steadyCpuUs: cpuDelta(s20, s80),
      steadyMainCpuUs: mainDelta(s20, s80),
      peakRss: peakRss(),
    }).then(() => process.exit(0));
  };

  // Dispatches that arrive in one main-thread callback form a group (microtasks run between callbacks).
  let batches = 0;
  let inBatch = 0;
  let maxBatch = 0;
  let lastEnd = 0;
  let maxGapMs = 0;
  const endBatch = (): void => {
    if (inBatch > maxBatch) maxBatch = inBatch;
    inBatch = 0;
    lastEnd = performance.now();
  };

  // Handler mode: the handler (in the thread that runs the shard) checks, counts and works; it posts progress.
  cluster.on('handlerMessage', (m) => {
    const [id, n, outOfOrder, creates] = m.value as [number, number, number, number];
    batches++;
    const before = received;
    received += n - pos[id]!;
    messageCreates += creates - (handlerCreates[id] ?? 0);
    handlerCreates[id] = creates;
    pos[id] = n;
    if (outOfOrder > 0 && n === perShard) {
      bad += outOfOrder;
      problems.push(`shard ${id}: ${outOfOrder} dispatches out of order (seen by the handler)`);
    }
    if (received - before > maxBatch) maxBatch = received - before;
    if (before < q20 && received >= q20) m20 = mark();
    if (before < q80 && received >= q80) m80 = mark();
    if (received === expected) finish();
  });
  const handlerCreates: number[] = [];

  // The measured consumer: per-shard completeness and order check, a count, and one look at the event type.
  cluster.on('dispatch', (e) => {
    const t = e.type;
    if (t === 'READY') return;
    if (inBatch++ === 0) {
      batches++;
      const now = performance.now();
      const gap = now - (lastEnd || m0?.t || now);
      if (gap > maxGapMs) maxGapMs = gap;
      queueMicrotask(endBatch);
    }
    const id = e.shardId;
    const k = pos[id]!;
    const want = wanted ? (k < wanted.length ? wanted[k]! : -1) : k + 2;
    if (e.sequence !== want && bad++ < 5) problems.push(`shard ${id}: dispatch #${k + 1} has s=${e.sequence}, expected ${want}`);
    pos[id] = k + 1;
    if (t === 'MESSAGE_CREATE') messageCreates++;
    received++;
    if (received === q20) m20 = mark();
    else if (received === q80) m80 = mark();
    if (received === expected) finish();
  });

  // Stall guard: if nothing arrives for 30 s after the start, report what came (the checks then fail).
  let lastSeen = -1;
  let stalled = 0;
  const watchdog = setInterval(() => {
    if (m0 === null) return;
    if (received === lastSeen) {
      if (++stalled >= 30 * job.slow) finish();
    } else {
      lastSeen = received;
      stalled = 0;
    }
  }, 1000);
  watchdog.unref();

  process.on('message', (raw: unknown) => {
    const msg = raw as OrchestratorMsg;
    if (msg.cmd !== 'arm') return;
    elu0 = performance.eventLoopUtilization();
    m0 = mark();
    watchdog.ref();
    void clientSend({ type: 'armed' });
  });

  await cluster.connect();
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((r) => setTimeout(r, 100));
  await clientSend({ type: 'ready' });
}

// ---------------------------------------------------------------------------------------------------------
// Orchestrator role (tsx)
// ---------------------------------------------------------------------------------------------------------

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH_DIR, '..');
const OUT = join(BENCH_DIR, '.out', 'workers');

interface Options {
  quick: boolean;
  shards: number;
  messages: number;
  reps: number;
  configs: Config[];
  workloads: Workload[];
  json: string | null;
  /** `--handler-work N`: run `workers-handler.js` as the cluster's handler, N rounds of CPU work per dispatch. */
  handlerWork: number | null;
  /** `--callgrind`: instructions per dispatch instead of time. */
  callgrind: boolean;
}

/** One way to run the shards: `workers` worker threads in each of `procs` processes (shards split between them). */
interface Config {
  label: string;
  workers: number;
  procs: number;
}

/** `0`…`n`: one process with that many worker threads; `p2`: two processes, each with half the shards and workers: 0. */
function parseConfig(spec: string): Config {
  const m = /^(?:p(\d+)|(\d+))$/.exec(spec.trim());
  if (!m) throw new Error(`--workers: ${spec} is neither a worker count nor pN (N processes)`);
  if (m[1] !== undefined) {
    const procs = Number(m[1]);
    if (procs < 1) throw new Error('--workers: pN needs N >= 1');
    return { label: `${procs} processes × workers: 0`, workers: 0, procs };
  }
  return { label: m[2]!, workers: Number(m[2]), procs: 1 };
}

interface Workload {
  name: string;
  mix: MixName;
  /** Dispatch types the cluster asks for; null: all. */
  events: string[] | null;
}

const WORKLOADS: Workload[] = [
  { name: 'presences_off', mix: 'presences_off', events: null },
  { name: 'presences_on', mix: 'presences_on', events: null },
  { name: 'filtered', mix: 'presences_on', events: ['MESSAGE_CREATE', 'INTERACTION_CREATE'] },
];

function parseArgs(argv: string[]): Options {
  const o: Options = {
    quick: false,
    shards: 8,
    messages: 30_000,
    reps: 5,
    configs: ['0', '1', '2', '3', 'p2'].map(parseConfig),
    workloads: WORKLOADS,
    json: null,
    handlerWork: null,
    callgrind: false,
  };
  const set = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      set.add(a);
      return v;
    };
    const int = (min: number): number => {
      const v = Number(val());
      if (!Number.isInteger(v) || v < min) throw new Error(`${a} needs an integer >= ${min}`);
      return v;
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--shards') o.shards = int(1);
    else if (a === '--messages') o.messages = int(8);
    else if (a === '--reps') o.reps = int(1);
    else if (a === '--workers') {
      o.configs = val().split(',').map(parseConfig);
    } else if (a === '--only') {
      const names = val()
        .split(',')
        .map((s) => s.trim());
      const unknown = names.filter((n) => !WORKLOADS.some((w) => w.name === n));
      if (unknown.length) throw new Error(`--only: unknown workload ${unknown.join(', ')} (${WORKLOADS.map((w) => w.name).join(', ')})`);
      o.workloads = WORKLOADS.filter((w) => names.includes(w.name));
    } else if (a === '--json') o.json = resolve(val());
    else if (a === '--handler-work') o.handlerWork = int(0);
    else if (a === '--callgrind') o.callgrind = true;
    else if (a === '--help' || a === '-h') {
      console.log(
        readFileSync(fileURLToPath(import.meta.url), 'utf8')
          .split(' * @module')[0]!
          .split('\n')
          .slice(1)
          .join('\n'),
      );
      process.exit(0);
    } else throw new Error(`unknown flag ${a}`);
  }
  if (o.quick) {
    if (!set.has('--shards')) o.shards = 4;
    if (!set.has('--messages')) o.messages = 2000;
    if (!set.has('--reps')) o.reps = 1;
  }
  if (o.callgrind) {
    if (!set.has('--messages') && !o.quick) o.messages = 4000;
    if (!set.has('--reps')) o.reps = 1;
  }
  if (o.handlerWork !== null) {
    // the handler checks order itself, with every dispatch delivered: workloads without an `events` filter
    o.workloads = o.workloads.filter((w) => w.events === null);
    if (o.workloads.length === 0) throw new Error('--handler-work runs the workloads without a filter (presences_off, presences_on)');
  }
  if (!o.configs.some((c) => c.label === '0')) o.configs.unshift(parseConfig('0')); // the baseline every ratio refers to
  if (o.configs.some((c) => c.procs > o.shards)) throw new Error('more processes than shards');
  return o;
}

const pool = new ChildPool(OUT, ROOT);
const start = (file: string, args: string[], execArgv: string[], wrapper?: string[]): ChildProcess => pool.start(file, args, execArgv, wrapper);
const stop = (child: ChildProcess, graceMs?: number): Promise<void> => pool.stop(child, graceMs);
const killAll = (): void => pool.killAll();

function serverRequest<T extends ServerReport['type']>(server: ChildProcess, cmd: ServerCommand, type: T, timeoutMs = 120_000): Promise<Extract<ServerReport, { type: T }>> {
  const p = nextMessage<ServerReport, Extract<ServerReport, { type: T }>>(server, `bench server ${cmd.cmd}`, timeoutMs, (m) =>
    m.type === type ? (m as Extract<ServerReport, { type: T }>) : undefined,
  );
  server.send(cmd);
  return p;
}

/** CPU time of another process (user + system), µs, or null. */
function processCpuUs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / 100;
  } catch {
    return null;
  }
}

function uptime(): string {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim();
  } catch {
    return `load average: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(', ')}`;
  }
}

interface Record_ extends RunResult {
  workload: string;
  config: string;
  rep: number;
  /** 1-minute load average when the run ended. */
  load: number;
  /** CPU the replay server used during the run, µs (it shares the machine's cores). */
  serverCpuUs: number | null;
  ok: boolean;
  /** `--callgrind`: dispatches per shard of this run's stream (a quarter of `--messages`, or all of them). */
  length: number;
}

/** One measurement: start the client process(es), wait until every shard is READY, replay, collect. */
async function runOne(server: ChildProcess, port: number, w: Workload, wanted: number[] | null, rep: number, c: Config, opts: Options, messages = opts.messages): Promise<Record_> {
  const what = `${c.label} on ${w.name}`;
  const slow = opts.callgrind ? 50 : 1;
  const kids = Array.from({ length: c.procs }, (_, p) => {
    const ids = Array.from({ length: opts.shards }, (_, i) => i).filter((i) => i % c.procs === p);
    const handlerPath = opts.handlerWork === null ? null : join(OUT, 'workers-handler.js');
    const job: Job = { port, shards: opts.shards, ids, workers: c.workers, messages, events: w.events, wanted, root: ROOT, handlerWork: opts.handlerWork, handlerPath, slow };
    // V8 writes code at run time: --smc-check makes valgrind see it (else it may run stale translations).
    const cgOut = opts.callgrind ? join(OUT, `callgrind.${w.name}.${c.label.replace(/\W+/g, '_')}.${p}.${messages}.${rep}.out`) : null;
    const wrapper = cgOut ? ['valgrind', '-q', '--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${cgOut}`] : undefined;
    return {
      job,
      cgOut,
      child: start('workers.js', ['--client'], [...(process.env.SHARDLINE_BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SHARDLINE_BENCH_CPU_PROF}`] : []), '--expose-gc'], wrapper),
    };
  });
  try {
    await Promise.all(
      kids.map(({ job, child }) => {
        const ready = nextMessage<ClientMsg, true>(child, what, 60_000 * slow, (m) => (m.type === 'ready' ? true : undefined));
        child.send({ cmd: 'job', job } satisfies OrchestratorMsg);
        return ready;
      }),
    );
    await Promise.all(
      kids.map(({ child }) => {
        const armed = nextMessage<ClientMsg, true>(child, what, 10_000 * slow, (m) => (m.type === 'armed' ? true : undefined));
        child.send({ cmd: 'arm' } satisfies OrchestratorMsg);
        return armed;
      }),
    );
    const results = Promise.all(kids.map(({ child }) => nextMessage<ClientMsg, RunResult>(child, what, 180_000 * slow, (m) => (m.type === 'result' ? m : undefined))));
    const s0 = processCpuUs(server.pid);
    const started = await serverRequest(server, { cmd: 'start' }, 'started');
    if (started.connections !== opts.shards) throw new Error(`${what}: the server replays to ${started.connections} connections, expected ${opts.shards}`);
    const parts = await results;
    const s1 = processCpuUs(server.pid);
    const r = combine(parts);
    if (r.messageCreates === 0) r.problems.push('the consumer saw no MESSAGE_CREATE');
    if (opts.callgrind) {
      // the client exits after reporting; callgrind writes its file as the process ends
      await Promise.all(kids.map(({ child }) => stop(child, 1500 * slow)));
      const totals = kids.map(({ cgOut }) => callgrindTotals(cgOut!));
      r.ir = totals.reduce((sum, t) => sum + t.ir, 0);
      r.irCompiler = totals.reduce((sum, t) => sum + t.compiler, 0);
    }
    return { ...r, workload: w.name, config: c.label, rep, load: loadavg()[0]!, serverCpuUs: s0 === null || s1 === null ? null : s1 - s0, ok: r.problems.length === 0, length: messages };
  } finally {
    await Promise.all(kids.map(({ child }) => stop(child, 1500 * slow)));
    await serverRequest(server, { cmd: 'close-all' }, 'stats');
  }
}

/**
 * `--callgrind`: instructions per dispatch over every thread of the client process(es), from the runs on a quarter
 * of the stream and on all of it (the difference of the totals over the difference of the dispatches).
 */
function instructionTable(records: Record_[], w: Workload, opts: Options): string {
  const rs = records.filter((r) => r.workload === w.name && r.ok && typeof r.ir === 'number');
  const lines = [
    `### ${w.name}: instructions per dispatch, all threads (callgrind; ${opts.shards} shards, streams of ${Math.max(8, Math.floor(opts.messages / 4))} and ${opts.messages} dispatches per shard)` +
      (opts.handlerWork !== null ? `; handler mode, ${opts.handlerWork} rounds of work per dispatch` : ''),
    '',
    '| workers | instructions / dispatch | × workers: 0 | without the optimizing compiler | × workers: 0 |',
    '|---:|---:|---:|---:|---:|',
  ];
  let base: number | null = null;
  let baseNet: number | null = null;
  for (const c of opts.configs) {
    const g = rs.filter((r) => r.config === c.label);
    const short = g.filter((r) => r.length < opts.messages);
    const long = g.filter((r) => r.length === opts.messages);
    if (!short.length || !long.length) continue;
    const n = long[0]!.streamed - short[0]!.streamed;
    const per = (median(long.map((r) => r.ir!)) - median(short.map((r) => r.ir!))) / n;
    const net = (median(long.map((r) => r.ir! - (r.irCompiler ?? 0))) - median(short.map((r) => r.ir! - (r.irCompiler ?? 0)))) / n;
    if (c.label === '0') {
      base = per;
      baseNet = net;
    }
    const x = (v: number, b: number | null) => (b ? `${(v / b).toFixed(3)}x` : '–');
    lines.push(`| ${c.label} | ${Math.round(per)} | ${x(per, base)} | ${Math.round(net)} | ${x(net, baseNet)} |`);
  }
  return lines.join('\n');
}

/** Results of processes that ran side by side: one window from the first start to the last end; sums; maxima. */
function combine(parts: RunResult[]): RunResult {
  if (parts.length === 1) return parts[0]!;
  const sum = (f: (r: RunResult) => number): number => parts.reduce((a, r) => a + f(r), 0);
  const t0Abs = Math.min(...parts.map((r) => r.t0Abs));
  const t1Abs = Math.max(...parts.map((r) => r.t1Abs));
  const mains = parts.map((r) => r.mainCpuUs);
  const steadyMains = parts.map((r) => r.steadyMainCpuUs);
  // Steady part: the processes run concurrently, so their steady rates add up (expressed as count over a common time).
  const steadyMs = 1000;
  const steadyCount = sum((r) => r.steadyCount / (r.steadyMs / 1000));
  return {
    ...parts[0]!,
    shards: sum((r) => r.shards),
    expected: sum((r) => r.expected),
    received: sum((r) => r.received),
    problems: parts.flatMap((r) => r.problems),
    messageCreates: sum((r) => r.messageCreates),
    streamed: sum((r) => r.streamed),
    batches: sum((r) => r.batches),
    maxBatch: Math.max(...parts.map((r) => r.maxBatch)),
    maxGapMs: Math.max(...parts.map((r) => r.maxGapMs)),
    wallMs: t1Abs - t0Abs,
    t0Abs,
    t1Abs,
    cpuUs: sum((r) => r.cpuUs),
    mainCpuUs: mains.every((x) => x !== null) ? sum((r) => r.mainCpuUs!) : null,
    elu: sum((r) => r.elu) / parts.length,
    steadyMs,
    steadyCount: Math.round(steadyCount),
    // CPU likewise per common second (each process's steady CPU over its own steady window).
    steadyCpuUs: sum((r) => r.steadyCpuUs / (r.steadyMs / 1000)),
    steadyMainCpuUs: steadyMains.every((x) => x !== null) ? sum((r) => r.steadyMainCpuUs! / (r.steadyMs / 1000)) : null,
    peakRss: sum((r) => r.peakRss),
  };
}

const name = (c: Config): string => (c.procs > 1 ? c.label : `workers: ${c.label}`);
const mb = (b: number): string => (b / 1048576).toFixed(0);
const k = (x: number): string => `${(x / 1000).toFixed(1)}k`;
/** Stream dispatches the shards got through per second of wall time (= delivered/s when nothing is filtered). */
const rate = (r: RunResult): number => r.streamed / (r.wallMs / 1000);
/** Sustained rate: dispatches per second between 20 % and 80 % of the stream (no start-up, no tail). */
const steadyRate = (r: RunResult): number => r.steadyCount / (r.steadyMs / 1000);

function table(records: Record_[], w: Workload, info: WorkloadInfo, wanted: number[] | null, opts: Options): string {
  const rs = records.filter((r) => r.workload === w.name);
  const base = rs.filter((r) => r.config === '0');
  const baseByRep = new Map(base.map((r) => [r.rep, rate(r)]));
  const baseMed = median(base.map(rate));
  const baseBest = Math.max(...base.map(rate));
  const baseSteady = median(base.map(steadyRate));
  const per = info.lastSeq - 1;
  const delivered = wanted ? wanted.length : per;
  const lines = [
    `### ${w.name}: ${opts.shards} shards × ${per} dispatches of \`${w.mix}\` (zlib-stream), ${opts.reps} rep(s)` +
      (w.events ? `; the cluster asks only for ${w.events.join(', ')} (${delivered} per shard, ${((delivered / per) * 100).toFixed(1)} %)` : '') +
      (opts.handlerWork !== null ? `; handler mode: \`workers-handler\` does ${opts.handlerWork} rounds of CPU work per dispatch in the thread of its shard` : ''),
    '',
    `${mb(info.jsonBytes * opts.shards)} MB of JSON in all (${(info.jsonBytes / per).toFixed(0)} B per dispatch), ` +
      `${mb(info.bytes['zlib-stream'] * opts.shards)} MB on the wire. Rates count every dispatch of the stream` +
      (w.events ? ' (delivered or filtered out); CPU is per stream dispatch too.' : ', all delivered.'),
    '',
    '| workers | dispatches/s, median | best | min–max | × workers: 0 (median / best / paired by rep) | sustained (20→80 %) dispatches/s, median, × workers: 0 | CPU µs / dispatch, all threads | main thread µs / dispatch | main-thread ELU | dispatches per delivery, mean / max | longest delivery gap | peak RSS | server CPU | checks |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const c of opts.configs) {
    const g = rs.filter((r) => r.config === c.label);
    if (g.length === 0) continue;
    const rates = g.map(rate);
    const med = median(rates);
    const best = Math.max(...rates);
    const paired = median(g.filter((r) => baseByRep.has(r.rep)).map((r) => rate(r) / baseByRep.get(r.rep)!));
    const cpu = median(g.map((r) => r.cpuUs / r.streamed));
    const mains = g.filter((r) => r.mainCpuUs !== null).map((r) => r.mainCpuUs! / r.streamed);
    const srv = g.filter((r) => r.serverCpuUs !== null).map((r) => r.serverCpuUs! / (r.wallMs * 1000));
    const bad = g.filter((r) => !r.ok);
    lines.push(
      `| ${c.label} | ${k(med)} | ${k(best)} | ${k(Math.min(...rates))}–${k(best)} | ` +
        (c.label === '0' ? '1.00x | ' : `${(med / baseMed).toFixed(2)}x / ${(best / baseBest).toFixed(2)}x / ${paired.toFixed(2)}x | `) +
        `${k(median(g.map(steadyRate)))}, ${(median(g.map(steadyRate)) / baseSteady).toFixed(2)}x | ` +
        `${cpu.toFixed(2)} | ${mains.length ? median(mains).toFixed(2) : '–'} | ` +
        `${median(g.map((r) => r.elu)).toFixed(2)} | ${median(g.map((r) => r.received / r.batches)).toFixed(0)} / ${Math.max(...g.map((r) => r.maxBatch))} | ` +
        `${median(g.map((r) => r.maxGapMs)).toFixed(0)} ms | ${mb(Math.max(...g.map((r) => r.peakRss)))} MB (${(Math.max(...g.map((r) => r.peakRss)) / 1048576 / opts.shards).toFixed(1)} per shard) | ` +
        `${srv.length ? `${(median(srv) * 100).toFixed(0)} %` : '–'} | ${bad.length === 0 ? `ok (${g.length}/${g.length})` : `⚠ ${bad.length} failed`} |`,
    );
  }
  const bad = rs.filter((r) => !r.ok);
  if (bad.length) lines.push('', ...bad.map((r) => `⚠ ${r.config} rep ${r.rep}: ${r.problems.join('; ')}`));
  return lines.join('\n');
}

async function orchestrate(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(join(ROOT, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm run bench:workers does)');
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      killAll();
      process.exit(130);
    });
  }
  await transpileBench(BENCH_DIR, OUT, ['common.ts', 'payloads.ts', 'server.ts', 'workers.ts', 'workers-handler.ts']);
  if (opts.callgrind) execFileSync('valgrind', ['--version']); // fails early when valgrind is missing
  // loaded dynamically: this file also runs as a transpiled client, which must not import src/
  (await import('./fixtures.js')).ensureFixtures(OUT);
  const t0 = Date.now();
  console.log(`# shardline worker-threads bench${opts.quick ? ' (--quick: harness check only, figures meaningless)' : ''}`);
  console.log(
    `node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown CPU'}), ${mb(totalmem())} MB RAM; ` +
      `${opts.shards} shards, ${opts.messages} dispatches per shard, configurations ${opts.configs.map((c) => c.label).join(' / ')}, ${opts.reps} rep(s)`,
  );
  const upStart = uptime();
  console.log(`machine load at start: ${upStart}\n`);

  const server = start('server.js', [], []);
  const { port } = await nextMessage<ServerReport, { port: number }>(server, 'bench server', 15_000, (m) => (m.type === 'listening' ? { port: m.port } : undefined));
  const records: Record_[] = [];
  const infos: Record<string, WorkloadInfo> = {};
  const failures: string[] = [];
  try {
    for (const w of opts.workloads) {
      // --callgrind: a quarter of the stream, then all of it (their difference is what one more dispatch costs)
      const lengths = opts.callgrind ? [Math.max(8, Math.floor(opts.messages / 4)), opts.messages] : [opts.messages];
      let info: WorkloadInfo | null = null;
      let wanted: number[] | null = null;
      for (const messages of lengths) {
        const warmup = Math.max(1, Math.floor(messages / 4)); // only places a marker; this bench measures everything
        const spec = { mix: w.mix, messages, warmup, seed: 42 };
        info = (await serverRequest(server, { cmd: 'prepare', spec }, 'prepared')).info;
        infos[w.name] = info;
        // The same workload the server built (deterministic): the `s` of every dispatch the filter lets through.
        wanted = w.events ? buildWorkload(spec, port).types.flatMap((t, i) => (w.events!.includes(t) ? [i + 2] : [])) : null;
        for (let rep = 1; rep <= opts.reps; rep++) {
          // Interleaved: every worker count once per repetition, so load drifts hit all of them alike.
          const order = rep % 2 === 1 ? opts.configs : [...opts.configs].reverse();
          for (const c of order) {
            try {
              const r = await runOne(server, port, w, wanted, rep, c, opts, messages);
              records.push(r);
              console.error(
                `  ${w.name}${opts.callgrind ? ` (${messages}/shard)` : ''} rep ${rep} ${name(c)}: ${opts.callgrind ? `${r.ir} instructions, ` : ''}${k(rate(r))} dispatches/s, ${(r.cpuUs / r.streamed).toFixed(2)} µs CPU/dispatch ` +
                  `(main ${r.mainCpuUs === null ? '–' : (r.mainCpuUs / r.streamed).toFixed(2)}), ELU ${r.elu.toFixed(2)}, ` +
                  `${(r.received / r.batches).toFixed(0)}/${r.maxBatch} per delivery, gap ${r.maxGapMs.toFixed(0)} ms, ` +
                  `peak RSS ${mb(r.peakRss)} MB, load ${r.load.toFixed(2)} (${r.ok ? 'ok' : `PROBLEM: ${r.problems.join('; ')}`})`,
              );
              if (!r.ok) failures.push(`${w.name}/${name(c)}/rep ${rep}: ${r.problems.join('; ')}`);
            } catch (err) {
              failures.push(`${w.name}/${name(c)}/rep ${rep}: ${(err as Error).message}`);
              console.error(`  ${w.name} rep ${rep} ${name(c)}: FAILED ${(err as Error).message}`);
            }
          }
        }
      }
      console.log((opts.callgrind ? instructionTable(records, w, opts) : table(records, w, info!, wanted, opts)) + '\n');
    }
  } finally {
    await stop(server, 0);
  }
  const loads = records.map((r) => r.load);
  console.log(`total ${((Date.now() - t0) / 1000).toFixed(1)} s; 1-min load average during the runs ${loads.length ? `${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)}` : '–'}`);
  console.log(`machine load at end: ${uptime()}`);
  if (opts.json) {
    mkdirSync(dirname(opts.json), { recursive: true });
    writeFileSync(opts.json, JSON.stringify({ node: process.version, cpus: availableParallelism(), options: opts, uptimeStart: upStart, workloads: infos, runs: records, failures }, null, 2));
  }
  if (failures.length) {
    console.error(`\n${failures.length} problem(s):\n${failures.map((f) => `- ${f}`).join('\n')}`);
    process.exitCode = 1;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Entry: the same file is the orchestrator (under tsx) and, with --client, a measured process (plain node)
// ---------------------------------------------------------------------------------------------------------

if (process.argv[2] === '--client') {
  process.once('message', (raw: unknown) => {
    const msg = raw as OrchestratorMsg;
    if (msg.cmd === 'job') runClient(msg.job).catch((err: Error) => clientFail(err.stack ?? err.message));
  });
  process.on('disconnect', () => process.exit(0));
} else {
  orchestrate().catch((err: Error) => {
    console.error(err.stack ?? err.message);
    killAll();
    process.exitCode = 1;
  });
}
