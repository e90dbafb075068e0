/**
 * The cache part of `npm run bench:proxy`: what the proxy's `GuildCache` holds per guild and what a cached dispatch
 * costs, on two kinds of guild:
 * - `fixture`: the simulator's GUILD_CREATE with N members and presences built from one template (repetitive:
 *   flatters compression);
 * - `realistic`: the same guild with members and presences of real entropy (drawn, seeded, like bench/payloads.ts:
 *   distinct names, avatar hashes, join dates, role subsets, nicks; half the presences with activities varied from
 *   the PRESENCE_UPDATE fixture).
 * For each: the raw GUILD_CREATE JSON, the cache's bytes (`cacheBytes`, the metric), the memory it takes (V8 heap +
 * ArrayBuffer bytes, after a forced GC), the same guilds as `JSON.parse` objects; then CPU per cached dispatch over a
 * stream of PRESENCE_UPDATE / GUILD_MEMBER_UPDATE / VOICE_STATE_UPDATE / GUILD_MEMBER_ADD+REMOVE / CHANNEL_UPDATE
 * (payloads parsed beforehand, as the proxy hands them to the cache), the bytes held after it, and the CPU to
 * synthesize one GUILD_CREATE. `--cache-module <file>` measures another implementation of the same interface
 * (e.g. an earlier one: `git show <rev>:src/proxy/cache.ts > src/proxy/cache-old.ts`).
 * @module
 */
import { pathToFileURL } from 'node:url';
import { DISPATCH_FIXTURES } from '../src/simulator/index.js';
import { buildGuildCreate, buildMember, buildPresence, memberUserId } from '../src/simulator/fixtures.js';
import { prng } from './common.js';
import { PayloadWorld } from './payloads.js';

type Obj = Record<string, unknown>;
interface CacheLike {
  apply(type: string, d: unknown, text?: string): boolean;
  build(id: string, o?: { presences?: boolean }): string | null;
  bytes(id?: string): number;
  compact?(): void;
}

const SYL = ['ka', 'lo', 'mi', 'ne', 'su', 'ra', 'to', 'vi', 'an', 'el', 'or', 'ix', 'qu', 'ze', 'ba', 'po', 'di', 'fu', 'yo', 'st', 'th'];
const HEX = '0123456789abcdef';

/** A guild of `n` members: `realistic` gives every member and presence its own values. */
export function benchGuild(i: number, n: number, realistic: boolean): Obj {
  const gid = `${100000000000000000n + BigInt(i) * 4194304n}`;
  const g = buildGuildCreate(gid, i, { memberCount: n, presences: true }) as Obj;
  g.members = Array.from({ length: n }, (_, m) => buildMember(gid, m));
  g.presences = Array.from({ length: n }, (_, m) => buildPresence(gid, m));
  if (realistic) {
    const rnd = prng(i * 7919 + 1);
    const world = new PayloadWorld(prng(i * 104_729 + 3), { users: 500, guilds: 4, words: 400 });
    const roles = (g.roles as Obj[]).map((r) => r.id as string);
    g.members = (g.members as Obj[]).map((m, k) => (k === 0 ? m : realisticMember(rnd, m, roles)));
    g.presences = (g.presences as Obj[]).map((p) => realisticPresence(rnd, world, p));
  }
  return g;
}

const word = (rnd: () => number) => Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => SYL[Math.floor(rnd() * SYL.length)]).join('');
const hex = (rnd: () => number, n: number) => Array.from({ length: n }, () => HEX[Math.floor(rnd() * 16)]).join('');
const iso = (ms: number) => new Date(ms).toISOString().replace('Z', '000+00:00');

