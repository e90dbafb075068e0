/**
 * `npm run bench:proxy`: what the gateway proxy costs.
 *
 * 1. CPU per dispatch: the simulator (this process, from src/ under tsx) sends MESSAGE_CREATEs (the real-payload fixture, ~1.3 KB) to
 *    one shard. Measured with `process.cpuUsage()` in separate plain-`node` processes (shardline from `dist/`):
 *    - direct: one shardline `Shard` (zlib-stream) connected to the simulator — what a bot spends itself;
 *    - proxy → 1 and → 4 clients: the proxy process (upstream zlib-stream, downstream zlib-stream to each client),
 *      and the client process (the same `Shard`s, now pointed at the proxy).
 *    Each run checks every client received every dispatch.
 * 2. The guild cache (bench/proxy-cache.ts): bytes and memory per guild against the raw GUILD_CREATE, on the
 *    simulator's fixture guilds and on guilds of realistic entropy; CPU per cached dispatch; CPU to synthesize.
 *
 * Flags: --messages N (default 20 000), --members N (default 250), --guilds N (default 200), --dispatches N
 * (cache dispatches, default 20 000), --cache-only (skip part 1), --cache-module <file> (measure another
 * GuildCache implementation), --quick.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';
import { DISPATCH_FIXTURES, GatewaySimulator } from '../src/simulator/index.js';
import { cacheBench } from './proxy-cache.js';

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
const DISPATCHES = quick ? 2000 : arg('dispatches', 20_000);
const cacheOnly = process.argv.includes('--cache-only');
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

const results = [];
for (const [mode, k] of cacheOnly
  ? []
  : ([
      ['direct', 1],
      ['proxy', 1],
      ['proxy', 4],
    ] as const)) {
  const r = await cpuRun(mode, k);
  results.push(r);
  console.log(
    `${mode === 'direct' ? 'direct      ' : `proxy → ${k}   `} client ${r.clientUsPerDispatch} µs/dispatch${r.proxyUsPerDispatch !== null ? `, proxy ${r.proxyUsPerDispatch} µs/dispatch` : ''}`,
  );
}
const cacheModule = process.argv.indexOf('--cache-module');
const { GuildCache } = (await import(cacheModule >= 0 ? pathToFileURL(process.argv[cacheModule + 1]!).href : '../src/proxy/cache.js')) as typeof import('../src/proxy/cache.js');
const memory = [false, true].map((realistic) => cacheBench(() => new GuildCache(), GUILDS, MEMBERS, realistic, DISPATCHES));
for (const m of memory) {
  const x = (n: unknown) => `${((n as number) / (m.rawGuildCreateBytes as number)).toFixed(2)}x`;
  console.log(
    `cache, ${m.guilds} guilds (${MEMBERS} members + presences): raw GUILD_CREATE ${m.rawGuildCreateBytes} B/guild; cacheBytes ${m.cacheBytesPerGuild} B/guild (${x(m.cacheBytesPerGuild)}); ` +
      `memory (heap + ArrayBuffers) ${m.cacheMemoryPerGuild} B/guild (${x(m.cacheMemoryPerGuild)}) vs parsed objects ${m.parsedObjectsMemoryPerGuild} B/guild; ` +
      `store ${m.createUsPerGuild} µs/guild; ${DISPATCHES} cache dispatches ${m.applyUsPerDispatch} µs each, then cacheBytes ${m.cacheBytesPerGuildAfterStream} B/guild (${x(m.cacheBytesPerGuildAfterStream)}), ` +
      `memory ${m.cacheMemoryPerGuildAfterStream} B/guild (${x(m.cacheMemoryPerGuildAfterStream)}); synthesize ${m.buildUsPerGuild} µs/guild; compacted ${m.cacheBytesPerGuildCompacted} B/guild` +
      `${(m.cacheMemoryPerGuild as number) < 0 ? ' (run with --expose-gc for memory figures)' : ''}`,
  );
}
console.log(JSON.stringify({ messages: MESSAGES, cpu: results, memory }));
