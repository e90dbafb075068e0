/**
 * `DeliveryPipeline` without shards: `ShardEvent`s go into pipeline inputs, cluster events come out of a
 * `TypedEmitter`; the running set is a test double (states the test sets, `setPaused` calls recorded).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClusterEventMap, ClusterReadyEvent, ShardSink } from '../src/cluster-status.js';
import { TypedEmitter } from '../src/emitter.js';
import { ShardlineError } from '../src/errors.js';
import type { DisconnectedEvent, DispatchEvent, ReadyData, ShardEvent, StateChange } from '../src/events.js';
import { DeliveryPipeline, type DeliveryStage, type RunningShards } from '../src/pipeline.js';
import { OverlapStage } from '../src/reshard-stage.js';
import type { Session } from '../src/session.js';
import type { ShardState } from '../src/state.js';
import { ManualClock, settle } from './helpers/manual-clock.js';

class FakeRunning implements RunningShards {
  readonly states = new Map<number, ShardState>();
  readonly paused: boolean[] = [];
  constructor(readonly ids: readonly number[]) {
    for (const id of ids) this.states.set(id, 'connecting');
  }
  state(id: number): ShardState {
    return this.states.get(id) ?? 'idle';
  }
  setPaused(paused: boolean): void {
    this.paused.push(paused);
  }
}

function rig(opts: { ids?: number[]; bufferSize?: number } = {}) {
  const clock = new ManualClock();
  const emitter = new TypedEmitter<ClusterEventMap>();
  const running = new FakeRunning(opts.ids ?? [0, 1]);
  const debug: string[] = [];
  const pipeline = new DeliveryPipeline({ clock, emitter, running: () => running, debug: (m) => debug.push(m) }, opts.bufferSize ?? 4);
  const input = pipeline.input();
  /** Every cluster event emitted, in order, as [name, ...args]. */
  const out: unknown[][] = [];
  for (const name of ['dispatch', 'shardEvent', 'ready', 'shardReady', 'shardResumed', 'shardStateChange', 'shardDisconnected', 'shardError', 'debug', 'error'] as const) {
    emitter.on(name, (...args: unknown[]) => void out.push([name, ...args]));
  }
  const named = (name: keyof ClusterEventMap) => out.filter((e) => e[0] === name).map((e) => e.slice(1));
  return { clock, emitter, running, pipeline, input, out, named, debug };
}

let seq = 0;
const msg = (shardId: number, content: string, guild = '1'): DispatchEvent =>
  ({ shardId, type: 'MESSAGE_CREATE', sequence: ++seq, data: { id: String(seq), content, guild_id: guild } }) as unknown as DispatchEvent;
const dispatch = (e: DispatchEvent): ShardEvent => ({ kind: 'dispatch', shardId: e.shardId, event: e });
const readyData = (shardId: number) => ({ v: 10, session_id: `s${shardId}`, guilds: [], shard: [shardId, 2] }) as unknown as ReadyData;
const session = (shardId: number): Session => ({ sessionId: `s${shardId}`, sequence: 1, resumeUrl: 'wss://resume.invalid' });
const state = (shardId: number, from: ShardState, to: ShardState, kind: 'hello' | 'ready' | 'disconnect' = 'hello'): ShardEvent => ({
  kind: 'state',
  shardId,
  from,
  to,
  cause: { kind, code: kind === 'disconnect' ? 4000 : null, resumable: kind !== 'hello', reason: `${from} → ${to} (${kind})` },
});
/** The shard is ready: its state first, then its `ready` event (the order a shard reports them in). */
function ready(r: ReturnType<typeof rig>, shardId: number, sink: ShardSink = r.input.sink): void {
  r.running.states.set(shardId, 'ready');
  sink.event(state(shardId, 'identifying', 'ready', 'ready'));
  sink.event({ kind: 'ready', shardId, data: readyData(shardId), session: session(shardId) });
}
const contents = (events: unknown[][]) => events.map((e) => ((e[0] as DispatchEvent).data as { content: string }).content);

// ---- shard events → cluster events -----------------------------------------------------------------

