/**
 * The handler module of test/proxy-handler.test.ts (runs in the proxy's thread). Posts `{ type, sequence }` for
 * every dispatch it is given, before acting on MESSAGE_CREATE markers: `throw` throws, `presence` updates the
 * shard's presence (status idle), `send` sends op 3 through `ctx.send` (status dnd), `members` requests members of
 * the message's guild through the upstream cluster and posts how many chunks came back, `log…` logs a line with the content, `block`
 * waits until the test calls `globalThis.shardlineProxyTestRelease()` (back-pressure).
 */
import { defineHandler } from '../../src/handler/define.js';

const g = globalThis as { shardlineProxyTestRelease?: () => void };

export default defineHandler({
  async dispatch(event, ctx) {
    ctx.post({ type: event.type, sequence: event.sequence });
    if (event.type !== 'MESSAGE_CREATE') return;
    const { content, guild_id: guildId } = event.data;
    if (content === 'throw') throw new Error('asked to throw');
    if (content === 'presence') await ctx.updatePresence({ since: null, activities: [], status: 'idle', afk: false });
    if (content === 'send') await ctx.send({ op: 3, d: { since: null, activities: [], status: 'dnd', afk: false } });
    if (content.startsWith('log')) ctx.log.warn(`saw ${content} on shard ${ctx.shardId}`);
    if (content === 'members') {
      const chunks = await ctx.requestGuildMembers(guildId!, { query: '', limit: 0 });
      ctx.post({ members: chunks.length, nonce: chunks[0]?.nonce ?? null });
    }
    // (a restarted proxy process in test/proxy-redis.test.ts handles it again without waiting)
    if (content === 'block' && process.env.SHARDLINE_TEST_NO_BLOCK !== '1') await new Promise<void>((resolve) => (g.shardlineProxyTestRelease = resolve));
  },
});
