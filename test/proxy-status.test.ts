/**
 * The status page of a running proxy (attached after `GatewayProxy.start()`, as the CLI and the docs do): the
 * upstream cluster's own shard cards count the dispatches the proxy received (raw mode hands them over outside the
 * `shardEvent` stream) and show the guilds loaded, next to the proxy's section.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveStatus, type StatusSnapshot } from '../src/status-page/server.js';
import { until } from './helpers/setup.js';
import { proxyRig } from './helpers/proxy-rig.js';

test('the status page of a proxy attached after start shows upstream dispatches per shard and every shard’s guilds loaded', async () => {
  const r = await proxyRig({ shards: 2, guilds: 4 }, { shards: 2 });
  const status = await serveStatus(r.proxy.cluster, { port: 0, title: 'proxy', sections: () => [r.proxy.statusSection()] });
  try {
    const read = async () => (await (await fetch(`${status.url}status.json`)).json()) as StatusSnapshot;
    const g = r.sim.guildIds[0]!;
    const owner = r.sim.guildsForShard(0, 2).includes(g) ? 0 : 1;
    const depth = () => r.proxy.stats().shards.find((s) => s.id === owner)!.ringDepth;
    const before = depth();
    for (let n = 1; n <= 5; n++) r.sim.dispatch({ guildId: g }, 'MESSAGE_CREATE', { id: String(n), channel_id: '2', guild_id: g, content: String(n) });
    await until(() => depth() === before + 5, 'the messages reached the proxy', 10_000);
    const snap = await read();
    assert.equal(snap.cluster.guildsReady, 2, 'guilds loaded on 2 / 2 (the shards loaded them before the page was attached)');
    assert.equal(snap.cluster.guildsUnavailable, 0);
    const byId = new Map(snap.shards.map((s) => [s.id, s]));
    // each shard's GUILD_CREATEs (raw mode) count, and the owner's five messages
    for (const id of [0, 1]) assert.ok(byId.get(id)!.dispatches >= r.sim.guildsForShard(id, 2).length, `shard ${id}: ${byId.get(id)!.dispatches} dispatches`);
    assert.ok(byId.get(owner)!.dispatches >= r.sim.guildsForShard(owner, 2).length + 5);
    assert.equal(snap.events.byType.find((e) => e.type === 'MESSAGE_CREATE')?.count, 5);
    assert.equal(snap.events.byType.find((e) => e.type === 'GUILD_CREATE')?.count, 4);
    assert.ok(snap.sections.some((s) => s.title === 'Gateway proxy'));
  } finally {
    await status.close();
    await r.stop();
  }
});
