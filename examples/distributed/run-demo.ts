/**
 * The whole distributed story on one machine, offline: starts a gateway simulator, a throwaway redis-server and
 * nats-server (free loopback ports, temp dirs), two gateway processes splitting the shards of one bot, and one
 * worker process. Events flow while it checks that
 *
 * 1. a command sent by the worker reaches the process that owns the shard,
 * 2. after `kill -9` of one gateway process and its restart, its shards RESUME (no new IDENTIFY), and
 * 3. the worker saw every event exactly once, contiguous in sequence per session.
 *
 * Prints `VERDICT: PASS` (exit 0) or `VERDICT: FAIL ...` (exit 1).
 *
 *   node --import tsx examples/distributed/run-demo.ts
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { scaledClock } from '../../src/index.js';
import { GatewaySimulator } from '../../src/simulator/index.js';
import { collectJsonLines, startNats, startRedis } from './servers.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const SCALE = 0.02; // 1 virtual second = 20 real ms (heartbeats every ~0.8 s, identify windows of 100 ms)
const TOTAL = 4;
const TOKEN = 'demo-token';
const BOT = 'demo';
const LEASE_TTL = 1500;
const log = (line: string) => process.stdout.write(`[demo] ${line}\n`);

interface Child {
  name: string;
  proc: ChildProcess;
  lines: Record<string, unknown>[];
  waitFor(pred: (o: Record<string, unknown>) => boolean, what: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

function start(name: string, script: string, env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(here, script)], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  const lines: Record<string, unknown>[] = [];
  const watchers = new Set<() => void>();
  let stderr = '';
  collectJsonLines(
    proc,
    lines,
    (line) => log(`${name}: ${line}`),
    () => {
      for (const w of watchers) w();
    },
  );
  proc.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => {
      children.delete(proc);
      for (const w of watchers) w();
      resolve(code);
    }),
  );
  return {
    name,
    proc,
    lines,
    exited,
    waitFor(pred, what, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = lines.find(pred);
          if (hit) {
            cleanup();
            resolve(hit);
          } else if (proc.exitCode !== null || proc.signalCode !== null) {
            cleanup();
            reject(new Error(`${name} exited (${proc.exitCode ?? proc.signalCode}) before ${what}\n${stderr}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${name}: ${what}\n${stderr}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          watchers.delete(check);
        };
        watchers.add(check);
        check();
      });
    },
  };
}

async function stopChild(c: Child): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  c.proc.kill('SIGTERM');
  const timer = setTimeout(() => c.proc.kill('SIGKILL'), 5000);
  await c.exited;
  clearTimeout(timer);
}

async function main(): Promise<boolean> {
  const clock = scaledClock(SCALE);
  const [redis, nats] = await Promise.all([startRedis(), startNats()]);
  const sim = await GatewaySimulator.start({ clock, tokens: [TOKEN], shards: TOTAL, guilds: 8, maxConcurrency: 2, sessionTimeout: 3_600_000 });
  log(`simulator ${sim.url}, redis ${redis.url}, nats ${nats.url}`);
  const running: Child[] = [];
  let stopTraffic = () => {};
  const problems: string[] = [];
  try {
    const common = {
      DEMO_BOT: BOT,
      DEMO_TOKEN: TOKEN,
      DEMO_GATEWAY_URL: sim.url,
      DEMO_REDIS_URL: redis.url,
      DEMO_NATS_URL: nats.url,
      DEMO_TOTAL: String(TOTAL),
      DEMO_SCALE: String(SCALE),
      DEMO_MAX_CONCURRENCY: '2',
      DEMO_WINDOW: String(Math.ceil(5500 * SCALE)),
      DEMO_LEASE_TTL: String(LEASE_TTL),
    };
    const worker = start('worker', 'worker.ts', { DEMO_BOT: BOT, DEMO_NATS_URL: nats.url, DEMO_TOTAL: String(TOTAL), DEMO_CONSUMER: 'demo-workers' });
    running.push(worker);
    const a = start('gateway-a', 'gateway.ts', { ...common, DEMO_SHARDS: '0,1' });
    const b = start('gateway-b', 'gateway.ts', { ...common, DEMO_SHARDS: '2,3' });
    running.push(a, b);
    await Promise.all([worker.waitFor((o) => o.ev === 'consuming', 'consumer'), a.waitFor((o) => o.ev === 'ready', 'ready'), b.waitFor((o) => o.ev === 'ready', 'ready')]);
    const identifiesAtStart = sim.stats.identifies;
    log(`both gateways ready: ${identifiesAtStart} identifies for ${TOTAL} shards`);
    if (identifiesAtStart !== TOTAL) problems.push(`expected ${TOTAL} identifies at start, saw ${identifiesAtStart}`);

    // Traffic on every shard, all along (the simulator buffers what a dead process misses, for its resume).
    const dispatched = new Map<number, number[]>();
    let n = 0;
    const timer = setInterval(() => {
      for (let shard = 0; shard < TOTAL; shard++) {
        const guild = sim.guildsForShard(shard, TOTAL)[0]!;
        const seqs = sim.dispatch(shard, 'MESSAGE_CREATE', { id: String(10_000 + n), channel_id: '1', guild_id: guild, author: { id: '2' }, content: `m${shard}-${n}` });
        (dispatched.get(shard) ?? dispatched.set(shard, []).get(shard)!).push(...seqs);
      }
      n++;
    }, 10);
    stopTraffic = () => clearInterval(timer);

    // A command from the worker to shard 3, which gateway B runs.
    const presence = new Promise<number | null>((resolve) => {
      const t = setTimeout(() => resolve(null), 10_000);
      sim.on('payload', (p) => {
        if (p.op === 3) {
          clearTimeout(t);
          resolve(p.shardId);
        }
      });
    });
    const guild0 = sim.guildsForShard(0, TOTAL)[0]!;
    sim.dispatch(0, 'MESSAGE_CREATE', { id: '1', channel_id: '1', guild_id: guild0, author: { id: '2' }, content: 'command:3' });
    const presenceShard = await presence;
    const noOwner = await worker.waitFor((o) => o.ev === 'no-owner', 'NO_SHARD_OWNER check', 10_000).catch(() => null);
    log(`worker's presence command reached shard ${presenceShard}; a command for shard ${TOTAL} failed with ${noOwner?.code}`);
    if (presenceShard !== 3) problems.push(`the presence command reached shard ${presenceShard}, not 3`);
    if (noOwner?.code !== 'NO_SHARD_OWNER') problems.push('a command for an unowned shard did not fail with NO_SHARD_OWNER');

    await new Promise((r) => setTimeout(r, 400));
    const sessionsBefore = (await a.waitFor((o) => o.ev === 'ready', 'ready')).sessions as Record<string, string>;
    log(`kill -9 gateway A (pid ${a.proc.pid})`);
    a.proc.kill('SIGKILL');
    await a.exited;
    await new Promise((r) => setTimeout(r, 200));
    const resumesBefore = sim.stats.resumes;
    const a2 = start('gateway-a2', 'gateway.ts', { ...common, DEMO_SHARDS: '0,1' });
    running.push(a2);
    const ready2 = await a2.waitFor((o) => o.ev === 'ready', 'ready after restart', 20_000);
    log(`gateway A restarted: ${ready2.identifies} identifies, ${ready2.resumes} resumes`);
    if (sim.stats.identifies !== identifiesAtStart) problems.push(`the restart identified ${sim.stats.identifies - identifiesAtStart} time(s) instead of resuming`);
    if (sim.stats.resumes - resumesBefore < 2) problems.push(`expected 2 resumes after the restart, saw ${sim.stats.resumes - resumesBefore}`);
    const sessionsAfter = ready2.sessions as Record<string, string>;
    for (const id of ['0', '1']) if (sessionsAfter[id] !== sessionsBefore[id]) problems.push(`shard ${id} has a new session after the restart`);

    await new Promise((r) => setTimeout(r, 400));
    stopTraffic();
    // Every dispatched message must reach the worker.
    const want = new Map<number, Set<number>>();
    for (const [shard, seqs] of dispatched) want.set(shard, new Set(seqs));
    const events = () => worker.lines.filter((o) => o.ev === 'event');
    const end = Date.now() + 15_000;
    for (;;) {
      const seen = new Map<number, Set<number>>();
      for (const e of events()) if (e.type === 'MESSAGE_CREATE') (seen.get(e.shardId as number) ?? seen.set(e.shardId as number, new Set()).get(e.shardId as number)!).add(e.seq as number);
      const missing = [...want].reduce((m, [shard, s]) => m + [...s].filter((q) => !seen.get(shard)?.has(q)).length, 0);
      if (missing === 0) break;
      if (Date.now() > end) {
        problems.push(`${missing} dispatched event(s) never reached the worker`);
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 300)); // late duplicates would show up now

    // Exactly once, contiguous per session.
    const bySession = new Map<string, number[]>();
    for (const e of events()) (bySession.get(`${e.shardId}/${e.sessionId}`) ?? bySession.set(`${e.shardId}/${e.sessionId}`, []).get(`${e.shardId}/${e.sessionId}`)!).push(e.seq as number);
    let count = 0;
    for (const [key, seqs] of bySession) {
      count += seqs.length;
      const sorted = [...seqs].sort((x, y) => x - y);
      const dups = sorted.filter((q, i) => i > 0 && q === sorted[i - 1]);
      if (dups.length) problems.push(`${key}: ${dups.length} duplicate event(s), e.g. seq ${dups[0]}`);
      const unique = [...new Set(sorted)];
      const gaps = unique.filter((q, i) => (i === 0 ? q !== 1 : q !== unique[i - 1]! + 1));
      if (gaps.length) problems.push(`${key}: not contiguous from 1 (gap before seq ${gaps[0]})`);
      const outOfOrder = seqs.some((q, i) => i > 0 && q < seqs[i - 1]!);
      if (outOfOrder) problems.push(`${key}: events out of order`);
    }
    if (bySession.size !== TOTAL) problems.push(`expected ${TOTAL} sessions at the worker, saw ${bySession.size}`);
    log(`worker saw ${count} events in ${bySession.size} sessions; ${n} traffic rounds`);
  } finally {
    stopTraffic();
    await Promise.all(running.map(stopChild));
    const a2 = running.find((c) => c.name === 'gateway-a2');
    const closed = a2?.lines.find((o) => o.ev === 'closed');
    if (closed) log(`restarted gateway: ${closed.published} events published, ${closed.duplicates} replayed duplicates dropped by JetStream`);
    await sim.stop();
    await Promise.all([redis.stop(), nats.stop()]);
  }
  if (problems.length === 0) {
    log('VERDICT: PASS (commands routed to the owner; the restarted process resumed; every event exactly once, in order)');
    return true;
  }
  log(`VERDICT: FAIL\n  - ${problems.join('\n  - ')}`);
  return false;
}

main().then(
  (ok) => process.exit(ok ? 0 : 1),
  (err: Error) => {
    log(`VERDICT: FAIL (${err.stack ?? err.message})`);
    process.exit(1);
  },
);