test('a dispatch reaches the shardEvent stream first, then dispatch listeners', () => {
  const r = rig();
  const e = msg(1, 'hi');
  r.input.sink.event(dispatch(e));
  assert.deepEqual(r.out, [
    ['shardEvent', { kind: 'dispatch', shardId: 1, event: e }],
    ['dispatch', e],
  ]);
  assert.equal(r.named('dispatch')[0]![0], e, 'the same object, not a copy');
});

test('state change: shardStateChange with the structured cause, then observers, then stages', () => {
  const r = rig();
  const order: string[] = [];
  r.emitter.on('shardStateChange', () => order.push('listener'));
  r.pipeline.observe(() => order.push('observer'));
  r.pipeline.insert({ admit: () => true, stateChanged: () => order.push('stage') });
  const e = state(0, 'reconnecting', 'resuming', 'disconnect');
  r.input.sink.event(e);
  const [change] = r.named('shardStateChange')[0] as [StateChange];
  assert.deepEqual(change, {
    shardId: 0,
    from: 'reconnecting',
    to: 'resuming',
    reason: 'reconnecting → resuming (disconnect)',
    cause: { kind: 'disconnect', code: 4000, resumable: true, reason: 'reconnecting → resuming (disconnect)' },
  });
  assert.deepEqual(order, ['listener', 'observer', 'stage']);
  assert.deepEqual(r.named('shardEvent'), [[e]]);
});

test('disconnected: shardDisconnected with the bounded kind and the label as cause', () => {
  const r = rig();
  r.input.sink.event({ kind: 'disconnected', shardId: 1, code: null, cause: 'zombie', label: 'zombie connection (no heartbeat ACK)', action: 'resume' });
  const expected: DisconnectedEvent = { shardId: 1, code: null, cause: 'zombie connection (no heartbeat ACK)', kind: 'zombie', action: 'resume' };
  assert.deepEqual(r.named('shardDisconnected'), [[expected]]);
});

test('ready: shardReady per shard; the cluster ready once every running shard is ready, once per connect()', () => {
  const r = rig({ ids: [0, 1, 2] });
  r.clock.advance(1000);
  r.pipeline.expectReady(r.clock.now());
  r.clock.advance(7000);
  ready(r, 0);
  ready(r, 2);
  assert.deepEqual(
    r.named('shardReady').map(([id]) => id),
    [0, 2],
  );
  assert.deepEqual(r.named('ready'), [], 'shard 1 is not ready');
  r.clock.advance(500);
  // shard 1 resumes a session instead: RESUMED also completes the set
  r.running.states.set(1, 'ready');
  r.input.sink.event(state(1, 'resuming', 'ready', 'ready'));
  r.input.sink.event({ kind: 'resumed', shardId: 1, session: session(1) });
  assert.deepEqual(r.named('shardResumed'), [[1, session(1)]]);
  assert.deepEqual(r.named('ready'), [[{ shards: 3, elapsed: 7500 } satisfies ClusterReadyEvent]]);
  // a shard that reconnects and is ready again does not make the cluster ready again
  r.running.states.set(2, 'reconnecting');
  ready(r, 2);
  assert.equal(r.named('ready').length, 1);
  // … until the next connect()
  r.pipeline.expectReady(r.clock.now());
  r.running.states.set(2, 'reconnecting');
  ready(r, 2);
  assert.deepEqual(r.named('ready')[1], [{ shards: 3, elapsed: 0 }]);
});

test('ready is judged from the running set: a READY of another shard set does not count', () => {
  const r = rig({ ids: [0] });
  r.pipeline.expectReady(0);
  r.input.sink.event({ kind: 'ready', shardId: 0, data: readyData(0), session: session(0) }); // state still 'connecting'
  assert.deepEqual(r.named('ready'), []);
  r.running.states.set(0, 'ready');
  r.pipeline.checkReady();
  assert.equal(r.named('ready').length, 1);
});

