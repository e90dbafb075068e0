/**
 * `OverlapDedupe` by example: the overlap bookkeeping of a reshard, without sockets. (The randomised model of it is
 * in `test/reshard.test.ts`, "OverlapDedupe: random lags …".) Reshard 2 → 4 throughout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DispatchEvent } from '../src/events.js';
import { fingerprint, OverlapDedupe, routingKey } from '../src/reshard-dedupe.js';

const FROM = 2;
const TO = 4;
/** A guild id whose shard is `n % total` (the snowflake's timestamp part is `n`). */
const guild = (n: number) => String((BigInt(n) << 22n) + 7n);
let seq = 0;
/** A MESSAGE_CREATE in guild `g` with content `c`, as shard `shardId` receives it. */
const ev = (shardId: number, g: string | null, c: string): DispatchEvent =>
  ({ shardId, type: 'MESSAGE_CREATE', sequence: ++seq, data: { content: c, ...(g === null ? {} : { guild_id: g }) } }) as unknown as DispatchEvent;
/** The same event as the other set's shard receives it (own shard id and sequence). */
const copy = (e: DispatchEvent, shardId: number): DispatchEvent => ({ ...e, shardId, sequence: e.sequence + 1000 }) as DispatchEvent;
const text = (es: DispatchEvent[]) => es.map((e) => (e.data as { content: string }).content);

/** A dedupe whose new shards all had their identify turn. */
function started(): OverlapDedupe {
  const d = new OverlapDedupe(FROM, TO);
  for (let n = 0; n < TO; n++) d.started.add(n);
  return d;
}

/**
 * Play one overlap: `steps` in order (old delivers, new receives), switch, then `after` (new set events after the
 * switch). Returns what the user gets, in order.
 */
function play(d: OverlapDedupe, steps: ['old' | 'new', DispatchEvent][], after: DispatchEvent[] = []): string[] {
  const delivered: DispatchEvent[] = [];
  let t = 0;
  for (const [side, e] of steps) {
    if (side === 'old') {
      d.old(e, t++);
      delivered.push(e);
    } else d.withhold(e);
  }
  delivered.push(...d.release());
  for (const e of after) if (d.pass(e)) delivered.push(e);
  return text(delivered);
}

// ---- keys and fingerprints ---------------------------------------------------------------------------

test('routingKey: the guild id; a guild event by its id; events without a guild by shard', () => {
  const g = guild(5);
  assert.equal(routingKey(ev(1, g, 'x')), g);
  assert.equal(routingKey({ shardId: 1, type: 'GUILD_CREATE', sequence: 1, data: { id: g } } as unknown as DispatchEvent), g);
  assert.equal(routingKey({ shardId: 1, type: 'GUILD_DELETE', sequence: 1, data: { id: g, unavailable: true } } as unknown as DispatchEvent), g);
  assert.equal(routingKey({ shardId: 1, type: 'MESSAGE_CREATE', sequence: 1, data: { id: g } } as unknown as DispatchEvent), '#1', 'an id is not a guild id');
  assert.equal(routingKey(ev(0, null, 'dm')), '#0');
  assert.equal(routingKey({ shardId: 3, type: 'RESUMED', sequence: 1, data: null } as unknown as DispatchEvent), '#3');
});

test('fingerprint: the type and the data; not the shard id or the sequence', () => {
  const e = ev(0, guild(1), 'hello');
  assert.equal(fingerprint(e), fingerprint(copy(e, 3)));
  assert.notEqual(fingerprint(e), fingerprint(ev(0, guild(1), 'hello!')));
  assert.notEqual(fingerprint(e), fingerprint({ ...e, type: 'MESSAGE_UPDATE' } as DispatchEvent));
  assert.ok(Number.isSafeInteger(fingerprint(e)) && fingerprint(e) >= 0);
});

