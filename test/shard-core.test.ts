/**
 * The shard protocol on a virtual clock: every path of `ShardCore`, driven through the virtual world of
 * `helpers/core-harness.ts`. No sockets, no sleeps: each test runs in milliseconds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecodeError, GatewayError, type SendError, ShardlineError } from '../src/errors.js';
import { MAX_PAYLOAD_BYTES } from '../src/shard-core.js';
import { CLOSE_CODES } from '../src/session.js';
import { TRANSITIONS } from '../src/state.js';
import type { PresenceData } from '../src/events.js';
import { GATEWAY_URL, RESUME_URL, World, type Written } from './helpers/core-harness.js';

const INTERVAL = 41_250;
const presence = (name: string): PresenceData => ({ since: null, activities: [{ name, type: 0 }], status: 'online', afk: false });
const at = (ws: Written[]) => ws.map((w) => w.at);
const errorCode = (w: World, id: number) => (w.settled.get(id) as ShardlineError | null | undefined)?.code ?? w.settled.get(id);
/** Most payloads with times in any half-open span of `span` ms. */
function maxInWindow(times: number[], span = 60_000): number {
  let max = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! >= span) j++;
    max = Math.max(max, i - j + 1);
  }
  return max;
}

// ---- handshake -------------------------------------------------------------------------------------------

test('HELLO then IDENTIFY: nothing written before HELLO, IDENTIFY only after the identify turn', () => {
  const w = new World({ autoGrant: false });
  w.connect();
  assert.equal(w.core.state, 'connecting');
  assert.deepEqual(
    w.opens().map((o) => o.url),
    [`${GATEWAY_URL}/?v=10&encoding=json`],
  );
  w.advance(5000);
  assert.deepEqual(w.written, []);
  w.hello(INTERVAL);
  assert.equal(w.core.state, 'identifying');
  assert.deepEqual(w.turns, [w.conn], 'asked the identify queue for a turn');
  w.advance(3000);
  assert.deepEqual(w.sent(2), [], 'no IDENTIFY without a turn');
  w.grant();
  const [identify] = w.sent(2);
  assert.equal(identify!.kind, 'auth');
  assert.deepEqual(identify!.d, { intents: 513, shard: [0, 1], properties: w.options.properties, large_threshold: 50, compress: false });
  assert.equal(w.core.state, 'identifying');
  w.ready('abc', RESUME_URL);
  assert.equal(w.core.state, 'ready');
  assert.deepEqual(w.core.session, { sessionId: 'abc', sequence: 1, resumeUrl: RESUME_URL });
  assert.deepEqual(w.violations, []);
});

test('first beat at interval × jitter, then every interval carrying the last sequence', () => {
  const w = World.ready({ core: { random: () => 0.25 } });
  const first = Math.floor(INTERVAL * 0.25);
  w.advance(first - 1);
  assert.deepEqual(w.sent(1), []);
  w.advance(1);
  assert.deepEqual(
    w.sent(1).map((b) => [b.at, b.d]),
    [[first, 1]],
  );
  w.dispatch('MESSAGE_CREATE', { id: '1' });
  w.dispatch('MESSAGE_CREATE', { id: '2' });
  w.ack();
  w.advance(INTERVAL);
  w.ack();
  w.advance(INTERVAL);
  assert.deepEqual(
    w.sent(1).map((b) => [b.at, b.d]),
    [
      [first, 1],
      [first + INTERVAL, 3],
      [first + 2 * INTERVAL, 3],
    ],
  );
  assert.deepEqual(
    w.eventsOf('heartbeat').map((e) => e.requested),
    [false, false, false],
  );
  assert.equal(w.core.heartbeat.latency.recent.length, 2);
});

