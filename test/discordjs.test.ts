/**
 * `shardline/discordjs` end to end: a real discord.js 14 Client (its own @discordjs/ws 1.x manager) and a bare
 * @discordjs/ws 2.x WebSocketManager on ShardlineStrategy, against the simulator (gateway and /gateway/bot only:
 * nothing reaches discord.com).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { inspect } from 'node:util';
import { after, describe, it } from 'node:test';
import { WebSocketManager as WebSocketManager2 } from '@discordjs/ws';
import { Client, GatewayIntentBits, type Message } from 'discord.js';
import { scaledClock, type Clock } from '../src/clock.js';
import { ManualClock, drive, driveFor, driver, simActivity } from './helpers/manual-clock.js';
import type { Cluster } from '../src/cluster.js';
import { ShardlineIdentifyThrottler, ShardlineStrategy, shardlineIdentifyThrottler } from '../src/discordjs/index.js';
import { LocalIdentifyQueue } from '../src/queue.js';
import { GatewaySimulator, type GatewaySimulatorOptions } from '../src/simulator/index.js';
import { textMessage } from './helpers/messages.js';

const TOKEN = 'sim-token-djs.abcdefghijklmnop.secret';
const INTENTS = GatewayIntentBits.Guilds | GatewayIntentBits.GuildMessages | GatewayIntentBits.MessageContent;
/** Generous handshake timeouts (virtual ms) so a loaded machine passes at 100x speed (the worker-thread test). */
const SHARD_OPTS = { helloTimeout: 600_000, readyTimeout: 600_000 };

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
});

interface Env {
  sim: GatewaySimulator;
  clock: Clock;
  api: string;
  /** Await `p` while the clock runs (drive in manual-clock.ts); on a scaled clock just `p`. */
  run<T>(p: T | PromiseLike<T>, what: string): Promise<T>;
  /** Run the clock until `done()` holds (driveUntil in manual-clock.ts); on a scaled clock poll real time. */
  until(done: () => boolean, what: string): Promise<void>;
}

/**
 * The simulator, by default on a {@link ManualClock} shared with the shards discord.js runs through the strategy in
 * this thread: time moves only in `run` / `until`, with I/O turns between steps, so a loaded machine makes a test
 * slower, never late. `scaled`: a scaled clock instead, for shards in a worker thread (they cannot share it).
 */
async function simulator(opts: GatewaySimulatorOptions = {}, scaled = false): Promise<Env> {
  const clock = scaled ? scaledClock(0.01) : new ManualClock();
  const sim = await GatewaySimulator.start({ clock, tokens: [TOKEN], guilds: 6, shards: 2, maxConcurrency: 2, heartbeatInterval: 41_250, ...opts });
  cleanups.push(() => sim.stop());
  if (clock instanceof ManualClock) return { sim, clock, api: sim.apiBaseUrl, ...driver(clock, sim) };
  return { sim, clock, api: sim.apiBaseUrl, run: (p, what) => withTimeout(Promise.resolve(p), 10_000, what), until: (done, what) => until(done, 10_000, what) };
}

/** A discord.js Client on ShardlineStrategy against `sim`; `strategy()` is the strategy discord.js built. */
function djsClient(
  env: Env,
  extra: { shards?: 'auto' | number[]; shardCount?: number; compression?: 'zlib-stream' | false; buildIdentifyThrottler?: () => unknown; identifyQueue?: LocalIdentifyQueue } = {},
): { client: Client; strategy: () => ShardlineStrategy } {
  let built: ShardlineStrategy | null = null;
  const client = new Client({
    intents: INTENTS,
    shards: extra.shards ?? 'auto',
    ...(extra.shardCount ? { shardCount: extra.shardCount } : {}),
    rest: { api: env.api },
    ws: {
      buildStrategy: (manager) => {
        built = new ShardlineStrategy(manager, {
          clock: env.clock,
          gatewayUrl: env.sim.url,
          compression: extra.compression ?? 'zlib-stream',
          identifyQueue: extra.identifyQueue,
          shardOptions: () => SHARD_OPTS,
        });
        return built;
      },
      ...(extra.buildIdentifyThrottler ? { buildIdentifyThrottler: extra.buildIdentifyThrottler as never } : {}),
    },
  });
  cleanups.push(() => client.destroy());
  return {
    client,
    strategy: () => {
      assert.ok(built, 'discord.js built the strategy');
      return built;
    },
  };
}

