/**
 * `npm run bench`: client CPU per dispatch and RSS of shardline, its peers and the floor, each client in its own
 * process, against a bench gateway in another process replaying pre-compressed bytes over 127.0.0.1; then the
 * memory of 100 and 1000 idle shards (the floor, shardline and the peers).
 *
 * Flags:
 *   --quick            tiny counts; checks the harness (every client received every dispatch), no timing value
 *   --only a,b         only these clients (exact name or prefix: `shardline`, `djs`, `floor-zlib`) and/or
 *                      workloads (`presences_on`, `presences_off`, `filtered`, `memory`)
 *   --messages N       dispatches per stream (default 100 000; the first quarter is warm-up)
 *   --reps N           repetitions of each stream measurement (default 5; median and best are reported)
 *   --shards N[,M..]   idle shard counts of the memory benchmark (default 100,1000)
 *   --mem-reps N       repetitions of each memory measurement (default 1; the median is reported)
 *   --mem-variants a,b memory variants to run: `cold`, `warm` (default both)
 *   --json PATH        also write every raw result as JSON
 *   --cpu-prof DIR     run every stream client under `node --cpu-prof` and keep the profiles in DIR
 *   --callgrind        count instructions instead of CPU time: every stream client runs under
 *                      `valgrind --tool=callgrind` (about 50x slower), once on the stream and once on its first
 *                      quarter; (Ir of the full run − Ir of the short one) / (the dispatches between) is the
 *                      instructions per dispatch, with start-up and warm-up cancelled out. Repeatable to a
 *                      fraction of a percent whatever else the machine runs. Default --messages 40 000, --reps 1.
 *
 * This file runs under tsx; the measured processes don't: the bench sources are transpiled to `bench/.out/`
 * and started with plain `node`, and shardline is loaded from `dist/`.
 *
 * @module
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CLIENTS,
  ChildPool,
  callgrindTotals,
  median,
  transpileBench,
  nextMessage,
  type ClientJob,
  type ClientName,
  type ClientReport,
  type IdleResult,
  type MixName,
  type ServerCommand,
  type ServerReport,
  type StreamResult,
  type WorkloadInfo,
} from './common.js';
import { ensureFixtures } from './fixtures.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH_DIR, '..');
const OUT = join(BENCH_DIR, '.out');

// ---------------------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------------------

interface Options {
  quick: boolean;
  only: string[] | null;
  messages: number;
  reps: number;
  shards: number[];
  memReps: number;
  /** Memory variants to run (names of MEMORY_VARIANTS). */
  memVariants: string[];
  settleMs: number;
  json: string | null;
  /** Directory for `node --cpu-prof` profiles of the client processes, or null. */
  cpuProf: string | null;
  /** Count instructions under callgrind (see the flags above). */
  callgrind: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    quick: false,
    only: null,
    messages: 100_000,
    reps: 5,
    shards: [100, 1000],
    memReps: 1,
    memVariants: ['cold', 'warm'],
    settleMs: 3000,
    json: null,
    cpuProf: null,
    callgrind: false,
  };
  let messagesSet = false;
  let repsSet = false;
  let shardsSet = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const int = (): number => {
      const v = Number(val());
      if (!Number.isInteger(v) || v < 1) throw new Error(`${a} needs a positive integer`);
      return v;
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--only')
      o.only = val()
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    else if (a === '--messages') {
      o.messages = int();
      messagesSet = true;
    } else if (a === '--reps') {
      o.reps = int();
      repsSet = true;
    } else if (a === '--shards') {
      o.shards = val()
        .split(',')
        .map((x) => Number(x.trim()));
      if (o.shards.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`${a} needs positive integers`);
      shardsSet = true;
    } else if (a === '--mem-reps') {
      o.memReps = int();
    } else if (a === '--mem-variants') {
      o.memVariants = val()
        .split(',')
        .map((x) => x.trim());
      if (o.memVariants.some((v) => v !== 'cold' && v !== 'warm')) throw new Error(`${a} takes cold and/or warm`);
    } else if (a === '--json') o.json = resolve(val());
    else if (a === '--cpu-prof') o.cpuProf = resolve(val());
    else if (a === '--callgrind') o.callgrind = true;
    else if (a === '--help' || a === '-h') {
      console.log(
        readFileSync(fileURLToPath(import.meta.url), 'utf8')
          .split('\n')
          .slice(1, 24)
          .join('\n'),
      );
      process.exit(0);
    } else throw new Error(`unknown flag ${a}`);
  }
  if (o.quick) {
    if (!messagesSet) o.messages = 300;
    if (!repsSet) o.reps = 1;
    if (!shardsSet) o.shards = [20];
    o.settleMs = 200;
  }
  if (o.callgrind) {
    if (!messagesSet && !o.quick) o.messages = 40_000;
    if (!repsSet) o.reps = 1;
  }
  if (o.messages < 8) throw new Error('--messages must be at least 8');
  return o;
}