test('zombie: no ACK and no traffic since the last beat → dropped without handshake, then RESUME', () => {
  const w = World.ready({ core: { random: () => 0 } });
  w.advance(0); // first beat at once (jitter 0)
  assert.equal(w.sent(1).length, 1);
  w.advance(INTERVAL);
  assert.equal(w.core.counters.zombies, 1);
  assert.equal(w.sockets.get(1)!.closedWith, null, 'a dead socket gets no close handshake');
  assert.deepEqual(
    w.eventsOf('disconnected').map((e) => [e.cause, e.action, e.code]),
    [['zombie', 'resume', null]],
  );
  assert.equal(w.sent(1).length, 1, 'no beat on a zombie');
  assert.ok(w.opens()[1]!.url.startsWith(RESUME_URL));
  w.hello();
  assert.deepEqual(
    w.sent(6).map((r) => r.d),
    [{ session_id: 'session-1', seq: 1 }],
  );
  w.resumed();
  assert.equal(w.core.state, 'ready');
  assert.deepEqual(w.violations, []);
});

test('a late ACK behind traffic is tolerated twice, then the connection is a zombie', () => {
  const w = World.ready({ core: { random: () => 0 } });
  w.advance(0);
  for (let i = 0; i < 2; i++) {
    w.dispatch('MESSAGE_CREATE', {});
    w.advance(INTERVAL);
  }
  assert.equal(w.core.counters.zombies, 0);
  assert.equal(w.sent(1).length, 3);
  w.dispatch('MESSAGE_CREATE', {});
  w.advance(INTERVAL);
  assert.equal(w.core.counters.zombies, 1);
  assert.equal(w.sent(1).length, 3);
});

test('paused reading suspends zombie detection; after it the connection gets one interval', () => {
  const w = World.ready({ core: { random: () => 0 } });
  w.advance(0);
  w.pause(true);
  w.advance(5 * INTERVAL);
  assert.equal(w.core.counters.zombies, 0);
  assert.equal(w.sent(1).length, 6, 'beats go on while paused');
  w.pause(false);
  w.advance(INTERVAL);
  assert.equal(w.core.counters.zombies, 0, 'one interval to deliver what piled up');
  w.advance(INTERVAL);
  assert.equal(w.core.counters.zombies, 1, 'nothing arrived in it');
});

test('op 1 is answered at once and does not move the regular beat', () => {
  const w = World.ready({ core: { random: () => 0.5 } });
  const due = w.timers.get('heartbeat');
  w.advance(1000);
  w.requestHeartbeat();
  assert.deepEqual(
    w.sent(1).map((b) => [b.at, b.d]),
    [[1000, 1]],
  );
  assert.deepEqual(
    w.eventsOf('heartbeat').map((e) => e.requested),
    [true],
  );
  assert.equal(w.timers.get('heartbeat'), due);
  w.advance(10);
  w.ack();
  assert.deepEqual(w.core.heartbeat.latency.recent, [10]);
});

// ---- reconnects ------------------------------------------------------------------------------------------

test('op 7: closed with a resumable code, RESUME on the resume URL, RESUMED → ready', () => {
  const w = World.ready();
  w.dispatch('MESSAGE_CREATE', {});
  w.reconnect();
  assert.equal(w.sockets.get(1)!.closedWith, 4000);
  assert.equal(w.core.state, 'reconnecting');
  w.advance(0);
  assert.equal(w.opens()[1]!.url, `${RESUME_URL}/?v=10&encoding=json`);
  assert.equal(w.core.state, 'connecting');
  w.hello();
  assert.equal(w.core.state, 'resuming');
  assert.deepEqual(
    w.sent(6).map((r) => r.d),
    [{ session_id: 'session-1', seq: 2 }],
  );
  w.dispatch('MESSAGE_CREATE', {}); // replayed
  w.resumed();
  assert.equal(w.core.state, 'ready');
  assert.deepEqual(
    w.eventsOf('resumed').map((e) => e.session.sequence),
    [4],
  );
  assert.deepEqual(w.violations, []);
});

test('op 9 true resumes', () => {
  const w = World.ready();
  w.invalidSession(true);
  w.advance(0);
  w.hello();
  assert.equal(w.sent(6).length, 1);
  assert.ok(w.opens()[1]!.url.startsWith(RESUME_URL));
});