async function login(env: Env, client: Client): Promise<void> {
  const ready = once(client, 'clientReady');
  await env.run(client.login(TOKEN), 'login');
  await env.run(ready, 'clientReady');
}

/**
 * The part of a REST client a bare @discordjs/ws manager uses: `get('/gateway/bot')`, here against the simulator
 * (discord.js tests use the client's real REST client).
 */
function restFor(api: string): never {
  return {
    get: async (route: string) => {
      const res = await fetch(`${api}/v10${route}`, { headers: { authorization: `Bot ${TOKEN}` } });
      if (!res.ok) throw new Error(`GET ${route}: ${res.status}`);
      return res.json();
    },
  } as never;
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)))]);
  } finally {
    clearTimeout(t);
  }
}

/** Resolve once `check()` holds, polled on every simulator or client event loop turn (bounded by `ms`). */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

describe('ShardlineStrategy with a discord.js 14 Client (@discordjs/ws 1.x events)', () => {
  it('logs in, fills the guild cache from every shard, and reports status and ping', async () => {
    const env = await simulator();
    const { client, strategy } = djsClient(env);
    await login(env, client);
    const s = strategy();
    assert.equal(s.eventShape, 'v1', 'discord.js 14 brings @discordjs/ws 1.x');
    assert.equal(client.ws.shards.size, 2, 'shards: auto took /gateway/bot from the simulator');
    assert.equal(client.guilds.cache.size, env.sim.guildIds.length, 'every guild of every shard is cached');
    assert.deepEqual([...client.guilds.cache.keys()].sort(), [...env.sim.guildIds].sort());
    assert.ok(client.user, 'READY filled client.user');
    assert.equal(env.sim.stats.identifies, 2);
    // fetchStatus: a Collection (from @discordjs/collection) of WebSocketShardStatus.Ready (3).
    const status = await (client.ws as unknown as { _ws: { fetchStatus(): Promise<Map<number, number>> } })._ws.fetchStatus();
    assert.deepEqual([...status.entries()].sort(), [
      [0, 3],
      [1, 3],
    ]);
    assert.equal(typeof (status as unknown as { mapValues?: unknown }).mapValues, 'function', 'a discord.js Collection');
    // ping: the HeartbeatComplete events reach discord.js's shards.
    await env.until(() => client.ws.shards.every((sh) => sh.ping >= 0), 'a heartbeat ACK on every shard');
    assert.ok(Number.isFinite(client.ws.ping) && client.ws.ping >= 0);
    assert.ok(!inspect(s).includes(TOKEN) && !JSON.stringify(s).includes(TOKEN), 'the token never shows');
    await env.run(client.destroy(), 'destroy');
    assert.equal(s.cluster, null, 'destroy released the cluster');
    assert.equal(env.sim.connections().length, 0, 'every socket closed');
  });

  it('delivers injected MESSAGE_CREATEs once and in order across op 7, a dropped connection and a zombie (resumes)', async () => {
    // Split zlib frames: the stock async inflate is where peers reordered events (lessons doc).
    const env = await simulator({ frameSplit: 64 });
    const { client } = djsClient(env);
    await login(env, client);
    const guildId = env.sim.guildIds[0]!;
    const shardId = client.guilds.cache.get(guildId)!.shardId;
    const seen: string[] = [];
    client.on('messageCreate', (m: Message) => seen.push(m.content));
    const resumes: number[] = [];
    client.on('shardResume', (id) => resumes.push(id));
    const identifies = env.sim.stats.identifies;
    const N = 400;
    let sent = 0;
    const burst = (n: number): void => {
      for (let i = 0; i < n; i++, sent++) env.sim.dispatch({ guildId }, 'MESSAGE_CREATE', textMessage(guildId, sent));
    };
    burst(100);
    env.sim.sendReconnect(shardId); // op 7 with events in flight: they are replayed after the RESUME
    burst(100);
    await env.until(() => resumes.length >= 1, 'the resume after op 7');
    env.sim.terminate(shardId); // abrupt drop (1006)
    burst(100);
    await env.until(() => resumes.length >= 2, 'the resume after the drop');
    env.sim.setAcks(shardId, false); // a zombie connection: no heartbeat ACKs
    burst(100);
    await env.until(() => seen.length >= N && resumes.length >= 3, `${N} messages and a third resume`);
    await driveFor(env.clock as ManualClock, 5_000, { activity: simActivity(env.sim) }); // a duplicate would arrive now
    assert.deepEqual(
      seen,
      Array.from({ length: N }, (_, i) => `m${i}`),
      'every message once, in order',
    );
    assert.equal(env.sim.stats.identifies, identifies, 'no new session: every fault resumed');
    assert.ok(env.sim.stats.resumes >= 3);
    assert.equal(client.guilds.cache.size, env.sim.guildIds.length, 'the guild cache survived');
    assert.ok(client.isReady(), 'the client stayed ready');
  });

  it('sends commands: setPresence reaches the simulator as op 3', async () => {
    const env = await simulator();
    const { client } = djsClient(env);
    await login(env, client);
    const got = new Promise<unknown>((resolve) => env.sim.on('payload', (p) => p.op === 3 && resolve(p.d)));
    client.user!.setPresence({ status: 'idle', activities: [{ name: 'tests' }] });
    const d = (await env.run(got, 'op 3')) as { status: string; activities: { name: string }[] };
    assert.equal(d.status, 'idle');
    assert.equal(d.activities[0]?.name, 'tests');
    assert.equal(env.sim.connections().length, 2, 'the command did not cost a connection');
  });

  it('runs the shards in a worker thread (workers: 1) with the same events, in order', async () => {
    const env = await simulator({ shards: 1 }, true); // a worker thread cannot share a manual clock
    let built: ShardlineStrategy | null = null;
    const client = new Client({
      intents: INTENTS,
      rest: { api: env.api },
      ws: { buildStrategy: (m) => (built = new ShardlineStrategy(m, { clock: env.clock, gatewayUrl: env.sim.url, workers: 1, shardOptions: () => SHARD_OPTS })) },
    });
    cleanups.push(() => client.destroy());
    await login(env, client);
    assert.equal(built!.cluster!.status()[0]!.worker, 0, 'the shard runs in worker 0');
    assert.equal(client.guilds.cache.size, env.sim.guildIds.length);
    const guildId = env.sim.guildIds[1]!;
    const seen: string[] = [];
    client.on('messageCreate', (m: Message) => seen.push(m.content));
    for (let i = 0; i < 100; i++) env.sim.dispatch({ guildId }, 'MESSAGE_CREATE', textMessage(guildId, i));
    await env.until(() => seen.length >= 100, '100 messages');
    assert.deepEqual(
      seen,
      Array.from({ length: 100 }, (_, i) => `m${i}`),
    );
    await client.destroy();
  });

  it('buildIdentifyThrottler / identifyQueue: two clients (two processes of one bot) share one identify queue', async () => {
    // One lane, one IDENTIFY per 5 s (virtual): the simulator answers a faster second IDENTIFY with op 9. The queue
    // spaces them 15 s apart, so event-loop lag of up to 100 real ms (10 s virtual at this speed) cannot fail the test.
    const env = await simulator({ shards: 2, maxConcurrency: 1, identifyWindow: 5000 });
    const queue = new LocalIdentifyQueue({ maxConcurrency: 1, window: 15_000, clock: env.clock });
    const identifies: { shardId: number; at: number; accepted: boolean }[] = [];
    env.sim.on('identify', (e) => identifies.push({ shardId: e.shardId, at: env.clock.now(), accepted: e.accepted }));
    const a = djsClient(env, { shards: [0], shardCount: 2, buildIdentifyThrottler: shardlineIdentifyThrottler(queue) });
    const b = djsClient(env, { shards: [1], shardCount: 2, identifyQueue: queue }); // the strategy's own option
    await env.run(Promise.all([login(env, a.client), login(env, b.client)]), 'both logins');
    assert.equal(identifies.length, 2, `one IDENTIFY per shard, none refused: ${JSON.stringify(identifies)}`);
    assert.ok(identifies.every((e) => e.accepted));
    const gap = Math.abs(identifies[1]!.at - identifies[0]!.at);
    assert.ok(gap >= 5000, `the second IDENTIFY waited for the shared lane (${gap} virtual ms apart)`);
    assert.equal(a.client.guilds.cache.size + b.client.guilds.cache.size, env.sim.guildIds.length);
  });
});

