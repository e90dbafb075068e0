/**
 * The proxy's guild cache against a reference model: random dispatch sequences applied to a `GuildCache` (tiny
 * limits, so guilds are packed, folded, opened and packed again all the time; and the default limits) and to plain
 * objects give byte-identical GUILD_CREATEs; snapshots restore the same guilds; the bytes held per guild stay under
 * a bound on realistic guilds. On failure fast-check prints the seed and the shrunk sequence.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { asciiJson, GuildCache, type CollectionName } from '../src/proxy/cache.js';
import { buildGuildCreate, buildMember, buildPresence } from '../src/simulator/fixtures.js';

type Obj = Record<string, unknown>;
const NAMES: CollectionName[] = ['channels', 'threads', 'roles', 'emojis', 'stickers', 'members', 'presences', 'voice_states', 'stage_instances', 'guild_scheduled_events', 'soundboard_sounds'];
const KEY: Record<CollectionName, (v: Obj) => unknown> = {
  channels: (v) => v.id,
  threads: (v) => v.id,
  roles: (v) => v.id,
  emojis: (v) => v.id,
  stickers: (v) => v.id,
  members: (v) => (v.user as Obj | undefined)?.id,
  presences: (v) => (v.user as Obj | undefined)?.id,
  voice_states: (v) => v.user_id,
  stage_instances: (v) => v.id,
  guild_scheduled_events: (v) => v.id,
  soundboard_sounds: (v) => v.sound_id,
};
const without = (o: Obj, ...keys: string[]): Obj => Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)));

/** The reference: each guild as plain objects, collections as arrays (in place on update, appended when new). */
class Model {
  guilds = new Map<string, { base: Obj; mc: number | null; coll: Record<string, Obj[]> }>();

  set(gid: string | null, name: CollectionName, v: Obj): void {
    const g = gid === null ? undefined : this.guilds.get(gid);
    if (g === undefined || typeof KEY[name](v) !== 'string') return;
    const list = (g.coll[name] ??= []);
    const i = list.findIndex((x) => KEY[name](x) === KEY[name](v));
    if (i >= 0) list[i] = v;
    else list.push(v);
  }

  merge(gid: string | null, name: CollectionName, v: Obj): void {
    const list = gid === null ? undefined : this.guilds.get(gid)?.coll[name];
    const old = list?.find((x) => KEY[name](x) === KEY[name](v));
    this.set(gid, name, old === undefined ? v : { ...old, ...v });
  }

  del(gid: string | null, name: CollectionName, id: unknown): void {
    const list = gid === null ? undefined : this.guilds.get(gid)?.coll[name];
    const i = list?.findIndex((x) => KEY[name](x) === id) ?? -1;
    if (i >= 0) list!.splice(i, 1);
  }

  replace(gid: string | null, name: CollectionName, list: Obj[]): void {
    const g = gid === null ? undefined : this.guilds.get(gid);
    if (g === undefined) return;
    g.coll[name] = [];
    for (const v of list) this.set(gid, name, v);
  }

  count(gid: string | null, n: number): void {
    const g = gid === null ? undefined : this.guilds.get(gid);
    if (g !== undefined && g.mc !== null) g.mc = Math.max(0, g.mc + n);
  }

