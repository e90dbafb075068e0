// Eris 0.18. Its REST client always uses `https.request` (no protocol option), so it is redirected with its own
// options: `rest.domain` = 127.0.0.1, `rest.baseURL` = /api/v10, and `rest.agent` = an https.Agent whose
// createConnection opens a plain TCP socket to the simulator's port (the simulator speaks HTTP, not TLS). The
// gateway URL comes from the simulator's GET /gateway/bot answer.
import { emit, env, INTENTS, onStop, replyTo, report } from './common.mjs';
import https from 'node:https';
import net from 'node:net';
import { Client, CommandInteraction } from 'eris';

class PlainAgent extends https.Agent {
  createConnection(_options, callback) {
    const socket = net.connect({ host: '127.0.0.1', port: env.port });
    socket.once('connect', () => callback?.(null, socket));
    socket.once('error', (err) => callback?.(err));
    return undefined;
  }
}

const bot = new Client(`Bot ${env.token}`, {
  intents: INTENTS,
  rest: { domain: '127.0.0.1', baseURL: '/api/v10', agent: new PlainAgent({ keepAlive: false }) },
});
bot.once('ready', () => emit('ready', { guilds: bot.guilds.size, user: bot.user.id }));
bot.on('messageCreate', (m) => {
  const reply = replyTo(m.content);
  if (reply) bot.createMessage(m.channel.id, reply).catch(report);
  else if (m.author.id === bot.user.id) emit('own', { content: m.content });
});
bot.on('interactionCreate', (i) => {
  if (i instanceof CommandInteraction && i.data.name === 'ping') i.createMessage('pong /ping').catch(report);
});
// Eris reports a dropped socket as an 'error' and then reconnects by itself: a warning here, not a failure.
bot.on('error', (err) => emit('warn', { message: String(err?.message ?? err) }));
onStop(() => bot.disconnect({ reconnect: false }));
bot.connect().catch(report);
