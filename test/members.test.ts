/**
 * `MemberRequest` on a manual clock: a RATE_LIMITED answer fails it at once, or (with retries) waits `retryAfter`,
 * asks again with the answer timeout restarted, and gives up after the last retry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimitedError } from '../src/errors.js';
import type { GuildMembersChunk } from '../src/events.js';
import { MemberRequest } from '../src/members.js';
import { ManualClock, settle } from './helpers/manual-clock.js';

const limited = (retryAfter: number) => new RateLimitedError('too fast', { retryAfter, opcode: 8, guildId: '1', shardId: 0 });
const chunk = (nonce: string) => ({ guild_id: '1', members: [], chunk_index: 0, chunk_count: 1, nonce }) as unknown as GuildMembersChunk;
const outcome = (req: MemberRequest) => {
  const o: { value?: GuildMembersChunk[]; error?: Error } = {};
  req.then(
    (v) => (o.value = v),
    (e: unknown) => (o.error = e as Error),
  );
  return o;
};

test('without retries a RATE_LIMITED answer fails the request at once with the RateLimitedError', async () => {
  const clock = new ManualClock();
  let done = 0;
  const req = new MemberRequest('n', clock, 30_000, () => done++);
  const o = outcome(req);
  const err = limited(5000);
  req.rateLimited(err);
  await settle();
  assert.equal(o.error, err);
  assert.equal(done, 1);
  assert.equal(clock.pending, 0, 'no timer left');
});

test('with retries: waits retryAfter, asks again, timeout restarted; gives up after the last retry', async () => {
  const clock = new ManualClock();
  const sentAt: number[] = [];
  const req = new MemberRequest('n', clock, 30_000, () => undefined, { retries: 2, resend: () => sentAt.push(clock.now()) });
  const o = outcome(req);
  clock.advance(1000);
  req.rateLimited(limited(5000));
  clock.advance(4999);
  assert.deepEqual(sentAt, []);
  clock.advance(1);
  assert.deepEqual(sentAt, [6000], 'asked again after exactly retryAfter');
  clock.advance(29_999);
  await settle();
  assert.equal(o.error, undefined, 'the answer timeout restarted with the new request (not counted during the wait)');
  req.rateLimited(limited(2000));
  clock.advance(2000);
  assert.deepEqual(sentAt, [6000, 37_999]);
  const last = limited(9000);
  req.rateLimited(last);
  await settle();
  assert.equal(o.error, last, 'the third RATE_LIMITED is the end');
  assert.deepEqual(sentAt, [6000, 37_999], 'not asked a third time');
  assert.equal(clock.pending, 0);
});

test('a retried request completes normally; a request closed while waiting does not ask again', async () => {
  const clock = new ManualClock();
  let sent = 0;
  const req = new MemberRequest('n', clock, 30_000, () => undefined, { retries: 3, resend: () => sent++ });
  const o = outcome(req);
  req.rateLimited(limited(1000));
  clock.advance(1000);
  req.push(chunk('n'));
  await settle();
  assert.equal(o.value?.length, 1);
  assert.equal(clock.pending, 0);
  const waiting = new MemberRequest('m', clock, 30_000, () => undefined, { retries: 3, resend: () => sent++ });
  const w = outcome(waiting);
  waiting.rateLimited(limited(1000));
  waiting.fail(new Error('shard closed'));
  clock.advance(5000);
  await settle();
  assert.equal(w.error?.message, 'shard closed');
  assert.equal(sent, 1, 'the closed one never asked again');
  assert.equal(clock.pending, 0);
});
