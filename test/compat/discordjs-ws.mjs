// @discordjs/ws 2 (WebSocketManager) with @discordjs/rest. Redirected with REST's `api` option: the manager asks
// GET /gateway/bot (through that REST) for the gateway URL. The guild cache is the set of GUILD_CREATEs.
import { env, INTENTS, onStop, rawDispatchBot, report } from './common.mjs';
import { REST } from '@discordjs/rest';
import { WebSocketManager, WebSocketShardEvents } from '@discordjs/ws';

const rest = new REST({ api: env.api }).setToken(env.token);
const manager = new WebSocketManager({ token: env.token, intents: INTENTS, rest });
const onDispatch = rawDispatchBot({
  respond: (i, body) => rest.post(`/interactions/${i.id}/${i.token}/callback`, { body, auth: false }),
  send: (m, body) => rest.post(`/channels/${m.channel_id}/messages`, { body }),
});
manager.on(WebSocketShardEvents.Dispatch, ({ t, d }) => onDispatch(t, d));
manager.on(WebSocketShardEvents.Error, report);
onStop(() => manager.destroy());
manager.connect().catch(report);
