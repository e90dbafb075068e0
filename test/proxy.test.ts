/**
 * GatewayProxy end to end on the simulator, with unmodified client libraries: @discordjs/ws 2 and discordeno's
 * gateway get READY, every guild's GUILD_CREATE and live events through the proxy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REST } from '@discordjs/rest';
import { CompressionMethod, WebSocketManager, WebSocketShardEvents } from '@discordjs/ws';
import { TOKEN, until } from './helpers/setup.js';
import { proxyRig } from './helpers/proxy-rig.js';

test('@discordjs/ws (zlib-stream, 2 shards) gets READY, every GUILD_CREATE and live events through the proxy', async () => {
  const r = await proxyRig({ shards: 2, guilds: 6 }, { shards: 2 });
  const rest = new REST({ api: r.proxy.apiUrl.replace(/\/v10$/, ''), version: '10' }).setToken(TOKEN);
  const manager = new WebSocketManager({ token: TOKEN, intents: 1 | 512 | 32768, rest, compression: CompressionMethod.ZlibNative });
  const seen: { shardId: number; t: string; d: Record<string, unknown> }[] = [];
  manager.on(WebSocketShardEvents.Dispatch, (payload, shardId) => {
    seen.push({ shardId, t: payload.t, d: payload.d as unknown as Record<string, unknown> });
  });
  try {
    const identifiesBefore = r.sim.stats.identifies;
    await manager.connect();
    await until(() => seen.filter((e) => e.t === 'GUILD_CREATE').length === 6, 'six GUILD_CREATEs', 10_000);
    assert.equal(seen.filter((e) => e.t === 'READY').length, 2);
    const created = new Set(seen.filter((e) => e.t === 'GUILD_CREATE').map((e) => e.d.id));
    assert.deepEqual([...created].sort(), [...r.sim.guildIds].sort());
    for (const e of seen.filter((x) => x.t === 'GUILD_CREATE')) assert.equal(r.sim.guildsForShard(e.shardId, 2).includes(e.d.id as string), true);
    const g = r.sim.guildIds[0]!;
    r.sim.dispatch({ guildId: g }, 'MESSAGE_CREATE', { id: '1', channel_id: '2', guild_id: g, content: 'through the proxy' });
    await until(() => seen.some((e) => e.t === 'MESSAGE_CREATE'), 'the live MESSAGE_CREATE', 10_000);
    assert.equal(seen.find((e) => e.t === 'MESSAGE_CREATE')!.d.content, 'through the proxy');
    assert.equal(r.sim.stats.identifies, identifiesBefore, 'clients never reach the upstream gateway');
  } finally {
    await manager.destroy();
    await r.stop();
  }
});
