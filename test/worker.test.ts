/**
 * Worker supervision (src/worker/host.ts): a worker thread that exits on its own is respawned, its shards RESUME
 * from what the main thread was given (no event lost or repeated), a worker that keeps crashing stops its shards,
 * and closing during a respawn leaves nothing behind. Against the real simulator, in worker mode.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scaledClock, type Clock } from '../src/clock.js';
import { Cluster, workerHosts, type ClusterOptions } from '../src/cluster.js';
import type { WorkerExitEvent } from '../src/cluster-status.js';
import type { GatewayError, ShardlineError } from '../src/errors.js';
import type { DisconnectedEvent, DispatchEvent, StateChange } from '../src/events.js';
import { disconnectCause } from '../src/cluster-tracker.js';
import { GatewaySimulator } from '../src/simulator/index.js';
import type { GatewaySimulatorOptions } from '../src/simulator/types.js';
import { TOKEN, SCALE, until, delay, failOnUnhandledRejections } from './helpers/setup.js';

failOnUnhandledRejections();

/** Guilds | GuildMessages | DirectMessages: the markers are DMs, so their content is not stripped. */
const INTENTS = 1 | 512 | 4096;
/** Real ms: a worker thread boots in ~0.5 s under tsx, more on a busy machine. */
const BOOT = 30_000;

interface Rig {
  sim: GatewaySimulator;
  clock: Clock;
  cluster: Cluster;
  /** Everything the cluster said: debug lines, errors, state change reasons, exit reasons (to look for the token). */
  logs: string[];
  exits: WorkerExitEvent[];
  changes: StateChange[];
  disconnects: DisconnectedEvent[];
  /** Start steady marker traffic to `shards` (stopped by `stop()` at the latest). */
  markers(shards: number[]): ReturnType<typeof markers>;
  stop(): Promise<void>;
}

async function rig(clusterOpts: Partial<ClusterOptions>, simOpts: GatewaySimulatorOptions = {}): Promise<Rig> {
  const clock = scaledClock(SCALE);
  // Virtual time runs 100x here, so real stalls of a busy machine are magnified: a dead worker's sessions must
  // outlive a slow thread boot (sessionTimeout), and a freshly booted worker reading a long replay while the traffic
  // goes on must not be taken for a zombie (heartbeats every 3 real s instead of 0.4) or time out its RESUME.
  const sim = await GatewaySimulator.start({
    tokens: [TOKEN],
    clock,
    shards: 4,
    maxConcurrency: 4,
    guilds: 4,
    sessionTimeout: 3_600_000,
    heartbeatInterval: 300_000,
    ...simOpts,
  });
  const cluster = new Cluster({
    token: TOKEN,
    intents: INTENTS,
    apiUrl: sim.apiUrl,
    clock,
    workers: 2,
    shards: 4,
    shardOptions: () => ({ helloTimeout: 3_600_000, readyTimeout: 3_600_000 }),
    ...clusterOpts,
  });
  const logs: string[] = [];
  const exits: WorkerExitEvent[] = [];
  const changes: StateChange[] = [];
  const disconnects: DisconnectedEvent[] = [];
  cluster.on('debug', (e) => logs.push(e.message));
  cluster.on('shardError', (e) => logs.push(`${e.name}: ${e.message}`));
  cluster.on('error', (e) => logs.push(`${e.name}: ${e.message}`));
  cluster.on('workerExit', (e) => {
    exits.push(e);
    logs.push(e.reason);
  });
  cluster.on('shardStateChange', (c) => {
    changes.push(c);
    logs.push(c.reason);
  });
  cluster.on('shardDisconnected', (e) => {
    disconnects.push(e);
    logs.push(e.cause);
  });
  const flows: (() => void)[] = [];
  return {
    sim,
    clock,
    cluster,
    logs,
    exits,
    changes,
    disconnects,
    markers(shards) {
      const flow = markers(sim, cluster, shards);
      flows.push(flow.stop);
      return flow;
    },
    async stop() {
      for (const stop of flows) stop();
      await cluster.close().catch(() => undefined);
      await sim.stop();
    },
  };
}

/**
 * Steady traffic: a DM with the unique marker `<shard>:<n>` to every shard each real ms, plus `burst()` on demand;
 * records every MESSAGE_CREATE the cluster delivers.
 */
