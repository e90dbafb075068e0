/**
 * Client requests after authentication: op 3 presence update, op 4 voice state, op 8 guild members,
 * op 31 soundboard sounds, op 43 channel info. Malformed payloads close with 4001.
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import type { SimConnection } from './connection.js';
import type { SimulatorCore } from './core.js';
import { I } from './events.js';
import { DISPATCH_FIXTURES } from './fixtures-data.js';
import { BOT_USER_ID, buildMember, buildPresence, isSnowflake, memberUserId, memberUsername, remapJson, snowflake, snowflakeTime, voiceChannelIds } from './fixtures.js';
import type { SimSession } from './session.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const MEMBERS_PER_CHUNK = 1000;
const STATUSES = new Set(['online', 'dnd', 'idle', 'invisible', 'offline']);

/** Handle op 3 / 4 / 8 / 31 / 43 on an authenticated connection. */
export function handleRequest(core: SimulatorCore, conn: SimConnection, op: number, d: unknown): void {
  const bad = (what: string): void => void conn.close(4001, `Invalid payload for op ${op}: ${what}.`);
  switch (op) {
    case 3:
      return validPresence(d) ? undefined : bad('presence');
    case 4:
      return voiceState(core, conn, d, bad);
    case 8:
      return requestMembers(core, conn, d, bad);
    case 31:
      return soundboard(core, conn, d, bad);
    case 43:
      return channelInfo(core, conn, d, bad);
  }
}

function validPresence(d: unknown): boolean {
  return (
    isObj(d) &&
    (d.since === null || d.since === undefined || isInt(d.since)) &&
    Array.isArray(d.activities) &&
    d.activities.every((a) => isObj(a) && typeof a.name === 'string' && isInt(a.type)) &&
    typeof d.status === 'string' &&
    STATUSES.has(d.status) &&
    (d.afk === undefined || typeof d.afk === 'boolean')
  );
}

/** The connection's session when it has the guild; requests for other guilds are ignored. */
function sessionFor(core: SimulatorCore, conn: SimConnection, guildId: string): SimSession | null {
  const s = conn.session;
  return s && !s.expired && core.sessionHasGuild(s, guildId) ? s : null;
}

function voiceState(core: SimulatorCore, conn: SimConnection, d: unknown, bad: (w: string) => void): void {
  if (!isObj(d) || !isSnowflake(d.guild_id) || !(d.channel_id === null || isSnowflake(d.channel_id))) return bad('guild_id/channel_id');
  if (typeof d.self_mute !== 'boolean' || typeof d.self_deaf !== 'boolean') return bad('self_mute/self_deaf');
  const session = sessionFor(core, conn, d.guild_id);
  if (!session) return;
  const template = JSON.parse(remapJson(JSON.stringify(DISPATCH_FIXTURES.VOICE_STATE_UPDATE!.d), d.guild_id)) as Obj;
  const vs: Obj = {
    ...template,
    member: buildMember(d.guild_id, 0),
    user_id: BOT_USER_ID,
    session_id: session.id,
    guild_id: d.guild_id,
    channel_id: d.channel_id,
    self_mute: d.self_mute,
    self_deaf: d.self_deaf,
  };
  core.deliver(session, 'VOICE_STATE_UPDATE', vs);
  if (d.channel_id !== null) {
    core.deliver(session, 'VOICE_SERVER_UPDATE', { token: randomBytes(8).toString('hex'), guild_id: d.guild_id, endpoint: 'sim-voice.local:443' });
  }
}

