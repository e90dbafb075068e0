/**
 * Dispatch payloads with the entropy of real gateway traffic, for the benchmarks (`npm run bench`,
 * `bench:workers`, `decode.bench.ts`).
 *
 * The fixtures in `example-payloads.json` are one hand-built payload per dispatch type. Replayed as they are,
 * a stream repeats the same few kilobytes and zlib-stream compresses it ~27x, which flatters everything that
 * depends on inflate. Real traffic varies in every id, timestamp, name and text, and compresses ~6–7x. So every
 * dispatch here is its fixture's structure with fresh values drawn, seeded and deterministic, from a small
 * world: guilds with their channels and roles, a user population whose activity is skewed (a few users are in
 * many events, as in a real guild), a clock that moves forward, and message text from a vocabulary of
 * generated words. Snowflakes follow Discord's layout (ms since 2015 << 22 | worker | process | increment).
 *
 * @module
 */

/** A seeded random source in [0, 1). */
export type Random = () => number;

const DISCORD_EPOCH = 1_420_070_400_000n;
const HEX = '0123456789abcdef';
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'su', 'ra', 'to', 'vi', 'an', 'el', 'or', 'ix', 'qu', 'ze', 'ba', 'po', 'di', 'fu', 'gh', 'yo', 'st', 'th', 'er', 'in', 'ch', 'sh', 'ou', 'ea'];
/** Size of each pool of shared values (statuses, song titles, hashes, track ids, images). */
const POOL = 200;
/** Chance that a pooled value is a new one while its pool is not full. */
const NEW = 0.3;
/**
 * Skew of user activity: the user of an event is `users[floor(n × r^SKEW)]`, so the most active 1 % of users are
 * in ~60 % of the events, as a busy guild's regulars are in a 32 KiB inflate window's worth of traffic. Tuned,
 * with the rest of this model, so that both mixes compress 6.2x with zlib-stream (Discord's traffic: 6–7x).
 */
const SKEW = 10;
const EMOJI = ['😀', '😂', '🔥', '👍', '🎉', '❤️', '🙏', '😭', '✨', '🍜', '🎮', '🐈'];

interface User {
  id: string;
  username: string;
  global_name: string | null;
  avatar: string | null;
  public_flags: number;
  memo?: Map<string, unknown>;
}

interface Ctx {
  guild: Guild;
  channel: string;
  /** The user the event is about. */
  actor: User;
  /** Users placed in the event so far. */
  users: number;
}

const iso = (ms: number): string => new Date(ms).toISOString().replace('Z', '000+00:00');

interface Guild {
  id: string;
  channels: string[];
  roles: string[];
}

/** The world one stream is drawn from. */
export class PayloadWorld {
  private readonly rnd: Random;
  private readonly users: User[] = [];
  private readonly guilds: Guild[] = [];
  private readonly words: string[] = [];
  /** Values many events share (session hashes, tracks, images), made on first use up to a pool size. */
  private readonly hashes: string[] = [];
  private readonly tracks: string[] = [];
  private readonly images: string[] = [];
  private readonly textPools = new Map<string, string[]>();
  /** Virtual ms (the stream's clock). */
  private now = Date.UTC(2026, 9, 15, 12, 0, 0);
  private inc = 0;

  constructor(rnd: Random, opts: { users?: number; guilds?: number; words?: number } = {}) {
    this.rnd = rnd;
    const created = this.now - 5 * 365 * 86_400_000;
    for (let i = 0; i < (opts.words ?? 1000); i++) this.words.push(this.word(1 + Math.floor(rnd() * 3)));
    for (let i = 0; i < (opts.users ?? 5000); i++) {
      const name = `${this.words[Math.floor(rnd() * this.words.length)]}${rnd() < 0.5 ? '' : String(Math.floor(rnd() * 1000))}`;
      this.users.push({
        id: this.snowflakeAt(created + Math.floor(rnd() * 4 * 365 * 86_400_000)),
        username: name.toLowerCase(),
        global_name: rnd() < 0.7 ? name[0]!.toUpperCase() + name.slice(1) : null,
        avatar: rnd() < 0.8 ? (rnd() < 0.1 ? 'a_' : '') + this.hex(32) : null,
        public_flags: rnd() < 0.8 ? 0 : 1 << Math.floor(rnd() * 8),
      });
    }
    for (let i = 0; i < (opts.guilds ?? 300); i++) {
      const at = created + Math.floor(rnd() * 3 * 365 * 86_400_000);
      const g: Guild = { id: this.snowflakeAt(at), channels: [], roles: [] };
      g.roles.push(g.id);
      for (let c = 0; c < 5 + Math.floor(rnd() * 40); c++) g.channels.push(this.snowflakeAt(at + c * 1000 + Math.floor(rnd() * 1e9)));
      for (let r = 0; r < 3 + Math.floor(rnd() * 25); r++) g.roles.push(this.snowflakeAt(at + r * 1000 + Math.floor(rnd() * 1e9)));
      this.guilds.push(g);
    }
  }

  /**
   * One dispatch's `d`: `template` (a fixture's `d`) with every id, timestamp, name, hash and text drawn anew.
   * The clock moves forward a few ms per call.
   */
  vary(template: unknown): unknown {
    this.now += 1 + Math.floor(this.rnd() * 8);
    // Activity is skewed: guild and user indices are drawn towards the front of their lists.
    const guild = this.guilds[Math.floor(this.guilds.length * this.rnd() ** 2)]!;
    return this.walk(template, '', { guild, channel: this.pick(guild.channels), actor: this.pickUser(), users: 0 });
  }

