/**
 * `npm run bench:proxy`: what the gateway proxy costs.
 *
 * 1. CPU per dispatch: the simulator (this process, from src/ under tsx) sends MESSAGE_CREATEs (the real-payload fixture, ~1.3 KB) to
 *    one shard. Measured with `process.cpuUsage()` in separate plain-`node` processes (shardline from `dist/`):
 *    - direct: one shardline `Shard` (zlib-stream) connected to the simulator — what a bot spends itself;
 *    - proxy → 1 and → 4 clients: the proxy process (upstream zlib-stream, downstream zlib-stream to each client),
 *      and the client process (the same `Shard`s, now pointed at the proxy).
 *    Each run checks every client received every dispatch.
 * 2. Cache memory per guild: GUILD_CREATEs of the simulator's fixture (N members, presences) kept by `GuildCache`
 *    (its JSON bytes, and the V8 heap it takes) against the raw GUILD_CREATE JSON and the same guilds kept as
 *    parsed objects.
 *
 * Flags: --messages N (default 20 000), --members N (default 500), --guilds N (default 200), --quick.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';
import { DISPATCH_FIXTURES, GatewaySimulator } from '../src/simulator/index.js';
import { GuildCache } from '../src/proxy/cache.js';
import { buildGuildCreate, buildMember, buildPresence } from '../src/simulator/fixtures.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p: string) => pathToFileURL(join(root, 'dist', p)).href;
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const quick = process.argv.includes('--quick');
const MESSAGES = quick ? 500 : arg('messages', 20_000);
const MEMBERS = quick ? 50 : arg('members', 250);
const GUILDS = quick ? 20 : arg('guilds', 200);
const TOKEN = 'bench-token';

/** A child that answers `cpu` on stdin with its CPU time (µs) and its counters, one JSON line. */
function child(code: string, env: Record<string, string>): { proc: ChildProcess; ask(): Promise<Record<string, number>>; first: Promise<Record<string, unknown>> } {
  const proc = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: root, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout! });
  const waiting: ((v: Record<string, number>) => void)[] = [];
  let firstResolve!: (v: Record<string, unknown>) => void;
  const first = new Promise<Record<string, unknown>>((r) => (firstResolve = r));
  let n = 0;
  lines.on('line', (l) => {
    const v = JSON.parse(l) as Record<string, number>;
    if (n++ === 0) firstResolve(v);
    else waiting.shift()?.(v);
  });
  return {
    proc,
    first,
    ask: () =>
      new Promise((r) => {
        waiting.push(r);
        proc.stdin!.write('cpu\n');
      }),
  };
}

const CPU = `
  import { createInterface } from 'node:readline';
  const cpu = () => { const u = process.cpuUsage(); return u.user + u.system; };
  const answer = (extra) => createInterface({ input: process.stdin }).on('line', () => console.log(JSON.stringify({ cpu: cpu(), ...extra() })));
`;

const PROXY = `${CPU}
  const { GatewayProxy } = await import('${dist('proxy/index.js')}');
  const proxy = await GatewayProxy.start({ token: process.env.TOKEN, intents: 513 | 32768, shards: 1, apiUrl: process.env.API, port: 0 });
  console.log(JSON.stringify({ url: proxy.url }));
  answer(() => ({ clients: proxy.stats().clients }));
`;

const CLIENTS = `${CPU}
  const { Shard } = await import('${dist('index.js')}');
  let count = 0;
  const shards = [];
  for (let i = 0; i < Number(process.env.K); i++) {
    const s = new Shard({ token: process.env.TOKEN, intents: 513 | 32768, gatewayUrl: process.env.URL, compression: 'zlib-stream' });
    s.on('dispatch', (e) => { if (e.type === 'MESSAGE_CREATE') count++; });
    shards.push(s);
  }
  await Promise.all(shards.map((s) => s.connect()));
  console.log(JSON.stringify({ ready: true }));
  answer(() => ({ count }));
`;

async function flood(sim: GatewaySimulator, d: unknown): Promise<void> {
  for (let sent = 0; sent < MESSAGES; ) {
    for (let i = 0; i < 200 && sent < MESSAGES; i++, sent++) sim.dispatch(0, 'MESSAGE_CREATE', d);
    await new Promise((r) => setImmediate(r));
  }
}