test('op 9 false: session dropped, wait 1–5 s, then IDENTIFY on the base URL', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const w = World.ready({ seed });
    w.advance(500);
    w.invalidSession(false);
    assert.equal(w.core.session, null);
    w.advance(999);
    assert.equal(w.opens().length, 1, 'not before 1 s');
    w.advance(4001);
    assert.equal(w.opens().length, 2, 'within 5 s');
    const wait = w.sockets.get(2)!.openedAt - 500;
    assert.ok(wait >= 1000 && wait <= 5000, `waited ${wait} ms`);
    assert.ok(w.opens()[1]!.url.startsWith(GATEWAY_URL));
    w.hello();
    assert.equal(w.sent(2).length, 2, 'IDENTIFY anew');
    assert.equal(w.sent(6).length, 0);
    assert.deepEqual(w.violations, []);
  }
});

test('every close code 4000–4014 follows the table: resume, identify anew, or stop with a fix', () => {
  for (const [key, row] of Object.entries(CLOSE_CODES)) {
    const code = Number(key);
    const w = World.ready();
    w.dispatch('GUILD_CREATE', {});
    w.closeSocket(code);
    const [disc] = w.eventsOf('disconnected');
    assert.equal(disc!.action, row.action, `close ${code}`);
    if (row.action === 'fatal') {
      assert.equal(w.core.state, 'fatal', `close ${code}`);
      const [fatal] = w.effectsOf('fatal');
      assert.ok(fatal!.error instanceof GatewayError);
      assert.equal(fatal!.error.closeCode, code);
      assert.ok(fatal!.error.message.includes(row.fix!), `close ${code}: the message says what to fix`);
      w.advance(10 * 60_000);
      assert.equal(w.opens().length, 1, `close ${code}: never retried`);
      assert.equal(w.timers.size, 0);
      continue;
    }
    w.advance(0);
    assert.equal(w.opens().length, 2, `close ${code}: reconnects`);
    w.hello();
    const auth = w.written.at(-1)!;
    if (row.action === 'resume') {
      assert.ok(w.opens()[1]!.url.startsWith(RESUME_URL));
      assert.deepEqual([auth.op, auth.d], [6, { session_id: 'session-1', seq: 2 }], `close ${code}`);
    } else {
      assert.ok(w.opens()[1]!.url.startsWith(GATEWAY_URL));
      assert.equal(auth.op, 2, `close ${code}: IDENTIFY anew`);
    }
    assert.deepEqual(w.violations, []);
  }
});

test('4009 resumes when resumeOnSessionTimeout is set', () => {
  const w = World.ready({ core: { resumeOnSessionTimeout: true } });
  w.closeSocket(4009);
  w.advance(0);
  w.hello();
  assert.equal(w.written.at(-1)!.op, 6);
});

test('1006 (and 1000/1001 from the server) resume', () => {
  for (const code of [1006, 1000, 1001]) {
    const w = World.ready();
    w.closeSocket(code);
    w.advance(0);
    w.hello();
    assert.equal(w.written.at(-1)!.op, 6, `close ${code}`);
  }
});

test('refused connects keep the session; after 2 misses the RESUME goes through the base URL', () => {
  const w = World.ready();
  w.closeSocket(1006);
  for (let i = 0; i < 3; i++) {
    w.retry();
    w.refuse();
  }
  assert.ok(w.core.session);
  w.retry();
  const urls = w.opens().map((o) => new URL(o.url).host);
  assert.deepEqual(urls, ['gateway.test', 'resume.test', 'resume.test', 'gateway.test', 'gateway.test']);
  w.hello();
  assert.equal(w.written.at(-1)!.op, 6);
});

test('RESUME unanswered maxResumeAttempts times in a row → IDENTIFY anew', () => {
  const w = World.ready({ core: { maxResumeAttempts: 2 } });
  for (let i = 0; i < 2; i++) {
    w.closeSocket(1006);
    w.retry();
    w.hello();
  }
  assert.equal(w.sent(6).length, 2);
  w.closeSocket(1006);
  assert.equal(w.core.session, null);
  w.retry();
  w.hello();
  assert.equal(w.written.at(-1)!.op, 2);
});

