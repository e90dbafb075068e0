/**
 * The operator's signals of `ShardCore` on a virtual clock (issue 13): RATE_LIMITED, guilds loading (`guildsReady`),
 * silent shards, and long outages that must not cost the session. No sockets, no sleeps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RESUME_URL, World } from './helpers/core-harness.js';

const INTERVAL = 41_250;

/** connect, HELLO, IDENTIFY, READY listing `guilds` as unavailable. */
function readyWith(guilds: string[], o: ConstructorParameters<typeof World>[0] = {}): World {
  const w = new World(o);
  w.connect();
  w.hello(INTERVAL);
  w.ready('session-1', RESUME_URL, guilds);
  return w;
}

// ---- RATE_LIMITED ----------------------------------------------------------------------------------------------

test('RATE_LIMITED: a rateLimited event (retry_after in ms, guild, nonce), counted, and still delivered as a dispatch', () => {
  const w = World.ready();
  w.dispatch('RATE_LIMITED', { opcode: 8, retry_after: 27.43, meta: { guild_id: '81384788765712384', nonce: 'n1' } });
  assert.deepEqual(w.eventsOf('rateLimited'), [{ kind: 'rateLimited', shardId: 0, opcode: 8, retryAfter: 27_430, guildId: '81384788765712384', nonce: 'n1' }]);
  assert.equal(w.core.counters.rateLimited, 1);
  assert.deepEqual(
    w.effectsOf('dispatch').map((d) => d.event.type),
    ['READY', 'RATE_LIMITED'],
  );
  // without a nonce, a missing or nonsensical retry_after
  w.dispatch('RATE_LIMITED', { opcode: 8, retry_after: 'soon', meta: { guild_id: '1' } });
  assert.deepEqual(w.eventsOf('rateLimited')[1], { kind: 'rateLimited', shardId: 0, opcode: 8, retryAfter: 0, guildId: '1', nonce: null });
  assert.equal(w.core.counters.rateLimited, 2);
  assert.deepEqual(w.violations, []);
});

test('RATE_LIMITED is reported even when the events filter leaves it out or dispatches are forwarded raw', () => {
  for (const core of [{ events: new Set(['MESSAGE_CREATE']) }, { raw: true }]) {
    const w = World.ready({ core });
    w.dispatch('RATE_LIMITED', { opcode: 8, retry_after: 1.5, meta: { guild_id: '1', nonce: 'x' } });
    assert.equal(w.eventsOf('rateLimited')[0]?.retryAfter, 1500, JSON.stringify(Object.keys(core)));
    assert.equal(w.core.counters.rateLimited, 1);
    assert.equal(w.effectsOf('raw').length, 0, 'parsed, never forwarded raw');
  }
});

// ---- guildsReady -----------------------------------------------------------------------------------------------

test('guildsReady after the last unavailable guild arrives, after its GUILD_CREATE, and the wait is released', () => {
  const w = readyWith(['1', '2', '3']);
  assert.equal(w.timers.has('guilds'), true);
  w.dispatch('GUILD_CREATE', { id: '1' });
  w.dispatch('GUILD_CREATE', { id: '99' }); // a guild READY did not list (joined meanwhile): not awaited
  w.dispatch('GUILD_CREATE', { id: '2' });
  assert.equal(w.eventsOf('guildsReady').length, 0);
  const before = w.log.length;
  w.dispatch('GUILD_CREATE', { id: '3' });
  assert.deepEqual(w.eventsOf('guildsReady'), [{ kind: 'guildsReady', shardId: 0, guilds: 3, unavailable: [] }]);
  const after = w.log.slice(before);
  const dispatchAt = after.findIndex((e) => e.type === 'dispatch');
  const readyAt = after.findIndex((e) => e.type === 'event' && e.event.kind === 'guildsReady');
  assert.ok(dispatchAt >= 0 && dispatchAt < readyAt, 'the last GUILD_CREATE is delivered before guildsReady');
  assert.equal(w.timers.has('guilds'), false, 'timer cleared');
  assert.equal((w.core as unknown as { guildWait: unknown }).guildWait, null, 'the Set is released');
  w.dispatch('GUILD_CREATE', { id: '4' });
  w.advance(60_000);
  assert.equal(w.eventsOf('guildsReady').length, 1, 'once');
});

test('guildsReady at once when READY lists no unavailable guild', () => {
  const w = World.ready();
  assert.deepEqual(w.eventsOf('guildsReady'), [{ kind: 'guildsReady', shardId: 0, guilds: 0, unavailable: [] }]);
  assert.equal(w.timers.has('guilds'), false);
});