  apply(type: string, d: Obj): void {
    const gid = typeof d.guild_id === 'string' ? d.guild_id : null;
    const userId = (d.user as Obj | undefined)?.id;
    switch (type) {
      case 'GUILD_CREATE': {
        const g = { base: without(d, 'member_count', ...NAMES), mc: typeof d.member_count === 'number' ? d.member_count : null, coll: {} };
        this.guilds.set(d.id as string, g);
        for (const name of NAMES) this.replace(d.id as string, name, (d[name] as Obj[] | undefined) ?? []);
        return;
      }
      case 'GUILD_UPDATE': {
        const g = this.guilds.get(d.id as string);
        if (g === undefined) return;
        for (const name of ['roles', 'emojis', 'stickers'] as const) if (Array.isArray(d[name])) this.replace(d.id as string, name, d[name] as Obj[]);
        g.base = { ...g.base, ...without(d, 'member_count', 'guild_id', ...NAMES) };
        return;
      }
      case 'GUILD_DELETE':
        if (d.unavailable !== true) this.guilds.delete(d.id as string);
        return;
      case 'GUILD_ROLE_UPDATE':
        return this.set(gid, 'roles', d.role as Obj);
      case 'GUILD_ROLE_DELETE':
        return this.del(gid, 'roles', d.role_id);
      case 'CHANNEL_UPDATE':
        return this.set(gid, 'channels', d);
      case 'CHANNEL_DELETE':
        return this.del(gid, 'channels', d.id);
      case 'THREAD_UPDATE':
        if ((d.thread_metadata as Obj).archived === true) return this.del(gid, 'threads', d.id);
        return this.set(gid, 'threads', without(d, 'newly_created'));
      case 'THREAD_LIST_SYNC':
        for (const t of d.threads as Obj[]) this.set(gid, 'threads', t);
        return;
      case 'GUILD_EMOJIS_UPDATE':
        return this.replace(gid, 'emojis', d.emojis as Obj[]);
      case 'GUILD_MEMBER_ADD':
        this.set(gid, 'members', without(d, 'guild_id'));
        return this.count(gid, 1);
      case 'GUILD_MEMBER_UPDATE':
        return this.merge(gid, 'members', without(d, 'guild_id'));
      case 'GUILD_MEMBER_REMOVE':
        this.del(gid, 'members', userId);
        this.del(gid, 'presences', userId);
        return this.count(gid, -1);
      case 'GUILD_MEMBERS_CHUNK':
        for (const m of d.members as Obj[]) this.set(gid, 'members', m);
        for (const p of d.presences as Obj[]) this.set(gid, 'presences', p);
        return;
      case 'PRESENCE_UPDATE':
        if (d.status === 'offline') return this.del(gid, 'presences', userId);
        return this.set(gid, 'presences', without(d, 'guild_id'));
      case 'VOICE_STATE_UPDATE':
        if (d.channel_id === null) return this.del(gid, 'voice_states', d.user_id);
        return this.set(gid, 'voice_states', without(d, 'member'));
      case 'STAGE_INSTANCE_UPDATE':
        return this.set(gid, 'stage_instances', d);
      case 'STAGE_INSTANCE_DELETE':
        return this.del(gid, 'stage_instances', d.id);
    }
    throw new Error(`model: ${type}`);
  }

  build(id: string, presences: boolean): string | null {
    const g = this.guilds.get(id);
    if (g === undefined) return null;
    const out: Obj = { ...g.base };
    if (g.mc !== null) out.member_count = g.mc;
    for (const name of NAMES) out[name] = name === 'presences' && !presences ? [] : (g.coll[name] ?? []);
    return asciiJson(JSON.stringify(out));
  }
}

// ---- random dispatches over a small world (2 guilds, 6 users, 4 channels, 3 roles) -----------------------------

const GUILDS = ['100000000000000001', '100000000000000002'];
const id = (prefix: string, n: number) => fc.integer({ min: 1, max: n }).map((i) => `${prefix}${i}`);
const text = fc.string({ unit: 'binary', maxLength: 8 });
const gid = fc.constantFrom(...GUILDS);
const user = id('2000000000000000', 6);
const channel = id('3000000000000000', 4);
const role = id('4000000000000000', 3);
const member = fc.record({ user: fc.record({ id: user, username: text }), nick: fc.option(text), roles: fc.array(role, { maxLength: 2 }), joined_at: fc.constant('2024-01-01T00:00:00.000000+00:00') });
const presence = fc.record({ user: fc.record({ id: user }), status: fc.constantFrom('online', 'idle', 'dnd'), activities: fc.array(fc.record({ name: text, type: fc.nat(5) }), { maxLength: 2 }) });
const roleObj = fc.record({ id: role, name: text, color: fc.nat(0xffffff) });
const emoji = fc.record({ id: id('5000000000000000', 3), name: text });
const threadObj = fc.record({ id: id('6000000000000000', 3), name: text, thread_metadata: fc.record({ archived: fc.boolean() }) });