  private walk(v: unknown, key: string, ctx: Ctx): unknown {
    if (Array.isArray(v)) {
      // A member's roles, like their join date, nick and presence, belong to the member: drawn once per user.
      if (key === 'roles') return this.memo(ctx, key, () => ctx.guild.roles.filter(() => this.rnd() < 0.15).slice(0, 6));
      if (v.length > 0 && typeof v[0] === 'string' && /^\d{17,20}$/.test(v[0])) return v.map(() => this.snowflake());
      return v.map((x) => this.walk(x, key, ctx));
    }
    if (v !== null && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (typeof o.username === 'string') return this.user(o, this.nextUser(ctx));
      if ((key === 'user' || key === 'author') && typeof o.id === 'string') return { ...o, id: this.nextUser(ctx).id };
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(o)) out[k] = this.walk(x, k, ctx);
      return out;
    }
    if (typeof v === 'string') return this.string(v, key, ctx);
    // ms timestamps (activity start, created_at): an activity keeps its times while it lasts.
    if (typeof v === 'number' && v > 1_000_000_000_000 && v < 4_000_000_000_000) return this.memo(ctx, key, () => this.now - Math.floor(this.rnd() * 600_000));
    return v;
  }

  private string(v: string, key: string, ctx: Ctx): string {
    if (/^\d{17,20}$/.test(v)) {
      if (key === 'guild_id') return ctx.guild.id;
      if (key === 'channel_id' || key === 'parent_id') return ctx.channel;
      if (key === 'user_id' || key === 'application_id') return this.nextUser(ctx).id;
      return this.snowflake();
    }
    if (/^\d{4}-\d\d-\d\dT/.test(v)) {
      if (key === 'timestamp' || key === 'edited_timestamp') return iso(this.now);
      return this.memo(ctx, key, () => iso(this.now - Math.floor(this.rnd() * 4e10)));
    }
    if (/^(a_)?[0-9a-f]{32}$/.test(v)) return this.memo(ctx, key, () => (v.startsWith('a_') ? 'a_' : '') + this.pooled(this.hashes, () => this.hex(32)));
    // Message text is new every time; statuses, song titles, nicknames recur (pooled per field).
    if (key === 'content' || key === 'value' || key === 'description') return this.text(v.length);
    if (key === 'state' || key === 'details' || key === 'large_text' || key === 'nick') return this.memo(ctx, key, () => this.pooled(this.texts(key), () => this.text(v.length)));
    if (key === 'sync_id') return this.memo(ctx, key, () => this.pooled(this.tracks, () => this.alnum(v.length)));
    if (key === 'token') return this.alnum(v.length);
    if (key === 'large_image' || key === 'small_image') return this.memo(ctx, key, () => v.replace(/[0-9a-f]{16,}$/, () => this.pooled(this.images, () => this.hex(40))));
    return v;
  }

  /** The first user of an event is its actor; later ones (mentions, ...) are drawn. */
  private nextUser(ctx: Ctx): User {
    return ctx.users++ === 0 ? ctx.actor : this.pickUser();
  }

  /** A per-user value: drawn the first time, the same afterwards (with a small chance of a change). */
  private memo<T>(ctx: Ctx, key: string, make: () => T): T {
    const m = (ctx.actor.memo ??= new Map());
    if (!m.has(key) || this.rnd() < 0.05) m.set(key, make());
    return m.get(key) as T;
  }

  private user(template: Record<string, unknown>, u: User): Record<string, unknown> {
    return { ...template, id: u.id, username: u.username, global_name: u.global_name, avatar: u.avatar, public_flags: u.public_flags };
  }

  private pickUser(): User {
    return this.users[Math.floor(this.users.length * this.rnd() ** SKEW)]!;
  }

  private texts(key: string): string[] {
    let pool = this.textPools.get(key);
    if (!pool) this.textPools.set(key, (pool = []));
    return pool;
  }

  /** A value from `pool` (skewed to its front), or a new one while the pool is not full. */
  private pooled(pool: string[], make: () => string): string {
    if (pool.length < POOL && this.rnd() < NEW) {
      pool.push(make());
      return pool[pool.length - 1]!;
    }
    return pool.length === 0 ? make() : pool[Math.floor(pool.length * this.rnd() ** 2)]!;
  }

  private pick<T>(xs: T[]): T {
    return xs[Math.floor(this.rnd() * xs.length)]!;
  }

  /** Text about `len` characters long (at least a few words) from the vocabulary, with the odd mention or emoji. */
  private text(len: number): string {
    const target = Math.max(8, Math.floor(len * (0.5 + this.rnd())));
    const parts: string[] = [];
    let n = 0;
    while (n < target) {
      const r = this.rnd();
      const w = r < 0.03 ? `<@${this.pickUser().id}>` : r < 0.06 ? this.pick(EMOJI) : this.words[Math.floor(this.words.length * this.rnd() ** 2)]!;
      parts.push(w);
      n += w.length + 1;
    }
    return parts.join(' ');
  }

  private word(syllables: number): string {
    let w = '';
    for (let i = 0; i < syllables; i++) w += this.pick(SYLLABLES);
    return w;
  }

  private hex(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += HEX[Math.floor(this.rnd() * 16)];
    return s;
  }

  private alnum(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += ALNUM[Math.floor(this.rnd() * ALNUM.length)];
    return s;
  }

  /** A new snowflake at the stream's clock. */
  private snowflake(): string {
    return this.snowflakeAt(this.now);
  }

  private snowflakeAt(ms: number): string {
    this.inc = (this.inc + 1) & 0xfff;
    // Few workers and processes mint most ids (the increment is what varies).
    const worker = BigInt(Math.floor(this.rnd() ** 2 * 4));
    const proc = BigInt(Math.floor(this.rnd() ** 2 * 2));
    return String(((BigInt(ms) - DISCORD_EPOCH) << 22n) | (worker << 17n) | (proc << 12n) | BigInt(this.inc));
  }
}
