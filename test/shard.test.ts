import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { inspect } from 'node:util';
import { GatewayError, SendError } from '../src/errors.js';
import { Intents } from '../src/intents.js';
import type { DispatchEvent, ReadyData } from '../src/events.js';
import { TOKEN, delay, failOnUnhandledRejections, harness, next, until, waitState, type Harness } from './helpers/setup.js';

failOnUnhandledRejections();

/** A guild MESSAGE_CREATE in the bot's first guild (DM-context events would need DirectMessages). */
const MSG = (n: number, h: Harness) => ({ id: String(1000 + n), channel_id: '1', content: `m${n}`, author: { id: '2' }, guild_id: h.sim.guildIds[0] });

function collect(shard: { on(e: 'dispatch', l: (e: DispatchEvent) => void): unknown }, type?: string): DispatchEvent[] {
  const seen: DispatchEvent[] = [];
  shard.on('dispatch', (e) => {
    if (!type || e.type === type) seen.push(e);
  });
  return seen;
}

test('identifies after HELLO, READY resolves connect, heartbeats carry the sequence', async () => {
  const h = await harness();
  try {
    const shard = h.shard({ intents: Intents.Guilds | Intents.GuildMessages, largeThreshold: 100, presence: { since: null, activities: [], status: 'idle', afk: false } });
    const identify = once(h.sim, 'identify');
    await shard.connect();
    assert.equal(shard.state, 'ready');
    const [ev] = (await identify) as [{ shardId: number; total: number; intents: number; payload: Record<string, unknown> }];
    assert.equal(ev.shardId, 0);
    assert.equal(ev.total, 1);
    assert.equal(ev.intents, 513);
    assert.equal(ev.payload.large_threshold, 100);
    assert.deepEqual((ev.payload.properties as Record<string, string>).browser, 'shardline');
    assert.equal((ev.payload.presence as { status: string }).status, 'idle');
    assert.ok(shard.session?.sessionId);
    assert.match(shard.session!.resumeUrl, /^ws:\/\//);
    // the first client payload on the connection is the IDENTIFY or a heartbeat, and none came before HELLO
    const received = h.sim.received(0);
    assert.ok(received.length >= 1);
    assert.ok(received.every((p) => p.op === 1 || p.op === 2));
    // heartbeat carries the last sequence
    h.sim.dispatch(0, 'MESSAGE_CREATE', MSG(1, h));
    const seq = shard.session!.sequence;
    await until(() => h.sim.received(0).some((p) => p.op === 1 && typeof p.d === 'number' && p.d >= seq), 'heartbeat with seq');
    await until(() => shard.latency.average !== null, 'latency sample');
    assert.ok(shard.latency.recent.length >= 1);
  } finally {
    await h.stop();
  }
});

test('dispatches arrive typed and in order, on the emitter and the iterator', async () => {
  const h = await harness();
  try {
    const shard = h.shard();
    const it = shard.events();
    const seen = collect(shard, 'MESSAGE_CREATE');
    await shard.connect();
    for (let i = 0; i < 50; i++) h.sim.dispatch(0, 'MESSAGE_CREATE', MSG(i, h));
    await until(() => seen.length === 50, '50 messages');
    assert.deepEqual(
      seen.map((e) => (e.data as { content: string }).content),
      Array.from({ length: 50 }, (_, i) => `m${i}`),
    );
    for (let i = 1; i < seen.length; i++) assert.equal(seen[i]!.sequence, seen[i - 1]!.sequence + 1);
    const fromIt: string[] = [];
    for await (const e of it) {
      if (e.type === 'MESSAGE_CREATE') fromIt.push(e.data.content);
      if (fromIt.length === 50) break;
    }
    assert.deepEqual(
      fromIt,
      seen.map((e) => (e.data as { content: string }).content),
    );
  } finally {
    await h.stop();
  }
});

test('filtered dispatches are never parsed, but the sequence advances', async () => {
  const h = await harness({ guilds: 1 });
  const realParse = JSON.parse;
  let typingParses = 0;
  let messageParses = 0;
  JSON.parse = ((text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown) => {
    if (typeof text === 'string' && text.includes('"t":"TYPING_START"')) typingParses++;
    if (typeof text === 'string' && text.includes('"t":"MESSAGE_CREATE"')) messageParses++;
    return realParse(text, reviver);
  }) as typeof JSON.parse;
  try {
    const shard = h.shard({ intents: Intents.Guilds | Intents.GuildMessages | Intents.GuildMessageTyping | Intents.MessageContent, events: ['MESSAGE_CREATE'] });
    const seen = collect(shard);
    await shard.connect();
    for (let i = 0; i < 20; i++) {
      h.sim.dispatch(0, 'TYPING_START', { channel_id: '1', user_id: '2', timestamp: 1, guild_id: h.sim.guildIds[0] });
      h.sim.dispatch(0, 'MESSAGE_CREATE', MSG(i, h));
    }
    await until(() => seen.length === 20, 'messages');
    assert.ok(seen.every((e) => e.type === 'MESSAGE_CREATE'));
    assert.equal(typingParses, 0, 'TYPING_START was parsed');
    assert.ok(messageParses >= 20, 'the parse counter works');
    const simSeq = h.sim.sessions().find((s) => s.shardId === 0)!.seq;
    assert.equal(shard.session!.sequence, simSeq);
    assert.equal(shard.counters.filtered >= 20, true);
  } finally {
    JSON.parse = realParse;
    await h.stop();
  }
});

test('zombie connection (no ACK, no traffic) is closed and resumed; missed events replayed once, in order', async () => {
  const h = await harness();
  try {
    const shard = h.shard();
    const seen = collect(shard, 'MESSAGE_CREATE');
    await shard.connect();
    h.sim.dispatch(0, 'MESSAGE_CREATE', MSG(0, h));
    await until(() => seen.length === 1, 'first');
    h.sim.setAcks(0, false);
    const resumed = next(shard, 'resumed');
    const disconnected = next(shard, 'disconnected');
    const [d] = (await disconnected) as [{ cause: string; action: string }];
    assert.match(d.cause, /zombie/);
    assert.equal(d.action, 'resume');
    for (let i = 1; i <= 5; i++) h.sim.dispatch(0, 'MESSAGE_CREATE', MSG(i, h)); // buffered while down
    h.sim.setAcks('all', true);
    await resumed;
    for (let i = 6; i <= 8; i++) h.sim.dispatch(0, 'MESSAGE_CREATE', MSG(i, h));
    await until(() => seen.length === 9, 'all 9');
    assert.deepEqual(
      seen.map((e) => (e.data as { content: string }).content),
      Array.from({ length: 9 }, (_, i) => `m${i}`),
    );
    assert.equal(h.sim.stats.identifies, 1, 'no second IDENTIFY');
    assert.ok(h.sim.stats.resumes >= 1);
    assert.equal(shard.counters.zombies, 1);
  } finally {
    await h.stop();
  }
});

test('op 7 resumes on resume_gateway_url with the same query string', async () => {
  const h = await harness();
  try {
    const shard = h.shard();
    await shard.connect();
    const first = h.sim.connections(0)[0]!;
    const resumed = next(shard, 'resumed');
    assert.ok(h.sim.sendReconnect(0));
    await resumed;
    const conn = h.sim.connections(0).at(-1)!;
    assert.equal(conn.resumeUrlUsed, true);
    assert.notEqual(conn.id, first.id);
    assert.deepEqual(conn.query, first.query);
    assert.equal(conn.query.compress, 'zlib-stream');
    assert.equal(h.sim.stats.identifies, 1);
  } finally {
    await h.stop();
  }
});

test('bad token stops the shard with a clear error and no retry; the token is never shown', async () => {
  const h = await harness();
  try {
    const secret = 'NOT-THE-RIGHT-TOKEN-0123456789.abcdef';
    const shard = h.shard({ token: `Bot ${secret}` });
    const logs: string[] = [];
    shard.on('debug', (e) => logs.push(e.message));
    const err = await shard.connect().then(
      () => assert.fail('connected with a bad token'),
      (e: unknown) => e as GatewayError,
    );
    assert.ok(err instanceof GatewayError);
    assert.equal(err.closeCode, 4004);
    assert.match(err.message, /token/);
    assert.equal(shard.state, 'fatal');
    const connections = h.sim.stats.connections;
    await delay(100);
    assert.equal(h.sim.stats.connections, connections);
    for (const line of [...logs, ...h.logs, err.message, String(err.stack)]) {
      assert.ok(!line.includes(secret), `token leaked: ${line}`);
      assert.ok(!line.includes(TOKEN), `token leaked: ${line}`);
    }
    assert.ok(logs.length > 3, 'debug lines were produced');
  } finally {
    await h.stop();
  }
});

test('regression: the token is not reachable through util.inspect, console.log or JSON.stringify of a shard (live or rejected)', async () => {
  const h = await harness();
  try {
    const live = h.shard();
    const events: unknown[] = [];
    live.on('event', (e) => events.push(e));
    await live.connect();
    const secret = 'NOT-THE-RIGHT-TOKEN-0123456789.abcdef';
    const rejected = h.shard({ token: `Bot ${secret}` });
    const err = await rejected.connect().then(
      () => assert.fail('connected with a bad token'),
      (e: unknown) => e as GatewayError,
    );
    const printed: string[] = [];
    const original = console.log;
    console.log = (...args: unknown[]) => void printed.push(inspect(args[0], { depth: 20 }));
    try {
      console.log(live);
      console.log(rejected);
    } finally {
      console.log = original;
    }
    for (const [shard, token] of [
      [live, TOKEN],
      [rejected, secret],
    ] as const) {
      const views = [
        inspect(shard, { depth: 20, showHidden: true }),
        inspect(shard, { depth: 20, showHidden: true, customInspect: false, getters: true }),
        JSON.stringify(shard),
        ...printed,
        inspect(events, { depth: 20 }),
        inspect(err, { depth: 20, showHidden: true }),
        JSON.stringify(err),
      ];
      for (const view of views) assert.ok(!view.includes(token), `token reachable: ${view.slice(0, 300)}`);
    }
    assert.match(inspect(live), /Shard .*id: 0.*state: 'ready'/s, 'inspect still shows a useful summary');
    assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(live)) as object).sort(), ['id', 'intents', 'sequence', 'sessionId', 'state', 'total']);
  } finally {
    await h.stop();
  }
});

