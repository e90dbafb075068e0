// discordeno 21: its gateway manager and REST manager, without the bot framework (whose transformers need
// `desiredProperties`). discordeno treats any `proxy.baseUrl` other than https://discord.com/api as a REST proxy and
// then skips its own rate limiting (a 429 becomes an error), so the REST manager is created for Discord and its
// `baseUrl` is pointed at the simulator afterwards: discordeno's full REST path (queues, buckets, 429 retries) runs.
// The gateway URL and shard count come from GET /gateway/bot through it.
import { emit, env, INTENTS, onStop, replyTo, report } from './common.mjs';
import { createGatewayManager } from '@discordeno/gateway';
import { createRestManager } from '@discordeno/rest';

const rest = createRestManager({ token: env.token });
rest.baseUrl = env.api;
const expected = new Set();
const guilds = new Set();
let userId = null;
let ready = false;

const connection = await rest.getSessionInfo();
const gateway = createGatewayManager({
  token: env.token,
  intents: INTENTS,
  connection,
  url: connection.url,
  totalShards: 1,
  events: {
    message(_shard, { t, d }) {
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
        rest.sendInteractionResponse(d.id, d.token, { type: 4, data: { content: 'pong /ping' } }).catch(report);
      } else if (t === 'MESSAGE_CREATE') {
        const reply = replyTo(d.content);
        if (reply) rest.sendMessage(d.channelId, { content: reply }).catch(report);
        else if (d.author.id === userId) emit('own', { content: d.content });
      }
    },
  },
});
onStop(() => gateway.shutdown(1000, 'compat test done'));
gateway.spawnShards().catch(report);
