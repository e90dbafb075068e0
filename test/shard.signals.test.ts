/**
 * End-to-end against the simulator (issue 13): RATE_LIMITED answers to member requests, member requests refused
 * locally for a missing intent, guildsReady, a 10 s outage of new connections that must not cost the session,
 * `connect({ timeout, signal })` against an unreachable gateway, and a silent shard that RESUMEs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayUnreachableError, RateLimitedError, type ShardlineError } from '../src/errors.js';
import type { DisconnectedEvent, GuildsReadyEvent, RateLimitedEvent, SilentEvent } from '../src/events.js';
import { Intents } from '../src/intents.js';
import { Shard } from '../src/shard.js';
import type { GatewaySimulatorOptions } from '../src/simulator/types.js';
import { TOKEN, failOnUnhandledRejections, harness as scaledHarness, next } from './helpers/setup.js';
import { runChild } from './helpers/child.js';
import { freePort } from './helpers/servers.js';
import { ManualClock, drive, driver, driveUntil, type DriveOptions } from './helpers/manual-clock.js';

failOnUnhandledRejections();

/**
 * Simulator and shards on one {@link ManualClock}: time moves only in `run` / `until`, with I/O turns between steps,
 * so a loaded machine makes these tests slower, never late (no missed ACK, no handshake or window cut short).
 */
async function harness(simOpts: GatewaySimulatorOptions = {}) {
  const clock = new ManualClock();
  const h = await scaledHarness(simOpts, clock);
  return { ...h, clock, ...driver(clock, h.sim) };
}

/**
 * Drive options for a shard with no gateway to talk to: time stands still while a TCP connect is in flight (the
 * refusal arrives at the virtual time the attempt was made), and moves between attempts.
 */
function offline(shards: { state: string }[], what: string): DriveOptions {
  let turn = 0;
  return { what, activity: () => (shards.some((s) => s.state === 'connecting') ? ++turn : turn) };
}

const MEMBERS = Intents.Guilds | Intents.GuildMembers;

// ---- RATE_LIMITED ----------------------------------------------------------------------------------------------

test('a second request for every member within the window: RateLimitedError at once, a rateLimited event, a counter', { timeout: 60_000 }, async () => {
  const h = await harness({ guilds: 1, guildMemberCount: 5, memberRequestWindow: 600_000 });
  try {
    const shard = h.shard({ intents: MEMBERS, memberRequestTimeout: 600_000 });
    await h.run(shard.connect());
    const guild = h.sim.guildIds[0]!;
    const chunks = await h.run(shard.requestGuildMembers({ guild_id: guild, query: '', limit: 0 }));
    assert.equal(chunks[0]!.members.length, 5);
    const events: RateLimitedEvent[] = [];
    shard.on('rateLimited', (e) => events.push(e));
    const err = await h.run(shard.requestGuildMembers({ guild_id: guild, query: '', limit: 0, nonce: 'again' })).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof RateLimitedError, String(err));
    assert.equal(err.code, 'RATE_LIMITED');
    assert.equal(err.opcode, 8);
    assert.equal(err.guildId, guild);
    assert.equal(err.shardId, 0);
    assert.ok(err.retryAfter > 500_000 && err.retryAfter <= 600_000, `retryAfter ${err.retryAfter} ms`);
    assert.deepEqual(events, [{ shardId: 0, opcode: 8, retryAfter: err.retryAfter, guildId: guild, nonce: 'again' }]);
    assert.equal(shard.counters.rateLimited, 1);
  } finally {
    await h.stop();
  }
});