test('bad options fail fast with typed errors', () => {
  assert.throws(() => new (require_shard())({ token: '', intents: 1 }), /token/);
  assert.throws(() => new (require_shard())({ token: 'x', intents: -1 }), /intents/);
  assert.throws(() => new (require_shard())({ token: 'x', intents: 1 << 27 }), /intents/);
  assert.throws(() => new (require_shard())({ token: 'x', intents: 1, id: 2, total: 2 }), /shard id/);
  assert.throws(() => new (require_shard())({ token: 'x', intents: 1, largeThreshold: 10 }), /largeThreshold/);
});
import { Shard } from '../src/shard.js';
function require_shard() {
  return Shard;
}

test('a flood of commands never delays a heartbeat and never trips 4008', async () => {
  // A smaller limit (30 per 15 s) keeps the test short; the logic is the same as 120 per 60 s.
  const rateLimit = { limit: 30, window: 15_000 };
  const h = await harness({ heartbeatInterval: 5000, guilds: 1, rateLimit }, 0.05);
  try {
    const shard = h.shard({ rateLimit });
    const ready = next(shard, 'ready');
    await shard.connect();
    const guildId = ((await ready)[0] as ReadyData).guilds[0]!.id;
    const sends = Array.from({ length: 60 }, () => shard.requestSoundboardSounds([guildId]));
    await Promise.all(sends);
    assert.equal(h.sim.stats.closesByCode['4008'] ?? 0, 0, 'no 4008');
    assert.equal(shard.state, 'ready');
    assert.equal(shard.counters.zombies, 0);
    assert.equal(shard.counters.reconnects, 0);
    await until(() => h.sim.received(0).filter((p) => p.op === 31).length === 60, 'all 60 commands at the gateway');
    const received = h.sim.received(0);
    assert.ok(received.filter((p) => p.op === 1).length >= 6, 'heartbeats kept flowing during the flood');
    // No 15 s window on the connection holds more than 30 client payloads.
    const times = received.map((p) => p.at).sort((a, b) => a - b);
    for (let i = 0; i + 30 < times.length; i++) assert.ok(times[i + 30]! - times[i]! >= 15_000, `window at ${i}`);
  } finally {
    await h.stop();
  }
});

