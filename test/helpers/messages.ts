import { buildGuildCreate } from '../../src/simulator/index.js';

/**
 * A MESSAGE_CREATE `d` in the first text channel of the simulator's guild `guildId` (a channel discord.js has
 * cached from that guild's GUILD_CREATE), with content `m<n>` and an id that grows with `n`.
 */
export function textMessage(guildId: string, n: number): Record<string, unknown> {
  const channel = (buildGuildCreate(guildId).channels as { id: string; type: number }[]).find((c) => c.type === 0)!;
  return {
    id: String(1_300_000_000_000_000_000n + BigInt(n)),
    channel_id: channel.id,
    guild_id: guildId,
    author: { id: '222222222222222222', username: 'tester', discriminator: '0', global_name: 'Tester', avatar: null },
    content: `m${n}`,
    timestamp: new Date(1_700_000_000_000 + n).toISOString(),
    edited_timestamp: null,
    tts: false,
    mention_everyone: false,
    mentions: [],
    mention_roles: [],
    attachments: [],
    embeds: [],
    pinned: false,
    type: 0,
  };
}
