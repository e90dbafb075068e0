/**
 * The guild cache's two forms of one guild: the open {@link GuildView} (JSON text per entity in a `Map` per
 * collection, as a synthesized GUILD_CREATE concatenates it) and the packed form, one deflate-raw `Buffer` of the
 * same records. Plus the mutations of a view, so a packed guild's pending changes replay through the same code.
 * @packageDocumentation
 */
import { deflateRawSync, inflateRawSync, constants } from 'node:zlib';

/** The collections of a GUILD_CREATE the cache keeps, with the field that keys each entry. */
export const COLLECTIONS = {
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
export const NAMES = Object.keys(COLLECTIONS) as CollectionName[];

export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** One guild, open: its own fields and each entity as JSON text (ASCII only, see `asciiJson`). */
export interface GuildView {
  /** The guild's own fields as JSON text (no collections, no `member_count`). */
  base: string;
  coll: Partial<Record<CollectionName, Map<string, string>>>;
}

/** A key the packed form can hold: printable ASCII (ids are digits; anything else is not cached). */
const KEY = /^[\x20-\x7e]{1,100}$/;

export function keyOf(name: CollectionName, v: unknown): string | null {
  if (!isObj(v)) return null;
  const path = COLLECTIONS[name];
  const k = path === 'user.id' ? (isObj(v.user) ? v.user.id : undefined) : v[path];
  return typeof k === 'string' && KEY.test(k) ? k : null;
}

const NON_ASCII = /[\u0080-\uffff]/g;

/**
 * JSON text with every non-ASCII character written as a `\uXXXX` escape: the same JSON value, but V8 keeps a
 * string with any non-ASCII character at two bytes per character, and the packed form is one byte per character.
 */
export function asciiJson(text: string): string {
  NON_ASCII.lastIndex = 0;
  if (!NON_ASCII.test(text)) return text;
  NON_ASCII.lastIndex = 0;
  return text.replace(NON_ASCII, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export const stringify = (v: unknown): string => asciiJson(JSON.stringify(v));

export function without(o: Obj, ...keys: string[]): Obj {
  const out: Obj = {};
  for (const k of Object.keys(o)) if (!keys.includes(k)) out[k] = o[k];
  return out;
}

// ---- mutations of a view (the hot path of a dispatch, and the replay of a packed guild's pending ops) ----------

function mapOf(v: GuildView, name: CollectionName): Map<string, string> {
  let m = v.coll[name];
  if (m === undefined) v.coll[name] = m = new Map();
  return m;
}

export function setIn(v: GuildView, name: CollectionName, key: string, text: string): void {
  mapOf(v, name).set(key, text);
}

export function delIn(v: GuildView, name: CollectionName, key: string): void {
  v.coll[name]?.delete(key);
}

/** Shallow-merge `patch` (JSON text of an object) into the entry (a new entry when there is none). */
export function mergeIn(v: GuildView, name: CollectionName, key: string, patch: string): void {
  const m = mapOf(v, name);
  const old = m.get(key);
  m.set(key, old === undefined ? patch : stringify({ ...(JSON.parse(old) as Obj), ...(JSON.parse(patch) as Obj) }));
}

export function clearIn(v: GuildView, name: CollectionName): void {
  v.coll[name]?.clear();
}

/** Shallow-merge `patch` (JSON text of an object) into the guild's own fields. */
export function mergeBase(v: GuildView, patch: string): void {
  v.base = stringify({ ...(JSON.parse(v.base) as Obj), ...(JSON.parse(patch) as Obj) });
}

/** JSON text bytes a view holds (keys and texts). */
export function viewBytes(v: GuildView): number {
  let n = v.base.length;
  for (const name of NAMES) {
    const m = v.coll[name];
    if (m !== undefined) for (const [k, t] of m) n += k.length + t.length;
  }
  return n;
}

/** The GUILD_CREATE `d` of a view as JSON text. */
export function buildView(g: GuildView, memberCount: number | null, presences: boolean): string {
  let out = g.base.length > 2 ? `${g.base.slice(0, -1)},` : '{';
  if (memberCount !== null) out += `"member_count":${memberCount},`;
  for (const name of NAMES) {
    const m = g.coll[name];
    out += `"${name}":[`;
    if (m !== undefined && (presences || name !== 'presences')) {
      let first = true;
      for (const t of m.values()) {
        out += first ? t : `,${t}`;
        first = false;
      }
    }
    out += '],';
  }
  return `${out.slice(0, -1)}}`;
}

// ---- the packed form ------------------------------------------------------------------------------------------
//
// Text before compression: base \x02, then per collection (in NAMES order) its records `key \x01 json \x00`, then
// \x02. JSON text never holds a raw control character and keys are printable ASCII, so the separators are
// unambiguous; the whole text is ASCII, one byte per character.

/**
 * Preset dictionary: the field names and common values of the entities a GUILD_CREATE lists, so that even a small
 * guild's first records compress (deflate looks back into it as if it preceded the data). Only ever used in
 * memory, never stored: it may change between versions.
 */
const DICTIONARY = Buffer.from(
  [
    '"guild_scheduled_events":[],"soundboard_sounds":[],"stage_instances":[],"default_message_notifications":0,',
    '"explicit_content_filter":2,"verification_level":1,"premium_tier":0,"premium_subscription_count":0,',
    '"system_channel_flags":0,"preferred_locale":"en-US","features":["COMMUNITY","NEWS"],"nsfw_level":0,"mfa_level":0,',
    '{"id":"","name":"","color":0,"colors":{"primary_color":0,"secondary_color":null,"tertiary_color":null},',
    '"hoist":false,"icon":null,"unicode_emoji":null,"position":0,"permissions":"0","managed":false,"mentionable":false,"flags":0}',
    '{"id":"","name":"","roles":[],"require_colons":true,"managed":false,"animated":false,"available":true}',
    '{"id":"","type":0,"name":"general","position":0,"parent_id":null,"permission_overwrites":[],"flags":0,',
    '"topic":null,"nsfw":false,"rate_limit_per_user":0,"last_message_id":null,"bitrate":64000,"user_limit":0,"rtc_region":null}',
    '{"channel_id":"","user_id":"","session_id":"","deaf":false,"mute":false,"self_deaf":false,"self_mute":false,',
    '"self_video":false,"suppress":false,"request_to_speak_timestamp":null}',
    '{"user":{"id":""},"status":"online","activities":[{"id":"custom","name":"Custom Status","type":4,"state":"",',
    '"created_at":0},{"id":"spotify:1","name":"Spotify","type":2,"details":"","timestamps":{"start":0,"end":0},',
    '"assets":{"large_image":"spotify:","large_text":""},"sync_id":"","session_id":"","flags":48}],',
    '"client_status":{"desktop":"online","mobile":"idle","web":"dnd"}}',
    '{"user":{"id":"","username":"","discriminator":"0","global_name":null,"avatar":null,"bot":false,',
    '"avatar_decoration_data":null,"collectibles":null,"primary_guild":null,"public_flags":0},"nick":null,',
    '"avatar":null,"banner":null,"roles":[],"joined_at":"2024-01-01T00:00:00.000000+00:00","premium_since":null,',
    '"deaf":false,"mute":false,"flags":0,"pending":false,"communication_disabled_until":null}\x00',
  ].join(''),
  'latin1',
);

const ZOPTS = { level: constants.Z_BEST_SPEED + 3, dictionary: DICTIONARY, memLevel: 9 } as const;

function pack(text: string): Buffer {
  const out = deflateRawSync(Buffer.from(text, 'latin1'), ZOPTS);
  // zlib hands back a slice of its 16 KiB output chunk for small results: keep exactly the bytes, off the pool.
  const exact = Buffer.allocUnsafeSlow(out.length);
  out.copy(exact);
  return exact;
}

/** A view packed (one deflate-raw Buffer), and the length of its text. */
export function encodeView(v: GuildView): { blob: Buffer; rawLength: number } {
  const parts: string[] = [v.base, '\x02'];
  for (const name of NAMES) {
    const m = v.coll[name];
    if (m !== undefined) for (const [k, t] of m) parts.push(k, '\x01', t, '\x00');
    parts.push('\x02');
  }
  const text = parts.join('');
  return { blob: pack(text), rawLength: text.length };
}

const unpack = (blob: Buffer): string => inflateRawSync(blob, { dictionary: DICTIONARY }).toString('latin1');

/** The view a packed guild holds (new Maps; the texts are slices of one inflated string). */
export function decodeView(blob: Buffer): GuildView {
  const s = unpack(blob);
  let at = s.indexOf('\x02');
  const v: GuildView = { base: s.slice(0, at), coll: {} };
  at++;
  for (const name of NAMES) {
    const end = s.indexOf('\x02', at);
    if (end > at) {
      const m = new Map<string, string>();
      while (at < end) {
        const sep = s.indexOf('\x01', at);
        const stop = s.indexOf('\x00', sep);
        m.set(s.slice(at, sep), s.slice(sep + 1, stop));
        at = stop + 1;
      }
      v.coll[name] = m;
    }
    at = end + 1;
  }
  return v;
}

/** The GUILD_CREATE `d` of a packed guild (no pending changes) as JSON text, straight from its packed text. */
export function buildPacked(blob: Buffer, memberCount: number | null, presences: boolean): string {
  const s = unpack(blob);
  let at = s.indexOf('\x02');
  let out = at > 2 ? `${s.slice(0, at - 1)},` : '{';
  if (memberCount !== null) out += `"member_count":${memberCount},`;
  at++;
  for (const name of NAMES) {
    const end = s.indexOf('\x02', at);
    out += `"${name}":[`;
    if (presences || name !== 'presences') {
      let first = true;
      while (at < end) {
        const sep = s.indexOf('\x01', at);
        const stop = s.indexOf('\x00', sep);
        out += first ? s.slice(sep + 1, stop) : `,${s.slice(sep + 1, stop)}`;
        first = false;
        at = stop + 1;
      }
    }
    out += '],';
    at = end + 1;
  }
  return `${out.slice(0, -1)}}`;
}
