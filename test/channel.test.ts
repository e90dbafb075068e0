import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventChannel } from '../src/channel.js';

test('buffers, signals pressure past the high-water mark and relief below half', async () => {
  const signals: boolean[] = [];
  const ch = new EventChannel<number>(4, (full) => signals.push(full));
  for (let i = 0; i < 6; i++) ch.push(i);
  assert.deepEqual(signals, [true]);
  const it = ch[Symbol.asyncIterator]();
  const got: number[] = [];
  for (let i = 0; i < 4; i++) got.push((await it.next()).value as number);
  assert.deepEqual(signals, [true, false]);
  ch.end();
  for (;;) {
    const r = await it.next();
    if (r.done) break;
    got.push(r.value);
  }
  assert.deepEqual(got, [0, 1, 2, 3, 4, 5]);
});

test('end(error) rejects a waiting consumer; return() releases the buffer', async () => {
  const ch = new EventChannel<number>(10);
  const it = ch[Symbol.asyncIterator]();
  const p = it.next();
  ch.end(new Error('fatal'));
  await assert.rejects(p, /fatal/);
  let returned = false;
  const ch2 = new EventChannel<number>(
    10,
    () => {},
    () => (returned = true),
  );
  ch2.push(1);
  await ch2[Symbol.asyncIterator]().return!();
  assert.equal(returned, true);
  assert.equal(ch2.size, 0);
});
