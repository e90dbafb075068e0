import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Heartbeat } from '../src/heartbeat.js';

test('first beat after interval × jitter, then every interval; stop ends beating', () => {
  const hb = new Heartbeat();
  assert.equal(hb.dueAt, null);
  hb.start(40_000, 1000, 0.25);
  assert.equal(hb.interval, 40_000);
  assert.equal(hb.dueAt, 11_000);
  assert.equal(hb.tick(11_000), 'beat');
  assert.equal(hb.dueAt, 51_000);
  hb.ack(11_030);
  assert.equal(hb.tick(51_000), 'beat');
  assert.equal(hb.dueAt, 91_000);
  hb.stop();
  assert.equal(hb.dueAt, null);
});

test('jitter is floored to whole ms and stays below one interval', () => {
  const hb = new Heartbeat();
  hb.start(41_250, 0, 0.999_999);
  assert.equal(hb.dueAt, 41_249);
  hb.start(41_250, 0, 0);
  assert.equal(hb.dueAt, 0);
});

test('zombie: no ACK and no inbound traffic since the last beat', () => {
  const hb = new Heartbeat();
  hb.start(1000, 0, 0);
  assert.equal(hb.tick(0), 'beat');
  assert.equal(hb.tick(1000), 'zombie');
  assert.equal(hb.dueAt, null, 'no beat after a zombie');
});

test('an ACK keeps the connection alive without other traffic', () => {
  const hb = new Heartbeat();
  hb.start(1000, 0, 0);
  for (let t = 0; t < 10_000; t += 1000) {
    assert.equal(hb.tick(t), 'beat');
    hb.ack(t + 5);
  }
  assert.equal(hb.acks, 10);
});

test('late ACK behind traffic is tolerated twice, then zombie; an ACK restores the tolerance', () => {
  const hb = new Heartbeat();
  hb.start(1000, 0, 0);
  hb.tick(0);
  for (let t = 1000; t <= 2000; t += 1000) {
    hb.noteInbound();
    assert.equal(hb.tick(t), 'beat', `late beat at ${t}`);
  }
  hb.noteInbound();
  assert.equal(hb.tick(3000), 'zombie', 'traffic alone is not enough forever');

  const b = new Heartbeat();
  b.start(1000, 0, 0);
  b.tick(0);
  b.noteInbound();
  b.tick(1000);
  b.noteInbound();
  b.tick(2000);
  b.ack(2100); // the late ACKs arrive: the tolerance starts afresh
  b.tick(3000);
  for (let t = 4000; t <= 5000; t += 1000) {
    b.noteInbound();
    assert.equal(b.tick(t), 'beat');
  }
});

test('lateAckTolerance 0: the first missing ACK is a zombie even with traffic', () => {
  const hb = new Heartbeat({ lateAckTolerance: 0 });
  hb.start(1000, 0, 0);
  hb.tick(0);
  hb.noteInbound();
  assert.equal(hb.tick(1000), 'zombie');
});

test('a paused consumer suspends zombie detection', () => {
  const hb = new Heartbeat();
  hb.start(1000, 0, 0);
  hb.tick(0);
  hb.setPaused(true);
  for (let t = 1000; t <= 10_000; t += 1000) assert.equal(hb.tick(t), 'beat');
});

test('pausing restarts the late-ACK tolerance, but a silent resumed connection is still a zombie', () => {
  // The shard pauses its socket whenever the event buffer fills: the ACKs then wait behind its own backlog.
  const hb = new Heartbeat();
  hb.start(1000, 0, 0);
  hb.tick(0);
  for (let t = 1000; t <= 5000; t += 1000) {
    hb.setPaused(true);
    hb.noteInbound();
    hb.setPaused(false);
    hb.noteInbound();
    assert.equal(hb.tick(t), 'beat', `traffic kept arriving between pauses (${t})`);
  }
  hb.setPaused(true);
  hb.setPaused(false);
  assert.equal(hb.tick(6000), 'beat', 'a resumed socket gets one interval to deliver what it holds');
  assert.equal(hb.tick(7000), 'zombie', 'nothing arrived in it');
});

test('latency samples: beat to ACK, bounded, averaged; an ACK without a beat has none', () => {
  const hb = new Heartbeat({ samples: 3 });
  const latency = () => hb.latency;
  assert.deepEqual(latency(), { recent: [], average: null });
  hb.start(1000, 0, 0);
  assert.equal(hb.ack(5), null, 'nothing was sent');
  for (const [t, rtt] of [
    [0, 10],
    [1000, 20],
    [2000, 30],
    [3000, 40],
  ] as const) {
    hb.tick(t);
    assert.equal(hb.ack(t + rtt), rtt);
  }
  assert.deepEqual(latency(), { recent: [20, 30, 40], average: 30 });
  assert.equal(hb.acks, 5);
  hb.stop();
  assert.deepEqual(latency().recent, [20, 30, 40], 'samples survive the connection');
});

test('a requested beat (op 1) starts the latency clock only when idle and leaves the zombie bookkeeping alone', () => {
  const hb = new Heartbeat();
  hb.start(1000, 0, 0);
  hb.tick(0);
  hb.ack(10);
  hb.requested(100);
  assert.equal(hb.dueAt, 1000, 'the regular beat does not move');
  assert.equal(hb.tick(1000), 'beat', 'its ACK is still on the way: not a zombie');
  assert.equal(hb.ack(1020), 920, 'measured from the requested beat');
  hb.tick(2000);
  hb.requested(2005); // a beat is already waiting for its ACK: its time is kept
  assert.equal(hb.ack(2030), 30);
});

test('start() on a new connection forgets the old one', () => {
  const hb = new Heartbeat();
  hb.start(1000, 0, 0);
  hb.tick(0);
  assert.equal(hb.tick(1000), 'zombie');
  hb.start(2000, 5000, 0.5);
  assert.equal(hb.dueAt, 6000);
  assert.equal(hb.tick(6000), 'beat', 'no ACK was owed on this connection');
});

test('a late tick (stalled process) is not evidence of a zombie, but a dead connection is still caught', () => {
  const hb = new Heartbeat();
  hb.start(40_000, 0, 0);
  assert.equal(hb.tick(0), 'beat');
  // on time, no ACK, no traffic: a zombie
  const onTime = new Heartbeat();
  onTime.start(40_000, 0, 0);
  onTime.tick(0);
  assert.equal(onTime.tick(40_000 + 3_999), 'zombie', 'late by less than a tenth of the interval still judges');
  // the process stalled: the tick is 5 s late, the ACK may be sitting unread (or, with an in-process peer, unwritten)
  assert.equal(hb.tick(45_000), 'beat');
  hb.ack(45_010);
  assert.equal(hb.tick(85_000), 'beat', 'the ACK came after all');
  // a dead connection on a process that stalls at every tick: tolerated twice, then a zombie
  assert.equal(hb.tick(130_000), 'beat');
  assert.equal(hb.tick(175_000), 'beat');
  assert.equal(hb.tick(220_000), 'zombie');
});
