/**
 * `node --expose-gc --import tsx bench/heap.ts [--client shardline|floor] [--shards 800] [--root DIR] [--detail 0|1|2] [--top 60] [--warm-bytes 65536]`
 *
 * What one idle connected zlib-stream shard keeps on the JS heap, object by object: connects `--shards` shards
 * (shardline from `DIR/dist`, default this repository; or the floor: a bare `ws` socket + one `node:zlib`
 * inflate context each) to the bench gateway, takes a heap snapshot before and after, and lists the objects that
 * are new in the second, grouped by constructor (with `--detail 1` also by the field that holds them, `2` one
 * level further), in bytes per shard. Two shards are connected before the first snapshot so that code, feedback
 * vectors and other one-off allocations fall into the baseline. `--warm-bytes N`: every shard first receives ~N
 * bytes of GUILD_CREATE dispatches after READY (the warm variant of `bench/run.ts`' memory benchmark: what a
 * shard keeps after real traffic). Used for the item table in BENCHMARKS.md.
 *
 * @module
 */
import { fork } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeHeapSnapshot } from 'node:v8';
import WebSocket from 'ws';
import type * as Shardline from '../src/index.js';
import { BENCH_INTENTS, BENCH_TOKEN, floorNodeZlib, transpileBench, type ServerReport } from './common.js';
import { ensureFixtures } from './fixtures.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const OUT = join(BENCH_DIR, '.out');
const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const client = args.get('client') ?? 'shardline';
const N = Number(args.get('shards') ?? 800);
const root = resolve(args.get('root') ?? join(BENCH_DIR, '..'));
const detail = Number(args.get('detail') ?? 0);
const top = Number(args.get('top') ?? 60);
const warmBytes = Number(args.get('warm-bytes') ?? 0);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc --import tsx bench/heap.ts');

await transpileBench(BENCH_DIR, OUT, ['common.ts', 'payloads.ts', 'server.ts']);
ensureFixtures(OUT);
const server = fork(join(OUT, 'server.js'), [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const next = <T extends ServerReport['type']>(type: T): Promise<Extract<ServerReport, { type: T }>> =>
  new Promise((res) => {
    const f = (m: ServerReport): void => {
      if (m.type !== type) return;
      server.off('message', f);
      res(m as Extract<ServerReport, { type: T }>);
    };
    server.on('message', f);
  });
const { port } = await next('listening');
server.send({ cmd: 'idle', warmBytes });
const warmDispatches = (await next('prepared')).info.countsAll.GUILD_CREATE ?? 0;
/** Warm dispatches received so far (a counting listener, nothing kept). */
let dispatches = 0;
async function warmed(want: number): Promise<void> {
  for (const end = Date.now() + 60_000; dispatches < want && Date.now() < end; ) await sleep(20);
  if (dispatches < want) throw new Error(`${want - dispatches} warm dispatches missing`);
}
const url = `ws://127.0.0.1:${port}`;
const sl = client === 'shardline' ? ((await import(pathToFileURL(join(root, 'dist', 'index.js')).href)) as typeof Shardline) : null;
const keep: unknown[] = [];

async function connect(n: number, first: number): Promise<void> {
  const want = dispatches + n * warmDispatches;
  if (sl) {
    const queue = new sl.LocalIdentifyQueue({ maxConcurrency: 100_000 });
    const shards = Array.from({ length: n }, (_, i) => {
      const s = new sl.Shard({ token: BENCH_TOKEN, intents: BENCH_INTENTS, id: first + i, total: 100_000, gatewayUrl: url, compression: 'zlib-stream', identifyQueue: queue });
      s.on('error', (e) => console.error(e.message));
      if (warmDispatches > 0)
        s.on('dispatch', (e) => {
          if (e.type !== 'READY') dispatches++;
        });
      keep.push(s);
      return s.connect();
    });
    await Promise.all(shards);
    await warmed(want);
    return;
  }
  await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<void>((res) => {
          const dec = floorNodeZlib();
          const ws = new WebSocket(`${url}/?v=10&encoding=json&compress=zlib-stream`, { perMessageDeflate: false });
          ws.on('message', (data: Buffer) => {
            const text = dec.push(data);
            if (text === null) return;
            const p = JSON.parse(text) as { op: number; t: string | null };
            if (p.op === 0 && p.t === 'READY') res();
            else if (p.op === 0) dispatches++;
            else if (p.op === 10) ws.send(JSON.stringify({ op: 2, d: { token: BENCH_TOKEN, intents: BENCH_INTENTS, properties: { os: 'linux', browser: 'floor', device: 'floor' } } }));
          });
          ws.on('error', (e) => console.error(e.message));
          keep.push(ws);
        }),
    ),
  );
  await warmed(want);
}

