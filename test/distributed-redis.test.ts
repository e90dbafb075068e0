/**
 * RedisIdentifyQueue and RedisSessionStore against a real, throwaway redis-server (never a mock, never the shared
 * instance): lanes shared by separate processes, the shared budget, Redis outages, only-raise writes, leases, and a
 * kill -9 of a gateway process followed by a resume.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { GatewayError, ShardlineError } from '../src/errors.js';
import { scaledClock } from '../src/clock.js';
import { Cluster } from '../src/cluster.js';
import type { ReadyData, ShardEvent } from '../src/events.js';
import { Shard } from '../src/shard.js';
import { GatewaySimulator } from '../src/simulator/index.js';
import { RedisIdentifyQueue, RedisSessionStore, type RedisUnavailableEvent } from '../src/distributed/index.js';
import { collectJsonLines, startRedis, type ServerProcess } from './helpers/servers.js';
import { delay, until } from './helpers/setup.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = (p: string) => pathToFileURL(join(root, 'src', p)).href;

/** Run an inline TypeScript module in a separate node process; its stdout lines are collected as JSON. */
function child(code: string, env: Record<string, string>): { proc: ChildProcess; lines: Record<string, unknown>[]; exited: Promise<number | null>; stderr: () => string } {
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  let err = '';
  collectJsonLines(proc, lines); // other output is not ours
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
  return { proc, lines, exited, stderr: () => err };
}

async function withRedis(fn: (redis: ServerProcess) => Promise<void>): Promise<void> {
  const redis = await startRedis();
  try {
    await fn(redis);
  } finally {
    await redis.stop();
  }
}

test('identify lanes are shared by two separate processes: never two IDENTIFYs of one lane within the window', async () => {
  await withRedis(async (redis) => {
    // Grant times are read on the Redis server (MONITOR: the lane key's SET inside the grant script, with the
    // server's clock), not in the children: a child descheduled after its grant would report it late, and the gap
    // to the next grant would look shorter than it was.
    const base = new Redis(redis.url, { lazyConnect: true });
    const monitor = await base.monitor();
    const granted: { lane: number; at: number }[] = [];
    monitor.on('monitor', (time: string, args: string[]) => {
      const m = args[0]?.toUpperCase() === 'SET' ? /identify:lane:(\d+)$/.exec(args[1] ?? '') : null;
      if (m) granted.push({ lane: Number(m[1]), at: Number(time) * 1000 });
    });
    try {
      const code = `
        import { RedisIdentifyQueue } from '${src('distributed/index.ts')}';
        const q = new RedisIdentifyQueue({ redis: process.env.R, bot: 'lanes', maxConcurrency: 2, window: 250 });
        const ids = process.env.IDS.split(',').map(Number);
        await Promise.all(ids.map(async (id) => { await q.acquire(id); console.log(JSON.stringify({ id, lane: id % 2 })); }));
        await q.close();
      `;
      const a = child(code, { R: redis.url, IDS: '0,1,4,5,8,9' });
      const b = child(code, { R: redis.url, IDS: '2,3,6,7,10,11' });
      const [ca, cb] = await Promise.all([a.exited, b.exited]);
      assert.equal(ca, 0, a.stderr());
      assert.equal(cb, 0, b.stderr());
      assert.equal(a.lines.length + b.lines.length, 12);
      await until(() => granted.length >= 12, 'every grant seen by MONITOR');
      assert.equal(granted.length, 12, 'one grant per acquire');
      for (const lane of [0, 1]) {
        const times = granted
          .filter((g) => g.lane === lane)
          .map((g) => g.at)
          .sort((x, y) => x - y);
        assert.equal(times.length, 6);
        for (let i = 1; i < times.length; i++) {
          assert.ok(times[i]! - times[i - 1]! >= 249, `lane ${lane}: two IDENTIFYs ${(times[i]! - times[i - 1]!).toFixed(1)} ms apart`);
        }
      }
      // both processes got turns, and the two lanes ran side by side
      assert.ok(a.lines.length === 6 && b.lines.length === 6);
      const first = (lane: number) => Math.min(...granted.filter((g) => g.lane === lane).map((g) => g.at));
      assert.ok(Math.abs(first(0) - first(1)) < 200, 'lanes 0 and 1 should start together');
    } finally {
      monitor.disconnect();
      base.disconnect();
    }
  });
});