test('guildsTimeout: reported with the missing ids; each awaited GUILD_CREATE restarts the wait', () => {
  const w = readyWith(['1', '2', '3'], { core: { guildsTimeout: 15_000 } });
  w.advance(10_000);
  w.dispatch('GUILD_CREATE', { id: '1' });
  w.advance(14_999);
  assert.equal(w.eventsOf('guildsReady').length, 0, 'the wait restarted at the GUILD_CREATE');
  w.advance(1);
  assert.deepEqual(w.eventsOf('guildsReady'), [{ kind: 'guildsReady', shardId: 0, guilds: 1, unavailable: ['2', '3'] }]);
  assert.equal(w.now, 25_000);
  w.dispatch('GUILD_CREATE', { id: '2' });
  assert.equal(w.eventsOf('guildsReady').length, 1, 'a late guild does not report again');
});

test('guilds are tracked when GUILD_CREATE is filtered out or forwarded raw', () => {
  for (const core of [{ events: new Set(['MESSAGE_CREATE']) }, { raw: true }]) {
    const w = readyWith(['1', '2'], { core });
    w.dispatch('GUILD_CREATE', { id: '1', name: 'one' });
    w.dispatch('GUILD_CREATE', { id: '2', name: 'two' });
    assert.deepEqual(w.eventsOf('guildsReady'), [{ kind: 'guildsReady', shardId: 0, guilds: 2, unavailable: [] }]);
    if ('raw' in core) assert.equal(w.effectsOf('raw').length, 2, 'still forwarded raw');
    else assert.equal(w.core.counters.filtered, 2);
  }
});

test('guildsReady once per session: a RESUME mid-load keeps waiting, a RESUME after it does not re-emit, a new IDENTIFY does', () => {
  const w = readyWith(['1', '2'], { core: { guildsTimeout: 15_000 } });
  w.dispatch('GUILD_CREATE', { id: '1' });
  w.closeSocket(1006);
  w.retry();
  w.hello();
  assert.equal(w.written.at(-1)!.op, 6);
  w.dispatch('GUILD_CREATE', { id: '2' }); // replayed
  w.resumed();
  assert.deepEqual(w.eventsOf('guildsReady'), [{ kind: 'guildsReady', shardId: 0, guilds: 2, unavailable: [] }]);
  w.closeSocket(1006);
  w.retry();
  w.hello();
  w.resumed();
  w.advance(30_000);
  assert.equal(w.eventsOf('guildsReady').length, 1, 'RESUMED does not re-emit');
  w.invalidSession(false);
  w.retry();
  w.hello();
  assert.equal(w.written.at(-1)!.op, 2);
  w.ready('session-2', RESUME_URL, ['1', '2']);
  w.dispatch('GUILD_CREATE', { id: '1' });
  w.dispatch('GUILD_CREATE', { id: '2' });
  assert.equal(w.eventsOf('guildsReady').length, 2, 'a new session reports again');
});

test('a session lost mid-load abandons its wait (no stale report); close() releases it', () => {
  const w = readyWith(['1', '2'], { core: { guildsTimeout: 15_000 } });
  w.invalidSession(false);
  assert.equal(w.timers.has('guilds'), false);
  w.advance(60_000);
  assert.equal(w.eventsOf('guildsReady').length, 0);
  const v = readyWith(['1']);
  v.close(true);
  assert.equal(v.timers.has('guilds'), false);
  v.advance(60_000);
  assert.equal(v.eventsOf('guildsReady').length, 0);
});

// ---- silent shards ---------------------------------------------------------------------------------------------

test('silent: heartbeats ACKed, no dispatch for silentTimeout on a shard with guilds → one silent event', () => {
  const w = readyWith(['1'], { autoAck: true, core: { silentTimeout: 120_000, random: () => 0.5 } });
  w.dispatch('GUILD_CREATE', { id: '1' });
  w.advance(119_000);
  assert.equal(w.eventsOf('silent').length, 0);
  w.advance(INTERVAL + 1000);
  const [silent, ...more] = w.eventsOf('silent');
  assert.ok(silent, 'reported');
  assert.equal(more.length, 0);
  assert.equal(silent.guilds, 1);
  assert.ok(silent.since >= 120_000 && silent.since < 120_000 + INTERVAL, `since ${silent.since}`);
  assert.equal(w.core.counters.silent, 1);
  assert.equal(w.core.state, 'ready', 'report only by default');
  w.advance(600_000);
  assert.equal(w.eventsOf('silent').length, 1, 'once per silence');
  w.dispatch('MESSAGE_CREATE', { id: 'm' });
  w.advance(INTERVAL * 5);
  assert.equal(w.eventsOf('silent').length, 2, 'a new silence after traffic is reported again');
  assert.deepEqual(w.violations, []);
});