function markers(sim: GatewaySimulator, cluster: Cluster, shards: number[]) {
  const sent: string[] = [];
  const got: { marker: string; shardId: number; sequence: number }[] = [];
  const counters = new Map<number, number>();
  let id = 0;
  cluster.on('dispatch', (e: DispatchEvent) => {
    if (e.type === 'MESSAGE_CREATE') got.push({ marker: e.data.content, shardId: e.shardId, sequence: e.sequence });
  });
  const send = (shard: number) => {
    const n = counters.get(shard) ?? 0;
    counters.set(shard, n + 1);
    const marker = `${shard}:${n}`;
    sent.push(marker);
    sim.dispatch(shard, 'MESSAGE_CREATE', { id: String(++id), channel_id: '11', content: marker, author: { id: '3' } });
  };
  const timer = setInterval(() => {
    for (const s of shards) send(s);
  }, 1);
  return {
    sent,
    got,
    send,
    stop: () => clearInterval(timer),
    /** Every marker delivered exactly once, by the shard it was sent to, each shard's markers in order. */
    check() {
      const counts = new Map<string, number>();
      for (const d of got) counts.set(d.marker, (counts.get(d.marker) ?? 0) + 1);
      const duplicates = [...counts].filter(([, n]) => n > 1).map(([m]) => m);
      const lost = sent.filter((m) => !counts.has(m));
      const misrouted = got.filter((d) => !d.marker.startsWith(`${d.shardId}:`)).map((d) => d.marker);
      const disorder: number[] = [];
      for (const s of shards) {
        const mine = got.filter((d) => d.shardId === s);
        if (mine.some((d, i) => i > 0 && (Number(d.marker.split(':')[1]) <= Number(mine[i - 1]!.marker.split(':')[1]) || d.sequence <= mine[i - 1]!.sequence))) {
          disorder.push(s);
        }
      }
      return { duplicates, lost, misrouted, disorder };
    },
  };
}

const activeResources = () => process.getActiveResourcesInfo().filter((x) => x !== 'TTYWrap').length;