test('{ retry: true }: the request waits retryAfter and asks again by itself', { timeout: 60_000 }, async () => {
  // time moves only while the test drives it: the second request falls into the window however loaded the machine
  const h = await harness({ guilds: 1, guildMemberCount: 3, memberRequestWindow: 30_000 });
  try {
    const shard = h.shard({ intents: MEMBERS, memberRequestTimeout: 600_000 });
    await h.run(shard.connect());
    const guild = h.sim.guildIds[0]!;
    await h.run(shard.requestGuildMembers({ guild_id: guild, query: '', limit: 0 }));
    const limited: RateLimitedEvent[] = [];
    shard.on('rateLimited', (e) => limited.push(e));
    const startedAt = h.clock.now();
    const chunks = await h.run(shard.requestGuildMembers({ guild_id: guild, query: '', limit: 0, nonce: 'patient' }, { retry: true }));
    assert.equal(chunks[0]!.members.length, 3);
    assert.equal(chunks[0]!.nonce, 'patient');
    assert.equal(limited.length, 1, 'rate limited once');
    assert.ok(h.clock.now() - startedAt >= limited[0]!.retryAfter, 'waited retryAfter before asking again');
    const asked = h.sim.received(0).filter((p) => p.op === 8 && (p.d as { nonce?: string }).nonce === 'patient');
    assert.equal(asked.length, 2, 'asked twice');
  } finally {
    await h.stop();
  }
});

test('a member request that needs an intent the shard lacks is refused at once, never sent', { timeout: 60_000 }, async () => {
  const h = await harness({ guilds: 1 });
  try {
    const shard = h.shard({ intents: Intents.Guilds });
    await h.run(shard.connect());
    const guild = h.sim.guildIds[0]!;
    for (const [request, intent] of [
      [{ guild_id: guild, query: '', limit: 0 }, 'GuildMembers'],
      [{ guild_id: guild, query: 'a', limit: 5, presences: true }, 'GuildPresences'],
    ] as const) {
      const err = await shard.requestGuildMembers(request).then(
        () => null,
        (e: unknown) => e as ShardlineError,
      );
      assert.equal(err?.code, 'MISSING_INTENT');
      assert.match(err!.message, new RegExp(intent));
    }
    // a query for some members needs neither
    const some = await h.run(shard.requestGuildMembers({ guild_id: guild, query: 'u', limit: 5 }));
    assert.ok(Array.isArray(some));
    assert.equal(h.sim.received(0).filter((p) => p.op === 8).length, 1, 'only the allowed request reached the gateway');
  } finally {
    await h.stop();
  }
});

// ---- guildsReady -----------------------------------------------------------------------------------------------

test('guildsReady: every guild arrived, or the missing ones after guildsTimeout', { timeout: 60_000 }, async () => {
  const h = await harness({ guilds: 4, guildCreateDelay: 200 });
  try {
    const shard = h.shard();
    const ready = next(shard, 'guildsReady');
    let creates = 0;
    shard.on('dispatch', (e) => {
      if (e.type === 'GUILD_CREATE') creates++;
    });
    await h.run(shard.connect());
    const [e] = (await h.run(ready)) as [GuildsReadyEvent];
    assert.deepEqual(e, { shardId: 0, guilds: 4, unavailable: [] });
    assert.equal(creates, 4, 'every GUILD_CREATE came before guildsReady');
  } finally {
    await h.stop();
  }
  const missing = await harness({ guilds: 3 });
  try {
    const outage = missing.sim.guildIds[1]!;
    missing.sim.setOptions({ unavailableGuilds: [outage] });
    const shard = missing.shard({ guildsTimeout: 5000 });
    const ready = next(shard, 'guildsReady');
    await missing.run(shard.connect());
    const startedAt = missing.clock.now();
    const [e] = (await missing.run(ready)) as [GuildsReadyEvent];
    assert.deepEqual(e, { shardId: 0, guilds: 2, unavailable: [outage] });
    assert.ok(missing.clock.now() - startedAt >= 4000, 'after the timeout');
  } finally {
    await missing.stop();
  }
});

// ---- outages ---------------------------------------------------------------------------------------------------

