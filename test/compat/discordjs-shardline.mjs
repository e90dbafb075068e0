// discord.js 14 on shardline's shards: the same bot as discordjs.mjs, with ShardlineStrategy plugged into
// `ws.buildStrategy`. Needs dist/ (npm run build): it imports the package as a user would.
import { emit, env, INTENTS, onStop, replyTo, report } from './common.mjs';
import { Client, Events } from 'discord.js';
import { ShardlineStrategy } from 'shardline/discordjs';

const client = new Client({
  intents: INTENTS,
  rest: { api: env.api },
  ws: { buildStrategy: (manager) => new ShardlineStrategy(manager, { compression: 'zlib-stream' }) },
});
client.once(Events.ClientReady, (c) => emit('ready', { guilds: c.guilds.cache.size, user: c.user.id }));
client.on(Events.MessageCreate, (m) => {
  const reply = replyTo(m.content);
  if (reply) m.channel.send(reply).catch(report);
  else if (m.author.id === client.user?.id) emit('own', { content: m.content });
});
client.on(Events.InteractionCreate, (i) => {
  if (i.isChatInputCommand() && i.commandName === 'ping') i.reply('pong /ping').catch(report);
});
client.on(Events.Error, report);
onStop(() => client.destroy());
client.login(env.token).catch(report);
