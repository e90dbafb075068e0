/**
 * A client's READY burst: GUILD_CREATEs written only as its socket drains (a bounded amount queued however many
 * guilds), live dispatches of the burst caught up from the replay ring afterwards (in order, once, filtered and
 * stripped), a client gone mid-burst releasing the guild iterator, and a client the ring outran closed with 4000.
 * Unit level on the sans-IO session with a socket model; one end-to-end run through the simulator.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Intents } from '../src/intents.js';
import { BURST_BUFFER, ClientSession, type ClientEffect, type ClientSessionOptions } from '../src/proxy/client-session.js';
import { ReplayRing } from '../src/proxy/replay.js';
import { resumePos } from '../src/proxy/resume-map.js';
import { buildGuildCreate, buildMember } from '../src/simulator/fixtures.js';
import { TOKEN, until } from './helpers/setup.js';
import { proxyRig } from './helpers/proxy-rig.js';

function identified(over: Partial<ClientSessionOptions> = {}, intents = Intents.Guilds | Intents.GuildMessages): ClientSession {
  const c = new ClientSession({
    heartbeatInterval: 40_000,
    heartbeatSlack: 5000,
    checkToken: (t) => t === 'tok',
    total: 1,
    hasShard: () => true,
    upstreamIntents: Intents.Guilds | Intents.GuildMessages | Intents.GuildPresences | Intents.MessageContent,
    now: () => 0,
    stripContent: (_type, d) => d.replace(/"content":"[^"]*"/, '"content":""'),
    ...over,
  });
  c.open();
  c.message(JSON.stringify({ op: 2, d: { token: 'tok', intents, properties: {} } }));
  c.effects.splice(0);
  return c;
}

/** A socket model: what the session sends is queued; `flush(n)` writes `n` bytes out, then the driver pulls. */
class Socket {
  queued = 0;
  peak = 0;
  readonly got: { t: string; s: number; d: Record<string, unknown> }[] = [];
  private readonly lengths: number[] = [];
  closed: { code: number } | null = null;
  constructor(private readonly c: ClientSession) {}
  apply(): void {
    for (const e of this.c.effects.splice(0) as ClientEffect[]) {
      if (e.type === 'send') {
        this.queued += e.data.length;
        this.lengths.push(e.data.length);
        this.peak = Math.max(this.peak, this.queued);
        const p = JSON.parse(e.data) as { t: string; s: number; d: Record<string, unknown> };
        if (p.t !== null) this.got.push(p);
      } else if (e.type === 'close') this.closed = { code: e.code };
    }
  }
  flush(n: number): void {
    this.queued = Math.max(0, this.queued - n);
    if (this.c.pulling) this.c.pull(this.queued);
    this.apply();
  }
}

const guild = (i: number, size: number) => JSON.stringify({ id: String(1000 + i), pad: 'x'.repeat(size) });

test('READY burst: 300 guilds to a slow socket keep at most the bound (plus one guild) queued; live traffic follows the GUILD_CREATEs in order, once, filtered and stripped', () => {
  const c = identified();
  const ring = new ReplayRing(10_000);
  ring.push('MESSAGE_CREATE', '{"guild_id":"1","n":0,"content":"before"}'); // covered by the cache already
  const size = 20_000;
  c.start(
    's',
    '{"session_id":"s"}',
    Array.from({ length: 300 }, (_, i) => guild(i, size)),
    ring.newest,
    ring,
  );
  const sock = new Socket(c);
  sock.apply();
  let n = 0;
  const live = () => {
    n++;
    const type = n % 3 === 0 ? 'PRESENCE_UPDATE' : 'MESSAGE_CREATE';
    const pos = ring.push(type, `{"guild_id":"1","n":${n},"content":"secret"}`);
    c.deliver(type, ring.at(pos)!.d, pos);
    sock.apply();
  };
  for (let tick = 0; c.pulling; tick++) {
    sock.flush(64 * 1024); // the client reads 64 KiB per tick
    if (tick % 2 === 0) live();
    assert.ok(tick < 10_000, 'the burst ends');
  }
  live();
  live();
  assert.ok(sock.peak <= BURST_BUFFER + size + 100, `peak queued ${sock.peak} bytes, bound ${BURST_BUFFER}`);
  assert.ok(sock.peak < (300 * size) / 4, 'far below the whole burst');
  const types = sock.got.map((p) => p.t);
  assert.equal(types[0], 'READY');
  assert.deepEqual(
    sock.got.slice(1, 301).map((p) => p.d.id),
    Array.from({ length: 300 }, (_, i) => String(1000 + i)),
  );
  const after = sock.got.slice(301);
  assert.ok(
    after.every((p) => p.t === 'MESSAGE_CREATE'),
    'PRESENCE_UPDATE filtered (no GuildPresences)',
  );
  assert.deepEqual(
    after.map((p) => p.d.n),
    Array.from({ length: n }, (_, i) => i + 1).filter((i) => i % 3 !== 0),
    'every live message after the GUILD_CREATEs, in order, none twice, none from before',
  );
  assert.ok(
    after.every((p) => p.d.content === ''),
    'content stripped in the catch-up and live',
  );
  assert.deepEqual(
    sock.got.map((p) => p.s),
    sock.got.map((_, i) => i + 1),
  );
  const state = c.session!;
  assert.equal(state.synthEnd, 301);
  assert.equal(resumePos(state, 301, ring), 1, 'a RESUME right after the last GUILD_CREATE continues from where the burst began');
  assert.equal(resumePos(state, 300, ring), null, 'none inside the synthesized start');
});