const dispatch = fc.oneof(
  fc
    .record({
      id: gid,
      name: text,
      member_count: fc.option(fc.nat(50), { nil: undefined }),
      roles: fc.array(roleObj, { maxLength: 3 }),
      channels: fc.array(fc.record({ id: channel, type: fc.nat(15), name: text }), { maxLength: 3 }),
      members: fc.array(member, { maxLength: 4 }),
      presences: fc.array(presence, { maxLength: 4 }),
    })
    .map((d) => ['GUILD_CREATE', d as Obj]),
  fc.record({ id: gid, name: text, description: fc.option(text), emojis: fc.option(fc.array(emoji, { maxLength: 2 }), { nil: undefined }) }).map((d) => ['GUILD_UPDATE', d as Obj]),
  fc.record({ id: gid, unavailable: fc.boolean() }).map((d) => ['GUILD_DELETE', d]),
  fc.record({ guild_id: gid, role: roleObj }).map((d) => ['GUILD_ROLE_UPDATE', d]),
  fc.record({ guild_id: gid, role_id: role }).map((d) => ['GUILD_ROLE_DELETE', d]),
  fc.record({ guild_id: gid, id: channel, type: fc.nat(15), name: text, topic: fc.option(text) }).map((d) => ['CHANNEL_UPDATE', d]),
  fc.record({ guild_id: gid, id: channel }).map((d) => ['CHANNEL_DELETE', d]),
  fc.tuple(gid, threadObj).map(([g, t]) => ['THREAD_UPDATE', { ...t, guild_id: g, newly_created: true }]),
  fc.record({ guild_id: gid, threads: fc.array(threadObj, { maxLength: 2 }) }).map((d) => ['THREAD_LIST_SYNC', d]),
  fc.record({ guild_id: gid, emojis: fc.array(emoji, { maxLength: 3 }) }).map((d) => ['GUILD_EMOJIS_UPDATE', d]),
  fc.tuple(gid, member).map(([g, m]) => ['GUILD_MEMBER_ADD', { guild_id: g, ...m }]),
  fc.record({ guild_id: gid, user: fc.record({ id: user, username: text }), nick: fc.option(text), avatar: fc.option(text, { nil: undefined }) }).map((d) => ['GUILD_MEMBER_UPDATE', d as Obj]),
  fc.record({ guild_id: gid, user: fc.record({ id: user }) }).map((d) => ['GUILD_MEMBER_REMOVE', d]),
  fc.record({ guild_id: gid, members: fc.array(member, { maxLength: 4 }), presences: fc.array(presence, { maxLength: 4 }) }).map((d) => ['GUILD_MEMBERS_CHUNK', d]),
  fc.tuple(gid, presence, fc.boolean()).map(([g, p, off]) => ['PRESENCE_UPDATE', { ...p, guild_id: g, ...(off ? { status: 'offline' } : {}) }]),
  fc.record({ guild_id: gid, user_id: user, channel_id: fc.option(channel), session_id: text, member: fc.constant({}) }).map((d) => ['VOICE_STATE_UPDATE', d]),
  fc.record({ guild_id: gid, id: id('7000000000000000', 2), topic: text }).map((d) => ['STAGE_INSTANCE_UPDATE', d]),
  fc.record({ guild_id: gid, id: id('7000000000000000', 2) }).map((d) => ['STAGE_INSTANCE_DELETE', d]),
) as fc.Arbitrary<[string, Obj]>;

const tiny = () => new GuildCache({ maxOpen: 1, idleDispatches: 6, minPendingBytes: 300 });

test('GuildCache equals the reference model through random dispatches on packed, folded and opened guilds', () => {
  fc.assert(
    fc.property(fc.array(dispatch, { minLength: 1, maxLength: 80 }), fc.array(fc.boolean(), { maxLength: 80 }), (events, passText) => {
      const model = new Model();
      const caches = [tiny(), new GuildCache()];
      events.forEach(([type, d], i) => {
        model.apply(type, structuredClone(d));
        for (const c of caches) c.apply(type, structuredClone(d), passText[i] && type === 'CHANNEL_UPDATE' ? JSON.stringify(d) : undefined);
        for (const g of GUILDS)
          for (const c of caches) {
            assert.equal(c.has(g), model.guilds.has(g));
            assert.equal(c.build(g), model.build(g, true), `after ${i + 1} dispatches (${type})`);
            assert.equal(c.build(g, { presences: false }), model.build(g, false));
          }
      });
      const copy = tiny();
      for (const [g, snap] of Object.entries(caches[0]!.snapshot())) copy.restore(g, JSON.parse(JSON.stringify(snap)));
      for (const g of GUILDS) assert.equal(copy.build(g), model.build(g, true), 'a snapshot restores the same guild');
      caches[0]!.compact();
      assert.equal(caches[0]!.openCount, 0);
      for (const g of GUILDS) assert.equal(caches[0]!.build(g), model.build(g, true), 'compact() changes nothing');
    }),
    { numRuns: 150 },
  );
});

