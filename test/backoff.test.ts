import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff } from '../src/backoff.js';

test('first retry immediate, then doubling with jitter in [0.5, 1), capped', () => {
  const lo = new Backoff({ base: 1000, max: 8000, random: () => 0 });
  assert.deepEqual(
    Array.from({ length: 7 }, () => lo.next()),
    [0, 500, 1000, 2000, 4000, 4000, 4000],
  );
  const hi = new Backoff({ base: 1000, max: 8000, random: () => 0.999999 });
  assert.deepEqual(
    Array.from({ length: 6 }, () => hi.next()),
    [0, 1000, 2000, 4000, 8000, 8000],
  );
  hi.reset();
  assert.equal(hi.next(), 0);
});
