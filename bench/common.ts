/**
 * Shared pieces of the `npm run bench` harness: workload generation (pre-serialized gateway messages drawn from
 * the fixtures by the `suggested_mix` weights), synchronous stream encoders used by the bench server, a minimal
 * synchronous zlib-stream inflater for the "floor" client, and the IPC message types.
 *
 * Everything here runs in child processes started with plain `node` (no tsx): `run.ts` transpiles the bench
 * files to `bench/.out/` first.
 *
 * @module
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import { PayloadWorld } from './payloads.js';

/** Where the fixtures live (shared project data). */
/**
 * The shared fixture file (`../shared/data/example-payloads.json` beside the repository). `run.ts` points
 * SHARDLINE_FIXTURES at a copy of the simulator's packaged fixtures (the same data) when that file is absent.
 */
export function fixturesPath(): string {
  return process.env.SHARDLINE_FIXTURES ?? resolvePath(process.cwd(), '../shared/data/example-payloads.json');
}

/** Every client the harness knows, with the transport it asks the server for. */
export const CLIENTS = {
  'floor-zlib': 'zlib-stream',
  'floor-zlib-sync': 'zlib-stream',
  'floor-zstd': 'zstd-stream',
  'floor-none': 'none',
  'shardline-zlib': 'zlib-stream',
  'shardline-zstd': 'zstd-stream',
  'shardline-none': 'none',
  'djs-zlib-sync': 'zlib-stream',
  'djs-native-zlib': 'zlib-stream',
  'discordeno-zlib': 'zlib-stream',
  'discordeno-zstd': 'zstd-stream',
} as const;
export type ClientName = keyof typeof CLIENTS;

/** Transport formats the bench server can replay. */
export type Format = 'none' | 'zlib-stream' | 'zstd-stream';

/** Mix names from `suggested_mix`. */
export type MixName = 'presences_on' | 'presences_off';

/** What the bench server replays to one connection. */
export interface WorkloadSpec {
  mix: MixName;
  /** Dispatches after READY, including the two marker MESSAGE_CREATEs. */
  messages: number;
  /** Dispatches (after READY) that are warm-up; the measured window starts after the marker at this position. */
  warmup: number;
  seed: number;
}

/** Summary of a prepared workload (same for every format). */
export interface WorkloadInfo {
  /** `s` of the warm-up marker: measurement starts when it is delivered. */
  warmupSeq: number;
  /** `s` of the final marker: measurement ends when it is delivered. */
  lastSeq: number;
  /** Dispatch count by type over the whole stream (READY excluded). */
  countsAll: Record<string, number>;
  /** Dispatch count by type in the measured window (warmupSeq, lastSeq]. */
  countsWindow: Record<string, number>;
  /** Bytes of the stream per format (READY and HELLO included). */
  bytes: Record<Format, number>;
  /** Uncompressed JSON bytes of the dispatches. */
  jsonBytes: number;
}

/** Server → orchestrator. */
export type ServerReport =
  | { type: 'listening'; port: number; zstd: boolean }
  | { type: 'prepared'; info: WorkloadInfo }
  | { type: 'started'; connections: number }
  | { type: 'stats'; connections: number; open: number; identifies: number; heartbeats: number; acks: number; lateAcks: number }
  | { type: 'error'; message: string };

/** Orchestrator → server. */
export type ServerCommand = { cmd: 'prepare'; spec: WorkloadSpec } | { cmd: 'idle'; warmBytes?: number } | { cmd: 'start' } | { cmd: 'stats' } | { cmd: 'close-all' };

/** Orchestrator → client: run a dispatch stream. */
export interface StreamJob {
  kind: 'stream';
  client: string;
  port: number;
  /** Dispatch types the client asks for (only clients with a filter use it). */
  events: string[] | null;
  warmupSeq: number;
  lastSeq: number;
  /** Dispatches the client must deliver over the whole stream (READY excluded). */
  expectedTotal: number;
  /** Dispatches the client must deliver inside the measured window. */
  expectedWindow: number;
  /** Absolute path of the repository (to load `dist/` and `node_modules`). */
  root: string;
}

