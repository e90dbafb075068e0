/**
 * `node --import tsx bench/proxy-burst.ts [--guilds N] [--members N] [--src DIR] [--live]`: the proxy's memory during one
 * client's READY on a shard with many big guilds.
 *
 * The simulator (this process) serves one shard of `--guilds` guilds (default 1000), each then replaced by a
 * GUILD_CREATE of `--members` fixture members (default 300: ~130 KB of JSON, the size docs/PROXY.md assumes). The
 * proxy runs in a child process (`--src`, default this checkout's src/, under tsx; point it at an export of another
 * revision to compare). Once every guild is cached, the child is garbage-collected, then samples its RSS, heap and
 * external/array-buffer memory every 2 ms (and reads the kernel's peak RSS) while one plain `ws` client, reading as
 * fast as it can on loopback, IDENTIFYs and receives READY and every GUILD_CREATE. Printed: the peaks above the
 * baseline (and the baseline itself: the heap after the start, the ring's bytes `ringMB`), the most bytes queued on the client's socket (`ws.bufferedAmount`), how long the READY took and whether
 * it completed (an older proxy closed such a client: 4000). With `--live`, the child is also garbage-collected every
 * 100 ms and the heap that survives is sampled (what the proxy holds, without garbage awaiting collection; slows
 * the READY).
 * @module
 */
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { GatewaySimulator } from '../src/simulator/index.js';
import { buildGuildCreate, buildMember } from '../src/simulator/fixtures.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const GUILDS = Number(arg('guilds', '1000'));
const MEMBERS = Number(arg('members', '300'));
const SRC = resolve(arg('src', join(root, 'src')));
const TOKEN = 'bench-token';
const LIVE = process.argv.includes('--live');

const PROXY = `
  import { createInterface } from 'node:readline';
  const { GatewayProxy } = await import(${JSON.stringify(pathToFileURL(join(SRC, 'proxy/index.ts')).href)});
  const proxy = await GatewayProxy.start({ token: process.env.TOKEN, intents: 1 | 2 | 512, shards: 1, apiUrl: process.env.API, port: 0, replaySize: 10000 });
  const mb = (n) => +(n / 1048576).toFixed(1);
  let base = null, peak = null, timer = null, liveTimer = null, live = 0, queued = 0;
  const clients = () => [...proxy.streams.get(0).clients];
  const sample = () => {
    const m = process.memoryUsage();
    const v = { rss: m.rss, heap: m.heapUsed, external: m.external + m.arrayBuffers };
    if (peak) for (const k in v) peak[k] = Math.max(peak[k], v[k]);
    for (const c of clients()) queued = Math.max(queued, c.ws.bufferedAmount);
    return v;
  };
  const liveSample = () => { globalThis.gc(); live = Math.max(live, process.memoryUsage().heapUsed); };
  console.log(JSON.stringify({ url: proxy.url }));
  createInterface({ input: process.stdin }).on('line', (l) => {
    if (l === 'depth') return console.log(JSON.stringify({ depth: proxy.stats().shards[0].ringDepth, ringMB: mb(proxy.stats().shards[0].ringBytes), cacheMB: mb(proxy.cacheBytes()) }));
    if (l === 'start') {
      globalThis.gc(); globalThis.gc();
      base = sample(); peak = { ...base };
      timer = setInterval(sample, 2);
      if (process.env.LIVE) liveTimer = setInterval(liveSample, 100);
      return console.log(JSON.stringify({ maxRss: mb(process.resourceUsage().maxRSS * 1024) }));
    }
    if (l === 'stop') {
      clearInterval(timer); clearInterval(liveTimer); sample();
      const out = {}; for (const k in base) out[k + 'PeakAboveBaseMB'] = mb(peak[k] - base[k]);
      out.socketQueuedPeakMB = mb(queued);
      if (process.env.LIVE) out.liveHeapPeakAboveBaseMB = mb(live - base.heap);
      console.log(JSON.stringify({ baseRssMB: mb(base.rss), baseHeapMB: mb(base.heap), ...out, kernelMaxRssMB: mb(process.resourceUsage().maxRSS * 1024), overflows: proxy.stats().burstOverflows ?? null }));
    }
  });
`;

function bigGuild(id: string, i: number): Record<string, unknown> {
  const g = buildGuildCreate(id, i, {});
  g.members = Array.from({ length: MEMBERS }, (_, k) => buildMember(id, k));
  g.member_count = MEMBERS;
  return g;
}

const sim = await GatewaySimulator.start({ tokens: [TOKEN], guilds: GUILDS, guildMemberCount: MEMBERS, heartbeatInterval: 600_000, replayBufferSize: GUILDS + 100 });
const proc = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', PROXY], {
  cwd: root,
  env: { ...process.env, TOKEN, API: sim.apiUrl, ...(LIVE ? { LIVE: '1' } : {}) },
  stdio: ['pipe', 'pipe', 'inherit'],
});
const lines = createInterface({ input: proc.stdout! });
const waiting: ((v: Record<string, unknown>) => void)[] = [];
lines.on('line', (l) => waiting.shift()?.(JSON.parse(l) as Record<string, unknown>));
const next = () => new Promise<Record<string, unknown>>((r) => waiting.push(r));
const ask = (q: string) => {
  const p = next();
  proc.stdin!.write(`${q}\n`);
  return p;
};
try {
  const { url } = (await next()) as { url: string };
  let size = 0;
  sim.guildIds.forEach((id, i) => {
    const g = bigGuild(id, i);
    if (i === 0) size = JSON.stringify(g).length;
    sim.dispatch({ guildId: id }, 'GUILD_CREATE', g);
  });
  for (;;) {
    const s = (await ask('depth')) as { depth: number; cacheMB: number };
    if (s.depth >= 2 * GUILDS) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const cache = (await ask('depth')) as { cacheMB: number; ringMB: number };
  const before = await ask('start');
  const ws = new WebSocket(`${url}/?v=10&encoding=json`);
  let creates = 0;
  let bytes = 0;
  const t0 = Date.now();
  const done = new Promise<number | null>((r) => {
    ws.on('message', (data: Buffer) => {
      bytes += data.length;
      const p = JSON.parse(String(data)) as { op: number; t: string | null };
      if (p.op === 10) ws.send(JSON.stringify({ op: 2, d: { token: TOKEN, intents: 1 | 2 | 512, properties: {} } }));
      if (p.t === 'GUILD_CREATE' && ++creates === GUILDS) r(null);
    });
    ws.on('close', (code) => r(code));
  });
  const closed = await done;
  const ms = Date.now() - t0;
  await new Promise((r) => setTimeout(r, 200));
  const after = await ask('stop');
  ws.close();
  console.log(
    JSON.stringify({
      src: SRC,
      guilds: GUILDS,
      guildCreateKB: +(size / 1024).toFixed(1),
      cacheMB: cache.cacheMB,
      ringMB: cache.ringMB,
      readyMB: +(bytes / 1048576).toFixed(1),
      guildCreatesReceived: creates,
      closedWith: closed,
      readyMs: ms,
      kernelMaxRssBeforeMB: before.maxRss,
      ...after,
    }),
  );
} finally {
  proc.kill();
  await sim.stop();
}
