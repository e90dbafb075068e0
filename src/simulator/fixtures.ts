/**
 * Snowflakes, guild ids spread over shards, and realistic guild / member / event objects built from the
 * payload fixtures in `fixtures-data.ts`. Everything here is deterministic for a given input.
 * @packageDocumentation
 */
import { DISPATCH_FIXTURES } from './fixtures-data.js';

/** Discord epoch (2015-01-01T00:00:00Z) in unix milliseconds. */
export const DISCORD_EPOCH = 1420070400000n;

/** Build a snowflake from a unix-ms timestamp and the worker / process / increment fields. */
export function snowflake(unixMs: number | bigint, increment = 0, worker = 1, processId = 0): string {
  const ts = BigInt(unixMs) - DISCORD_EPOCH;
  return ((ts << 22n) | (BigInt(worker & 31) << 17n) | (BigInt(processId & 31) << 12n) | BigInt(increment & 4095)).toString();
}

/** Unix-ms timestamp of a snowflake. */
export function snowflakeTime(id: string): number {
  return Number((BigInt(id) >> 22n) + DISCORD_EPOCH);
}

/** True when `id` is a decimal string that fits a snowflake (unsigned 64-bit). */
export function isSnowflake(id: unknown): id is string {
  return typeof id === 'string' && /^\d{1,20}$/.test(id) && BigInt(id) < 1n << 64n;
}

/** The shard a guild is routed to: `(guild_id >> 22) % numShards`. */
export function shardForGuild(guildId: string, numShards: number): number {
  return Number((BigInt(guildId) >> 22n) % BigInt(numShards));
}

/**
 * `count` valid guild ids whose shard (for `spreadOver` shards) cycles 0, 1, 2, ..., so a bot with these guilds
 * has them evenly spread over `spreadOver` shards.
 */
