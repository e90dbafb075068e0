/**
 * Property tests of `ShardCore`: random sequences of server actions, user calls and time steps, applied by the
 * virtual world of `helpers/core-harness.ts`, with the protocol's invariants checked after every step.
 * The server is faithful where the protocol says what it sends (READY only after IDENTIFY, RESUMED only after
 * RESUME, dispatches only on a session) and otherwise free (closes, op 7 / 9, garbage, silence at any time).
 * On failure fast-check prints the seed and the shrunk sequence of actions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { PresenceData, ShardEvent } from '../src/events.js';
import { CLOSE_CODES } from '../src/session.js';
import { TRANSITIONS, canTransition, type ShardState } from '../src/state.js';
import { RESUME_URL, World } from './helpers/core-harness.js';

export type Action =
  /** The server's natural next move (HELLO, READY / RESUMED, a dispatch and an ACK), or time to the next retry. */
  | { k: 'next' }
  | { k: 'hello'; interval: number }
  | { k: 'ready' }
  | { k: 'resumed' }
  | { k: 'dispatch'; t: string; dup: boolean; bad: boolean }
  | { k: 'ack' }
  | { k: 'op1' }
  | { k: 'op7' }
  | { k: 'op9'; resumable: boolean }
  | { k: 'unknownOp' }
  | { k: 'close'; code: number }
  | { k: 'refuse' }
  | { k: 'garbage' }
  | { k: 'advance'; ms: number }
  /** A stalled event loop: time jumps, due timers fire late. */
  | { k: 'stall'; ms: number }
  | { k: 'command'; op: number; huge: boolean }
  | { k: 'flood'; n: number }
  | { k: 'pause'; paused: boolean }
  | { k: 'connect' }
  | { k: 'shutdown'; resumable: boolean }
  | { k: 'grant' }
  /** The identify queue fails the waiting turn (e.g. the daily budget is spent): the shard stops. */
  | { k: 'denyTurn' };

export interface Scenario {
  seed: number;
  autoGrant: boolean;
  autoAck: boolean;
  session: boolean;
  /** Deliver only MESSAGE_CREATE (the rest is filtered unparsed), and / or deliver raw bytes. */
  filter: boolean;
  raw: boolean;
  /** Reconnect back-off base (0: every retry at once). */
  backoff: number;
  maxResumeAttempts: number;
  resumeOnSessionTimeout: boolean;
  /** heartbeat_interval of the server's HELLOs. */
  interval: number;
  actions: Action[];
}

const STATES = Object.keys(TRANSITIONS) as ShardState[];
const FATAL = new Set(
  Object.entries(CLOSE_CODES)
    .filter(([, r]) => r.action === 'fatal')
    .map(([c]) => Number(c)),
);
const NEW_SESSION = new Set(
  Object.entries(CLOSE_CODES)
    .filter(([, r]) => r.action === 'identify')
    .map(([c]) => Number(c)),
);

const presence = (name: string): PresenceData => ({ since: null, activities: [{ name, type: 0 }], status: 'online', afk: false });

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 16, arbitrary: fc.constant({ k: 'next' as const }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('hello' as const), interval: fc.constantFrom(1000, 5000, 41_250, 45_000) }) },
  { weight: 4, arbitrary: fc.constant({ k: 'ready' as const }) },
  { weight: 4, arbitrary: fc.constant({ k: 'resumed' as const }) },
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant('dispatch' as const),
      t: fc.constantFrom('MESSAGE_CREATE', 'GUILD_CREATE', 'TYPING_START'),
      dup: fc.constantFrom(false, false, false, true),
      bad: fc.constantFrom(false, false, false, false, false, false, false, true),
    }),
  },
  { weight: 4, arbitrary: fc.constant({ k: 'ack' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'op1' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'op7' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('op9' as const), resumable: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ k: 'unknownOp' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('close' as const),
      code: fc.oneof(fc.constantFrom(1000, 1001, 1006, 1006, 1011), fc.constantFrom(...Object.keys(CLOSE_CODES).map(Number))),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ k: 'refuse' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'garbage' as const }) },
  {
    weight: 8,
    arbitrary: fc.record({
      k: fc.constant('advance' as const),
      ms: fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 6000 }), fc.integer({ min: 10_000, max: 130_000 })),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('stall' as const), ms: fc.integer({ min: 0, max: 90_000 }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('command' as const), op: fc.constantFrom(3, 3, 4, 8, 31), huge: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('flood' as const), n: fc.integer({ min: 20, max: 150 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('pause' as const), paused: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ k: 'connect' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('shutdown' as const), resumable: fc.boolean() }) },
  { weight: 3, arbitrary: fc.constant({ k: 'grant' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'denyTurn' as const }) },
);