test('payloads over 4096 bytes are rejected before sending', async () => {
  const h = await harness();
  try {
    const shard = h.shard();
    await shard.connect();
    await assert.rejects(
      shard.send({ op: 3, d: { since: null, activities: [{ name: 'x'.repeat(5000), type: 0 }], status: 'online', afk: false } }),
      (e: unknown) => e instanceof SendError && e.code === 'PAYLOAD_TOO_LARGE',
    );
  } finally {
    await h.stop();
  }
});

for (const [name, simOpts, shardOpts] of [
  ['zlib-stream with messages split into 64-byte websocket frames', { frameSplit: 64 }, {}],
  ['plain JSON without transport compression', {}, { compression: false as const }],
] as const) {
  test(name, async () => {
    const h = await harness({ ...simOpts, guilds: 3 });
    try {
      const shard = h.shard({ ...shardOpts, intents: Intents.Guilds | Intents.GuildMessages | Intents.MessageContent });
      const guilds = collect(shard, 'GUILD_CREATE');
      const seen = collect(shard, 'MESSAGE_CREATE');
      await shard.connect();
      await until(() => guilds.length === 3, 'GUILD_CREATEs');
      const big = 'x'.repeat(200_000);
      h.sim.dispatch(0, 'MESSAGE_CREATE', { ...MSG(1, h), content: big });
      h.sim.dispatch(0, 'MESSAGE_CREATE', MSG(2, h));
      await until(() => seen.length === 2, 'messages');
      assert.equal((seen[0]!.data as { content: string }).content.length, 200_000);
    } finally {
      await h.stop();
    }
  });
}