test('newShardOf: guild keys by (id >> 22) % to; #n keys only below to; hasOldCounterpart: #n only below from', () => {
  const d = new OverlapDedupe(FROM, TO);
  assert.deepEqual(
    [0, 1, 2, 3, 4, 7].map((n) => d.newShardOf(guild(n))),
    [0, 1, 2, 3, 0, 3],
  );
  assert.equal(d.newShardOf('#0'), 0);
  assert.equal(d.newShardOf('#3'), 3);
  assert.equal(d.newShardOf('#4'), null);
  assert.equal(d.newShardOf('not a snowflake'), null);
  assert.equal(d.hasOldCounterpart(guild(3)), true);
  assert.equal(d.hasOldCounterpart('#1'), true);
  assert.equal(d.hasOldCounterpart('#2'), false);
});

// ---- exactly once ------------------------------------------------------------------------------------

test('the same event from both sets is delivered once: old set first', () => {
  const d = started();
  const e = ev(1, guild(1), 'm1');
  assert.deepEqual(
    play(d, [
      ['old', e],
      ['new', copy(e, 1)],
    ]),
    ['m1'],
  );
  assert.equal(d.deduplicated, 1);
  assert.equal(d.received, 1);
  assert.equal(d.oldSize, 0, 'the matched fingerprint is gone');
});

test('the same event from both sets is delivered once: new set first (withheld, then dropped when the old set delivers it)', () => {
  const d = started();
  const e = ev(1, guild(1), 'm1');
  assert.equal(d.withhold(copy(e, 1)), true);
  assert.equal(d.buffered, 1);
  d.old(e, 0);
  assert.equal(d.buffered, 0);
  assert.deepEqual(d.release(), [], 'nothing left to release');
  assert.equal(d.deduplicated, 1);
  assert.equal(d.maxBuffered, 1);
});

test('events only the old set saw (before the new session existed) are delivered once, by the old set', () => {
  const d = started();
  const g = guild(2);
  // m1, m2 were sent to the old session only; the new session starts with m3
  const [m1, m2, m3] = [ev(0, g, 'm1'), ev(0, g, 'm2'), ev(0, g, 'm3')];
  assert.deepEqual(
    play(d, [
      ['old', m1],
      ['old', m2],
      ['new', copy(m3, 2)],
      ['old', m3],
    ]),
    ['m1', 'm2', 'm3'],
  );
  assert.equal(d.oldSize, 0, 'm1 and m2 were proven old-only by m3 and forgotten');
});

test('events only the new set saw (the old set had not delivered them at the switch) are released at the switch', () => {
  const d = started();
  const g = guild(3);
  const [m1, m2, m3] = [ev(1, g, 'm1'), ev(1, g, 'm2'), ev(1, g, 'm3')];
  assert.deepEqual(
    play(d, [
      ['old', m1],
      ['new', copy(m1, 3)],
      ['new', copy(m2, 3)],
      ['new', copy(m3, 3)],
    ]),
    ['m1', 'm2', 'm3'],
  );
  assert.equal(d.buffered, 0, 'released');
});

test('after the switch: new-set copies of what the old set delivered last are dropped; new events pass', () => {
  const d = started();
  const g = guild(1);
  const [m1, m2, m3] = [ev(1, g, 'm1'), ev(1, g, 'm2'), ev(1, g, 'm3')];
  // the old set delivered m1, m2 before the switch; the new set had not received them yet
  assert.deepEqual(
    play(
      d,
      [
        ['old', m1],
        ['old', m2],
      ],
      [copy(m1, 1), copy(m2, 1), copy(m3, 1)],
    ),
    ['m1', 'm2', 'm3'],
  );
  assert.equal(d.oldSize, 0);
  assert.equal(d.pass(ev(1, g, 'm1')), true, 'with nothing left to match, everything passes (even a repeated payload)');
});

