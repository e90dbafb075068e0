// Oceanic 1.15. Redirected with `rest.baseURL`; the gateway URL comes from the simulator's GET /gateway/bot answer.
// `gateway.compress: 'zlib-stream'` makes Oceanic send that string as IDENTIFY's `compress` (Discord tolerates it).
import { emit, env, INTENTS, onStop, replyTo, report } from './common.mjs';
import { Client } from 'oceanic.js';

const client = new Client({
  auth: `Bot ${env.token}`,
  rest: { baseURL: `${env.api}/v10` },
  gateway: { intents: INTENTS, compress: 'zlib-stream' },
});
client.once('ready', () => emit('ready', { guilds: client.guilds.size, user: client.user.id }));
client.on('messageCreate', (m) => {
  const reply = replyTo(m.content);
  if (reply) client.rest.channels.createMessage(m.channelID, { content: reply }).catch(report);
  else if (m.author.id === client.user.id) emit('own', { content: m.content });
});
client.on('interactionCreate', (i) => {
  if (i.type === 2 && i.data.name === 'ping') i.createMessage({ content: 'pong /ping' }).catch(report);
});
// Oceanic reports a dropped socket as an 'error' and then reconnects by itself: a warning here, not a failure.
client.on('error', (err) => emit('warn', { message: String(err?.message ?? err) }));
onStop(() => client.disconnect(false));
client.connect().catch(report);