const settle = async (): Promise<void> => {
  gc();
  gc();
  await sleep(300);
  gc();
  gc();
};
await connect(2, 0);
await settle();
const dir = tmpdir();
const before = writeHeapSnapshot(join(dir, `shardline-heap-${process.pid}-0.heapsnapshot`));
await settle();
const m0 = process.memoryUsage();
await connect(N, 10);
await sleep(1000);
await settle();
const m1 = process.memoryUsage();
const after = writeHeapSnapshot(join(dir, `shardline-heap-${process.pid}-1.heapsnapshot`));
server.kill();

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}
const load = (f: string): Snapshot => JSON.parse(readFileSync(f, 'utf8')) as Snapshot;
const a = load(before);
const s = load(after);
rmSync(before);
rmSync(after);
const meta = s.snapshot.meta;
const nf = meta.node_fields.length;
const [T, NAME, ID, SIZE, EDGES] = ['type', 'name', 'id', 'self_size', 'edge_count'].map((f) => meta.node_fields.indexOf(f)) as [number, number, number, number, number];
const ef = meta.edge_fields.length;
const types = meta.node_types[0];
const etypes = meta.edge_types[0];
const old = new Set<number>();
for (let i = 0; i < a.nodes.length; i += nf) old.add(a.nodes[i + ID]!);
const count = s.nodes.length / nf;
// First strong retainer of each node (a code object only if nothing else holds it).
const ret = new Int32Array(count).fill(-1);
const retEdge = new Int32Array(count).fill(-1);
for (let n = 0, e = 0; n < count; n++) {
  for (let k = 0; k < s.nodes[n * nf + EDGES]!; k++, e += ef) {
    const et = etypes[s.edges[e]!];
    if (et === 'weak' || et === 'shortcut') continue;
    const to = s.edges[e + 2]! / nf;
    if (ret[to] === -1 || types[s.nodes[ret[to]! * nf + T]!] === 'code') {
      ret[to] = n;
      retEdge[to] = e;
    }
  }
}
const name = (n: number): string => {
  const t = types[s.nodes[n * nf + T]!]!;
  const nm = s.strings[s.nodes[n * nf + NAME]!]!;
  return t === 'object' || t === 'closure' || t === 'native' || t === 'hidden' || t === 'synthetic' ? `${t}:${nm}` : t === 'code' ? `code:${nm.slice(0, 40)}` : t;
};
const edge = (e: number): string => {
  const et = etypes[s.edges[e]!];
  return et === 'element' || et === 'hidden' ? `[${et}]` : String(s.strings[s.edges[e + 1]!]);
};
const groups = new Map<string, [number, number]>();
let total = 0;
for (let n = 0; n < count; n++) {
  if (old.has(s.nodes[n * nf + ID]!)) continue;
  const size = s.nodes[n * nf + SIZE]!;
  total += size;
  let key = name(n);
  const r = ret[n]!;
  if (detail >= 1) key += r >= 0 ? `  <- ${name(r)}.${edge(retEdge[n]!)}` : '  <- ?';
  if (detail >= 2 && r >= 0 && ret[r]! >= 0) key += ` <- ${name(ret[r]!)}.${edge(retEdge[r]!)}`;
  const g = groups.get(key) ?? [0, 0];
  g[0]++;
  g[1] += size;
  groups.set(key, g);
}
console.log(`${client} (${sl ? root : 'ws + node:zlib'}), ${N} idle connected shards${warmDispatches ? `, each after ${warmDispatches} GUILD_CREATEs (${warmBytes} B)` : ''}`);
const per = (k: 'heapUsed' | 'external' | 'rss' | 'arrayBuffers'): string => ((m1[k] - m0[k]) / N).toFixed(0);
console.log(
  `heapUsed growth / shard: ${per('heapUsed')} B; external ${per('external')} B (arrayBuffers ${per('arrayBuffers')} B); RSS ${per('rss')} B; new objects' self size / shard: ${(total / N).toFixed(0)} B (native memory included)`,
);
for (const [k, [c, sz]] of [...groups].sort((x, y) => y[1][1] - x[1][1]).slice(0, top)) console.log(`${(sz / N).toFixed(1).padStart(9)} B ${(c / N).toFixed(2).padStart(6)}x  ${k}`);
process.exit(0);
