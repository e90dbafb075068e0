/**
 * READY and GUILD_CREATE for a downstream client, built from what the proxy holds (no upstream traffic).
 * @packageDocumentation
 */
import { Intents } from '../intents.js';
import type { GuildCache } from './cache.js';
import { refGuild } from './replay.js';

/** What a synthesized READY contains besides the guild list. */
export interface ReadyParts {
  /** The bot user, as JSON text (from the upstream READY). */
  user: string;
  /** The application (`{ id, flags }`), as JSON text (from the upstream READY). */
  application: string;
  sessionId: string;
  resumeUrl: string;
  shard: [number, number];
}

/**
 * The `d` of READY as JSON text: the user, the application, the shard's guilds all listed as unavailable (their
 * GUILD_CREATEs follow), the client's own session id and a `resume_gateway_url` pointing at the proxy.
 */
export function readyData(parts: ReadyParts, guildIds: Iterable<string>): string {
  let guilds = '';
  for (const id of guildIds) guilds += `${guilds === '' ? '' : ','}{"id":${JSON.stringify(id)},"unavailable":true}`;
  return (
    `{"v":10,"user_settings":{},"user":${parts.user},"guilds":[${guilds}],"guild_join_requests":[],"relationships":[],` +
    `"private_channels":[],"presences":[],"session_id":${JSON.stringify(parts.sessionId)},"session_type":"normal",` +
    `"resume_gateway_url":${JSON.stringify(parts.resumeUrl)},"shard":[${parts.shard[0]},${parts.shard[1]}],` +
    `"application":${parts.application},"geo_ordered_rtc_regions":[]}`
  );
}

/** One GUILD_CREATE `d` per cached guild of `guildIds`, for a client with `intents` (presences only with GuildPresences). */
export function* guildCreates(cache: GuildCache, guildIds: Iterable<string>, intents: number): Generator<string> {
  if ((intents & Intents.Guilds) === 0) return;
  const presences = (intents & Intents.GuildPresences) !== 0;
  for (const id of guildIds) {
    const d = cache.build(id, { presences });
    if (d !== null) yield d;
  }
}

/**
 * The `d` a ring reference (see `ShardStream.record`) stands for, built from the cache now for a client with
 * `intents`: a GUILD_CREATE of the guild's current state. Null when the guild is no longer held (left or deleted
 * since: its GUILD_DELETE follows in the ring) or the reference is not one.
 */
export function expandRef(cache: GuildCache, type: string, ref: string, intents: number): string | null {
  const id = type === 'GUILD_CREATE' ? refGuild(ref) : null;
  if (id === null) return null;
  for (const d of guildCreates(cache, [id], intents)) return d;
  return null;
}
