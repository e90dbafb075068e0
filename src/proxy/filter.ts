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
