/**
 * A handler module (`new Cluster({ workers: 2, handler: new URL('./handler.js', import.meta.url) })`, or
 * `shardline run --workers 2 --handler ./handler.js`): runs in the thread of each event's shard.
 */
import { defineHandler } from 'shardline';

export default defineHandler({
  async dispatch(event, ctx) {
    if (event.type !== 'MESSAGE_CREATE' || event.data.content !== '!ping') return;
    await ctx.updatePresence({ since: null, activities: [], status: 'online', afk: false }); // this shard
    if (event.data.guild_id) await ctx.updateVoiceState(event.data.guild_id, { channel_id: null, self_mute: false, self_deaf: false }); // routed
    ctx.log.info(`ping on shard ${ctx.shardId}`); // → cluster 'handlerLog' / routeLogs()
    ctx.post({ pong: event.data.id }); // → cluster.on('handlerMessage', ({ value }) => ...)
  },
});
