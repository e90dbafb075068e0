/**
 * {@link GuildCache}: what a synthesized GUILD_CREATE needs, kept current from the dispatches, held compactly as
 * JSON text (one string per guild's own fields and one per channel, role, member, ...: V8 keeps ASCII text at one
 * byte per character, where the same data as objects costs several times more).
 * @packageDocumentation
 */

/** The collections of a GUILD_CREATE the cache keeps, with the field that keys each entry. */
const COLLECTIONS = {
  channels: 'id',
  threads: 'id',
  roles: 'id',
  emojis: 'id',
  stickers: 'id',
  members: 'user.id',
  presences: 'user.id',
  voice_states: 'user_id',
  stage_instances: 'id',
  guild_scheduled_events: 'id',
  soundboard_sounds: 'sound_id',
} as const;

/** Name of a cached GUILD_CREATE collection. */
export type CollectionName = keyof typeof COLLECTIONS;
const NAMES = Object.keys(COLLECTIONS) as CollectionName[];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

interface GuildEntry {
  /** The guild's own fields as JSON text (no collections, no `member_count`). */
  base: string;
  memberCount: number | null;
  coll: Partial<Record<CollectionName, Map<string, string>>>;
}

/** A guild in a cache snapshot (for persistence). */
export interface CachedGuildSnapshot {
  base: string;
  memberCount: number | null;
  coll: Partial<Record<CollectionName, [string, string][]>>;
}

/** Dispatch types that change the cache (the proxy parses these; every other dispatch passes through unparsed). */
export const CACHE_EVENTS: ReadonlySet<string> = new Set([
  'GUILD_CREATE',
  'GUILD_UPDATE',
  'GUILD_DELETE',
  'GUILD_ROLE_CREATE',
  'GUILD_ROLE_UPDATE',
  'GUILD_ROLE_DELETE',
  'CHANNEL_CREATE',
  'CHANNEL_UPDATE',
  'CHANNEL_DELETE',
  'THREAD_CREATE',
  'THREAD_UPDATE',
  'THREAD_DELETE',
  'THREAD_LIST_SYNC',
  'GUILD_EMOJIS_UPDATE',
  'GUILD_STICKERS_UPDATE',
  'GUILD_MEMBER_ADD',
  'GUILD_MEMBER_UPDATE',
  'GUILD_MEMBER_REMOVE',
  'GUILD_MEMBERS_CHUNK',
  'PRESENCE_UPDATE',
  'VOICE_STATE_UPDATE',
  'STAGE_INSTANCE_CREATE',
  'STAGE_INSTANCE_UPDATE',
  'STAGE_INSTANCE_DELETE',
  'GUILD_SCHEDULED_EVENT_CREATE',
  'GUILD_SCHEDULED_EVENT_UPDATE',
  'GUILD_SCHEDULED_EVENT_DELETE',
  'GUILD_SOUNDBOARD_SOUND_CREATE',
  'GUILD_SOUNDBOARD_SOUND_UPDATE',
  'GUILD_SOUNDBOARD_SOUND_DELETE',
]);

function keyOf(name: CollectionName, v: unknown): string | null {
  if (!isObj(v)) return null;
  const path = COLLECTIONS[name];
  const k = path === 'user.id' ? (isObj(v.user) ? v.user.id : undefined) : v[path];
  return typeof k === 'string' ? k : null;
}

const NON_ASCII = /[\u0080-\uffff]/g;

/**
 * JSON text with every non-ASCII character written as a `\uXXXX` escape: the same JSON value, but V8 keeps a
 * string with any non-ASCII character at two bytes per character, so this halves what most entries take.
 */