test('a 10 s outage of new connections: the shard RESUMEs after it and receives every event sent meanwhile, no new IDENTIFY', { timeout: 60_000 }, async () => {
  const h = await harness({ guilds: 1 });
  try {
    const shard = h.shard();
    const received: number[] = [];
    shard.on('dispatch', (e) => {
      if (e.type === 'MESSAGE_CREATE') received.push(Number((e.data as { content: string }).content));
    });
    const failures: DisconnectedEvent[] = [];
    shard.on('disconnected', (e) => failures.push(e));
    let identifies = 0;
    h.sim.on('identify', () => identifies++);
    await h.run(shard.connect());
    let n = 0;
    const guild_id = h.sim.guildIds[0]!;
    const send = () => h.sim.dispatch(0, 'MESSAGE_CREATE', { id: String(1000 + n), guild_id, channel_id: '1', content: String(n++), author: { id: '2' } });
    // traffic flowing: one event every 250 virtual ms, through the outage and after it
    let stopped = false;
    let timer: ReturnType<typeof h.clock.setTimeout> | undefined;
    const tick = () => {
      if (stopped) return;
      send();
      timer = h.clock.setTimeout(tick, 250);
    };
    tick();
    try {
      await h.until(() => received.length >= 5, 'traffic');
      h.sim.refuseConnections(10_000);
      const outageAt = h.clock.now();
      assert.ok(h.sim.terminate(0));
      await h.until(() => h.clock.now() - outageAt > 10_000 && shard.state === 'ready' && failures.length >= 3, 'the shard back after the outage');
      await h.until(() => received.length >= n - 1, 'the replay');
    } finally {
      stopped = true;
      h.clock.clearTimeout(timer);
    }
    await h.until(() => received.length === n, 'every event');
    assert.deepEqual(
      received,
      Array.from({ length: n }, (_, i) => i),
      'every event exactly once, in order',
    );
    assert.equal(identifies, 1, 'no new IDENTIFY');
    assert.ok(
      failures.slice(1).some((f) => f.kind === 'connect-failed'),
      `refused connects reported: ${failures.map((f) => f.kind).join(', ')}`,
    );
    assert.ok(
      failures.every((f) => f.action === 'resume'),
      'always resume',
    );
    assert.ok(shard.counters.resumes >= 1);
  } finally {
    await h.stop();
  }
});

// ---- connect({ timeout, signal }) ------------------------------------------------------------------------------

test('connect({ timeout }) against an unreachable gateway: retried and reported, then GatewayUnreachableError, shard closed', { timeout: 60_000 }, async () => {
  const clock = new ManualClock();
  const shard = new Shard({ token: TOKEN, intents: 1, gatewayUrl: `ws://127.0.0.1:${await freePort()}`, clock });
  const failures: DisconnectedEvent[] = [];
  shard.on('disconnected', (e) => failures.push(e));
  const states: string[] = [];
  shard.on('stateChange', (c) => states.push(c.to));
  const startedAt = clock.now();
  const err = await drive(clock, shard.connect({ timeout: 10_000 }), offline([shard], 'connect({ timeout })')).then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(err instanceof GatewayUnreachableError, String(err));
  assert.equal(err.code, 'GATEWAY_UNREACHABLE');
  assert.equal(err.shardId, 0);
  assert.ok(err.attempts >= 3, `${err.attempts} attempts`);
  assert.ok(clock.now() - startedAt >= 10_000);
  assert.ok(!err.message.includes(TOKEN));
  assert.ok(failures.length >= 3 && failures.every((f) => f.kind === 'connect-failed' && f.code === 1006), failures.map((f) => f.kind).join());
  assert.match(err.message, /ECONNREFUSED/, 'the last cause is in the message');
  assert.ok(err.cause instanceof Error);
  assert.ok(states.includes('reconnecting'));
  assert.equal(shard.state, 'closed');
});

