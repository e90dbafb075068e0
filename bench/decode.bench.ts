/**
 * Micro-benchmarks of the hot path from socket to handler:
 *  1. scanHeader (bytes / text, Discord key order and `d` first) vs JSON.parse on every fixture;
 *  2. every inflate backend on a realistic stream (fixtures in the presences_on mix), plus the whole
 *     inflate → scanHeader → parsePayload pipeline against "sync node:zlib + JSON.parse" and "zlib-sync + JSON.parse".
 *
 * Run: node --import tsx bench/decode.bench.ts [--quick]
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import zlib from 'node:zlib';
import { scanHeader, parsePayload } from '../src/decode.js';
import { createInflater, inflateBackends, probeZlibZstd } from '../src/inflate.js';
import { prng } from './common.js';
import { PayloadWorld } from './payloads.js';
import { CONTROL_FIXTURES, DISPATCH_FIXTURES, SUGGESTED_MIX, type FixtureEnvelope } from '../src/simulator/fixtures-data.js';

const quick = process.argv.includes('--quick');
const require = createRequire(import.meta.url);

/** CPU time (user + system) in ns: steadier than wall time on a shared machine. */
const cpuNs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
};

/** Median CPU ns per call of `fn` over a few rounds of `iters` calls. */
function bench(fn: () => unknown, iters: number, rounds = quick ? 3 : 7): number {
  let sink = 0;
  for (let i = 0; i < Math.max(100, iters >> 2); i++) if (fn() !== undefined) sink++;
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = cpuNs();
    for (let i = 0; i < iters; i++) if (fn() !== undefined) sink++;
    samples.push((cpuNs() - t0) / iters);
  }
  if (sink < 0) console.log(sink);
  return samples.sort((a, b) => a - b)[samples.length >> 1]!;
}

