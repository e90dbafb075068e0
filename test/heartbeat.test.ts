import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Heartbeater } from '../src/heartbeat.js';
import { ManualClock } from './helpers/manual-clock.js';

function setup(random = 0.5) {
  const clock = new ManualClock();
  const sent: number[] = [];
  let zombies = 0;
  const hb = new Heartbeater({ clock, random: () => random, send: () => sent.push(clock.now()), onZombie: () => zombies++ });
  return { clock, sent, hb, zombies: () => zombies };
}

test('first beat after interval x jitter, then every interval', () => {
  const { clock, sent, hb } = setup(0.25);
  hb.start(40_000);
  clock.advance(9_999);
  assert.equal(sent.length, 0);
  clock.advance(1);
  assert.deepEqual(sent, [10_000]);
  hb.ack();
  clock.advance(40_000);
  assert.deepEqual(sent, [10_000, 50_000]);
  hb.stop();
  assert.equal(clock.pending, 0);
});

test('zombie: no ACK and no inbound traffic since the last beat', () => {
  const { clock, sent, hb, zombies } = setup(0);
  hb.start(1000);
  clock.advance(0);
  assert.equal(sent.length, 1);
  clock.advance(1000);
  assert.equal(zombies(), 1);
  assert.equal(sent.length, 1, 'no beat after zombie');
  assert.equal(clock.pending, 0, 'no timer left');
});

test('late ACK behind traffic is tolerated twice, then zombie', () => {
  const { clock, sent, hb, zombies } = setup(0);
  hb.start(1000);
  clock.advance(0);
  for (let i = 0; i < 2; i++) {
    hb.noteInbound();
    clock.advance(1000);
  }
  assert.equal(zombies(), 0);
  assert.equal(sent.length, 3);
  hb.noteInbound();
  clock.advance(1000);
  assert.equal(zombies(), 1);
});

test('a consumer that pauses and resumes often restarts the late-ACK tolerance, but silence is still a zombie', () => {
  // The shard pauses its socket whenever the event buffer fills: the ACKs then wait behind its own backlog.
  const { clock, hb, zombies } = setup(0);
  hb.start(1000);
  clock.advance(0);
  for (let i = 0; i < 5; i++) {
    hb.setPaused(true);
    hb.noteInbound();
    hb.setPaused(false);
    hb.noteInbound();
    clock.advance(1000);
  }
  assert.equal(zombies(), 0, 'traffic kept arriving between pauses');
  hb.setPaused(true);
  hb.setPaused(false);
  clock.advance(1000); // a resumed socket gets one interval to deliver what it holds
  assert.equal(zombies(), 0);
  clock.advance(1000); // nothing arrived in it: a zombie
  assert.equal(zombies(), 1);
});

test('latency from beat to ACK; op 1 beats at once without moving the timer', () => {
  const { clock, sent, hb } = setup(0);
  hb.start(1000);
  clock.advance(0);
  clock.advance(30);
  hb.ack();
  assert.deepEqual(hb.latency, { recent: [30], average: 30 });
  clock.advance(100);
  hb.beatNow();
  assert.equal(sent.length, 2);
  clock.advance(20);
  hb.ack();
  clock.advance(850);
  assert.equal(sent.length, 3, 'interval timer unchanged by op 1');
  assert.deepEqual(hb.latency.recent, [30, 20]);
  assert.equal(hb.acks, 2);
});

test('paused consumer suspends zombie detection', () => {
  const { clock, hb, zombies } = setup(0);
  hb.start(1000);
  clock.advance(0);
  hb.setPaused(true);
  clock.advance(5000);
  assert.equal(zombies(), 0);
  hb.stop();
});

test('a stalled event loop is not a zombie and not a missed heartbeat (timers run before socket reads)', async (t) => {
  const { harness, waitState } = await import('./helpers/setup.js');
  const h = await harness();
  t.after(() => h.stop());
  const shard = h.shard({ compression: false });
  await shard.connect();
  const disconnects: string[] = [];
  shard.on('disconnected', (e) => disconnects.push(e.cause));
  // Wait for a beat and its ACK, then block the loop past both the client's next beat (412 real ms)
  // and the gateway's deadline (1.5 × interval + slack ≈ 629 real ms). Both timers then fire in one timers
  // phase, before the heartbeat and the ACK that arrived in time have been read.
  const acks = () => shard.latency.recent.length;
  const before = acks();
  while (acks() === before) await new Promise((r) => setTimeout(r, 2));
  for (let round = 0; round < 2; round++) {
    await new Promise((r) => setTimeout(r, 300));
    const end = Date.now() + 900;
    while (Date.now() < end) { /* stall */ }
  }
  // Now stall right after the gateway answered a heartbeat: the ACK is on the wire but unread when the
  // client's next beat is due, which a naive heartbeater reads as a zombie connection.
  let stalls = 0;
  h.sim.on('heartbeat', () => {
    if (stalls++ >= 2) return;
    const end = Date.now() + 700;
    while (Date.now() < end) { /* stall */ }
  });
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok(stalls >= 2, 'stalled after two heartbeats');
  assert.deepEqual(disconnects, []);
  assert.equal(shard.state, 'ready');
  assert.ok(acks() > before + 1, 'heartbeats kept flowing');
  await waitState(shard, 'ready');
});
