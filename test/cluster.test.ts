import { test } from 'node:test';
import assert from 'node:assert/strict';
import util from 'node:util';
import { LocalIdentifyQueue } from '../src/queue.js';
import { GatewaySimulator } from '../src/simulator/index.js';
import { Cluster, ClusterConnectError, CLUSTER_IDENTIFY_WINDOW } from '../src/cluster.js';
import { GatewayError, type ShardlineError } from '../src/errors.js';
import type { DispatchEvent } from '../src/events.js';
import { generateGuildIds, shardForGuild } from '../src/simulator/index.js';
import { INTENTS, manualRig, rig, type Rig } from './helpers/cluster-rig.js';
import { ManualClock, drive } from './helpers/manual-clock.js';
import { TOKEN, until, delay, failOnUnhandledRejections } from './helpers/setup.js';
import { runChild } from './helpers/child.js';
import { freePort } from './helpers/servers.js';

failOnUnhandledRejections();

const MSG = (n: number, tag = 'm') => ({ id: String(1000 + n), channel_id: '1', content: `${tag}${n}`, author: { id: '2' } });
const content = (e: DispatchEvent) => (e.data as { content?: string }).content ?? '';

// ---- failure isolation, health, restart ----------------------------------------------------------------

test('a fatal shard is reported with its reason and does not take the others down; it can be restarted alone', async () => {
  // 9 guilds over 4 shards: shard 0 gets 3, above maxGuildsPerShard 2 -> 4011 Sharding required
  const guilds = generateGuildIds(9, 4);
  const r = await manualRig({ shards: 4, maxConcurrency: 4, guilds, maxGuildsPerShard: 2 });
  try {
    const cluster = r.cluster();
    const errors: Error[] = [];
    const shardErrors: number[] = [];
    cluster.on('error', (e) => errors.push(e));
    cluster.on('shardError', (_e, id) => shardErrors.push(id));
    let allReady = 0;
    cluster.on('ready', () => allReady++);
    const err = await r.run(
      cluster.connect().then(
        () => null,
        (e: unknown) => e,
      ),
    );
    assert.ok(err instanceof ClusterConnectError, String(err));
    assert.equal(err.code, 'SHARDS_FAILED');
    assert.deepEqual(
      err.failures.map((f) => f.shardId),
      [0],
    );
    const cause = err.failures[0]!.error as GatewayError;
    assert.equal(cause.closeCode, 4011);
    assert.equal(cause.shardId, 0);
    assert.match(err.message, /1 of 4 shards failed.*shard 0: .*4011/);
    assert.equal(errors.length, 1);
    assert.equal((errors[0] as GatewayError).shardId, 0);
    assert.ok(shardErrors.includes(0));
    assert.equal(allReady, 0);

    const status = cluster.status();
    assert.equal(status[0]!.state, 'fatal');
    assert.equal(status[0]!.lastCloseCode, 4011);
    assert.match(status[0]!.error ?? '', /4011/);
    for (const s of status.slice(1)) {
      assert.equal(s.state, 'ready');
      assert.equal(s.guilds, guilds.filter((g) => shardForGuild(g, 4) === s.id).length);
    }
    // the others keep working
    const seen: DispatchEvent[] = [];
    cluster.on('dispatch', (e) => seen.push(e));
    r.sim.dispatch(2, 'MESSAGE_CREATE', MSG(1));
    await r.until(() => seen.some((e) => e.shardId === 2 && e.type === 'MESSAGE_CREATE'), 'dispatch from shard 2');
    await assert.rejects(cluster.send(0, { op: 3, d: { since: null, activities: [], status: 'idle', afk: false } }), /shard 0/);

    // fix the cause; restart only shard 0
    r.sim.setOptions({ maxGuildsPerShard: 2500 });
    const identifiesBefore = r.sim.stats.identifies;
    await r.run(cluster.restartShard(0));
    assert.equal(cluster.shard(0).state, 'ready');
    assert.equal(r.sim.stats.identifies, identifiesBefore + 1);
    assert.equal(allReady, 1, "'ready' once every shard is ready");
    assert.equal(cluster.status()[0]!.error, undefined);

    // restarting a healthy shard resumes it: no IDENTIFY, no lost event
    const resumed: number[] = [];
    cluster.on('shardResumed', (id) => resumed.push(id));
    const seqBefore = cluster.shard(3).status().sequence;
    await r.run(cluster.shard(3).restart());
    assert.deepEqual(resumed, [3]);
    assert.equal(r.sim.stats.identifies, identifiesBefore + 1);
    assert.equal(cluster.shard(3).status().sessionId, status[3]!.sessionId);
    assert.ok(cluster.shard(3).status().sequence >= seqBefore);
    assert.equal(cluster.shard(3).status().reconnects, 0);
    assert.ok(cluster.shard(3).shard, 'in-thread mode exposes the Shard');
  } finally {
    await r.stop();
  }
});

