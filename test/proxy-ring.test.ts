/**
 * The replay ring keeps a GUILD_CREATE as a reference to the cached guild, not its JSON: a ring of 300 of them stays
 * small, a RESUME across them replays what the cache builds at that moment, and a guild deleted since is skipped (its
 * GUILD_DELETE still replays, the numbering stays one per ring entry). The Redis round trip: test/proxy-redis.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Intents } from '../src/intents.js';
import { dispatch, gid, resume, started } from './helpers/ring.js';

test('ring: 300 GUILD_CREATEs are held as references (a few KB), and a RESUME across them replays what the cache builds now', () => {
  const { cache, st, c, raw, live } = started(300, Intents.Guilds | Intents.GuildMessages);
  assert.equal(live.filter((p) => p.t === 'GUILD_CREATE').length, 300, 'live clients get the upstream GUILD_CREATEs');
  assert.equal(st.ring.size, 300);
  const bytes = st.ring.bytes();
  assert.ok(raw > 300 * 5000, `the raw GUILD_CREATEs are big (${raw} bytes)`);
  assert.ok(bytes < 300 * 64, `the ring holds ${bytes} bytes for 300 GUILD_CREATEs (raw ${raw})`);
  // a change after the start: the replayed GUILD_CREATE already has it, and the change replays on top
  dispatch(st, cache, [c], 'CHANNEL_CREATE', { id: '900', guild_id: gid(7), type: 0, name: 'later', position: 99 });
  const state = c.session!;
  c.ended();
  const got = resume(cache, st, state, 1); // right after READY
  assert.deepEqual(
    got.map((p) => p.t),
    [...Array.from({ length: 300 }, () => 'GUILD_CREATE'), 'CHANNEL_CREATE', 'RESUMED'],
  );
  assert.deepEqual(
    got.map((p) => p.s),
    Array.from({ length: 302 }, (_, i) => i + 2),
  );
  for (let i = 0; i < 300; i++) assert.deepEqual(got[i]!.d, JSON.parse(cache.build(gid(i), { presences: false })!), `guild ${i} as the cache builds it`);
  assert.deepEqual(got[0]!.d.presences, [], 'no presences for a client without GuildPresences');
  assert.ok(
    (got[7]!.d.channels as { name: string }[]).some((ch) => ch.name === 'later'),
    "the guild's current state",
  );
});

test('ring: a guild deleted before the replay is skipped, its GUILD_DELETE replays, and the numbering stays one per entry', () => {
  const { cache, st, c } = started(5, Intents.Guilds | Intents.GuildPresences);
  dispatch(st, cache, [c], 'GUILD_DELETE', { id: gid(2) });
  dispatch(st, cache, [c], 'GUILD_UPDATE', { id: gid(3), name: 'renamed' });
  const state = c.session!;
  c.ended();
  assert.equal(cache.has(gid(2)), false);
  const got = resume(cache, st, state, 1);
  assert.deepEqual(
    got.map((p) => [p.t, p.s, p.d.id]),
    [
      ['GUILD_CREATE', 2, gid(0)],
      ['GUILD_CREATE', 3, gid(1)],
      // seq 4 was guild 2's GUILD_CREATE: gone, skipped
      ['GUILD_CREATE', 5, gid(3)],
      ['GUILD_CREATE', 6, gid(4)],
      ['GUILD_DELETE', 7, gid(2)],
      ['GUILD_UPDATE', 8, gid(3)],
      ['RESUMED', 9, undefined],
    ],
  );
  assert.ok(Array.isArray(got[0]!.d.presences) && (got[0]!.d.presences as unknown[]).length > 0, 'presences for a client with GuildPresences');
  // the session's numbering still maps onto the ring: a second RESUME from seq 5 gets guild 4 onwards
  const again = resume(cache, st, state, 5);
  assert.deepEqual(
    again.map((p) => [p.t, p.s]),
    [
      ['GUILD_CREATE', 6],
      ['GUILD_DELETE', 7],
      ['GUILD_UPDATE', 8],
      ['RESUMED', 9],
    ],
  );
});
