/**
 * One measured client, run in its own process (plain `node --expose-gc`, no tsx) so its `process.cpuUsage()`
 * (all threads) and RSS are its own. Receives a job over IPC from `run.ts`, loads only the library it measures,
 * connects to the bench server, reports `ready`, counts dispatches while the server replays the stream, and
 * reports CPU and memory of the measured window.
 *
 * shardline is loaded from the built `dist/` (never through tsx).
 *
 * @module
 */
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import type * as Shardline from '../src/index.js';
import {
  BENCH_INTENTS,
  BENCH_TOKEN,
  CLIENTS,
  floorNodeZlib,
  peakRss,
  floorZlibSync,
  floorZstd,
  type ClientJob,
  type ClientName,
  type ClientReport,
  type FloorDecoder,
  type IdleJob,
  type MemorySample,
  type StreamJob,
} from './common.js';

function send(msg: ClientReport): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) resolve();
    else process.send(msg, undefined, undefined, () => resolve());
  });
}

async function fail(message: string): Promise<never> {
  await send({ type: 'error', message });
  process.exit(1);
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) {
    g();
    g();
  }
}

function memory(): MemorySample {
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
}

/** Counts dispatches and takes the CPU/memory figures of the measured window. */
class Sink {
  received = 0;
  receivedWindow = 0;
  inversions = 0;
  maxS = 0;
  nulls = 0;
  private cpu0: NodeJS.CpuUsage | null = null;
  private t0 = 0;
  private finished = false;
  private lateTimer: NodeJS.Timeout | null = null;
  backend: string | null = null;

  constructor(private readonly job: StreamJob) {}

  /** One delivered dispatch (READY is ignored). */
  dispatch(s: number | null | undefined, t: string | null | undefined, d: unknown): void {
    if (t === 'READY' || s == null) return;
    this.received++;
    if (d == null) this.nulls++;
    if (s < this.maxS) this.inversions++;
    else this.maxS = s;
    if (s === this.job.warmupSeq) {
      this.cpu0 = process.cpuUsage();
      this.t0 = performance.now();
    } else if (s > this.job.warmupSeq) this.receivedWindow++;
    if (this.received === this.job.expectedTotal) this.finish();
    else if (s === this.job.lastSeq && this.lateTimer === null) {
      // The last dispatch came before others (out of order or missing): give stragglers a moment.
      this.lateTimer = setTimeout(() => this.finish(), 3000);
    }
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.lateTimer) clearTimeout(this.lateTimer);
    const cpu = process.cpuUsage(this.cpu0 ?? undefined);
    const wallMs = performance.now() - this.t0;
    const m = process.memoryUsage();
    const maxRss = peakRss();
    const job = this.job;
    void send({
      type: 'stream-result',
      client: job.client,
      received: this.received,
      receivedWindow: this.receivedWindow,
      inversions: this.inversions,
      windowDispatches: job.lastSeq - job.warmupSeq,
      cpuUs: this.cpu0 ? cpu.user + cpu.system : NaN,
      userUs: cpu.user,
      systemUs: cpu.system,
      wallMs,
      rss: m.rss,
      maxRss,
      heapUsed: m.heapUsed,
      backend: this.backend,
    }).then(() => process.exit(0));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------------------

interface Started {
  /** Resolves when every shard is READY. */
  ready: Promise<void>;
  backend: string | null;
}

const url = (port: number): string => `ws://127.0.0.1:${port}`;

async function loadShardline(root: string): Promise<typeof Shardline> {
  return (await import(pathToFileURL(join(root, 'dist', 'index.js')).href)) as typeof Shardline;
}

/** The floor: plain `ws`, synchronous inflate, `JSON.parse` of every message, nothing else. */
function startFloor(job: StreamJob, sink: Sink): Started {
  const name = job.client as ClientName;
  const format = CLIENTS[name];
  const make: (() => FloorDecoder) | null = name === 'floor-zlib' ? floorNodeZlib : name === 'floor-zlib-sync' ? floorZlibSync : name === 'floor-zstd' ? floorZstd : null;
  const dec = make ? make() : null;
  const q = `/?v=10&encoding=json${format === 'none' ? '' : `&compress=${format}`}`;
  const ws = new WebSocket(url(job.port) + q, { perMessageDeflate: false });
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const text = dec !== null && isBinary ? dec.push(data) : data.toString('utf8');
    if (text === null) return;
    const p = JSON.parse(text) as { op: number; d: unknown; s: number | null; t: string | null };
    if (p.op === 0) {
      if (p.t === 'READY') resolveReady();
      else sink.dispatch(p.s, p.t, p.d);
    } else if (p.op === 10) {
      ws.send(JSON.stringify({ op: 2, d: { token: BENCH_TOKEN, intents: BENCH_INTENTS, properties: { os: 'linux', browser: 'floor', device: 'floor' } } }));
    }
  });
  ws.on('error', (err) => void fail(`floor socket: ${err.message}`));
  return { ready, backend: name === 'floor-zlib' ? 'node:zlib-sync' : name === 'floor-zlib-sync' ? 'zlib-sync' : name === 'floor-zstd' ? 'zstd-napi' : null };
}