test('the default queue guards the daily budget from /gateway/bot: spent means a clear error, never a token reset', async () => {
  const r = await manualRig({ shards: 4, maxConcurrency: 4, guilds: 4, sessionStartLimit: { total: 1000, remaining: 2, resetAfter: 3_600_000 }, onSessionStartExhausted: 'reset-token' });
  try {
    const cluster = r.cluster();
    const budget: string[] = [];
    cluster.on('identifyBudget', (e) => budget.push(`${e.kind}:${e.policy}`));
    const err = (await r.run(cluster.connect().catch((e: unknown) => e))) as ClusterConnectError;
    assert.ok(err instanceof ClusterConnectError);
    assert.deepEqual(
      err.failures.map((f) => (f.error as GatewayError).code),
      ['IDENTIFY_BUDGET_EXHAUSTED', 'IDENTIFY_BUDGET_EXHAUSTED'],
    );
    // 60 min, or 1 h when no virtual time passed at all since /gateway/bot (the HTTP round trip is not awaited by
    // the clock driver, so it may take a step or not)
    assert.match(err.message, /refills in (60 min|1 h)\b/);
    assert.equal(r.sim.stats.identifies, 2, 'never asked the gateway for a session it has no budget for');
    assert.deepEqual(budget, ['exhausted:error']);
    assert.equal(cluster.status().filter((s) => s.state === 'ready').length, 2, 'the two that got a session run');
  } finally {
    await r.stop();
  }
});

// ---- one stream ---------------------------------------------------------------------------------------

test('one stream for every shard: per-shard order kept, bounded with back-pressure, a quiet shard is not starved', async () => {
  // A manual clock: the in-process gateway compresses and sends 1500 dispatches with the heartbeat ACKs queued
  // behind them; however long a loaded machine takes, no heartbeat is judged meanwhile (time moves only in r.run /
  // r.until), so pausing cannot turn into a zombie reconnect.
  const r = await manualRig({ shards: 4, maxConcurrency: 4, guilds: 4 });
  try {
    const cluster = r.cluster({ eventBufferSize: 64, events: ['MESSAGE_CREATE'] });
    const debug: string[] = [];
    cluster.on('debug', (e) => debug.push(e.message));
    const disconnects: string[] = [];
    cluster.on('shardDisconnected', (e) => disconnects.push(`shard ${e.shardId}: ${e.cause} → ${e.action}`));
    const it = cluster.events();
    await r.run(cluster.connect());
    for (let i = 0; i < 1500; i++) {
      r.sim.dispatch(0, 'MESSAGE_CREATE', MSG(i, 'busy'));
      if (i % 100 === 0) r.sim.dispatch(1, 'MESSAGE_CREATE', MSG(i / 100, 'quiet'));
    }
    // the consumer is late: the stream fills up and the shards must stop reading
    await r.until(() => debug.some((l) => l.includes('pausing every shard')), 'back-pressure reaching the shards');
    const got: DispatchEvent[] = [];
    for await (const e of it) {
      got.push(e);
      if (got.length % 50 === 0) await delay(2); // and slow
      if (got.length === 1515) break;
    }
    const busy = got.filter((e) => e.shardId === 0).map(content);
    const quiet = got.filter((e) => e.shardId === 1).map(content);
    assert.deepEqual(
      busy,
      Array.from({ length: 1500 }, (_, i) => `busy${i}`),
    );
    assert.deepEqual(
      quiet,
      Array.from({ length: 15 }, (_, i) => `quiet${i}`),
    );
    // a quiet shard's event never waits behind more than the stream buffer plus what the busy shard's socket had
    // already read when it was paused
    const SOCKET_SLACK = 256;
    const pos = new Map(got.map((e, i) => [`${e.shardId}:${content(e)}`, i]));
    for (let j = 0; j < 15; j++) {
      const limit = Math.min(1499, j * 100 + 64 + SOCKET_SLACK);
      assert.ok(pos.get(`1:quiet${j}`)! < pos.get(`0:busy${limit}`)!, `quiet${j} not starved`);
    }
    assert.ok(debug.some((l) => l.includes('resuming every shard')));
    assert.deepEqual(disconnects, [], 'pausing did not cost a connection');
    assert.ok(
      cluster.status().every((s) => s.state === 'ready'),
      `every shard ready: ${cluster
        .status()
        .map((s) => s.state)
        .join(', ')}`,
    );
  } finally {
    await r.stop();
  }
});