test('READY burst: a client gone mid-burst releases the guild iterator and writes nothing more', () => {
  for (const end of ['ended', 'timer'] as const) {
    const c = identified();
    const ring = new ReplayRing(100);
    let released = false;
    let built = 0;
    function* guilds(): Generator<string> {
      try {
        for (let i = 0; i < 300; i++) {
          built++;
          yield guild(i, 10_000);
        }
      } finally {
        released = true;
      }
    }
    c.start('s', '{}', guilds(), 0, ring);
    const sock = new Socket(c);
    sock.apply();
    sock.flush(0);
    assert.ok(built > 0 && built < 150, `built ${built} of 300 before the socket stalled`);
    if (end === 'ended') c.ended();
    else c.timer();
    assert.equal(released, true, `${end}: the generator's finally ran`);
    assert.equal(c.pulling, false);
    c.pull(0);
    c.deliver('MESSAGE_CREATE', '{"guild_id":"1"}', ring.push('MESSAGE_CREATE', '{"guild_id":"1"}'));
    assert.ok(
      c.effects.every((e) => e.type !== 'send'),
      'nothing written after the end',
    );
    assert.ok(built < 150, 'no more guilds built');
  }
});

test('READY burst: the ring outrunning a slow client closes it with 4000, counted, and its RESUME is refused (it identifies again)', () => {
  const c = identified();
  const ring = new ReplayRing(5);
  let released = false;
  function* guilds(): Generator<string> {
    try {
      for (let i = 0; i < 300; i++) yield guild(i, 10_000);
    } finally {
      released = true;
    }
  }
  c.start('s', '{}', guilds(), ring.newest, ring);
  const sock = new Socket(c);
  sock.apply();
  sock.flush(0);
  for (let i = 0; i < 5; i++) c.deliver('MESSAGE_CREATE', '{"guild_id":"1"}', ring.push('MESSAGE_CREATE', '{"guild_id":"1"}'));
  sock.apply();
  assert.equal(sock.closed, null, 'the ring still holds everything after the start');
  c.deliver('MESSAGE_CREATE', '{"guild_id":"1"}', ring.push('MESSAGE_CREATE', '{"guild_id":"1"}'));
  sock.apply();
  assert.deepEqual(sock.closed, { code: 4000 });
  assert.equal(c.overflowed, true);
  assert.equal(released, true);
  const state = c.session!;
  assert.equal(resumePos(state, state.seq, ring), null, 'RESUME → op 9 → a new IDENTIFY');
});