test('hello timeout: dropped, session kept, RESUME later', () => {
  const w = new World({ core: { session: { sessionId: 's', sequence: 7, resumeUrl: RESUME_URL } } });
  w.connect();
  w.advance(19_999);
  assert.equal(w.eventsOf('disconnected').length, 0);
  w.advance(1);
  assert.deepEqual(
    w.eventsOf('disconnected').map((e) => [e.cause, e.action]),
    [['hello-timeout', 'resume']],
  );
  assert.equal(w.opens().length, 2);
  w.hello();
  assert.deepEqual(
    w.sent(6).map((r) => r.d),
    [{ session_id: 's', seq: 7 }],
  );
});

test('ready timeout: no READY after IDENTIFY → dropped and retried', () => {
  const w = new World({ autoAck: true });
  w.connect();
  w.hello();
  assert.equal(w.sent(2).length, 1);
  w.advance(119_999);
  assert.equal(w.eventsOf('disconnected').length, 0);
  w.advance(1);
  assert.deepEqual(
    w.eventsOf('disconnected').map((e) => e.cause),
    ['ready-timeout'],
  );
  assert.equal(w.opens().length, 2);
});

test('identify queue failure stops the shard', () => {
  const w = new World({ autoGrant: false });
  w.connect();
  w.hello();
  w.step((c) => c.identifyFailed(w.conn!, new Error('daily identify budget spent')));
  assert.equal(w.core.state, 'fatal');
  assert.match(w.effectsOf('fatal')[0]!.error.message, /identify queue failed: daily identify budget spent/);
  assert.equal(w.timers.size, 0);
  assert.deepEqual(w.openSockets(), []);
});

// ---- dispatches ------------------------------------------------------------------------------------------

test('duplicates (seq ≤ last) are dropped', () => {
  const w = World.ready();
  w.dispatch('MESSAGE_CREATE', { n: 2 });
  w.dispatch('MESSAGE_CREATE', { n: 3 });
  w.dispatch('MESSAGE_CREATE', { n: 3 }, 3);
  w.dispatch('MESSAGE_CREATE', { n: 2 }, 2);
  assert.deepEqual(
    w.effectsOf('dispatch').map((e) => e.event.sequence),
    [1, 2, 3],
  );
  assert.equal(w.core.session!.sequence, 3);
});

test('filtered dispatches are not parsed but advance the sequence', () => {
  const w = World.ready({ core: { events: new Set(['MESSAGE_CREATE']) } });
  // not valid JSON past the header: parsing it would fail
  w.frame(Buffer.from('{"t":"TYPING_START","s":2,"op":0,"d":{"broken'));
  assert.equal(w.core.counters.filtered, 1);
  assert.equal(w.core.session!.sequence, 2);
  assert.deepEqual(w.eventsOf('error'), []);
  w.dispatch('MESSAGE_CREATE', { id: 'm' }, 3);
  assert.deepEqual(
    w.effectsOf('dispatch').map((e) => [e.event.type, e.event.sequence]),
    [['MESSAGE_CREATE', 3]],
  );
  assert.equal(w.opens().length, 1);
});

// ---- commands and the rate limit ---------------------------------------------------------------------------

test('rate limit: commands use only limit − reserved, heartbeats keep their time, ≤ 120 per 60 s', () => {
  const w = World.ready({ autoAck: true, core: { random: () => 0.5 } });
  for (let i = 0; i < 400; i++) w.command(8, { guild_id: '1', query: '', limit: 0 });
  // 120 − 4 reserved (3 beats in 61 s + the IDENTIFY's slot), minus the IDENTIFY itself
  assert.equal(w.sent(8).length, 115);
  assert.equal(w.core.queued, 285);
  assert.ok(w.timers.has('commands'));
  w.advance(200_000);
  const beats = w.sent(1).filter((b) => b.conn === 1);
  assert.deepEqual(at(beats), [20_625, 61_875, 103_125, 144_375, 185_625], 'beats never delayed');
  assert.ok(maxInWindow(at(w.written)) <= 120);
  assert.ok(maxInWindow(at(w.sent(8)), 61_000) <= 116);
  assert.equal(w.sent(8).length, 400);
  assert.deepEqual(w.violations, []);
});