// ---- routing ------------------------------------------------------------------------------------------

test('shardIdFor is exact for large snowflakes; commands route to the owning shard', async () => {
  const r = await manualRig({ shards: 7, maxConcurrency: 7, guilds: 7 });
  try {
    const cluster = r.cluster({ shards: 7 });
    const ids = ['18446744073709551615', '1234567890123456789', '9007199254740993', '175928847299117063', '41771983423143936'];
    for (const id of ids) {
      assert.equal(cluster.shardIdFor(id), Number((BigInt(id) >> 22n) % 7n));
      assert.equal(cluster.shardIdFor(BigInt(id)), shardForGuild(id, 7));
    }
    // the classic bug: Number() loses the low bits of a snowflake (and `id >> 22 % n` is wrong twice)
    assert.notEqual(cluster.shardIdFor('18446744073709551615'), Math.floor(Number('18446744073709551615') / 2 ** 22) % 7);
    assert.throws(
      () => cluster.shardIdFor('not-a-number'),
      (e: ShardlineError) => e.code === 'INVALID_SNOWFLAKE',
    );
    assert.throws(
      () => new Cluster({ token: TOKEN, intents: 1 }).shardIdFor('1'),
      (e: ShardlineError) => e.code === 'NOT_STARTED',
    );

    await r.run(cluster.connect());
    const ops: [number | null, number][] = [];
    r.sim.on('payload', (p) => {
      if (p.op === 3) ops.push([p.shardId, p.op]);
    });
    const guild = r.sim.guildIds[5]!;
    await cluster.send(cluster.shardIdFor(guild), { op: 3, d: { since: null, activities: [], status: 'dnd', afk: false } });
    await r.until(() => ops.length === 1, 'op 3 on one shard');
    assert.deepEqual(ops[0], [shardForGuild(guild, 7), 3]);
    await r.run(cluster.updatePresence({ since: null, activities: [], status: 'online', afk: false }));
    await r.until(() => ops.length === 8, 'op 3 on every shard');
    assert.deepEqual(new Set(ops.slice(1).map((o) => o[0])), new Set([0, 1, 2, 3, 4, 5, 6]));
    await assert.rejects(cluster.send(9, { op: 1, d: null }), (e: ShardlineError) => e.code === 'UNKNOWN_SHARD');
  } finally {
    await r.stop();
  }
});

// ---- resumable restart --------------------------------------------------------------------------------

