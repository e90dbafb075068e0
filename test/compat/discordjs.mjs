// discord.js 14 with its default sharding strategy. Redirected with `rest.api` only: the gateway URL comes from the
// simulator's GET /gateway/bot answer. `runDiscordjsBot(ws)` is the same bot with other `ws` options
// (discordjs-shardline.mjs: ShardlineStrategy).
import { fileURLToPath } from 'node:url';
import { emit, env, INTENTS, onStop, replyTo, report } from './common.mjs';
import { Client, Events } from 'discord.js';

export function runDiscordjsBot(ws) {
  const client = new Client({ intents: INTENTS, rest: { api: env.api }, ...(ws ? { ws } : {}) });
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
}

if (process.argv[1] === fileURLToPath(import.meta.url)) runDiscordjsBot();