function realisticMember(rnd: () => number, m: Obj, roles: string[]): Obj {
  const name = `${word(rnd)}${rnd() < 0.5 ? '' : Math.floor(rnd() * 1000)}`;
  const user = { ...(m.user as Obj) };
  user.username = name.toLowerCase();
  user.global_name = rnd() < 0.7 ? name[0]!.toUpperCase() + name.slice(1) : null;
  user.avatar = rnd() < 0.8 ? (rnd() < 0.1 ? 'a_' : '') + hex(rnd, 32) : null;
  user.public_flags = rnd() < 0.8 ? 0 : 1 << Math.floor(rnd() * 8);
  const at = Date.UTC(2021, 0, 1) + Math.floor(rnd() * 5 * 365 * 86_400_000);
  return {
    ...m,
    user,
    nick: rnd() < 0.2 ? word(rnd) : null,
    roles: roles.slice(1).filter(() => rnd() < 0.15),
    joined_at: iso(at),
    premium_since: rnd() < 0.05 ? iso(at + 86_400_000) : null,
  };
}

const PRESENCE = DISPATCH_FIXTURES.PRESENCE_UPDATE!.d as Obj;

function realisticPresence(rnd: () => number, world: PayloadWorld, p: Obj): Obj {
  const status = ['online', 'online', 'idle', 'dnd'][Math.floor(rnd() * 4)]!;
  const out: Obj = { ...p, status, client_status: { [['desktop', 'mobile', 'web'][Math.floor(rnd() * 3)]!]: status } };
  if (rnd() < 0.5) {
    const v = world.vary(PRESENCE) as Obj;
    out.activities = (v.activities as Obj[]).filter(() => rnd() < 0.6);
  }
  return out;
}

/** The dispatches of the CPU run: `count` changes over `guilds`, busy guilds (the first) drawn more often. */
export function cacheStream(guilds: Obj[], count: number, seed = 11): [string, Obj, string][] {
  const rnd = prng(seed);
  const world = new PayloadWorld(prng(seed + 1), { users: 500, guilds: 4, words: 400 });
  const out: [string, Obj, string][] = [];
  const added = guilds.map(() => 0);
  for (let i = 0; i < count; i++) {
    const gi = Math.floor(guilds.length * rnd() ** 2);
    const g = guilds[gi]!;
    const gid = g.id as string;
    const members = g.members as Obj[];
    const m = 1 + Math.floor((members.length - 1) * rnd() ** 2);
    const r = rnd();
    let e: [string, Obj];
    if (r < 0.6) e = ['PRESENCE_UPDATE', { ...realisticPresence(rnd, world, buildPresence(gid, m) as Obj), guild_id: gid }];
    else if (r < 0.75) e = ['GUILD_MEMBER_UPDATE', { ...members[m]!, guild_id: gid, nick: rnd() < 0.5 ? word(rnd) : null }];
    else if (r < 0.85) {
      const ch = (g.channels as Obj[])[Math.floor(rnd() * (g.channels as Obj[]).length)]!;
      e = [
        'VOICE_STATE_UPDATE',
        {
          guild_id: gid,
          channel_id: rnd() < 0.3 ? null : ch.id,
          user_id: memberUserId(gid, m),
          session_id: hex(rnd, 32),
          deaf: false,
          mute: false,
          self_deaf: false,
          self_mute: rnd() < 0.5,
          self_video: false,
          suppress: false,
          request_to_speak_timestamp: null,
        },
      ];
    } else if (r < 0.9) {
      const k = members.length + added[gi]!++;
      e = ['GUILD_MEMBER_ADD', { ...realisticMember(rnd, buildMember(gid, k) as Obj, []), guild_id: gid }];
    } else if (r < 0.95) e = ['GUILD_MEMBER_REMOVE', { guild_id: gid, user: members[m]!.user as Obj }];
    else {
      const ch = (g.channels as Obj[])[Math.floor(rnd() * (g.channels as Obj[]).length)]!;
      e = ['CHANNEL_UPDATE', { ...ch, guild_id: gid, topic: word(rnd) }];
    }
    out.push([e[0], e[1], JSON.stringify(e[1])]);
  }
  return out;
}