async function resumableRestart(workers: number) {
  // In-thread shards share a manual clock with the gateway. Worker threads cannot share it: they run on the scaled
  // clock, where sessions outlive the gap on the gateway for 180 s virtual by default, under 2 real s; booting worker
  // threads on a busy host can take that long, and expiry is not what this test is about. Neither is a zombie: with
  // heartbeats every 1.5 real s (the rig's default) a starved thread can miss an ACK and resume once more, so on the
  // scaled clock the heartbeat interval (and the gateway's heartbeat deadline, 1.5 intervals) is 36 real s, beyond
  // the test's reach; every resume counted below is one the restart caused.
  const opts = { shards: 6, maxConcurrency: 6, guilds: 6, sessionTimeout: 3_600_000 };
  const manual = workers === 0 ? await manualRig(opts) : null;
  const r: Rig = manual ?? (await rig({ ...opts, heartbeatInterval: 3_600_000 }));
  const run = <T>(p: Promise<T>): Promise<T> => (manual ? manual.run(p) : p);
  const waitFor = (done: () => boolean, what: string): Promise<void> => (manual ? manual.until(done, what) : until(done, what));
  try {
    const a = r.cluster({ workers, shards: 6 });
    const seenA: DispatchEvent[] = [];
    a.on('dispatch', (e) => e.type === 'MESSAGE_CREATE' && seenA.push(e));
    await run(a.connect());
    if (workers > 0) assert.deepEqual(new Set(a.status().map((s) => s.worker)), new Set([0, 1]));
    for (let id = 0; id < 6; id++) r.sim.dispatch(id, 'MESSAGE_CREATE', MSG(id, 'before'));
    await waitFor(() => seenA.length === 6, 'events before close');
    const sessions = await run(a.close({ resumable: true }));
    assert.deepEqual(Object.keys(sessions).map(Number).sort(), [0, 1, 2, 3, 4, 5]);
    assert.ok(a.status().every((s) => s.state === 'closed'));

    // events dispatched while no process is connected wait in the gateway's replay buffer
    for (let id = 0; id < 6; id++) for (let i = 0; i < 5; i++) r.sim.dispatch(id, 'MESSAGE_CREATE', MSG(id * 10 + i, 'between'));
    const identifies = r.sim.stats.identifies;
    const b = r.cluster({ workers, shards: 6, sessions });
    const stream = b.events();
    const resumed: number[] = [];
    b.on('shardResumed', (id) => resumed.push(id));
    await run(b.connect());
    assert.equal(r.sim.stats.identifies, identifies, 'no IDENTIFY: every shard resumed');
    assert.deepEqual(resumed.sort(), [0, 1, 2, 3, 4, 5]);
    const got: DispatchEvent[] = [];
    for await (const e of stream) {
      if (e.type === 'MESSAGE_CREATE') got.push(e);
      if (got.length === 30) break;
    }
    await delay(50);
    const texts = got.map((e) => `${e.shardId}:${content(e)}`).sort();
    const expected = Array.from({ length: 30 }, (_, k) => `${Math.floor(k / 5)}:between${Math.floor(k / 5) * 10 + (k % 5)}`).sort();
    assert.deepEqual(texts, expected, 'every event dispatched in between, exactly once, none from before');
    for (let id = 0; id < 6; id++) {
      const seqs = got.filter((e) => e.shardId === id).map((e) => e.sequence);
      assert.deepEqual(
        seqs,
        [...seqs].sort((x, y) => x - y),
        `shard ${id} in order`,
      );
      assert.ok(seqs[0]! > sessions[id]!.sequence);
    }
    await b.close();
  } finally {
    await r.stop();
  }
}

test('close({ resumable }) then new Cluster({ sessions }): zero IDENTIFYs, no event lost or repeated', () => resumableRestart(0));

// ---- worker threads -----------------------------------------------------------------------------------

