/**
 * Handler mode (`ClusterOptions.handler`, src/handler/*, src/worker/entry.ts): the bot's handler module runs in the
 * worker threads on their own shards' dispatches (the main thread gets none), with its shard's commands, cluster
 * commands routed to the owning shard in another worker, a logger and `post()`; the same module runs in this thread
 * with `workers: 0`; a throwing handler is reported and the next event follows; a crashed worker's shards RESUME from
 * the last event the handler finished, so every event is handled (and its post delivered) exactly once.
 * Against the real simulator.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scaledClock } from '../src/clock.js';
import { Cluster, workerHosts, type ClusterOptions } from '../src/cluster.js';
import type { RemoteCommands } from '../src/cluster-commands.js';
import type { HandlerError } from '../src/errors.js';
import type { HandlerLogEvent, HandlerMessageEvent } from '../src/handler/define.js';
import type { ReshardResult } from '../src/reshard.js';
import { routeLogs } from '../src/logging.js';
import { GatewaySimulator, generateGuildIds } from '../src/simulator/index.js';
import type { GatewaySimulatorOptions } from '../src/simulator/types.js';
import { TOKEN, SCALE, until, delay, failOnUnhandledRejections } from './helpers/setup.js';

failOnUnhandledRejections();

const HANDLER = new URL('./helpers/test-handler.ts', import.meta.url);
/** Guilds | GuildMessages | DirectMessages: the markers are DMs, so their content is not stripped. */
const INTENTS = 1 | 512 | 4096;
/** Real ms: a worker thread boots in ~0.5 s under tsx, more on a busy machine. */
const BOOT = 30_000;

async function rig(opts: Partial<ClusterOptions>, simOpts: Partial<GatewaySimulatorOptions> = {}) {
  // `*:quiet` markers are recorded here by the handler, not posted (worker threads copy process.env when they start)
  const handledFile = join(tmpdir(), `shardline-handled-${process.pid}-${Math.random().toString(36).slice(2)}.log`);
  writeFileSync(handledFile, '');
  process.env.SHARDLINE_TEST_HANDLED = handledFile;
  const clock = scaledClock(SCALE);
  const sim = await GatewaySimulator.start({ tokens: [TOKEN], clock, shards: 4, maxConcurrency: 4, guilds: 4, sessionTimeout: 3_600_000, heartbeatInterval: 300_000, ...simOpts });
  const cluster = new Cluster({
    token: TOKEN,
    intents: INTENTS,
    apiUrl: sim.apiUrl,
    clock,
    shards: 4,
    handler: HANDLER,
    shardOptions: () => ({ helloTimeout: 3_600_000, readyTimeout: 3_600_000 }),
    ...opts,
  });
  const posts: HandlerMessageEvent[] = [];
  const logs: HandlerLogEvent[] = [];
  const errors: Error[] = [];
  let dispatches = 0;
  cluster.on('handlerMessage', (m) => posts.push(m));
  cluster.on('handlerLog', (l) => logs.push(l));
  cluster.on('shardError', (e) => errors.push(e));
  cluster.on('dispatch', () => dispatches++);
  const handled = new Map<number, number>(); // MESSAGE_CREATEs finished by the handler, by shard (for metrics)
  cluster.on('dispatchHandled', (shardId, type) => type === 'MESSAGE_CREATE' && handled.set(shardId, (handled.get(shardId) ?? 0) + 1));
  let n = 0;
  const sent: string[] = [];
  const send = (shard: number, content = `${shard}:${n}`) => {
    n++;
    sent.push(content);
    sim.dispatch(shard, 'MESSAGE_CREATE', { id: String(n), channel_id: '11', content, author: { id: '3' } });
  };
  /** A message in a guild (routed to the guild's shard in every shard set); needs the MessageContent intent. */
  const sendGuild = (guildId: string, content: string) => {
    n++;
    sent.push(content);
    sim.dispatch({ guildId }, 'MESSAGE_CREATE', { id: String(n), channel_id: '10', guild_id: guildId, content, author: { id: '2' } });
  };
  const markers = () => posts.map((p) => (p.value as { marker?: string }).marker).filter((m): m is string => m !== undefined);
  /** `*:quiet` markers the handler finished, in the order it finished them. */
  const quiet = () => readFileSync(handledFile, 'utf8').split('\n').filter(Boolean);
  return {
    sim,
    cluster,
    posts,
    logs,
    errors,
    sent,
    send,
    sendGuild,
    markers,
    quiet,
    dispatches: () => dispatches,
    handled,
    async stop() {
      await cluster.close().catch(() => undefined);
      await sim.stop();
      rmSync(handledFile, { force: true });
    },
  };
}