export function asciiJson(text: string): string {
  NON_ASCII.lastIndex = 0;
  if (!NON_ASCII.test(text)) return text;
  NON_ASCII.lastIndex = 0;
  return text.replace(NON_ASCII, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const stringify = (v: unknown): string => asciiJson(JSON.stringify(v));

function without(o: Obj, ...keys: string[]): Obj {
  const out: Obj = {};
  for (const k of Object.keys(o)) if (!keys.includes(k)) out[k] = o[k];
  return out;
}

/**
 * The guilds of a bot as Discord sends them in GUILD_CREATE (the guild, channels, threads, roles, emojis,
 * stickers, members and presences as received, voice states, stage instances, scheduled events, soundboard
 * sounds), kept current from the dispatches that change them, and rebuilt as GUILD_CREATE JSON text on demand.
 *
 * @example
 * ```ts
 * const cache = new GuildCache();
 * cache.apply('GUILD_CREATE', guild);
 * cache.apply('CHANNEL_CREATE', channel);
 * const text = cache.build(guild.id, { presences: true }); // the GUILD_CREATE `d`, as JSON text
 * ```
 */
export class GuildCache {
  private readonly guilds = new Map<string, GuildEntry>();
  /** Guilds Discord reported unavailable (GUILD_DELETE with `unavailable: true`). */
  private readonly unavailable = new Set<string>();

  /** Guilds held. */
  get size(): number {
    return this.guilds.size;
  }

  has(guildId: string): boolean {
    return this.guilds.has(guildId);
  }

  isUnavailable(guildId: string): boolean {
    return this.unavailable.has(guildId);
  }

  /** Ids of the guilds held. */
  ids(): IterableIterator<string> {
    return this.guilds.keys();
  }

  /**
   * Apply one dispatch (its parsed `d`; `text` is the same `d` as JSON text when the caller has it, stored as-is
   * for single-entity events). Returns false for types the cache does not track.
   */
  apply(type: string, d: unknown, text?: string): boolean {
    if (!CACHE_EVENTS.has(type) || !isObj(d)) return false;
    const gid = typeof d.guild_id === 'string' ? d.guild_id : null;
    switch (type) {
      case 'GUILD_CREATE':
        this.create(d);
        return true;
      case 'GUILD_UPDATE':
        this.update(d);
        return true;
      case 'GUILD_DELETE':
        if (typeof d.id !== 'string') return true;
        if (d.unavailable === true) this.unavailable.add(d.id);
        else {
          this.guilds.delete(d.id);
          this.unavailable.delete(d.id);
        }
        return true;
      case 'GUILD_ROLE_CREATE':
      case 'GUILD_ROLE_UPDATE':
        if (gid !== null && isObj(d.role)) this.set(gid, 'roles', d.role);
        return true;
      case 'GUILD_ROLE_DELETE':
        if (gid !== null && typeof d.role_id === 'string') this.del(gid, 'roles', d.role_id);
        return true;
      case 'CHANNEL_CREATE':
      case 'CHANNEL_UPDATE':
        if (gid !== null) this.set(gid, 'channels', d, text);
        return true;
      case 'CHANNEL_DELETE':
        if (gid !== null && typeof d.id === 'string') this.del(gid, 'channels', d.id);
        return true;
      case 'THREAD_CREATE':
      case 'THREAD_UPDATE':
        if (gid === null) return true;
        if (isObj(d.thread_metadata) && d.thread_metadata.archived === true && typeof d.id === 'string') this.del(gid, 'threads', d.id);
        else this.set(gid, 'threads', without(d, 'newly_created'));
        return true;
      case 'THREAD_DELETE':
        if (gid !== null && typeof d.id === 'string') this.del(gid, 'threads', d.id);
        return true;
      case 'THREAD_LIST_SYNC':
        if (gid !== null && Array.isArray(d.threads)) for (const t of d.threads) this.set(gid, 'threads', t);
        return true;
      case 'GUILD_EMOJIS_UPDATE':
        if (gid !== null && Array.isArray(d.emojis)) this.replace(gid, 'emojis', d.emojis);
        return true;
      case 'GUILD_STICKERS_UPDATE':
        if (gid !== null && Array.isArray(d.stickers)) this.replace(gid, 'stickers', d.stickers);
        return true;
      case 'GUILD_MEMBER_ADD':
        if (gid === null) return true;
        this.set(gid, 'members', without(d, 'guild_id'));
        this.count(gid, 1);
        return true;
      case 'GUILD_MEMBER_UPDATE':
        if (gid !== null) this.merge(gid, 'members', without(d, 'guild_id'));
        return true;
      case 'GUILD_MEMBER_REMOVE':
        if (gid === null || !isObj(d.user) || typeof d.user.id !== 'string') return true;
        this.del(gid, 'members', d.user.id);
        this.del(gid, 'presences', d.user.id);
        this.count(gid, -1);
        return true;
      case 'GUILD_MEMBERS_CHUNK':
        if (gid === null) return true;
        if (Array.isArray(d.members)) for (const m of d.members) this.set(gid, 'members', m);
        if (Array.isArray(d.presences)) for (const p of d.presences) this.set(gid, 'presences', p);
        return true;
      case 'PRESENCE_UPDATE': {
        if (gid === null || !isObj(d.user) || typeof d.user.id !== 'string') return true;
        if (d.status === 'offline') this.del(gid, 'presences', d.user.id);
        else this.set(gid, 'presences', without(d, 'guild_id'));
        return true;
      }
      case 'VOICE_STATE_UPDATE':
        if (gid === null || typeof d.user_id !== 'string') return true;
        if (d.channel_id === null) this.del(gid, 'voice_states', d.user_id);
        else this.set(gid, 'voice_states', without(d, 'member'));
        return true;
      case 'STAGE_INSTANCE_CREATE':
      case 'STAGE_INSTANCE_UPDATE':
        if (gid !== null) this.set(gid, 'stage_instances', d, text);
        return true;
      case 'STAGE_INSTANCE_DELETE':
        if (gid !== null && typeof d.id === 'string') this.del(gid, 'stage_instances', d.id);
        return true;
      case 'GUILD_SCHEDULED_EVENT_CREATE':
      case 'GUILD_SCHEDULED_EVENT_UPDATE':
        if (gid !== null) this.set(gid, 'guild_scheduled_events', d, text);
        return true;
      case 'GUILD_SCHEDULED_EVENT_DELETE':
        if (gid !== null && typeof d.id === 'string') this.del(gid, 'guild_scheduled_events', d.id);
        return true;
      case 'GUILD_SOUNDBOARD_SOUND_CREATE':
      case 'GUILD_SOUNDBOARD_SOUND_UPDATE':
        if (gid !== null) this.set(gid, 'soundboard_sounds', d, text);
        return true;
      case 'GUILD_SOUNDBOARD_SOUND_DELETE':
        if (gid !== null && typeof d.sound_id === 'string') this.del(gid, 'soundboard_sounds', d.sound_id);
        return true;
    }
    return false;
  }

  /**
   * The GUILD_CREATE `d` of a guild as JSON text, or null when the guild is not held. Without `presences` the
   * presences list is empty (a client without the GuildPresences intent gets none from Discord either).
   */
  build(guildId: string, options: { presences?: boolean } = {}): string | null {
    const g = this.guilds.get(guildId);
    if (g === undefined) return null;
    let out = g.base.length > 2 ? `${g.base.slice(0, -1)},` : '{';
    if (g.memberCount !== null) out += `"member_count":${g.memberCount},`;
    for (const name of NAMES) {
      const m = g.coll[name];
      const skip = name === 'presences' && options.presences === false;
      out += `"${name}":[`;
      if (m !== undefined && !skip) {
        let first = true;
        for (const v of m.values()) {
          out += first ? v : `,${v}`;
          first = false;
        }
      }
      out += '],';
    }
    return `${out.slice(0, -1)}}`;
  }

  /** Bytes of JSON text held for one guild, or for every guild. */
  bytes(guildId?: string): number {
    if (guildId !== undefined) {
      const g = this.guilds.get(guildId);
      return g === undefined ? 0 : entryBytes(g);
    }
    let n = 0;
    for (const g of this.guilds.values()) n += entryBytes(g);
    return n;
  }

  /** Everything held, as plain data (for persistence). */
  snapshot(): Record<string, CachedGuildSnapshot> {
    const out: Record<string, CachedGuildSnapshot> = {};
    for (const [id, g] of this.guilds) out[id] = this.snapshotOf(id, g);
    return out;
  }

  /** One guild as plain data, or null. */
  snapshotGuild(guildId: string): CachedGuildSnapshot | null {
    const g = this.guilds.get(guildId);
    return g === undefined ? null : this.snapshotOf(guildId, g);
  }

  /** Load a guild from {@link GuildCache.snapshotGuild} data (replaces what is held for it). */
  restore(guildId: string, s: CachedGuildSnapshot): void {
    const coll: GuildEntry['coll'] = {};
    for (const name of NAMES) {
      const list = s.coll?.[name];
      if (Array.isArray(list)) coll[name] = new Map(list);
    }
    this.guilds.set(guildId, { base: s.base, memberCount: s.memberCount ?? null, coll });
  }

  /** Forget a guild. */
  delete(guildId: string): void {
    this.guilds.delete(guildId);
    this.unavailable.delete(guildId);
  }

  private snapshotOf(_id: string, g: GuildEntry): CachedGuildSnapshot {
    const coll: CachedGuildSnapshot['coll'] = {};
    for (const name of NAMES) {
      const m = g.coll[name];
      if (m !== undefined && m.size !== 0) coll[name] = [...m];
    }
    return { base: g.base, memberCount: g.memberCount, coll };
  }

  private create(d: Obj): void {
    if (typeof d.id !== 'string') return;
    const coll: GuildEntry['coll'] = {};
    for (const name of NAMES) {
      const list = d[name];
      if (!Array.isArray(list) || list.length === 0) continue;
      const m = new Map<string, string>();
      for (const v of list) {
        const k = keyOf(name, v);
        if (k !== null) m.set(k, stringify(v));
      }
      coll[name] = m;
    }
    const base = without(d, 'member_count', ...NAMES);
    this.guilds.set(d.id, { base: stringify(base), memberCount: typeof d.member_count === 'number' ? d.member_count : null, coll });
    this.unavailable.delete(d.id);
  }

  private update(d: Obj): void {
    if (typeof d.id !== 'string') return;
    const g = this.guilds.get(d.id);
    if (g === undefined) return;
    for (const name of ['roles', 'emojis', 'stickers'] as const) if (Array.isArray(d[name])) this.replace(d.id, name, d[name] as unknown[]);
    const old = JSON.parse(g.base) as Obj;
    g.base = stringify({ ...old, ...without(d, 'member_count', 'guild_id', ...NAMES) });
  }

  private map(gid: string, name: CollectionName): Map<string, string> | null {
    const g = this.guilds.get(gid);
    if (g === undefined) return null;
    let m = g.coll[name];
    if (m === undefined) g.coll[name] = m = new Map();
    return m;
  }

  private set(gid: string, name: CollectionName, v: unknown, text?: string): void {
    const k = keyOf(name, v);
    if (k === null) return;
    this.map(gid, name)?.set(k, text !== undefined ? asciiJson(text) : stringify(v));
  }

  private merge(gid: string, name: CollectionName, v: Obj): void {
    const k = keyOf(name, v);
    const m = this.map(gid, name);
    if (k === null || m === null) return;
    const old = m.get(k);
    m.set(k, stringify(old === undefined ? v : { ...(JSON.parse(old) as Obj), ...v }));
  }

  private del(gid: string, name: CollectionName, id: string): void {
    this.guilds.get(gid)?.coll[name]?.delete(id);
  }

  private replace(gid: string, name: CollectionName, list: unknown[]): void {
    const m = this.map(gid, name);
    if (m === null) return;
    m.clear();
    for (const v of list) {
      const k = keyOf(name, v);
      if (k !== null) m.set(k, stringify(v));
    }
  }

  private count(gid: string, delta: number): void {
    const g = this.guilds.get(gid);
    if (g !== undefined && g.memberCount !== null) g.memberCount = Math.max(0, g.memberCount + delta);
  }
}

function entryBytes(g: GuildEntry): number {
  let n = g.base.length + 8;
  for (const name of NAMES) {
    const m = g.coll[name];
    if (m === undefined) continue;
    for (const [k, v] of m) n += k.length + v.length;
  }
  return n;
}