/** Orchestrator → client: connect many idle shards and measure memory. */
export interface IdleJob {
  kind: 'idle';
  client: string;
  port: number;
  shards: number;
  /** ms to stay idle after every shard is READY before measuring. */
  settleMs: number;
  /** Dispatches each shard receives after READY (the warm variant); the client waits for all of them. */
  warmDispatches: number;
  root: string;
}

export type ClientJob = StreamJob | IdleJob;

/** Result of a stream job. */
export interface StreamResult {
  type: 'stream-result';
  client: string;
  /** Dispatches delivered (READY excluded). */
  received: number;
  /** Dispatches delivered inside the measured window. */
  receivedWindow: number;
  /** Times a dispatch arrived with an `s` lower than one delivered before it. */
  inversions: number;
  /** Dispatches in the stream inside the window (the divisor of the per-dispatch figures). */
  windowDispatches: number;
  /** Client CPU (user + system, all threads) over the window, µs. */
  cpuUs: number;
  userUs: number;
  systemUs: number;
  wallMs: number;
  /** RSS at the end of the window, bytes. */
  rss: number;
  /** Peak RSS of the process, bytes. */
  maxRss: number;
  heapUsed: number;
  backend: string | null;
}

/** Result of an idle job. */
export interface IdleResult {
  type: 'idle-result';
  client: string;
  shards: number;
  ready: number;
  /** Dispatches received after READY, all shards together (warm variant; 0 otherwise). */
  dispatches: number;
  connectMs: number;
  before: MemorySample;
  after: MemorySample;
}

export interface MemorySample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

export type ClientReport = { type: 'ready' } | { type: 'progress'; ready: number } | StreamResult | IdleResult | { type: 'error'; message: string };

// ---------------------------------------------------------------------------------------------------------
// Fixtures and workload
// ---------------------------------------------------------------------------------------------------------

interface FixtureFile {
  control: Record<string, { op: number; d: unknown }>;
  dispatch: Record<string, { op: number; d: unknown; t: string }>;
  suggested_mix: Record<string, unknown>;
}

let fixtureCache: FixtureFile | null = null;

export function loadFixtures(): FixtureFile {
  fixtureCache ??= JSON.parse(readFileSync(fixturesPath(), 'utf8')) as FixtureFile;
  return fixtureCache;
}

/** Small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Dispatch fixtures never drawn for `other` (session control or answers to requests we never make). */
const NOT_TRAFFIC = new Set(['READY', 'RESUMED', 'GUILD_MEMBERS_CHUNK', 'RATE_LIMITED']);

/**
 * Weights of a mix as [type, weight] pairs. `other` is spread evenly over the dispatch fixtures that the mix
 * doesn't name (and that are ordinary traffic); names without a fixture are spread the same way.
 */
export function mixWeights(mix: MixName): Array<[string, number]> {
  const fx = loadFixtures();
  const raw = fx.suggested_mix[mix] as Record<string, number>;
  const out = new Map<string, number>();
  let spread = 0;
  for (const [name, w] of Object.entries(raw)) {
    if (fx.dispatch[name] && !NOT_TRAFFIC.has(name)) out.set(name, (out.get(name) ?? 0) + w);
    else spread += w;
  }
  const rest = Object.keys(fx.dispatch).filter((n) => !NOT_TRAFFIC.has(n) && !out.has(n));
  const pool = rest.length > 0 ? rest : [...out.keys()];
  for (const n of pool) out.set(n, (out.get(n) ?? 0) + spread / pool.length);
  return [...out.entries()];
}

/** The marker dispatch type (wanted by the filtered workload, present in both mixes). */
export const MARKER_TYPE = 'MESSAGE_CREATE';

/** A gateway envelope serialized the way Discord writes it (`t, s, op, d`). */
export function envelope(op: number, d: unknown, s: number | null, t: string | null): string {
  return `{"t":${JSON.stringify(t)},"s":${s === null ? 'null' : s},"op":${op},"d":${JSON.stringify(d)}}`;
}