test('connect({ signal }): an error named AbortError (the signal reason when it is one), shard closed', { timeout: 60_000 }, async () => {
  const clock = new ManualClock();
  const url = `ws://127.0.0.1:${await freePort()}`;
  const shard = new Shard({ token: TOKEN, intents: 1, gatewayUrl: url, clock });
  const ac = new AbortController();
  const p = shard.connect({ signal: ac.signal });
  await driveUntil(clock, () => shard.state === 'reconnecting', offline([shard], 'a failed attempt'));
  ac.abort();
  const err = await p.then(
    () => null,
    (e: unknown) => e as Error,
  );
  assert.equal(err?.name, 'AbortError');
  assert.equal(err, ac.signal.reason, 'the signal reason itself');
  assert.equal(shard.state, 'closed');
  const other = new Shard({ token: TOKEN, intents: 1, gatewayUrl: url, clock });
  const ac2 = new AbortController();
  const p2 = other.connect({ signal: ac2.signal });
  ac2.abort(new Error('shutting down'));
  const err2 = await p2.then(
    () => null,
    (e: unknown) => e as Error,
  );
  assert.equal(err2?.name, 'AbortError');
  assert.equal((err2 as Error & { cause?: unknown }).cause, ac2.signal.reason);
  await assert.rejects(other.connect({ signal: AbortSignal.abort() }), { name: 'AbortError' });
});

test('a timed-out connect() leaves nothing behind: the process exits by itself', { timeout: 60_000 }, async () => {
  const script = `
    import { Shard } from ${JSON.stringify(new URL('../src/shard.ts', import.meta.url).href)};
    import { scaledClock } from ${JSON.stringify(new URL('../src/clock.ts', import.meta.url).href)};
    const s = new Shard({ token: 'child-token-0000', intents: 1, gatewayUrl: 'ws://127.0.0.1:${await freePort()}', clock: scaledClock(0.01) });
    s.connect({ timeout: 5000 }).then(() => console.log('connected'), (e) => console.log('failed', e.code));`;
  const result = await runChild(script, 'timed-out connect()', 30_000);
  assert.equal(result.out, 'failed GATEWAY_UNREACHABLE');
  assert.equal(result.code, 0);
  assert.ok(result.ms < 3000, `exited ${result.ms} ms after the failure`);
});

// ---- silent ----------------------------------------------------------------------------------------------------

test("a silent shard (ACKs, no dispatch) is reported and, with silentAction 'resume', RESUMEs its session", { timeout: 60_000 }, async () => {
  const h = await harness({ guilds: 2, heartbeatInterval: 10_000 });
  try {
    const shard = h.shard({ silentTimeout: 30_000, silentAction: 'resume' });
    const silent = next(shard, 'silent');
    let identifies = 0;
    h.sim.on('identify', () => identifies++);
    const resumed = next(h.sim, 'resume');
    await h.run(shard.connect());
    const [e] = (await h.run(silent)) as [SilentEvent];
    assert.equal(e.shardId, 0);
    assert.equal(e.guilds, 2);
    assert.ok(e.since >= 30_000, `since ${e.since}`);
    await h.run(resumed);
    await h.until(() => shard.state === 'ready' && shard.counters.resumes === 1, 'resumed');
    assert.equal(identifies, 1);
    assert.equal(shard.counters.silent, 1);
  } finally {
    await h.stop();
  }
});

test('bad options are refused at once with INVALID_OPTION, never retried', async () => {
  const base = { token: TOKEN, intents: 1, gatewayUrl: 'ws://127.0.0.1:1' };
  assert.throws(() => new Shard({ ...base, silentAction: 'bogus' as 'resume' }), { code: 'INVALID_OPTION' });
  assert.throws(() => new Shard({ ...base, guildsTimeout: -1 }), { code: 'INVALID_OPTION' });
  assert.throws(() => new Shard({ ...base, silentTimeout: Number.NaN }), { code: 'INVALID_OPTION' });
  const shard = new Shard(base);
  await assert.rejects(shard.connect({ timeout: 0 }), { code: 'INVALID_OPTION' });
  assert.equal(shard.state, 'idle', 'nothing was started');
});