test('worker mode: shards in 2 worker threads, one stream, routed commands, status, restart', async () => {
  const r = await rig({ shards: 8, maxConcurrency: 8, guilds: 16 });
  try {
    const cluster = r.cluster({ workers: 2, shards: 8, shardOptions: (id) => ({ largeThreshold: 50 + id }) });
    const seen: DispatchEvent[] = [];
    cluster.on('dispatch', (e) => seen.push(e));
    const shardReady: number[] = [];
    cluster.on('shardReady', (id, d) => {
      assert.ok(d.session_id);
      shardReady.push(id);
    });
    let allReady = false;
    cluster.on('ready', () => (allReady = true));
    const payloads: { shardId: number | null; op: number; d: unknown }[] = [];
    r.sim.on('identify', (e) => payloads.push({ shardId: e.shardId, op: 2, d: e.payload }));
    await cluster.connect();
    assert.ok(allReady);
    assert.deepEqual(
      shardReady.sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );
    const status = cluster.status();
    assert.deepEqual(
      status.map((s) => s.worker),
      [0, 1, 0, 1, 0, 1, 0, 1],
    );
    assert.ok(status.every((s) => s.state === 'ready' && s.sessionId && s.guilds === 2));
    assert.equal(cluster.shard(3).shard, undefined);
    // per-shard options crossed the thread boundary
    assert.equal((payloads.find((p) => p.shardId === 5)!.d as { large_threshold: number }).large_threshold, 55);

    for (let i = 0; i < 40; i++) r.sim.dispatch(i % 8, 'MESSAGE_CREATE', MSG(i));
    await until(() => seen.filter((e) => e.type === 'MESSAGE_CREATE').length === 40, '40 messages from both workers');
    for (let id = 0; id < 8; id++) {
      const mine = seen.filter((e) => e.type === 'MESSAGE_CREATE' && e.shardId === id);
      assert.deepEqual(
        mine.map(content),
        [0, 1, 2, 3, 4].map((k) => `m${k * 8 + id}`),
      );
    }
    await until(() => cluster.shard(6).status().sequence >= 6, 'status mirror follows the sequence');

    const ops: (number | null)[] = [];
    r.sim.on('payload', (p) => p.op === 3 && ops.push(p.shardId));
    await cluster.send(5, { op: 3, d: { since: null, activities: [], status: 'idle', afk: false } });
    await until(() => ops.length === 1, 'routed op 3');
    assert.deepEqual(ops, [5]);
    await cluster.updatePresence({ since: null, activities: [], status: 'online', afk: false });
    await until(() => ops.length === 9, 'op 3 on all 8 shards');
    await assert.rejects(cluster.send(5, { op: 3, d: 'x'.repeat(5000) }), (e: ShardlineError) => e.code === 'PAYLOAD_TOO_LARGE');

    const identifies = r.sim.stats.identifies;
    await cluster.restartShard(5);
    assert.equal(r.sim.stats.identifies, identifies, 'restart resumed');
    assert.equal(cluster.shard(5).state, 'ready');
    await cluster.restartShard(5, { resume: false });
    assert.equal(r.sim.stats.identifies, identifies + 1);
  } finally {
    await r.stop();
  }
});

test('worker mode: a fatal shard in a worker is reported and isolated', async () => {
  const r = await rig({ shards: 4, maxConcurrency: 4, guilds: 4, applicationIntents: 0 });
  try {
    // shard 1 asks for a privileged intent the application lacks -> 4014
    const cluster = r.cluster({ workers: 2, shards: 4, shardOptions: (id) => (id === 1 ? { intents: INTENTS | 2 } : {}) });
    const errors: Error[] = [];
    cluster.on('error', (e) => errors.push(e));
    const err = (await cluster.connect().catch((e: unknown) => e)) as ClusterConnectError;
    assert.ok(err instanceof ClusterConnectError);
    assert.deepEqual(
      err.failures.map((f) => f.shardId),
      [1],
    );
    assert.ok(err.failures[0]!.error instanceof GatewayError);
    assert.equal((err.failures[0]!.error as GatewayError).closeCode, 4014);
    assert.match(err.message, /Disallowed intent/);
    assert.equal(errors.length, 1);
    await until(() => cluster.status()[1]!.state === 'fatal', 'mirror shows fatal');
    assert.deepEqual(
      cluster.status().map((s) => s.state),
      ['ready', 'fatal', 'ready', 'ready'],
    );
  } finally {
    await r.stop();
  }
});

test('worker mode: close({ resumable }) then new Cluster({ sessions }) resumes everything', () => resumableRestart(2));

// ---- lifecycle ----------------------------------------------------------------------------------------

