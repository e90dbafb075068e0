// discord.js 14 with its default sharding strategy. Redirected with `rest.api` only: the gateway URL comes from the
// simulator's GET /gateway/bot answer.
import { emit, env, INTENTS, onStop, replyTo, report } from './common.mjs';
import { Client, Events } from 'discord.js';

const client = new Client({ intents: INTENTS, rest: { api: env.api } });
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