async function startShardline(job: StreamJob | IdleJob, onDispatch: ((s: number, t: string, d: unknown) => void) | null): Promise<Started & { shards: Shardline.Shard[] }> {
  const sl = await loadShardline(job.root);
  const format = CLIENTS[job.client as ClientName];
  const compression = format === 'none' ? false : format;
  const total = job.kind === 'idle' ? job.shards : 1;
  const identifyQueue = new sl.LocalIdentifyQueue({ maxConcurrency: total });
  const shards: Shardline.Shard[] = [];
  for (let id = 0; id < total; id++) {
    const shard = new sl.Shard({
      token: BENCH_TOKEN,
      intents: BENCH_INTENTS,
      id,
      total,
      gatewayUrl: url(job.port),
      compression,
      identifyQueue,
      ...(job.kind === 'stream' && job.events ? { events: job.events as Shardline.EventName[] } : {}),
    });
    shard.on('error', (err) => void fail(`shardline shard ${id}: ${err.message}`));
    if (onDispatch) shard.on('dispatch', (e) => onDispatch(e.sequence, e.type, e.data));
    shards.push(shard);
  }
  const ready = Promise.all(shards.map((s) => s.connect())).then(() => undefined);
  const backend = compression ? sl.createInflater(compression).backend : null;
  return { ready, backend, shards };
}

async function startDjs(job: StreamJob | IdleJob, onDispatch: ((s: number, t: string, d: unknown) => void) | null): Promise<Started> {
  const djs = await import('@discordjs/ws');
  type Rest = ConstructorParameters<typeof djs.WebSocketManager>[0]['rest'];
  type IntentBits = ConstructorParameters<typeof djs.WebSocketManager>[0]['intents'];
  const total = job.kind === 'idle' ? job.shards : 1;
  const gatewayBot = {
    url: url(job.port),
    shards: total,
    session_start_limit: { total: 100_000, remaining: 100_000, reset_after: 14_400_000, max_concurrency: total },
  };
  const rest = { get: async () => gatewayBot } as unknown as Rest;
  const native = job.client === 'djs-native-zlib';
  const manager = new djs.WebSocketManager({
    token: BENCH_TOKEN,
    intents: BENCH_INTENTS as IntentBits,
    rest,
    shardCount: total,
    compression: native ? djs.CompressionMethod.ZlibNative : djs.CompressionMethod.ZlibSync,
  });
  manager.on(djs.WebSocketShardEvents.Error, (err: Error) => void fail(`@discordjs/ws: ${err.message}`));
  if (onDispatch) manager.on(djs.WebSocketShardEvents.Dispatch, (p) => onDispatch(p.s, p.t, p.d));
  return { ready: manager.connect(), backend: native ? 'node:zlib (async stream)' : 'zlib-sync' };
}

async function startDiscordeno(job: StreamJob | IdleJob, onDispatch: ((s: number, t: string, d: unknown) => void) | null): Promise<Started> {
  const dd = await import('@discordeno/gateway');
  const silent = { debug() {}, info() {}, warn() {}, error() {}, fatal() {} };
  const zstd = job.client === 'discordeno-zstd';
  const total = job.kind === 'idle' ? job.shards : 1;
  let readyCount = 0;
  let allReady!: () => void;
  const ready = new Promise<void>((r) => (allReady = r));
  const gateway = dd.createGatewayManager({
    token: BENCH_TOKEN,
    intents: BENCH_INTENTS,
    url: url(job.port),
    totalShards: total,
    spawnShardDelay: 0,
    transportCompression: zstd ? dd.TransportCompression.zstd : dd.TransportCompression.zlib,
    connection: { url: url(job.port), shards: total, sessionStartLimit: { total: 100_000, remaining: 100_000, resetAfter: 0, maxConcurrency: total } },
    logger: silent as unknown as NonNullable<Parameters<typeof dd.createGatewayManager>[0]['logger']>,
    resharding: { enabled: false, shardsFullPercentage: 80, checkInterval: -1 },
    events: {
      message(_shard, payload) {
        if (payload.op !== 0) return;
        if (payload.t === 'READY') {
          if (++readyCount === total) allReady();
        } else onDispatch?.(payload.s as number, payload.t as string, payload.d);
      },
    },
  });
  void gateway.spawnShards();
  return { ready, backend: zstd ? 'fzstd' : 'node:zlib (async stream)' };
}

