/**
 * Guild commands at the cluster level (`requestGuildMembers`, `updateVoiceState`, `requestSoundboardSounds`,
 * `updatePresence`), dispatch types the library does not know, and the token-safety rule (no REST call to a host
 * the user did not configure). The routing helpers are pure; the rest runs against the simulator, in this thread
 * and in worker threads. (Across processes: test/distributed-nats.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, workerHosts } from '../src/cluster.js';
import { byShard, memberRequestData, voiceStateData } from '../src/cluster-commands.js';
import { ShardlineError } from '../src/errors.js';
import type { DispatchEvent, GuildMembersChunk, ShardEvent } from '../src/events.js';
import { INTENTS, rig } from './helpers/cluster-rig.js';
import { failOnUnhandledRejections, harness, until } from './helpers/setup.js';

failOnUnhandledRejections();

/** Guilds | GuildMembers | GuildMessages | DirectMessages. */
const WITH_MEMBERS = INTENTS | 2;
/** Handshake timeouts are not what these tests are about (see cluster-rig.ts). */
const patient = () => ({ helloTimeout: 600_000, readyTimeout: 600_000, memberRequestTimeout: 600_000 });

test('routing helpers: op 8 / op 4 payloads from (guildId, options), guilds grouped by owning shard in order', () => {
  assert.deepEqual(memberRequestData('123'), { query: '', limit: 0, guild_id: '123' });
  assert.deepEqual(memberRequestData(123n, { user_ids: ['9'] }), { user_ids: ['9'], guild_id: '123' });
  assert.deepEqual(memberRequestData('5', { query: 'ab', limit: 3, presences: true }), { query: 'ab', limit: 3, presences: true, guild_id: '5' });
  const full = { guild_id: '7', query: '', limit: 0, nonce: 'n' };
  assert.equal(memberRequestData(full), full);
  assert.deepEqual(voiceStateData('7', { channel_id: null, self_mute: false, self_deaf: true }), { channel_id: null, self_mute: false, self_deaf: true, guild_id: '7' });
  assert.throws(
    () => voiceStateData('7'),
    (e: unknown) => e instanceof ShardlineError && e.code === 'INVALID_OPTION',
  );
  const groups = byShard(['10', '11', '12', '13', '14'], (g) => Number(g) % 2);
  assert.deepEqual(
    [...groups],
    [
      [0, ['10', '12', '14']],
      [1, ['11', '13']],
    ],
  );
});

for (const workers of [0, 2]) {
  const mode = workers === 0 ? 'this thread' : 'worker threads';

  test(`${mode}: guild commands reach the shard that owns the guild; member chunks come back to the caller; presence reaches every shard`, async () => {
    const r = await rig({ shards: 3, guilds: 9 });
    try {
      const cluster = r.cluster({ shards: 3, workers, intents: WITH_MEMBERS, shardOptions: patient });
      const dispatches: DispatchEvent[] = [];
      cluster.on('dispatch', (e) => dispatches.push(e));
      await cluster.connect();
      const ops: { op: number; shardId: number | null; d: unknown }[] = [];
      r.sim.on('payload', (p) => {
        if (p.op !== 1) ops.push(p);
      });
      const on = (shard: number) => r.sim.guildsForShard(shard, 3);

      // requestGuildMembers: iterable as the chunks arrive (1200 members: 2 chunks), on shard 2
      const req = cluster.requestGuildMembers(on(2)[0]!);
      const streamed: GuildMembersChunk[] = [];
      for await (const chunk of req) streamed.push(chunk);
      assert.equal(streamed.length, 2);
      assert.ok(streamed.every((c) => c.nonce === req.nonce && c.guild_id === on(2)[0]));
      assert.equal(
        streamed.reduce((n, c) => n + c.members.length, 0),
        1200,
      );
      // ... and awaitable, with a full request object, on shard 0
      const chunks = await cluster.requestGuildMembers({ guild_id: on(0)[0]!, user_ids: ['1'] });
      assert.equal(chunks.length, 1);
      assert.deepEqual(chunks[0]!.not_found, ['1']);

      await cluster.updateVoiceState(on(1)[0]!, { channel_id: null, self_mute: false, self_deaf: true });
      // guilds of shards 0 and 1: one op 31 per shard, each with its own guilds
      await cluster.requestSoundboardSounds([on(0)[0]!, on(1)[0]!, on(1)[1]!]);
      await cluster.updatePresence({ since: null, activities: [], status: 'idle', afk: false });
      await until(() => ops.filter((o) => o.op === 3).length === 3 && dispatches.filter((d) => d.type === 'SOUNDBOARD_SOUNDS').length === 3, 'presence on 3 shards, 3 soundboards');
      const sent = (op: number) => ops.filter((o) => o.op === op).map((o) => [o.shardId, o.d] as const);
      assert.deepEqual(
        sent(8).map(([s]) => s),
        [2, 0],
      );
      assert.deepEqual(sent(4), [[1, { channel_id: null, self_mute: false, self_deaf: true, guild_id: on(1)[0] }]]);
      assert.deepEqual(
        sent(31).sort((a, b) => a[0]! - b[0]!),
        [
          [0, { guild_ids: [on(0)[0]] }],
          [1, { guild_ids: [on(1)[0], on(1)[1]] }],
        ],
      );
      assert.deepEqual(
        sent(3)
          .map(([s]) => s)
          .sort(),
        [0, 1, 2],
      );

      // failures reject the request instead of hanging
      await assert.rejects(Promise.resolve(cluster.requestGuildMembers('not-a-snowflake')), (e: unknown) => e instanceof ShardlineError && e.code === 'INVALID_SNOWFLAKE');
      await assert.rejects(cluster.updateVoiceState('nope', { channel_id: null, self_mute: false, self_deaf: false }), (e: unknown) => e instanceof ShardlineError && e.code === 'INVALID_SNOWFLAKE');
      await cluster.close();
      await assert.rejects(Promise.resolve(cluster.requestGuildMembers(on(0)[0]!)), (e: unknown) => e instanceof ShardlineError && e.code === 'CLUSTER_CLOSED');
    } finally {
      await r.stop();
    }
  });

  test(`${mode}: dispatch types the library does not know arrive as { type, data } without an error (filter + extraEvents)`, async () => {
    const r = await rig({ shards: 1, guilds: 2 });
    try {
      const cluster = r.cluster({ shards: 1, workers: workers === 0 ? 0 : 1, events: ['MESSAGE_CREATE', 'READY_SUPPLEMENTAL'], extraEvents: ['GUILD_SOMETHING_NEW'], shardOptions: patient });
      const got: DispatchEvent[] = [];
      const errors: unknown[] = [];
      cluster.on('dispatch', (e) => got.push(e));
      cluster.on('shardError', (e) => errors.push(e));
      cluster.on('shardEvent', (e: ShardEvent) => {
        if (e.kind === 'error') errors.push(e.error);
      });
      await cluster.connect();
      r.sim.dispatch(0, 'READY_SUPPLEMENTAL', { guilds: [], merged_members: [] });
      r.sim.dispatch(0, 'NOT_ASKED_FOR_NEW', { x: 0 }); // unknown and not wanted: filtered like any other
      r.sim.dispatch(0, 'GUILD_SOMETHING_NEW', { x: 1 });
      await until(() => got.some((e) => e.type === 'GUILD_SOMETHING_NEW'), 'the new type');
      assert.deepEqual(
        got.map((e) => [e.type, e.data as unknown]),
        [
          ['READY_SUPPLEMENTAL', { guilds: [], merged_members: [] }],
          ['GUILD_SOMETHING_NEW', { x: 1 }],
        ],
      );
      assert.deepEqual(errors, []);
    } finally {
      await r.stop();
    }
  });
}