test('error: shardError always; the cluster error only when the shard stopped for good', () => {
  const r = rig();
  const transient = new Error('socket hang up');
  r.input.sink.event({ kind: 'error', shardId: 0, error: transient });
  r.running.states.set(1, 'fatal');
  const fatal = new ShardlineError('AUTHENTICATION_FAILED', 'close 4004');
  r.input.sink.event({ kind: 'error', shardId: 1, error: fatal });
  assert.deepEqual(r.named('shardError'), [
    [transient, 0],
    [fatal, 1],
  ]);
  assert.deepEqual(r.named('error'), [[fatal]]);
});

test('an error with nobody listening to error does not throw into the shard', () => {
  const emitter = new TypedEmitter<ClusterEventMap>();
  const running = new FakeRunning([0]);
  running.states.set(0, 'fatal');
  const pipeline = new DeliveryPipeline({ clock: new ManualClock(), emitter, running: () => running, debug: () => {} }, 4);
  assert.doesNotThrow(() => pipeline.input().sink.event({ kind: 'error', shardId: 0, error: new Error('fatal') }));
});

test('debug lines become debug events; heartbeats only appear on the shardEvent stream', () => {
  const r = rig();
  r.input.sink.event({ kind: 'debug', shardId: 1, message: 'hello' });
  const beat: ShardEvent = { kind: 'heartbeat', shardId: 1, sequence: 5, requested: false };
  const ack: ShardEvent = { kind: 'heartbeatAck', shardId: 1, latency: 42 };
  r.input.sink.event(beat);
  r.input.sink.event(ack);
  assert.deepEqual(r.out, [
    ['shardEvent', { kind: 'debug', shardId: 1, message: 'hello' }],
    ['debug', { shardId: 1, message: 'hello' }],
    ['shardEvent', beat],
    ['shardEvent', ack],
  ]);
});

// ---- inputs: deliver / divert / retired -----------------------------------------------------------

test('a diverted input reports to its sink until promoted; a retired one delivers nothing and counts its dispatches', () => {
  const r = rig();
  const diverted: ShardEvent[] = [];
  const next = r.pipeline.input({ event: (e) => diverted.push(e) });
  assert.equal(next.mode, 'divert');
  const a = msg(0, 'old a');
  const b = msg(3, 'new b');
  r.input.sink.event(dispatch(a));
  next.sink.event(dispatch(b));
  next.sink.event(state(3, 'connecting', 'identifying'));
  assert.deepEqual(contents(r.named('dispatch')), ['old a']);
  assert.deepEqual(
    diverted.map((e) => e.kind),
    ['dispatch', 'state'],
  );
  assert.deepEqual(r.named('shardStateChange'), [], 'a diverted state change is not a cluster event');
  // the switch
  let dropped = 0;
  r.input.retire(() => dropped++);
  next.promote();
  assert.equal(r.input.mode, 'retired');
  assert.equal(next.mode, 'deliver');
  r.input.sink.event(dispatch(msg(0, 'old late 1')));
  r.input.sink.event(dispatch(msg(1, 'old late 2')));
  r.input.sink.event(state(0, 'ready', 'closed'));
  r.input.sink.event({ kind: 'error', shardId: 0, error: new Error('old') });
  next.sink.event(dispatch(msg(3, 'new c')));
  assert.deepEqual(contents(r.named('dispatch')), ['old a', 'new c']);
  assert.equal(dropped, 2, 'the retired dispatches are counted');
  assert.deepEqual(r.named('shardStateChange'), []);
  assert.deepEqual(r.named('shardError'), []);
  assert.equal(diverted.length, 2, 'nothing is diverted after the promotion');
  // an aborted reshard: the old input delivers again
  r.input.restore();
  r.input.sink.event(dispatch(msg(0, 'old again')));
  assert.deepEqual(contents(r.named('dispatch')), ['old a', 'new c', 'old again']);
  assert.equal(dropped, 2);
});

// ---- stages ---------------------------------------------------------------------------------------