export function generateGuildIds(count: number, spreadOver = 1): string[] {
  const n = Math.max(1, Math.floor(spreadOver));
  const base = Date.UTC(2019, 0, 1) - Number(DISCORD_EPOCH);
  const aligned = base - (base % n);
  const step = n * 7919 + 1; // ≡ 1 (mod n): consecutive ids land on consecutive shards
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push(snowflake(BigInt(aligned + i * step) + DISCORD_EPOCH, 0, 1, 0));
  return ids;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function fixtureData(t: string): JsonObject {
  const f = DISPATCH_FIXTURES[t];
  if (!f) throw new Error(`no fixture for ${t}`);
  return f.d as JsonObject;
}

const READY_TEMPLATE = fixtureData('READY');
const GUILD_TEMPLATE = fixtureData('GUILD_CREATE');
/** The fixture guild id every dispatch fixture refers to. */
export const TEMPLATE_GUILD_ID = GUILD_TEMPLATE.id as string;

/** The simulated bot user (from the READY fixture). */
export const BOT_USER: Readonly<JsonObject> = READY_TEMPLATE.user as JsonObject;
/** The bot's user id (== application id). */
export const BOT_USER_ID = BOT_USER.id as string;
/** Partial application object sent in READY. */
export const BOT_APPLICATION: Readonly<JsonObject> = READY_TEMPLATE.application as JsonObject;

/** Ids in the guild template that belong to the guild (channels, roles, emojis...) rather than to users. */
const LOCAL_IDS: readonly string[] = (() => {
  const global = new Set<string>();
  const local: string[] = [];
  const walk = (v: Json, key: string | null): void => {
    if (Array.isArray(v)) return v.forEach((x) => walk(x, key));
    if (v && typeof v === 'object') {
      if ('username' in v && typeof v.id === 'string') global.add(v.id);
      for (const [k, x] of Object.entries(v)) walk(x, k);
      return;
    }
    if (typeof v === 'string' && /^\d{17,20}$/.test(v)) {
      if (key === 'user_id' || key === 'owner_id' || key === 'bot_id' || key === 'application_id') global.add(v);
      else if (!local.includes(v)) local.push(v);
    }
  };
  for (const t of Object.keys(DISPATCH_FIXTURES)) walk(fixtureData(t), null);
  return local.filter((id) => !global.has(id) && id !== TEMPLATE_GUILD_ID);
})();

const idMapCache = new Map<string, Map<string, string>>();
/** Template id → id for guild `guildId` (guild id itself, then channels/roles/... offset from it). */
function guildIdMap(guildId: string): Map<string, string> {
  let m = idMapCache.get(guildId);
  if (!m) {
    m = new Map([[TEMPLATE_GUILD_ID, guildId]]);
    const g = BigInt(guildId);
    LOCAL_IDS.forEach((id, i) => m!.set(id, (g + BigInt(i + 1)).toString()));
    if (idMapCache.size > 10_000) idMapCache.clear();
    idMapCache.set(guildId, m);
  }
  return m;
}

/** Rewrite every template-local snowflake in a JSON text to the ids of `guildId`. */
export function remapJson(json: string, guildId: string): string {
  const m = guildIdMap(guildId);
  return json.replace(/"(\d{17,20})"/g, (whole, id: string) => {
    const r = m.get(id);
    return r === undefined ? whole : `"${r}"`;
  });
}

const GUILD_NAMES = ['Pixel Forge', 'Night Owls', 'Rust & Rockets', 'Tea Garden', 'Study Hall', 'Speedrun Lab', 'Synth Club', 'Map Makers'];
const GUILD_TEMPLATE_JSON = JSON.stringify(GUILD_TEMPLATE);

/** Options for {@link buildGuildCreate}. */
export interface GuildBuildOptions {
  /** `member_count` to report. */
  memberCount?: number;
  /** Include presences (bot has GUILD_PRESENCES). Without it members shrink to the bot + voice members. */
  presences?: boolean;
}

/** A realistic GUILD_CREATE `d` for `guildId`, derived from the fixture with all guild-local ids remapped. */
export function buildGuildCreate(guildId: string, index = 0, opts: GuildBuildOptions = {}): JsonObject {
  const g = JSON.parse(remapJson(GUILD_TEMPLATE_JSON, guildId)) as JsonObject;
  const name = GUILD_NAMES[index % GUILD_NAMES.length]!;
  g.name = index < GUILD_NAMES.length ? name : `${name} ${Math.floor(index / GUILD_NAMES.length) + 1}`;
  if (opts.memberCount !== undefined) {
    g.member_count = opts.memberCount;
    g.large = opts.memberCount > 250;
  }
  g.joined_at = new Date(snowflakeTime(guildId) + 86_400_000).toISOString().replace('Z', '000+00:00');
  if (opts.presences === false) {
    const voiceUsers = new Set((g.voice_states as JsonObject[]).map((v) => v.user_id));
    g.members = (g.members as JsonObject[]).filter((m) => {
      const id = (m.user as JsonObject).id;
      return id === BOT_USER_ID || voiceUsers.has(id ?? null);
    });
    g.presences = [];
  }
  return g;
}

/** Voice channels of a guild built by {@link buildGuildCreate}: `[id]`. */
export function voiceChannelIds(guildId: string): string[] {
  return (GUILD_TEMPLATE.channels as JsonObject[]).filter((c) => c.type === 2 || c.type === 13).map((c) => guildIdMap(guildId).get(c.id as string) ?? (c.id as string));
}

const MEMBER_TEMPLATE = (GUILD_TEMPLATE.members as JsonObject[]).find((m) => (m.user as JsonObject).id !== BOT_USER_ID)!;
const BOT_MEMBER = (GUILD_TEMPLATE.members as JsonObject[]).find((m) => (m.user as JsonObject).id === BOT_USER_ID)!;

/** User id of member `index` (index 0 is the bot) of a guild. */
export function memberUserId(guildId: string, index: number): string {
  if (index === 0) return BOT_USER_ID;
  return snowflake(snowflakeTime(guildId) + 1000 + index, index & 4095, 2, (index >> 12) & 31);
}

/** Username of member `index` (`member<index>`, index 0 is the bot). */
export function memberUsername(index: number): string {
  return index === 0 ? (BOT_USER.username as string) : `member${index}`;
}

/** Member `index` of a guild (index 0 is the bot), shaped like the fixture members. */
export function buildMember(guildId: string, index: number): JsonObject {
  if (index === 0) return JSON.parse(remapJson(JSON.stringify(BOT_MEMBER), guildId)) as JsonObject;
  const m = structuredClone(MEMBER_TEMPLATE);
  const user = { ...(m.user as JsonObject) };
  user.id = memberUserId(guildId, index);
  user.username = memberUsername(index);
  user.global_name = `Member ${index}`;
  user.avatar = null;
  m.user = user;
  m.nick = index % 5 === 0 ? `nick${index}` : null;
  m.roles = index % 3 === 0 ? [guildIdMap(guildId).get(LOCAL_IDS[0]!) ?? guildId] : [];
  return m;
}

/** A minimal presence for member `index`. */
export function buildPresence(guildId: string, index: number): JsonObject {
  const statuses = ['online', 'idle', 'dnd'] as const;
  const status = statuses[index % 3]!;
  return { user: { id: memberUserId(guildId, index) }, status, activities: [], client_status: { desktop: status } };
}

const EVENT_JSON: ReadonlyMap<string, string> = new Map(
  Object.keys(DISPATCH_FIXTURES)
    .filter((t) => !['READY', 'RESUMED', 'RATE_LIMITED', 'GUILD_MEMBERS_CHUNK'].includes(t))
    .map((t) => [t, JSON.stringify(fixtureData(t))]),
);

/** Event names with a traffic fixture. */
export const TRAFFIC_EVENTS: readonly string[] = [...EVENT_JSON.keys()];

const eventCache = new Map<string, string>();
/**
 * JSON text of the `d` of fixture event `t` for guild `guildId` (ids remapped). Message-like events get a fresh
 * message id from `freshId` so caches see distinct messages. Returns null when there is no fixture for `t`.
 */
export function fixtureEventJson(t: string, guildId: string, freshId?: string): string | null {
  if (t === 'GUILD_CREATE') return JSON.stringify(buildGuildCreate(guildId));
  const key = `${t}:${guildId}`;
  let json = eventCache.get(key);
  if (json === undefined) {
    const src = EVENT_JSON.get(t);
    if (src === undefined) return null;
    json = remapJson(src, guildId);
    if (eventCache.size > 50_000) eventCache.clear();
    eventCache.set(key, json);
  }
  if (freshId !== undefined && (t === 'MESSAGE_CREATE' || t === 'INTERACTION_CREATE' || t === 'MESSAGE_UPDATE')) {
    const templateId = fixtureData(t).id as string;
    const oldId = guildIdMap(guildId).get(templateId) ?? templateId;
    json = json.split(`"id":"${oldId}"`).join(`"id":"${freshId}"`);
  }
  return json;
}
