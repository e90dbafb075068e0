/**
 * The cluster's side of issue 13 against the simulator: `guildsReady` over every shard (this thread and worker
 * mode), `connect({ waitForGuilds })`, `connect({ timeout, signal })` with an unreachable REST endpoint or gateway,
 * and the metrics / status page view of guilds loading.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, ClusterConnectError } from '../src/cluster.js';
import { GatewayUnreachableError } from '../src/errors.js';
import type { GuildsReadyEvent, ShardEvent } from '../src/events.js';
import { attachMetrics } from '../src/metrics.js';
import { statusHandler } from '../src/status-page/server.js';
import { INTENTS, manualRig, rig, type Rig } from './helpers/cluster-rig.js';
import { TOKEN, failOnUnhandledRejections } from './helpers/setup.js';
import { freePort } from './helpers/servers.js';
import { ManualClock, drive, driveUntil, type DriveOptions } from './helpers/manual-clock.js';

failOnUnhandledRejections();

/**
 * Drive options for a cluster with nothing to talk to: time stands still while a request or a TCP connect is in
 * flight (`busy()`), so a refusal arrives at the virtual time the attempt was made; it moves between attempts.
 */
function offline(busy: () => boolean, what: string): DriveOptions {
  let turn = 0;
  return { what, activity: () => (busy() ? ++turn : turn) };
}

/** Count the `fetch` calls in flight (the cluster's GET /gateway/bot) until the returned function is called. */
function watchFetch(): { inFlight: () => number; restore: () => void } {
  const real = globalThis.fetch;
  let n = 0;
  globalThis.fetch = (...args: Parameters<typeof fetch>) => {
    n++;
    return real(...args).finally(() => n--);
  };
  return { inFlight: () => n, restore: () => (globalThis.fetch = real) };
}

/** Timers, sockets and other handles keeping the process alive (the TTY aside). */
const activeHandles = () => process.getActiveResourcesInfo().filter((x) => x !== 'TTYWrap').length;

for (const workers of [0, 1]) {
  test(`guildsReady once every shard's guilds are loaded; connect({ waitForGuilds }) resolves only then (workers: ${workers})`, { timeout: 60_000 }, async () => {
    // in this thread the shards share a manual clock with the gateway; a worker thread cannot share it (scaled clock)
    const simOpts = { shards: 2, maxConcurrency: 2, guilds: 6, guildCreateDelay: 500 };
    const manual = workers === 0 ? await manualRig(simOpts) : null;
    const r: Rig = manual ?? (await rig(simOpts));
    const run = <T>(p: Promise<T>): Promise<T> => (manual ? manual.run(p) : p);
    try {
      const cluster = r.cluster({ workers });
      const perShard: ShardEvent[] = [];
      cluster.on('shardEvent', (e) => {
        if (e.kind === 'guildsReady') perShard.push(e);
      });
      const events: GuildsReadyEvent[] = [];
      cluster.on('guildsReady', (e) => events.push(e));
      let readyAt = -1;
      cluster.on('ready', () => (readyAt = events.length));
      await run(cluster.connect({ waitForGuilds: true }));
      assert.equal(readyAt, 0, 'the shards were ready before their guilds were');
      assert.deepEqual(events, [{ shardId: -1, guilds: 6, unavailable: [] }]);
      assert.deepEqual(perShard.map((e) => e.shardId).sort(), [0, 1]);
      await cluster.connect({ waitForGuilds: true }); // settled: at once
      assert.equal(events.length, 1);
    } finally {
      await r.stop();
    }
  });
}

test('a cluster that resumes its sessions loads no guilds: guildsReady and waitForGuilds do not wait for them', { timeout: 60_000 }, async () => {
  const r = await manualRig({ shards: 2, maxConcurrency: 2, guilds: 4 });
  try {
    const first = r.cluster();
    await r.run(first.connect({ waitForGuilds: true }));
    const sessions = await r.run(first.close({ resumable: true }));
    assert.equal(Object.keys(sessions).length, 2);
    const second = r.cluster({ sessions });
    let resumes = 0;
    second.on('shardResumed', () => resumes++);
    const ready = new Promise<GuildsReadyEvent>((resolve) => second.once('guildsReady', resolve));
    await r.run(second.connect({ waitForGuilds: true }));
    assert.equal(resumes, 2);
    const e = await r.run(ready);
    assert.equal(e.shardId, -1);
    assert.deepEqual(e.unavailable, []);
  } finally {
    await r.stop();
  }
});