/** A guild id that `shardIdFor` puts on `shard` of 4. */
const guildOn = (shard: number) => String((BigInt(shard) << 22n) + (1000n << 22n) * 4n);

test('workers: the handler runs in each worker on its own shards; commands route to the owning shard; posts and logs reach the main thread; no dispatch does', async () => {
  const r = await rig({ workers: 2 });
  try {
    const { cluster, sim } = r;
    const routed: [string, Record<string, unknown>, string | undefined][] = [];
    const line = (level: string) => (fields: object, message?: string) => routed.push([level, fields as Record<string, unknown>, message]);
    routeLogs(cluster, { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') });
    const ops: [number, number][] = [];
    sim.on('payload', (p) => (p.op === 3 || p.op === 4) && ops.push([p.op, p.shardId ?? -1]));
    await cluster.connect();
    assert.equal(cluster.shardIdFor(guildOn(1)), 1);
    await until(() => r.posts.filter((p) => (p.value as { init?: number }).init !== undefined).length === 2, 'init in both workers', BOOT);
    for (let i = 0; i < 50; i++) for (const s of [0, 1, 2, 3]) r.send(s);
    r.send(0, `voice:${guildOn(1)}`); // shard 0 (worker 0) → shard 1 (worker 1), through the main thread
    r.send(2, 'presence');
    r.send(3, 'log:hello');
    r.send(1, 'members');
    await until(() => r.markers().length === r.sent.length, 'every marker handled', BOOT);
    const members = r.posts.find((p) => (p.value as { marker?: string }).marker === 'members')!.value as { chunks: number; members: number; shardId: number };
    assert.equal(members.shardId, 1);
    assert.ok(members.chunks >= 1 && members.members >= 1, `member chunks came back to the worker (${JSON.stringify(members)})`);
    const got = r.markers();
    assert.equal(new Set(got).size, got.length, 'each once');
    for (const p of r.posts) {
      const v = p.value as { marker?: string; shardId: number; worker: number };
      if (v.marker === undefined) continue;
      assert.equal(p.shardId, v.shardId);
      assert.equal(v.worker, cluster.status()[v.shardId]!.worker, `shard ${v.shardId} handled in its own worker`);
      if (/^\d:/.test(v.marker)) assert.ok(v.marker.startsWith(`${v.shardId}:`), 'on the shard it was sent to');
    }
    for (const s of [0, 1, 2, 3]) {
      const mine = got.filter((m) => m.startsWith(`${s}:`)).map((m) => Number(m.split(':')[1]));
      assert.deepEqual(
        mine,
        [...mine].sort((a, b) => a - b),
        `shard ${s} in order`,
      );
    }
    assert.deepEqual(ops.sort(), [
      [3, 2],
      [4, 1],
    ]);
    assert.deepEqual(
      r.logs.map((l) => [l.level, l.shardId, l.worker, l.message]),
      [['info', 3, 1, 'saw log:hello']],
    );
    assert.deepEqual(
      routed.filter(([, , m]) => m?.startsWith('saw ')),
      [['info', { shardId: 3, worker: 1 }, 'saw log:hello']],
      "routeLogs routes the handler's lines",
    );
    assert.equal(r.dispatches(), 0, 'the main thread was given no dispatch');
    await until(() => [...r.handled.values()].reduce((a, b) => a + b, 0) === r.sent.length, 'dispatchHandled for each');
    assert.equal(r.handled.get(0), 51, 'shard 0: 50 markers and the voice one');
    assert.ok(cluster.status().every((s) => s.state === 'ready' && s.sequence > 0 && s.guilds === 1));
  } finally {
    await r.stop();
  }
});

test('this thread (workers: 0): the same module runs here; a throwing handler is reported with the event type and shard, and the next event follows', async () => {
  const r = await rig({ workers: 0 });
  try {
    await r.cluster.connect();
    r.send(1, 'throw:1');
    r.send(1, '1:after');
    r.send(0, `voice:${guildOn(3)}`);
    // a handler that logs or throws with the token in the text: neither the log line nor the error carries it
    r.send(1, `log:${TOKEN}`);
    r.send(1, `throw:${TOKEN}`);
    r.send(1, '1:last');
    await until(() => r.markers().includes('1:last') && r.markers().includes(`voice:${guildOn(3)}`), 'events after the throw', BOOT);
    const leaks = [...r.logs.map((l) => l.message), ...r.errors.map((e) => `${e.message} ${String((e as { cause?: unknown }).cause)}`)].filter((m) => m.includes(TOKEN));
    assert.deepEqual(leaks, [], 'the token is in no handler log line or error');
    assert.ok(
      r.logs.some((l) => l.message.includes('log:[redacted]')),
      'the log line arrived, redacted',
    );
    const err = r.errors.find((e) => e.name === 'HandlerError') as HandlerError | undefined;
    assert.ok(err, 'reported on shardError');
    assert.equal(err.code, 'HANDLER_FAILED');
    assert.equal(err.shardId, 1);
    assert.equal(err.eventType, 'MESSAGE_CREATE');
    assert.match(err.message, /asked to throw on throw:1/);
    assert.ok(r.posts.every((p) => p.worker === null));
    assert.equal(r.dispatches(), 0);
    assert.equal(r.handled.get(1), 5, 'the failed events count as handled too');
  } finally {
    await r.stop();
  }
});

test('workers: a throwing handler is reported across the thread boundary and the worker lives on', async () => {
  const r = await rig({ workers: 2 });
  try {
    await r.cluster.connect();
    r.send(2, 'throw:2');
    r.send(2, 'bigint');
    r.send(2, `throw:${TOKEN}`);
    r.send(2, `log:${TOKEN}`);
    r.send(2, '2:after');
    await until(() => r.markers().includes('2:after'), 'the next event', BOOT);
    await until(() => r.logs.some((l) => l.message.startsWith('saw log:')), 'the log line from the worker', BOOT);
    assert.ok(
      r.logs.some((l) => l.message === 'saw log:[redacted]'),
      'the log line arrived, redacted',
    );
    const leaks = [...r.logs.map((l) => l.message), ...r.errors.map((e) => `${e.message} ${e.stack} ${String((e as { cause?: unknown }).cause)}`)].filter((m) => m.includes(TOKEN));
    assert.deepEqual(leaks, [], 'the token is in no log line or error that crossed from the worker');
    assert.ok(
      r.errors.some((e) => /ctx\.post\(\): the value is not JSON-serialisable/.test(e.message)),
      'a value that cannot cross the thread boundary is reported',
    );
    const err = r.errors.find((e) => e.name === 'HandlerError') as HandlerError | undefined;
    assert.ok(err);
    assert.deepEqual([err.code, err.shardId, err.eventType], ['HANDLER_FAILED', 2, 'MESSAGE_CREATE']);
    assert.equal(workerHosts(r.cluster)[0]!.status(2).state, 'ready');
  } finally {
    await r.stop();
  }
});

test('workers: a worker killed mid-stream is respawned, its shards RESUME from the last handled event: every event handled exactly once', async () => {
  const r = await rig({ workers: 2 });
  try {
    const { cluster, sim } = r;
    const resumed: number[] = [];
    cluster.on('shardResumed', (id) => resumed.push(id));
    await cluster.connect();
    const timer = setInterval(() => {
      for (const s of [0, 1, 2, 3]) r.send(s);
    }, 1);
    try {
      await until(() => r.markers().length >= 200, 'traffic handled', BOOT);
      const identifies = sim.stats.identifies;
      // A burst of slow events: the worker dies while its handler is in the middle of one of them. Between them,
      // events whose handler posts nothing: their position is only in the memory shared with the host.
      for (let i = 0; i < 300; i++) {
        r.send(0, `0:${i}:slow`);
        r.send(0, `0:${i}:quiet`);
        r.send(2, `2:${i}:early`);
        r.send(2, `2:${i}:quiet`);
      }
      await until(() => r.markers().some((m) => m.endsWith(':slow')) && r.markers().some((m) => m.endsWith(':early')), 'the burst being handled', BOOT);
      await workerHosts(cluster)[0]!.terminate();
      await until(() => resumed.includes(0) && resumed.includes(2), 'shards 0 and 2 resumed', BOOT);
      const after = r.sent.length;
      await until(() => r.sent.length >= after + 200, 'traffic after the respawn');
      clearInterval(timer);
      await until(() => new Set([...r.markers(), ...r.quiet()]).size >= r.sent.length, 'every marker handled', BOOT).catch(() => undefined);
      await delay(100); // and nothing more (a duplicate would come now)
      assert.equal(sim.stats.identifies, identifies, 'resumed, not identified');
    } finally {
      clearInterval(timer);
    }
    const counts = new Map<string, number>();
    for (const m of r.markers()) counts.set(m, (counts.get(m) ?? 0) + 1);
    assert.deepEqual(
      [...counts].filter(([, c]) => c > 1).map(([m]) => m),
      [],
      'none handled twice',
    );
    // Quiet events: a handler that returned is recorded before the next event starts, so after the crash at most
    // the one event per killed shard whose handler had just returned (its mark not yet written) runs again; with
    // positions only in the batches to the main thread, a whole batch of them would.
    const quietCounts = new Map<string, number>();
    for (const m of r.quiet()) quietCounts.set(m, (quietCounts.get(m) ?? 0) + 1);
    const twice = [...quietCounts].filter(([, c]) => c > 1).map(([m]) => m);
    assert.ok(twice.length <= 2 && new Set(twice.map((m) => m.split(':')[0])).size === twice.length, `quiet events handled twice: ${twice.join(', ')}`);
    assert.ok(
      [...quietCounts.values()].every((c) => c <= 2),
      'none more than twice',
    );
    for (const m of quietCounts.keys()) counts.set(m, quietCounts.get(m)!);
    assert.deepEqual(
      r.sent.filter((m) => !counts.has(m)),
      [],
      'none lost',
    );
  } finally {
    await r.stop();
  }
});

test('workers: events whose handler posts nothing are not handled again after a crash (their position is in memory shared with the main thread, not in a message)', async () => {
  const r = await rig({ workers: 2 });
  try {
    const resumed: number[] = [];
    r.cluster.on('shardResumed', (id) => resumed.push(id));
    await r.cluster.connect();
    for (let i = 0; i < 100; i++) r.send(0, `0:${i}:quiet`);
    await until(() => r.quiet().length === 100, 'the quiet events handled', BOOT);
    // Killed while idle: no message told the main thread about these 100 events.
    await workerHosts(r.cluster)[0]!.terminate();
    await until(() => resumed.includes(0), 'shard 0 resumed', BOOT);
    r.send(0, '0:after');
    await until(() => r.markers().includes('0:after'), 'an event after the respawn', BOOT);
    assert.deepEqual(
      r.quiet(),
      Array.from({ length: 100 }, (_, i) => `0:${i}:quiet`),
      'each once, none replayed by the RESUME',
    );
  } finally {
    await r.stop();
  }
});

test("handlerErrors: 'exit': a throwing handler ends its worker (reported first); the other worker runs on", async () => {
  const r = await rig({ workers: 2, handlerErrors: 'exit', workerRestart: false });
  try {
    const exits: number[] = [];
    r.cluster.on('workerExit', (e) => exits.push(e.worker));
    r.cluster.on('error', () => undefined); // the stopped shards are reported there too
    await r.cluster.connect();
    r.send(1, 'throw:exit');
    await until(() => exits.length === 1, 'the worker exited', BOOT);
    assert.deepEqual(exits, [1]);
    const err = r.errors.find((e) => e.name === 'HandlerError') as HandlerError | undefined;
    assert.deepEqual([err?.code, err?.shardId, err?.eventType], ['HANDLER_FAILED', 1, 'MESSAGE_CREATE']);
    assert.equal(r.cluster.status()[1]!.state, 'fatal');
    assert.equal(r.cluster.status()[0]!.state, 'ready', 'the other worker runs on');
    assert.ok(!r.markers().includes('throw:exit'));
  } finally {
    await r.stop();
  }
});

test('workers: a handler module that fails to load stops its shards with the reason, without a respawn loop', async () => {
  const r = await rig({ workers: 1, handler: new URL('./helpers/broken-handler.ts', import.meta.url) });
  try {
    const exits: { restarting: boolean; reason: string }[] = [];
    r.cluster.on('workerExit', (e) => exits.push(e));
    r.cluster.on('error', () => undefined);
    await assert.rejects(r.cluster.connect(), { name: 'ClusterConnectError', message: /shard 0: worker 0 exited \(code 1\): HANDLER_LOAD_FAILED: .*broken on purpose/ });
    assert.equal(exits.length, 1);
    assert.equal(exits[0]!.restarting, false);
    assert.match(exits[0]!.reason, /HANDLER_LOAD_FAILED: the handler module could not be loaded: Error: broken on purpose/);
    assert.ok(r.cluster.status().every((s) => s.state === 'fatal'));
  } finally {
    await r.stop();
  }
});

async function reshardUnderTraffic(workers: number, t: { diagnostic(m: string): void }) {
  const guilds = generateGuildIds(8, 4);
  // The simulator's and the shards' own heartbeat, session, HELLO and READY deadlines (not the rig's out-of-reach
  // ones): under load, ACKs come late, shards go zombie or lose their sessions and RESUME or IDENTIFY again in
  // the middle of the overlap, and the reshard must still handle every event exactly once.
  const normal = { heartbeatInterval: 41_250, sessionTimeout: 180_000 };
  const r = await rig({ workers, shards: 2, intents: INTENTS | 32768, shardOptions: () => ({}) }, { guilds, shards: 2, maxConcurrency: 2, ...normal });
  try {
    await r.cluster.connect();
    if (workers > 0) await until(() => r.posts.filter((p) => (p.value as { init?: number }).init !== undefined).length === workers, 'init in both workers', BOOT);
    // Every real ms: a message to a guild (in turn) and every 5th a DM (shard 0 of either set), each a unique marker.
    let tick = 0;
    const counters = new Map<string, number>();
    const next = (k: string) => `${k}:${counters.set(k, (counters.get(k) ?? -1) + 1).get(k)}`;
    const emit = () => {
      const gi = tick % guilds.length;
      r.sendGuild(guilds[gi]!, next(`g${gi}`));
      if (tick % 5 === 0) r.send(0, next('dm'));
      tick++;
    };
    const timer = setInterval(() => {
      emit();
      emit();
    }, 1);
    let result: ReshardResult;
    try {
      await until(() => r.markers().length >= 50, 'traffic handled by the running set', BOOT);
      result = await r.cluster.reshard(4, { timeout: 3_600_000, guildTimeout: 3_600_000, catchUpTimeout: 3_600_000 });
      const atSwitch = r.markers().length;
      await until(() => r.markers().length >= atSwitch + 50, 'traffic handled by the new set', BOOT);
    } finally {
      clearInterval(timer);
    }
    // The last marker of every key: once each is handled, everything before it on its key was (per-shard order).
    const fences = [...guilds.map((g, gi) => [g, next(`g${gi}`)] as const)];
    for (const [g, m] of fences) r.sendGuild(g, m);
    const dm = next('dm');
    r.send(0, dm);
    const last = [...fences.map(([, m]) => m), dm];
    await until(() => last.every((m) => r.markers().includes(m)), 'the last marker of every key', BOOT).catch(() => undefined);
    const counts = new Map<string, number>();
    for (const m of r.markers()) counts.set(m, (counts.get(m) ?? 0) + 1);
    const twice = [...counts].filter(([, c]) => c > 1).map(([m]) => m);
    const lost = r.sent.filter((m) => !counts.has(m));
    const st = r.sim.stats;
    t.diagnostic(
      `${r.sent.length} markers, ${twice.length} handled twice [${twice.slice(0, 20).join(', ')}], ${lost.length} lost [${lost.slice(0, 20).join(', ')}]; result ${JSON.stringify(result)}; ` +
        `simulator: ${st.identifies} IDENTIFYs (6 without faults), ${st.resumes} RESUMEs, closes ${JSON.stringify(st.closesByCode)}`,
    );
    assert.deepEqual(twice, [], 'no event handled twice (by both sets)');
    assert.deepEqual(lost, [], 'none lost');
    assert.ok(result.received > 0 && result.deduplicated > 0, 'the overlap carried traffic to both sets');
    assert.equal(r.cluster.total, 4);
    assert.deepEqual(
      r.cluster.status().map((s) => [s.id, s.state, s.worker ?? null]),
      [0, 1, 2, 3].map((id) => [id, 'ready', workers > 0 ? id % workers : null]),
    );
    assert.equal(r.dispatches(), 0, 'the main thread was given no dispatch');
  } finally {
    await r.stop();
  }
}

test('workers: a reshard 2 → 4 under traffic: the new set runs the handler in new workers; every event is handled exactly once across the overlap', (t) => reshardUnderTraffic(2, t));

test('this thread: a reshard 2 → 4 under traffic in handler mode: every event is handled exactly once across the overlap', (t) => reshardUnderTraffic(0, t));

test('this thread: a handler whose init() fails is reported on every shard (HANDLER_LOAD_FAILED)', async () => {
  const r = await rig({ workers: 0, shards: 2, handler: new URL('./helpers/init-fails-handler.ts', import.meta.url) });
  try {
    await r.cluster.connect();
    await until(() => r.errors.length === 2, 'both shards report it');
    for (const e of r.errors as HandlerError[]) {
      assert.equal(e.code, 'HANDLER_LOAD_FAILED');
      assert.match(e.message, /init failed on purpose/);
    }
  } finally {
    await r.stop();
  }
});

test("distributed (shards: { ids, total }): the handler runs in each process; a command for another process's shard goes through remoteCommands", async () => {
  // Two processes' clusters in one: A runs shards 0 and 1 in workers with the handler, B runs 2 and 3 here; A's
  // remoteCommands hands B's shards' commands to B (what NatsBroker.remoteCommands() does between processes).
  let b: Cluster | null = null;
  const remoteCommands: RemoteCommands = {
    send: (shardId, payload) => b!.send(shardId, payload),
    requestGuildMembers: () => {
      throw new Error('not used here');
    },
  };
  const r = await rig({ workers: 2, shards: { ids: [0, 1], total: 4 }, remoteCommands });
  b = new Cluster({ token: TOKEN, intents: INTENTS, apiUrl: r.sim.apiUrl, clock: scaledClock(SCALE), shards: { ids: [2, 3], total: 4 } });
  try {
    const ops: [number, number][] = [];
    r.sim.on('payload', (p) => p.op === 4 && ops.push([p.op, p.shardId ?? -1]));
    await Promise.all([r.cluster.connect(), b.connect()]);
    r.send(0, `voice:${guildOn(3)}`);
    await until(() => r.markers().includes(`voice:${guildOn(3)}`), 'handled', BOOT);
    await until(() => ops.length > 0, 'the op 4 reached the gateway', BOOT); // the routed send crosses a socket after the handler returned
    assert.deepEqual(ops, [[4, 3]], 'op 4 went out on shard 3, run by the other cluster');
  } finally {
    await b.close().catch(() => undefined);
    await r.stop();
  }
});

test('handler options are checked where the cluster is built or connects', async () => {
  assert.throws(() => new Cluster({ token: TOKEN, intents: 1, handler: HANDLER, handlerErrors: 'exit' }), { code: 'INVALID_OPTION' });
  assert.throws(() => new Cluster({ token: TOKEN, intents: 1, handler: '' }), { code: 'INVALID_OPTION' });
  const c = new Cluster({ token: TOKEN, intents: 1, gatewayUrl: 'ws://127.0.0.1:9', workers: 1, handler: './no-such-handler.js' });
  await assert.rejects(c.connect(), { code: 'HANDLER_LOAD_FAILED' });
  await c.close().catch(() => undefined);
});
