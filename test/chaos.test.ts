import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ChaosMonkey, DEFAULT_FAULT_WEIGHTS, DeliveryLedger, garbage, type FaultKind } from '../src/simulator/chaos.js';
import { GatewaySimulator } from '../src/simulator/index.js';
import { failOnUnhandledRejections } from './helpers/setup.js';
import { ManualClock } from './helpers/manual-clock.js';

failOnUnhandledRejections();

describe('DeliveryLedger', () => {
  const S1 = 'aaaaaaaa-session-1';
  const S2 = 'bbbbbbbb-session-2';

  it('accepts a contiguous session, resumes included', () => {
    const l = new DeliveryLedger();
    l.onDispatch(0, S1, 1, 'READY');
    for (let s = 2; s <= 10; s++) l.onDispatch(0, S1, s, 'MESSAGE_CREATE');
    l.onDispatch(0, S1, 11, 'RESUMED');
    l.onDispatch(0, S1, 12, 'MESSAGE_CREATE');
    l.finish(() => 12);
    assert.deepEqual(l.violations, []);
    assert.equal(l.events, 12);
  });

  it('flags duplicates, gaps, a tail never delivered, and dispatches before READY', () => {
    const l = new DeliveryLedger();
    l.onDispatch(0, S1, 1, 'READY');
    l.onDispatch(0, S1, 2, 'X');
    l.onDispatch(0, S1, 2, 'X');
    l.onDispatch(0, S1, 5, 'X');
    l.onDispatch(1, S2, 3, 'X');
    l.finish(() => 7);
    assert.deepEqual(
      l.violations.map((v) => v.kind),
      ['duplicate', 'gap', 'dispatch-before-ready', 'session-start', 'lost', 'lost'],
    );
  });

  it('a new session is only accepted where the gateway forced one', () => {
    const l = new DeliveryLedger();
    l.onDispatch(0, S1, 1, 'READY');
    l.onDispatch(0, S1, 2, 'X');
    l.onDispatch(0, S2, 1, 'READY');
    assert.equal(l.violations[0]?.kind, 'unforced-new-session');
    const ok = new DeliveryLedger();
    ok.onDispatch(0, S1, 1, 'READY');
    ok.allowNewSession(0, 'op 9 false');
    ok.onDispatch(0, S2, 1, 'READY');
    ok.onDispatch(0, S2, 2, 'X');
    assert.deepEqual(ok.violations, []);
    assert.equal(ok.newSessions, 1);
  });

  it('markers: delivered once with the seq the gateway gave them; lost only with a forced new session', () => {
    const l = new DeliveryLedger();
    l.onDispatch(0, S1, 1, 'READY');
    l.expectMarker(0, S1, 2, 'mk:0:1');
    l.expectMarker(0, S1, 3, 'mk:0:2');
    l.expectMarker(0, S1, 4, 'mk:0:3');
    l.onDispatch(0, S1, 2, 'MESSAGE_CREATE', { content: 'mk:0:1' });
    l.onDispatch(0, S1, 3, 'MESSAGE_CREATE', { content: 'mk:0:9' }); // wrong content at that seq
    l.allowNewSession(0, 'close 4007');
    l.onDispatch(0, S2, 1, 'READY'); // seq 4 of S1 never came: allowed, the gateway ended S1
    assert.deepEqual(
      l.violations.map((v) => v.kind),
      ['content', 'lost'],
    ); // seq 3's marker was not delivered intact
    assert.equal(l.markersDelivered, 1);
    assert.equal(l.markersLostToNewSession, 1);
  });
});

describe('ChaosMonkey', () => {
  it('the same seed picks the same faults; garbage is never a valid dispatch', () => {
    const draw = (seed: number): string[] => {
      const m = new ChaosMonkey({} as GatewaySimulator, { seed });
      return Array.from({ length: 200 }, () => `${m.pickKind()}@${m.int(16)}`);
    };
    assert.deepEqual(draw(7), draw(7));
    assert.notDeepEqual(draw(7), draw(8));
    const kinds = new Set(draw(7).map((d) => d.split('@')[0] as FaultKind));
    for (const k of Object.keys(DEFAULT_FAULT_WEIGHTS)) assert.ok(kinds.has(k as FaultKind), `${k} is drawn`);
    let r = 1;
    const random = () => (r = (r * 16807) % 2147483647) / 2147483647;
    for (let i = 0; i < 500; i++) {
      const g = garbage(random);
      const text = typeof g.data === 'string' ? g.data : g.data.toString('latin1');
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        continue;
      }
      const p = parsed as { op?: unknown; s?: unknown; t?: unknown };
      const dispatch = p && typeof p === 'object' && p.op === 0 && Number.isInteger(p.s) && typeof p.t === 'string';
      assert.ok(!dispatch, `garbage ${text} is a dispatch`);
    }
  });

  it('injects every fault kind on a live simulator', async () => {
    const clock = new ManualClock();
    const sim = await GatewaySimulator.start({ clock });
    try {
      const m = new ChaosMonkey(sim, { seed: 1 });
      // No connection: nothing applied, nothing counted.
      for (const k of Object.keys(DEFAULT_FAULT_WEIGHTS) as FaultKind[]) {
        const f = m.inject(0, k);
        if (k !== 'split-frames') assert.equal(f.applied, false, k);
      }
      assert.deepEqual(Object.keys(m.counts), ['split-frames']);
      assert.equal(clock.pending, 1, "split-frames ends on the simulator's clock");
      m.stop();
      assert.equal(clock.pending, 0, 'stop() cancels it');
    } finally {
      await sim.stop();
    }
  });
});
