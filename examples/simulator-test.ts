// Testing your own bot offline against the bundled simulator: npx tsx examples/simulator-test.ts
import { Cluster, Shard, Intents, scaledClock } from 'shardline';
import { GatewaySimulator } from 'shardline/simulator';

const clock = scaledClock(0.01);
const sim = await GatewaySimulator.start({ clock, tokens: ['test-token'], guilds: 3 });
// sim.shardOptions(): the token it accepts, its URL and its clock (sim.clusterOptions() adds apiUrl, for a Cluster)
const shard = new Shard({ ...sim.shardOptions(), intents: Intents.Guilds | Intents.GuildMessages | Intents.MessageContent });
shard.on('dispatch', (e) => console.log(e.type, e.sequence, e.type === 'MESSAGE_CREATE' ? e.data.content : ''));
shard.on('resumed', (s) => console.log('resumed at', s.sequence));
await shard.connect();
const guildId = sim.guildIds[0]!;
sim.dispatch({ guildId }, 'MESSAGE_CREATE', { id: '1', channel_id: '2', guild_id: guildId, content: 'hello', author: { id: '3', username: 'u' } });
sim.sendReconnect(0); // op 7: the shard resumes
await new Promise((r) => shard.once('resumed', r));
await shard.close();

// The same for a Cluster: sim.clusterOptions() also names the simulator's REST URL, so nothing asks discord.com.
const cluster = new Cluster({ ...sim.clusterOptions(), intents: Intents.Guilds | Intents.GuildMembers });
await cluster.connect();
const chunks = await cluster.requestGuildMembers(guildId, { query: '', limit: 0 }); // routed to the guild's shard
console.log(
  'members:',
  chunks.reduce((n, c) => n + c.members.length, 0),
);
await cluster.close();
await sim.stop();