test('a corrupt compressed frame is reported, the connection is replaced and resumed, nothing lost', async () => {
  const h = await harness();
  try {
    const shard = h.shard();
    const errors: Error[] = [];
    shard.on('error', (e) => errors.push(e));
    const seen = collect(shard, 'MESSAGE_CREATE');
    await shard.connect();
    h.sim.dispatch(0, 'MESSAGE_CREATE', MSG(0, h));
    await until(() => seen.length === 1, 'first');
    h.sim.corruptNextFrame(0);
    h.sim.dispatch(0, 'MESSAGE_CREATE', MSG(1, h));
    await next(shard, 'resumed');
    h.sim.dispatch(0, 'MESSAGE_CREATE', MSG(2, h));
    await until(() => seen.length === 3, 'all three');
    assert.deepEqual(
      seen.map((e) => (e.data as { content: string }).content),
      ['m0', 'm1', 'm2'],
    );
    assert.ok(errors.length >= 1);
  } finally {
    await h.stop();
  }
});

test('malformed JSON never crashes: reported as errors, the shard recovers; unknown ops are ignored and counted', async () => {
  const h = await harness();
  try {
    const shard = h.shard();
    const errors: Error[] = [];
    shard.on('error', (e) => errors.push(e));
    await shard.connect();
    h.sim.sendRaw(0, '{"op":99,"d":null}');
    await until(() => shard.counters.unknownOps === 1, 'unknown op counted');
    assert.equal(errors.length, 0, 'an unknown op is not an error: the protocol grows');
    assert.equal(shard.state, 'ready');
    const resumed = next(shard, 'resumed');
    h.sim.sendRaw(0, '{"t":"MESSAGE_CREATE","s":999,"op":0,"d":{"broken":');
    await resumed;
    h.sim.sendRaw(0, 'not json at all');
    await next(shard, 'resumed');
    assert.equal(shard.state, 'ready');
    assert.ok(errors.length >= 2);
  } finally {
    await h.stop();
  }
});

test('close({ resumable: true }) hands back a session that a new shard resumes without IDENTIFY or loss', async () => {
  const h = await harness();
  try {
    const a = h.shard();
    const seenA = collect(a, 'MESSAGE_CREATE');
    await a.connect();
    for (let i = 0; i < 3; i++) h.sim.dispatch(0, 'MESSAGE_CREATE', MSG(i, h));
    await until(() => seenA.length === 3, 'a got 3');
    const session = await a.close({ resumable: true });
    assert.ok(session);
    assert.equal(a.state, 'closed');
    for (let i = 3; i < 6; i++) h.sim.dispatch(0, 'MESSAGE_CREATE', MSG(i, h)); // while no process runs the shard
    const b = h.shard({ session });
    const seenB = collect(b, 'MESSAGE_CREATE');
    await b.connect();
    await until(() => seenB.length === 3, 'b got the 3 missed');
    assert.deepEqual(
      seenB.map((e) => (e.data as { content: string }).content),
      ['m3', 'm4', 'm5'],
    );
    assert.equal(h.sim.stats.identifies, 1);
    // A plain close ends the session: no session is returned.
    assert.equal(await b.close(), null);
  } finally {
    await h.stop();
  }
});