export interface Workload {
  /** HELLO, READY, then the dispatches; all as JSON text. */
  messages: string[];
  /** Dispatch types in order (index 0 = s 2). */
  types: string[];
  info: Omit<WorkloadInfo, 'bytes'>;
}

/** HELLO's heartbeat interval (the usual production value). */
export const HEARTBEAT_INTERVAL = 41_250;

export function helloJson(): string {
  return envelope(10, { heartbeat_interval: HEARTBEAT_INTERVAL }, null, null);
}

/**
 * Traffic of the warm memory variant: GUILD_CREATE dispatches (s = 2, 3, …; what Discord sends after READY,
 * one per guild) until at least `bytes` of JSON. Enough output that per-connection output buffers and the
 * inflate window are actually written, i.e. resident, as on any real shard.
 */
export function warmJsons(bytes: number): string[] {
  const fx = loadFixtures();
  const world = new PayloadWorld(prng(7));
  const out: string[] = [];
  let total = 0;
  for (let s = 2; total < bytes; s++) {
    const text = envelope(0, world.vary(fx.dispatch.GUILD_CREATE!.d), s, 'GUILD_CREATE');
    out.push(text);
    total += text.length;
  }
  return out;
}

export function readyJson(port: number, sessionId: string, shard: [number, number]): string {
  const fx = loadFixtures();
  const d = { ...(fx.dispatch.READY!.d as Record<string, unknown>) };
  d.session_id = sessionId;
  d.resume_gateway_url = `ws://127.0.0.1:${port}`;
  d.shard = shard;
  // The idle shard measured is one whose guilds have loaded: a READY that listed unavailable guilds would keep
  // shardline's guild wait (a Set and a timer, released on the last GUILD_CREATE or after guildsTimeout) alive
  // through the whole measurement, which no steady-state shard holds. No peer tracks READY's guilds.
  d.guilds = [];
  return envelope(0, d, 1, 'READY');
}

/**
 * Build the message list of a workload: HELLO, READY (s=1), then `messages` dispatches with increasing `s`
 * drawn by the mix weights; the dispatch at position `warmup` and the last one are MESSAGE_CREATE markers.
 */
export function buildWorkload(spec: WorkloadSpec, port: number): Workload {
  if (spec.messages < 4 || spec.warmup < 1 || spec.warmup >= spec.messages - 1) throw new RangeError('need 1 <= warmup < messages - 1');
  const weights = mixWeights(spec.mix);
  const total = weights.reduce((a, [, w]) => a + w, 0);
  const templates = loadFixtures().dispatch;
  // Types are drawn by `rnd` (the same sequence as ever); values by the world's own generator.
  const world = new PayloadWorld(prng(spec.seed ^ 0x5eed));
  const rnd = prng(spec.seed);
  const messages = [helloJson(), readyJson(port, 'bench-session-0000000000000000', [0, 1])];
  const types: string[] = [];
  const countsAll: Record<string, number> = {};
  const countsWindow: Record<string, number> = {};
  let jsonBytes = 0;
  const warmupSeq = spec.warmup + 1; // dispatch i (1-based) has s = i + 1
  const lastSeq = spec.messages + 1;
  for (let i = 1; i <= spec.messages; i++) {
    let type: string;
    if (i === spec.warmup || i === spec.messages) type = MARKER_TYPE;
    else {
      let x = rnd() * total;
      type = weights[weights.length - 1]![0];
      for (const [name, w] of weights) {
        x -= w;
        if (x < 0) {
          type = name;
          break;
        }
      }
    }
    const s = i + 1;
    const text = `{"t":"${type}","s":${s},"op":0,"d":${JSON.stringify(world.vary(templates[type]!.d))}}`;
    jsonBytes += Buffer.byteLength(text);
    messages.push(text);
    types.push(type);
    countsAll[type] = (countsAll[type] ?? 0) + 1;
    if (s > warmupSeq) countsWindow[type] = (countsWindow[type] ?? 0) + 1;
  }
  return { messages, types, info: { warmupSeq, lastSeq, countsAll, countsWindow, jsonBytes } };
}

