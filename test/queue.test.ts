import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalIdentifyQueue, type IdentifyBudgetEvent } from '../src/queue.js';
import { GatewayError } from '../src/errors.js';
import { ManualClock } from './helpers/manual-clock.js';

const tick = () => new Promise((r) => setImmediate(r));

test('one identify per lane per window; lanes run in parallel', async () => {
  const clock = new ManualClock();
  const q = new LocalIdentifyQueue({ maxConcurrency: 2, window: 5000, clock });
  const granted: [number, number][] = [];
  const all = [0, 1, 2, 3, 4, 5].map((id) => q.acquire(id).then(() => granted.push([id, clock.now()])));
  for (let i = 0; i < 5; i++) await tick();
  assert.deepEqual(granted, [
    [0, 0],
    [1, 0],
  ]);
  clock.advance(5000);
  for (let i = 0; i < 5; i++) await tick();
  clock.advance(5000);
  for (let i = 0; i < 5; i++) await tick();
  await Promise.all(all);
  assert.deepEqual(
    granted.sort((a, b) => a[0] - b[0]),
    [
      [0, 0],
      [1, 0],
      [2, 5000],
      [3, 5000],
      [4, 10000],
      [5, 10000],
    ],
  );
});

test('a cancelled wait rejects at once and does not use the slot', async () => {
  const clock = new ManualClock();
  const q = new LocalIdentifyQueue({ window: 5000, clock });
  await q.acquire(0);
  const ac = new AbortController();
  const waiting = q.acquire(1, ac.signal);
  const next = q.acquire(2);
  ac.abort(new Error('cancelled'));
  await assert.rejects(waiting, /cancelled/);
  let got = false;
  void next.then(() => (got = true));
  clock.advance(5000);
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(got, true, 'shard 2 identifies at the next window, not one later');
});

// ---- lane timing under a late timer ------------------------------------------------------------------

test('grants sit on a fixed grid: a late timer does not push later grants back (but the 5 s floor holds)', async () => {
  const clock = new ManualClock();
  const q = new LocalIdentifyQueue({ window: 5100, minGap: 5000, clock });
  const granted: number[] = [];
  const all = [0, 1, 2].map((id) => q.acquire(id).then(() => granted.push(clock.now())));
  for (let i = 0; i < 5; i++) await tick();
  clock.advance(5180); // the second grant's timer fires 80 ms late
  for (let i = 0; i < 5; i++) await tick();
  clock.advance(5000);
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(granted.length, 2);
  for (let t = 0; t < 12; t++) {
    clock.advance(10);
    for (let i = 0; i < 5; i++) await tick();
  }
  await Promise.all(all);
  granted[2] = Math.floor(granted[2]! / 10) * 10; // the step in which it fired
  assert.deepEqual(granted, [0, 5180, 10200], 'third grant on the grid (2 × 5100), not 5180 + 5100');
  assert.ok(granted[2]! - granted[1]! >= 5000);
});

test('by default every grant waits a full window after the previous one really happened', async () => {
  const clock = new ManualClock();
  const q = new LocalIdentifyQueue({ window: 5100, clock });
  const granted: number[] = [];
  const all = [0, 1, 2].map((id) => q.acquire(id).then(() => granted.push(clock.now())));
  for (let i = 0; i < 5; i++) await tick();
  clock.advance(5180); // late by 80
  for (let i = 0; i < 5; i++) await tick();
  clock.advance(5100);
  for (let i = 0; i < 5; i++) await tick();
  await Promise.all(all);
  assert.deepEqual(granted, [0, 5180, 10280]);
});

// ---- daily session start budget ----------------------------------------------------------------------