test('old deliveries of a key whose new shard has not had its identify turn are not recorded', () => {
  const d = new OverlapDedupe(FROM, TO);
  d.started.add(0);
  d.old(ev(1, guild(1), 'not started'), 0); // new shard 1: no turn yet, so the new set cannot receive it
  assert.equal(d.oldSize, 0);
  d.old(ev(0, guild(4), 'started'), 0); // new shard 0
  assert.equal(d.oldSize, 1);
  d.old(ev(3, null, 'no counterpart'), 0); // #3: old shard 3 does not exist for 2 shards, but new shard 3 is not started
  d.old(ev(1, '#x', 'bad key'), 0);
  assert.equal(d.oldSize, 1);
});

test('DMs (shard 0 on both sets) are matched by #0', () => {
  const d = started();
  const dm = ev(0, null, 'dm');
  assert.deepEqual(
    play(d, [
      ['new', copy(dm, 0)],
      ['old', dm],
    ]),
    ['dm'],
  );
});

// ---- order -----------------------------------------------------------------------------------------

test('per-guild order is kept across the switch; released events keep their arrival order across guilds', () => {
  const d = started();
  const a = guild(1);
  const b = guild(2);
  const [a1, a2, a3, a4] = ['a1', 'a2', 'a3', 'a4'].map((c) => ev(1, a, c)) as [DispatchEvent, DispatchEvent, DispatchEvent, DispatchEvent];
  const [b1, b2] = ['b1', 'b2'].map((c) => ev(0, b, c)) as [DispatchEvent, DispatchEvent];
  const got = play(
    d,
    [
      ['old', a1],
      ['new', copy(a1, 1)],
      ['new', copy(a2, 1)], // ahead of the old set
      ['new', copy(b1, 2)],
      ['old', b1], // drops the withheld b1
      ['new', copy(a3, 1)],
      ['old', a2], // drops the withheld a2
      ['new', copy(b2, 2)],
      // switch here: a3 and b2 were only withheld
    ],
    [copy(a4, 1)],
  );
  assert.deepEqual(got, ['a1', 'b1', 'a2', 'a3', 'b2', 'a4']);
  for (const key of ['a', 'b']) {
    const mine = got.filter((c) => c.startsWith(key));
    assert.deepEqual(mine, [...mine].sort(), `guild ${key} in order`);
  }
});

test('unaligned(): keys with withheld events the old set has not reached in the overlap yet', () => {
  const d = started();
  const a = guild(1);
  d.withhold(ev(1, a, 'a1'));
  d.withhold(ev(3, null, 'shard 3 only')); // a #3 key: no old counterpart (2 old shards), never waited for
  assert.equal(d.unaligned(), 1);
  d.old(ev(1, a, 'a1'), 0);
  assert.equal(d.unaligned(), 0, 'the old set delivered a withheld a-event: a is aligned');
});

test('a repeated payload is matched one for one, oldest first', () => {
  const d = started();
  const g = guild(2);
  const same = () => ev(0, g, 'typing');
  d.old(same(), 0);
  d.old(same(), 1);
  assert.equal(d.oldSize, 2);
  assert.equal(d.withhold(same()), false);
  assert.equal(d.oldSize, 1);
  assert.equal(d.withhold(same()), false);
  assert.equal(d.withhold(same()), true, 'a third copy is new');
  assert.equal(d.deduplicated, 2);
});

// ---- expiry and bounds -------------------------------------------------------------------------------

test('expire(before): old fingerprints recorded before that time are forgotten (delivered again if the new set sends them)', () => {
  const d = started();
  const a = guild(1);
  const b = guild(2);
  const early = ev(1, a, 'early');
  const late = ev(1, a, 'late');
  const other = ev(0, b, 'other key');
  d.old(early, 1_000);
  d.old(late, 40_000);
  d.old(other, 35_000);
  d.expire(30_000);
  assert.equal(d.oldSize, 2);
  d.release();
  assert.equal(d.pass(copy(other, 2)), false, 'not expired: still recognised');
  assert.equal(d.pass(copy(early, 1)), true, 'expired: no longer recognised, delivered a second time');
  // Observed: the unmatched copy of `early` is taken as proof that the key's older fingerprints were old-only,
  // so the unexpired `late` is forgotten with it: a new set lagging a key beyond dedupeWindow repeats its backlog.
  assert.equal(d.pass(copy(late, 1)), true);
  assert.equal(d.oldSize, 0);
});