test('a stage that rejects drops the dispatch (no shardEvent, no dispatch, no events() item); removed, it sees nothing', async () => {
  const r = rig();
  const seen: string[] = [];
  const later: string[] = [];
  const it = r.pipeline.events();
  const remove = r.pipeline.insert({
    admit: (e) => {
      const c = (e.data as { content: string }).content;
      seen.push(c);
      return !c.startsWith('dup');
    },
  });
  r.pipeline.insert({
    admit: (e) => {
      later.push((e.data as { content: string }).content);
      return true;
    },
  });
  for (const c of ['a', 'dup b', 'c']) r.input.sink.event(dispatch(msg(0, c)));
  assert.deepEqual(contents(r.named('dispatch')), ['a', 'c']);
  assert.equal(r.named('shardEvent').length, 2);
  assert.deepEqual(later, ['a', 'c'], 'a rejected dispatch does not reach the stages after the one that rejected it');
  assert.deepEqual([(await it.next()).value.data.content, (await it.next()).value.data.content], ['a', 'c']);
  remove();
  r.input.sink.event(dispatch(msg(0, 'dup d')));
  assert.deepEqual(seen, ['a', 'dup b', 'c']);
  assert.deepEqual(contents(r.named('dispatch')), ['a', 'c', 'dup d']);
});

test('stages do not see state changes of a diverted input, nor anything but dispatches in admit()', () => {
  const r = rig();
  const calls: string[] = [];
  const stage: DeliveryStage = { admit: () => calls.push('admit') > 0, stateChanged: (c) => void calls.push(`state ${c.shardId}`) };
  r.pipeline.insert(stage);
  r.pipeline.input({ event: () => {} }).sink.event(state(5, 'connecting', 'identifying'));
  r.input.sink.event({ kind: 'debug', shardId: 0, message: 'x' });
  r.input.sink.event(state(0, 'connecting', 'identifying'));
  assert.deepEqual(calls, ['state 0']);
});

test('deliver() (the withheld events a reshard releases at its switch) reaches every view of the stream', async () => {
  const r = rig();
  const it = r.pipeline.events();
  const e = msg(3, 'released');
  r.pipeline.deliver(e);
  assert.deepEqual(r.out, [
    ['shardEvent', { kind: 'dispatch', shardId: 3, event: e }],
    ['dispatch', e],
  ]);
  assert.equal((await it.next()).value, e);
});

test('a reshard switch as reshard.ts wires it: shardEvent carries the same dispatches as dispatch, released ones included', () => {
  const r = rig({ ids: [0] });
  const stage = new OverlapStage(r.pipeline, {
    clock: r.clock,
    from: 1,
    to: 2,
    maxBufferedEvents: 100,
    dedupeWindow: 30_000,
    setNewPaused: () => {},
    debug: () => {},
    kick: () => {},
  });
  const next = r.pipeline.input({ event: (e) => void (e.kind === 'dispatch' && stage.onNew(e.event)) });
  stage.dedupe.started.add(0).add(1);
  const a1 = msg(0, 'a1', '1');
  r.input.sink.event(dispatch(a1)); // the old set delivers a1
  next.sink.event(dispatch({ ...a1, shardId: 0, sequence: 900 })); // the new set receives a1 too: a duplicate
  next.sink.event(dispatch(msg(0, 'a2', '1'))); // the new set is ahead: a2 is withheld
  assert.deepEqual(contents(r.named('dispatch')), ['a1']);
  // the switch (Resharder.switchOver)
  r.input.retire(() => stage.droppedOld++);
  next.promote();
  for (const e of stage.switchOver()) r.pipeline.deliver(e);
  r.input.sink.event(dispatch(msg(0, 'a2', '1'))); // the old set's late copy goes nowhere
  next.sink.event(dispatch(msg(1, 'b1', '2')));
  assert.deepEqual(contents(r.named('dispatch')), ['a1', 'a2', 'b1']);
  assert.deepEqual(
    r.named('shardEvent').map(([e]) => ((e as Extract<ShardEvent, { kind: 'dispatch' }>).event.data as { content: string }).content),
    ['a1', 'a2', 'b1'],
    'the released a2 is on the shardEvent stream too',
  );
  assert.deepEqual([stage.replayed, stage.droppedOld, stage.dedupe.deduplicated], [1, 1, 1]);
});

// ---- events(): back-pressure -----------------------------------------------------------------------

