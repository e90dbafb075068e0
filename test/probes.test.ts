/**
 * src/status-page/probes.ts: `/healthz` and `/readyz` of the status page (the metrics server's are checked in
 * metrics.test.ts), in `'shards'` and `'guilds'` mode, against a real cluster on the simulator.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from '../src/cluster.js';
import type { ShardEvent } from '../src/events.js';
import { GatewaySimulator } from '../src/simulator/index.js';
import { serveStatus } from '../src/status-page/server.js';
import { createProbes } from '../src/status-page/probes.js';
import { TOKEN, failOnUnhandledRejections } from './helpers/setup.js';
import { ManualClock, drive, simActivity } from './helpers/manual-clock.js';

failOnUnhandledRejections();

test('the status server answers /healthz always and /readyz with 200 once every shard is ready, 503 with the waiting shards before', async () => {
  const clock = new ManualClock();
  const sim = await GatewaySimulator.start({ tokens: [TOKEN], clock, shards: 2, maxConcurrency: 2, guilds: 4 });
  const activity = simActivity(sim);
  const cluster = new Cluster({ token: TOKEN, intents: 1, apiUrl: sim.apiUrl, clock });
  const status = await serveStatus(cluster, { port: 0 });
  try {
    const health = await fetch(`${status.url}healthz`);
    assert.equal(health.status, 200);
    assert.equal(await health.text(), 'ok\n');
    const before = await fetch(`${status.url}readyz`);
    assert.equal(before.status, 503);
    assert.match(before.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(((await before.json()) as { ready: boolean }).ready, false);
    await drive(clock, cluster.connect(), { what: 'connect', activity });
    const after = await fetch(`${status.url}readyz`);
    assert.equal(after.status, 200);
    assert.deepEqual(await after.json(), { ready: true, mode: 'shards', shards: 2, waiting: [] });
    assert.equal((await fetch(`${status.url}readyz`, { method: 'HEAD' })).status, 200);
    // the page itself is still the page
    assert.match(await (await fetch(status.url)).text(), /<html/i);
  } finally {
    await status.close();
    await cluster.close();
    await sim.stop();
  }
});

test("readyz 'guilds': ready only when every ready shard reported guildsReady since its last READY", async () => {
  const clock = new ManualClock();
  const sim = await GatewaySimulator.start({ tokens: [TOKEN], clock, shards: 2, maxConcurrency: 2, guilds: 4 });
  const activity = simActivity(sim);
  const cluster = new Cluster({ token: TOKEN, intents: 1, apiUrl: sim.apiUrl, clock });
  const probes = createProbes(cluster, 'guilds');
  try {
    await drive(clock, cluster.connect(), { what: 'connect', activity });
    // Until the shards report their guilds (the guildsReady event of issue 13), they wait with guilds: false.
    for (const w of probes.readiness().waiting) assert.deepEqual(w, { id: w.id, state: 'ready', guilds: false });
    const guildsReady = (shardId: number): ShardEvent => ({ kind: 'guildsReady', shardId, guilds: 2, unavailable: [] });
    for (const w of probes.readiness().waiting) cluster.emit('shardEvent', guildsReady(w.id));
    assert.deepEqual(probes.readiness(), { ready: true, mode: 'guilds', shards: 2, waiting: [] });

    // A new session on shard 0 (4009: identify anew): its READY makes it wait for its guilds again.
    const atReady = new Promise<ReturnType<typeof probes.readiness>>((resolve) => {
      const on = (e: ShardEvent) => {
        if (e.kind !== 'ready' || e.shardId !== 0) return;
        cluster.off('shardEvent', on);
        resolve(probes.readiness());
      };
      cluster.on('shardEvent', on);
    });
    sim.closeConnection(0, 4009);
    const r = await drive(clock, atReady, { what: "shard 0's new READY", activity });
    assert.equal(r.ready, false);
    assert.deepEqual(r.waiting, [{ id: 0, state: 'ready', guilds: false }]);
  } finally {
    probes.close();
    await cluster.close();
    await sim.stop();
  }
});
