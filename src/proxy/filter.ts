/**
 * Which dispatches a downstream client receives: Discord's intent gating, applied by the proxy to the one upstream
 * stream (the upstream shards run with the union of what clients may ask for).
 * @packageDocumentation
 */
import { Intents, intentsForEvent } from '../intents.js';

const GUILD_OR_DM: Record<string, [guild: number, dm: number]> = {
  MESSAGE_CREATE: [Intents.GuildMessages, Intents.DirectMessages],
  MESSAGE_UPDATE: [Intents.GuildMessages, Intents.DirectMessages],
  MESSAGE_DELETE: [Intents.GuildMessages, Intents.DirectMessages],
  MESSAGE_REACTION_ADD: [Intents.GuildMessageReactions, Intents.DirectMessageReactions],
  MESSAGE_REACTION_REMOVE: [Intents.GuildMessageReactions, Intents.DirectMessageReactions],
  MESSAGE_REACTION_REMOVE_ALL: [Intents.GuildMessageReactions, Intents.DirectMessageReactions],
  MESSAGE_REACTION_REMOVE_EMOJI: [Intents.GuildMessageReactions, Intents.DirectMessageReactions],
  TYPING_START: [Intents.GuildMessageTyping, Intents.DirectMessageTyping],
  CHANNEL_PINS_UPDATE: [Intents.Guilds, Intents.DirectMessages],
  MESSAGE_POLL_VOTE_ADD: [Intents.GuildMessagePolls, Intents.DirectMessagePolls],
  MESSAGE_POLL_VOTE_REMOVE: [Intents.GuildMessagePolls, Intents.DirectMessagePolls],
};

/**
 * True when a client that identified with `intents` receives a dispatch of `type` whose `d` is the JSON text `d`.
 * Events no intent gates (READY, INTERACTION_CREATE, unknown types) always pass. Events with a guild and a DM form
 * pass when the client has the intent of the form this one is: a `"guild_id"` key in the text means the guild form
 * (only looked at when the client has exactly one of the two intents).
 */
export function wants(intents: number, type: string, d: string): boolean {
  const bits = intentsForEvent(type);
  if (bits === 0) return true;
  if ((bits & intents) === 0) return false;
  const pair = GUILD_OR_DM[type];
  if (pair === undefined) return true;
  const hasGuild = (intents & pair[0]) !== 0;
  const hasDm = (intents & pair[1]) !== 0;
  if (hasGuild === hasDm) return true;
  const guildForm = d.includes('"guild_id":"');
  return guildForm ? hasGuild : hasDm;
}

/** Dispatches whose message fields MessageContent controls. */
const CONTENT_EVENTS = new Set(['MESSAGE_CREATE', 'MESSAGE_UPDATE', 'AUTO_MODERATION_ACTION_EXECUTION']);

/** True when a client with `intents` must get `type` without message content while the upstream receives it. */
export function stripsContent(intents: number, upstreamIntents: number): boolean {
  return (intents & Intents.MessageContent) === 0 && (upstreamIntents & Intents.MessageContent) !== 0;
}

/** True when `type` carries fields MessageContent controls. */
export function carriesContent(type: string): boolean {
  return CONTENT_EVENTS.has(type);
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const idOf = (v: unknown): unknown => (isObject(v) ? v.id : undefined);

/** Empty what MessageContent controls in one message object; true when something changed. */
function emptyMessage(m: Json): boolean {
  let changed = false;
  if (typeof m.content === 'string' && m.content !== '') {
    m.content = '';
    changed = true;
  }
  for (const k of ['embeds', 'attachments', 'components'] as const) {
    const v = m[k];
    if (Array.isArray(v) && v.length !== 0) {
      m[k] = [];
      changed = true;
    }
  }
  if ('poll' in m) {
    delete m.poll;
    changed = true;
  }
  return changed;
}

/**
 * Discord's MessageContent rule (gateway spec §5.2) for a message without the intent: `content`, `embeds`,
 * `attachments` and `components` empty and no `poll`, except in DMs (no `guild_id`), in the bot's own messages and in
 * messages that mention the bot. The replied-to message (`referenced_message`, by its own author) and forwarded
 * snapshots (`message_snapshots`) follow the same rule. Mutates `m`; true when something changed.
 */
function stripMessage(m: Json, botId: string | null, inGuild: boolean): boolean {
  if (!inGuild) return false;
  if (botId !== null && idOf(m.author) === botId) return false;
  if (botId !== null && Array.isArray(m.mentions) && m.mentions.some((u) => idOf(u) === botId)) return false;
  let changed = emptyMessage(m);
  if (isObject(m.referenced_message)) changed = stripMessage(m.referenced_message, botId, true) || changed;
  if (Array.isArray(m.message_snapshots)) for (const s of m.message_snapshots) if (isObject(s) && isObject(s.message)) changed = emptyMessage(s.message) || changed;
  return changed;
}

/**
 * The `d` a client without MessageContent receives, for the dispatches {@link carriesContent} names: the same text
 * when nothing is stripped (a DM, the bot's own message, a mention of the bot, nothing to empty), else the text of a
 * stripped copy. AUTO_MODERATION_ACTION_EXECUTION loses `content` and `matched_content`. The last result is kept, so
 * several such clients (and their replays) parse and serialise each dispatch once.
 *
 * @example
 * ```ts
 * const strip = new ContentStripper();
 * strip.botId = '1000';
 * strip.d('MESSAGE_CREATE', '{"guild_id":"1","content":"hi","author":{"id":"2"}}'); // '{"guild_id":"1","content":"","author":{"id":"2"}}'
 * ```
 */
export class ContentStripper {
  /** The bot's user id (messages by or mentioning it keep their content); null until the upstream READY. */
  botId: string | null = null;
  private lastIn: string | null = null;
  private lastType = '';
  private lastOut = '';

  d(type: string, d: string): string {
    if (d === this.lastIn && type === this.lastType) return this.lastOut;
    let out = d;
    try {
      const m = JSON.parse(d) as unknown;
      if (isObject(m)) {
        if (type === 'AUTO_MODERATION_ACTION_EXECUTION') {
          let changed = false;
          for (const k of ['content', 'matched_content'] as const) {
            if (typeof m[k] === 'string' && m[k] !== '') {
              m[k] = '';
              changed = true;
            }
          }
          if (changed) out = JSON.stringify(m);
        } else if (stripMessage(m, this.botId, m.guild_id !== undefined && m.guild_id !== null)) {
          out = JSON.stringify(m);
        }
      }
    } catch {
      // not JSON: forwarded as it came (the upstream text was checked when it arrived)
    }
    this.lastIn = d;
    this.lastType = type;
    this.lastOut = out;
    return out;
  }
}
