/**
 * `GatewayProxyOptions.handler` end to end on the simulator: the bot's handler module runs in the proxy's thread
 * on every upstream dispatch (raw mode and `workers: 2`), each shard's in order and exactly once while clients get
 * the whole stream; its posts and log lines become proxy events, its commands reach the upstream gateway, a throw
 * is reported and the next event follows, a broken module fails `start()` before any IDENTIFY, and a handler that
 * falls behind stops the upstream shards from reading until it caught up; with Redis, a closed and restarted proxy's
 * handler goes on where the first stopped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import { HandlerError, ShardlineError } from '../src/errors.js';
import type { HandlerLogEvent } from '../src/handler/define.js';
import { MAX_QUEUED } from '../src/handler/runner.js';
import { GatewayProxy } from '../src/proxy/index.js';
import { GatewaySimulator } from '../src/simulator/index.js';
import { PROXY_INTENTS, proxyRig, SHARD_TIMEOUTS, type ProxyRig } from './helpers/proxy-rig.js';
import { startRedis } from './helpers/servers.js';
import { failOnUnhandledRejections, SCALE, TOKEN, until } from './helpers/setup.js';
import { scaledClock } from '../src/clock.js';

failOnUnhandledRejections();

const HANDLER = new URL('./helpers/proxy-handler.ts', import.meta.url);

/** What the fixture posted: one `{ type, sequence }` per dispatch handled, and `{ members }` answers. */
interface Post {
  shardId: number | null;
  worker: number | null;
  value: { type?: string; sequence?: number; members?: number; nonce?: string | null };
}

async function handlerRig(shards: number, extra: Record<string, unknown> = {}): Promise<{ r: ProxyRig; posts: Post[]; logs: HandlerLogEvent[]; errors: Error[] }> {
  const posts: Post[] = [];
  const logs: HandlerLogEvent[] = [];
  const errors: Error[] = [];
  // listening from before the upstream connects: READY and the GUILD_CREATEs are handled while start() runs
  const r = await proxyRig({ shards, guilds: 4 }, { shards, handler: HANDLER, ...extra }, undefined, (proxy) => {
    proxy.on('handlerMessage', (m) => posts.push(m as Post));
    proxy.on('handlerLog', (l) => logs.push(l));
    proxy.on('error', (e) => errors.push(e));
  });
  return { r, posts, logs, errors };
}

/** The sequences the handler finished on a shard, in the order it finished them. */
const handledSeqs = (posts: Post[], shardId: number) => posts.filter((p) => p.shardId === shardId && p.value.sequence !== undefined).map((p) => p.value.sequence!);

/**
 * Every dispatch of the shard's session up to `last` (the simulator's sequence of the last one sent) was handled
 * exactly once, in order: 1, 2, ..., `last`, which is also where the upstream shard is.
 */
async function assertAllHandledInOrder(r: ProxyRig, posts: Post[], shardId: number, last: number): Promise<number[]> {
  await until(() => handledSeqs(posts, shardId).at(-1) === last, `shard ${shardId}: the handler reaches seq ${last}`, 15_000);
  const seqs = handledSeqs(posts, shardId);
  assert.deepEqual(
    seqs,
    Array.from({ length: last }, (_, i) => i + 1),
    `shard ${shardId}: each dispatch once, in order`,
  );
  assert.equal(r.proxy.cluster.status().find((s) => s.id === shardId)!.sequence, last);
  return seqs;
}

/** A plain websocket client identified on one shard; records every dispatch. */
async function client(url: string, shard: [number, number]): Promise<{ ws: WebSocket; got: { t: string; d: Record<string, unknown> }[] }> {
  const ws = new WebSocket(`${url}/?v=10&encoding=json`);
  const got: { t: string; d: Record<string, unknown> }[] = [];
  ws.on('message', (data) => {
    const p = JSON.parse(data.toString()) as { op: number; t: string; d: Record<string, unknown> };
    if (p.op === 0) got.push({ t: p.t, d: p.d });
  });
  await once(ws, 'open');
  ws.send(JSON.stringify({ op: 2, d: { token: TOKEN, intents: 1 | 512 | 32768, properties: {}, shard } }));
  return { ws, got };
}

