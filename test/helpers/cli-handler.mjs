// The handler module of the CLI test (plain JS: the built CLI runs without tsx).
export default {
  dispatch(event, ctx) {
    if (event.type === 'MESSAGE_CREATE') ctx.post({ type: event.type, shardId: ctx.shardId, worker: ctx.worker });
  },
};