// ---------------------------------------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------------------------------------

interface StreamWorkload {
  name: string;
  mix: MixName;
  clients: ClientName[];
  /** Dispatch types asked for by clients that can filter (shardline); others parse everything. */
  events: string[] | null;
}

const ALL_CLIENTS = Object.keys(CLIENTS) as ClientName[];
const FILTER = ['MESSAGE_CREATE', 'INTERACTION_CREATE'];
const WORKLOADS: StreamWorkload[] = [
  { name: 'presences_on', mix: 'presences_on', clients: ALL_CLIENTS, events: null },
  { name: 'presences_off', mix: 'presences_off', clients: ALL_CLIENTS, events: null },
  {
    name: 'filtered',
    mix: 'presences_on',
    clients: ['floor-zlib', 'floor-zstd', 'floor-none', 'djs-zlib-sync', 'shardline-zlib', 'shardline-zstd', 'shardline-none'],
    events: FILTER,
  },
];
const MEMORY_CLIENTS: ClientName[] = ['floor-zlib', 'floor-zlib-sync', 'shardline-zlib', 'djs-zlib-sync', 'djs-native-zlib', 'discordeno-zlib'];

function selected(opts: Options, name: string): boolean {
  if (!opts.only) return true;
  const clientFilters = opts.only.filter((f) => !isWorkloadName(f));
  if (clientFilters.length === 0) return true;
  // A full client name selects exactly that client; anything else is a prefix (`shardline`, `djs`, `floor`).
  return clientFilters.some((f) => name === f || (!(f in CLIENTS) && name.startsWith(`${f}-`)));
}

function isWorkloadName(f: string): boolean {
  return f === 'memory' || WORKLOADS.some((w) => w.name === f);
}

function workloadSelected(opts: Options, name: string): boolean {
  if (!opts.only) return true;
  const w = opts.only.filter(isWorkloadName);
  return w.length === 0 || w.includes(name);
}

// ---------------------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------------------

const pool = new ChildPool(OUT, ROOT);
const start = (file: string, execArgv: string[], wrapper?: string[]): ChildProcess => pool.start(file, [], execArgv, wrapper);
const stop = (child: ChildProcess, graceMs?: number): Promise<void> => pool.stop(child, graceMs);
const killAll = (): void => pool.killAll();
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