/** Send `content` as a MESSAGE_CREATE in `guildId`; returns its sequence (the one session of the guild's shard). */
function say(r: ProxyRig, guildId: string, content: string, id = content): number {
  const seqs = r.sim.dispatch({ guildId }, 'MESSAGE_CREATE', { id, channel_id: '2', guild_id: guildId, content, author: { id: '9', username: 'u' } });
  assert.equal(seqs.length, 1);
  return seqs[0]!;
}

test('every upstream dispatch is handled once, in order per shard (READY first), while a client gets the whole stream; posts carry the shard', async () => {
  const { r, posts, errors } = await handlerRig(2);
  const c = await client(r.proxy.url, [0, 2]);
  try {
    await until(() => c.got.filter((p) => p.t === 'GUILD_CREATE').length === r.sim.guildsForShard(0, 2).length, 'the client READY burst', 10_000);
    const sent: { shard: number; content: string }[] = [];
    const last = [0, 0];
    for (let i = 0; i < 20; i++) {
      const shard = i % 2;
      const g = r.sim.guildsForShard(shard, 2)[i % r.sim.guildsForShard(shard, 2).length]!;
      last[shard] = say(r, g, `m${i}`);
      sent.push({ shard, content: `m${i}` });
    }
    for (const shard of [0, 1]) {
      const seqs = await assertAllHandledInOrder(r, posts, shard, last[shard]!);
      const types = posts.filter((p) => p.shardId === shard && p.value.type !== undefined).map((p) => p.value.type);
      assert.equal(types[0], 'READY', 'a handler sees READY first, as in a cluster');
      assert.equal(types.filter((t) => t === 'MESSAGE_CREATE').length, 10, `shard ${shard}: its ten messages`);
      assert.equal(types.filter((t) => t === 'GUILD_CREATE').length, r.sim.guildsForShard(shard, 2).length);
      assert.ok(seqs.length > 10);
    }
    assert.ok(posts.every((p) => p.worker === null));
    // the client is not held up by the handler and misses nothing of its shard
    const mine = sent.filter((s) => s.shard === 0).map((s) => s.content);
    await until(() => c.got.filter((p) => p.t === 'MESSAGE_CREATE').length === mine.length, 'the client gets its ten messages', 10_000);
    assert.deepEqual(
      c.got.filter((p) => p.t === 'MESSAGE_CREATE').map((p) => p.d.content),
      mine,
    );
    assert.equal(r.proxy.stats().handled, posts.filter((p) => p.value.type !== undefined).length);
    assert.deepEqual(errors, []);
  } finally {
    c.ws.close();
    await r.stop();
  }
});