test('presence updates: at most 5 per 20 s (+ margin)', () => {
  const w = World.ready();
  const ids = Array.from({ length: 7 }, (_, i) => w.command(3, presence(`p${i}`)));
  assert.equal(w.sent(3).length, 5);
  w.advance(21_000);
  assert.equal(w.sent(3).length, 5);
  w.advance(1);
  assert.equal(w.sent(3).length, 7);
  assert.deepEqual(
    ids.map((id) => w.settled.get(id)),
    Array(7).fill(null),
  );
});

test('an accepted presence update is carried by later IDENTIFYs', () => {
  const w = World.ready({ core: { presence: presence('first') } });
  assert.deepEqual(w.sent(2)[0]!.d.presence, presence('first'));
  w.command(3, presence('second'));
  assert.deepEqual(
    w.sent(3).map((p) => p.d),
    [presence('second')],
  );
  w.closeSocket(4009); // a new session
  w.retry();
  w.hello();
  assert.deepEqual(w.sent(2)[1]!.d.presence, presence('second'));
});

test('payloads over 4096 bytes are rejected, 4096 exactly is accepted', () => {
  const w = World.ready();
  const ok = w.command(8, 'a'.repeat(MAX_PAYLOAD_BYTES - 15)); // {"op":8,"d":"…"} = 15 bytes + the string
  const big = w.command(8, 'a'.repeat(MAX_PAYLOAD_BYTES - 14));
  assert.equal(w.settled.get(ok), null);
  assert.equal(errorCode(w, big), 'PAYLOAD_TOO_LARGE');
  assert.equal(w.sent(8).length, 1);
});

test('queue full, and commands on a closed shard, are rejected at once', () => {
  const w = new World({ core: { maxQueuedCommands: 2 } });
  w.connect();
  const a = w.command(8, {});
  const b = w.command(8, {});
  const c = w.command(8, {});
  assert.equal(errorCode(w, c), 'QUEUE_FULL');
  assert.ok(!w.settled.has(a) && !w.settled.has(b));
  w.close(false);
  assert.equal(errorCode(w, a), 'SHARD_CLOSED');
  assert.equal(errorCode(w, w.command(8, {})), 'SHARD_CLOSED');
});

test('commands wait while reconnecting and go out after RESUMED', () => {
  const w = World.ready();
  w.closeSocket(1006);
  const id = w.command(4, { guild_id: '1', channel_id: null, self_mute: false, self_deaf: false });
  w.advance(0);
  w.hello();
  assert.ok(!w.settled.has(id));
  assert.deepEqual(
    w.written.map((x) => x.op),
    [2, 6],
  );
  w.resumed();
  assert.deepEqual(
    w.written.map((x) => x.op),
    [2, 6, 4],
  );
  assert.equal(w.settled.get(id), null);
});

// ---- close, pause, states ------------------------------------------------------------------------------------

test('close(resumable) returns the session and releases every timer and the socket', () => {
  const w = World.ready({ autoAck: true });
  w.advance(30_000);
  for (let i = 0; i < 200; i++) w.command(8, {});
  assert.ok(w.timers.has('heartbeat') && w.timers.has('commands'));
  const session = w.close(true);
  assert.deepEqual(session, { sessionId: 'session-1', sequence: 1, resumeUrl: RESUME_URL });
  assert.equal(w.core.state, 'closed');
  assert.equal(w.sockets.get(1)!.closedWith, 4000, 'a code that keeps the session');
  assert.deepEqual([...w.timers.keys()], []);
  assert.deepEqual(w.openSockets(), []);
  assert.equal(errorCode(w, 200), 'SHARD_CLOSED');
  w.advance(10 * 60_000);
  assert.equal(w.opens().length, 1);
  // connect() again resumes
  w.connect();
  w.hello();
  assert.equal(w.written.at(-1)!.op, 6);
});

