/**
 * NatsBroker against a real, throwaway nats-server with JetStream (never a mock, never the shared instance):
 * duplicate suppression, durable redelivery after a consumer crash, nak / poison handling, command routing,
 * ordered publishing under back-pressure, and the full multi-process demo (kill -9 and resume).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { ShardlineError } from '../src/errors.js';
import type { Shard } from '../src/shard.js';
import type { Cluster } from '../src/cluster.js';
import { NatsBroker, type BrokerEvent, type CommandServer, type PoisonEvent } from '../src/distributed/index.js';
import { INTENTS, manualRig } from './helpers/cluster-rig.js';
import { ManualClock, drive, simActivity } from './helpers/manual-clock.js';
import { startNats, type ServerProcess } from './helpers/servers.js';
import { TOKEN, delay, harness, until } from './helpers/setup.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

async function withNats(fn: (nats: ServerProcess) => Promise<void>): Promise<void> {
  const nats = await startNats();
  try {
    await fn(nats);
  } finally {
    await nats.stop();
  }
}

const event = (sequence: number, content = `m${sequence}`) => ({ shardId: 0, type: 'MESSAGE_CREATE', sequence, data: { content } });

test('duplicate suppression: the same {sessionId}:{seq} published twice reaches the consumer once', async () => {
  await withNats(async (nats) => {
    const broker = await NatsBroker.connect({ servers: nats.url, bot: 'dups' });
    try {
      const first = await broker.publishEvent(event(1), 'sess-a');
      const again = await broker.publishEvent(event(1, 'replayed'), 'sess-a');
      const other = await broker.publishEvent(event(1), 'sess-b'); // same seq, another session: a different event
      await broker.publishEvent(event(2), 'sess-a');
      assert.equal(first.duplicate, false);
      assert.equal(again.duplicate, true);
      assert.equal(other.duplicate, false);
      const seen: BrokerEvent[] = [];
      await broker.consume({ name: 'dup-check', handler: (e) => void seen.push(e) });
      await until(() => seen.length >= 3, 'three events');
      await delay(150);
      assert.deepEqual(
        seen.map((e) => `${e.sessionId}:${e.sequence}:${(e.data as { content: string }).content}`),
        ['sess-a:1:m1', 'sess-b:1:m1', 'sess-a:2:m2'],
      );
    } finally {
      await broker.close();
    }
  });
});

test('a crashed consumer: its un-acked events are redelivered to the restarted durable consumer of the same name', async () => {
  await withNats(async (nats) => {
    const gw = await NatsBroker.connect({ servers: nats.url, bot: 'crash' });
    const w1 = await NatsBroker.connect({ servers: nats.url, bot: 'crash' });
    try {
      for (let s = 1; s <= 5; s++) await gw.publishEvent(event(s), 'sess');
      const got1: number[] = [];
      let unstick = () => {};
      const stuck = new Promise<void>((resolve) => (unstick = resolve));
      await w1.consume({
        name: 'workers',
        ackWait: 400,
        handler: async (e) => {
          got1.push(e.sequence);
          if (e.sequence >= 3) {
            await stuck; // stuck on 3 until the process has "crashed"
            throw new Error('crashed'); // never acked (the connection is gone anyway)
          }
        },
      });
      await until(() => got1.includes(3), 'worker 1 at seq 3');
      await w1.nc.close(); // the crash: connection gone, nothing acked after 2
      unstick();
      const w2 = await NatsBroker.connect({ servers: nats.url, bot: 'crash' });
      try {
        const got2: { seq: number; redelivered: boolean }[] = [];
        await w2.consume({ name: 'workers', ackWait: 400, handler: (e, info) => void got2.push({ seq: e.sequence, redelivered: info.redelivered }) });
        await until(() => got2.length >= 3, 'redelivery', 5000);
        await delay(100);
        assert.deepEqual(
          got2.map((g) => g.seq),
          [3, 4, 5],
        );
        assert.equal(got2[0]!.redelivered, true);
        assert.deepEqual(got1.slice(0, 2), [1, 2]);
      } finally {
        await w2.close();
      }
    } finally {
      await Promise.all([gw.close(), w1.close().catch(() => undefined)]);
    }
  });
});

test('a handler error is nak-ed and retried after the delay; a poison event is terminated after maxDeliveries and reported', async () => {
  await withNats(async (nats) => {
    const broker = await NatsBroker.connect({ servers: nats.url, bot: 'poison' });
    try {
      await broker.publishEvent(event(1, 'flaky'), 's');
      await broker.publishEvent(event(2, 'poison'), 's');
      await broker.publishEvent(event(3, 'fine'), 's');
      const attempts = new Map<string, number[]>();
      const poisoned: PoisonEvent[] = [];
      const fromBroker: PoisonEvent[] = [];
      broker.on('poison', (p) => fromBroker.push(p));
      const done: string[] = [];
      const c = await broker.consume({
        name: 'retry',
        maxDeliveries: 3,
        nakDelay: 100,
        onPoison: (p) => poisoned.push(p),
        handler: (e) => {
          const content = (e.data as { content: string }).content;
          const list = attempts.get(content) ?? [];
          list.push(Date.now());
          attempts.set(content, list);
          if (content === 'poison') throw new Error('cannot handle this');
          if (content === 'flaky' && list.length < 2) throw new Error('try again');
          done.push(content);
        },
      });
      await until(() => poisoned.length === 1 && done.length === 2, 'poison and the others', 5000);
      await delay(400);
      assert.deepEqual(done.sort(), ['fine', 'flaky']);
      assert.equal(attempts.get('flaky')!.length, 2);
      const f = attempts.get('flaky')!;
      assert.ok(f[1]! - f[0]! >= 90, `nak delay respected (${f[1]! - f[0]!} ms)`);
      assert.equal(attempts.get('poison')!.length, 3, 'delivered maxDeliveries times, then never again');
      assert.equal(poisoned[0]!.deliveryCount, 3);
      assert.equal(poisoned[0]!.event?.sequence, 2);
      assert.match(poisoned[0]!.error.message, /cannot handle this/);
      assert.equal(fromBroker.length, 1);
      assert.deepEqual(c.stats, { handled: 2, failed: 3, poisoned: 1 });
    } finally {
      await broker.close();
    }
  });
});

test('commands reach the process that owns the shard; NO_SHARD_OWNER when nobody does; session ops are refused', async () => {
  const clock = new ManualClock();
  const h = await harness({ shards: 2, guilds: 4 }, clock);
  const nats = await startNats();
  const brokers: NatsBroker[] = [];
  try {
    // two "processes": one broker connection and one shard each
    const shards: Shard[] = [];
    for (const id of [0, 1]) {
      const b = await NatsBroker.connect({ servers: nats.url, bot: 'cmd' });
      brokers.push(b);
      const s = h.shard({ id, total: 2 });
      shards.push(s);
      await b.serveCommands(s);
    }
    await drive(clock, Promise.all(shards.map((s) => s.connect())), { what: 'both shards ready', activity: simActivity(h.sim) });
    const client = await NatsBroker.connect({ servers: nats.url, bot: 'cmd', shardCount: 2, commandTimeout: 1000 });
    brokers.push(client);
    const ops: { op: number; shardId: number | null; d: unknown }[] = [];
    h.sim.on('payload', (p) => {
      if (p.op !== 1) ops.push(p);
    });
    assert.deepEqual(await client.updatePresence(1, { since: null, activities: [], status: 'dnd', afk: false }), { shardId: 1 });
    const guild = h.sim.guildsForShard(0, 2)[0]!;
    const members = await client.requestGuildMembers({ guild_id: guild, query: '', limit: 0 });
    assert.equal(members.shardId, 0);
    assert.ok(members.nonce);
    await client.updateVoiceState({ guild_id: guild, channel_id: null, self_mute: false, self_deaf: false });
    await until(() => ops.length >= 3, 'commands at the gateway');
    assert.deepEqual(
      ops.map((o) => [o.op, o.shardId]),
      [
        [3, 1],
        [8, 0],
        [4, 0],
      ],
    );
    assert.equal((ops[1]!.d as { nonce: string }).nonce, members.nonce);
    const t0 = Date.now();
    const err = await client.updatePresence(7, { since: null, activities: [], status: 'online', afk: false }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof ShardlineError && err.code === 'NO_SHARD_OWNER', String(err));
    assert.match(err.message, /shard 7/);
    assert.ok(Date.now() - t0 < 1500);
    await assert.rejects(client.send(0, { op: 2, d: {} }), (e: unknown) => e instanceof ShardlineError && e.code === 'FORBIDDEN_OP');
    // the owner's own errors come back as they are
    await shards[1]!.close();
    await assert.rejects(client.send(1, { op: 3, d: {} }), (e: unknown) => e instanceof ShardlineError && e.code === 'SHARD_CLOSED');
  } finally {
    await Promise.all(brokers.map((b) => b.close()));
    await h.stop();
    await nats.stop();
  }
});

test('cluster commands across processes: members, voice, soundboard and presence reach the process that owns the shard; chunks come back', async () => {
  const r = await manualRig({ shards: 2, guilds: 4 });
  const nats = await startNats();
  const brokers: NatsBroker[] = [];
  try {
    // two "processes", each a broker connection and a cluster running one shard of two
    const clusters: Cluster[] = [];
    const servers: CommandServer[] = [];
    for (const id of [0, 1]) {
      const b = await NatsBroker.connect({ servers: nats.url, bot: 'routing', commandTimeout: 1000 });
      brokers.push(b);
      const patient = () => ({ helloTimeout: 600_000, readyTimeout: 600_000, memberRequestTimeout: 600_000 });
      const c = r.cluster({ shards: { ids: [id], total: 2 }, intents: INTENTS | 2, remoteCommands: b.remoteCommands(), shardOptions: patient });
      clusters.push(c);
      servers.push(await b.serveCommands(c));
    }
    await r.run(Promise.all(clusters.map((c) => c.connect())), 'both clusters ready');
    const ops: { op: number; shardId: number | null; d: unknown }[] = [];
    r.sim.on('payload', (p) => {
      if (p.op !== 1) ops.push(p);
    });
    const [a] = clusters as [Cluster, Cluster];
    const g0 = r.sim.guildsForShard(0, 2);
    const g1 = r.sim.guildsForShard(1, 2);
    // a member request for shard 1, made in the process that runs shard 0: iterable, chunks streamed back
    const req = a.requestGuildMembers(g1[0]!);
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    assert.equal(chunks.length, 2); // the simulator's 1200 members
    assert.ok(chunks.every((c) => c.nonce === req.nonce && c.guild_id === g1[0]));
    // ... and awaitable
    assert.equal((await a.requestGuildMembers(g1[1]!, { user_ids: ['1'] })).length, 1);
    await a.updateVoiceState(g1[0]!, { channel_id: null, self_mute: true, self_deaf: false });
    await a.requestSoundboardSounds([g0[0]!, g1[0]!, g1[1]!]);
    await a.updatePresence({ since: null, activities: [], status: 'dnd', afk: false });
    await until(() => ops.filter((o) => o.op === 3).length >= 2 && ops.some((o) => o.op === 31 && o.shardId === 1), 'commands at the gateway');
    const sent = (op: number) => ops.filter((o) => o.op === op).map((o) => [o.shardId, o.d] as const);
    assert.deepEqual(
      sent(8).map(([s]) => s),
      [1, 1],
    );
    assert.deepEqual(sent(4), [[1, { channel_id: null, self_mute: true, self_deaf: false, guild_id: g1[0] }]]);
    assert.deepEqual(
      sent(31).sort((x, y) => x[0]! - y[0]!),
      [
        [0, { guild_ids: [g0[0]] }],
        [1, { guild_ids: [g1[0], g1[1]] }],
      ],
    );
    assert.deepEqual(
      sent(3)
        .map(([s]) => s)
        .sort(),
      [0, 1],
    );
    // nobody serves shard 1 any more: the request rejects with NO_SHARD_OWNER instead of waiting
    await servers[1]!.close();
    await assert.rejects(Promise.resolve(a.requestGuildMembers(g1[0]!, { user_ids: ['1'] })), (e: unknown) => e instanceof ShardlineError && e.code === 'NO_SHARD_OWNER');
    // a request still waiting (a guild of shard 0 the gateway does not know: never answered) ends when its broker closes
    const b = clusters[1]!;
    const pending = b.requestGuildMembers(String(2n << 22n), { user_ids: ['1'] });
    assert.equal(b.shardIdFor(String(2n << 22n)), 0);
    await until(() => ops.some((o) => o.op === 8 && o.shardId === 0), 'the pending request at the gateway');
    await brokers[1]!.close();
    await assert.rejects(Promise.resolve(pending), (e: unknown) => e instanceof ShardlineError && e.code === 'BROKER_CLOSED');
  } finally {
    await Promise.all(brokers.map((b) => b.close()));
    await r.stop();
    await nats.stop();
  }
});

test('publisher: every dispatch published in order per shard, with back-pressure past the high-water mark', async () => {
  const clock = new ManualClock();
  const h = await harness({ guilds: 2 }, clock);
  const nats = await startNats();
  const gw = await NatsBroker.connect({ servers: nats.url, bot: 'order' });
  const worker = await NatsBroker.connect({ servers: nats.url, bot: 'order' });
  try {
    const shard = h.shard({ token: TOKEN });
    const published: number[] = [];
    const pub = gw.publisher(shard, { highWaterMark: 3, onPublished: (e) => published.push(e.sequence) });
    assert.equal(shard.listenerCount('event'), 1, 'one listener on the event stream');
    assert.equal(shard.listenerCount('dispatch') + shard.listenerCount('ready') + shard.listenerCount('resumed'), 0);
    await drive(clock, shard.connect(), { activity: simActivity(h.sim) });
    const guild = h.sim.guildIds[0]!;
    for (let i = 0; i < 300; i++) h.sim.dispatch(0, 'MESSAGE_CREATE', { id: String(i), channel_id: '1', guild_id: guild, author: { id: '2' }, content: `m${i}` });
    const last = h.sim.sessions()[0]!.seq;
    await until(() => published.includes(last), 'all published', 10_000);
    assert.ok(pub.stats.pauses >= 1, 'the source was held back while JetStream caught up');
    assert.equal(pub.paused, false, 'and released once it had');
    assert.equal(pub.pending, 0);
    const seen: number[] = [];
    await worker.consume({ name: 'ordered', handler: (e) => void seen.push(e.sequence) });
    await until(() => seen.length >= last, 'consumed', 5000);
    // the manual clock did not move since: no heartbeat, no resume, nothing after `last`
    assert.deepEqual(
      seen,
      Array.from({ length: last }, (_, i) => i + 1),
      'every dispatch, contiguous and in order',
    );
    await pub.close();
    assert.equal(shard.listenerCount('event'), 0, 'removed on close');
  } finally {
    await Promise.all([gw.close(), worker.close()]);
    await h.stop();
    await nats.stop();
  }
});

test('the distributed demo: two gateway processes, a worker, kill -9 and restart, every event exactly once', async () => {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(root, 'examples/distributed/run-demo.ts')], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 50_000);
  const code = await new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  assert.match(out, /VERDICT: PASS/, out);
  assert.equal(code, 0, out);
  assert.match(out, /0 identifies, 2 resumes/);
});