test('options are validated; /gateway/bot errors are clear; close releases everything', async () => {
  assert.throws(
    () => new Cluster({ token: '', intents: 1 }),
    (e: ShardlineError) => e.code === 'INVALID_TOKEN',
  );
  assert.throws(
    () => new Cluster({ token: TOKEN, intents: -1 }),
    (e: ShardlineError) => e.code === 'INVALID_INTENTS',
  );
  assert.throws(
    () => new Cluster({ token: TOKEN, intents: 1, shards: { ids: [3], total: 2 } }),
    (e: ShardlineError) => e.code === 'INVALID_SHARD',
  );
  assert.throws(
    () => new Cluster({ token: TOKEN, intents: 1, workers: -1 }),
    (e: ShardlineError) => e.code === 'INVALID_OPTION',
  );

  const r = await manualRig({ shards: 2, maxConcurrency: 2, guilds: 2 });
  try {
    const bad = r.cluster({ token: 'wrong-token-0000' });
    await assert.rejects(r.run(bad.connect()), (e: GatewayError) => e.code === 'INVALID_TOKEN' && !e.message.includes('wrong-token-0000'));
    await bad.close();

    const before = process.getActiveResourcesInfo().filter((x) => x !== 'TTYWrap').length;
    const c = r.cluster({ shards: { ids: [1], total: 2 } });
    assert.deepEqual(c.ids, [1]);
    const it = c.events();
    await r.run(c.connect());
    assert.deepEqual(
      c.status().map((s) => [s.id, s.state]),
      [[1, 'ready']],
    );
    assert.throws(
      () => c.shard(0),
      (e: ShardlineError) => e.code === 'UNKNOWN_SHARD',
    );
    const sessions = await r.run(c.close());
    assert.deepEqual(sessions, {});
    for (;;) if ((await it.next()).done) break; // buffered events (READY, GUILD_CREATE) first, then the end
    await assert.rejects(c.connect(), (e: ShardlineError) => e.code === 'CLUSTER_CLOSED');
    await delay(50);
    const afterClose = process.getActiveResourcesInfo().filter((x) => x !== 'TTYWrap').length;
    assert.ok(afterClose <= before, `no timer or socket left behind (${before} → ${afterClose}: ${process.getActiveResourcesInfo().join(', ')})`);
    assert.ok(CLUSTER_IDENTIFY_WINDOW >= 5000);
  } finally {
    await r.stop();
  }
});

// ---- regressions: connect() retry, token never reachable -----------------------------------------------

/** Run a cluster whose connect() fails in a child process; resolves with its output once it exits by itself. */
function failInChild(apiUrl: string): Promise<{ code: number | null; out: string; ms: number }> {
  const script = `
    import { Cluster } from ${JSON.stringify(new URL('../src/cluster.ts', import.meta.url).href)};
    const c = new Cluster({ token: 'child-token-0000', intents: 1, apiUrl: ${JSON.stringify(apiUrl)} });
    c.connect().then(() => console.log('connected'), (e) => console.log('failed', e.code));`;
  return runChild(script, 'failed connect()', 20_000);
}

test('a failed connect() can be retried: /gateway/bot unreachable, then rejecting the token, then back', async () => {
  const port = await freePort();
  const clock = new ManualClock();
  const cluster = new Cluster({ token: TOKEN, intents: INTENTS, apiUrl: `http://127.0.0.1:${port}/api/v10`, clock });
  let sim: GatewaySimulator | null = null;
  try {
    const first = cluster.connect();
    assert.equal(cluster.connect(), first, 'concurrent calls share the attempt in flight');
    await assert.rejects(drive(clock, first), (e: ShardlineError) => e.code === 'GATEWAY_BOT_FAILED');
    assert.equal(cluster.total, null);
    // the API comes back on that port, but rejects this token at first
    sim = await GatewaySimulator.start({ port, tokens: ['somebody-else'], clock, shards: 2, maxConcurrency: 2, guilds: 2 });
    const second = cluster.connect();
    assert.notEqual(second, first, 'a new attempt after a failure');
    await assert.rejects(drive(clock, second), (e: ShardlineError) => e.code === 'INVALID_TOKEN');
    sim.setOptions({ tokens: [TOKEN] });
    const third = cluster.connect();
    assert.notEqual(third, second);
    assert.equal(cluster.connect(), third);
    await drive(clock, third);
    assert.deepEqual(
      cluster.status().map((s) => s.state),
      ['ready', 'ready'],
    );
    assert.equal(cluster.connect(), third, 'after success the settled attempt is returned');
  } finally {
    await cluster.close();
    await sim?.stop();
  }
});