describe('ShardlineStrategy with a bare @discordjs/ws 2.x WebSocketManager (2.x events)', () => {
  it('emits positional 2.x events, sends, reports status, and connects again after destroy', async () => {
    const env = await simulator({ shards: 1 });
    const rest = restFor(env.api);
    let strategy: ShardlineStrategy | null = null;
    const clusters: Cluster[] = [];
    const manager = new WebSocketManager2({
      token: TOKEN,
      intents: INTENTS,
      rest,
      buildStrategy: (m) => (strategy = new ShardlineStrategy(m, { clock: env.clock, gatewayUrl: env.sim.url, shardOptions: () => SHARD_OPTS, onCluster: (c) => clusters.push(c) })),
    });
    cleanups.push(async () => manager.destroy());
    assert.equal(strategy!.eventShape, 'v2');
    const order: string[] = [];
    const contents: string[] = [];
    let readyArgs: unknown[] = [];
    manager.on('ready', (...args) => {
      readyArgs = args;
      order.push('ready');
    });
    manager.on('dispatch', (payload, shardId) => {
      assert.equal(shardId, 0);
      assert.equal(payload.op, 0);
      if (payload.t === 'READY') order.push('READY');
      if (payload.t === 'MESSAGE_CREATE') contents.push(payload.d.content);
    });
    const closed: unknown[][] = [];
    manager.on('closed', (...args) => closed.push(args));
    await env.run(manager.connect(), 'connect');
    assert.deepEqual(order, ['ready', 'READY'], 'ready before READY, as @discordjs/ws emits them');
    assert.equal(readyArgs.length, 2);
    assert.equal((readyArgs[0] as { session_id?: unknown }).session_id !== undefined, true, 'ready(data, shardId)');
    assert.equal(readyArgs[1], 0);
    const guildId = env.sim.guildIds[0]!;
    for (let i = 0; i < 50; i++) env.sim.dispatch({ guildId }, 'MESSAGE_CREATE', textMessage(guildId, i));
    await env.until(() => contents.length >= 50, '50 messages');
    assert.deepEqual(
      contents,
      Array.from({ length: 50 }, (_, i) => `m${i}`),
    );
    const status = await manager.fetchStatus();
    assert.equal(status.get(0), 3);
    const op3 = new Promise<unknown>((resolve) => env.sim.on('payload', (p) => p.op === 3 && resolve(p.d)));
    await manager.send(0, { op: 3, d: { since: null, activities: [], status: 'dnd' as never, afk: false } });
    assert.equal(((await env.run(op3, 'op 3')) as { status: string }).status, 'dnd');
    // An op 7: closed(code, shardId) positional, then a resume.
    const resumed = once(manager, 'resumed');
    env.sim.sendReconnect(0);
    const [shardId] = await env.run(resumed, 'resumed');
    assert.equal(shardId, 0);
    assert.ok(closed.length >= 1 && typeof closed[0]![0] === 'number' && closed[0]![1] === 0, 'closed(code, shardId)');
    // destroy, then connect again: a fresh set of shards.
    await env.run(manager.destroy(), 'destroy');
    assert.equal(env.sim.connections().length, 0);
    assert.equal(strategy!.cluster, null);
    // @discordjs/ws's own identify throttler holds the second IDENTIFY for 5 real s: time moves 1 virtual ms a step
    // meanwhile, so it runs no faster than real time and no handshake deadline passes while the manager waits
    await drive(env.clock as ManualClock, manager.connect(), { what: 'connect again', activity: simActivity(env.sim), step: 1 });
    assert.equal((await manager.fetchStatus()).get(0), 3);
    assert.equal(env.sim.stats.identifies, 2);
    assert.equal(clusters.length, 2, 'onCluster: told about each spawn');
    assert.equal(clusters[1]!.status()[0]!.state, 'ready');
    assert.ok(clusters[1] === (strategy as ShardlineStrategy | null)?.cluster, 'the running one');
    await env.run(manager.destroy(), 'destroy');
  });

  it('resumes stored sessions (sessions option); without READY it says a discord.js Client would not become ready', async () => {
    const env = await simulator({ shards: 1 });
    const make = (sessions?: Record<number, { sessionId: string; sequence: number; resumeUrl: string }>) => {
      let strategy: ShardlineStrategy | null = null;
      const manager = new WebSocketManager2({
        token: TOKEN,
        intents: INTENTS,
        rest: restFor(env.api),
        buildStrategy: (m) => (strategy = new ShardlineStrategy(m, { clock: env.clock, gatewayUrl: env.sim.url, sessions, shardOptions: () => SHARD_OPTS })),
      });
      cleanups.push(async () => manager.destroy());
      return { manager, strategy: strategy! };
    };
    const first = make();
    await env.run(first.manager.connect(), 'first connect');
    const guildId = env.sim.guildIds[0]!;
    // The first process stops keeping its session (as a deploy would, with a session store), then events keep coming.
    const sessions = await env.run(first.strategy.cluster!.close({ resumable: true }), 'resumable close');
    for (let i = 0; i < 5; i++) env.sim.dispatch({ guildId }, 'MESSAGE_CREATE', textMessage(guildId, i));
    const second = make(sessions);
    const events: string[] = [];
    const debug: string[] = [];
    second.manager.on('ready', () => events.push('ready'));
    second.manager.on('resumed', () => events.push('resumed'));
    second.manager.on('dispatch', (p) => p.t === 'MESSAGE_CREATE' && events.push(p.d.content));
    second.manager.on('debug', (m) => debug.push(m));
    await env.run(second.manager.connect(), 'second connect');
    await env.until(() => events.length >= 6, 'the replayed messages');
    assert.equal(env.sim.stats.identifies, 1, 'the second manager resumed instead of identifying');
    // The gateway replays what was missed, then sends RESUMED.
    assert.deepEqual(events, ['m0', 'm1', 'm2', 'm3', 'm4', 'resumed'], 'the replay, once and in order, and no READY');
    assert.ok(
      debug.some((m) => /no READY/.test(m)),
      'the lessons-doc finding is reported: a discord.js Client needs READY',
    );
    await env.run(first.manager.destroy(), 'destroy');
    await env.run(second.manager.destroy(), 'destroy');
  });

  it('send() rejects for an unknown shard without an unhandled rejection, and reports it as an error event', async () => {
    const env = await simulator({ shards: 1 });
    const manager = new WebSocketManager2({
      token: TOKEN,
      intents: INTENTS,
      rest: restFor(env.api),
      buildStrategy: (m) => new ShardlineStrategy(m, { clock: env.clock, gatewayUrl: env.sim.url, shardOptions: () => SHARD_OPTS }),
    });
    cleanups.push(async () => manager.destroy());
    await env.run(manager.connect(), 'connect');
    const errors: unknown[][] = [];
    manager.on('error', (...args) => errors.push(args));
    await assert.rejects(Promise.resolve(manager.send(5, { op: 1, d: null })), { code: 'UNKNOWN_SHARD' });
    void manager.send(7, { op: 1, d: null }); // not awaited, as discord.js does: must not be an unhandled rejection
    await new Promise((r) => setImmediate(r));
    assert.equal(errors.length, 2);
    assert.equal(errors[0]![1], 5, 'error(error, shardId)');
    await env.run(manager.destroy(), 'destroy');
  });
});