class Server {
  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    readonly zstd: boolean,
  ) {}

  static async start(): Promise<Server> {
    const child = start('server.js', []);
    const { port, zstd } = await nextMessage<ServerReport, { port: number; zstd: boolean }>(child, 'bench server', 15_000, (m) =>
      m.type === 'listening' ? { port: m.port, zstd: m.zstd } : undefined,
    );
    return new Server(child, port, zstd);
  }

  request<T extends ServerReport['type']>(cmd: ServerCommand, type: T, timeoutMs = 120_000): Promise<Extract<ServerReport, { type: T }>> {
    const p = nextMessage<ServerReport, Extract<ServerReport, { type: T }>>(this.child, `bench server ${cmd.cmd}`, timeoutMs, (m) =>
      m.type === type ? (m as Extract<ServerReport, { type: T }>) : undefined,
    );
    this.child.send(cmd);
    return p;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------------------------

interface StreamRecord extends StreamResult {
  workload: string;
  /** 1-minute load average when the run ended. */
  load: number;
  rep: number;
  expectedTotal: number;
  expectedWindow: number;
  ok: boolean;
  problem: string | null;
  /** Instructions executed by the whole client process (`--callgrind`), else null. */
  ir: number | null;
  /** Of those, instructions in V8's optimizing compiler (`--callgrind`), else null. */
  irCompiler: number | null;
  /** Dispatches in the stream the client was given (all of them, warm-up included). */
  streamDispatches: number;
}

function expectedCounts(info: WorkloadInfo, events: string[] | null): { total: number; window: number } {
  const sum = (c: Record<string, number>): number => Object.entries(c).reduce((a, [t, n]) => a + (events === null || events.includes(t) ? n : 0), 0);
  return { total: sum(info.countsAll), window: sum(info.countsWindow) };
}

async function runStream(server: Server, w: StreamWorkload, info: WorkloadInfo, client: ClientName, rep: number, opts: Options): Promise<StreamRecord> {
  const filtering = client.startsWith('shardline-') && w.events !== null;
  const events = filtering ? w.events : null;
  const exp = expectedCounts(info, events);
  const job: ClientJob = {
    kind: 'stream',
    client,
    port: server.port,
    events,
    warmupSeq: info.warmupSeq,
    lastSeq: info.lastSeq,
    expectedTotal: exp.total,
    expectedWindow: exp.window,
    root: ROOT,
  };
  const prof = opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProf}`, `--cpu-prof-name=${w.name}.${client}.${rep}.cpuprofile`, '--cpu-prof-interval=100'] : [];
  // V8 writes code at run time: --smc-check makes valgrind see it (else it may run stale translations).
  const cgOut = opts.callgrind ? join(OUT, `callgrind.${w.name}.${client}.${info.lastSeq}.out`) : null;
  const wrapper = cgOut ? ['valgrind', '-q', '--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${cgOut}`] : undefined;
  const slow = opts.callgrind ? 20 : 1;
  const child = start('client.js', ['--expose-gc', ...prof], wrapper);
  let r: StreamResult;
  try {
    const what = `${client} on ${w.name}`;
    const ready = nextMessage<ClientReport, true>(child, what, 30_000 * slow, (m) => (m.type === 'ready' ? true : undefined));
    child.send(job);
    await ready;
    const result = nextMessage<ClientReport, StreamResult>(child, what, (opts.quick ? 30_000 : 180_000) * slow, (m) => (m.type === 'stream-result' ? m : undefined));
    await server.request({ cmd: 'start' }, 'started', 120_000 * slow);
    r = await result;
  } finally {
    await stop(child, 1500 * slow);
  }
  {
    const problems: string[] = [];
    if (r.received !== exp.total) problems.push(`received ${r.received} of ${exp.total} dispatches`);
    if (r.receivedWindow !== exp.window) problems.push(`received ${r.receivedWindow} of ${exp.window} in the window`);
    if (r.inversions > 0) problems.push(`${r.inversions} out-of-order dispatches`);
    const cg = cgOut ? callgrindTotals(cgOut) : null;
    return {
      ...r,
      workload: w.name,
      load: loadavg()[0]!,
      rep,
      expectedTotal: exp.total,
      expectedWindow: exp.window,
      ok: problems.length === 0,
      problem: problems.join('; ') || null,
      ir: cg?.ir ?? null,
      irCompiler: cg?.compiler ?? null,
      streamDispatches: info.lastSeq - 1,
    };
  }
}

interface IdleRecord extends IdleResult {
  /** JSON bytes of the dispatches each shard received after READY (0: the cold variant). */
  warmBytes: number;
  ok: boolean;
  problem: string | null;
}