test('a shard without a filter delivers unknown types too, on dispatch and events()', async () => {
  const h = await harness({ guilds: 1 });
  try {
    const shard = h.shard({ events: undefined });
    const stream = shard.events();
    await shard.connect();
    h.sim.dispatch(0, 'READY_SUPPLEMENTAL', { guilds: [] });
    for await (const e of stream) {
      if (e.type === 'READY' || e.type === 'GUILD_CREATE') continue;
      assert.deepEqual([e.type, e.data as unknown], ['READY_SUPPLEMENTAL', { guilds: [] }]);
      break;
    }
  } finally {
    await h.stop();
  }
});

test('token safety: with gatewayUrl and no apiUrl the cluster makes no REST call at all, and still connects', async () => {
  const r = await rig({ shards: 1, guilds: 2 });
  const realFetch = globalThis.fetch;
  const calls: string[] = [];
  globalThis.fetch = ((input: string | URL | Request, init?: RequestInit) => {
    calls.push(String(input instanceof Request ? input.url : input));
    return realFetch(input, init);
  }) as typeof fetch;
  try {
    const { apiUrl, ...noApi } = r.sim.clusterOptions();
    const cluster = new Cluster({ ...noApi, intents: INTENTS, shardOptions: patient });
    const debug: string[] = [];
    cluster.on('debug', (e) => debug.push(e.message));
    await cluster.connect();
    assert.equal(cluster.total, 1);
    assert.equal(cluster.status()[0]!.state, 'ready');
    assert.ok(
      debug.some((m) => /GET \/gateway\/bot skipped/.test(m)),
      debug.join('\n'),
    );
    // a reshard that needs /gateway/bot refuses instead of asking discord.com
    await assert.rejects(cluster.reshard(), (e: unknown) => e instanceof ShardlineError && e.code === 'RESHARD_FAILED' && /apiUrl/.test(e.message));
    assert.deepEqual(calls, [], 'no fetch at all');
    await cluster.close();

    // the spy does see a configured REST call: the same options with apiUrl ask the simulator, and only it
    const withApi = new Cluster({ ...r.sim.clusterOptions(), intents: INTENTS, shardOptions: patient });
    await withApi.connect();
    assert.deepEqual(calls, [`${apiUrl}/gateway/bot`]);
    await withApi.close();
  } finally {
    globalThis.fetch = realFetch;
    await r.stop();
  }
});

test('worker threads: a member request waiting when its worker dies rejects with WORKER_EXITED instead of hanging', async () => {
  const r = await rig({ shards: 1, guilds: 1 });
  try {
    const cluster = r.cluster({ shards: 1, workers: 1, workerRestart: false, intents: WITH_MEMBERS, shardOptions: patient });
    await cluster.connect();
    let sent = false;
    r.sim.on('payload', (p) => {
      if (p.op === 8) sent = true;
    });
    // a guild the gateway does not know: the request is never answered
    const pending = cluster.requestGuildMembers(String(1n << 22n), { user_ids: ['1'] });
    await until(() => sent, 'the request at the gateway');
    await workerHosts(cluster)[0]!.terminate();
    await assert.rejects(Promise.resolve(pending), (e: unknown) => e instanceof ShardlineError && e.code === 'WORKER_EXITED');
  } finally {
    await r.stop();
  }
});
