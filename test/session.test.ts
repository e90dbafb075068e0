import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLOSE_CODES, decide, isSession } from '../src/session.js';

const close = (code: number) => decide({ kind: 'close', code });

test('decision table: every documented close code 4000-4014', () => {
  const expected: Record<number, string> = {
    4000: 'resume',
    4001: 'identify',
    4002: 'resume',
    4003: 'resume',
    4004: 'fatal',
    4005: 'resume',
    4007: 'identify',
    4008: 'resume',
    4009: 'identify',
    4010: 'fatal',
    4011: 'fatal',
    4012: 'fatal',
    4013: 'fatal',
    4014: 'fatal',
  };
  for (const [code, action] of Object.entries(expected)) {
    assert.equal(close(Number(code)).action, action, `close ${code}`);
    assert.ok(CLOSE_CODES[Number(code)], `row for ${code}`);
  }
  assert.deepEqual(Object.keys(CLOSE_CODES).map(Number).sort(), Object.keys(expected).map(Number).sort());
});

test('fatal codes say what to fix', () => {
  for (const code of [4004, 4010, 4011, 4012, 4013, 4014]) {
    const d = close(code);
    assert.equal(d.action, 'fatal');
    assert.ok(d.fix && d.fix.length > 20, `fix text for ${code}`);
  }
  assert.match(close(4014).fix!, /Developer Portal/);
  assert.match(close(4004).fix!, /token/);
});

test('abnormal and unknown closes resume; 1000/1001 from the server resume', () => {
  for (const code of [1006, 1000, 1001, 1011, 1012, 4999]) assert.equal(close(code).action, 'resume', String(code));
});

test('op 7, zombie, timeouts and malformed data resume', () => {
  for (const kind of ['reconnect-request', 'zombie', 'hello-timeout', 'ready-timeout', 'malformed'] as const) {
    assert.equal(decide({ kind }).action, 'resume', kind);
  }
});

test('op 9: true resumes, false identifies after a 1-5 s wait', () => {
  assert.deepEqual([decide({ kind: 'invalid-session', resumable: true }).action, decide({ kind: 'invalid-session', resumable: true }).identifyDelay], ['resume', false]);
  const d = decide({ kind: 'invalid-session', resumable: false });
  assert.equal(d.action, 'identify');
  assert.equal(d.identifyDelay, true);
});

test('4009 resumes only when configured', () => {
  assert.equal(decide({ kind: 'close', code: 4009 }, { resumeOnSessionTimeout: true }).action, 'resume');
  assert.equal(decide({ kind: 'close', code: 4009 }).action, 'identify');
});

test('isSession validates plain session data', () => {
  assert.ok(isSession({ sessionId: 'a', sequence: 3, resumeUrl: 'ws://x' }));
  assert.ok(!isSession({ sessionId: 'a', sequence: -1, resumeUrl: 'ws://x' }));
  assert.ok(!isSession({ sessionId: 'a', sequence: 1.5, resumeUrl: 'ws://x' }));
  assert.ok(!isSession(null));
});