test('the budget is decremented per grant; exhausted with onExhausted "error" rejects at once with IDENTIFY_BUDGET_EXHAUSTED', async () => {
  const clock = new ManualClock();
  const events: IdentifyBudgetEvent[] = [];
  const q = new LocalIdentifyQueue({
    maxConcurrency: 2,
    window: 5000,
    clock,
    budget: { total: 1000, remaining: 3, resetAfter: 3_600_000 },
    onExhausted: 'error',
    onBudget: (e) => events.push(e),
  });
  assert.equal(q.remaining, 3);
  const results: (string | number)[] = [];
  const all = [0, 1, 2, 3, 4].map((id) =>
    q.acquire(id).then(
      () => results.push(id),
      (err: GatewayError) => results.push(`${id}:${err.code}`),
    ),
  );
  for (let i = 0; i < 10; i++) await tick();
  // 0 and 1 at once; 3 (lane 1) would be next in its lane, 2 and 4 in lane 0
  assert.deepEqual(results, [0, 1]);
  assert.equal(q.remaining, 1);
  clock.advance(5000);
  for (let i = 0; i < 10; i++) await tick();
  await Promise.all(all);
  // one start left: the first lane to reach its window takes it; every other waiter fails fast (no stall, no burst)
  assert.equal(results.filter((r) => typeof r === 'number').length, 3);
  const failed = results.filter((r) => typeof r === 'string');
  assert.equal(failed.length, 2);
  for (const f of failed) assert.match(String(f), /IDENTIFY_BUDGET_EXHAUSTED/);
  assert.equal(q.remaining, 0);
  assert.equal(events.length, 1, 'exhaustion reported once');
  assert.equal(events[0]!.kind, 'exhausted');
  assert.equal(events[0]!.policy, 'error');
  assert.equal(events[0]!.resetIn, 3_600_000 - 5000);
  // a later acquire fails at once too, with a message that says what to do
  const err = await q.acquire(7).catch((e: unknown) => e);
  assert.ok(err instanceof GatewayError);
  assert.equal(err.code, 'IDENTIFY_BUDGET_EXHAUSTED');
  assert.equal(err.shardId, 7);
  assert.match(err.message, /refills in 60 min/);
  assert.equal(clock.pending, 0, 'no timer left behind');
});

test('the refill time in the exhausted message is in whole minutes: 2 h, 1 h 1 min, never 1 h 60 min', async () => {
  const message = async (resetAfter: number) => {
    const q = new LocalIdentifyQueue({ clock: new ManualClock(), budget: { total: 1000, remaining: 0, resetAfter }, onExhausted: 'error' });
    return ((await q.acquire(0).catch((e: unknown) => e)) as Error).message;
  };
  assert.match(await message(7_170_000), /refills in 2 h\)/);
  assert.match(await message(3_600_000), /refills in 1 h\)/);
  assert.match(await message(3_600_001), /refills in 1 h 1 min\)/);
  assert.match(await message(59_000), /refills in 59 s\)/);
});

test('exhausted with onExhausted "wait": waits for reset_after, refills to total, reports it, then paces by lane (no burst)', async () => {
  const clock = new ManualClock();
  const events: IdentifyBudgetEvent[] = [];
  const q = new LocalIdentifyQueue({
    maxConcurrency: 1,
    window: 5000,
    clock,
    budget: { total: 10, remaining: 1, resetAfter: 60_000 },
    onExhausted: 'wait',
    onBudget: (e) => events.push(e),
  });
  const granted: [number, number][] = [];
  const all = [0, 1, 2, 3].map((id) => q.acquire(id).then(() => granted.push([id, clock.now()])));
  for (let i = 0; i < 10; i++) await tick();
  assert.deepEqual(granted, [[0, 0]]);
  assert.deepEqual(
    events.map((e) => e.kind),
    ['exhausted'],
  );
  assert.equal(events[0]!.policy, 'wait');
  for (let t = 0; t < 20; t++) {
    clock.advance(5000);
    for (let i = 0; i < 10; i++) await tick();
  }
  await Promise.all(all);
  assert.deepEqual(granted, [
    [0, 0],
    [1, 60_000],
    [2, 65_000],
    [3, 70_000],
  ]);
  assert.deepEqual(
    events.map((e) => e.kind),
    ['exhausted', 'refilled'],
  );
  assert.equal(q.remaining, 7);
});

test('a wait for the refill is cancellable and leaves no timer', async () => {
  const clock = new ManualClock();
  const q = new LocalIdentifyQueue({ clock, window: 5000, budget: { total: 5, remaining: 0, resetAfter: 86_400_000 }, onExhausted: 'wait' });
  const ac = new AbortController();
  const waiting = q.acquire(0, ac.signal);
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(clock.pending, 1);
  ac.abort(new Error('cluster closed'));
  await assert.rejects(waiting, /cluster closed/);
  for (let i = 0; i < 5; i++) await tick();
  assert.equal(clock.pending, 0);
  assert.equal(q.remaining, 0, 'a cancelled wait uses nothing');
});

test('fromSessionStartLimit reads /gateway/bot values', async () => {
  const clock = new ManualClock();
  const q = LocalIdentifyQueue.fromSessionStartLimit({ total: 1000, remaining: 2, reset_after: 1000, max_concurrency: 16 }, { clock });
  assert.equal(q.maxConcurrency, 16);
  assert.equal(q.laneOf(17), 1);
  await q.acquire(0);
  await q.acquire(1);
  assert.equal(q.remaining, 0);
  await assert.rejects(q.acquire(2), (e: GatewayError) => e.code === 'IDENTIFY_BUDGET_EXHAUSTED');
  clock.advance(1000);
  assert.equal(q.remaining, 1000, 'refilled to total after reset_after');
  await q.acquire(2);
  assert.equal(q.remaining, 999);
});
