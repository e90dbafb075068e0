// A ten-line bot: DISCORD_TOKEN=... npx tsx examples/bot.ts
import { Shard, Intents } from 'shardline';

const shard = new Shard({
  token: process.env.DISCORD_TOKEN ?? '',
  intents: Intents.Guilds | Intents.GuildMessages | Intents.MessageContent,
  events: ['MESSAGE_CREATE'],
});
shard.on('dispatch', (e) => {
  if (e.type === 'MESSAGE_CREATE') console.log(`${e.data.author.username}: ${e.data.content}`);
});
await shard.connect();