test('silent: dispatches keep it quiet; off by default; never on a shard without guilds', () => {
  const busy = readyWith(['1'], { autoAck: true, core: { silentTimeout: 60_000 } });
  for (let i = 0; i < 20; i++) {
    busy.advance(30_000);
    busy.dispatch('MESSAGE_CREATE', { id: String(i) });
  }
  assert.equal(busy.eventsOf('silent').length, 0);
  const off = readyWith(['1'], { autoAck: true });
  off.advance(3_600_000);
  assert.equal(off.eventsOf('silent').length, 0);
  const empty = readyWith([], { autoAck: true, core: { silentTimeout: 60_000 } });
  empty.advance(600_000);
  assert.equal(empty.eventsOf('silent').length, 0);
});

test("silentAction 'resume': a silent shard closes its connection and RESUMEs the session", () => {
  const w = readyWith(['1'], { autoAck: true, core: { silentTimeout: 120_000, silentAction: 'resume' } });
  while (w.eventsOf('silent').length === 0 && w.now < 600_000) w.advance(1000);
  assert.equal(w.eventsOf('silent').length, 1);
  const [d] = w.eventsOf('disconnected');
  assert.deepEqual({ cause: d?.cause, action: d?.action }, { cause: 'silent', action: 'resume' });
  if (w.conn === null) w.retry(); // the first reconnect is immediate
  w.hello();
  assert.equal(w.written.at(-1)!.op, 6, 'RESUME');
  assert.equal(w.sent(2).length, 1, 'no new IDENTIFY');
  w.resumed();
  assert.equal(w.core.state, 'ready');
  assert.deepEqual(w.violations, []);
});

// ---- outages -----------------------------------------------------------------------------------------------------

test('a long outage (13 s+ of refused and HELLO-less connects) keeps the session: RESUME with back-off, no IDENTIFY', () => {
  const w = World.ready({ autoAck: true });
  w.dispatch('MESSAGE_CREATE', { id: 'a' });
  const session = w.core.session!;
  w.closeSocket(1006);
  const start = w.now;
  /** Back-off chosen after each failure: the reconnect timer's distance. */
  const delays: number[] = [w.timers.get('reconnect')! - w.now];
  for (let i = 0; w.now - start < 13_000 || i < 12; i++) {
    w.retry();
    if (i % 4 === 3)
      w.advance(20_000); // the socket opens but no HELLO comes: hello timeout
    else w.refuse();
    assert.ok(w.core.session, `session kept after attempt ${i + 1}`);
    assert.equal(w.core.state, 'reconnecting');
    delays.push(w.timers.get('reconnect')! - w.now);
  }
  assert.ok(delays.length >= 12);
  // full jitter: attempt n waits base × 2^(n-1) × [0.5, 1), capped at 60 s
  delays.forEach((d, n) => {
    const raw = n === 0 ? 0 : Math.min(60_000, 1000 * 2 ** (n - 1));
    assert.ok(d >= raw * 0.5 && d <= raw, `attempt ${n}: ${d} ms (back-off ${delays.join(', ')})`);
  });
  assert.equal(w.sent(6).length, 0, 'nothing reached a gateway');
  const hosts = w.opens().map((o) => new URL(o.url).host);
  assert.deepEqual(hosts.slice(0, 4), ['gateway.test', 'resume.test', 'resume.test', 'gateway.test'], 'after 2 resume URL misses, the base URL');
  // the network is back
  w.retry();
  w.hello();
  const resume = w.written.at(-1)!;
  assert.equal(resume.op, 6);
  assert.deepEqual(resume.d, { session_id: session.sessionId, seq: session.sequence });
  w.resumed();
  assert.equal(w.core.state, 'ready');
  assert.equal(w.sent(2).length, 1, 'only the first IDENTIFY');
  assert.equal(w.core.counters.resumes, 1, 'the refused connects were not RESUME attempts');
  assert.deepEqual(w.violations, []);
});

test('after an outage only op 9 false or a non-resumable close ends the session', () => {
  const w = World.ready();
  w.closeSocket(1006);
  for (let i = 0; i < 6; i++) {
    w.retry();
    w.refuse();
  }
  w.retry();
  w.hello();
  assert.equal(w.written.at(-1)!.op, 6);
  w.invalidSession(false);
  assert.equal(w.core.session, null);
  const v = World.ready();
  v.closeSocket(1006);
  for (let i = 0; i < 6; i++) {
    v.retry();
    v.refuse();
  }
  v.retry();
  v.hello();
  v.closeSocket(4007); // invalid seq: not resumable
  assert.equal(v.core.session, null);
  v.retry();
  v.hello();
  assert.equal(v.written.at(-1)!.op, 2);
});
