// discordeno 21: its gateway manager and REST manager, without the bot framework (whose transformers need
// `desiredProperties`). discordeno treats any `proxy.baseUrl` other than https://discord.com/api as a REST proxy and
// then skips its own rate limiting (a 429 becomes an error), so the REST manager is created for Discord and its
// `baseUrl` is pointed at the simulator afterwards: discordeno's full REST path (queues, buckets, 429 retries) runs.
// The gateway URL and shard count come from GET /gateway/bot through it.
import { env, INTENTS, onStop, rawDispatchBot, report } from './common.mjs';
import { createGatewayManager } from '@discordeno/gateway';
import { createRestManager } from '@discordeno/rest';

const rest = createRestManager({ token: env.token });
rest.baseUrl = env.api;
const onDispatch = rawDispatchBot({
  respond: (i, body) => rest.sendInteractionResponse(i.id, i.token, body),
  send: (m, body) => rest.sendMessage(m.channelId, body),
});
const connection = await rest.getSessionInfo();
const gateway = createGatewayManager({
  token: env.token,
  intents: INTENTS,
  connection,
  url: connection.url,
  totalShards: 1,
  events: {
    message: (_shard, { t, d }) => onDispatch(t, d),
  },
});
onStop(() => gateway.shutdown(1000, 'compat test done'));
gateway.spawnShards().catch(report);
