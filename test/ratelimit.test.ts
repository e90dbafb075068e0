import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SendLimiter } from '../src/ratelimit.js';
import { SendError } from '../src/errors.js';
import { ManualClock } from './helpers/manual-clock.js';

test('commands never use the heartbeat reservation; at most 120 payloads in any 60 s', async () => {
  const clock = new ManualClock();
  const limiter = new SendLimiter({ clock, margin: 0 });
  limiter.reset(41_250); // reserve ceil(60000/41250)+1 = 3 beats + 1 handshake
  const sent: number[] = [];
  limiter.open(() => sent.push(clock.now()));
  const all = Array.from({ length: 300 }, (_, i) => limiter.enqueue(`{"op":3,"d":${i}}`, 4));
  await Promise.resolve();
  assert.equal(sent.length, 116);
  // heartbeats still have room
  for (let i = 0; i < 4; i++) limiter.record();
  assert.equal(limiter.available, 0);
  clock.advance(60_001);
  await Promise.resolve();
  assert.equal(sent.length, 232);
  clock.advance(60_001);
  await Promise.all(all);
  // sliding window: no 60 s span holds more than 116 commands
  for (let i = 0; i + 116 < sent.length; i++) assert.ok(sent[i + 116]! - sent[i]! >= 60_000);
});

test('presence updates: at most 5 per 20 s', async () => {
  const clock = new ManualClock();
  const limiter = new SendLimiter({ clock });
  limiter.reset(41_250);
  const sent: number[] = [];
  limiter.open(() => sent.push(clock.now()));
  const p = Array.from({ length: 7 }, () => limiter.enqueue('{"op":3}', 3));
  assert.equal(sent.length, 5);
  clock.advance(21_001);
  await Promise.all(p);
  assert.equal(sent.length, 7);
});

test('commands wait while closed, bounded queue errors clearly', async () => {
  const clock = new ManualClock();
  const limiter = new SendLimiter({ clock, maxQueued: 2 });
  const a = limiter.enqueue('a', 4);
  const b = limiter.enqueue('b', 4);
  await assert.rejects(limiter.enqueue('c', 4), (e: unknown) => e instanceof SendError && e.code === 'QUEUE_FULL');
  const sent: string[] = [];
  limiter.reset(1000);
  limiter.open((d) => sent.push(d));
  await Promise.all([a, b]);
  assert.deepEqual(sent, ['a', 'b']);
  const c = limiter.enqueue('c', 4);
  limiter.open(null);
  const d = limiter.enqueue('d', 4);
  limiter.rejectAll(new SendError('SHARD_CLOSED', 'closed'));
  await c;
  await assert.rejects(d, /closed/);
});