test("ctx.send / ctx.updatePresence reach the upstream shard, requestGuildMembers is answered through the proxy (its op 8 interception leaves the cluster's chunks alone), log lines become handlerLog", async () => {
  const { r, posts, logs, errors } = await handlerRig(2);
  try {
    const g1 = r.sim.guildsForShard(1, 2)[0]!;
    const statuses = () =>
      r.sim
        .received(1)
        .filter((p) => p.op === 3)
        .map((p) => (p.d as { status: string }).status);
    say(r, g1, 'presence');
    say(r, g1, 'send');
    say(r, g1, 'log');
    say(r, g1, `log ${TOKEN}`); // a line quoting the token: it never leaves the proxy
    say(r, g1, 'members');
    await until(() => statuses().includes('idle') && statuses().includes('dnd'), 'both op 3 on the simulator (shard 1)', 10_000);
    assert.deepEqual(statuses(), ['idle', 'dnd'], 'in the handler order, on shard 1 only');
    assert.equal(r.sim.received(0).filter((p) => p.op === 3).length, 0);
    await until(() => posts.some((p) => p.value.members !== undefined), "the members request's answer", 10_000);
    const answer = posts.find((p) => p.value.members !== undefined)!;
    assert.equal(answer.shardId, 1);
    assert.ok(answer.value.members! >= 1, `chunks: ${answer.value.members}`);
    assert.ok(!String(answer.value.nonce).startsWith('sl:'), 'the cluster chose the nonce, not the proxy');
    const op8 = r.sim.received(1).filter((p) => p.op === 8);
    assert.equal(op8.length, 1);
    assert.equal((op8[0]!.d as { guild_id: string }).guild_id, g1);
    assert.deepEqual(
      logs.map((l) => [l.level, l.shardId, l.worker, l.message]),
      [
        ['warn', 1, null, 'saw log on shard 1'],
        ['warn', 1, null, 'saw log [redacted] on shard 1'],
      ],
    );
    assert.deepEqual(errors, []);
  } finally {
    await r.stop();
  }
});

test('a handler that throws is reported on error (HANDLER_FAILED with type and shard) and the next event is handled', async () => {
  const { r, posts, errors } = await handlerRig(2);
  try {
    const g0 = r.sim.guildsForShard(0, 2)[0]!;
    say(r, g0, 'throw');
    const last = say(r, g0, 'after');
    await until(() => errors.length === 1, 'the report', 10_000);
    const err = errors[0] as HandlerError;
    assert.ok(err instanceof HandlerError);
    assert.equal(err.code, 'HANDLER_FAILED');
    assert.equal(err.eventType, 'MESSAGE_CREATE');
    assert.equal(err.shardId, 0);
    assert.match(err.message, /shard 0: the handler failed on MESSAGE_CREATE .*asked to throw/);
    await assertAllHandledInOrder(r, posts, 0, last); // the failed event counts as handled; the one after follows
  } finally {
    await r.stop();
  }
});

test('a module that cannot be loaded (import throws, init throws, no file) rejects start() once with HANDLER_LOAD_FAILED before any upstream IDENTIFY', async () => {
  const clock = scaledClock(SCALE);
  const sim = await GatewaySimulator.start({ tokens: [TOKEN], clock, heartbeatInterval: 150_000 });
  try {
    for (const handler of [new URL('./helpers/broken-handler.ts', import.meta.url), new URL('./helpers/init-fails-handler.ts', import.meta.url), './no/such/handler.js']) {
      await assert.rejects(
        GatewayProxy.start({ token: TOKEN, intents: PROXY_INTENTS, apiUrl: sim.apiUrl, clock, shards: 1, shardOptions: () => SHARD_TIMEOUTS, handler }),
        (err: unknown) => err instanceof HandlerError && err.code === 'HANDLER_LOAD_FAILED' && /could not be loaded/.test(err.message),
      );
    }
    assert.equal(sim.stats.identifies, 0);
    // and a bad option never gets as far
    await assert.rejects(GatewayProxy.start({ token: TOKEN, intents: 1, handler: 42 as never }), (err: unknown) => err instanceof ShardlineError && err.code === 'INVALID_OPTION');
  } finally {
    await sim.stop();
  }
});

test('with workers: 2 (dispatches through shardEvent, not raw) the same module runs in the proxy thread, in order per shard', async () => {
  const { r, posts, errors } = await handlerRig(2, { workers: 2 });
  try {
    const last = [0, 0];
    for (let i = 0; i < 6; i++) last[i % 2] = say(r, r.sim.guildsForShard(i % 2, 2)[0]!, `w${i}`);
    last[1] = say(r, r.sim.guildsForShard(1, 2)[0]!, 'presence');
    for (const shard of [0, 1]) {
      await assertAllHandledInOrder(r, posts, shard, last[shard]!);
      assert.equal(posts.filter((p) => p.shardId === shard && p.value.type === 'MESSAGE_CREATE').length, shard === 0 ? 3 : 4);
    }
    assert.ok(
      posts.every((p) => p.worker === null),
      'run here, not in the upstream workers',
    );
    await until(() => r.sim.received(1).some((p) => p.op === 3), 'the presence through a worker shard', 10_000);
    assert.deepEqual(errors, []);
  } finally {
    await r.stop();
  }
});

