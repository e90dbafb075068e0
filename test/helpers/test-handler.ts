/**
 * The handler module of test/worker-handler.test.ts. Markers are MESSAGE_CREATE contents; each handled marker is
 * posted to the main thread (after a turn of the event loop, so a handler is often mid-event when a worker dies).
 * `throw:*` throws, `voice:<guildId>` joins a voice channel through the shard owning that guild (routed),
 * `members` requests a member of the shard's guild (routed through the main thread), `presence` updates this
 * shard's presence, `log:*` logs a line, `*:slow` / `*:early` take real time (1 ms before / 5 ms after posting).
 * `gate:*` waits for `globalThis.shardlineTestGate` (a handler that is behind, in this thread). `*:quiet` posts
 * nothing: it appends its marker to the file `SHARDLINE_TEST_HANDLED` names (the handler finished it, seen without
 * `ctx.post()`, whose acknowledgement travels differently).
 */
import { appendFileSync } from 'node:fs';
import { setImmediate as turn, setTimeout as sleep } from 'node:timers/promises';
import { defineHandler } from '../../src/handler/define.js';

/** The last guild each shard announced (GUILD_CREATE). */
const guilds = new Map<number, string>();

export default defineHandler({
  init(scope) {
    scope.post({ init: scope.worker });
  },
  async dispatch(event, ctx) {
    if (event.type === 'GUILD_CREATE') guilds.set(event.shardId, event.data.id);
    if (event.type !== 'MESSAGE_CREATE') return;
    const content = event.data.content;
    if (content === 'members') {
      // a cluster-level request through the main thread, for a guild of this shard; the chunks come back here
      const chunks = await ctx.requestGuildMembers(guilds.get(ctx.shardId)!, { query: '', limit: 1 });
      ctx.post({ marker: content, shardId: ctx.shardId, worker: ctx.worker, chunks: chunks.length, members: chunks.reduce((n, c) => n + c.members.length, 0) });
      return;
    }
    if (content.startsWith('throw:')) throw new Error(`asked to throw on ${content}`);
    // `gate:*` (this thread only): wait for the promise the test put in globalThis.shardlineTestGate, so the shard's
    // later events wait behind it (a handler that is behind).
    if (content.startsWith('gate:')) await (globalThis as { shardlineTestGate?: Promise<void> }).shardlineTestGate;
    if (content.endsWith(':quiet')) {
      appendFileSync(process.env.SHARDLINE_TEST_HANDLED!, `${content}\n`);
      return;
    }
    if (content === 'bigint') ctx.post({ n: 1n }); // not JSON: reported, not posted
    if (content.startsWith('voice:')) await ctx.updateVoiceState(content.slice(6), { channel_id: null, self_mute: false, self_deaf: false });
    if (content === 'presence') await ctx.updatePresence({ since: null, activities: [], status: 'idle', afk: false });
    if (content.startsWith('log:')) ctx.log.info(`saw ${content}`);
    const post = () => ctx.post({ marker: content, shardId: ctx.shardId, sequence: event.sequence, worker: ctx.worker });
    // `*:slow` / `*:early`: real time before / after the post, so a crash most likely hits mid-event.
    if (content.endsWith(':early')) {
      post();
      await sleep(5);
      return;
    }
    if (content.endsWith(':slow')) await sleep(1);
    else await turn();
    post();
  },
});