test('close(false) ends the session with 1000; close during a back-off or an identify wait releases it too', () => {
  const w = World.ready();
  assert.equal(w.close(false), null);
  assert.equal(w.sockets.get(1)!.closedWith, 1000);
  assert.equal(w.core.session, null);

  const b = World.ready();
  b.closeSocket(1006);
  b.advance(0);
  b.refuse();
  assert.ok(b.timers.has('reconnect'));
  b.close(true);
  assert.equal(b.timers.size, 0);

  const c = new World({ autoGrant: false });
  c.connect();
  c.hello();
  assert.equal(c.turns.length, 1);
  c.close(true);
  assert.deepEqual(
    c.effectsOf('cancelIdentify').map((e) => e.conn),
    [1],
  );
  assert.equal(c.turns.length, 0);
  assert.equal(c.timers.size, 0);
});

test('pause/resume of reading only applies in ready', () => {
  const w = new World({ autoGrant: false });
  w.connect();
  w.hello();
  w.pause(true);
  assert.deepEqual(w.effectsOf('read'), [], 'a handshake always completes');
  w.grant();
  w.ready();
  assert.equal(w.readPaused, true);
  w.closeSocket(1006);
  assert.equal(w.readPaused, false, 'no connection, nothing paused');
  w.advance(0);
  w.hello();
  assert.equal(w.readPaused, false);
  w.resumed();
  assert.equal(w.readPaused, true);
  w.pause(false);
  assert.equal(w.readPaused, false);
  assert.deepEqual(
    w.effectsOf('read').map((e) => e.paused),
    [true, false, true, false],
  );
});

test('an illegal state transition throws (it is a bug)', () => {
  const w = new World();
  const core = w.core as unknown as { transition(to: string, cause: object): void };
  assert.throws(
    () => core.transition('ready', { kind: 'ready', reason: 'test' }),
    (e: unknown) => e instanceof ShardlineError && e.code === 'INTERNAL' && /idle → ready/.test(e.message),
  );
  assert.equal(w.core.state, 'idle');
  // every state can be closed or reach fatal, and every state but idle is left for a fresh connect
  for (const [from, to] of Object.entries(TRANSITIONS)) {
    assert.ok(from === 'closed' || to.includes('closed'), from);
    assert.ok(from === 'fatal' || to.includes('fatal'), from);
  }
});

// ---- regressions of the previous implementation --------------------------------------------------------------

test('regression: a command is counted once by the rate limit (~116 per window, not ~58)', () => {
  const w = World.ready({ autoAck: true, interval: INTERVAL });
  for (let i = 0; i < 1000; i++) w.command(8, { guild_id: '1', query: '', limit: 0 });
  w.advance(61_000);
  assert.ok(w.sent(8).length >= 110, `${w.sent(8).length} commands in the first 61 s`);
  w.advance(240_000);
  assert.ok(w.sent(8).length >= 4 * 110, `${w.sent(8).length} commands in 301 s`);
  assert.ok(maxInWindow(at(w.written)) <= 120, 'never more than 120 payloads in any 60 s');
  assert.deepEqual(w.violations, []);
});

test('regression: connect() during a reconnect back-off opens exactly one socket', () => {
  const w = World.ready({ autoAck: true, core: { backoff: { base: 5000, max: 60_000 } } });
  w.closeSocket(1006); // first retry: at once
  w.advance(0);
  w.refuse(); // second drop: a real back-off
  assert.equal(w.core.state, 'reconnecting');
  const deadline = w.timers.get('reconnect')!;
  assert.ok(deadline > w.now, 'a pending back-off');
  const opens = w.opens().length;
  w.connect();
  assert.equal(w.opens().length, opens + 1, 'exactly one new socket');
  assert.equal(w.timers.has('reconnect'), false, 'the back-off timer is cleared');
  w.hello();
  w.advance(deadline - w.now + 10_000);
  assert.equal(w.opens().length, opens + 1, 'the old back-off opened nothing');
  assert.equal(w.openSockets().length, 1);
  assert.deepEqual(w.violations, []);
});