export const scenario: fc.Arbitrary<Scenario> = fc.record({
  seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  autoGrant: fc.boolean(),
  autoAck: fc.boolean(),
  session: fc.boolean(),
  filter: fc.boolean(),
  raw: fc.boolean(),
  backoff: fc.constantFrom(0, 1000, 5000),
  maxResumeAttempts: fc.integer({ min: 1, max: 4 }),
  resumeOnSessionTimeout: fc.boolean(),
  interval: fc.constantFrom(1000, 5000, 41_250, 45_000),
  actions: fc.array(action, { minLength: 1, maxLength: 100, size: 'max' }),
});

/** What the server model remembers across connections: sessions issued, a dispatch to replay on RESUME. */
interface Server {
  n: number;
  poison: Buffer | null;
}

const hellos = (w: World) => [...w.sockets.values()].filter((s) => s.hello).length;

/** Apply one action to the world; false when the server / user could not do it right now (a no-op). */
function apply(w: World, a: Action, sessions: Server, interval: number): boolean {
  const s = w.socket;
  switch (a.k) {
    case 'next':
      if (!s) {
        const at = w.timers.get('reconnect');
        if (at === undefined) return false;
        w.advance(at - w.now);
        return true;
      }
      if (!s.hello) return w.hello(interval);
      if (s.auth === 2 && !s.answered) return w.ready(`session-${++sessions.n}`, RESUME_URL);
      if (s.auth === 6 && !s.answered) {
        // a RESUME replays the dispatch that failed to parse (it fails again), then RESUMED
        const poison = sessions.poison;
        sessions.poison = null;
        return poison !== null ? w.frame(poison) : w.resumed();
      }
      if (s.answered) w.dispatch('MESSAGE_CREATE', { id: String(w.serverSeq + 1) });
      return w.ack();
    case 'hello':
      return !!s && !s.hello && w.hello(a.interval);
    case 'ready':
      return s?.auth === 2 && !s.answered && w.ready(`session-${++sessions.n}`, RESUME_URL);
    case 'resumed':
      return s?.auth === 6 && !s.answered && w.resumed();
    case 'dispatch': {
      if (!s || !(s.answered || s.auth === 6)) return false;
      const seq = a.dup && w.serverSeq > 0 ? w.serverSeq : ++w.serverSeq;
      if (a.bad) return w.frame((sessions.poison = Buffer.from(`{"t":"${a.t}","s":${seq},"op":0,"d":{"broken`)));
      return w.dispatch(a.t, { id: String(seq) }, seq);
    }
    case 'ack':
      return !!s?.hello && w.ack();
    case 'op1':
      return w.requestHeartbeat();
    case 'op7':
      return w.reconnect();
    case 'op9':
      return w.invalidSession(a.resumable);
    case 'unknownOp':
      return w.message({ op: 42, d: {} });
    case 'close':
      return w.closeSocket(a.code);
    case 'refuse':
      return !!s && !s.hello && w.refuse();
    case 'garbage':
      return w.garbage();
    case 'advance':
      w.advance(a.ms);
      return true;
    case 'stall':
      w.stall(a.ms);
      return true;
    case 'command': {
      const d = a.op === 3 ? presence(a.huge ? 'x'.repeat(3900) : 'p') : a.huge ? 'y'.repeat(5000) : { guild_id: '1' };
      w.command(a.op, d);
      return true;
    }
    case 'flood':
      for (let i = 0; i < a.n; i++) w.command(8, { guild_id: '1', query: '', limit: 0, nonce: String(i) });
      return true;
    case 'pause':
      w.pause(a.paused);
      return true;
    case 'connect':
      w.connect();
      return true;
    case 'shutdown':
      w.close(a.resumable);
      return true;
    case 'grant':
      if (w.turns.length === 0) return false;
      w.grant();
      return true;
    case 'denyTurn': {
      const conn = w.turns.shift();
      if (conn === undefined) return false;
      w.step((c) => c.identifyFailed(conn, new Error('daily identify budget spent')));
      return true;
    }
  }
}

