/**
 * {@link GuildCache}: what a synthesized GUILD_CREATE needs, kept current from the dispatches, held compactly. A
 * guild is packed (one deflate-raw Buffer of its JSON records, see cache-codec.ts) as soon as its GUILD_CREATE is
 * stored; a dispatch for a packed guild is appended, as JSON text, to a short per-guild log of pending changes,
 * folded into the Buffer when the log reaches a quarter of the guild's text. A guild whose log fills again soon
 * after a fold is opened (plain Maps of JSON text, changed in place) and packed again once idle or when more than
 * `maxOpen` guilds are open.
 * @packageDocumentation
 */
import {
  asciiJson,
  buildPacked,
  buildView,
  clearIn,
  decodeView,
  delIn,
  encodeView,
  isObj,
  keyOf,
  mergeBase,
  mergeIn,
  NAMES,
  setIn,
  stringify,
  viewBytes,
  without,
  type CollectionName,
  type GuildView,
  type Obj,
} from './cache-codec.js';

export { asciiJson, type CollectionName } from './cache-codec.js';

/** A guild in a cache snapshot (for persistence). */
export interface CachedGuildSnapshot {
  base: string;
  memberCount: number | null;
  coll: Partial<Record<CollectionName, [string, string][]>>;
}

/** How the cache trades memory for CPU (the defaults suit a proxy; tests make them small). */
export interface GuildCacheOptions {
  /** Guilds held open (unpacked) at most; the least recently changed is packed first. Default 64. */
  maxOpen?: number;
  /**
   * Cache dispatches (of any guild) after which an open guild that saw none is packed, and within which a packed
   * guild whose pending log fills again is opened instead of folded. Default 20 000.
   */
  idleDispatches?: number;
  /** Pending-log bytes a packed guild folds at, at least (else a quarter of its text). Default 16 KiB. */
  minPendingBytes?: number;
}

const SET = 0;
const DEL = 1;
const MERGE = 2;
const CLEAR = 3;
const BASE = 4;
/** A pending change of a packed guild: kind, collection, key, JSON text. */
type Op = [kind: number, name: CollectionName | null, key: string, text: string];
/** Pending changes a packed guild holds at most, whatever their bytes. */
const MAX_OPS = 1024;
/** Bytes counted for each pending change besides its text (the tuple and its slot). */
const OP_OVERHEAD = 48;

interface GuildEntry {
  memberCount: number | null;
  /** The open form, or null when packed. */
  view: GuildView | null;
  /** The packed form, or null when open. */
  blob: Buffer | null;
  /** Length of the packed text. */
  rawLength: number;
  /** Changes since the guild was packed, in order. */
  ops: Op[];
  opBytes: number;
  /** Cache tick of the last pack or fold (never, for a guild stored from GUILD_CREATE or a snapshot). */
  packedAt: number;
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

/**
 * The guilds of a bot as Discord sends them in GUILD_CREATE (the guild, channels, threads, roles, emojis,
 * stickers, members and presences as received, voice states, stage instances, scheduled events, soundboard
 * sounds), kept current from the dispatches that change them, and rebuilt as GUILD_CREATE JSON text on demand.
 * Guilds are held packed (deflate-raw) unless they change often; see docs/PROXY.md for the memory per guild.
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
  /** Open guilds, least recently changed first, with the tick of their last change. */
  private readonly open = new Map<string, number>();
  /** Cache dispatches applied (the cache's clock for idleness). */
  private tick = 0;
  private readonly maxOpen: number;
  private readonly idle: number;
  private readonly minPending: number;

  constructor(options: GuildCacheOptions = {}) {
    this.maxOpen = options.maxOpen ?? 64;
    this.idle = options.idleDispatches ?? 20_000;
    this.minPending = options.minPendingBytes ?? 16 * 1024;
  }

  /** Guilds held. */
  get size(): number {
    return this.guilds.size;
  }

  /** Guilds held open (unpacked) now. */
  get openCount(): number {
    return this.open.size;
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
    this.tick++;
    this.change(type, d, text);
    const gid = typeof d.guild_id === 'string' ? d.guild_id : typeof d.id === 'string' ? d.id : null;
    if (gid !== null) this.settle(gid);
    this.maintain();
    return true;
  }