/** A raw client whose socket stops reading after IDENTIFY until `read()`. */
async function stalledClient(url: string) {
  const ws = new WebSocket(`${url}/?v=10&encoding=json`);
  const got: { op: number; t: string | null; s: number | null; d: Record<string, unknown> }[] = [];
  const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
  ws.on('message', (data) => got.push(JSON.parse(String(data))));
  await new Promise((r, j) => {
    ws.once('open', r);
    ws.once('error', j);
  });
  await until(() => got.some((p) => p.op === 10), 'HELLO', 10_000);
  const socket = (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
  return {
    ws,
    got,
    closed,
    identify() {
      ws.send(JSON.stringify({ op: 2, d: { token: TOKEN, intents: 1 | 512 | 32768, properties: {} } }));
      socket.pause();
    },
    read: () => socket.resume(),
  };
}

/** A GUILD_CREATE of `members` fixture members (~0.25 KB each). */
function bigGuild(id: string, i: number, members: number): Record<string, unknown> {
  const g = buildGuildCreate(id, i, {});
  g.members = Array.from({ length: members }, (_, k) => buildMember(id, k));
  g.member_count = members;
  return g;
}

test('end to end: a stalled client gets every GUILD_CREATE, then the messages sent during its burst, in order; one the ring outran is closed (4000), counted, and identifies again', async () => {
  // ~40 MB of GUILD_CREATEs: more than loopback socket buffers hold, so the burst really waits for the client
  const GUILDS = 80;
  const r = await proxyRig({ shards: 1, guilds: GUILDS }, { replaySize: 1000 });
  const depth = () => r.proxy.stats().shards[0]!.ringDepth;
  try {
    r.sim.guildIds.forEach((id, i) => r.sim.dispatch({ guildId: id }, 'GUILD_CREATE', bigGuild(id, i, 2000)));
    await until(() => r.sim.guildIds.every((id) => r.proxy.cacheBytes(id) > 20_000), 'the big guilds cached', 60_000);
    const start = depth();
    const g = r.sim.guildIds[0]!;

    const a = await stalledClient(r.proxy.url);
    a.identify();
    await until(() => r.proxy.stats().shards[0]!.bursts === 1, 'the burst under way', 10_000);
    for (let i = 0; i < 40; i++) r.sim.dispatch({ guildId: g }, 'MESSAGE_CREATE', { id: String(i), channel_id: '2', guild_id: g, content: `m${i}` });
    await until(() => depth() === start + 40, 'the messages at the proxy', 30_000);
    assert.equal(r.proxy.stats().shards[0]!.bursts, 1, 'still in the burst while the messages arrived');
    a.read();
    await until(() => a.got.filter((p) => p.t === 'MESSAGE_CREATE').length === 40, 'the 40 messages', 30_000);
    const d = a.got.filter((p) => p.op === 0);
    assert.equal(d[0]!.t, 'READY');
    assert.ok(d.slice(1, GUILDS + 1).every((p) => p.t === 'GUILD_CREATE'));
    assert.deepEqual(new Set(d.slice(1, GUILDS + 1).map((p) => p.d.id)), new Set(r.sim.guildIds));
    assert.ok(d.slice(1, GUILDS + 1).every((p) => (p.d.members as unknown[]).length === 2000));
    assert.deepEqual(
      d.slice(GUILDS + 1).map((p) => p.d.content),
      Array.from({ length: 40 }, (_, i) => `m${i}`),
      'after the GUILD_CREATEs, in order, once',
    );
    assert.deepEqual(
      d.map((p) => p.s),
      d.map((_, i) => i + 1),
    );
    assert.equal(r.proxy.stats().shards[0]!.bursts, 0);
    a.ws.close();

    const b = await stalledClient(r.proxy.url);
    b.identify();
    await until(() => r.proxy.stats().shards[0]!.bursts === 1, 'the second burst under way', 10_000);
    for (let i = 0; i < 1100; i++) r.sim.dispatch({ guildId: g }, 'MESSAGE_CREATE', { id: String(i), channel_id: '2', guild_id: g, content: `n${i}` });
    await until(() => r.proxy.stats().burstOverflows === 1, 'the overflow counted', 10_000);
    b.read();
    assert.equal(await b.closed, 4000);
    const ready = b.got.find((p) => p.t === 'READY')!;
    const c = await stalledClient(r.proxy.url);
    c.read();
    c.ws.send(JSON.stringify({ op: 6, d: { token: TOKEN, session_id: ready.d.session_id, seq: b.got.filter((p) => p.op === 0).length } }));
    await until(() => c.got.some((p) => p.op === 9), 'op 9 for the RESUME', 10_000);
    c.identify();
    c.read();
    await until(() => c.got.filter((p) => p.t === 'GUILD_CREATE').length === GUILDS, 'a full READY again', 30_000);
    assert.equal(r.proxy.stats().shards[0]!.bursts, 0);
    c.ws.close();
  } finally {
    await r.stop();
  }
});