test('events(): a full buffer pauses the running set; drained to half it resumes', async () => {
  const r = rig({ bufferSize: 4 });
  const it = r.pipeline.events();
  for (let i = 0; i < 3; i++) r.input.sink.event(dispatch(msg(0, `m${i}`)));
  assert.deepEqual(r.running.paused, []);
  assert.equal(r.pipeline.behind, false);
  r.input.sink.event(dispatch(msg(0, 'm3')));
  assert.deepEqual(r.running.paused, [true], 'paused when the buffer is full');
  assert.equal(r.pipeline.behind, true);
  r.input.sink.event(dispatch(msg(0, 'm4'))); // what the sockets had read already is still buffered
  assert.deepEqual(r.running.paused, [true]);
  const got: string[] = [];
  for (let i = 0; i < 2; i++) got.push((await it.next()).value.data.content);
  assert.deepEqual(r.running.paused, [true], '3 left: still above half');
  got.push((await it.next()).value.data.content);
  assert.deepEqual(r.running.paused, [true, false], 'resumed at half');
  assert.equal(r.pipeline.behind, false);
  for (let i = 0; i < 2; i++) got.push((await it.next()).value.data.content);
  assert.deepEqual(got, ['m0', 'm1', 'm2', 'm3', 'm4'], 'in order, nothing lost');
  assert.ok(r.debug.some((m) => m.includes('pausing')) && r.debug.some((m) => m.includes('resuming')));
});

test('events(): the slowest of several consumers holds the pause; one that stops iterating releases its share', async () => {
  const r = rig({ bufferSize: 2 });
  const a = r.pipeline.events();
  const b = r.pipeline.events();
  for (let i = 0; i < 2; i++) r.input.sink.event(dispatch(msg(0, `m${i}`)));
  assert.deepEqual(r.running.paused, [true], 'both full: one pause');
  await a.next();
  await a.next();
  assert.deepEqual(r.running.paused, [true], 'a caught up, b is still full');
  await b.return!();
  assert.deepEqual(r.running.paused, [true, false], 'b stopped: nobody is behind');
  r.input.sink.event(dispatch(msg(0, 'm2')));
  assert.equal((await a.next()).value.data.content, 'm2');
});

test('hold() (the gateway proxy handler behind) pauses the running set together with a full events() buffer; end() drops it', async () => {
  const r = rig({ bufferSize: 2 });
  r.pipeline.hold(true);
  r.pipeline.hold(true); // idempotent: one unit
  assert.deepEqual(r.running.paused, [true]);
  const it = r.pipeline.events();
  for (let i = 0; i < 2; i++) r.input.sink.event(dispatch(msg(0, `h${i}`)));
  await it.next();
  await it.next();
  assert.deepEqual(r.running.paused, [true], 'the consumer caught up, the hold is still on');
  r.pipeline.hold(false);
  r.pipeline.hold(false);
  assert.deepEqual(r.running.paused, [true, false]);
  assert.equal(r.pipeline.behind, false);
  r.pipeline.hold(true);
  r.pipeline.end();
  assert.equal(r.pipeline.behind, false, 'end() releases everything');
  r.pipeline.hold(true);
  assert.deepEqual(r.running.paused, [true, false, true], 'no pause after end()');
});

test('events(): a consumer waiting for the next event gets it directly; end() finishes the buffered ones first', async () => {
  const r = rig({ bufferSize: 4 });
  const it = r.pipeline.events();
  const next = it.next();
  r.input.sink.event(dispatch(msg(0, 'direct')));
  assert.equal((await next).value.data.content, 'direct');
  r.input.sink.event(dispatch(msg(0, 'buffered')));
  r.pipeline.end();
  assert.equal((await it.next()).value.data.content, 'buffered');
  assert.equal((await it.next()).done, true);
  const late = r.pipeline.events();
  assert.equal((await late.next()).done, true, 'an events() after end() is done at once');
  r.input.sink.event(dispatch(msg(0, 'after end')));
  assert.equal(r.pipeline.behind, false);
});

test('events() items are the dispatch events themselves, and for await works', async () => {
  const r = rig({ bufferSize: 8 });
  const it = r.pipeline.events();
  const sent = [msg(0, 'x'), msg(1, 'y')];
  for (const e of sent) r.input.sink.event(dispatch(e));
  r.pipeline.end();
  const got: DispatchEvent[] = [];
  for await (const e of it) got.push(e);
  assert.deepEqual(got, sent);
  assert.equal(got[0], sent[0]);
});

