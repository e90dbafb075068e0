// Testing your own bot offline against the bundled simulator: npx tsx examples/simulator-test.ts
import { Shard, Intents, scaledClock } from 'shardline';
import { GatewaySimulator } from 'shardline/simulator';

const clock = scaledClock(0.01);
const sim = await GatewaySimulator.start({ clock, tokens: ['test-token'], guilds: 3 });
const shard = new Shard({
  token: 'test-token',
  intents: Intents.Guilds | Intents.GuildMessages | Intents.MessageContent,
  gatewayUrl: sim.url,
  clock,
});
shard.on('dispatch', (e) => console.log(e.type, e.sequence, e.type === 'MESSAGE_CREATE' ? e.data.content : ''));
shard.on('resumed', (s) => console.log('resumed at', s.sequence));
await shard.connect();
const guildId = sim.guildIds[0]!;
sim.dispatch({ guildId }, 'MESSAGE_CREATE', { id: '1', channel_id: '2', guild_id: guildId, content: 'hello', author: { id: '3', username: 'u' } });
sim.sendReconnect(0); // op 7: the shard resumes
await new Promise((r) => shard.once('resumed', r));
await shard.close();
await sim.stop();
