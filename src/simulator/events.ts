/**
 * Intent gating of dispatches (spec §5.1) and MESSAGE_CONTENT stripping (§5.2), as the simulator applies them.
 * Self-contained so the simulator does not depend on the client's modules.
 * @packageDocumentation
 */
import { BOT_USER_ID } from './fixtures.js';

/** Intent bits used by the simulator. */
export const I = {
  GUILDS: 1 << 0,
  GUILD_MEMBERS: 1 << 1,
  GUILD_MODERATION: 1 << 2,
  GUILD_EXPRESSIONS: 1 << 3,
  GUILD_INTEGRATIONS: 1 << 4,
  GUILD_WEBHOOKS: 1 << 5,
  GUILD_INVITES: 1 << 6,
  GUILD_VOICE_STATES: 1 << 7,
  GUILD_PRESENCES: 1 << 8,
  GUILD_MESSAGES: 1 << 9,
  GUILD_MESSAGE_REACTIONS: 1 << 10,
  GUILD_MESSAGE_TYPING: 1 << 11,
  DIRECT_MESSAGES: 1 << 12,
  DIRECT_MESSAGE_REACTIONS: 1 << 13,
  DIRECT_MESSAGE_TYPING: 1 << 14,
  MESSAGE_CONTENT: 1 << 15,
  GUILD_SCHEDULED_EVENTS: 1 << 16,
  AUTO_MODERATION_CONFIGURATION: 1 << 20,
  AUTO_MODERATION_EXECUTION: 1 << 21,
  GUILD_MESSAGE_POLLS: 1 << 24,
  DIRECT_MESSAGE_POLLS: 1 << 25,
} as const;

/** The privileged intents. */
export const PRIVILEGED_INTENTS = I.GUILD_MEMBERS | I.GUILD_PRESENCES | I.MESSAGE_CONTENT;
/** Highest defined intent bit; anything above → 4013. */
export const MAX_INTENT_BIT = 1 << 25;

/** 4013 rule [SIM]: negative, non-integer, or bits above 1 << 25. */
export function intentsValid(intents: unknown): intents is number {
  return typeof intents === 'number' && Number.isSafeInteger(intents) && intents >= 0 && intents < MAX_INTENT_BIT * 2;
}

type Gate = readonly [guild: number, dm: number];
const g = (guild: number, dm = guild): Gate => [guild, dm];

