// @discordjs/ws 2 (WebSocketManager) with @discordjs/rest. Redirected with REST's `api` option: the manager asks
// GET /gateway/bot (through that REST) for the gateway URL. The guild cache is the set of GUILD_CREATEs.
import { emit, env, INTENTS, onStop, replyTo, report } from './common.mjs';
import { REST } from '@discordjs/rest';
import { WebSocketManager, WebSocketShardEvents } from '@discordjs/ws';

const rest = new REST({ api: env.api }).setToken(env.token);
const manager = new WebSocketManager({ token: env.token, intents: INTENTS, rest });
const expected = new Set();
const guilds = new Set();
let userId = null;
let ready = false;
manager.on(WebSocketShardEvents.Dispatch, ({ t, d }) => {
  if (t === 'READY') {
    userId = d.user.id;
    for (const g of d.guilds) expected.add(g.id);
  } else if (t === 'GUILD_CREATE') {
    guilds.add(d.id);
    if (!ready && [...expected].every((id) => guilds.has(id))) {
      ready = true;
      emit('ready', { guilds: guilds.size });
    }
  } else if (t === 'INTERACTION_CREATE' && d.data?.name === 'ping') {
    rest.post(`/interactions/${d.id}/${d.token}/callback`, { body: { type: 4, data: { content: 'pong /ping' } }, auth: false }).catch(report);
  } else if (t === 'MESSAGE_CREATE') {
    const reply = replyTo(d.content);
    if (reply) rest.post(`/channels/${d.channel_id}/messages`, { body: { content: reply } }).catch(report);
    else if (d.author.id === userId) emit('own', { content: d.content });
  }
});
manager.on(WebSocketShardEvents.Error, report);
onStop(() => manager.destroy());
manager.connect().catch(report);