// ---------------------------------------------------------------------------------------------------------
// Stream encoders (server side): one context per connection, flushed after every message
// ---------------------------------------------------------------------------------------------------------

/** One connection's compressor: every `encode` output is one websocket message. */
export interface StreamEncoder {
  encode(text: string): Buffer;
  close(): void;
}

interface NodeZlibInternals {
  _processChunk(chunk: Buffer, flushFlag: number): Buffer;
  _handle: { close(): void } | null;
  on(event: 'error', fn: (e: unknown) => void): unknown;
  removeAllListeners(event: 'error'): unknown;
}

/**
 * zlib-stream compressor: one deflate context, `Z_SYNC_FLUSH` after each message, through the synchronous path
 * inside `node:zlib` (`_processChunk` without a callback). Its native handle is kept open between calls.
 * Deterministic: the same messages give the same bytes, which the server relies on to rebuild a context.
 */
export function zlibEncoder(): StreamEncoder {
  const inst = zlib.createDeflate({ level: 6 }) as unknown as NodeZlibInternals;
  const handle = inst._handle!;
  const realClose = handle.close;
  handle.close = () => {};
  const SYNC = zlib.constants.Z_SYNC_FLUSH;
  return {
    encode(text) {
      try {
        // The result may be a view of the stream's reusable output buffer: copy it.
        return Buffer.from(inst._processChunk(Buffer.from(text), SYNC));
      } finally {
        inst._handle = handle;
        inst.removeAllListeners('error');
        inst.on('error', () => {});
      }
    },
    close() {
      inst._handle = null;
      realClose.call(handle);
    },
  };
}

interface ZstdBinding {
  CCtx: new () => {
    compressStream2(dst: Uint8Array, src: Uint8Array, endOp: number): [number, number, number];
    setParameter(param: number, value: number): void;
  };
  DCtx: new () => { decompressStream(dst: Uint8Array, src: Uint8Array): [number, number, number] };
}

const req = createRequire(import.meta.url);

export function loadZstd(): ZstdBinding | null {
  try {
    return req('zstd-napi/binding') as ZstdBinding;
  } catch {
    return null;
  }
}

/** ZSTD_e_flush */
const ZSTD_E_FLUSH = 1;
/** ZSTD_c_compressionLevel */
const ZSTD_C_LEVEL = 100;

/** zstd-stream compressor: one never-ended frame, `ZSTD_e_flush` after each message (needs zstd-napi). */
export function zstdEncoder(): StreamEncoder {
  const z = loadZstd();
  if (!z) throw new Error('zstd-napi is not installed');
  const cctx = new z.CCtx();
  cctx.setParameter(ZSTD_C_LEVEL, 3);
  let dst = Buffer.allocUnsafe(256 * 1024);
  return {
    encode(text) {
      let src: Buffer = Buffer.from(text);
      const parts: Buffer[] = [];
      for (;;) {
        const [remaining, produced, consumed] = cctx.compressStream2(dst, src, ZSTD_E_FLUSH);
        if (produced > 0) parts.push(Buffer.from(dst.subarray(0, produced)));
        src = src.subarray(consumed);
        if (remaining === 0 && src.length === 0) break;
        if (produced === dst.length) dst = Buffer.allocUnsafe(dst.length * 2);
      }
      return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    },
    close() {},
  };
}

export function createEncoder(format: Format): StreamEncoder | null {
  if (format === 'zlib-stream') return zlibEncoder();
  if (format === 'zstd-stream') return zstdEncoder();
  return null;
}

// ---------------------------------------------------------------------------------------------------------
// Floor decoders (client side): the least work any client must do per message
// ---------------------------------------------------------------------------------------------------------

/** One connection's decompressor for the floor client: returns the message text, or null when incomplete. */
export interface FloorDecoder {
  push(chunk: Buffer): string | null;
}

