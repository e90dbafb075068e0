/** The README's discord.js recipe, run: an unmodified discord.js 14 Client whose REST base is the proxy. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, GatewayIntentBits } from 'discord.js';
import { textMessage } from './helpers/messages.js';
import { TOKEN, until } from './helpers/setup.js';
import { proxyRig } from './helpers/proxy-rig.js';
test('discord.js 14 with its REST base at the proxy: READY, the guild cache from synthesized GUILD_CREATEs, live messages; a restarted bot costs no upstream IDENTIFY', async () => {
  const r = await proxyRig({ shards: 1, guilds: 3 }, { shards: 1 });
  // discord.js with its REST base at the proxy
  const bot = () => new Client({ intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent], rest: { api: r.proxy.apiUrl.replace(/\/v10$/, '') } });
  const client = bot();
  const messages: string[] = [];
  client.on('messageCreate', (m) => messages.push(m.content));
  try {
    await client.login(TOKEN);
    await until(() => client.isReady() && client.guilds.cache.size === 3, 'discord.js ready with three guilds', 15_000);
    assert.equal(r.sim.stats.identifies, 1, 'discord.js identified with the proxy, not upstream');
    const g = r.sim.guildIds[0]!;
    r.sim.dispatch({ guildId: g }, 'MESSAGE_CREATE', { ...textMessage(g, 0), content: 'hi djs' });
    await until(() => messages.length > 0, 'the messageCreate', 10_000);
    assert.equal(messages[0], 'hi djs');

    // The bot restarts (a deploy): a new Client logs in through the proxy. Upstream sees no new IDENTIFY, the new
    // process is ready with the whole guild cache at once and receives live messages.
    await client.destroy();
    const restarted = bot();
    const after: string[] = [];
    restarted.on('messageCreate', (m) => after.push(m.content));
    try {
      await restarted.login(TOKEN);
      await until(() => restarted.isReady() && restarted.guilds.cache.size === 3, 'the restarted discord.js ready with three guilds', 15_000);
      r.sim.dispatch({ guildId: g }, 'MESSAGE_CREATE', { ...textMessage(g, 1), content: 'after restart' });
      await until(() => after.length > 0, 'the messageCreate after the restart', 10_000);
      assert.deepEqual(after, ['after restart']);
      assert.equal(r.sim.stats.identifies, 1, 'the restart cost no upstream IDENTIFY');
    } finally {
      await restarted.destroy();
    }
  } finally {
    await client.destroy();
    await r.stop();
  }
});