  private change(type: string, d: Obj, text: string | undefined): boolean {
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
        else this.delete(d.id);
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
   * presences list is empty (a client without the GuildPresences intent gets none from Discord either). A packed
   * guild is unpacked for this call only.
   */
  build(guildId: string, options: { presences?: boolean } = {}): string | null {
    const g = this.guilds.get(guildId);
    if (g === undefined) return null;
    const presences = options.presences !== false;
    if (g.view === null && g.ops.length === 0) return buildPacked(g.blob!, g.memberCount, presences);
    return buildView(viewOf(g), g.memberCount, presences);
  }

  /**
   * Bytes held for one guild, or for every guild: a packed guild's compressed bytes plus the JSON text of its
   * pending changes, an open guild's JSON text (keys and entries).
   */
  bytes(guildId?: string): number {
    if (guildId !== undefined) {
      const g = this.guilds.get(guildId);
      return g === undefined ? 0 : entryBytes(g);
    }
    let n = 0;
    for (const g of this.guilds.values()) n += entryBytes(g);
    return n;
  }

  /** Pack every open guild and fold every pending log (the least memory; for a quiet moment, or a benchmark). */
  compact(): void {
    for (const id of [...this.open.keys()]) this.pack(id);
    for (const g of this.guilds.values()) if (g.ops.length !== 0) fold(g, this.tick);
  }

  /** Everything held, as plain data (for persistence). */
  snapshot(): Record<string, CachedGuildSnapshot> {
    const out: Record<string, CachedGuildSnapshot> = {};
    for (const id of this.guilds.keys()) out[id] = this.snapshotGuild(id)!;
    return out;
  }

  /** One guild as plain data, or null. */
  snapshotGuild(guildId: string): CachedGuildSnapshot | null {
    const g = this.guilds.get(guildId);
    if (g === undefined) return null;
    const v = viewOf(g);
    const coll: CachedGuildSnapshot['coll'] = {};
    for (const name of NAMES) {
      const m = v.coll[name];
      if (m !== undefined && m.size !== 0) coll[name] = [...m];
    }
    return { base: v.base, memberCount: g.memberCount, coll };
  }

  /** Load a guild from {@link GuildCache.snapshotGuild} data (replaces what is held for it; held packed). */
  restore(guildId: string, s: CachedGuildSnapshot): void {
    const v: GuildView = { base: s.base, coll: {} };
    for (const name of NAMES) {
      const list = s.coll?.[name];
      if (Array.isArray(list)) v.coll[name] = new Map(list);
    }
    this.hold(guildId, v, s.memberCount ?? null);
  }

  /** Forget a guild. */
  delete(guildId: string): void {
    this.guilds.delete(guildId);
    this.open.delete(guildId);
    this.unavailable.delete(guildId);
  }

  // ---- tiers ------------------------------------------------------------------------------------------------

  /** Hold `v` for `id`, packed (its first full log folds: a GUILD_CREATE's member chunks do not open it). */
  private hold(id: string, v: GuildView, memberCount: number | null): void {
    const { blob, rawLength } = encodeView(v);
    this.open.delete(id);
    this.guilds.set(id, { memberCount, view: null, blob, rawLength, ops: [], opBytes: 0, packedAt: Number.NEGATIVE_INFINITY });
  }

  /** After a change: a packed guild whose log is full is folded, or opened when it filled soon after a fold. */
  private settle(id: string): void {
    const g = this.guilds.get(id);
    if (g === undefined) return;
    if (g.view !== null) {
      this.open.delete(id);
      this.open.set(id, this.tick);
      return;
    }
    if (g.opBytes < Math.max(this.minPending, g.rawLength >> 2) && g.ops.length < MAX_OPS) return;
    if (this.tick - g.packedAt < this.idle && this.maxOpen > 0) {
      g.view = viewOf(g);
      g.blob = null;
      g.ops = [];
      g.opBytes = 0;
      this.open.set(id, this.tick);
    } else fold(g, this.tick);
  }

  /** Pack the open guilds beyond `maxOpen`, and one idle open guild. */
  private maintain(): void {
    for (const [id, at] of this.open) {
      if (this.open.size <= this.maxOpen && this.tick - at < this.idle) break;
      this.pack(id);
      if (this.open.size <= this.maxOpen) break;
    }
  }

  private pack(id: string): void {
    const g = this.guilds.get(id);
    this.open.delete(id);
    if (g === undefined || g.view === null) return;
    const { blob, rawLength } = encodeView(g.view);
    Object.assign(g, { view: null, blob, rawLength, ops: [], opBytes: 0, packedAt: this.tick });
  }

  /** Record a change: applied in place to an open guild, logged for a packed one. */
  private op(id: string, kind: number, name: CollectionName | null, key: string, text: string): void {
    const g = this.guilds.get(id);
    if (g === undefined) return;
    if (g.view !== null) applyOp(g.view, kind, name, key, text);
    else {
      g.ops.push([kind, name, key, text]);
      g.opBytes += key.length + text.length + OP_OVERHEAD;
    }
  }

  // ---- changes ----------------------------------------------------------------------------------------------

  private create(d: Obj): void {
    if (typeof d.id !== 'string') return;
    const v: GuildView = { base: stringify(without(d, 'member_count', ...NAMES)), coll: {} };
    for (const name of NAMES) {
      const list = d[name];
      if (!Array.isArray(list) || list.length === 0) continue;
      const m = new Map<string, string>();
      for (const x of list) {
        const k = keyOf(name, x);
        if (k !== null) m.set(k, stringify(x));
      }
      v.coll[name] = m;
    }
    this.hold(d.id, v, typeof d.member_count === 'number' ? d.member_count : null);
    this.unavailable.delete(d.id);
  }

  private update(d: Obj): void {
    if (typeof d.id !== 'string' || !this.guilds.has(d.id)) return;
    for (const name of ['roles', 'emojis', 'stickers'] as const) if (Array.isArray(d[name])) this.replace(d.id, name, d[name] as unknown[]);
    this.op(d.id, BASE, null, '', stringify(without(d, 'member_count', 'guild_id', ...NAMES)));
  }

  private set(gid: string, name: CollectionName, v: unknown, text?: string): void {
    const k = keyOf(name, v);
    if (k !== null) this.op(gid, SET, name, k, text !== undefined ? asciiJson(text) : stringify(v));
  }

  private merge(gid: string, name: CollectionName, v: Obj): void {
    const k = keyOf(name, v);
    if (k !== null) this.op(gid, MERGE, name, k, stringify(v));
  }

  private del(gid: string, name: CollectionName, id: string): void {
    this.op(gid, DEL, name, id, '');
  }

  private replace(gid: string, name: CollectionName, list: unknown[]): void {
    this.op(gid, CLEAR, name, '', '');
    for (const v of list) this.set(gid, name, v);
  }

  private count(gid: string, delta: number): void {
    const g = this.guilds.get(gid);
    if (g !== undefined && g.memberCount !== null) g.memberCount = Math.max(0, g.memberCount + delta);
  }
}

function applyOp(v: GuildView, kind: number, name: CollectionName | null, key: string, text: string): void {
  if (kind === BASE) mergeBase(v, text);
  else if (kind === SET) setIn(v, name!, key, text);
  else if (kind === DEL) delIn(v, name!, key);
  else if (kind === MERGE) mergeIn(v, name!, key, text);
  else clearIn(v, name!);
}

/** The guild as a view: the open one itself, or the packed one unpacked with its pending changes applied. */
function viewOf(g: GuildEntry): GuildView {
  if (g.view !== null) return g.view;
  const v = decodeView(g.blob!);
  for (const [kind, name, key, text] of g.ops) applyOp(v, kind, name, key, text);
  return v;
}

/** Fold a packed guild's pending changes into its Buffer. */
function fold(g: GuildEntry, tick: number): void {
  const { blob, rawLength } = encodeView(viewOf(g));
  Object.assign(g, { blob, rawLength, ops: [], opBytes: 0, packedAt: tick });
}

function entryBytes(g: GuildEntry): number {
  return g.view !== null ? viewBytes(g.view) : g.blob!.length + g.opBytes;
}
