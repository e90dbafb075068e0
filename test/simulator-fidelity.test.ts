// Gateway behaviours where the simulator answers as Discord does for real client libraries: op 8 without the
// GuildMembers intent, IDENTIFY `compress` of another type, no GUILD_CREATE for an available guild, IDENTIFY on the
// resume URL, and traffic reaching every session that holds a guild (overlapping shard sets during a reshard).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { GatewaySimulator } from '../src/simulator/index.js';
import { ManualClock, driveUntil, simActivity } from './helpers/manual-clock.js';

interface Msg {
  op: number;
  // biome-ignore lint/suspicious/noExplicitAny: test payloads are inspected freely
  d: any;
  s: number | null;
  t: string | null;
}

const PROPS = { os: 'linux', browser: 'test', device: 'test' };

/** A raw gateway client: IDENTIFYs on HELLO with `identify`, records every message. */
class Raw {
  readonly inbox: Msg[] = [];
  binaryFrames = 0;
  readonly closed: Promise<number>;
  constructor(
    readonly ws: WebSocket,
    identify: Record<string, unknown>,
  ) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) this.binaryFrames++;
      const m = JSON.parse(String(data)) as Msg;
      this.inbox.push(m);
      if (m.op === 10) ws.send(JSON.stringify({ op: 2, d: { token: 'sim-token', properties: PROPS, ...identify } }));
    });
    ws.on('error', () => {});
    this.closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  }
  static open(url: string, identify: Record<string, unknown>): Raw {
    return new Raw(new WebSocket(`${url}/?v=10&encoding=json`), identify);
  }
  send(op: number, d: unknown): void {
    this.ws.send(JSON.stringify({ op, d }));
  }
  events(t: string): Msg[] {
    return this.inbox.filter((m) => m.t === t);
  }
}

async function waitFor(cond: () => boolean, what: string, timeout = 5000): Promise<void> {
  const end = Date.now() + timeout;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function withSim(opts: Parameters<typeof GatewaySimulator.start>[0], fn: (sim: GatewaySimulator, clients: Raw[]) => Promise<void>): Promise<void> {
  const sim = await GatewaySimulator.start({ identifyWindow: 0, ...opts });
  const clients: Raw[] = [];
  try {
    await fn(sim, clients);
  } finally {
    for (const c of clients) c.ws.terminate();
    await sim.stop();
  }
}

test('op 8 for all members without GuildMembers gets no answer (no chunk, no close); other requests still do', async () => {
  await withSim({ guilds: 1, guildMemberCount: 10 }, async (sim, clients) => {
    const c = Raw.open(sim.url, { intents: 1 });
    clients.push(c);
    await waitFor(() => c.events('GUILD_CREATE').length === 1, 'GUILD_CREATE');
    const guild_id = sim.guildIds[0]!;
    c.send(8, { guild_id, query: '', limit: 0, nonce: 'all' });
    c.send(8, { guild_id, query: 'member', limit: 5, nonce: 'prefix' });
    await waitFor(() => c.events('GUILD_MEMBERS_CHUNK').length > 0, 'a chunk');
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(
      c.events('GUILD_MEMBERS_CHUNK').map((m) => m.d.nonce),
      ['prefix'],
    );
    assert.equal(sim.connections(0).length, 1, 'still connected');
  });
});

test("IDENTIFY compress of another type is tolerated as Discord does (Oceanic sends 'zlib-stream'); only true compresses payloads", async () => {
  await withSim({ guilds: 2 }, async (sim, clients) => {
    const c = Raw.open(sim.url, { intents: 1, compress: 'zlib-stream' });
    clients.push(c);
    await waitFor(() => c.events('GUILD_CREATE').length === 2, 'READY and GUILD_CREATEs');
    assert.equal(c.binaryFrames, 0, 'no payload compression for a non-boolean compress');
    assert.equal(sim.stats.closesByCode['4001'], undefined);
  });
});

test('IDENTIFY on the resume URL starts a new session, as on Discord (any gateway host accepts IDENTIFY)', async () => {
  await withSim({ guilds: 1 }, async (sim, clients) => {
    const first = Raw.open(sim.url, { intents: 1 });
    clients.push(first);
    await waitFor(() => first.events('READY').length === 1, 'READY');
    const resumeUrl = first.events('READY')[0]!.d.resume_gateway_url as string;
    const second = Raw.open(resumeUrl, { intents: 1 });
    clients.push(second);
    await waitFor(() => second.events('GUILD_CREATE').length === 1, 'READY + GUILD_CREATE on the resume URL');
    const conn = sim.connections().find((c) => c.resumeUrlUsed);
    assert.ok(conn?.identified);
    assert.notEqual(second.events('READY')[0]!.d.session_id, first.events('READY')[0]!.d.session_id);
  });
});

test('traffic never re-sends GUILD_CREATE for an available guild, and reaches every session that holds the guild (reshard overlap)', async () => {
  // A manual clock: traffic flows only while the test drives it, and no heartbeat deadline can pass meanwhile.
  const clock = new ManualClock();
  await withSim({ guilds: 6, shards: 2, clock }, async (sim, clients) => {
    const intents = 1 | 2 | 128 | 256 | 512 | 1024 | 2048 | 32768;
    const old = Raw.open(sim.url, { intents, shard: [0, 1] });
    const new0 = Raw.open(sim.url, { intents, shard: [0, 2] });
    const new1 = Raw.open(sim.url, { intents, shard: [1, 2] });
    clients.push(old, new0, new1);
    await waitFor(() => old.events('GUILD_CREATE').length === 6 && new0.events('GUILD_CREATE').length === 3 && new1.events('GUILD_CREATE').length === 3, 'all guilds');
    const stop = sim.startTraffic({ eventsPerSecond: 40, mix: { GUILD_CREATE: 10, MESSAGE_CREATE: 1, TYPING_START: 1 } });
    await driveUntil(clock, () => old.inbox.length > 120, { what: 'traffic', activity: simActivity(sim) });
    stop();
    // every dispatch a session was assigned has arrived
    const dispatches = (c: Raw) => c.inbox.filter((m) => m.op === 0).length;
    const seqOf = (c: Raw) => sim.sessions().find((s) => s.sessionId === c.events('READY')[0]!.d.session_id)!.seq;
    await waitFor(() => [old, new0, new1].every((c) => dispatches(c) === seqOf(c)), 'delivery');
    for (const c of [old, new0, new1]) assert.equal(c.events('GUILD_CREATE').length, c === old ? 6 : 3, 'no GUILD_CREATE from traffic');
    const body = (m: Msg) => `${m.t}:${JSON.stringify(m.d)}`;
    const traffic = (c: Raw) => c.inbox.filter((m) => m.op === 0 && m.t !== 'READY' && m.t !== 'GUILD_CREATE').map(body);
    const oldEvents = traffic(old);
    const newEvents = [...traffic(new0), ...traffic(new1)];
    assert.ok(oldEvents.length > 100, `${oldEvents.length} events`);
    assert.equal(newEvents.length, oldEvents.length, 'as many events reached each shard set');
    const sortedOld = [...oldEvents].sort();
    assert.ok(
      [...newEvents].sort().every((e, i) => e === sortedOld[i]),
      'the same events reached both shard sets',
    );
    for (const m of new0.inbox.filter((x) => x.t === 'MESSAGE_CREATE')) assert.equal(Number((BigInt(m.d.guild_id) >> 22n) % 2n), 0);
  });
});