test('a failed connect() leaves no timer or socket behind: the process exits by itself', async () => {
  const unreachable = await failInChild(`http://127.0.0.1:${await freePort()}/api/v10`);
  assert.equal(unreachable.out, 'failed GATEWAY_BOT_FAILED');
  assert.equal(unreachable.code, 0);
  assert.ok(unreachable.ms < 3000, `exited ${unreachable.ms} ms after the failure`);
  const r = await manualRig({ shards: 1, guilds: 1 });
  try {
    const rejected = await failInChild(r.sim.apiUrl);
    assert.equal(rejected.out, 'failed INVALID_TOKEN');
    assert.equal(rejected.code, 0);
    assert.ok(rejected.ms < 3000, `exited ${rejected.ms} ms after the failure`);
  } finally {
    await r.stop();
  }
});

test('the token is not reachable from a cluster: inspect, JSON, worker mode, failed clusters and their errors', async () => {
  const r = await rig({ shards: 2, maxConcurrency: 2, guilds: 2 });
  const deep = { depth: 10, showHidden: true } as const;
  const clean = (what: string, value: unknown, secret = TOKEN, opts: util.InspectOptions = deep) => {
    const text = util.inspect(value, opts);
    assert.ok(!text.includes(secret), `${what}: util.inspect shows the token`);
    assert.ok(!(JSON.stringify(value) ?? '').includes(secret), `${what}: JSON.stringify shows the token`);
    return text;
  };
  try {
    const cluster = r.cluster({ token: `Bot ${TOKEN}` });
    await cluster.connect();
    const shown = clean('running cluster', cluster);
    assert.match(shown, /Cluster/);
    assert.match(shown, /ready/);
    assert.deepEqual(JSON.parse(JSON.stringify(cluster)).ids, [0, 1]);
    clean('in-thread shard', cluster.shard(0).shard);
    clean('in-thread shard, raw object graph', cluster.shard(0).shard, TOKEN, { ...deep, customInspect: false });
    clean('running cluster, raw object graph', cluster, TOKEN, { ...deep, customInspect: false });

    // worker mode: no Shard lives in this thread, so the cluster's whole object graph can be walked
    const workers = r.cluster({ workers: 1 });
    await workers.connect();
    clean('worker cluster', workers);
    clean('worker cluster, raw object graph', workers, TOKEN, { ...deep, customInspect: false });

    // rejected by the gateway (4004): no /gateway/bot call, so the token reaches IDENTIFY
    const wrong = 'rejected-token-QQQQ.WWWW.secret';
    const rejected = new Cluster({ token: wrong, intents: INTENTS, shards: 1, gatewayUrl: r.sim.url, identifyQueue: new LocalIdentifyQueue({ clock: r.clock }), clock: r.clock });
    r.clusters.push(rejected);
    const err = await rejected.connect().then(
      () => assert.fail('connect() should fail'),
      (e: unknown) => e as ClusterConnectError,
    );
    assert.ok(err instanceof ClusterConnectError);
    assert.equal((err.failures[0]!.error as GatewayError).closeCode, 4004);
    clean('cluster rejected with 4004', rejected, wrong);
    clean('its ClusterConnectError', err, wrong);
    clean('its status', rejected.status(), wrong);

    // rejected by /gateway/bot (401)
    const bad = r.cluster({ token: wrong });
    const err401 = await bad.connect().then(
      () => assert.fail('connect() should fail'),
      (e: unknown) => e as GatewayError,
    );
    assert.equal(err401.code, 'INVALID_TOKEN');
    clean('cluster rejected by /gateway/bot', bad, wrong);
    clean('its error', err401, wrong);
  } finally {
    await r.stop();
  }
});
