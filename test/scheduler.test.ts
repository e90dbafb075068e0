/**
 * `StartupScheduler` on a virtual clock: the real scheduler and a real `LocalIdentifyQueue` on a `ManualClock`;
 * the shards are test doubles (connect → HELLO after `hello` ms → identify turn or resume → READY when the test
 * says, or `readyAfter` ms later). No sockets, no sleeps: each test runs in milliseconds.
 */
import { setMaxListeners } from 'node:events';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep } from '../src/clock.js';
import { CLUSTER_IDENTIFY_WINDOW } from '../src/cluster-options.js';
import type { ClusterProgress, IdentifyTurnEvent } from '../src/cluster-status.js';
import { GatewayError } from '../src/errors.js';
import type { StateChange } from '../src/events.js';
import { LocalIdentifyQueue, type IdentifyQueue } from '../src/queue.js';
import { ClusterConnectError, StartupScheduler, type StartFailure, type StartPlan } from '../src/scheduler.js';
import type { ShardState } from '../src/state.js';
import { ManualClock, runFor, runUntil, settle } from './helpers/manual-clock.js';

const W = CLUSTER_IDENTIFY_WINDOW; // 5100: the window the cluster gives its default queue
const HELLO = 100;
const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

interface FakeOptions {
  /** ms from connect to HELLO. */
  hello?: number;
  /** ms from the IDENTIFY / RESUME to READY; null: the shard waits for `ready(id)`. */
  readyAfter?: number | null;
  /** Shards that have a session (they RESUME; they never ask for an identify turn). */
  sessions?: Iterable<number>;
  /** Shards stopped for good right after their IDENTIFY (e.g. 4004 authentication failed). */
  fatal?: Iterable<number>;
}

type Step = { id: number; at: number; what: 'connect' | 'identify' | 'resume' | 'ready' | 'fatal' | 'closed' };

/** The shards of one set, as a test double of the backends: states, the observed stream, what happened when. */
class FakeShards {
  readonly states = new Map<number, ShardState>();
  readonly log: Step[] = [];
  readonly #observers: Set<(c: StateChange) => void>;
  readonly #waiting = new Map<number, () => void>();
  readonly #ac = new AbortController();
  readonly #o: Required<Omit<FakeOptions, 'sessions' | 'fatal'>> & { sessions: Set<number>; fatal: Set<number> };