const fmt = (ns: number): string => (ns >= 10_000 ? `${(ns / 1000).toFixed(1)} µs` : `${ns.toFixed(0)} ns`).padStart(9);
const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}x`.padStart(7);

function discordJson(p: FixtureEnvelope, s = p.s ?? null): string {
  return JSON.stringify({ t: p.t ?? null, s, op: p.op, d: p.d });
}

// ------------------------------------------------------------------------------------------------------------
console.log(`node ${process.version}, ${process.arch}, ${os.cpus().length} CPUs, load ${os.loadavg()[0]!.toFixed(1)}${quick ? ' (quick)' : ''}; CPU time per op, median of rounds\n`);
console.log('1. header scan vs full parse\n');
console.log(
  `${'fixture'.padEnd(22)} ${'bytes'.padStart(6)} ${'scan(buf)'.padStart(9)} ${'scan(str)'.padStart(9)} ${'d-first'.padStart(9)} ${'JSON.parse'.padStart(10)} ${'parsePayload(buf)'.padStart(17)} ${'parse/scan'.padStart(10)}`,
);
const scanRows: { name: string; scan: number; parse: number }[] = [];
for (const [name, p] of Object.entries({ ...CONTROL_FIXTURES, ...DISPATCH_FIXTURES })) {
  const text = discordJson(p);
  const buf = Buffer.from(text);
  const dFirst = Buffer.from(JSON.stringify({ d: p.d, t: p.t ?? null, s: p.s ?? null, op: p.op }));
  const iters = Math.max(2000, Math.floor((quick ? 2e6 : 1e7) / (buf.length + 200)));
  const scanBuf = bench(() => scanHeader(buf), iters * 4);
  const scanStr = bench(() => scanHeader(text), iters * 4);
  const scanDFirst = bench(() => scanHeader(dFirst), iters);
  const parse = bench(() => JSON.parse(text), iters);
  const full = bench(() => parsePayload(buf), iters);
  scanRows.push({ name, scan: scanBuf, parse: full });
  console.log(
    `${name.padEnd(22)} ${String(buf.length).padStart(6)} ${fmt(scanBuf)} ${fmt(scanStr)} ${fmt(scanDFirst)} ${fmt(parse).padStart(10)} ${fmt(full).padStart(17)} ${ratio(full, scanBuf).padStart(10)}`,
  );
}

// ------------------------------------------------------------------------------------------------------------
// A realistic stream: fixtures drawn in the presences_on mix, fresh sequence numbers and values.
const mix = SUGGESTED_MIX.presences_on;
const OTHER = ['GUILD_MEMBERS_CHUNK', 'RATE_LIMITED', 'MESSAGE_DELETE'];
let seed = 0x2545f491;
const rand = (): number => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
};
function pickEvent(): string {
  let x = rand();
  for (const [t, share] of Object.entries(mix)) {
    if ((x -= share) < 0) return t === 'other' ? OTHER[Math.floor(rand() * OTHER.length)]! : t;
  }
  return 'PRESENCE_UPDATE';
}
const N = quick ? 5000 : 20000;
const messages: Buffer[] = [];
const world = new PayloadWorld(prng(42 ^ 0x5eed));
for (let s = 1; s <= N; s++) {
  const t = pickEvent();
  // Every dispatch is its fixture's structure with fresh values (ids, names, text, timestamps) from the same
  // model world as `npm run bench` (bench/payloads.ts), so it compresses ~6x as Discord's traffic does.
  const text = discordJson({ ...DISPATCH_FIXTURES[t]!, d: world.vary(DISPATCH_FIXTURES[t]!.d) } as FixtureEnvelope, s);
  messages.push(Buffer.from(text));
}
const rawBytes = messages.reduce((n, m) => n + m.length, 0);

async function deflateStream(ms: Buffer[]): Promise<Buffer[]> {
  const d = zlib.createDeflate();
  const parts: Buffer[] = [];
  d.on('data', (c: Buffer) => parts.push(c));
  const out: Buffer[] = [];
  for (const m of ms) {
    d.write(m);
    await new Promise<void>((resolve) => d.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve()));
    out.push(Buffer.concat(parts.splice(0)));
  }
  return out;
}

interface ZstdBinding {
  CCtx: new () => { compressStream2(dst: Uint8Array, src: Uint8Array, end: number): [number, number, number] };
  EndDirective: { flush: number };
}
function zstdStream(ms: Buffer[]): Buffer[] | null {
  let b: ZstdBinding;
  try {
    b = require('zstd-napi/binding') as ZstdBinding;
  } catch {
    return null;
  }
  const cctx = new b.CCtx();
  const out = Buffer.allocUnsafe(1 << 20);
  return ms.map((m) => {
    const [remaining, produced] = cctx.compressStream2(out, m, b.EndDirective.flush);
    if (remaining !== 0) throw new Error('bench: compress output buffer too small');
    return Buffer.from(out.subarray(0, produced));
  });
}

const zlibFrames = await deflateStream(messages);
const zstdFrames = zstdStream(messages);
const sum = (fs: Buffer[]): number => fs.reduce((n, f) => n + f.length, 0);

/** One candidate of a stream benchmark: fresh state per round, one call per frame. */
interface StreamCase {
  name: string;
  frames: Buffer[];
  /** Fresh state; returns the per-frame step and a clean-up. */
  run: () => [step: (frame: Buffer) => unknown, close?: () => void];
}

/**
 * Median CPU ns per message of each case, running the cases round-robin (so machine noise hits all alike);
 * the first round of each is warm-up.
 */
function compareStreams(cases: StreamCase[]): Map<string, number> {
  const rounds = quick ? 4 : 10;
  const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  for (let r = 0; r <= rounds; r++) {
    for (const c of cases) {
      const [step, close] = c.run();
      const t0 = cpuNs();
      for (const f of c.frames) step(f);
      const ns = (cpuNs() - t0) / c.frames.length;
      close?.();
      if (r > 0) samples.get(c.name)!.push(ns);
    }
  }
  return new Map([...samples].map(([k, v]) => [k, v.sort((x, y) => x - y)[v.length >> 1]!]));
}

console.log(`\n2. transport decompression: ${N} dispatches, presences_on mix, ${(rawBytes / N).toFixed(0)} B/message avg`);
console.log(
  `   zlib-stream ${(sum(zlibFrames) / N).toFixed(0)} B/message (ratio ${(rawBytes / sum(zlibFrames)).toFixed(2)})${zstdFrames ? `, zstd-stream ${(sum(zstdFrames) / N).toFixed(0)} B/message (ratio ${(rawBytes / sum(zstdFrames)).toFixed(2)})` : ''}\n`,
);
const backends = inflateBackends();
// zstd-stream: node:zlib's own zstd (Node 22.15+) where this Node has it, else zstd-napi / fzstd; say which and why
const nodeZstd = probeZlibZstd();
console.log(`   zstd-stream backends here: ${backends.zstd.join(', ')} ('auto' uses ${backends.zstd[0]})${nodeZstd.ok ? '' : `; node:zlib-zstd: ${nodeZstd.reason}`}`);
const inflateCases: StreamCase[] = [];
for (const [kind, frames, names] of [
  ['zlib-stream', zlibFrames, backends.zlib],
  ['zstd-stream', zstdFrames, backends.zstd],
] as const) {
  if (frames === null) {
    console.log(`   ${kind}: skipped (zstd-napi not loadable, cannot produce a zstd stream)`);
    continue;
  }
  for (const backend of names) {
    // The pure-JS backends are ~50-100x slower: give them a slice of the stream so the run stays short.
    const slice = backend === 'fflate' || backend === 'fzstd' ? frames.slice(0, Math.min(frames.length, 2000)) : frames;
    inflateCases.push({
      name: `${kind} ${backend}`,
      frames: slice,
      run: () => {
        const inf = createInflater(kind, { backend });
        return [(f) => inf.push(f), () => inf.close()];
      },
    });
  }
}
// Native and pure-JS backends in separate groups: the pure-JS ones allocate a lot, and the GC they trigger
// would otherwise land on whichever case runs next.
const isPureJs = (c: StreamCase): boolean => /fflate|fzstd/.test(c.name);
const inflateRows = [...compareStreams(inflateCases.filter((c) => !isPureJs(c))), ...compareStreams(inflateCases.filter(isPureJs))];
const best = Math.min(...inflateRows.map((r) => r[1]));
for (const [name, ns] of inflateRows) console.log(`   ${name.padEnd(28)} ${fmt(ns)}/msg  ${((rawBytes / N / ns) * 1000).toFixed(0).padStart(5)} MB/s out  ${ratio(ns, best)}`);

// ------------------------------------------------------------------------------------------------------------
console.log('\n3. whole hot path per dispatch (inflate → header → parse), zlib-stream\n');
const zlibSync = (() => {
  try {
    return require('zlib-sync') as { Inflate: new (o?: object) => { push(b: Buffer, f: number): void; result: Buffer | null }; Z_SYNC_FLUSH: number };
  } catch {
    return null;
  }
})();
/**
 * The floor: a bare `zlib.Inflate` driven through the internal synchronous call (what `fast-zlib` does: keep
 * the handle open, drop the per-call error listener), then `JSON.parse(buf.toString())`. No framing, bounds,
 * stats or buffer-ownership handling.
 */
function floorInflater(): (chunk: Buffer) => Buffer {
  type Internal = zlib.Inflate & { _processChunk(b: Buffer, f: number): Buffer; _handle: { close(): void } | null };
  const inf = zlib.createInflate() as Internal;
  const handle = inf._handle!;
  handle.close = () => {};
  const onError = (): void => {};
  inf.on('error', onError);
  return (chunk) => {
    const out = inf._processChunk(chunk, zlib.constants.Z_SYNC_FLUSH);
    inf._handle = handle;
    inf.removeAllListeners('error');
    inf.on('error', onError);
    return out;
  };
}
const pipelineCases: StreamCase[] = [
  {
    name: 'floor: sync node:zlib + JSON.parse',
    frames: zlibFrames,
    run: () => {
      const inflate = floorInflater();
      return [(f) => JSON.parse(inflate(f).toString())];
    },
  },
];
if (zlibSync) {
  const Z = zlibSync;
  pipelineCases.push({
    name: '@discordjs-style: zlib-sync + JSON.parse',
    frames: zlibFrames,
    run: () => {
      const inf = new Z.Inflate({ chunkSize: 65536 });
      return [
        (f) => {
          inf.push(f, Z.Z_SYNC_FLUSH);
          return JSON.parse(inf.result!.toString());
        },
      ];
    },
  });
}
for (const backend of backends.zlib.filter((b) => b !== 'fflate')) {
  pipelineCases.push({
    name: `shardline ${backend}: scan + parse`,
    frames: zlibFrames,
    run: () => {
      const inf = createInflater('zlib-stream', { backend });
      return [
        (f) => {
          const out = inf.push(f)!;
          return scanHeader(out) === null ? null : parsePayload(out);
        },
        () => inf.close(),
      ];
    },
  });
}
pipelineCases.push({
  name: `shardline ${backends.zlib[0]}: scan, skip PRESENCE_UPDATE`,
  frames: zlibFrames,
  run: () => {
    const inf = createInflater('zlib-stream');
    return [
      (f) => {
        const out = inf.push(f)!;
        const h = scanHeader(out);
        return h === null || h.t === 'PRESENCE_UPDATE' ? null : parsePayload(out);
      },
      () => inf.close(),
    ];
  },
});
const pipelines = [...compareStreams(pipelineCases)];
const floor = pipelines[0]![1];
for (const [name, ns] of pipelines) console.log(`   ${name.padEnd(48)} ${fmt(ns)}/dispatch  ${ratio(ns, floor)} of floor`);

console.log('\nSummary: scanHeader(buf) is', scanRows.map((r) => `${r.name} ${(r.parse / r.scan).toFixed(0)}x`).join(', '), 'faster than parsePayload(buf).');