function endsWithSyncFlush(b: Buffer): boolean {
  const n = b.length;
  return n >= 4 && b[n - 4] === 0x00 && b[n - 3] === 0x00 && b[n - 2] === 0xff && b[n - 1] === 0xff;
}

/** zlib-stream through the synchronous `node:zlib` path; the output is decoded before the next call reuses it. */
export function floorNodeZlib(): FloorDecoder {
  const inst = zlib.createInflate({ chunkSize: 64 * 1024 }) as unknown as NodeZlibInternals;
  const handle = inst._handle!;
  handle.close = () => {};
  const SYNC = zlib.constants.Z_SYNC_FLUSH;
  let pending: Buffer[] = [];
  return {
    push(chunk) {
      if (!endsWithSyncFlush(chunk)) {
        pending.push(chunk);
        return null;
      }
      let input = chunk;
      if (pending.length > 0) {
        pending.push(chunk);
        input = Buffer.concat(pending);
        pending = [];
      }
      const out = inst._processChunk(input, SYNC);
      // _processChunk closes the handle and adds an 'error' listener per call: undo both.
      inst._handle = handle;
      inst.removeAllListeners('error');
      // The result is a view of a reusable buffer: decode it before the next call.
      return out.toString('utf8');
    },
  };
}

interface ZlibSyncInflate {
  push(b: Buffer, flush: number): void;
  readonly result: Buffer | string | null;
  readonly err: number;
  readonly msg: string | null;
}

/** zlib-stream through the `zlib-sync` addon. */
export function floorZlibSync(): FloorDecoder {
  const Z = req('zlib-sync') as { Inflate: new (o: { chunkSize: number }) => ZlibSyncInflate; Z_SYNC_FLUSH: number; Z_NO_FLUSH: number };
  const inf = new Z.Inflate({ chunkSize: 64 * 1024 });
  return {
    push(chunk) {
      const flush = endsWithSyncFlush(chunk);
      inf.push(chunk, flush ? Z.Z_SYNC_FLUSH : Z.Z_NO_FLUSH);
      if (inf.err < 0) throw new Error(`zlib-sync error ${inf.err} ${inf.msg ?? ''}`);
      if (!flush) return null;
      const r = inf.result!;
      return typeof r === 'string' ? r : r.toString('utf8');
    },
  };
}

/** zstd-stream through zstd-napi's streaming decompressor. */
export function floorZstd(): FloorDecoder {
  const z = loadZstd();
  if (!z) throw new Error('zstd-napi is not installed');
  const dctx = new z.DCtx();
  let out = Buffer.allocUnsafe(256 * 1024);
  return {
    push(chunk) {
      let src: Buffer = chunk;
      let off = 0;
      for (;;) {
        if (off === out.length) {
          const bigger = Buffer.allocUnsafe(out.length * 2);
          out.copy(bigger, 0, 0, off);
          out = bigger;
        }
        const [, produced, consumed] = dctx.decompressStream(off === 0 ? out : out.subarray(off), src);
        off += produced;
        src = src.subarray(consumed);
        if (src.length === 0 && off < out.length) break;
      }
      return out.toString('utf8', 0, off);
    },
  };
}

/** Intents the fixtures need (GUILDS | GUILD_MEMBERS | GUILD_VOICE_STATES | GUILD_PRESENCES | GUILD_MESSAGES | reactions | typing | MESSAGE_CONTENT). */
export const BENCH_INTENTS = 36739;
export const BENCH_TOKEN = 'bench-token';

// ---------------------------------------------------------------------------------------------------------
// Child processes of the orchestrators (run.ts, workers.ts)
// ---------------------------------------------------------------------------------------------------------

/** The child processes an orchestrator started from the transpiled bench files, so all can be killed on exit. */
export class ChildPool {
  private readonly children = new Set<ChildProcess>();

  constructor(
    private readonly outDir: string,
    private readonly cwd: string,
  ) {}