/** Run a scenario, checking every invariant after every step; throws on the first broken one. */
export function run(sc: Scenario): World {
  const w = new World({
    seed: sc.seed,
    autoGrant: sc.autoGrant,
    autoAck: sc.autoAck,
    core: {
      maxResumeAttempts: sc.maxResumeAttempts,
      backoff: { base: sc.backoff, max: 60_000 },
      resumeOnSessionTimeout: sc.resumeOnSessionTimeout,
      maxQueuedCommands: 300,
      session: sc.session ? { sessionId: 'session-0', sequence: 5, resumeUrl: RESUME_URL } : null,
      events: sc.filter ? new Set(['MESSAGE_CREATE']) : null,
      raw: sc.raw,
    },
  });
  const sessions: Server = { n: 0, poison: null };
  if (sc.session) w.serverSeq = 5;
  let events = 0;
  let fired = 0;
  let state: ShardState = 'idle';
  /** Stopped by a fatal close: no `open` until the user calls connect(). */
  let stopped = false;
  /** RESUMEs sent since the last READY / RESUMED. */
  let resumes = 0;
  /** Sequence of the last dispatch delivered in this session. */
  let delivered = 0;
  const steps: Action[] = [{ k: 'connect' }, ...sc.actions];
  for (const [i, a] of steps.entries()) {
    const where = `step ${i} (${JSON.stringify(a)})`;
    const before = { session: w.core.session?.sessionId ?? null, opens: w.opens().length, log: w.log.length, resumes, hellos: hellos(w), received: w.received.length };
    if (a.k === 'connect') stopped = false;
    const applied = apply(w, a, sessions, sc.interval);

    assert.deepEqual(w.violations, [], where);
    // states: declared ones, legal transitions, one chain
    for (const e of w.events.slice(events) as ShardEvent[]) {
      if (e.kind === 'ready' || e.kind === 'resumed') resumes = 0;
      if (e.kind !== 'state') continue;
      assert.equal(e.from, state, `${where}: state events form one chain`);
      assert.ok(canTransition(e.from, e.to), `${where}: ${e.from} → ${e.to}`);
      state = e.to;
    }
    for (const e of w.log.slice(before.log)) {
      // dispatches are delivered in sequence order, each once per session
      if (e.type === 'event' && e.event.kind === 'ready') delivered = 0; // a new session
      if (e.type === 'dispatch' || e.type === 'raw') {
        const [t, seq] = e.type === 'raw' ? [e.t, e.s] : [e.event.type, e.event.sequence];
        assert.ok(seq > delivered, `${where}: ${t} ${seq} delivered after ${delivered}`);
        delivered = seq;
      }
      if (e.type !== 'auth') continue;
      if (e.op === 6) resumes++;
      // every IDENTIFY / RESUME fits in 4096 bytes with the token
      const bytes = Buffer.byteLength(JSON.stringify({ op: e.op, d: { token: 't'.repeat(w.options.tokenLength), ...e.d } }));
      assert.ok(bytes <= 4096, `${where}: op ${e.op} of ${bytes} bytes`);
    }
    events = w.events.length;
    assert.ok(STATES.includes(w.core.state), where);
    assert.equal(w.core.state, state, where);
    // one socket at most, and it is the core's connection
    const conn = w.core.connection;
    assert.deepEqual(w.openSockets(), conn === null ? [] : [conn], `${where}: sockets open`);
    // the reconnect timer is armed exactly while reconnecting; nothing is armed at rest
    assert.equal(w.timers.has('reconnect'), state === 'reconnecting', `${where}: reconnect timer in ${state}`);
    if (state === 'idle' || state === 'closed' || state === 'fatal' || state === 'reconnecting') {
      assert.deepEqual(
        [...w.timers.keys()].filter((t) => t !== 'reconnect'),
        [],
        `${where}: timers in ${state}`,
      );
    }
    // reading is only ever paused on a ready session
    if (w.readPaused) assert.equal(state, 'ready', `${where}: paused in ${state}`);
    // a fatal close code stops the shard for good
    if (applied && a.k === 'close' && FATAL.has(a.code)) {
      assert.equal(state, 'fatal', `${where}: fatal code`);
      stopped = true;
    }
    if (applied && a.k === 'denyTurn') {
      assert.equal(state, 'fatal', `${where}: identify queue failure`);
      stopped = true;
    }
    // a server that ACKs every beat at once never looks like a zombie (ACKs held while paused included)
    if (sc.autoAck) assert.equal(w.core.counters.zombies, 0, `${where}: zombie although every beat was ACKed`);
    if (stopped) assert.equal(w.opens().length, before.opens, `${where}: no socket after a fatal close until connect()`);
    // the session only goes when it cannot be resumed
    const session = w.core.session?.sessionId ?? null;
    // (frames are read late while the core pauses reading: look at what it read in this step)
    const op9false = w.received.slice(before.received).some((f) => f.op === 9 && f.d === false);
    const newSession = (code: number) => NEW_SESSION.has(code) && !(code === 4009 && sc.resumeOnSessionTimeout);
    const ends = op9false || (applied && a.k === 'close' && newSession(a.code)) || (a.k === 'shutdown' && !a.resumable);
    if (before.session !== null && session !== before.session) {
      const allowed = ends || (applied && a.k === 'close' && FATAL.has(a.code)) || before.resumes >= sc.maxResumeAttempts;
      assert.ok(allowed, `${where}: session ${before.session} dropped (→ ${session}) while resumable (${before.resumes} RESUMEs in a row)`);
    }
    if (ends) assert.equal(session, null, `${where}: the session must end`);
    // after close(): no timer, no socket
    if (a.k === 'shutdown') {
      assert.equal(state, 'closed', where);
      assert.deepEqual([...w.timers.keys()], [], `${where}: timers after close()`);
      assert.deepEqual(w.openSockets(), [], where);
    }
    // regular heartbeats are never delayed: each due beat goes out at its time (or the connection is a zombie),
    // and only HELLO or the beat itself (re)arms the heartbeat timer
    for (const f of w.fired.slice(fired)) {
      const arms = f.effects.filter((e) => e.type === 'timer' && e.timer === 'heartbeat' && e.at !== null);
      if (f.timer !== 'heartbeat') {
        assert.deepEqual(arms, [], `${where}: timer ${f.timer} moved the heartbeat`);
        continue;
      }
      const beat = f.effects.some((e) => e.type === 'send' && e.data.startsWith('{"op":1,'));
      const zombie = f.effects.some((e) => e.type === 'close' && e.code === null);
      assert.ok(beat || zombie, `${where}: heartbeat due at ${f.at} was not sent`);
      if (beat)
        assert.deepEqual(
          arms.map((e) => (e as { at: number }).at),
          [f.at + w.core.heartbeat.interval],
          `${where}: next beat`,
        );
    }
    const timed = w.fired.length !== fired;
    fired = w.fired.length;
    if (!timed && hellos(w) === before.hellos) {
      const arms = w.log.slice(before.log).filter((e) => e.type === 'timer' && e.timer === 'heartbeat' && e.at !== null);
      assert.deepEqual(arms, [], `${where}: the heartbeat timer moved`);
    }
  }
  return w;
}

test('ShardCore keeps its invariants under random inputs', () => {
  fc.assert(
    fc.property(scenario, (sc) => {
      run(sc);
    }),
    { numRuns: 500 },
  );
});