test('requestGuildMembers returns the chunks matched by nonce', async () => {
  const h = await harness({ guilds: 1, guildMemberCount: 2500 });
  try {
    const shard = h.shard({ intents: Intents.Guilds | Intents.GuildMembers, events: ['MESSAGE_CREATE'], memberRequestTimeout: 600_000 }); // 2500 members take real time on a loaded machine; the scaled clock makes 30 s only 300 ms
    const ready = next(shard, 'ready');
    await shard.connect();
    const guildId = ((await ready)[0] as ReadyData).guilds[0]!.id;
    const chunks = await shard.requestGuildMembers({ guild_id: guildId, query: '', limit: 0 });
    assert.equal(chunks.length, 3);
    assert.equal(
      chunks.reduce((n, c) => n + c.members.length, 0),
      2500,
    );
    const iterated: number[] = [];
    for await (const c of shard.requestGuildMembers({ guild_id: guildId, query: 'a', limit: 10 })) iterated.push(c.chunk_index);
    assert.deepEqual(iterated, [0]);
  } finally {
    await h.stop();
  }
});

test('close releases every timer and socket', async () => {
  const before = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').length;
  const h = await harness();
  const shard = h.shard();
  await shard.connect();
  h.sim.setAcks(0, false);
  await waitState(shard, 'reconnecting');
  await shard.close();
  await h.sim.stop();
  await delay(50);
  const after = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').length;
  assert.ok(after <= before, `resources before ${before}, after ${after}: ${process.getActiveResourcesInfo().join(',')}`);
});

test('a slow events() consumer pauses the socket instead of buffering without bound; nothing is lost', async () => {
  const h = await harness();
  try {
    const shard = h.shard({ eventBufferSize: 10, events: ['MESSAGE_CREATE'] });
    const it = shard.events();
    const paused: string[] = [];
    shard.on('debug', (e) => {
      if (/pausing the socket|resuming the socket/.test(e.message)) paused.push(e.message);
    });
    await shard.connect();
    for (let i = 0; i < 200; i++) h.sim.dispatch(0, 'MESSAGE_CREATE', MSG(i, h));
    await until(() => paused.length >= 1, 'pause');
    const got: string[] = [];
    for await (const e of it) {
      if (e.type === 'MESSAGE_CREATE') got.push(e.data.content);
      if (got.length === 200) break;
      if (got.length % 20 === 0) await delay(5);
    }
    assert.deepEqual(
      got,
      Array.from({ length: 200 }, (_, i) => `m${i}`),
    );
    assert.ok(paused.some((l) => /resuming the socket/.test(l)));
    assert.equal(shard.state, 'ready');
  } finally {
    await h.stop();
  }
});

test('events() ends on close and throws the GatewayError of a fatal close', async () => {
  const h = await harness();
  try {
    const shard = h.shard();
    const it = shard.events();
    await shard.connect();
    const done = (async () => {
      for await (const _ of it) void _;
      return 'ended';
    })();
    await shard.close();
    assert.equal(await done, 'ended');

    const fatal = h.shard();
    const it2 = fatal.events();
    await fatal.connect();
    const failed = (async () => {
      for await (const _ of it2) void _;
    })();
    h.sim.closeConnection(0, 4014);
    await assert.rejects(failed, (e: unknown) => e instanceof GatewayError && e.closeCode === 4014);
  } finally {
    await h.stop();
  }
});

test('pause() stops reading the socket, resume() delivers what waited, in order', async () => {
  const h = await harness();
  try {
    const shard = h.shard({ events: ['MESSAGE_CREATE'] });
    const seen = collect(shard);
    await shard.connect();
    shard.pause();
    assert.equal(shard.paused, true);
    for (let i = 0; i < 20; i++) h.sim.dispatch(0, 'MESSAGE_CREATE', MSG(i, h));
    await delay(100);
    assert.equal(seen.length, 0, 'nothing read while paused');
    shard.resume();
    await until(() => seen.length === 20, 'all 20 after resume');
    assert.deepEqual(
      seen.map((e) => (e.data as { content: string }).content),
      Array.from({ length: 20 }, (_, i) => `m${i}`),
    );
  } finally {
    await h.stop();
  }
});