test('regression: a server op 1 does not cause a false zombie', () => {
  const w = World.ready({ core: { random: () => 0.5 } });
  const first = Math.floor(INTERVAL / 2);
  w.advance(first); // regular beat
  w.advance(50);
  w.ack();
  w.advance(1000);
  w.requestHeartbeat(); // beaten at once; its ACK is late
  assert.equal(w.sent(1).length, 2);
  w.advance(first + INTERVAL - w.now); // the regular beat is due, no traffic since op 1
  assert.equal(w.core.counters.zombies, 0);
  assert.deepEqual(w.eventsOf('disconnected'), []);
  assert.deepEqual(at(w.sent(1)), [first, first + 1050, first + INTERVAL]);
  w.ack();
  w.advance(INTERVAL);
  assert.equal(w.core.state, 'ready');
});

test('regression: a presence whose IDENTIFY would exceed 4096 bytes is rejected and never poisons IDENTIFY', () => {
  const small = presence('small');
  const w = World.ready({ core: { presence: small } });
  let huge = presence('');
  for (let n = 3500; w.core.identifySize(huge) <= MAX_PAYLOAD_BYTES; n += 10) huge = presence('x'.repeat(n));
  assert.ok(Buffer.byteLength(JSON.stringify({ op: 3, d: huge })) <= MAX_PAYLOAD_BYTES, 'op 3 alone fits');
  const id = w.command(3, huge);
  assert.equal(errorCode(w, id), 'PAYLOAD_TOO_LARGE');
  assert.match((w.settled.get(id) as SendError).message, /IDENTIFY/);
  assert.equal(w.sent(3).length, 0);
  w.invalidSession(false);
  w.retry();
  w.hello();
  const identifies = w.sent(2);
  assert.equal(identifies.length, 2);
  assert.deepEqual(identifies[1]!.d.presence, small);
});

test('regression: a dispatch that fails to parse twice is skipped loudly', () => {
  const w = World.ready();
  w.dispatch('MESSAGE_CREATE', { id: 'good' }); // s 2
  const bad = '{"t":"MESSAGE_CREATE","s":3,"op":0,"d":{"id":"bad",}}';
  w.frame(Buffer.from(bad));
  assert.equal(w.eventsOf('error').length, 1);
  assert.deepEqual(
    w.eventsOf('disconnected').map((e) => [e.cause, e.action]),
    [['malformed', 'resume']],
  );
  assert.equal(w.core.counters.skipped, 0);
  w.advance(0);
  w.hello();
  assert.deepEqual(
    w.sent(6).map((r) => r.d.seq),
    [2],
    'resumes from the last good sequence',
  );
  w.frame(Buffer.from(bad)); // replayed, fails again
  assert.equal(w.core.counters.skipped, 1);
  const err = w.eventsOf('error')[1]?.error;
  assert.ok(err instanceof DecodeError, 'reported');
  assert.ok(err.raw?.includes(bad), 'with the bytes');
  assert.equal(w.core.session!.sequence, 3);
  assert.equal(w.eventsOf('disconnected').length, 1, 'not dropped again');
  w.serverSeq = 3;
  w.dispatch('MESSAGE_CREATE', { id: 'next' });
  w.resumed();
  assert.equal(w.core.state, 'ready');
  assert.deepEqual(
    w.effectsOf('dispatch').map((e) => e.event.sequence),
    [1, 2, 4, 5],
  );
});

test('regression: unknown opcodes are ignored and counted, not reported', () => {
  const w = World.ready();
  w.message({ op: 42, d: { future: true } });
  w.message({ op: 5 });
  assert.equal(w.core.counters.unknownOps, 2);
  assert.deepEqual(w.eventsOf('error'), []);
  assert.deepEqual(w.eventsOf('disconnected'), []);
  assert.equal(w.core.state, 'ready');
  assert.equal(w.opens().length, 1);
});