async function until(pred: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 120_000;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error('bench: timed out waiting for the clients');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function cpuRun(mode: 'direct' | 'proxy', k: number): Promise<{ mode: string; clients: number; proxyUsPerDispatch: number | null; clientUsPerDispatch: number }> {
  const sim = await GatewaySimulator.start({
    tokens: [TOKEN],
    guilds: 2,
    guildMemberCount: 5,
    heartbeatInterval: 600_000,
    replayBufferSize: MESSAGES + 100,
    rateLimit: { limit: 10_000, window: 60_000 },
  });
  const d = DISPATCH_FIXTURES.MESSAGE_CREATE!.d as Record<string, unknown>;
  const procs: ChildProcess[] = [];
  try {
    let url = sim.url;
    let proxy: ReturnType<typeof child> | null = null;
    if (mode === 'proxy') {
      proxy = child(PROXY, { TOKEN, API: sim.apiUrl });
      procs.push(proxy.proc);
      url = (await proxy.first).url as string;
    }
    const clients = child(CLIENTS, { TOKEN, URL: url, K: String(k) });
    procs.push(clients.proc);
    await clients.first;
    const p0 = proxy ? await proxy.ask() : null;
    const c0 = await clients.ask();
    await flood(sim, { ...d, guild_id: sim.guildIds[0] });
    let c1 = c0;
    await until(async () => {
      c1 = await clients.ask();
      return c1.count - c0.count >= MESSAGES * k;
    });
    const p1 = proxy ? await proxy.ask() : null;
    if (c1.count - c0.count !== MESSAGES * k) throw new Error(`bench: clients got ${c1.count - c0.count} of ${MESSAGES * k}`);
    return {
      mode,
      clients: k,
      proxyUsPerDispatch: p0 && p1 ? +((p1.cpu - p0.cpu) / MESSAGES).toFixed(2) : null,
      clientUsPerDispatch: +((c1.cpu - c0.cpu) / (MESSAGES * k)).toFixed(2),
    };
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await sim.stop();
  }
}

function cacheMemory(): Record<string, number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const heap = () => {
    gc?.();
    gc?.();
    return process.memoryUsage().heapUsed;
  };
  const guilds = Array.from({ length: GUILDS }, (_, i) => {
    const id = `${100000000000000000n + BigInt(i) * 4194304n}`;
    const g = buildGuildCreate(id, i, { memberCount: MEMBERS, presences: true }) as Record<string, unknown>;
    // The fixture lists a handful of members; a guild under the large threshold lists them all (with presences).
    g.members = Array.from({ length: MEMBERS }, (_, m) => buildMember(id, m));
    g.presences = Array.from({ length: MEMBERS }, (_, m) => buildPresence(id, m));
    return g;
  });
  const texts = guilds.map((g) => JSON.stringify(g));
  const rawBytes = texts.reduce((n, t) => n + Buffer.byteLength(t), 0) / GUILDS;
  const h0 = heap();
  const cache = new GuildCache();
  for (const t of texts) cache.apply('GUILD_CREATE', JSON.parse(t));
  const h1 = heap();
  const objects = texts.map((t) => JSON.parse(t) as unknown);
  const h2 = heap();
  const out = {
    guilds: GUILDS,
    membersPerGuild: MEMBERS,
    rawGuildCreateBytes: Math.round(rawBytes),
    cacheJsonBytesPerGuild: Math.round(cache.bytes() / GUILDS),
    cacheHeapBytesPerGuild: gc ? Math.round((h1 - h0) / GUILDS) : -1,
    parsedObjectsHeapBytesPerGuild: gc ? Math.round((h2 - h1) / GUILDS) : -1,
  };
  if (objects.length !== GUILDS) throw new Error('unreachable');
  return out;
}

const results = [];
for (const [mode, k] of [
  ['direct', 1],
  ['proxy', 1],
  ['proxy', 4],
] as const) {
  const r = await cpuRun(mode, k);
  results.push(r);
  console.log(
    `${mode === 'direct' ? 'direct      ' : `proxy → ${k}   `} client ${r.clientUsPerDispatch} µs/dispatch${r.proxyUsPerDispatch !== null ? `, proxy ${r.proxyUsPerDispatch} µs/dispatch` : ''}`,
  );
}
const mem = cacheMemory();
console.log(
  `cache: raw GUILD_CREATE ${mem.rawGuildCreateBytes} B/guild (${MEMBERS} members + presences); cache JSON ${mem.cacheJsonBytesPerGuild} B/guild; ` +
    `cache heap ${mem.cacheHeapBytesPerGuild} B/guild vs parsed objects ${mem.parsedObjectsHeapBytesPerGuild} B/guild${mem.cacheHeapBytesPerGuild < 0 ? ' (run with --expose-gc for heap figures)' : ''}`,
);
console.log(JSON.stringify({ messages: MESSAGES, cpu: results, memory: mem }));
