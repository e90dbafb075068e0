import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { WebSocket } from 'ws';
import { Decompress } from 'fzstd';
import { ManualClock, driveFor, driveUntil, simActivity } from './helpers/manual-clock.js';
import { GatewaySimulator, zstdAvailable, type GatewaySimulatorOptions } from '../src/simulator/index.js';

// ------------------------------------------------------------------ helpers

interface Payload {
  op: number;
  // biome-ignore lint/suspicious/noExplicitAny: test payloads are inspected freely
  d: any;
  s: number | null;
  t: string | null;
}

const SYNC = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const PROPS = { os: 'linux', browser: 'test', device: 'test' };
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(cond: () => boolean, what: string, timeout = 2000): Promise<void> {
  const end = Date.now() + timeout;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

/** A raw ws client that decodes (and inflates) every gateway message. */
class Client {
  readonly inbox: Payload[] = [];
  readonly rawTexts: string[] = [];
  readonly wsMessages: Buffer[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  decodeError: Error | null = null;
  payloadCompressed = 0;
  private waiters: (() => void)[] = [];
  private zbuf: Buffer[] = [];
  private zall: Buffer[] = [];
  private zout = 0;
  private zstd: Decompress | null = null;

  private constructor(
    readonly ws: WebSocket,
    readonly compress: string | null,
  ) {
    if (compress === 'zstd-stream') {
      this.zstd = new Decompress((chunk) => this.onText(Buffer.from(chunk).toString('utf8')));
    }
    ws.on('message', (data: Buffer, isBinary) => this.onMessage(data, isBinary));
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        this.wake();
        resolve({ code, reason: reason.toString() });
      }),
    );
    ws.on('error', () => {});
  }

  static async open(url: string, query = 'v=10&encoding=json', compress: string | null = null): Promise<Client> {
    const q = compress ? `${query}&compress=${compress}` : query;
    const ws = new WebSocket(`${url}${url.endsWith('/resume') ? '' : '/'}?${q}`);
    const c = new Client(ws, compress);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return c;
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    this.wsMessages.push(data);
    try {
      if (this.compress === 'zlib-stream') {
        assert.ok(isBinary, 'compressed data must use binary frames');
        this.zbuf.push(data);
        if (data.length < 4 || !data.subarray(-4).equals(SYNC)) return;
        this.zall.push(...this.zbuf);
        this.zbuf = [];
        const all = zlib.inflateSync(Buffer.concat(this.zall), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
        const text = all.subarray(this.zout).toString('utf8');
        this.zout = all.length;
        this.onText(text);
      } else if (this.zstd) {
        this.zstd.push(new Uint8Array(data));
      } else if (isBinary) {
        assert.equal(data[0], 0x78, 'binary frames without transport compression are zlib payloads');
        this.payloadCompressed++;
        this.onText(zlib.inflateSync(data).toString('utf8'));
      } else {
        this.onText(data.toString('utf8'));
      }
    } catch (err) {
      this.decodeError = err as Error;
      this.wake();
    }
  }

  private onText(text: string): void {
    this.rawTexts.push(text);
    this.inbox.push(JSON.parse(text) as Payload);
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(obj: unknown): void {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  /** Remove and return the first received payload matching `pred`, waiting for it. */
  async take(pred: (p: Payload) => boolean = () => true, timeout = 3000): Promise<Payload> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const i = this.inbox.findIndex(pred);
      if (i >= 0) return this.inbox.splice(i, 1)[0]!;
      if (this.decodeError) throw this.decodeError;
      const left = deadline - Date.now();
      if (left <= 0 || this.ws.readyState === WebSocket.CLOSED) throw new Error(`timed out waiting; inbox: ${this.inbox.map((p) => p.t ?? p.op).join(',')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  takeT(t: string, timeout?: number): Promise<Payload> {
    return this.take((p) => p.t === t, timeout);
  }

  takeOp(op: number, timeout?: number): Promise<Payload> {
    return this.take((p) => p.op === op, timeout);
  }

  identify(extra: Record<string, unknown> = {}): void {
    this.send({ op: 2, d: { token: 'sim-token', intents: 513, properties: PROPS, ...extra } });
  }

  close(code = 4000): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code);
  }
}

/**
 * A simulator on a manual clock (the test's own, or a new one): its deadlines (heartbeats, session expiry, rate and
 * identify windows) move only when the test advances the clock, so a loaded machine cannot fire one early.
 */
async function withSim(opts: GatewaySimulatorOptions, fn: (sim: GatewaySimulator, clients: Client[], clock: ManualClock) => Promise<void>): Promise<void> {
  const clock = opts.clock instanceof ManualClock ? opts.clock : new ManualClock();
  const sim = await GatewaySimulator.start({ identifyWindow: 0, ...opts, clock });
  const clients: Client[] = [];
  try {
    await fn(sim, clients, clock);
  } finally {
    for (const c of clients) c.ws.terminate();
    await sim.stop();
  }
}

async function connect(sim: GatewaySimulator, clients: Client[], opts: { url?: string; query?: string; compress?: string | null } = {}): Promise<Client> {
  const c = await Client.open(opts.url ?? sim.url, opts.query, opts.compress ?? null);
  clients.push(c);
  return c;
}

/** Connect, HELLO, IDENTIFY, READY. */
async function ready(sim: GatewaySimulator, clients: Client[], extra: Record<string, unknown> = {}, compress: string | null = null) {
  const c = await connect(sim, clients, { compress });
  await c.takeOp(10);
  c.identify(extra);
  const r = await c.takeT('READY');
  return { c, r };
}

// ------------------------------------------------------------------ tests

test('HTTP /gateway and /gateway/bot', async () => {
  await withSim({ shards: 3, maxConcurrency: 2, sessionStartLimit: { total: 10, remaining: 7 } }, async (sim) => {
    assert.match(sim.apiUrl, /^http:\/\/127\.0\.0\.1:\d+\/api\/v10$/);
    const g = await (await fetch(`${sim.apiUrl}/gateway`)).json();
    assert.deepEqual(g, { url: sim.url });
    const noAuth = await fetch(`${sim.apiUrl}/gateway/bot`);
    assert.equal(noAuth.status, 401);
    await noAuth.arrayBuffer();
    const bad = await fetch(`${sim.apiUrl}/gateway/bot`, { headers: { Authorization: 'Bot nope' } });
    assert.equal(bad.status, 401);
    await bad.arrayBuffer();
    const res = await fetch(`${sim.apiUrl}/gateway/bot`, { headers: { Authorization: 'Bot sim-token' } });
    const body = (await res.json()) as { url: string; shards: number; session_start_limit: Record<string, number> };
    assert.equal(body.url, sim.url);
    assert.equal(body.shards, 3);
    assert.equal(body.session_start_limit.total, 10);
    assert.equal(body.session_start_limit.remaining, 7);
    assert.equal(body.session_start_limit.max_concurrency, 2);
    assert.ok(body.session_start_limit.reset_after! > 86_000_000);
  });
});

test('HELLO, IDENTIFY -> READY + GUILD_CREATEs routed per shard, envelope key order', async () => {
  await withSim({ guilds: 10, shards: 2, maxConcurrency: 2 }, async (sim, clients) => {
    const seen = new Map<number, string[]>();
    for (const shard of [0, 1]) {
      const c = await connect(sim, clients);
      const hello = await c.takeOp(10);
      assert.equal(hello.d.heartbeat_interval, 41250);
      assert.equal(c.rawTexts[0]!.startsWith('{"t":null,"s":null,"op":10,"d":'), true);
      c.identify({ shard: [shard, 2] });
      const r = await c.takeT('READY');
      assert.equal(r.s, 1);
      assert.ok(c.rawTexts[1]!.startsWith('{"t":"READY","s":1,"op":0,"d":{'));
      assert.match(r.d.session_id, /^[0-9a-f]{32}$/);
      assert.notEqual(r.d.resume_gateway_url, sim.url);
      assert.ok(r.d.resume_gateway_url.startsWith(sim.url));
      assert.deepEqual(r.d.shard, [shard, 2]);
      assert.equal(r.d.user.bot, true);
      assert.ok(r.d.application.id);
      const ids = (r.d.guilds as { id: string; unavailable: boolean }[]).map((g) => g.id);
      assert.equal(ids.length, 5);
      for (const id of ids) assert.equal(Number((BigInt(id) >> 22n) % 2n), shard);
      const got: string[] = [];
      let lastSeq = 1;
      for (let i = 0; i < ids.length; i++) {
        const g = await c.takeT('GUILD_CREATE');
        assert.equal(g.s, ++lastSeq);
        assert.ok(Array.isArray(g.d.channels) && g.d.channels.length > 0);
        assert.ok(
          g.d.roles.some((role: { id: string }) => role.id === g.d.id),
          '@everyone id == guild id',
        );
        got.push(g.d.id);
      }
      assert.deepEqual(got.sort(), [...ids].sort());
      seen.set(shard, got);
    }
    assert.equal(new Set([...seen.get(0)!, ...seen.get(1)!]).size, 10);
    assert.deepEqual(
      sim
        .connections()
        .map((c) => c.shardId)
        .sort(),
      [0, 1],
    );
    assert.equal(sim.stats.identifies, 2);
    assert.equal(sim.sessions().length, 2);
  });
});

test('heartbeat ACK (before and after IDENTIFY), op 1 request, setAcks', async () => {
  await withSim({}, async (sim, clients) => {
    const beats: unknown[] = [];
    sim.on('heartbeat', (ev) => beats.push(ev.d));
    const c = await connect(sim, clients);
    await c.takeOp(10);
    c.send({ op: 1, d: null });
    const ack = await c.takeOp(11);
    assert.equal(ack.d, null);
    c.identify();
    await c.takeT('READY');
    c.send({ op: 1, d: 1 });
    await c.takeOp(11);
    assert.deepEqual(beats, [null, 1]);
    assert.ok(sim.requestHeartbeat(0));
    await c.takeOp(1);
    assert.ok(sim.setAcks(0, false));
    assert.equal(sim.connections(0)[0]!.acking, false);
    c.send({ op: 1, d: 1 });
    await assert.rejects(c.takeOp(11, 150));
    sim.setAcks(0, true);
    c.send({ op: 1, d: 1 });
    await c.takeOp(11);
    assert.equal(sim.requestHeartbeat(5), false);
  });
});

test('missed heartbeats close with 4009 on the clock (41 250 ms interval) and the session stays resumable', async () => {
  await withSim({}, async (sim, clients, clock) => {
    const { c, r } = await ready(sim, clients);
    // deadline = 41250 * 1.5 + 1000 virtual ms after HELLO (no time passed since)
    clock.advance(41_250 * 1.5 + 1000 - 1);
    assert.ok(sim.requestHeartbeat(0));
    await c.takeOp(1); // still open until the deadline: the server.s op 1 arrives
    clock.advance(1);
    const closed = await c.closed;
    assert.equal(closed.code, 4009);
    const c2 = await connect(sim, clients, { url: r.d.resume_gateway_url });
    await c2.takeOp(10);
    c2.send({ op: 6, d: { token: 'Bot sim-token', session_id: r.d.session_id, seq: 1 } });
    const resumed = await c2.takeT('RESUMED');
    assert.ok(resumed.s! > 1);
    assert.equal(sim.connections(0)[0]!.resumeUrlUsed, true);
    assert.equal(sim.connections(0)[0]!.resumed, true);
  });
});

test('RESUME replays every buffered dispatch after seq with the original s, then RESUMED', async () => {
  await withSim({ guilds: 3 }, async (sim, clients) => {
    const { c, r } = await ready(sim, clients);
    for (let i = 0; i < 3; i++) await c.takeT('GUILD_CREATE');
    const live = sim.dispatch(0, 'MESSAGE_CREATE', { id: '1', guild_id: sim.guildIds[0], content: 'live' });
    assert.deepEqual(live, [5]);
    await c.takeT('MESSAGE_CREATE');
    assert.ok(sim.terminate(0));
    assert.equal((await c.closed).code, 1006);
    const missed = [
      ...sim.dispatch(0, 'MESSAGE_CREATE', { id: '2', guild_id: sim.guildIds[0], content: 'a' }),
      ...sim.dispatch({ guildId: sim.guildIds[1]! }, 'MESSAGE_CREATE', { id: '3', guild_id: sim.guildIds[1], content: 'b' }),
      ...sim.dispatch('all', 'GUILD_UPDATE', { id: sim.guildIds[2], guild_id: sim.guildIds[2] }),
    ];
    assert.deepEqual(missed, [6, 7, 8]);
    const info = sim.sessions()[0]!;
    assert.equal(info.connected, false);
    assert.equal(info.seq, 8);
    const c2 = await connect(sim, clients, { url: r.d.resume_gateway_url });
    await c2.takeOp(10);
    c2.send({ op: 6, d: { token: 'sim-token', session_id: r.d.session_id, seq: 4 } });
    const order: (number | null)[] = [];
    for (;;) {
      const p = await c2.take((x) => x.op === 0);
      order.push(p.s);
      if (p.t === 'RESUMED') break;
    }
    assert.deepEqual(order, [5, 6, 7, 8, 9]);
    assert.equal(sim.stats.resumes, 1);
    // live dispatches continue after RESUMED
    assert.deepEqual(sim.dispatch(0, 'TYPING_START', { guild_id: sim.guildIds[0], channel_id: '1', user_id: '2', timestamp: 1 }), []); // no GUILD_MESSAGE_TYPING intent
    assert.deepEqual(sim.dispatch(0, 'MESSAGE_DELETE', { id: '9', channel_id: '1', guild_id: sim.guildIds[0] }), [10]);
    assert.equal((await c2.takeT('MESSAGE_DELETE')).s, 10);
  });
});

test('RESUME failures: unknown session, expired, client 1000 close, timeout, bad seq -> 4007', async () => {
  await withSim({ sessionTimeout: 5000 }, async (sim, clients, clock) => {
    const resumeEvents: boolean[] = [];
    sim.on('resume', (ev) => resumeEvents.push(ev.ok));
    const sessionOf = (id: string) => sim.sessions().find((s) => s.sessionId === id)!;
    const tryResume = async (sessionId: string, seq: number) => {
      const c = await connect(sim, clients);
      await c.takeOp(10);
      c.send({ op: 6, d: { token: 'sim-token', session_id: sessionId, seq } });
      return c;
    };
    // unknown
    let c = await tryResume('nope', 1);
    assert.equal((await c.takeOp(9)).d, false);
    // client closes with 1000 -> session invalidated
    let { c: a, r } = await ready(sim, clients);
    a.close(1000);
    await a.closed;
    await waitFor(() => sessionOf(r.d.session_id).expired, 'session invalidated by 1000');
    c = await tryResume(r.d.session_id, 1);
    assert.equal((await c.takeOp(9)).d, false);
    // expired by the fault API
    ({ c: a, r } = await ready(sim, clients));
    a.close(4000);
    await a.closed;
    await waitFor(() => !sessionOf(r.d.session_id).connected, 'socket loss noticed');
    assert.ok(sim.expireSession(r.d.session_id));
    c = await tryResume(r.d.session_id, 1);
    assert.equal((await c.takeOp(9)).d, false);
    // timed out: 5000 virtual ms after the socket loss
    ({ c: a, r } = await ready(sim, clients));
    a.close(4000);
    await a.closed;
    await waitFor(() => !sessionOf(r.d.session_id).connected, 'socket loss noticed');
    clock.advance(4999);
    assert.equal(sessionOf(r.d.session_id).expired, false, 'not before sessionTimeout');
    clock.advance(1);
    assert.equal(sessionOf(r.d.session_id).expired, true, 'the session timed out');
    c = await tryResume(r.d.session_id, 1);
    assert.equal((await c.takeOp(9)).d, false);
    // seq ahead of the session
    ({ c: a, r } = await ready(sim, clients));
    a.ws.terminate();
    await a.closed;
    c = await tryResume(r.d.session_id, 99);
    assert.equal((await c.closed).code, 4007);
    assert.deepEqual(resumeEvents, [false, false, false, false, false]);
    assert.equal(sim.stats.resumeFailures, 5);
  });
});

test('validation close codes', async () => {
  await withSim({ guilds: 6, shards: 2, maxGuildsPerShard: 4, applicationIntents: 256, identifyWindow: 0 }, async (sim, clients) => {
    const expectClose = async (code: number, action: (c: Client) => void, query?: string) => {
      const c = await connect(sim, clients, { query });
      if (query === undefined) await c.takeOp(10);
      action(c);
      const closed = await c.closed;
      assert.equal(closed.code, code, `expected ${code}, got ${closed.code} (${closed.reason})`);
      return closed;
    };
    const noop = () => {};
    await expectClose(4012, noop, 'v=3&encoding=json');
    await expectClose(4012, noop, 'encoding=json');
    await expectClose(4003, (c) => c.send({ op: 3, d: { since: null, activities: [], status: 'online', afk: false } }));
    await expectClose(4003, (c) => c.send({ op: 8, d: { guild_id: '1', query: '', limit: 0 } }));
    await expectClose(4001, (c) => c.send({ op: 5, d: null }));
    await expectClose(4001, (c) => c.send({ op: 0, d: null }));
    await expectClose(4001, (c) => c.send({ d: null }));
    await expectClose(4001, (c) => c.send({ op: 1, d: 'x' }));
    await expectClose(4002, (c) => c.send('{"op":1,'));
    await expectClose(4002, (c) => c.send('[1,2]'));
    await expectClose(4002, (c) => c.send({ op: 1, d: null, pad: 'x'.repeat(4100) }));
    await expectClose(4004, (c) => c.identify({ token: 'wrong' }));
    await expectClose(4001, (c) => c.send({ op: 2, d: 'token' }));
    await expectClose(4010, (c) => c.identify({ shard: [2, 2] }));
    await expectClose(4010, (c) => c.identify({ shard: [0, 0] }));
    await expectClose(4011, (c) => c.identify({ shard: [0, 1] }));
    await expectClose(4013, (c) => c.identify({ shard: [0, 2], intents: -1 }));
    await expectClose(4013, (c) => c.identify({ shard: [0, 2], intents: 1.5 }));
    await expectClose(4013, (c) => c.identify({ shard: [0, 2], intents: 1 << 26 }));
    await expectClose(4013, (c) => c.identify({ shard: [0, 2], intents: '1' }));
    await expectClose(4014, (c) => c.identify({ shard: [0, 2], intents: 2 }));
    await expectClose(4014, (c) => c.identify({ shard: [0, 2], intents: 32768 | 1 }));
    await expectClose(4001, (c) => c.send({ op: 6, d: { token: 'sim-token', session_id: 5, seq: 1 } }));
    await expectClose(4005, (c) => {
      c.identify({ shard: [0, 2], intents: 256 | 1 });
      c.identify({ shard: [0, 2] });
    });
    sim.setOptions({ largeBotShardMultiple: 16 });
    await expectClose(4010, (c) => c.identify({ shard: [0, 4] }));
    assert.equal(sim.stats.closesByCode['4013'], 4);
    // the simulator still works
    sim.setOptions({ largeBotShardMultiple: undefined, maxGuildsPerShard: 2500 });
    const c = await connect(sim, clients);
    await c.takeOp(10);
    c.send({ op: 1, d: null });
    await c.takeOp(11);
  });
});

test('malformed input never crashes the simulator', async () => {
  await withSim({ rateLimit: { limit: 10_000 } }, async (sim, clients) => {
    const { c } = await ready(sim, clients, { intents: 1 | 2 | 128 | 256 });
    const junk: unknown[] = [null, 1, 'x', [], {}, { a: [] }, [{}], -1, 1e308, { __proto__: { x: 1 } }];
    const gid = sim.guildIds[0];
    const shapes = [
      ...junk.map((d) => ({ op: 3, d })),
      ...junk.map((d) => ({ op: 4, d: { guild_id: d, channel_id: d, self_mute: d, self_deaf: d } })),
      ...junk.map((d) => ({ op: 8, d: { guild_id: gid, query: d, limit: d, user_ids: d, nonce: d } })),
      ...junk.map((d) => ({ op: 31, d: { guild_ids: d } })),
      ...junk.map((d) => ({ op: 43, d: { guild_id: gid, fields: d } })),
    ];
    let closes = 0;
    for (const shape of shapes) {
      let client = c;
      if (client.ws.readyState !== WebSocket.OPEN || closes > 0) {
        ({ c: client } = await ready(sim, clients, { intents: 1 | 2 | 128 | 256 }));
      }
      client.send(shape);
      await delay(2);
      closes = clients.filter((x) => x.ws.readyState !== WebSocket.OPEN).length;
    }
    const c2 = await connect(sim, clients);
    await c2.takeOp(10);
    c2.send({ op: 1, d: null });
    await c2.takeOp(11);
  });
});

test('send rate limit: every payload counts, fixed and sliding windows -> 4008', async () => {
  await withSim({ rateLimit: { limit: 5, window: 60_000 } }, async (sim, clients, clock) => {
    const c = await connect(sim, clients);
    await c.takeOp(10);
    for (let i = 0; i < 6; i++) c.send({ op: 1, d: null });
    assert.equal((await c.closed).code, 4008);
    // a fixed window starts over once it has run out
    sim.setOptions({ rateLimit: { limit: 3, window: 2000, mode: 'fixed' } });
    const f = await connect(sim, clients);
    await f.takeOp(10);
    for (let i = 0; i < 3; i++) f.send({ op: 1, d: null });
    // the ACKs prove the simulator counted these three; then exactly one window passes before the next three
    for (let i = 0; i < 3; i++) await f.takeOp(11);
    clock.advance(2000);
    for (let i = 0; i < 3; i++) f.send({ op: 1, d: null });
    for (let i = 0; i < 3; i++) await f.takeOp(11);
    assert.equal(f.ws.readyState, WebSocket.OPEN);
    sim.setOptions({ rateLimit: { limit: 3, window: 2000, mode: 'sliding' } });
    const s = await connect(sim, clients);
    await s.takeOp(10);
    for (let i = 0; i < 3; i++) s.send({ op: 1, d: null });
    for (let i = 0; i < 3; i++) await s.takeOp(11);
    s.send({ op: 1, d: null });
    assert.equal((await s.closed).code, 4008);
  });
});

test('identify buckets: one IDENTIFY per shard_id % max_concurrency per window, else op 9 false', async () => {
  // A clock that moves only when told: the window cannot run out while a loaded machine is slow to deliver.
  const clock = new ManualClock();
  await withSim({ shards: 4, guilds: 8, maxConcurrency: 2, identifyWindow: 5000, clock }, async (sim, clients) => {
    const accepted: boolean[] = [];
    sim.on('identify', (ev) => accepted.push(ev.accepted));
    const open = async (shard: number) => {
      const c = await connect(sim, clients);
      await c.takeOp(10);
      c.identify({ shard: [shard, 4] });
      return c;
    };
    const a = await open(0);
    const b = await open(1); // other bucket
    await a.takeT('READY');
    await b.takeT('READY');
    const c = await open(2); // bucket 0 again, within 5000 virtual ms
    assert.equal((await c.takeOp(9)).d, false);
    assert.equal(c.ws.readyState, WebSocket.OPEN);
    clock.advance(4999);
    c.identify({ shard: [2, 4] });
    assert.equal((await c.takeOp(9)).d, false, 'still within the window');
    clock.advance(1);
    c.identify({ shard: [2, 4] });
    await c.takeT('READY');
    assert.deepEqual(accepted, [true, true, false, false, true]);
    assert.equal(sim.stats.invalidSessions, 2);
  });
});

test('session start budget is consumed by IDENTIFY only; exhausted -> op 9 false', async () => {
  await withSim({ sessionStartLimit: { total: 5, remaining: 1 }, identifyWindow: 0 }, async (sim, clients) => {
    const { c, r } = await ready(sim, clients);
    assert.equal(sim.stats.sessionStartRemaining, 0);
    c.ws.terminate();
    await c.closed;
    const c2 = await connect(sim, clients);
    await c2.takeOp(10);
    c2.identify();
    assert.equal((await c2.takeOp(9)).d, false);
    // RESUME does not need a session start
    const c3 = await connect(sim, clients, { url: r.d.resume_gateway_url });
    await c3.takeOp(10);
    c3.send({ op: 6, d: { token: 'sim-token', session_id: r.d.session_id, seq: 1 } });
    await c3.takeT('RESUMED');
    const res = await fetch(`${sim.apiUrl}/gateway/bot`, { headers: { Authorization: 'Bot sim-token' } });
    assert.equal(((await res.json()) as { session_start_limit: { remaining: number } }).session_start_limit.remaining, 0);
  });
});

test('zlib-stream: one deflate context, every message ends in 00 00 FF FF, binary frames, inflates with node:zlib', async () => {
  await withSim({ guilds: 3 }, async (sim, clients) => {
    const { c } = await ready(sim, clients, {}, 'zlib-stream');
    for (let i = 0; i < 3; i++) await c.takeT('GUILD_CREATE');
    assert.equal(c.wsMessages[0]![0], 0x78);
    for (const m of c.wsMessages) assert.ok(m.subarray(-4).equals(SYNC));
    assert.equal(c.wsMessages.length, 5);
    assert.equal(sim.connections(0)[0]!.compression, 'zlib-stream');
    // strict order under load
    const seqs = Array.from({ length: 200 }, (_, i) => sim.dispatch(0, 'MESSAGE_DELETE', { id: String(i), channel_id: '1', guild_id: sim.guildIds[0] })[0]);
    const got: (number | null)[] = [];
    for (let i = 0; i < 200; i++) got.push((await c.takeT('MESSAGE_DELETE')).s);
    assert.deepEqual(got, seqs);
  });
});

test('frame splitting: messages split into websocket messages of at most N bytes', async () => {
  await withSim({ guilds: 2, frameSplit: 64 }, async (sim, clients) => {
    const { c } = await ready(sim, clients, {}, 'zlib-stream');
    await c.takeT('GUILD_CREATE');
    await c.takeT('GUILD_CREATE');
    assert.ok(c.wsMessages.length > 10, `${c.wsMessages.length} ws messages`);
    for (const m of c.wsMessages) assert.ok(m.length <= 64);
    const complete = c.wsMessages.filter((m) => m.length >= 4 && m.subarray(-4).equals(SYNC)).length;
    assert.ok(complete >= 4);
  });
});

test('payload compression: IDENTIFY compress:true sends large payloads as independent zlib streams', async () => {
  await withSim({ guilds: 2 }, async (sim, clients) => {
    const { c } = await ready(sim, clients, { compress: true });
    await c.takeT('GUILD_CREATE');
    await c.takeT('GUILD_CREATE');
    assert.ok(c.payloadCompressed >= 2);
    c.send({ op: 1, d: 3 });
    await c.takeOp(11); // small payloads stay text
    const plain = c.wsMessages.filter((m) => m[0] === 0x7b).length;
    assert.ok(plain >= 2); // HELLO and the ACK
  });
});

test('zstd-stream (zstd-napi) decodes with a streaming decompressor, or is rejected with a clear reason', async () => {
  await withSim({ guilds: 2 }, async (sim, clients) => {
    if (!zstdAvailable()) {
      const c = await connect(sim, clients, { compress: 'zstd-stream' });
      const closed = await c.closed;
      assert.match(closed.reason, /zstd-napi/);
      return;
    }
    const { c, r } = await ready(sim, clients, {}, 'zstd-stream');
    assert.equal(r.s, 1);
    await c.takeT('GUILD_CREATE');
    await c.takeT('GUILD_CREATE');
    assert.deepEqual([...c.wsMessages[0]!.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd]);
    assert.equal(c.inbox.length + 4, c.wsMessages.length); // HELLO, READY, 2 GUILD_CREATE taken
  });
});

test('fault API: close codes, terminate, op 7, op 9, corrupt frame, raw data, helloOp7', async () => {
  await withSim({ guilds: 1 }, async (sim, clients, clock) => {
    const closes: { code: number; byClient: boolean }[] = [];
    sim.on('close', (ev) => closes.push({ code: ev.code, byClient: ev.byClient }));
    let { c } = await ready(sim, clients);
    assert.ok(sim.closeConnection(0, 4000, 'bye'));
    assert.deepEqual(await c.closed, { code: 4000, reason: 'bye' });
    await waitFor(() => sim.connections().length === 0, 'server-side close');
    assert.equal(sim.sessions()[0]!.expired, false);
    ({ c } = await ready(sim, clients));
    assert.ok(sim.closeConnection(0, 4004));
    assert.equal((await c.closed).code, 4004);
    await waitFor(() => sim.sessions()[1]!.expired, 'session expired after 4004');
    ({ c } = await ready(sim, clients));
    assert.ok(sim.sendReconnect(0));
    assert.equal((await c.takeOp(7)).d, null);
    clock.advance(5000); // the server closes 5000 virtual ms later
    assert.equal((await c.closed).code, 4000);
    ({ c } = await ready(sim, clients));
    assert.ok(sim.invalidateSession(0, true));
    assert.equal((await c.takeOp(9)).d, true);
    assert.ok(sim.invalidateSession(0, false));
    assert.equal((await c.takeOp(9)).d, false);
    assert.equal(sim.sessions().at(-1)!.expired, true);
    assert.ok(sim.sendRaw(0, '{"t":null,"s":null,"op":11,"d":null}'));
    await c.takeOp(11);
    c.ws.terminate();
    // corrupt frame on zlib-stream
    ({ c } = await ready(sim, clients, {}, 'zlib-stream'));
    await c.takeT('GUILD_CREATE');
    assert.ok(sim.corruptNextFrame(0));
    sim.dispatch(0, 'GUILD_UPDATE', { id: sim.guildIds[0], guild_id: sim.guildIds[0] });
    await assert.rejects(c.takeT('GUILD_UPDATE'), /invalid|incorrect|unknown|error/i);
    assert.ok(sim.terminate(0));
    assert.equal((await c.closed).code, 1006);
    // op 7 instead of HELLO
    sim.setOptions({ helloOp7: true });
    const h = await connect(sim, clients);
    assert.equal((await h.take()).op, 7);
    clock.advance(5000);
    assert.equal((await h.closed).code, 4000);
    sim.setOptions({ helloOp7: false });
    assert.equal(sim.terminate(9), false);
    assert.ok(closes.some((x) => x.code === 1006 && !x.byClient));
    await waitFor(() => closes.length >= 6, 'close events');
  });
});

test('requests: op 8 chunks with nonce + RATE_LIMITED, op 4 voice, op 31, op 43, op 3 limit', async () => {
  // The full-member-list cooldown is 30 s virtual; on the manual clock no time passes between the two requests.
  await withSim({ guilds: 1, guildMemberCount: 1500 }, async (sim, clients) => {
    const { c } = await ready(sim, clients, { intents: 1 | 2 | 128 | 256 });
    const gid = sim.guildIds[0]!;
    await c.takeT('GUILD_CREATE');
    c.send({ op: 8, d: { guild_id: gid, query: '', limit: 0, presences: true, nonce: 'abc' } });
    const c0 = await c.takeT('GUILD_MEMBERS_CHUNK');
    const c1 = await c.takeT('GUILD_MEMBERS_CHUNK');
    assert.deepEqual([c0.d.chunk_index, c0.d.chunk_count, c0.d.members.length, c0.d.nonce], [0, 2, 1000, 'abc']);
    assert.deepEqual([c1.d.chunk_index, c1.d.members.length, c1.d.presences.length], [1, 500, 500]);
    c.send({ op: 8, d: { guild_id: gid, query: '', limit: 0, nonce: 'again' } });
    const rl = await c.takeT('RATE_LIMITED');
    assert.equal(rl.d.opcode, 8);
    assert.equal(rl.d.meta.nonce, 'again');
    assert.equal(rl.d.retry_after, 30, 'the whole cooldown: no time passed');
    c.send({ op: 8, d: { guild_id: gid, query: 'member1', limit: 5 } });
    const q = await c.takeT('GUILD_MEMBERS_CHUNK');
    assert.equal(q.d.members.length, 5);
    const someId = c0.d.members[7].user.id as string;
    c.send({ op: 8, d: { guild_id: gid, user_ids: [someId, '123456789012345678'], nonce: 'x'.repeat(40) } });
    const u = await c.takeT('GUILD_MEMBERS_CHUNK');
    assert.deepEqual(
      u.d.members.map((m: { user: { id: string } }) => m.user.id),
      [someId],
    );
    assert.deepEqual(u.d.not_found, ['123456789012345678']);
    assert.equal(u.d.nonce, undefined);
    c.send({ op: 4, d: { guild_id: gid, channel_id: '1', self_mute: false, self_deaf: true } });
    const vs = await c.takeT('VOICE_STATE_UPDATE');
    const vsv = await c.takeT('VOICE_SERVER_UPDATE');
    assert.equal(vs.d.self_deaf, true);
    assert.equal(vsv.d.guild_id, gid);
    assert.ok(vs.s! < vsv.s!);
    c.send({ op: 31, d: { guild_ids: [gid] } });
    assert.equal((await c.takeT('SOUNDBOARD_SOUNDS')).d.guild_id, gid);
    c.send({ op: 43, d: { guild_id: gid, fields: ['status'] } });
    const ci = await c.takeT('CHANNEL_INFO');
    assert.ok(ci.d.channels.length > 0 && typeof ci.d.channels[0].status === 'string');
    const presence = { op: 3, d: { since: null, activities: [{ name: 'x', type: 0 }], status: 'online', afk: false } };
    for (let i = 0; i < 5; i++) c.send(presence);
    c.send({ op: 1, d: null });
    await c.takeOp(11);
    assert.equal(c.ws.readyState, WebSocket.OPEN);
    c.send(presence);
    assert.equal((await c.closed).code, 4008);
  });
});

test('intent filtering and MESSAGE_CONTENT stripping', async () => {
  await withSim({ guilds: 1 }, async (sim, clients) => {
    const { c } = await ready(sim, clients, { intents: 1 | 512 });
    const gid = sim.guildIds[0]!;
    await c.takeT('GUILD_CREATE');
    assert.deepEqual(sim.dispatch(0, 'PRESENCE_UPDATE', { guild_id: gid, user: { id: '1' } }), []);
    assert.deepEqual(sim.dispatch(0, 'MESSAGE_CREATE', { id: '1', channel_id: '2', content: 'dm' }), []); // DM needs DIRECT_MESSAGES
    sim.dispatch(0, 'MESSAGE_CREATE', { id: '1', guild_id: gid, channel_id: '2', content: 'secret', embeds: [{}], author: { id: '5' } });
    const m = await c.takeT('MESSAGE_CREATE');
    assert.equal(m.d.content, '');
    assert.deepEqual(m.d.embeds, []);
    assert.equal(sim.dispatch(0, 'SOME_FUTURE_EVENT', { x: 1 }).length, 1);
    sim.setOptions({ filterIntents: false });
    assert.equal(sim.dispatch(0, 'PRESENCE_UPDATE', { guild_id: gid, user: { id: '1' } }).length, 1);
  });
});

test('guild streaming options: unavailable guilds, GUILD_CREATE pacing, delayed READY', async () => {
  await withSim({ guilds: 3, guildCreateDelay: 2000, readyDelay: 3000 }, async (sim, clients, clock) => {
    sim.setOptions({ unavailableGuilds: [sim.guildIds[1]!] });
    const c = await connect(sim, clients);
    await c.takeOp(10);
    // the virtual time each dispatch arrived at
    const at = new Map<string, number>();
    c.ws.on('message', () => {
      for (const p of c.inbox) if (p.t && !at.has(`${p.t}:${p.d?.id ?? ''}`)) at.set(`${p.t}:${p.d?.id ?? ''}`, clock.now());
    });
    const t0 = clock.now();
    c.identify();
    await driveUntil(clock, () => c.inbox.filter((p) => p.t === 'GUILD_CREATE' || p.t === 'GUILD_DELETE').length === 3, { what: 'the guilds', activity: simActivity(sim) });
    await c.takeT('READY');
    assert.equal(at.get('READY:'), t0 + 3000, 'READY delayed by 3000 virtual ms');
    const g1 = await c.takeT('GUILD_CREATE');
    const del = await c.takeT('GUILD_DELETE');
    const g2 = await c.takeT('GUILD_CREATE');
    assert.deepEqual(del.d, { id: sim.guildIds[1], unavailable: true });
    assert.deepEqual([g1.d.id, g2.d.id], [sim.guildIds[0], sim.guildIds[2]]);
    assert.ok(clock.now() - t0 >= 8000, `paced: the last guild after ${clock.now() - t0} virtual ms`);
  });
});

test('traffic generator: fixture events routed to the receiving shard', async () => {
  await withSim({ guilds: 8, shards: 2, maxConcurrency: 2 }, async (sim, clients, clock) => {
    const shards = [0, 1];
    const conns: Client[] = [];
    for (const shard of shards) {
      const { c } = await ready(sim, clients, { shard: [shard, 2], intents: 1 | 2 | 128 | 256 | 512 | 1024 | 2048 | 32768 });
      conns.push(c);
    }
    const stop = sim.startTraffic({ eventsPerSecond: 50, mix: 'presences_on' });
    await driveFor(clock, 15_000, { activity: simActivity(sim) });
    stop();
    const before = sim.stats.dispatches;
    clock.advance(3000);
    assert.equal(sim.stats.dispatches, before);
    let total = 0;
    for (const [shard, c] of conns.entries()) {
      const events = c.inbox.filter((p) => p.op === 0 && p.t !== 'READY' && p.d?.guild_id);
      total += events.length;
      for (const e of events) assert.equal(Number((BigInt(e.d.guild_id) >> 22n) % 2n), shard);
      for (let i = 1; i < c.inbox.length; i++) assert.ok((c.inbox[i]!.s ?? 0) > (c.inbox[i - 1]!.s ?? 0) || c.inbox[i]!.s === null);
    }
    assert.ok(total > 200, `${total} events`);
    const presence = conns.flatMap((c) => c.inbox).filter((p) => p.t === 'PRESENCE_UPDATE').length;
    assert.ok(presence / total > 0.7);
  });
});

test('received() log and events redact the token; stop() releases everything', async () => {
  const handles = () => {
    const counts: Record<string, number> = {};
    for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
    return counts;
  };
  await delay(30); // let earlier tests' handles finish closing
  const baseline = handles();
  // Real timers on purpose (stop() must release them), but none due within the test: the client sends no heartbeat.
  const sim = await GatewaySimulator.start({ timeScale: 0.01, guildCreateDelay: 1e6, sessionTimeout: 1e9, heartbeatInterval: 1e7, guilds: 3 });
  const identifies: Record<string, unknown>[] = [];
  sim.on('identify', (ev) => identifies.push(ev.payload));
  const clients: Client[] = [];
  await ready(sim, clients);
  assert.equal(identifies[0]!.token, undefined);
  const log = sim.received(0);
  assert.equal(log[0]!.op, 2);
  assert.equal((log[0]!.d as { token: string }).token, '[redacted]');
  sim.startTraffic({ eventsPerSecond: 10 });
  const during = handles();
  assert.ok((during.TCPServerWrap ?? 0) > (baseline.TCPServerWrap ?? 0));
  await sim.stop();
  await sim.stop();
  assert.equal((await clients[0]!.closed).code, 1001);
  await assert.rejects(Client.open(sim.url));
  await delay(30);
  const after = handles();
  for (const kind of ['TCPServerWrap', 'TCPSocketWrap', 'Timeout']) {
    assert.ok((after[kind] ?? 0) <= (baseline[kind] ?? 0), `${kind} left after stop(): ${JSON.stringify(after)} vs ${JSON.stringify(baseline)}`);
  }
});