const GATES: Readonly<Record<string, Gate>> = (() => {
  const t: Record<string, Gate> = {};
  const set = (names: string, gate: Gate): void => names.split(' ').forEach((n) => (t[n] = gate));
  set('GUILD_CREATE GUILD_UPDATE GUILD_DELETE GUILD_ROLE_CREATE GUILD_ROLE_UPDATE GUILD_ROLE_DELETE CHANNEL_CREATE CHANNEL_UPDATE CHANNEL_DELETE', g(I.GUILDS));
  set('THREAD_CREATE THREAD_UPDATE THREAD_DELETE THREAD_LIST_SYNC THREAD_MEMBER_UPDATE THREAD_MEMBERS_UPDATE', g(I.GUILDS));
  set('STAGE_INSTANCE_CREATE STAGE_INSTANCE_UPDATE STAGE_INSTANCE_DELETE VOICE_CHANNEL_STATUS_UPDATE VOICE_CHANNEL_START_TIME_UPDATE', g(I.GUILDS));
  set('CHANNEL_PINS_UPDATE', g(I.GUILDS, I.DIRECT_MESSAGES));
  set('GUILD_MEMBER_ADD GUILD_MEMBER_UPDATE GUILD_MEMBER_REMOVE', g(I.GUILD_MEMBERS));
  set('GUILD_AUDIT_LOG_ENTRY_CREATE GUILD_BAN_ADD GUILD_BAN_REMOVE', g(I.GUILD_MODERATION));
  set('GUILD_EMOJIS_UPDATE GUILD_STICKERS_UPDATE GUILD_SOUNDBOARD_SOUND_CREATE GUILD_SOUNDBOARD_SOUND_UPDATE GUILD_SOUNDBOARD_SOUND_DELETE GUILD_SOUNDBOARD_SOUNDS_UPDATE', g(I.GUILD_EXPRESSIONS));
  set('GUILD_INTEGRATIONS_UPDATE INTEGRATION_CREATE INTEGRATION_UPDATE INTEGRATION_DELETE', g(I.GUILD_INTEGRATIONS));
  set('WEBHOOKS_UPDATE', g(I.GUILD_WEBHOOKS));
  set('INVITE_CREATE INVITE_DELETE', g(I.GUILD_INVITES));
  set('VOICE_STATE_UPDATE VOICE_CHANNEL_EFFECT_SEND', g(I.GUILD_VOICE_STATES));
  set('PRESENCE_UPDATE', g(I.GUILD_PRESENCES));
  set('MESSAGE_CREATE MESSAGE_UPDATE MESSAGE_DELETE', g(I.GUILD_MESSAGES, I.DIRECT_MESSAGES));
  set('MESSAGE_DELETE_BULK', g(I.GUILD_MESSAGES));
  set('MESSAGE_REACTION_ADD MESSAGE_REACTION_REMOVE MESSAGE_REACTION_REMOVE_ALL MESSAGE_REACTION_REMOVE_EMOJI', g(I.GUILD_MESSAGE_REACTIONS, I.DIRECT_MESSAGE_REACTIONS));
  set('TYPING_START', g(I.GUILD_MESSAGE_TYPING, I.DIRECT_MESSAGE_TYPING));
  set('GUILD_SCHEDULED_EVENT_CREATE GUILD_SCHEDULED_EVENT_UPDATE GUILD_SCHEDULED_EVENT_DELETE GUILD_SCHEDULED_EVENT_USER_ADD GUILD_SCHEDULED_EVENT_USER_REMOVE', g(I.GUILD_SCHEDULED_EVENTS));
  set('AUTO_MODERATION_RULE_CREATE AUTO_MODERATION_RULE_UPDATE AUTO_MODERATION_RULE_DELETE', g(I.AUTO_MODERATION_CONFIGURATION));
  set('AUTO_MODERATION_ACTION_EXECUTION', g(I.AUTO_MODERATION_EXECUTION));
  set('MESSAGE_POLL_VOTE_ADD MESSAGE_POLL_VOTE_REMOVE', g(I.GUILD_MESSAGE_POLLS, I.DIRECT_MESSAGE_POLLS));
  return t;
})();

function field(d: unknown, key: string): unknown {
  return d !== null && typeof d === 'object' ? (d as Record<string, unknown>)[key] : undefined;
}

/** Whether a session with `intents` receives dispatch `t` with data `d` (guild context = `d.guild_id` present). */
export function dispatchAllowed(t: string, d: unknown, intents: number, guildContext?: boolean): boolean {
  const gate = GATES[t];
  if (!gate) return true; // ungated or unknown event
  if (t === 'GUILD_MEMBER_UPDATE' && field(field(d, 'user'), 'id') === BOT_USER_ID) return true;
  const inGuild = guildContext ?? (field(d, 'guild_id') != null || t.startsWith('GUILD_'));
  return (intents & (inGuild ? gate[0] : gate[1])) !== 0;
}

/** True when MESSAGE_CONTENT stripping may apply to `t` for these intents. */
export function needsContentStrip(t: string, intents: number): boolean {
  return (t === 'MESSAGE_CREATE' || t === 'MESSAGE_UPDATE') && (intents & I.MESSAGE_CONTENT) === 0;
}

/**
 * §5.2: without MESSAGE_CONTENT, guild messages lose content/embeds/attachments/components/poll unless the bot
 * wrote them or is mentioned. Returns `d` unchanged when nothing is stripped, else a shallow copy.
 */
export function stripMessageContent(d: unknown): unknown {
  if (d === null || typeof d !== 'object') return d;
  const m = d as Record<string, unknown>;
  if (m.guild_id == null) return d; // DM
  if (field(m.author, 'id') === BOT_USER_ID) return d;
  if (Array.isArray(m.mentions) && m.mentions.some((u) => field(u, 'id') === BOT_USER_ID)) return d;
  const copy: Record<string, unknown> = { ...m, content: '', embeds: [], attachments: [], components: [] };
  delete copy.poll;
  return copy;
}