/** The floor in the memory benchmark: `shards` bare `ws` sockets, each with its own inflate context; nothing else. */
function startFloorIdle(job: IdleJob, onDispatch: ((s: number, t: string, d: unknown) => void) | null): Started {
  const name = job.client as ClientName;
  const make = name === 'floor-zlib-sync' ? floorZlibSync : floorNodeZlib;
  let readyCount = 0;
  let allReady!: () => void;
  const ready = new Promise<void>((r) => (allReady = r));
  for (let i = 0; i < job.shards; i++) {
    const dec = make();
    const ws = new WebSocket(`${url(job.port)}/?v=10&encoding=json&compress=zlib-stream`, { perMessageDeflate: false });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const text = isBinary ? dec.push(data) : data.toString('utf8');
      if (text === null) return;
      const p = JSON.parse(text) as { op: number; d: unknown; s: number | null; t: string | null };
      if (p.op === 0) {
        if (p.t === 'READY') {
          if (++readyCount === job.shards) allReady();
        } else onDispatch?.(p.s!, p.t!, p.d);
      } else if (p.op === 10) {
        ws.send(JSON.stringify({ op: 2, d: { token: BENCH_TOKEN, intents: BENCH_INTENTS, shard: [i, job.shards], properties: { os: 'linux', browser: 'floor', device: 'floor' } } }));
      }
    });
    ws.on('error', (err) => void fail(`floor socket: ${err.message}`));
  }
  return { ready, backend: name === 'floor-zlib-sync' ? 'zlib-sync' : 'node:zlib-sync' };
}

// ---------------------------------------------------------------------------------------------------------
// Jobs
// ---------------------------------------------------------------------------------------------------------

async function runStream(job: StreamJob): Promise<void> {
  const sink = new Sink(job);
  const onDispatch = (s: number, t: string, d: unknown): void => sink.dispatch(s, t, d);
  let started: Started;
  if (job.client.startsWith('floor-')) started = startFloor(job, sink);
  else if (job.client.startsWith('shardline-')) started = await startShardline(job, onDispatch);
  else if (job.client.startsWith('djs-')) started = await startDjs(job, onDispatch);
  else if (job.client.startsWith('discordeno-')) started = await startDiscordeno(job, onDispatch);
  else return fail(`unknown client ${job.client}`);
  sink.backend = started.backend;
  await started.ready;
  gc();
  await sleep(100);
  await send({ type: 'ready' });
}

async function runIdle(job: IdleJob): Promise<void> {
  // Load the library first so the baseline includes its code, then measure what the shards add.
  const c = job.client;
  if (c.startsWith('shardline-')) await loadShardline(job.root);
  else if (c.startsWith('djs-')) await import('@discordjs/ws');
  else if (c.startsWith('discordeno-')) await import('@discordeno/gateway');
  else if (c === 'floor-zlib')
    floorNodeZlib(); // ws is imported statically; one decoder loads the rest
  else if (c === 'floor-zlib-sync')
    floorZlibSync(); // loads the addon
  else return fail(`idle job not supported for ${c}`);
  gc();
  await sleep(200);
  gc();
  const before = memory();
  const t0 = performance.now();
  let ready = 0;
  // Warm variant: count the dispatches after READY (a counting listener, nothing kept) and wait for all.
  let dispatches = 0;
  const count =
    job.warmDispatches > 0
      ? (_s: number, t: string): void => {
          if (t !== 'READY') dispatches++;
        }
      : null;
  if (c.startsWith('shardline-')) {
    const { ready: all, shards } = await startShardline(job, count);
    for (const s of shards) s.once('ready', () => ready++);
    await all;
  } else {
    const { ready: all } = c.startsWith('djs-') ? await startDjs(job, count) : c.startsWith('discordeno-') ? await startDiscordeno(job, count) : startFloorIdle(job, count);
    await all;
    ready = job.shards;
  }
  const connectMs = performance.now() - t0;
  const want = job.warmDispatches * job.shards;
  for (const end = Date.now() + 60_000; dispatches < want && Date.now() < end; ) await sleep(20);
  await sleep(job.settleMs);
  gc();
  await sleep(100);
  gc();
  const after = memory();
  await send({ type: 'idle-result', client: job.client, shards: job.shards, ready, dispatches, connectMs, before, after });
  // Stay connected until the harness has counted the server's open connections: it disconnects the IPC
  // channel after, and the 'disconnect' handler below exits (exiting here raced that count).
}

process.on('message', (raw: unknown) => {
  const job = raw as ClientJob;
  const run = job.kind === 'stream' ? runStream(job) : runIdle(job);
  run.catch((err: Error) => fail(`${job.client}: ${err.stack ?? err.message}`));
});
process.on('disconnect', () => process.exit(0));