test('independent queue instances: FIFO per lane, cancellable waits, the lane goes on after an abort', async () => {
  await withRedis(async (redis) => {
    const q1 = new RedisIdentifyQueue({ redis: redis.url, bot: 'abort', window: 200 });
    const q2 = new RedisIdentifyQueue({ redis: redis.url, bot: 'abort', window: 200 });
    try {
      await q1.acquire(0);
      const t0 = Date.now(); // lane 0 is taken from about now for 200 ms
      const ac = new AbortController();
      const aborted = q2.acquire(1, ac.signal);
      const next = q2.acquire(2);
      let abortedAt = 0;
      setTimeout(() => {
        abortedAt = Date.now();
        ac.abort(new Error('shard closed'));
      }, 50);
      await assert.rejects(aborted, /shard closed/);
      assert.ok(Date.now() - abortedAt < 50, `the abort is immediate (${Date.now() - abortedAt} ms)`);
      await next;
      assert.ok(Date.now() - t0 >= 190, `the next one still waits for the window (${Date.now() - t0} ms)`);
      await assert.rejects(q1.acquire(3, AbortSignal.abort(new Error('already'))), /already/);
    } finally {
      await Promise.all([q1.close(), q2.close()]);
    }
  });
});

test('the daily budget is shared, never goes below 0, and fails with IDENTIFY_BUDGET_EXHAUSTED (or waits for the refill)', async () => {
  await withRedis(async (redis) => {
    const budgets: string[] = [];
    const q1 = new RedisIdentifyQueue({ redis: redis.url, bot: 'budget', maxConcurrency: 4, window: 100, budget: { total: 3, remaining: 3, resetAfter: 60_000 } });
    const q2 = new RedisIdentifyQueue({ redis: redis.url, bot: 'budget', maxConcurrency: 4, window: 100, onBudget: (e) => budgets.push(e.kind) });
    try {
      await q1.acquire(0);
      await q2.acquire(1);
      await q1.acquire(2);
      const err = await q2.acquire(3).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(err instanceof GatewayError, String(err));
      assert.equal(err.code, 'IDENTIFY_BUDGET_EXHAUSTED');
      assert.match(err.message, /0 of 3/);
      assert.deepEqual(budgets, ['exhausted']);
      const b = await q1.budget();
      assert.equal(b?.remaining, 0);
      await assert.rejects(q1.acquire(3), /IDENTIFY_BUDGET_EXHAUSTED|budget/);
      assert.equal((await q1.budget())?.remaining, 0, 'never below 0');
      // fresh values from /gateway/bot never raise the remaining count within the period
      await q2.setBudget({ total: 3, remaining: 3, resetAfter: 60_000 });
      assert.equal((await q1.budget())?.remaining, 0);

      // 'wait': a new period refills it
      const q3 = new RedisIdentifyQueue({ redis: redis.url, bot: 'budget2', window: 50, onExhausted: 'wait', budget: { total: 1, resetAfter: 400, period: 400 } });
      const events: string[] = [];
      q3.on('budget', (e) => events.push(e.kind));
      const t0 = Date.now();
      await q3.acquire(0);
      await q3.acquire(0);
      assert.ok(Date.now() - t0 >= 350, `waited for the refill (${Date.now() - t0} ms)`);
      assert.deepEqual(events, ['exhausted', 'refilled']);
      await q3.close();
    } finally {
      await Promise.all([q1.close(), q2.close()]);
    }
  });
});