test(`a handler ${MAX_QUEUED} dispatches behind pauses the upstream shard's reading until it caught up; nothing is dropped`, async () => {
  const { r, posts, errors } = await handlerRig(1);
  const g = globalThis as { shardlineProxyTestRelease?: () => void };
  try {
    const guild = r.sim.guildIds[0]!;
    say(r, guild, 'block');
    await until(() => g.shardlineProxyTestRelease !== undefined, 'the handler blocked', 10_000);
    const shard = r.proxy.cluster.shard(0).shard!;
    let last = 0;
    for (let i = 0; i < MAX_QUEUED + 200; i++) last = say(r, guild, `b${i}`);
    await until(() => shard.paused, 'the upstream shard paused', 15_000);
    const handledWhilePaused = handledSeqs(posts, 0).length;
    g.shardlineProxyTestRelease!();
    await assertAllHandledInOrder(r, posts, 0, last);
    assert.ok(handledSeqs(posts, 0).length > handledWhilePaused + MAX_QUEUED);
    assert.equal(shard.paused, false, 'reading again');
    assert.deepEqual(errors, []);
  } finally {
    g.shardlineProxyTestRelease?.();
    delete g.shardlineProxyTestRelease;
    await r.stop();
  }
});

test('with Redis, a proxy closed and started again RESUMEs upstream and its handler goes on where the first stopped: every dispatch handled once, in order', async () => {
  const redisServer = await startRedis();
  const clock = scaledClock(SCALE);
  const sim = await GatewaySimulator.start({ tokens: [TOKEN], clock, heartbeatInterval: 150_000, sessionTimeout: 6_000_000, guilds: 2, guildMemberCount: 5 });
  const posts: Post[] = [];
  const start = () =>
    GatewayProxy.start(
      { token: TOKEN, intents: PROXY_INTENTS, apiUrl: sim.apiUrl, clock, shards: 1, shardOptions: () => SHARD_TIMEOUTS, handler: HANDLER, redis: redisServer.url, redisKey: 'handler' },
      (p) => p.on('handlerMessage', (m) => posts.push(m as Post)),
    );
  let proxy: GatewayProxy | null = null;
  try {
    proxy = await start();
    const r = { proxy, sim } as ProxyRig;
    const g = sim.guildIds[0]!;
    let last = 0;
    for (let i = 0; i < 5; i++) last = say(r, g, `a${i}`);
    await assertAllHandledInOrder(r, posts, 0, last);
    await proxy.close();
    proxy = null;
    for (let i = 0; i < 3; i++) last = say(r, g, `down${i}`); // buffered by the gateway for the RESUME
    const identifies = sim.stats.identifies;
    proxy = await start();
    r.proxy = proxy;
    for (let i = 0; i < 3; i++) last = say(r, g, `b${i}`);
    await until(() => handledSeqs(posts, 0).at(-1) === last, 'the second proxy handles up to the last', 15_000);
    assert.deepEqual(
      handledSeqs(posts, 0),
      Array.from({ length: last }, (_, i) => i + 1),
      'across both processes: each dispatch once, in order (RESUMED included)',
    );
    assert.equal(sim.stats.identifies, identifies, 'the restarted proxy resumed upstream');
    assert.equal(posts.filter((p) => p.value.type === 'READY').length, 1);
    assert.equal(posts.filter((p) => p.value.type === 'RESUMED').length, 1);
  } finally {
    await proxy?.close();
    await sim.stop();
    await redisServer.stop();
  }
});