function requestMembers(core: SimulatorCore, conn: SimConnection, d: unknown, bad: (w: string) => void): void {
  if (!isObj(d) || !isSnowflake(d.guild_id)) return bad('guild_id');
  const hasQuery = typeof d.query === 'string';
  const ids = typeof d.user_ids === 'string' ? [d.user_ids] : d.user_ids;
  if (!hasQuery && ids === undefined) return bad('query or user_ids required');
  if (ids !== undefined && !(Array.isArray(ids) && ids.every(isSnowflake))) return bad('user_ids');
  if (hasQuery && !(isInt(d.limit) && d.limit >= 0)) return bad('limit');
  if (d.presences !== undefined && typeof d.presences !== 'boolean') return bad('presences');
  const guildId = d.guild_id;
  const session = sessionFor(core, conn, guildId);
  if (!session) return;
  const nonce = typeof d.nonce === 'string' && Buffer.byteLength(d.nonce) <= 32 ? d.nonce : undefined;
  const count = Math.max(1, core.opts.guildMemberCount);
  const all = hasQuery && d.query === '' && d.limit === 0 && ids === undefined;
  let indices: number[] = [];
  let notFound: string[] | undefined;
  if (all) {
    const wait = core.memberCooldown.take(`${guildId}`);
    if (wait > 0) {
      core.deliver(session, 'RATE_LIMITED', { opcode: 8, retry_after: Math.round(wait) / 1000, meta: { guild_id: guildId, ...(nonce !== undefined ? { nonce } : {}) } });
      return;
    }
    // Without GUILD_MEMBERS Discord answers a full request with nothing (no chunk, no close).
    if ((session.intents & I.GUILD_MEMBERS) === 0) return;
    indices = Array.from({ length: count }, (_, i) => i);
  } else if (ids !== undefined) {
    notFound = [];
    const byId = new Map<string, number>();
    const base = snowflakeTime(guildId) + 1000;
    for (const id of (ids as string[]).slice(0, 100)) {
      const idx = id === BOT_USER_ID ? 0 : snowflakeTime(id) - base;
      if (idx >= 0 && idx < count && memberUserId(guildId, idx) === id && !byId.has(id)) byId.set(id, idx);
      else notFound.push(id);
    }
    indices = [...byId.values()];
  } else {
    const q = (d.query as string).toLowerCase();
    const max = Math.min(100, (d.limit as number) || 100);
    for (let i = 0; i < count && indices.length < max; i++) if (memberUsername(i).toLowerCase().startsWith(q)) indices.push(i);
  }
  const withPresences = d.presences === true && (session.intents & I.GUILD_PRESENCES) !== 0;
  const chunkCount = Math.max(1, Math.ceil(indices.length / MEMBERS_PER_CHUNK));
  for (let c = 0; c < chunkCount; c++) {
    const part = indices.slice(c * MEMBERS_PER_CHUNK, (c + 1) * MEMBERS_PER_CHUNK);
    core.deliver(session, 'GUILD_MEMBERS_CHUNK', {
      guild_id: guildId,
      members: part.map((i) => buildMember(guildId, i)),
      chunk_index: c,
      chunk_count: chunkCount,
      ...(notFound !== undefined ? { not_found: notFound } : {}),
      ...(withPresences ? { presences: part.map((i) => buildPresence(guildId, i)) } : {}),
      ...(nonce !== undefined ? { nonce } : {}),
    });
  }
}

function soundboard(core: SimulatorCore, conn: SimConnection, d: unknown, bad: (w: string) => void): void {
  if (!isObj(d) || !Array.isArray(d.guild_ids) || !d.guild_ids.every(isSnowflake)) return bad('guild_ids');
  for (const guildId of d.guild_ids as string[]) {
    const session = sessionFor(core, conn, guildId);
    if (!session) continue;
    const sound = {
      name: 'airhorn',
      sound_id: snowflake(snowflakeTime(guildId) + 500, 7, 3),
      volume: 1,
      emoji_id: null,
      emoji_name: '📯',
      guild_id: guildId,
      available: true,
      user: { id: BOT_USER_ID },
    };
    core.deliver(session, 'SOUNDBOARD_SOUNDS', { guild_id: guildId, soundboard_sounds: [sound] });
  }
}

function channelInfo(core: SimulatorCore, conn: SimConnection, d: unknown, bad: (w: string) => void): void {
  if (!isObj(d) || !isSnowflake(d.guild_id)) return bad('guild_id');
  const fields = d.fields;
  if (!Array.isArray(fields) || !fields.every((f) => f === 'status' || f === 'voice_start_time')) return bad('fields');
  const session = sessionFor(core, conn, d.guild_id);
  if (!session) return;
  const startedAt = Math.floor(Date.now() / 1000) - 600;
  const channels = voiceChannelIds(d.guild_id).map((id) => ({
    id,
    ...(fields.includes('status') ? { status: 'Game night 🎲' } : {}),
    ...(fields.includes('voice_start_time') ? { voice_start_time: startedAt } : {}),
  }));
  core.deliver(session, 'CHANNEL_INFO', { guild_id: d.guild_id, channels });
}