test('guildsReady sums the guilds and lists the unavailable ones; metrics and the status page show it', { timeout: 60_000 }, async () => {
  const r = await manualRig({ shards: 2, maxConcurrency: 2, guilds: 4 });
  try {
    const missing = r.sim.guildIds[0]!;
    r.sim.setOptions({ unavailableGuilds: [missing] });
    const cluster = r.cluster({ shardOptions: () => ({ guildsTimeout: 5000 }) });
    const metrics = await attachMetrics(cluster);
    const page = statusHandler(cluster);
    try {
      const ready = new Promise<GuildsReadyEvent>((resolve) => cluster.once('guildsReady', resolve));
      await r.run(cluster.connect({ waitForGuilds: true }));
      assert.deepEqual(await r.run(ready), { shardId: -1, guilds: 3, unavailable: [missing] });
      const text = await metrics.metrics();
      assert.match(text, /^shardline_shards_guilds_ready 2$/m);
      assert.match(text, /^shardline_guilds_unavailable 1$/m);
      const snap = page.snapshot();
      assert.equal(snap.cluster.guildsReady, 2);
      assert.equal(snap.cluster.guildsUnavailable, 1);
    } finally {
      await page.close();
      await metrics.detach();
    }
  } finally {
    await r.stop();
  }
});

test('connect({ timeout }): /gateway/bot unreachable is retried and reported, then GatewayUnreachableError (not wrapped)', { timeout: 60_000 }, async () => {
  const clock = new ManualClock();
  const apiUrl = `http://127.0.0.1:${await freePort()}/api/v10`;
  const before = activeHandles();
  const cluster = new Cluster({ token: TOKEN, intents: INTENTS, apiUrl, clock });
  const reported: number[] = [];
  cluster.on('shardError', (_e, id) => reported.push(id));
  const fetches = watchFetch();
  const err = await drive(
    clock,
    cluster.connect({ timeout: 10_000 }),
    offline(() => fetches.inFlight() > 0, 'connect({ timeout })'),
  )
    .finally(fetches.restore)
    .then(
      () => null,
      (e: unknown) => e,
    );
  assert.ok(err instanceof GatewayUnreachableError, String(err));
  assert.ok(!(err instanceof ClusterConnectError));
  assert.ok(err.attempts >= 3, `${err.attempts} attempts`);
  assert.match(err.message, /gateway\/bot/);
  assert.ok(!err.message.includes(TOKEN));
  assert.ok(reported.length >= 2 && reported.every((id) => id === -1), 'each failed attempt reported as it happened');
  await assert.rejects(cluster.connect(), { code: 'CLUSTER_CLOSED' });
  await cluster.close();
  await new Promise((r) => setImmediate(r));
  assert.ok(activeHandles() <= before, `no timer or socket left behind (${process.getActiveResourcesInfo().join(', ')})`);
});

test('connect({ timeout }): a gateway nobody answers on → GatewayUnreachableError, the shards are closed', { timeout: 60_000 }, async () => {
  const r = await manualRig({ shards: 2, maxConcurrency: 2, guilds: 2 });
  try {
    const port = await freePort();
    const timersBefore = process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length;
    const cluster = r.cluster({ gatewayUrl: `ws://127.0.0.1:${port}`, shards: 2 });
    const kinds = new Set<string>();
    cluster.on('shardDisconnected', (e) => kinds.add(e.kind));
    const connecting = () => cluster.status().some((s) => s.state === 'connecting');
    const err = await drive(r.clock, cluster.connect({ timeout: 8000 }), offline(connecting, 'connect({ timeout })')).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof GatewayUnreachableError, String(err));
    assert.match(err.message, /0 of 2 shards ready/);
    assert.ok(err.attempts >= 4, `${err.attempts} attempts`);
    assert.deepEqual([...kinds], ['connect-failed']);
    assert.deepEqual(await cluster.close({ resumable: true }), {}, 'closed; no session was made');
    await new Promise((r) => setImmediate(r));
    assert.equal(process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length, timersBefore, `no shard timer left (${process.getActiveResourcesInfo().join(', ')})`);
    assert.deepEqual(
      cluster.status().map((s) => s.state),
      ['closed', 'closed'],
    );
  } finally {
    await r.stop();
  }
});

test('connect({ signal }): AbortError, the cluster is closed', { timeout: 60_000 }, async () => {
  const clock = new ManualClock();
  const cluster = new Cluster({ token: TOKEN, intents: INTENTS, apiUrl: `http://127.0.0.1:${await freePort()}/api/v10`, clock });
  const reported: number[] = [];
  cluster.on('shardError', (_e, id) => reported.push(id));
  const ac = new AbortController();
  const p = cluster.connect({ signal: ac.signal });
  // abort while it retries: after the first refused GET /gateway/bot (the clock never moves, so it waits for ever)
  await driveUntil(clock, () => reported.length > 0, { what: 'a failed attempt', step: 0, realLimit: 10_000 });
  ac.abort();
  await assert.rejects(p, { name: 'AbortError' });
  await assert.rejects(cluster.connect(), { code: 'CLUSTER_CLOSED' });
});