  /**
   * Fork `outDir/file`; execArgv is explicit so children never inherit `--import tsx` from the orchestrator.
   * `wrapper` runs the child under another program (e.g. valgrind): `wrapper[0] ...wrapper[1..] node ...execArgv file`.
   */
  start(file: string, args: string[], execArgv: string[], wrapper: string[] = []): ChildProcess {
    const [execPath, ...pre] = wrapper.length ? [...wrapper, process.execPath] : [process.execPath];
    const child = fork(join(this.outDir, file), args, { execPath, execArgv: [...pre, ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: this.cwd });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** End a child: give it `graceMs` to exit by itself (clients exit after reporting), then SIGTERM, then SIGKILL. */
  stop(child: ChildProcess, graceMs = 1500): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((res) => {
      const term = setTimeout(() => child.kill('SIGTERM'), graceMs);
      const kill = setTimeout(() => child.kill('SIGKILL'), graceMs + 2000);
      child.once('exit', () => {
        clearTimeout(term);
        clearTimeout(kill);
        res();
      });
    });
  }

  killAll(): void {
    for (const c of this.children) c.kill('SIGKILL');
  }
}

/** Next IPC message of `child` accepted by `pick`; rejects on an error report, exit or timeout. */
export function nextMessage<M extends { type: string }, R>(child: ChildProcess, what: string, timeoutMs: number, pick: (m: M) => R | undefined): Promise<R> {
  return new Promise<R>((res, rej) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (raw: unknown): void => {
      const m = raw as M;
      if (m.type === 'error') {
        cleanup();
        rej(new Error(`${what}: ${(m as unknown as { message: string }).message}`));
        return;
      }
      const r = pick(m);
      if (r !== undefined) {
        cleanup();
        res(r);
      }
    };
    const onExit = (code: number | null, signal: string | null): void => {
      cleanup();
      rej(new Error(`${what}: process exited (code ${code}, signal ${signal})`));
    };
    const timer = setTimeout(() => {
      cleanup();
      rej(new Error(`${what}: timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/**
 * Peak RSS of this process. `/proc/self/status` VmHWM belongs to this process's address space; getrusage's
 * maxRSS is not usable on Linux because it carries over from the parent across fork + exec.
 */
export function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    /* not Linux */
  }
  return process.resourceUsage().maxRSS * 1024;
}

/**
 * Transpile the bench sources that run in child processes to `outDir` as plain ESM (no type check here;
 * `npm run typecheck` does that), so the measured processes never load tsx.
 */
export async function transpileBench(benchDir: string, outDir: string, files: string[]): Promise<void> {
  const ts = (await import('typescript')).default;
  mkdirSync(outDir, { recursive: true });
  for (const f of files) {
    const src = readFileSync(join(benchDir, f), 'utf8');
    const out = ts.transpileModule(src, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false, sourceMap: false },
      fileName: f,
    });
    writeFileSync(join(outDir, f.replace(/\.ts$/, '.js')), out.outputText);
  }
  writeFileSync(join(outDir, 'package.json'), '{ "type": "module", "private": true }\n');
}

/**
 * Total instructions (`summary:` of a callgrind output file) and those spent in V8's optimizing compiler
 * (functions in `v8::internal::compiler::`, from `callgrind_annotate`). Compiling is one-off work whose timing
 * differs between two runs of one client (V8 (re)optimizes when it sees fit), so the table shows the figure with
 * and without it.
 */
export function callgrindTotals(file: string): { ir: number; compiler: number } {
  const m = /^summary:\s*(\d+)/m.exec(readFileSync(file, 'utf8'));
  if (!m) throw new Error(`no summary line in ${file}`);
  const listing = execFileSync('callgrind_annotate', ['--threshold=100', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  let compiler = 0;
  for (const line of listing.split('\n')) {
    const f = /^\s*([\d,]+)\s+\([^)]*\)\s+(.*)$/.exec(line);
    if (f && f[2]!.includes('v8::internal::compiler::')) compiler += Number(f[1]!.replace(/,/g, ''));
  }
  return { ir: Number(m[1]), compiler };
}

/** Median of a non-empty list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
