/**
 * The guild wait after READY: the guilds READY listed as unavailable until their GUILD_CREATE arrives, for the
 * `guildsReady` signal. Allocated only while guilds load (an idle shard pays one null field); the `guilds` timer
 * counts {@link GUILDS_TIMEOUT} from the last awaited GUILD_CREATE. The core (`src/shard-core.ts`) arms the timer
 * and emits the event; this file holds the bookkeeping.
 *
 * @packageDocumentation
 */
import type { GatewayReadyDispatchData } from 'discord-api-types/v10';
import { parsePayload } from './decode.js';

/** Default ms without an awaited GUILD_CREATE after which `guildsReady` is emitted with the missing ids. */
export const GUILDS_TIMEOUT = 15_000;

/** The ids READY listed as unavailable whose GUILD_CREATE has not arrived, and the virtual time of the last awaited one. */
export class GuildWait {
  readonly ids: Set<string>;
  at: number;

  constructor(ids: Set<string>, at: number) {
    this.ids = ids;
    this.at = at;
  }

  /** A GUILD_CREATE for `id` arrived at `now`: true when it was the last one awaited. */
  arrived(id: unknown, now: number): boolean {
    if (typeof id !== 'string' || !this.ids.delete(id)) return false;
    this.at = now;
    return this.ids.size === 0;
  }
}

/** The guilds READY lists, and the ids among them listed as unavailable (null when none: nothing to wait for). */
export function readyGuilds(d: GatewayReadyDispatchData): { count: number; unavailable: Set<string> | null } {
  const list = Array.isArray(d?.guilds) ? d.guilds : [];
  let ids: Set<string> | null = null;
  for (const g of list) if (g && g.unavailable === true && typeof g.id === 'string') (ids ??= new Set()).add(g.id);
  return { count: list.length, unavailable: ids };
}

/** The `id` of a GUILD_CREATE that is not parsed otherwise (filtered out or forwarded raw): parsed only while guilds load. */
export function guildIdOf(bytes: Uint8Array): unknown {
  try {
    return (parsePayload(bytes).d as { id?: unknown } | null)?.id;
  } catch {
    return undefined; // a broken GUILD_CREATE counts as missing; the delivery path reports it where it is parsed
  }
}
