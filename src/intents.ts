/**
 * Gateway intents: which groups of events the gateway sends to a shard.
 *
 * @example
 * ```ts
 * import { Intents, intentsForEvents } from 'shardline';
 * const intents = Intents.Guilds | Intents.GuildMessages | Intents.MessageContent;
 * intentsForEvents(['MESSAGE_CREATE', 'TYPING_START']); // GuildMessages | DirectMessages | GuildMessageTyping | DirectMessageTyping
 * ```
 */
export const Intents = {
  Guilds: 1 << 0,
  GuildMembers: 1 << 1,
  GuildModeration: 1 << 2,
  GuildExpressions: 1 << 3,
  GuildIntegrations: 1 << 4,
  GuildWebhooks: 1 << 5,
  GuildInvites: 1 << 6,
  GuildVoiceStates: 1 << 7,
  GuildPresences: 1 << 8,
  GuildMessages: 1 << 9,
  GuildMessageReactions: 1 << 10,
  GuildMessageTyping: 1 << 11,
  DirectMessages: 1 << 12,
  DirectMessageReactions: 1 << 13,
  DirectMessageTyping: 1 << 14,
  MessageContent: 1 << 15,
  GuildScheduledEvents: 1 << 16,
  AutoModerationConfiguration: 1 << 20,
  AutoModerationExecution: 1 << 21,
  GuildMessagePolls: 1 << 24,
  DirectMessagePolls: 1 << 25,
} as const;

export type IntentName = keyof typeof Intents;

/** The intents Discord calls privileged: they must be enabled in the Developer Portal. */
export const PrivilegedIntents = Intents.GuildMembers | Intents.GuildPresences | Intents.MessageContent;

/** Every documented intent (53608447). */
export const AllIntents = Object.values(Intents).reduce((a, b) => a | b, 0);

/** Every documented intent that is not privileged (53575421). */
export const AllNonPrivilegedIntents = AllIntents & ~PrivilegedIntents;

const I = Intents;
/** Which intents make the gateway send each dispatch type (guild context and DM context combined). */
const EVENT_INTENTS: Record<string, number> = {};
function gate(intents: number, ...events: string[]) {
  for (const e of events) EVENT_INTENTS[e] = (EVENT_INTENTS[e] ?? 0) | intents;
}
gate(
  I.Guilds,
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
  'THREAD_MEMBER_UPDATE',
  'THREAD_MEMBERS_UPDATE',
  'STAGE_INSTANCE_CREATE',
  'STAGE_INSTANCE_UPDATE',
  'STAGE_INSTANCE_DELETE',
  'VOICE_CHANNEL_STATUS_UPDATE',
  'VOICE_CHANNEL_START_TIME_UPDATE',
);
gate(I.Guilds | I.DirectMessages, 'CHANNEL_PINS_UPDATE');
gate(I.GuildMembers, 'GUILD_MEMBER_ADD', 'GUILD_MEMBER_UPDATE', 'GUILD_MEMBER_REMOVE');
gate(I.GuildModeration, 'GUILD_AUDIT_LOG_ENTRY_CREATE', 'GUILD_BAN_ADD', 'GUILD_BAN_REMOVE');
gate(
  I.GuildExpressions,
  'GUILD_EMOJIS_UPDATE',
  'GUILD_STICKERS_UPDATE',
  'GUILD_SOUNDBOARD_SOUND_CREATE',
  'GUILD_SOUNDBOARD_SOUND_UPDATE',
  'GUILD_SOUNDBOARD_SOUND_DELETE',
  'GUILD_SOUNDBOARD_SOUNDS_UPDATE',
);
gate(I.GuildIntegrations, 'GUILD_INTEGRATIONS_UPDATE', 'INTEGRATION_CREATE', 'INTEGRATION_UPDATE', 'INTEGRATION_DELETE');
gate(I.GuildWebhooks, 'WEBHOOKS_UPDATE');
gate(I.GuildInvites, 'INVITE_CREATE', 'INVITE_DELETE');
gate(I.GuildVoiceStates, 'VOICE_STATE_UPDATE', 'VOICE_CHANNEL_EFFECT_SEND');
gate(I.GuildPresences, 'PRESENCE_UPDATE');
gate(I.GuildMessages | I.DirectMessages, 'MESSAGE_CREATE', 'MESSAGE_UPDATE', 'MESSAGE_DELETE');
gate(I.GuildMessages, 'MESSAGE_DELETE_BULK');
gate(I.GuildMessageReactions | I.DirectMessageReactions, 'MESSAGE_REACTION_ADD', 'MESSAGE_REACTION_REMOVE', 'MESSAGE_REACTION_REMOVE_ALL', 'MESSAGE_REACTION_REMOVE_EMOJI');
gate(I.GuildMessageTyping | I.DirectMessageTyping, 'TYPING_START');
gate(I.GuildScheduledEvents, 'GUILD_SCHEDULED_EVENT_CREATE', 'GUILD_SCHEDULED_EVENT_UPDATE', 'GUILD_SCHEDULED_EVENT_DELETE', 'GUILD_SCHEDULED_EVENT_USER_ADD', 'GUILD_SCHEDULED_EVENT_USER_REMOVE');
gate(I.AutoModerationConfiguration, 'AUTO_MODERATION_RULE_CREATE', 'AUTO_MODERATION_RULE_UPDATE', 'AUTO_MODERATION_RULE_DELETE');
gate(I.AutoModerationExecution, 'AUTO_MODERATION_ACTION_EXECUTION');
gate(I.GuildMessagePolls | I.DirectMessagePolls, 'MESSAGE_POLL_VOTE_ADD', 'MESSAGE_POLL_VOTE_REMOVE');

/**
 * The intent bits that gate a dispatch type, or 0 when the event is always sent (READY, INTERACTION_CREATE, ...)
 * or unknown. Where an event has a guild and a DM form, both intents are returned.
 */
export function intentsForEvent(type: string): number {
  return EVENT_INTENTS[type] ?? 0;
}

/**
 * The intents needed to receive every event in `types` (guild and DM forms). Privileged intents appear only
 * where an event needs one (e.g. `PRESENCE_UPDATE` → `GuildPresences`). `MessageContent` is never implied:
 * it controls message fields, not events.
 */
export function intentsForEvents(types: Iterable<string>): number {
  let bits = 0;
  for (const t of types) bits |= intentsForEvent(t);
  return bits;
}

/** Names of the intents set in `bits` (undocumented bits are listed as `bit N`). */
export function intentNames(bits: number): string[] {
  const names: string[] = [];
  for (const [name, bit] of Object.entries(Intents)) if (bits & bit) names.push(name);
  for (let i = 0; i < 31; i++) if (bits & (1 << i) && !(AllIntents & (1 << i))) names.push(`bit ${i}`);
  return names;
}

/** The dispatch types in `events` that need an intent missing from `intents` (each with the bits it needs): they will never arrive. */
export function uncoveredEvents(events: Iterable<string>, intents: number): Array<[event: string, need: number]> {
  const out: Array<[string, number]> = [];
  for (const t of events) {
    const need = intentsForEvent(t);
    if (need !== 0 && (need & intents) === 0) out.push([t, need]);
  }
  return out;
}
