/**
 * Discord-shaped REST objects of the simulated bot: users, the application, guilds, members, channels and
 * messages, derived from the same fixtures as the gateway's GUILD_CREATEs (so ids agree between REST and gateway).
 * @packageDocumentation
 */
import { BOT_APPLICATION, BOT_USER, BOT_USER_ID, buildGuildCreate, buildMember, memberUserId, snowflake, snowflakeTime } from './fixtures.js';

type Obj = Record<string, unknown>;

/** Fields of a user object that only the user itself sees (`/users/@me`). */
const PRIVATE_USER_FIELDS = ['email', 'verified', 'mfa_enabled', 'locale', 'premium_type'];

/** The bot user as other users see it (message authors, `/users/{id}`). */
export function publicBotUser(): Obj {
  const u: Obj = { ...BOT_USER };
  for (const k of PRIVATE_USER_FIELDS) delete u[k];
  return u;
}

/** `GET /users/@me`: the bot user with its private fields. */
export function currentUser(): Obj {
  return { ...BOT_USER, locale: 'en-US', premium_type: 0 };
}

/** Application flags for the privileged intents the application has enabled. */
const GATEWAY_PRESENCE = 1 << 12;
const GATEWAY_GUILD_MEMBERS = 1 << 14;
const GATEWAY_MESSAGE_CONTENT = 1 << 18;
const GATEWAY_FLAGS = GATEWAY_PRESENCE | GATEWAY_GUILD_MEMBERS | GATEWAY_MESSAGE_CONTENT | (1 << 13) | (1 << 15) | (1 << 19);

/** Application `flags` for `applicationIntents` (GUILD_PRESENCES / GUILD_MEMBERS / MESSAGE_CONTENT bits). */
export function applicationFlags(applicationIntents: number): number {
  let flags = (BOT_APPLICATION.flags as number) & ~GATEWAY_FLAGS;
  if (applicationIntents & (1 << 8)) flags |= GATEWAY_PRESENCE;
  if (applicationIntents & (1 << 1)) flags |= GATEWAY_GUILD_MEMBERS;
  if (applicationIntents & (1 << 15)) flags |= GATEWAY_MESSAGE_CONTENT;
  return flags;
}

/** `GET /applications/@me` and `/oauth2/applications/@me`. */
export function application(applicationIntents: number, guildCount: number): Obj {
  const owner = { id: snowflake(snowflakeTime(BOT_USER_ID) - 86_400_000, 1, 2), username: 'sim-owner', discriminator: '0', global_name: 'Simulator Owner', avatar: null, public_flags: 0, flags: 0 };
  return {
    id: BOT_USER_ID,
    name: BOT_USER.username,
    icon: null,
    description: 'A bot on the shardline gateway simulator.',
    summary: '',
    type: null,
    hook: true,
    bot_public: true,
    bot_require_code_grant: false,
    verify_key: '5f1c2b0d9a0e4c7a8b6d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b',
    flags: applicationFlags(applicationIntents),
    owner,
    team: null,
    is_monetized: false,
    is_verified: false,
    is_discoverable: false,
    redirect_uris: [],
    interactions_endpoint_url: null,
    role_connections_verification_url: null,
    tags: [],
    integration_types_config: { '0': {} },
    approximate_guild_count: guildCount,
    approximate_user_install_count: 0,
    bot: publicBotUser(),
  };
}

/** Fields of GUILD_CREATE that the REST guild object does not have. */
const GATEWAY_ONLY_GUILD_FIELDS = [
  'joined_at',
  'large',
  'unavailable',
  'member_count',
  'voice_states',
  'members',
  'channels',
  'threads',
  'presences',
  'stage_instances',
  'guild_scheduled_events',
  'soundboard_sounds',
];

/** `GET /guilds/{id}` for a guild of the bot (`index` = its position, which names it as in GUILD_CREATE). */
export function restGuild(guildId: string, index: number, memberCount: number, withCounts: boolean): Obj {
  const g: Obj = buildGuildCreate(guildId, index, { memberCount });
  for (const k of GATEWAY_ONLY_GUILD_FIELDS) delete g[k];
  if (withCounts) {
    g.approximate_member_count = memberCount;
    g.approximate_presence_count = Math.floor(memberCount / 3);
  }
  return g;
}

const channelCache = new Map<string, readonly Obj[]>();

/** Channels of a guild as REST returns them (with `guild_id`). */
export function guildChannels(guildId: string): readonly Obj[] {
  let list = channelCache.get(guildId);
  if (!list) {
    list = (buildGuildCreate(guildId).channels as Obj[]).map((c) => Object.freeze({ ...c, guild_id: guildId }));
    if (channelCache.size >= 1000) channelCache.clear();
    channelCache.set(guildId, list);
  }
  return list;
}

/** Index of member `userId` in a guild of `memberCount` members (0 is the bot), or -1. */
export function memberIndex(guildId: string, userId: string, memberCount: number): number {
  if (userId === BOT_USER_ID) return 0;
  const idx = snowflakeTime(userId) - snowflakeTime(guildId) - 1000;
  return idx >= 1 && idx < memberCount && memberUserId(guildId, idx) === userId ? idx : -1;
}

/** `GET /guilds/{id}/members/{user}` for member `index`. */
export function restMember(guildId: string, index: number): Obj {
  return buildMember(guildId, index);
}

/** Channel types a message can be sent to (text, announcement, voice, threads, stage). */
const MESSAGE_CHANNEL_TYPES = new Set([0, 2, 5, 10, 11, 12, 13]);

/** Whether messages can be sent to a channel of this type. */
export function acceptsMessages(channel: Obj): boolean {
  return MESSAGE_CHANNEL_TYPES.has(channel.type as number);
}

let messageIncrement = 0;

/** The message a `POST /channels/{id}/messages` body creates, as the REST answer shows it (no `guild_id`). */
export function buildMessage(channelId: string, body: Obj): Obj {
  const ref = body.message_reference as Obj | undefined;
  const msg: Obj = {
    type: ref ? 19 : 0,
    content: typeof body.content === 'string' ? body.content : '',
    mentions: [],
    mention_roles: [],
    attachments: [],
    embeds: Array.isArray(body.embeds) ? body.embeds : [],
    timestamp: new Date().toISOString().replace('Z', '000+00:00'),
    edited_timestamp: null,
    flags: typeof body.flags === 'number' ? body.flags : 0,
    components: Array.isArray(body.components) ? body.components : [],
    id: snowflake(Date.now(), messageIncrement++ & 4095, 4),
    channel_id: channelId,
    author: publicBotUser(),
    pinned: false,
    mention_everyone: false,
    tts: body.tts === true,
  };
  if (body.nonce !== undefined && body.nonce !== null) msg.nonce = body.nonce;
  if (ref) {
    msg.message_reference = { type: 0, channel_id: ref.channel_id ?? channelId, message_id: ref.message_id, ...(ref.guild_id ? { guild_id: ref.guild_id } : {}) };
    msg.referenced_message = null;
  }
  if (body.poll !== undefined) msg.poll = body.poll;
  return msg;
}

/** The MESSAGE_CREATE `d` for a message the bot created in a guild channel: `guild_id` and the bot's `member`. */
export function messageCreateEvent(message: Obj, guildId: string): Obj {
  const { user: _user, ...member } = buildMember(guildId, 0) as Obj;
  return { ...message, guild_id: guildId, member };
}