test('GuildCache: a busy guild is opened, packed again when idle, and at most maxOpen guilds are open', () => {
  const cache = new GuildCache({ maxOpen: 2, idleDispatches: 50, minPendingBytes: 1000 });
  const ids = ['1', '2', '3'].map((n) => `10000000000000000${n}`);
  for (const g of ids) cache.apply('GUILD_CREATE', { id: g, name: 'g', members: [] });
  assert.equal(cache.openCount, 0, 'held packed from GUILD_CREATE on');
  const add = (g: string, n: number) => cache.apply('GUILD_MEMBER_ADD', { guild_id: g, user: { id: `2${String(n).padStart(17, '0')}`, username: 'x'.repeat(100) }, roles: [] });
  for (let n = 0; n < 40; n++) for (const g of ids) add(g, n);
  assert.equal(cache.openCount, 2, 'the busy guilds opened, no more than maxOpen');
  const open = cache.bytes();
  // Dispatches for another guild: the cache's clock moves on, the open guilds go idle.
  for (let n = 0; n < 60; n++) cache.apply('GUILD_ROLE_DELETE', { guild_id: '9', role_id: '1' });
  assert.equal(cache.openCount, 0, 'the guilds that went idle are packed again');
  assert.ok(cache.bytes() < open / 2, `${cache.bytes()} < ${open} / 2`);
  for (const g of ids) assert.equal((JSON.parse(cache.build(g)!) as { members: unknown[] }).members.length, 40);
});

/** A guild as in bench/proxy.ts: the simulator's fixture with `n` members and presences listed. */
function fixtureGuild(i: number, n: number): Obj {
  const gid = `${100000000000000000n + BigInt(i) * 4194304n}`;
  const g = buildGuildCreate(gid, i, { memberCount: n, presences: true }) as Obj;
  g.members = Array.from({ length: n }, (_, m) => buildMember(gid, m));
  g.presences = Array.from({ length: n }, (_, m) => buildPresence(gid, m));
  return g;
}

test('GuildCache: bytes held per guild stay under 0.35x the raw GUILD_CREATE, and again once busy guilds go idle', () => {
  const cache = new GuildCache({ idleDispatches: 2000 });
  const guilds = Array.from({ length: 4 }, (_, i) => fixtureGuild(i, 250));
  const raw = guilds.reduce((n, g) => n + Buffer.byteLength(JSON.stringify(g)), 0);
  for (const g of guilds) cache.apply('GUILD_CREATE', g, JSON.stringify(g));
  for (const g of guilds) {
    const one = Buffer.byteLength(JSON.stringify(g));
    assert.ok(cache.bytes(g.id as string) < one * 0.35, `${cache.bytes(g.id as string)} B held for ${one} B raw`);
  }
  // Every member of every guild changes its presence and nick: the logs fold, then the guilds open (busy).
  for (let m = 1; m < 250; m++)
    for (const g of guilds) {
      const gid = g.id as string;
      cache.apply('PRESENCE_UPDATE', { ...(buildPresence(gid, m) as Obj), guild_id: gid, activities: [{ name: `game ${m}`, type: 0 }] });
      cache.apply('GUILD_MEMBER_UPDATE', { ...(buildMember(gid, m) as Obj), guild_id: gid, nick: `n${m}` });
    }
  assert.equal(cache.openCount, 4, 'busy guilds are open');
  // Traffic of other guilds: the four go idle and are packed again.
  for (let n = 0; n < 2010; n++) cache.apply('GUILD_ROLE_DELETE', { guild_id: '9', role_id: '1' });
  assert.equal(cache.openCount, 0);
  assert.ok(cache.bytes() < raw * 0.35, `${cache.bytes()} B held for ${raw} B raw`);
  const back = JSON.parse(cache.build(guilds[1]!.id as string)!) as { members: { nick: string }[]; presences: { activities: { name: string }[] }[] };
  assert.equal(back.members[7]!.nick, 'n7');
  assert.equal(back.presences[7]!.activities[0]!.name, 'game 7');
});