  constructor(
    readonly clock: ManualClock,
    readonly queue: IdentifyQueue,
    observers: Set<(c: StateChange) => void>,
    o: FakeOptions = {},
  ) {
    this.#observers = observers;
    setMaxListeners(0, this.#ac.signal);
    this.#o = { hello: o.hello ?? HELLO, readyAfter: o.readyAfter === undefined ? 1000 : o.readyAfter, sessions: new Set(o.sessions), fatal: new Set(o.fatal) };
  }

  async connect(id: number): Promise<void> {
    const signal = this.#ac.signal;
    this.#set(id, 'connecting');
    this.#step(id, 'connect');
    try {
      await sleep(this.clock, this.#o.hello, signal);
      if (this.#o.sessions.has(id)) {
        this.#set(id, 'resuming');
        this.#step(id, 'resume');
      } else {
        this.#set(id, 'identifying');
        await this.queue.acquire(id, signal);
        this.#step(id, 'identify');
        if (this.#o.fatal.has(id)) {
          this.#set(id, 'fatal');
          this.#step(id, 'fatal');
          throw new GatewayError('AUTHENTICATION_FAILED', `shard ${id}: close 4004 Authentication failed`, { closeCode: 4004, shardId: id });
        }
      }
      if (this.#o.readyAfter === null) await new Promise<void>((resolve) => this.#waiting.set(id, resolve));
      else await sleep(this.clock, this.#o.readyAfter, signal);
      signal.throwIfAborted();
      this.#set(id, 'ready');
      this.#step(id, 'ready');
    } catch (err) {
      if (signal.aborted) {
        this.#set(id, 'closed');
        this.#step(id, 'closed');
      }
      throw err;
    }
  }

  /** READY for a shard waiting for it (`readyAfter: null`). */
  ready(id: number): void {
    const resolve = this.#waiting.get(id);
    assert.ok(resolve, `shard ${id} is not waiting for READY`);
    this.#waiting.delete(id);
    resolve();
  }

  /** Close every shard (what `cluster.close()` does to the set): their connects reject. */
  close(): void {
    this.#ac.abort(new Error('closed'));
    for (const resolve of this.#waiting.values()) resolve();
    this.#waiting.clear();
  }

  count(): Map<ShardState, number> {
    const counts = new Map<ShardState, number>();
    for (const s of this.states.values()) counts.set(s, (counts.get(s) ?? 0) + 1);
    return counts;
  }

  times(what: Step['what']): Map<number, number> {
    return new Map(this.log.filter((s) => s.what === what).map((s) => [s.id, s.at]));
  }

  #step(id: number, what: Step['what']): void {
    this.log.push({ id, at: this.clock.now(), what });
  }

  #set(id: number, to: ShardState): void {
    const from = this.states.get(id) ?? 'idle';
    this.states.set(id, to);
    const change: StateChange = { shardId: id, from, to, reason: `${from} → ${to}`, cause: { kind: 'connect', reason: `${from} → ${to}` } };
    for (const fn of this.#observers) fn(change);
  }
}

interface RigOptions extends FakeOptions {
  maxConcurrency: number;
  startAhead?: number;
}

function rig(o: RigOptions) {
  const clock = new ManualClock();
  const inner = new LocalIdentifyQueue({ clock, maxConcurrency: o.maxConcurrency, window: W });
  const turns: (IdentifyTurnEvent & { at: number })[] = [];
  const observers = new Set<(c: StateChange) => void>();
  const scheduler = new StartupScheduler({
    clock,
    inner,
    maxConcurrency: o.maxConcurrency,
    startAhead: o.startAhead ?? 1,
    onTurn: (e) => turns.push({ ...e, at: clock.now() }),
    observe: (fn) => {
      observers.add(fn);
      return () => observers.delete(fn);
    },
  });
  const gate = scheduler.gate();
  const shards = new FakeShards(clock, gate, observers, o);
  /** Start `plan` (connect through the fake shards); `result` settles when the scheduler's start() does. */
  const start = (plan: Partial<StartPlan> & { ids: readonly number[] }) => {
    const ac = new AbortController();
    setMaxListeners(0, ac.signal); // one listener per waiting start, as the cluster's
    let settled: StartFailure[] | null = null;
    const promise = scheduler.start(gate, { connect: (id) => shards.connect(id), signal: ac.signal, ...plan }).then((f) => (settled = f));
    return { ac, promise, done: () => settled !== null, failures: () => settled };
  };
  return { clock, inner, scheduler, gate, shards, turns, observers, start };
}

/** Every lane's IDENTIFYs are at least 5 s apart; returns the identify times per lane. */
function assertLanePacing(identified: Map<number, number>, maxConcurrency: number): Map<number, number[]> {
  const lanes = new Map<number, number[]>();
  for (const [id, at] of identified) {
    const lane = id % maxConcurrency;
    if (!lanes.has(lane)) lanes.set(lane, []);
    lanes.get(lane)!.push(at);
  }
  for (const [lane, times] of lanes) {
    times.sort((a, b) => a - b);
    for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! >= 5000, `lane ${lane}: IDENTIFYs at ${times[i - 1]} and ${times[i]} are < 5 s apart`);
  }
  return lanes;
}

/** Most sockets open at once that have not been granted their identify turn yet. */
function maxUnidentified(log: Step[]): number {
  let open = 0;
  let max = 0;
  const events = log.filter((s) => s.what === 'connect' || s.what === 'identify').sort((a, b) => a.at - b.at || (a.what === 'identify' ? -1 : 1));
  for (const s of events) {
    open += s.what === 'connect' ? 1 : -1;
    max = Math.max(max, open);
  }
  return max;
}

// ---- pacing ---------------------------------------------------------------------------------------------

for (const [mc, n] of [
  [1, 5],
  [2, 9],
  [16, 40],
] as const) {
  test(`max_concurrency ${mc}, ${n} shards: lanes in parallel, ≥ 5 s per lane, ceil(${n}/${mc}) windows`, async () => {
    // READY 3 s after IDENTIFY (a big guild list): the next shard of a lane connects half a window after the turn
    const r = rig({ maxConcurrency: mc, readyAfter: 3000 });
    const run = r.start({ ids: range(n) });
    await runUntil(r.clock, run.done);
    assert.deepEqual(run.failures(), []);
    const identified = r.shards.times('identify');
    assert.equal(identified.size, n, 'every shard identified once');
    const lanes = assertLanePacing(identified, mc);
    assert.equal(lanes.size, Math.min(mc, n), 'every lane used');
    // lanes run in parallel: the first IDENTIFY of every lane goes out at once, right after the first HELLOs
    for (const [lane, times] of lanes) assert.equal(times[0], HELLO, `lane ${lane} starts at once`);
    // … and each lane then identifies once per window, without gaps: shard k of a lane at HELLO + k × window
    for (const [id, at] of identified) assert.equal(at, HELLO + Math.floor(id / mc) * W, `shard ${id}`);
    const windows = Math.ceil(n / mc);
    assert.equal(r.clock.now(), HELLO + (windows - 1) * W + 3000, 'start-up takes ceil(N / max_concurrency) windows (+ the last HELLO and READY)');
    // turns are reported with their lane and wait
    assert.deepEqual(
      r.turns.map((t) => t.shardId).sort((a, b) => a - b),
      range(n),
    );
    for (const t of r.turns) assert.equal(t.lane, t.shardId % mc);
    // a shard connects half a window after the previous turn of its lane, so no socket idles long unidentified
    assert.ok(maxUnidentified(r.shards.log) <= mc, `at most ${mc} sockets wait for a turn at once (saw ${maxUnidentified(r.shards.log)})`);
    const connected = r.shards.times('connect');
    for (let id = mc; id < n; id++) assert.equal(connected.get(id), identified.get(id - mc)! + 2500, `shard ${id} connects 2.5 s after shard ${id - mc}'s turn`);
    for (const t of r.turns) assert.ok(t.waited <= W, `shard ${t.shardId} waited ${t.waited} ms for its turn (less than a window)`);
    assert.equal(r.scheduler.waiting, 0);
  });
}

test('startAhead 2: twice as many sockets wait for a turn; the pace of the lanes is the same', async () => {
  const r = rig({ maxConcurrency: 2, startAhead: 2 });
  const run = r.start({ ids: range(8) });
  await runUntil(r.clock, run.done);
  const identified = r.shards.times('identify');
  assertLanePacing(identified, 2);
  assert.equal(maxUnidentified(r.shards.log), 4);
  assert.deepEqual(
    [...r.shards.times('connect').entries()].filter(([, at]) => at === 0).map(([id]) => id),
    [0, 1, 2, 3],
  );
  assert.equal(r.clock.now(), HELLO + 3 * W + 1000);
});

test('a slow READY does not hold the lane: the next shard starts half a window after the turn', async () => {
  const r = rig({ maxConcurrency: 1, readyAfter: null });
  const run = r.start({ ids: range(3) });
  await runFor(r.clock, HELLO + 2 * W);
  assert.deepEqual([...r.shards.times('identify').values()], [HELLO, HELLO + W, HELLO + 2 * W], 'no READY yet, but every turn on time');
  assert.equal(run.done(), false, 'start() waits for every shard to settle');
  for (const id of range(3)) r.shards.ready(id);
  await runUntil(r.clock, run.done);
  assert.deepEqual(run.failures(), []);
});

test('a shard that is ready quickly frees its start slot at once (before the stagger)', async () => {
  const r = rig({ maxConcurrency: 1, readyAfter: 10 });
  const run = r.start({ ids: range(3) });
  await runUntil(r.clock, run.done);
  const connected = r.shards.times('connect');
  assert.equal(connected.get(1), HELLO + 10, 'shard 1 connects when shard 0 is ready, not 2.5 s after its turn');
  assert.deepEqual([...r.shards.times('identify').values()], [HELLO, HELLO + W, HELLO + 2 * W]);
  // Observed: start() resolves while the stagger timers of those shards are still pending (harmless: they resolve
  // a promise nobody waits for any more; the cluster's close() aborts them).
  assert.equal(r.clock.pending, 1);
  await runFor(r.clock, 2500);
  assert.equal(r.clock.pending, 0);
});

// ---- progress ------------------------------------------------------------------------------------------

test('progress: one report per state change while the set starts, counted by state, with elapsed time', async () => {
  const r = rig({ maxConcurrency: 2 });
  const reports: ClusterProgress[] = [];
  r.clock.advance(700); // connect() was called a little earlier than the shards are started
  const run = r.start({ ids: range(4), progress: { report: (p) => reports.push(p), startedAt: 0, total: 4, count: () => r.shards.count() } });
  await runUntil(r.clock, run.done);
  // per shard: connecting, identifying, ready
  assert.equal(reports.length, 12);
  assert.deepEqual(reports[0], { total: 4, ready: 0, failed: 0, starting: 1, shardId: 0, state: 'connecting', elapsed: 700 });
  const last = reports.at(-1)!;
  assert.deepEqual(last, { total: 4, ready: 4, failed: 0, starting: 0, shardId: 3, state: 'ready', elapsed: 700 + HELLO + W + 1000 });
  for (let i = 1; i < reports.length; i++) {
    assert.ok(reports[i]!.ready >= reports[i - 1]!.ready, 'ready never goes down');
    assert.ok(reports[i]!.elapsed >= reports[i - 1]!.elapsed, 'elapsed never goes down');
  }
  assert.deepEqual(
    reports.filter((p) => p.state === 'ready').map((p) => [p.shardId, p.ready]),
    [
      [0, 1],
      [1, 2],
      [2, 3],
      [3, 4],
    ],
  );
  assert.equal(r.observers.size, 0, 'the progress observer is removed when start() resolves');
});

test('progress counts failed shards', async () => {
  const r = rig({ maxConcurrency: 1, fatal: [1] });
  const reports: ClusterProgress[] = [];
  const run = r.start({ ids: range(2), progress: { report: (p) => reports.push(p), startedAt: 0, total: 2, count: () => r.shards.count() } });
  await runUntil(r.clock, run.done);
  assert.deepEqual(
    reports.map((p) => [p.shardId, p.state, p.ready, p.failed, p.starting]),
    [
      [0, 'connecting', 0, 0, 1],
      [0, 'identifying', 0, 0, 1],
      [0, 'ready', 1, 0, 0],
      [1, 'connecting', 1, 0, 1],
      [1, 'identifying', 1, 0, 1],
      [1, 'fatal', 1, 1, 0],
    ],
  );
});

// ---- resumes -------------------------------------------------------------------------------------------

test('resumes do not wait for the identify queue and do not delay the identifying shards', async () => {
  const r = rig({ maxConcurrency: 1, sessions: range(6, 3) });
  const run = r.start({ ids: range(3), resume: range(6, 3) });
  await runUntil(r.clock, run.done);
  assert.deepEqual(run.failures(), []);
  const resumed = r.shards.times('resume');
  assert.deepEqual([...resumed.keys()].sort(), range(6, 3));
  for (const [id, at] of resumed) assert.equal(at, HELLO, `shard ${id} resumes right after its HELLO`);
  for (const id of range(6, 3)) assert.equal(r.shards.times('ready').get(id), HELLO + 1000);
  assert.deepEqual(
    r.turns.map((t) => t.shardId),
    [0, 1, 2],
    'no identify turn is used by a resume',
  );
  assert.deepEqual([...r.shards.times('identify').values()], [HELLO, HELLO + W, HELLO + 2 * W], 'the lane runs as without the resumes');
});

test('resumes start 32 at a time, next to the lanes', async () => {
  const r = rig({ maxConcurrency: 1, sessions: range(40, 1) });
  const run = r.start({ ids: [0], resume: range(40, 1) });
  await runUntil(r.clock, run.done);
  const connected = [...r.shards.times('connect').entries()].filter(([id]) => id > 0);
  assert.equal(connected.filter(([, at]) => at === 0).length, 32);
  assert.equal(connected.filter(([, at]) => at === HELLO + 1000).length, 8, 'the others when the first ones are ready');
  assert.equal(r.clock.now(), 2 * (HELLO + 1000));
});

// ---- failures ------------------------------------------------------------------------------------------

test('a shard that fails for good is collected (and reported) while the others complete', async () => {
  const r = rig({ maxConcurrency: 2, fatal: [3] });
  const reported: number[] = [];
  const run = r.start({ ids: range(6), onFailure: (id) => reported.push(id) });
  await runUntil(r.clock, run.done);
  const failures = run.failures()!;
  assert.deepEqual(
    failures.map((f) => f.shardId),
    [3],
  );
  assert.ok(failures[0]!.error instanceof GatewayError);
  assert.deepEqual(reported, [3]);
  assert.deepEqual([...r.shards.times('ready').keys()].sort(), [0, 1, 2, 4, 5]);
  // the failed shard's lane keeps its pace: shard 5 is next in lane 1
  assert.equal(r.shards.times('identify').get(5), HELLO + 2 * W);
  // what connect() throws with it
  const err = new ClusterConnectError(failures, 6);
  assert.equal(err.code, 'SHARDS_FAILED');
  assert.equal(err.failures, failures);
  assert.match(err.message, /^1 of 6 shards failed to start \(shard 3: shard 3: close 4004 Authentication failed\)/);
});

test('failures are sorted by shard id; the message lists five and counts the rest', async () => {
  const r = rig({ maxConcurrency: 16, fatal: range(8, 2) });
  const run = r.start({ ids: range(12) });
  await runUntil(r.clock, run.done);
  const failures = run.failures()!;
  assert.deepEqual(
    failures.map((f) => f.shardId),
    range(8, 2),
  );
  assert.match(new ClusterConnectError(failures, 12).message, /^8 of 12 shards failed to start \(shard 2: .*; shard 6: [^;]*; and 3 more\)/);
});

// ---- abort ---------------------------------------------------------------------------------------------

test('abort: no further shard starts; once the started ones are closed every timer and wait is released', async () => {
  const r = rig({ maxConcurrency: 1, readyAfter: null });
  const run = r.start({ ids: range(5) });
  await runFor(r.clock, HELLO + 2500 + HELLO); // shard 0 identified; shard 1 connected and waiting for its turn
  assert.deepEqual([...r.shards.times('connect').keys()], [0, 1]);
  assert.equal(r.scheduler.waiting, 1);
  run.ac.abort(new Error('closing'));
  await runFor(r.clock, 10 * W);
  assert.deepEqual([...r.shards.times('connect').keys()], [0, 1], 'nothing else connects');
  assert.equal(run.done(), false, 'start() still waits for the shards it started (the caller closes them)');
  r.shards.close();
  await settle();
  assert.equal(run.done(), true);
  assert.deepEqual(
    run.failures()!.map((f) => [f.shardId, f.error.message]),
    [
      [0, 'closed'],
      [1, 'closed'],
    ],
  );
  assert.equal(r.clock.pending, 0, 'no timer left');
  assert.equal(r.scheduler.waiting, 0, 'no shard waiting for a turn');
  assert.equal(r.gate.grants.size, 0, 'no turn notification left');
});

test('abort during the stagger releases it at once (no timer left)', async () => {
  const r = rig({ maxConcurrency: 1, readyAfter: null });
  const run = r.start({ ids: range(3) });
  await runFor(r.clock, HELLO + 1000); // shard 0 has its turn; its start slot frees 2.5 s later
  assert.equal(r.clock.pending, 1, 'the stagger');
  run.ac.abort(new Error('closing'));
  await settle();
  assert.equal(r.clock.pending, 0);
  r.shards.close();
  await settle();
  assert.equal(run.done(), true);
  assert.deepEqual([...r.shards.times('connect').keys()], [0]);
});

test('a signal aborted before start() starts nothing', async () => {
  const r = rig({ maxConcurrency: 2 });
  const ac = new AbortController();
  ac.abort(new Error('closed already'));
  const failures = await r.scheduler.start(r.gate, { ids: range(4), resume: [4], connect: (id) => r.shards.connect(id), signal: ac.signal });
  assert.deepEqual(failures, []);
  assert.deepEqual(r.shards.log, []);
  assert.equal(r.clock.pending, 0);
});