test('a crashed worker is respawned and its shards RESUME: no IDENTIFY, every marker once and in order, the other worker untouched', async () => {
  const r = await rig({});
  try {
    const { cluster, sim } = r;
    const resumed: number[] = [];
    cluster.on('shardResumed', (id) => resumed.push(id));
    await cluster.connect();
    assert.deepEqual(
      cluster.status().map((s) => s.worker),
      [0, 1, 0, 1],
    );
    const flow = r.markers([0, 1, 2, 3]);
    await until(() => flow.got.length >= 200, 'steady traffic flowing', BOOT);
    const before = cluster.status();
    const identifies = sim.stats.identifies;
    const resumes = sim.stats.resumes;
    const changesBefore = r.changes.length;
    let statesAtExit: [number, string][] = [];
    cluster.on('workerExit', () => (statesAtExit = cluster.status().map((s) => [s.id, s.state])));

    // A burst the doomed worker is reading while it dies: some of it posted, some read but not posted, some unread.
    for (let i = 0; i < 300; i++) {
      flow.send(0);
      flow.send(2);
    }
    const host = workerHosts(cluster)[0]!;
    await host.terminate(); // abrupt: no close frames, the main thread is not asked
    await until(() => r.exits.length === 1, 'workerExit');
    const exit = r.exits[0]!;
    assert.equal(exit.worker, 0);
    assert.equal(exit.restarting, true);
    assert.equal(exit.restarts, 1);
    assert.equal(exit.recentExits, 1);
    assert.equal(exit.delay, 1000);
    assert.deepEqual(exit.shards, [0, 2]);
    assert.match(exit.reason, /^worker 0 exited \(code 1\)/);
    // a command for a shard of the dead worker waits for the new one
    const ops: (number | null)[] = [];
    sim.on('payload', (p) => p.op === 3 && ops.push(p.shardId));
    const held = cluster.send(2, { op: 3, d: { since: null, activities: [], status: 'idle', afk: false } });
    held.catch(() => undefined); // awaited below
    // while it is down the shards stay listed, as reconnecting
    assert.deepEqual(statesAtExit, [
      [0, 'reconnecting'],
      [1, 'ready'],
      [2, 'reconnecting'],
      [3, 'ready'],
    ]);

    await until(() => resumed.includes(0) && resumed.includes(2) && [0, 1, 2, 3].every((id) => cluster.shard(id).state === 'ready'), 'shards 0 and 2 resumed', BOOT);
    const after = flow.sent.length;
    await until(() => flow.sent.length >= after + 200, 'traffic after the respawn');
    flow.stop();
    await until(() => flow.got.length >= flow.sent.length, 'every marker delivered', BOOT).catch(() => undefined);
    await delay(100); // and nothing more (a duplicate would come now)

    const c = flow.check();
    assert.deepEqual(c.duplicates, [], 'no marker delivered twice');
    assert.deepEqual(c.lost, [], 'no marker lost');
    assert.deepEqual(c.misrouted, []);
    assert.deepEqual(c.disorder, [], 'each shard in order');
    assert.equal(sim.stats.identifies, identifies, 'no IDENTIFY: the new worker resumed every session');
    assert.equal(sim.stats.resumes, resumes + 2, 'one RESUME per shard of the dead worker');

    const now = cluster.status();
    for (const id of [0, 2]) {
      assert.equal(now[id]!.worker, 0);
      assert.equal(now[id]!.sessionId, before[id]!.sessionId, `shard ${id} kept its session`);
      assert.equal(now[id]!.reconnects, before[id]!.reconnects + 1, `shard ${id}: one reconnect counted`);
      assert.equal(now[id]!.resumes, before[id]!.resumes + 1);
      assert.equal(now[id]!.identifies, before[id]!.identifies, 'counters carried over to the new worker');
      const seen = r.changes
        .slice(changesBefore)
        .filter((ch) => ch.shardId === id)
        .map((ch) => `${ch.from}>${ch.to}`);
      // The host reports what happened to the shard's thread (worker-exit); the new thread's shard is a new Shard
      // and reports its own states from idle: nobody rewrites another component's transitions.
      assert.deepEqual(seen, ['ready>reconnecting', 'idle>connecting', 'connecting>resuming', 'resuming>ready']);
      const exit = r.changes.slice(changesBefore).find((ch) => ch.shardId === id && ch.to === 'reconnecting')!;
      assert.equal(exit.cause.kind, 'worker-exit');
      assert.equal(exit.cause.resumable, true);
      const lost = r.disconnects.filter((d) => d.shardId === id);
      assert.equal(lost.length, 1);
      assert.equal(lost[0]!.action, 'resume');
      assert.match(lost[0]!.cause, /^worker 0 exited/);
      assert.equal(disconnectCause(lost[0]!), 'worker_exit', 'counted by metrics as a worker crash');
    }
    for (const id of [1, 3]) {
      assert.equal(now[id]!.sessionId, before[id]!.sessionId);
      assert.equal(now[id]!.reconnects, 0, `shard ${id} (worker 1) never disconnected`);
      assert.equal(r.changes.slice(changesBefore).filter((ch) => ch.shardId === id).length, 0);
      assert.equal(r.disconnects.filter((d) => d.shardId === id).length, 0);
    }
    // the command sent while the worker was down went out on the resumed connection; new ones are routed too
    await held;
    await cluster.send(0, { op: 3, d: { since: null, activities: [], status: 'online', afk: false } });
    await until(() => ops.length === 2, 'op 3 routed to the respawned worker');
    assert.deepEqual(ops, [2, 0]);
    assert.ok(r.logs.some((l) => /worker 0 respawned/.test(l)));
    assert.ok(!r.logs.some((l) => l.includes(TOKEN)), 'the token is in no log line');
  } finally {
    await r.stop();
  }
});