test('expire keeps everything at or after the cut-off', () => {
  const d = started();
  d.old(ev(1, guild(1), 'x'), 5_000);
  d.expire(5_000);
  assert.equal(d.oldSize, 1);
  d.expire(5_001);
  assert.equal(d.oldSize, 0);
});

test('old fingerprints are bounded per key (4096, oldest dropped)', () => {
  const d = started();
  const g = guild(1);
  for (let i = 0; i < 5000; i++) d.old(ev(1, g, `m${i}`), i);
  assert.equal(d.oldSize, 4096);
  d.release();
  assert.equal(d.pass(ev(1, g, 'm904')), false, 'the oldest one kept');
  assert.equal(d.oldSize, 4095);
  assert.equal(d.pass(ev(1, g, 'm903')), true, 'dropped by the bound');
});

test('many withheld events dropped by the old set (list compaction): release still returns the rest in order', () => {
  const d = started();
  const g = guild(1);
  const events = Array.from({ length: 3000 }, (_, i) => ev(1, g, `m${i}`));
  for (const e of events) d.withhold(copy(e, 1));
  for (const e of events.slice(0, 2500)) d.old(e, 0);
  assert.equal(d.buffered, 500);
  assert.deepEqual(
    text(d.release()),
    events.slice(2500).map((e) => (e.data as { content: string }).content),
  );
  assert.equal(d.buffered, 0);
});

test('clear() forgets everything', () => {
  const d = started();
  d.old(ev(1, guild(1), 'x'), 0);
  d.withhold(ev(2, guild(2), 'y'));
  d.clear();
  assert.deepEqual([d.oldSize, d.buffered, d.unaligned()], [0, 0, 0]);
  assert.deepEqual(d.release(), []);
  assert.equal(d.pass(ev(1, guild(1), 'x')), true);
});

// ---- a running shard that IDENTIFYs again in the overlap ----------------------------------------------------

/**
 * Old shard 1 loses its session: `gap` goes to the new set only. Its new session's GUILD_CREATE `g` goes to the old
 * set only. The new set lags: the old set delivers `e0`, `g` and `e3` before the new set receives `e0`, `gap`, `e3`.
 */
function reidentifyWithLag(d: OverlapDedupe): string[] {
  const G = guild(1); // old shard 1, new shard 1
  const e0 = ev(1, G, 'e0');
  const gap = ev(1, G, 'gap');
  const g = { shardId: 1, type: 'GUILD_CREATE', sequence: 2, data: { id: G, content: 'g' } } as unknown as DispatchEvent;
  const e3 = ev(1, G, 'e3');
  return play(d, [
    ['old', e0],
    ['old', g],
    ['old', e3],
    ['new', copy(e0, 1)],
    ['new', copy(gap, 1)],
    ['new', copy(e3, 1)],
  ]);
}

test('a running shard that identified again: an event only the new set got does not discard the old fingerprints behind it', () => {
  const d = started();
  d.reidentified.add(1);
  assert.deepEqual(reidentifyWithLag(d), ['e0', 'g', 'e3', 'gap'], 'each once; the missed event at the switch');
  assert.equal(d.unaligned(), 0);
});

test('without the mark, the same overlap delivers e3 twice (what the mark prevents; the stage sets it from the shard state)', () => {
  assert.deepEqual(reidentifyWithLag(started()), ['e0', 'g', 'e3', 'gap', 'e3']);
});

test("a re-identified running shard's keys count as aligned: its missed events cannot be matched, the barrier proves the rest", () => {
  const d = started();
  d.reidentified.add(1);
  d.withhold(ev(1, guild(1), 'missed'));
  d.withhold(ev(0, guild(0), 'waits'));
  assert.equal(d.unaligned(), 1, 'only the key of old shard 0');
});