/**
 * Memory variants: `cold` = HELLO + READY only (an idle shard just after connecting); `warm` = then ~64 KiB of
 * GUILD_CREATE dispatches per shard, as every real shard gets right after READY. Only warm traffic actually
 * writes (makes resident) per-connection output buffers and the 32 KiB inflate window.
 */
const MEMORY_VARIANTS = [
  { name: 'cold', warmBytes: 0 },
  { name: 'warm', warmBytes: 64 * 1024 },
] as const;

async function runIdle(server: Server, client: ClientName, opts: Options, shards: number, warmBytes: number, warmDispatches: number): Promise<IdleRecord> {
  const child = start('client.js', ['--expose-gc']);
  try {
    const job: ClientJob = { kind: 'idle', client, port: server.port, shards, settleMs: opts.settleMs, warmDispatches, root: ROOT };
    const p = nextMessage<ClientReport, IdleResult>(child, `${client} idle x${shards}`, 300_000, (m) => (m.type === 'idle-result' ? m : undefined));
    child.send(job);
    const r = await p;
    const stats = await server.request({ cmd: 'stats' }, 'stats');
    const problems: string[] = [];
    if (r.ready !== shards) problems.push(`${r.ready} of ${shards} shards READY`);
    if (stats.open < shards) problems.push(`server sees ${stats.open} open connections`);
    if (r.dispatches !== warmDispatches * shards) problems.push(`${r.dispatches} of ${warmDispatches * shards} warm dispatches received`);
    return { ...r, warmBytes, ok: problems.length === 0, problem: problems.join('; ') || null };
  } finally {
    if (child.connected) child.disconnect();
    await stop(child);
    await server.request({ cmd: 'close-all' }, 'stats');
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------------------------

const mb = (b: number): string => (b / 1048576).toFixed(1);
const kb = (b: number): string => (b / 1024).toFixed(1);

const FLOOR_OF: Record<string, ClientName> = { 'zlib-stream': 'floor-zlib', 'zstd-stream': 'floor-zstd', none: 'floor-none' };

interface Row {
  client: ClientName;
  us: number;
  min: number;
  max: number;
  rss: number;
  maxRss: number;
  ok: boolean;
  backend: string | null;
  note: string;
}

function rows(records: StreamRecord[], workload: string): Row[] {
  const by = new Map<ClientName, StreamRecord[]>();
  for (const r of records) if (r.workload === workload) (by.get(r.client as ClientName) ?? by.set(r.client as ClientName, []).get(r.client as ClientName)!).push(r);
  return [...by.entries()].map(([client, rs]) => {
    const us = rs.map((r) => r.cpuUs / r.windowDispatches);
    const bad = rs.filter((r) => !r.ok);
    return {
      client,
      us: median(us),
      min: Math.min(...us),
      max: Math.max(...us),
      rss: median(rs.map((r) => r.rss)),
      maxRss: Math.max(...rs.map((r) => r.maxRss)),
      ok: bad.length === 0,
      backend: rs[0]!.backend,
      note: bad.map((r) => r.problem).join(' / '),
    };
  });
}

function streamTable(records: StreamRecord[], w: StreamWorkload, info: WorkloadInfo): string {
  const rs = rows(records, w.name);
  const us = new Map(rs.map((r) => [r.client, r.us]));
  const floorZlib = us.get('floor-zlib');
  const lines = [
    `### ${w.name}${w.events ? ` (shardline asks only for ${w.events.join(', ')}; floor and peers parse everything)` : ''}`,
    '',
    `mix \`${w.mix}\`, ${info.lastSeq - info.warmupSeq} measured dispatches (after ${info.warmupSeq - 1} warm-up), ` +
      `${mb(info.jsonBytes)} MB JSON → zlib-stream ${mb(info.bytes['zlib-stream'])} MB (${(info.jsonBytes / info.bytes['zlib-stream']).toFixed(1)}x)` +
      (info.bytes['zstd-stream'] ? `, zstd-stream ${mb(info.bytes['zstd-stream'])} MB (${(info.jsonBytes / info.bytes['zstd-stream']).toFixed(1)}x)` : ''),
    '',
    '| client | transport (backend) | µs / dispatch (median) | min–max | × floor-zlib | × floor, same transport | RSS end | peak RSS |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rs) {
    const transport = CLIENTS[r.client];
    const sameFloor = us.get(FLOOR_OF[transport]!);
    const ratio = (base: number | undefined): string => (base ? `${(r.us / base).toFixed(2)}x` : '–');
    lines.push(
      `| ${r.client}${r.ok ? '' : ' ⚠'} | ${transport}${r.backend ? ` (${r.backend})` : ''} | ${r.us.toFixed(2)} | ${r.min.toFixed(2)}–${r.max.toFixed(2)} | ${ratio(floorZlib)} | ${ratio(sameFloor)} | ${mb(r.rss)} MB | ${mb(r.maxRss)} MB |`,
    );
  }
  const bad = rs.filter((r) => !r.ok);
  if (bad.length) lines.push('', ...bad.map((r) => `⚠ ${r.client}: ${r.note}`));
  return lines.join('\n');
}

/**
 * `--callgrind`: instructions per dispatch of each client, from its two runs (the stream's first quarter and the
 * whole stream): the difference of their totals over the difference of their dispatches. Process start-up, module
 * loading, connecting and the JIT's warm-up are in both runs and cancel out.
 */
function instructionTable(records: StreamRecord[], w: StreamWorkload): string {
  const by = new Map<string, StreamRecord[]>();
  for (const r of records) if (r.workload === w.name && r.ir !== null && r.ok) (by.get(r.client) ?? by.set(r.client, []).get(r.client)!).push(r);
  /** Per client: [all instructions, instructions outside the optimizing compiler] per dispatch. */
  const per = new Map<string, [number, number]>();
  for (const [client, rs] of by) {
    const short = rs.filter((r) => r.streamDispatches === Math.min(...rs.map((x) => x.streamDispatches)));
    const long = rs.filter((r) => r.streamDispatches === Math.max(...rs.map((x) => x.streamDispatches)));
    if (!short.length || !long.length || short[0]!.streamDispatches === long[0]!.streamDispatches) continue;
    const n = long[0]!.streamDispatches - short[0]!.streamDispatches;
    const all = (xs: StreamRecord[]): number => median(xs.map((x) => x.ir!));
    const net = (xs: StreamRecord[]): number => median(xs.map((x) => x.ir! - x.irCompiler!));
    per.set(client, [(all(long) - all(short)) / n, (net(long) - net(short)) / n]);
  }
  const floor = per.get('floor-zlib');
  const x = (v: number, base: number | undefined): string => (base ? `${(v / base).toFixed(3)}x` : '–');
  const lines = [
    `### ${w.name}${w.events ? ` (shardline asks only for ${w.events.join(', ')}; floor and peers parse everything)` : ''}: instructions per dispatch (callgrind)`,
    '',
    '| client | transport | instructions / dispatch | × floor-zlib | without the optimizing compiler | × floor-zlib |',
    '|---|---|---:|---:|---:|---:|',
  ];
  for (const [client, [all, net]] of per) {
    lines.push(`| ${client} | ${CLIENTS[client as ClientName]} | ${Math.round(all)} | ${x(all, floor?.[0])} | ${Math.round(net)} | ${x(net, floor?.[1])} |`);
  }
  const s = per.get('shardline-zlib');
  const d = per.get('djs-zlib-sync');
  const pair = (a: [number, number], b: [number, number]): string => `${(a[0] / b[0]).toFixed(3)}x (${(a[1] / b[1]).toFixed(3)}x without the compiler)`;
  if (s && floor) lines.push('', `shardline-zlib / floor-zlib = ${pair(s, floor)}`);
  if (s && floor && w.events) lines.push(`floor-zlib / shardline-zlib = ${pair(floor, s)} cheaper`);
  if (s && d) lines.push(`djs-zlib-sync / shardline-zlib = ${pair(d, s)}`);
  return lines.join('\n');
}

/** Per-shard growth of one memory figure, median over the repetitions of one client/variant/count. */
function perShard(rs: IdleRecord[], k: 'rss' | 'heapUsed' | 'heapTotal' | 'external' | 'own'): number {
  // `own`: RSS growth less the growth of V8's unused heap (heapTotal − heapUsed), i.e. without the young
  // generation's slack that the connect burst leaves behind (it varies by ±10 KB/shard from run to run).
  const own = (m: IdleRecord['after']): number => m.rss - (m.heapTotal - m.heapUsed);
  return median(rs.map((r) => (k === 'own' ? own(r.after) - own(r.before) : r.after[k] - r.before[k]) / r.shards));
}

function idleGroups(records: IdleRecord[]): Map<string, IdleRecord[]> {
  const by = new Map<string, IdleRecord[]>();
  for (const r of records) {
    const key = `${r.shards}|${r.warmBytes ? 'warm' : 'cold'}|${r.client}`;
    (by.get(key) ?? by.set(key, []).get(key)!).push(r);
  }
  return by;
}

function idleTable(records: IdleRecord[]): string {
  const groups = idleGroups(records);
  const reps = Math.max(...[...groups.values()].map((g) => g.length));
  const lines = [
    `### memory per idle connected shard (zlib-stream, all READY, idle then GC; warm: after ~64 KiB of GUILD_CREATE each${reps > 1 ? `; median of ${reps}` : ''})`,
    '',
    '| shards | variant | client | RSS / shard | × floor-zlib | × djs-zlib-sync | RSS − heap slack / shard | × djs-zlib-sync | heapUsed / shard | × floor-zlib | heapTotal / shard | external / shard | connect all (ms) | RSS total |',
    '|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const [key, rs] of groups) {
    const [shards, variant, client] = key.split('|') as [string, string, ClientName];
    const floor = groups.get(`${shards}|${variant}|floor-zlib`);
    const djs = groups.get(`${shards}|${variant}|djs-zlib-sync`);
    const rss = perShard(rs, 'rss');
    const heap = perShard(rs, 'heapUsed');
    const x = (v: number, base: IdleRecord[] | undefined, k: 'rss' | 'heapUsed'): string => (base ? `${(v / perShard(base, k)).toFixed(2)}x` : '–');
    const bad = rs.some((r) => !r.ok);
    const own = perShard(rs, 'own');
    const ownX = djs ? `${(own / perShard(djs, 'own')).toFixed(2)}x` : '–';
    lines.push(
      `| ${shards} | ${variant} | ${client}${bad ? ' ⚠' : ''} | ${kb(rss)} KB | ${x(rss, floor, 'rss')} | ${x(rss, djs, 'rss')} | ${kb(own)} KB | ${ownX} | ${kb(heap)} KB | ${x(heap, floor, 'heapUsed')} | ${kb(perShard(rs, 'heapTotal'))} KB | ${kb(perShard(rs, 'external'))} KB | ${median(rs.map((r) => r.connectMs)).toFixed(0)} | ${mb(median(rs.map((r) => r.after.rss)))} MB |`,
    );
  }
  const bad = records.filter((r) => !r.ok);
  if (bad.length) lines.push('', ...bad.map((r) => `⚠ ${r.client} x${r.shards}: ${r.problem}`));
  return lines.join('\n');
}

function targets(records: StreamRecord[], idle: IdleRecord[]): string {
  const get = (w: string, c: ClientName): Row | undefined => rows(records, w).find((r) => r.client === c);
  const lines = ['### targets (ratios by median of the repetitions; by best-of-N in brackets)', ''];
  const verdict = (med: number, best: number, ok: (x: number) => boolean): string =>
    ok(med) && ok(best) ? 'met' : !ok(med) && !ok(best) ? 'MISSED' : `met by ${ok(med) ? 'median' : 'best-of-N'} only`;
  for (const w of ['presences_on', 'presences_off']) {
    const s = get(w, 'shardline-zlib');
    const f = get(w, 'floor-zlib');
    const d = get(w, 'djs-zlib-sync');
    if (s && f) {
      const within = (x: number): boolean => x <= 1.1;
      lines.push(`- ${w}: shardline-zlib / floor-zlib = ${(s.us / f.us).toFixed(2)}x [${(s.min / f.min).toFixed(2)}x] (target ≤ 1.10x): ${verdict(s.us / f.us, s.min / f.min, within)}`);
    }
    if (s && d) {
      const enough = (x: number): boolean => x >= 1.5;
      lines.push(`- ${w}: djs-zlib-sync / shardline-zlib = ${(d.us / s.us).toFixed(2)}x [${(d.min / s.min).toFixed(2)}x] less CPU (target ≥ 1.5x): ${verdict(d.us / s.us, d.min / s.min, enough)}`);
    }
  }
  const sf = get('filtered', 'shardline-zlib');
  const ff = get('filtered', 'floor-zlib');
  if (sf && ff) {
    const enough = (x: number): boolean => x >= 3;
    lines.push(`- filtered: floor-zlib / shardline-zlib = ${(ff.us / sf.us).toFixed(2)}x [${(ff.min / sf.min).toFixed(2)}x] cheaper (target ≥ 3x): ${verdict(ff.us / sf.us, ff.min / sf.min, enough)}`);
  }
  const groups = idleGroups(idle);
  for (const [key, sm] of groups) {
    const [shards, variant, client] = key.split('|') as [string, string, ClientName];
    if (client !== 'shardline-zlib') continue;
    const dm = groups.get(`${shards}|${variant}|djs-zlib-sync`);
    const fm = groups.get(`${shards}|${variant}|floor-zlib`);
    if (!dm) continue;
    const x = perShard(sm, 'rss') / perShard(dm, 'rss');
    const floor = fm ? `; floor-zlib ${kb(perShard(fm, 'rss'))} KB = ${(perShard(fm, 'rss') / perShard(dm, 'rss')).toFixed(2)}x` : '';
    lines.push(
      `- memory (${shards} shards, ${variant}): shardline ${kb(perShard(sm, 'rss'))} KB vs @discordjs/ws+zlib-sync ${kb(perShard(dm, 'rss'))} KB RSS per idle shard = ${x.toFixed(2)}x (target ≤ 0.58x)${floor}: ${x <= 0.58 ? 'met' : 'MISSED'}`,
    );
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(join(ROOT, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm run bench does)');
  await transpileBench(BENCH_DIR, OUT, ['common.ts', 'payloads.ts', 'server.ts', 'client.ts']);
  ensureFixtures(OUT);
  const t0 = Date.now();
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(`# shardline bench${opts.quick ? ' (--quick: harness check only, figures meaningless)' : ''}`);
  console.log(`node ${process.version}, ${availableParallelism()} CPUs (${cpu}), ${mb(totalmem())} MB RAM, ${opts.messages} dispatches/stream, ${opts.reps} rep(s)\n`);

  console.log(
    `load average at start: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')} (CPU time is measured, but other processes on the machine still add noise)\n`,
  );
  const server = await Server.start();
  const streamRecords: StreamRecord[] = [];
  const idleRecords: IdleRecord[] = [];
  const infos = new Map<string, WorkloadInfo>();
  const failures: string[] = [];
  try {
    for (const w of WORKLOADS) {
      if (!workloadSelected(opts, w.name)) continue;
      const clients = w.clients.filter((c) => selected(opts, c) && (server.zstd || CLIENTS[c] !== 'zstd-stream'));
      if (clients.length === 0) continue;
      // --callgrind: first the stream's first quarter, then the whole stream (see instructionTable)
      const lengths = opts.callgrind ? [Math.max(8, Math.floor(opts.messages / 4)), opts.messages] : [opts.messages];
      let info!: WorkloadInfo;
      for (const messages of lengths) {
        const warmup = Math.max(2, Math.floor(messages / 4));
        ({ info } = await server.request({ cmd: 'prepare', spec: { mix: w.mix, messages, warmup, seed: 42 } }, 'prepared'));
        infos.set(w.name, info);
        for (let rep = 1; rep <= opts.reps; rep++) {
          for (const c of clients) {
            try {
              const r = await runStream(server, w, info, c, rep, opts);
              streamRecords.push(r);
              const tag = r.ok ? 'ok' : `PROBLEM: ${r.problem}`;
              const ir = r.ir !== null ? `, ${r.ir} instructions for ${r.streamDispatches} dispatches` : '';
              console.error(`  ${w.name} rep ${rep} ${c}: ${(r.cpuUs / r.windowDispatches).toFixed(2)} µs/dispatch, RSS ${mb(r.rss)} MB${ir} (${tag})`);
              if (!r.ok) failures.push(`${w.name}/${c}: ${r.problem}`);
            } catch (err) {
              failures.push(`${w.name}/${c}: ${(err as Error).message}`);
              console.error(`  ${w.name} rep ${rep} ${c}: FAILED ${(err as Error).message}`);
            }
          }
        }
      }
      if (opts.callgrind)
        console.log(`mix \`${w.mix}\`: ${mb(info.jsonBytes)} MB JSON → zlib-stream ${mb(info.bytes['zlib-stream'])} MB (${(info.jsonBytes / info.bytes['zlib-stream']).toFixed(1)}x)\n`);
      console.log((opts.callgrind ? instructionTable(streamRecords, w) : streamTable(streamRecords, w, info)) + '\n');
    }
    if (workloadSelected(opts, 'memory') && !opts.callgrind) {
      const clients = MEMORY_CLIENTS.filter((c) => selected(opts, c));
      for (const v of clients.length ? MEMORY_VARIANTS.filter((x) => opts.memVariants.includes(x.name)) : []) {
        const { info } = await server.request({ cmd: 'idle', warmBytes: v.warmBytes }, 'prepared');
        const warmDispatches = info.countsAll.GUILD_CREATE ?? 0;
        for (const shards of opts.shards) {
          for (let rep = 1; rep <= opts.memReps; rep++) {
            for (const c of clients) {
              const what = `memory ${shards} ${v.name} ${c}${opts.memReps > 1 ? ` rep ${rep}` : ''}`;
              try {
                const r = await runIdle(server, c, opts, shards, v.warmBytes, warmDispatches);
                idleRecords.push(r);
                console.error(
                  `  ${what}: ${kb((r.after.rss - r.before.rss) / r.shards)} KB RSS/shard, heapUsed ${kb((r.after.heapUsed - r.before.heapUsed) / r.shards)} KB (${r.ok ? 'ok' : r.problem})`,
                );
                if (!r.ok) failures.push(`${what}: ${r.problem}`);
              } catch (err) {
                failures.push(`${what}: ${(err as Error).message}`);
                console.error(`  ${what}: FAILED ${(err as Error).message}`);
              }
            }
          }
        }
      }
      if (idleRecords.length) console.log(idleTable(idleRecords) + '\n');
    }
    if (!opts.callgrind) console.log(targets(streamRecords, idleRecords) + '\n');
  } finally {
    await stop(server.child, 0);
  }
  console.log(
    `total ${((Date.now() - t0) / 1000).toFixed(1)} s; load average at end: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  if (opts.json) {
    mkdirSync(dirname(opts.json), { recursive: true });
    const results = {
      node: process.version,
      cpus: availableParallelism(),
      options: opts,
      workloads: Object.fromEntries(infos),
      stream: streamRecords,
      idle: idleRecords.filter((r) => r.warmBytes === 0),
      idleWarm: idleRecords.filter((r) => r.warmBytes > 0),
      failures,
    };
    writeFileSync(opts.json, JSON.stringify(results, null, 2));
  }
  if (failures.length) {
    console.error(`\n${failures.length} harness problem(s):\n${failures.map((f) => `- ${f}`).join('\n')}`);
    process.exitCode = 1;
  }
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  killAll();
  process.exitCode = 1;
});
