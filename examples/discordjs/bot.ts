// A discord.js 14 bot on shardline's shards, run against the bundled gateway simulator: `npm run example`
// (`npm run example -- --forever` keeps it running, with a message every few seconds, until Ctrl-C).
//
// For your real bot, drop the simulator and `rest`, and log in with your token:
//   new Client({ intents, ws: { buildStrategy: (manager) => new ShardlineStrategy(manager) } }).login(process.env.DISCORD_TOKEN)
import { Client, Events, GatewayIntentBits } from 'discord.js';
import { ShardlineStrategy } from 'shardline/discordjs';
import { buildGuildCreate, GatewaySimulator } from 'shardline/simulator';

const forever = process.argv.includes('--forever');
const sim = await GatewaySimulator.start({ guilds: 5, shards: 2, maxConcurrency: 2, heartbeatInterval: 2000 });

const client = new Client({
  intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent],
  shards: 'auto', // the count /gateway/bot recommends (2 here)
  rest: { api: sim.apiBaseUrl }, // the simulator answers REST, /gateway/bot included (its url: the simulator's gateway)
  ws: { buildStrategy: (manager) => new ShardlineStrategy(manager, { compression: 'zlib-stream' }) },
});

client.on(Events.MessageCreate, (m) => console.log(`#${'name' in m.channel ? m.channel.name : m.channelId} ${m.author.username}: ${m.content}`));
client.on(Events.ShardResume, (id, replayed) => console.log(`shard ${id} resumed (${replayed} events replayed)`));

const ready = new Promise<void>((resolve) => client.once(Events.ClientReady, () => resolve()));
await client.login('sim-token');
await ready;
console.log(`logged in as ${client.user?.tag}: ${client.guilds.cache.size} guilds on ${client.ws.shards.size} shards`);

/** Make the simulator send a MESSAGE_CREATE in the first text channel of a guild, as if a user wrote it. */
let n = 0;
function say(content: string): void {
  const guildId = sim.guildIds[n % sim.guildIds.length]!;
  const channel = (buildGuildCreate(guildId).channels as { id: string; type: number }[]).find((c) => c.type === 0)!;
  const author = { id: '80351110224678912', username: 'nelly', discriminator: '0', global_name: 'Nelly', avatar: null };
  const id = String(1_300_000_000_000_000_000n + BigInt(n++));
  const message = { id, channel_id: channel.id, guild_id: guildId, author, content, timestamp: new Date().toISOString(), edited_timestamp: null };
  sim.dispatch({ guildId }, 'MESSAGE_CREATE', { ...message, tts: false, mention_everyone: false, mentions: [], mention_roles: [], attachments: [], embeds: [], pinned: false, type: 0 });
}

const got = new Promise((resolve) => client.once(Events.MessageCreate, resolve));
say('hello from the simulator');
await got;
const resumed = new Promise((resolve) => client.once(Events.ShardResume, resolve));
sim.sendReconnect(0); // op 7: shard 0 resumes its session, discord.js stays ready
await resumed;
await new Promise<void>((resolve) => {
  const poll = setInterval(() => {
    if (client.ws.ping < 0) return; // -1 until the first heartbeat ACK
    clearInterval(poll);
    resolve();
  }, 50);
});
console.log(`gateway ping ${Math.round(client.ws.ping)} ms`);

async function stop(): Promise<void> {
  await client.destroy();
  await sim.stop();
  console.log('stopped');
}

if (forever) {
  const timer = setInterval(() => say(`message ${n}`), 3000);
  console.log('running; Ctrl-C to stop');
  process.once('SIGINT', () => {
    clearInterval(timer);
    void stop();
  });
} else {
  await stop();
}