test('a worker that keeps crashing hits the limit: its shards end fatal with a clear error, no reconnect storm', async () => {
  // a window far longer than the test, whatever the machine's speed
  const r = await rig({ workerRestart: { maxRestarts: 2, windowMs: 1e9 } });
  try {
    const { cluster, sim } = r;
    const errors: Error[] = [];
    cluster.on('error', (e) => errors.push(e));
    const resumedAt: { id: number; at: number }[] = [];
    cluster.on('shardResumed', (id) => resumedAt.push({ id, at: r.clock.now() }));
    await cluster.connect();
    const identifies = sim.stats.identifies;
    const exitAt: number[] = [];
    cluster.on('workerExit', () => exitAt.push(r.clock.now()));

    for (let round = 1; round <= 3; round++) {
      await workerHosts(cluster)[0]!.terminate();
      await until(() => r.exits.length === round, `exit ${round}`);
      if (round < 3) {
        await until(() => resumedAt.filter((x) => x.at > exitAt[round - 1]!).length === 2, `shards resumed after exit ${round}`, BOOT);
        const first = Math.min(...resumedAt.filter((x) => x.at > exitAt[round - 1]!).map((x) => x.at));
        assert.ok(first - exitAt[round - 1]! >= r.exits[round - 1]!.delay!, `respawn ${round} waited its back-off`);
      }
    }
    assert.deepEqual(
      r.exits.map((e) => [e.restarting, e.restarts, e.recentExits, e.delay]),
      [
        [true, 1, 1, 1000],
        [true, 2, 2, 2000],
        [false, 2, 3, null],
      ],
      'back-off doubles; the third exit within the window is one too many',
    );
    assert.match(r.exits[2]!.reason, /worker 0 kept crashing \(3 exits .*maxRestarts = 2\)/);

    const status = cluster.status();
    for (const id of [0, 2]) {
      assert.equal(status[id]!.state, 'fatal');
      assert.match(status[id]!.error ?? '', /kept crashing/);
    }
    assert.equal(status[1]!.state, 'ready');
    assert.equal(status[3]!.state, 'ready');
    assert.deepEqual(
      errors.map((e) => [(e as GatewayError).code, (e as GatewayError).shardId]),
      [
        ['WORKER_EXITED', 0],
        ['WORKER_EXITED', 2],
      ],
    );
    assert.match(errors[0]!.message, /shard 0: worker 0 exited \(code 1\).*kept crashing/);
    assert.equal(sim.stats.identifies, identifies, 'each respawn resumed');

    // no storm: nothing connects for the stopped shards any more
    const connections = sim.stats.connections;
    await delay(300); // 30 virtual s: more than any back-off so far
    assert.equal(sim.stats.connections, connections, 'no reconnect after giving up');
    await assert.rejects(cluster.restartShard(0), (e: ShardlineError) => e.code === 'WORKER_EXITED');
    await assert.rejects(cluster.send(2, { op: 1, d: null }), (e: ShardlineError) => e.code === 'WORKER_EXITED');
    assert.ok(!r.logs.some((l) => l.includes(TOKEN)));
  } finally {
    await r.stop();
  }
});

test('a worker that dies during start-up is respawned and connect() still resolves with every shard ready', async () => {
  const r = await rig({});
  try {
    const { cluster, sim } = r;
    const connecting = cluster.connect();
    await until(() => workerHosts(cluster).length === 2, 'workers created');
    await workerHosts(cluster)[0]!.terminate(); // while it boots, its connect() calls in flight
    await connecting;
    assert.deepEqual(
      cluster.status().map((s) => s.state),
      ['ready', 'ready', 'ready', 'ready'],
    );
    assert.equal(r.exits.length, 1);
    assert.equal(r.exits[0]!.restarting, true);
    assert.equal(sim.stats.identifies, 4, 'one IDENTIFY per shard: the dead worker had not identified');
    assert.equal(r.disconnects.length, 0, 'nothing was connected yet');
  } finally {
    await r.stop();
  }
});

test("workerRestart: false keeps the old behaviour: the worker's shards stop at once", async () => {
  const r = await rig({ workerRestart: false, workers: 1, shards: 2 }, { shards: 2, maxConcurrency: 2, guilds: 2 });
  try {
    await r.cluster.connect();
    const connections = r.sim.stats.connections;
    await workerHosts(r.cluster)[0]!.terminate();
    await until(() => r.cluster.status().every((s) => s.state === 'fatal'), 'shards fatal');
    assert.deepEqual(
      r.exits.map((e) => [e.restarting, e.restarts, e.delay]),
      [[false, 0, null]],
    );
    assert.match(r.cluster.status()[0]!.error ?? '', /^worker 0 exited \(code 1\)$/);
    await delay(100);
    assert.equal(r.sim.stats.connections, connections);
  } finally {
    await r.stop();
  }
  assert.throws(
    () => new Cluster({ token: TOKEN, intents: 1, workerRestart: { maxRestarts: -1 } }),
    (e: ShardlineError) => e.code === 'INVALID_OPTION',
  );
  assert.throws(
    () => new Cluster({ token: TOKEN, intents: 1, workerRestart: { windowMs: Number.NaN } }),
    (e: ShardlineError) => e.code === 'INVALID_OPTION',
  );
});

