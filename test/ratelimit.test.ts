import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimit } from '../src/ratelimit.js';

test('reservation: heartbeats of one window plus the handshake, from the interval', () => {
  const rl = new RateLimit();
  assert.equal(rl.limit, 120);
  assert.equal(rl.window, 61_000, '60 s + 1 s margin');
  rl.reset(41_250);
  assert.equal(rl.reserved, 4, 'ceil(61000 / 41250) + 1 beats + 1 IDENTIFY/RESUME');
  rl.reset(1000);
  assert.equal(rl.reserved, 63);
  rl.reset(100);
  assert.equal(rl.reserved, 119, 'never the whole limit');
  rl.reset(0);
  assert.equal(rl.reserved, 3);
});

test('commands use only limit − reserved; recording is always allowed (heartbeats)', () => {
  const rl = new RateLimit({ margin: 0 });
  rl.reset(41_250);
  let now = 0;
  let commands = 0;
  while (rl.nextSlot(now, 8) <= now) {
    rl.record(now, 8);
    commands++;
  }
  assert.equal(commands, 116);
  assert.equal(rl.nextSlot(now, 8), 60_001, 'when the oldest leaves the window');
  rl.record(now, 1);
  rl.record(now, 1);
  assert.equal(rl.used(now), 118);
  now = 30_000;
  assert.equal(rl.nextSlot(now, 1), 60_001, 'requested beats are commands too');
});

test('window pruning: entries leave after window + margin', () => {
  const rl = new RateLimit({ margin: 500, window: 10_000 });
  rl.reset(5000);
  rl.record(0, 8);
  rl.record(100, 8);
  assert.equal(rl.used(10_499), 2);
  assert.equal(rl.used(10_500), 1);
  assert.equal(rl.used(10_600), 0);
  rl.record(20_000, 8);
  rl.reset(5000);
  assert.equal(rl.used(20_000), 0, 'a new connection starts a fresh window');
});

test('presence updates: at most 5 per 20 s (+ margin), other ops unaffected', () => {
  const rl = new RateLimit();
  rl.reset(41_250);
  for (let i = 0; i < 5; i++) {
    assert.equal(rl.nextSlot(i, 3), i);
    rl.record(i, 3);
  }
  assert.equal(rl.nextSlot(10, 3), 21_001, 'the first presence leaves its 21 s window');
  assert.equal(rl.nextSlot(10, 8), 10);
  // at 21 001 the updates of 0 and 1 ms have left the window: two more fit
  for (let i = 0; i < 2; i++) {
    assert.equal(rl.nextSlot(21_001, 3), 21_001);
    rl.record(21_001, 3);
  }
  assert.equal(rl.nextSlot(21_001, 3), 21_003);
});

test('a flood with regular heartbeats never exceeds the limit in any sliding window', () => {
  const interval = 41_250;
  const rl = new RateLimit();
  rl.reset(interval);
  const sent: number[] = [];
  const send = (t: number, op: number) => {
    rl.record(t, op);
    sent.push(t);
  };
  send(0, 2); // IDENTIFY
  let beat = 20_000;
  let now = 0;
  while (now < 600_000) {
    const next = rl.nextSlot(now, 8);
    if (next <= now) {
      send(now, 8);
      continue;
    }
    if (beat <= next) {
      now = beat;
      send(beat, 1);
      beat += interval;
    } else now = next;
  }
  for (let i = 0, j = 0; i < sent.length; i++) {
    while (sent[i]! - sent[j]! >= 60_000) j++;
    assert.ok(i - j + 1 <= 120, `${i - j + 1} payloads within 60 s at ${sent[i]}`);
  }
  // and the commands get (almost) all of the rest: ~116 per 61 s
  assert.ok(sent.length >= (600_000 / 61_000) * 114, `${sent.length} payloads in 600 s`);
});

test('an idle connection (heartbeats only, never asking for a slot) keeps only its window in the log', () => {
  const rl = new RateLimit();
  rl.reset(41_250);
  let now = 0;
  for (let beat = 0; beat < 2000; beat++, now += 41_250) rl.record(now, 1); // ~23 hours of heartbeats
  // The log is internal; what matters is that it does not grow with the connection's age (it did: one entry
  // per heartbeat, pruned only when a command asked for a slot).
  const log = (rl as unknown as { log: number[] }).log;
  assert.ok(log.length <= 2, `log holds ${log.length} entries`);
  assert.equal(rl.used(now), 1, 'one beat in the window now (the last at now − 41 250, the previous outside)');
  assert.equal(rl.nextSlot(now, 8), now, 'commands are free to go');
});