const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** Memory and CPU of `make()`'s cache on `count` guilds of `members` members. */
export function cacheBench(make: () => CacheLike, count: number, members: number, realistic: boolean, dispatches: number): Record<string, number | string> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const mem = () => {
    gc?.();
    gc?.();
    const u = process.memoryUsage();
    return u.heapUsed + u.arrayBuffers;
  };
  const guilds = Array.from({ length: count }, (_, i) => benchGuild(i, members, realistic));
  const texts = guilds.map((g) => JSON.stringify(g));
  const raw = texts.reduce((n, t) => n + Buffer.byteLength(t), 0) / count;
  const mA = mem();
  const parsed = texts.map((t) => JSON.parse(t) as Obj);
  const keep: unknown[][] = [guilds, texts, parsed];
  const m0 = mem();
  const cache = make();
  const t0 = cpu();
  for (let i = 0; i < count; i++) cache.apply('GUILD_CREATE', parsed[i], texts[i]);
  const createUs = (cpu() - t0) / count;
  const m1 = mem();
  const bytes0 = cache.bytes();
  const m2 = mem();
  let stream = cacheStream(guilds, dispatches);
  const t1 = cpu();
  for (const [type, d, text] of stream) cache.apply(type, d, text);
  const applyUs = (cpu() - t1) / stream.length;
  stream = [];
  const bytes1 = cache.bytes();
  const m3 = mem();
  const t2 = cpu();
  let built = 0;
  for (const g of guilds) built += cache.build(g.id as string, { presences: true })!.length;
  const buildUs = (cpu() - t2) / count;
  cache.compact?.();
  const bytes2 = cache.bytes();
  // Everything made before the first measurement stays reachable to the last (else a GC between two
  // measurements frees it and the difference goes negative).
  if (keep.some((x) => x.length !== count) || built === 0 || stream.length !== 0) throw new Error('unreachable');
  const per = (n: number) => Math.round(n / count);
  return {
    guilds: realistic ? 'realistic' : 'fixture',
    rawGuildCreateBytes: Math.round(raw),
    cacheBytesPerGuild: per(bytes0),
    cacheMemoryPerGuild: gc ? per(m1 - m0) : -1,
    parsedObjectsMemoryPerGuild: gc ? per(m0 - mA) : -1,
    createUsPerGuild: +createUs.toFixed(1),
    applyUsPerDispatch: +applyUs.toFixed(2),
    cacheBytesPerGuildAfterStream: per(bytes1),
    cacheMemoryPerGuildAfterStream: gc ? per(m1 - m0 + m3 - m2) : -1,
    buildUsPerGuild: +buildUs.toFixed(1),
    cacheBytesPerGuildCompacted: per(bytes2),
  };
}

/**
 * Run directly, for instruction counts (the difference of two runs under `valgrind --tool=callgrind`, which only
 * differ in `--apply` or `--build`): stores `--guilds` realistic guilds, makes a stream of `--dispatches`, applies
 * it when `--apply 1`, synthesizes every guild when `--build 1`.
 *
 *   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.1 node --import tsx bench/proxy-cache.ts --apply 1
 */
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string, fallback: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? Number(process.argv[i + 1]) : fallback;
  };
  const i = process.argv.indexOf('--cache-module');
  const { GuildCache } = (await import(i >= 0 ? pathToFileURL(process.argv[i + 1]!).href : '../src/proxy/cache.js')) as typeof import('../src/proxy/cache.js');
  const guilds = Array.from({ length: arg('guilds', 100) }, (_, k) => benchGuild(k, arg('members', 250), true));
  const cache = new GuildCache();
  for (const g of guilds) cache.apply('GUILD_CREATE', g, JSON.stringify(g));
  const stream = cacheStream(guilds, arg('dispatches', 20_000));
  if (arg('apply', 0) === 1) for (const [type, d, text] of stream) cache.apply(type, d, text);
  let n = 0;
  if (arg('build', 0) === 1) for (const g of guilds) n += cache.build(g.id as string)!.length;
  console.log(JSON.stringify({ guilds: guilds.length, dispatches: stream.length, bytes: cache.bytes(), built: n }));
}