for (const compression of ['zlib-stream', 'zstd-stream'] as const) {
  test(`${compression}: shards of one process share the transient inflate buffer; every dispatch of every size arrives intact, in order`, async (t) => {
    if (compression === 'zstd-stream') {
      try {
        await import('zstd-napi');
      } catch {
        t.skip('zstd-napi is not installed');
        return;
      }
    }
    const h = await harness({ shards: 2, guilds: 4 });
    try {
      const intents = Intents.Guilds | Intents.GuildMessages | Intents.MessageContent;
      const shards = [0, 1].map((id) => h.shard({ id, total: 2, compression, intents }));
      const seen = shards.map((s) => collect(s, 'MESSAGE_CREATE'));
      await Promise.all(shards.map((s) => s.connect()));
      // Sizes around the 32 KiB slab and 64 KiB scratch, interleaved between the two shards' sockets.
      const sizes = [10, 900, 31_000, 33_000, 70_000, 5, 200_000, 64 * 1024, 1200, 7];
      const want: string[][] = [[], []];
      for (let i = 0; i < 40; i++) {
        for (const id of [0, 1]) {
          const content = `${id}:${i}:` + String.fromCharCode(97 + ((i + id) % 26)).repeat(sizes[(i + id) % sizes.length]!);
          want[id]!.push(content);
          h.sim.dispatch(id, 'MESSAGE_CREATE', { ...MSG(i, h), content });
        }
      }
      await until(() => seen[0]!.length === 40 && seen[1]!.length === 40, 'all messages', 15_000);
      for (const id of [0, 1]) {
        assert.deepEqual(
          seen[id]!.map((e) => (e.data as { content: string }).content),
          want[id],
          `shard ${id}`,
        );
        for (let i = 1; i < 40; i++) assert.equal(seen[id]![i]!.sequence, seen[id]![i - 1]!.sequence + 1);
      }
    } finally {
      await h.stop();
    }
  });
}

test('forwardRaw hands wanted dispatches (GUILD_CREATE too) over unparsed; READY is still parsed and emitted', async () => {
  const h = await harness({ guilds: 2 });
  const realParse = JSON.parse;
  let messageParses = 0;
  JSON.parse = ((text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown) => {
    if (typeof text === 'string' && text.includes('"t":"MESSAGE_CREATE"')) messageParses++;
    return realParse(text, reviver);
  }) as typeof JSON.parse;
  try {
    const raw: [string, number, string][] = [];
    const shard = h.shard({ forwardRaw: (type, seq, json) => raw.push([type, seq, json]) });
    const emitted = collect(shard);
    await shard.connect();
    await until(() => raw.filter(([t]) => t === 'GUILD_CREATE').length === 2, 'guilds forwarded');
    const before = raw.length;
    for (let i = 0; i < 5; i++) h.sim.dispatch(0, 'MESSAGE_CREATE', MSG(i, h));
    await until(() => raw.length === before + 5, 'forwarded');
    assert.equal(messageParses, 0, 'the shard did not parse forwarded dispatches');
    const messages = raw.slice(before);
    assert.deepEqual(
      messages.map(([t]) => t),
      Array(5).fill('MESSAGE_CREATE'),
    );
    for (let i = 1; i < messages.length; i++) assert.equal(messages[i]![1], messages[i - 1]![1] + 1);
    assert.deepEqual(
      messages.map(([, , json]) => (realParse(json) as { d: { content: string } }).d.content),
      ['m0', 'm1', 'm2', 'm3', 'm4'],
    );
    assert.ok(emitted.some((e) => e.type === 'READY'));
    assert.ok(!emitted.some((e) => e.type === 'MESSAGE_CREATE' || e.type === 'GUILD_CREATE'));
    assert.equal(shard.session!.sequence, raw.at(-1)![1]);
  } finally {
    JSON.parse = realParse;
    await h.stop();
  }
});

test('a stalled event loop does not turn a READY that arrived in time into a handshake timeout', async (t) => {
  const h = await harness();
  t.after(() => h.stop());
  // READY is on the wire when the simulator reports it; then the loop blocks well past the ready timeout
  // (10 s virtual = 100 real ms). The late timer must look at the socket before it gives up on the handshake.
  let stalled = 0;
  h.sim.on('ready', () => {
    if (stalled++ > 0) return;
    const end = Date.now() + 400;
    while (Date.now() < end) {
      /* stall */
    }
  });
  const shard = h.shard({ compression: false, readyTimeout: 10_000 });
  const disconnects: string[] = [];
  shard.on('disconnected', (e) => disconnects.push(e.cause));
  await shard.connect();
  await delay(50);
  assert.deepEqual(disconnects, []);
  assert.equal(h.sim.stats.identifies, 1);
  assert.equal(stalled, 1);
  assert.equal(shard.state, 'ready');
});
