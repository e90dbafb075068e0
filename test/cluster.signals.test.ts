/**
 * The cluster's side of issue 13 against the simulator: `guildsReady` over every shard (this thread and worker
 * mode), `connect({ waitForGuilds })`, `connect({ timeout, signal })` with an unreachable REST endpoint or gateway,
 * and the metrics / status page view of guilds loading.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scaledClock } from '../src/clock.js';
import { Cluster, ClusterConnectError } from '../src/cluster.js';
import { GatewayUnreachableError } from '../src/errors.js';
import type { GuildsReadyEvent, ShardEvent } from '../src/events.js';
import { attachMetrics } from '../src/metrics.js';
import { statusHandler } from '../src/status-page/server.js';
import { INTENTS, rig } from './helpers/cluster-rig.js';
import { TOKEN, failOnUnhandledRejections } from './helpers/setup.js';
import { freePort } from './helpers/servers.js';

failOnUnhandledRejections();

/** Timers, sockets and other handles keeping the process alive (the TTY aside). */
const activeHandles = () => process.getActiveResourcesInfo().filter((x) => x !== 'TTYWrap').length;

for (const workers of [0, 1]) {
  test(`guildsReady once every shard's guilds are loaded; connect({ waitForGuilds }) resolves only then (workers: ${workers})`, { timeout: 60_000 }, async () => {
    const r = await rig({ shards: 2, maxConcurrency: 2, guilds: 6, guildCreateDelay: 500 });
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
      await cluster.connect({ waitForGuilds: true });
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
  const r = await rig({ shards: 2, maxConcurrency: 2, guilds: 4 });
  try {
    const first = r.cluster();
    await first.connect({ waitForGuilds: true });
    const sessions = await first.close({ resumable: true });
    assert.equal(Object.keys(sessions).length, 2);
    const second = r.cluster({ sessions });
    let resumes = 0;
    second.on('shardResumed', () => resumes++);
    const ready = new Promise<GuildsReadyEvent>((resolve) => second.once('guildsReady', resolve));
    await second.connect({ waitForGuilds: true });
    assert.equal(resumes, 2);
    const e = await ready;
    assert.equal(e.shardId, -1);
    assert.deepEqual(e.unavailable, []);
  } finally {
    await r.stop();
  }
});

test('guildsReady sums the guilds and lists the unavailable ones; metrics and the status page show it', { timeout: 60_000 }, async () => {
  const r = await rig({ shards: 2, maxConcurrency: 2, guilds: 4 });
  try {
    const missing = r.sim.guildIds[0]!;
    r.sim.setOptions({ unavailableGuilds: [missing] });
    const cluster = r.cluster({ shardOptions: () => ({ guildsTimeout: 5000 }) });
    const metrics = await attachMetrics(cluster);
    const page = statusHandler(cluster);
    try {
      const ready = new Promise<GuildsReadyEvent>((resolve) => cluster.once('guildsReady', resolve));
      await cluster.connect({ waitForGuilds: true });
      assert.deepEqual(await ready, { shardId: -1, guilds: 3, unavailable: [missing] });
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
  const clock = scaledClock(0.01);
  const apiUrl = `http://127.0.0.1:${await freePort()}/api/v10`;
  const before = activeHandles();
  const cluster = new Cluster({ token: TOKEN, intents: INTENTS, apiUrl, clock });
  const reported: number[] = [];
  cluster.on('shardError', (_e, id) => reported.push(id));
  const err = await cluster.connect({ timeout: 10_000 }).then(
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
  const r = await rig({ shards: 2, maxConcurrency: 2, guilds: 2 });
  try {
    const port = await freePort();
    const timersBefore = process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length;
    const cluster = r.cluster({ gatewayUrl: `ws://127.0.0.1:${port}`, shards: 2 });
    const kinds = new Set<string>();
    cluster.on('shardDisconnected', (e) => kinds.add(e.kind));
    const err = await cluster.connect({ timeout: 8000 }).then(
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
  const clock = scaledClock(0.01);
  const cluster = new Cluster({ token: TOKEN, intents: INTENTS, apiUrl: `http://127.0.0.1:${await freePort()}/api/v10`, clock });
  const ac = new AbortController();
  const p = cluster.connect({ signal: ac.signal });
  setTimeout(() => ac.abort(), 50);
  await assert.rejects(p, { name: 'AbortError' });
  await assert.rejects(cluster.connect(), { code: 'CLUSTER_CLOSED' });
});