test('closing the cluster while a respawn is pending (back-off, then boot) cancels it and leaves nothing behind', async () => {
  const baseline = activeResources();
  // 1. during the back-off: the sessions the main thread was given are returned, and resume in a new cluster
  const r = await rig({ workerRestart: { initialDelay: 300_000 } });
  let sessions: Awaited<ReturnType<Cluster['close']>>;
  try {
    const { cluster, sim } = r;
    await cluster.connect();
    const flow = r.markers([0, 2]);
    await until(() => flow.got.length >= 50, 'traffic');
    flow.stop();
    await until(() => flow.got.length === flow.sent.length, 'traffic delivered');
    await workerHosts(cluster)[0]!.terminate();
    await until(() => r.exits.length === 1, 'workerExit');
    assert.equal(r.exits[0]!.delay, 300_000);
    for (let i = 0; i < 10; i++) flow.send(0); // waits in the gateway's replay buffer
    const held = assert.rejects(cluster.send(0, { op: 3, d: { since: null, activities: [], status: 'idle', afk: false } }), (e: ShardlineError) => {
      return e.name === 'SendError' && e.code === 'SHARD_CLOSED';
    });
    const connections = sim.stats.connections;
    sessions = await cluster.close({ resumable: true });
    await held; // the command waiting for the new worker is rejected by close()
    assert.deepEqual(Object.keys(sessions).map(Number).sort(), [0, 1, 2, 3]);
    const last0 = Math.max(...flow.got.filter((d) => d.shardId === 0).map((d) => d.sequence));
    assert.equal(sessions[0]!.sequence, last0, "the session of a dead worker's shard ends at the last dispatch delivered");
    assert.ok(cluster.status().every((s) => s.state === 'closed'));
    await delay(100);
    assert.equal(sim.stats.connections, connections, 'no worker was started after close');

    // the returned sessions are good: a new cluster resumes them all and gets the 10 markers sent in between
    const identifies = sim.stats.identifies;
    const next = new Cluster({ token: TOKEN, intents: INTENTS, apiUrl: sim.apiUrl, clock: r.clock, shards: 4, sessions });
    try {
      const got: string[] = [];
      next.on('dispatch', (e) => e.type === 'MESSAGE_CREATE' && got.push(e.data.content));
      await next.connect();
      await until(() => got.length === 10, 'the markers sent while the worker was down');
      assert.deepEqual(
        got,
        Array.from({ length: 10 }, (_, i) => `0:${flow.sent.filter((m) => m.startsWith('0:')).length - 10 + i}`),
      );
      assert.equal(sim.stats.identifies, identifies);
    } finally {
      await next.close();
    }
  } finally {
    await r.stop();
  }
  await delay(50);
  // well before the cancelled back-off (3 real s) would have fired
  const afterBackoff = activeResources();
  assert.ok(afterBackoff <= baseline, `no timer, socket or worker left behind (${baseline} → ${afterBackoff}: ${process.getActiveResourcesInfo().join(', ')})`);

  // 2. during the new worker's boot (the back-off is over, the thread is starting)
  const r2 = await rig({ workerRestart: { initialDelay: 0 } });
  try {
    const { cluster } = r2;
    await cluster.connect();
    await workerHosts(cluster)[1]!.terminate();
    await until(() => r2.logs.some((l) => /worker 1 respawned/.test(l)), 'respawn started');
    await cluster.close();
    assert.deepEqual(
      cluster.status().map((s) => s.state),
      ['closed', 'closed', 'closed', 'closed'],
      'the booting worker closed its shards',
    );
  } finally {
    await r2.stop();
  }
  await delay(100);
  const after = activeResources();
  assert.ok(after <= baseline, `no timer, socket or worker left behind (${baseline} → ${after}: ${process.getActiveResourcesInfo().join(', ')})`);
});