describe('ShardlineStrategy options and misuse (typed errors, no connection made)', () => {
  const rest = restFor('http://127.0.0.1:9/api');
  it('rejects bad options and a non-manager with INVALID_OPTION', () => {
    assert.throws(() => new ShardlineStrategy({} as never), { code: 'INVALID_OPTION' });
    const build = (options: object) => () => new WebSocketManager2({ token: TOKEN, intents: INTENTS, rest, buildStrategy: (m) => new ShardlineStrategy(m, options as never) });
    assert.throws(build({ compression: 'gzip' }), { code: 'INVALID_OPTION', message: /compression/ });
    assert.throws(build({ workers: -1 }), { code: 'INVALID_OPTION', message: /workers/ });
    assert.throws(build({ gatewayUrl: 'http://x' }), { code: 'INVALID_OPTION', message: /gatewayUrl/ });
    assert.throws(build({ identifyQueue: {} }), { code: 'INVALID_OPTION', message: /identifyQueue/ });
    assert.throws(build({ eventShape: 'v3' }), { code: 'INVALID_OPTION', message: /eventShape/ });
    assert.throws(build({ onCluster: 1 }), { code: 'INVALID_OPTION', message: /onCluster/ });
    assert.throws(() => new ShardlineIdentifyThrottler({} as never), TypeError);
  });

  it('connect() before spawn() is NOT_STARTED; a 2.x manager without a token is INVALID_TOKEN; send() without shards rejects', async () => {
    let strategy: ShardlineStrategy | null = null;
    const manager = new WebSocketManager2({ intents: INTENTS, rest, buildStrategy: (m) => (strategy = new ShardlineStrategy(m, { eventShape: 'v2' })) });
    await assert.rejects(strategy!.connect(), { code: 'NOT_STARTED' });
    await assert.rejects(strategy!.spawn([0]), { code: 'INVALID_TOKEN' });
    manager.on('error', () => undefined);
    await assert.rejects(strategy!.send(0, { op: 1, d: null }), { code: 'NOT_STARTED' });
    assert.equal((await strategy!.fetchStatus()).size, 0);
  });
});