test('Redis going away mid-wait: acquire keeps waiting and reports, then continues on a new server (budget re-seeded)', async () => {
  let redis = await startRedis();
  const port = redis.port;
  const reports: RedisUnavailableEvent[] = [];
  const q = new RedisIdentifyQueue({
    redis: redis.url,
    bot: 'outage',
    window: 300,
    retryInterval: 100,
    commandTimeout: 300,
    budget: { total: 10, resetAfter: 60_000 },
    onUnavailable: (e) => reports.push(e),
  });
  let recovered = 0;
  q.on('recovered', () => recovered++);
  try {
    await q.acquire(0);
    await redis.stop();
    let granted = false;
    const waiting = q.acquire(0).then(() => (granted = true));
    await until(() => reports.length >= 2, 'outage reports', 5000);
    await delay(300);
    assert.equal(granted, false, 'nobody identifies while Redis is down');
    assert.equal(reports[0]!.shardId, 0);
    redis = await startRedis({ port });
    await waiting;
    assert.equal(granted, true);
    assert.equal(recovered, 1);
    // the empty server got the budget back from this process's last knowledge: 10 - 2
    assert.equal((await q.budget())?.remaining, 8);
  } finally {
    await q.close();
    await redis.stop();
  }
});

test('sessions: a stale write never lowers the stored sequence; a newer session replaces; load skips other shard counts', async () => {
  await withRedis(async (redis) => {
    const a = new RedisSessionStore({ redis: redis.url, bot: 'seq' });
    const b = new RedisSessionStore({ redis: redis.url, bot: 'seq' });
    try {
      const t = Date.now();
      a.update(0, { sessionId: 's1', sequence: 50, resumeUrl: 'ws://r1', total: 4, startedAt: t });
      await a.flush();
      b.update(0, { sessionId: 's1', sequence: 40, resumeUrl: 'ws://r1', total: 4, startedAt: t }); // late, from another writer
      await b.flush();
      let [s] = await a.read([0]);
      assert.equal(s?.sequence, 50);
      a.update(0, { sessionId: 's1', sequence: 45 }); // lower: not even queued
      a.update(0, { sessionId: 's1', sequence: 60 });
      a.update(0, { sessionId: 'other', sequence: 999 }); // a sequence of an unknown session: ignored
      await a.flush();
      [s] = await a.read([0]);
      assert.equal(s?.sequence, 60);
      assert.equal(s?.sessionId, 's1');
      // an older session (started before) never replaces a newer one; a newer one does, even with a lower seq
      b.update(0, { sessionId: 's0', sequence: 500, resumeUrl: 'ws://r0', total: 4, startedAt: t - 1000 });
      await b.flush();
      assert.equal((await a.read([0]))[0]?.sessionId, 's1');
      b.update(0, { sessionId: 's2', sequence: 1, resumeUrl: 'ws://r2', total: 4, startedAt: t + 1000 });
      await b.flush();
      [s] = await a.read([0]);
      assert.deepEqual([s?.sessionId, s?.sequence, s?.resumeUrl], ['s2', 1, 'ws://r2']);
      // another shard count is not resumable
      a.update(1, { sessionId: 'x', sequence: 3, resumeUrl: 'ws://x', total: 8 });
      await a.flush();
      const c = new RedisSessionStore({ redis: redis.url, bot: 'seq' });
      assert.deepEqual(await c.load([0, 1, 2], 4), { 0: { sessionId: 's2', sequence: 1, resumeUrl: 'ws://r2' } });
      await c.close();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

test("attach: one listener on the source's event stream (READY, RESUMED, dispatches), removed on detach", async () => {
  await withRedis(async (redis) => {
    const store = new RedisSessionStore({ redis: redis.url, bot: 'attach', flushInterval: 60_000 });
    try {
      const shard = new Shard({ token: 'attach-token-1234', intents: 1, gatewayUrl: 'ws://127.0.0.1:9' });
      const total = () => shard.eventNames().reduce((n, e) => n + shard.listenerCount(e), 0);
      const before = total();
      const detach = store.attach(shard);
      assert.equal(shard.listenerCount('event'), 1);
      assert.equal(shard.listenerCount('ready') + shard.listenerCount('resumed') + shard.listenerCount('dispatch'), 0);
      const ev = (e: ShardEvent) => shard.emit('event', e);
      const session = { sessionId: 'sx', sequence: 1, resumeUrl: 'ws://rx' };
      ev({ kind: 'ready', shardId: 0, data: { session_id: 'sx', resume_gateway_url: 'ws://rx' } as ReadyData, session });
      ev({ kind: 'dispatch', shardId: 0, event: { shardId: 0, type: 'TYPING_START', sequence: 7, data: {} } as never });
      await store.flush();
      assert.deepEqual(await store.load([0], 1), { 0: { sessionId: 'sx', sequence: 7, resumeUrl: 'ws://rx' } });
      ev({ kind: 'resumed', shardId: 0, session: { ...session, sequence: 9 } });
      await store.flush();
      assert.equal((await store.read([0]))[0]?.sequence, 9);
      detach();
      assert.equal(total(), before);
      ev({ kind: 'dispatch', shardId: 0, event: { shardId: 0, type: 'TYPING_START', sequence: 12, data: {} } as never });
      await store.flush();
      assert.equal((await store.read([0]))[0]?.sequence, 9, 'nothing followed after detach');

      const cluster = new Cluster({ token: 'attach-token-1234', intents: 1, shards: 1 });
      const off = store.attach(cluster);
      assert.equal(cluster.listenerCount('shardEvent'), 1);
      assert.equal(cluster.listenerCount('shardReady') + cluster.listenerCount('shardResumed') + cluster.listenerCount('dispatch'), 0);
      off();
      assert.equal(cluster.listenerCount('shardEvent'), 0);
    } finally {
      await store.close();
    }
  });
});

test('leases: one owner at a time, LEASE_HELD names the holder, released on close, a crashed owner expires, fenced writes', async () => {
  await withRedis(async (redis) => {
    const a = new RedisSessionStore({ redis: redis.url, bot: 'lease', leaseTtl: 400, ownerId: 'proc-a' });
    const b = new RedisSessionStore({ redis: redis.url, bot: 'lease', leaseTtl: 400, ownerId: 'proc-b' });
    try {
      await a.acquireLeases([0, 1]);
      await delay(600); // renewals keep it beyond the TTL
      const err = await b.acquireLease(0).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(err instanceof ShardlineError && err.code === 'LEASE_HELD', String(err));
      assert.match(err.message, /proc-a/);
      // acquireLeases is all or nothing
      await assert.rejects(b.acquireLeases([2, 1]), /LEASE_HELD|owned by/);
      assert.deepEqual(b.leases, []);
      // clean close releases at once
      await a.close();
      await b.acquireLeases([0, 1]);
      assert.deepEqual(b.leases, [0, 1]);

      // a crashed owner (no release, no renewal) is replaced once its lease expires
      const c = new RedisSessionStore({ redis: redis.url, bot: 'lease', leaseTtl: 300, ownerId: 'proc-c' });
      await c.acquireLease(5);
      c.update(5, { sessionId: 'c1', sequence: 10, resumeUrl: 'ws://c', total: 8 });
      await c.flush();
      const lost: number[] = [];
      c.on('leaseLost', (e) => lost.push(e.shardId));
      // simulate the crash: stop c's renewals without releasing
      (c as unknown as { renewTimer: NodeJS.Timeout }).renewTimer && clearInterval((c as unknown as { renewTimer: NodeJS.Timeout }).renewTimer);
      const t0 = Date.now();
      await b.acquireLease(5, { wait: 2000 });
      assert.ok(Date.now() - t0 >= 150, 'waited for the expiry');
      // the old owner's late write is fenced off and it learns it lost the shard
      c.update(5, { sessionId: 'c1', sequence: 99 });
      await c.flush();
      assert.deepEqual(lost, [5]);
      assert.equal((await b.read([5]))[0]?.sequence, 10);
      await c.close();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

test('crash and resume: a gateway process killed with SIGKILL is replaced by one that resumes (zero identifies), events contiguous', async () => {
  const redis = await startRedis();
  const scale = 0.02;
  const clock = scaledClock(scale);
  const sim = await GatewaySimulator.start({ clock, tokens: ['tok'], guilds: 2, sessionTimeout: 3_600_000 });
  const procs: ChildProcess[] = [];
  const code = `
    import { Shard, scaledClock } from '${src('index.ts')}';
    import { RedisSessionStore, RedisIdentifyQueue } from '${src('distributed/index.ts')}';
    const store = new RedisSessionStore({ redis: process.env.R, bot: 'crash', leaseTtl: 500, flushInterval: 50 });
    const queue = new RedisIdentifyQueue({ redis: process.env.R, bot: 'crash', window: 110 });
    await store.acquireLease(0, { wait: 5000 });
    const sessions = await store.load([0], 1);
    const shard = new Shard({ token: 'tok', intents: 1 | 512 | 32768, gatewayUrl: process.env.SIM, clock: scaledClock(${scale}), identifyQueue: queue, session: sessions[0] ?? null });
    store.attach(shard);
    shard.on('dispatch', (e) => console.log(JSON.stringify({ seq: e.sequence, type: e.type })));
    await shard.connect();
    console.log(JSON.stringify({ ready: true, resumed: !!sessions[0], identifies: shard.counters.identifies }));
  `;
  try {
    const first = child(code, { R: redis.url, SIM: sim.url });
    procs.push(first.proc);
    await until(() => first.lines.some((l) => l.ready), 'first process ready', 15_000);
    const guild = sim.guildIds[0]!;
    let n = 0;
    const traffic = setInterval(() => sim.dispatch(0, 'MESSAGE_CREATE', { id: String(++n), channel_id: '1', guild_id: guild, author: { id: '2' }, content: `m${n}` }), 5);
    await until(() => first.lines.filter((l) => l.type === 'MESSAGE_CREATE').length >= 30, 'events in the first process', 10_000);
    first.proc.kill('SIGKILL');
    await first.exited;
    const identifies = sim.stats.identifies;
    const second = child(code, { R: redis.url, SIM: sim.url });
    procs.push(second.proc);
    await until(() => second.lines.some((l) => l.ready), 'second process ready', 15_000);
    // live traffic reaches the second process (not only the replay) before it stops
    const firstLast = Math.max(...first.lines.filter((l) => typeof l.seq === 'number').map((l) => l.seq as number));
    await until(() => second.lines.filter((l) => typeof l.seq === 'number' && (l.seq as number) > firstLast + 10).length >= 10, 'live events in the second process', 10_000);
    clearInterval(traffic);
    const last = Math.max(...sim.dispatch(0, 'MESSAGE_CREATE', { id: 'end', channel_id: '1', guild_id: guild, author: { id: '2' }, content: 'end' }));
    await until(() => second.lines.some((l) => l.seq === last), 'last event', 5000);
    const ready = second.lines.find((l) => l.ready)!;
    assert.equal(ready.resumed, true);
    assert.equal(ready.identifies, 0);
    assert.equal(sim.stats.identifies, identifies, 'no new IDENTIFY');
    assert.ok(sim.stats.resumes >= 1);
    // everything the two processes saw, together, is contiguous from READY (1) to the last event
    const seqs = new Set([...first.lines, ...second.lines].filter((l) => typeof l.seq === 'number').map((l) => l.seq as number));
    for (let s = 1; s <= last; s++) assert.ok(seqs.has(s), `seq ${s} was never delivered`);
    // and the second process started where the stored sequence was (only a short replay)
    const secondSeqs = second.lines.filter((l) => typeof l.seq === 'number').map((l) => l.seq as number);
    const firstMax = Math.max(...first.lines.filter((l) => typeof l.seq === 'number').map((l) => l.seq as number));
    assert.ok(secondSeqs[0]! <= firstMax + 1, 'no gap between the processes');
    assert.ok(secondSeqs[0]! > 1, 'resumed, not replayed from the start');
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await sim.stop();
    await redis.stop();
  }
});