// ---- throwing listeners ---------------------------------------------------------------------------

test('a throwing dispatch listener is reported as shardError and does not stop delivery', async () => {
  const r = rig();
  const it = r.pipeline.events();
  r.emitter.on('dispatch', (e) => {
    if ((e.data as { content: string }).content === 'boom') throw new Error('listener bug');
  });
  r.input.sink.event(dispatch(msg(1, 'boom')));
  r.input.sink.event(dispatch(msg(1, 'after')));
  const [[err, shardId]] = r.named('shardError') as [[ShardlineError, number]];
  assert.equal(err.code, 'LISTENER_ERROR');
  assert.match(err.message, /a dispatch listener threw: listener bug/);
  assert.equal((err.cause as Error).message, 'listener bug');
  assert.equal(shardId, 1);
  assert.deepEqual(contents(r.named('dispatch')), ['boom', 'after']);
  assert.equal((await it.next()).value.data.content, 'boom', 'the events() channel got it before the listener threw');
  assert.equal((await it.next()).value.data.content, 'after');
});

test('a throwing state / ready / shardEvent listener is reported; observers, stages and the cluster ready still run', () => {
  const r = rig({ ids: [0] });
  r.pipeline.expectReady(0);
  for (const name of ['shardStateChange', 'shardReady', 'shardEvent'] as const) {
    r.emitter.on(name, () => {
      throw new Error(`${name} bug`);
    });
  }
  const observed: StateChange[] = [];
  r.pipeline.observe((c) => observed.push(c));
  const staged: StateChange[] = [];
  r.pipeline.insert({ admit: () => true, stateChanged: (c) => void staged.push(c) });
  ready(r, 0);
  r.input.sink.event(dispatch(msg(0, 'still delivered')));
  assert.equal(observed.length, 1);
  assert.equal(staged.length, 1);
  assert.equal(r.named('ready').length, 1);
  assert.deepEqual(contents(r.named('dispatch')), ['still delivered']);
  const errors = r.named('shardError') as [ShardlineError, number][];
  assert.deepEqual(
    errors.map(([e, id]) => [e.code, e.message, id]),
    [
      ['LISTENER_ERROR', 'a cluster listener threw: shardEvent bug', -1],
      ['LISTENER_ERROR', 'a cluster listener threw: shardStateChange bug', -1],
      ['LISTENER_ERROR', 'a cluster listener threw: shardEvent bug', -1],
      ['LISTENER_ERROR', 'a cluster listener threw: shardReady bug', -1],
      ['LISTENER_ERROR', 'a cluster listener threw: shardEvent bug', -1],
    ],
  );
});

test('a throwing observer is reported and the next observer still runs; a throwing shardError listener is swallowed', () => {
  const r = rig();
  r.pipeline.observe(() => {
    throw new Error('observer bug');
  });
  let second = 0;
  r.pipeline.observe(() => second++);
  r.emitter.on('shardError', () => {
    throw new Error('error listener bug');
  });
  assert.doesNotThrow(() => r.input.sink.event(state(0, 'connecting', 'identifying')));
  assert.equal(second, 1);
  assert.match((r.named('shardError')[0]![0] as Error).message, /observer bug/);
  r.input.sink.event(dispatch(msg(0, 'ok')));
  assert.deepEqual(contents(r.named('dispatch')), ['ok']);
});

test('nothing is emitted for shardEvent / dispatch nobody listens to, and no timer is used', async () => {
  const clock = new ManualClock();
  const emitter = new TypedEmitter<ClusterEventMap>();
  const running = new FakeRunning([0]);
  const pipeline = new DeliveryPipeline({ clock, emitter, running: () => running, debug: () => {} }, 2);
  const it = pipeline.events();
  pipeline.input().sink.event(dispatch(msg(0, 'only the channel')));
  assert.equal((await it.next()).value.data.content, 'only the channel');
  await settle();
  assert.equal(clock.pending, 0);
});
