/**
 * {@link ShardStream}: what the proxy holds for one upstream shard — its guild ids, its replay ring, the clients
 * attached to it, and the upstream session (for persistence).
 * @packageDocumentation
 */
import type { Session } from '../session.js';
import type { ClientConnection } from './client-conn.js';
import type { GuildCache } from './cache.js';
import { guildRef, ReplayRing } from './replay.js';

/** One upstream shard as the proxy sees it. */
export class ShardStream {
  /** Replaced once by {@link restoreRing} at start-up, before any dispatch. */
  ring: ReplayRing;
  /** The shard's guilds: READY's list, plus GUILD_CREATEs, minus GUILD_DELETEs (not unavailable ones). */
  readonly guilds = new Set<string>();
  readonly clients = new Set<ClientConnection>();
  /** The upstream session and the sequence of the last dispatch applied (what a restarted proxy resumes). */
  session: Session | null = null;
  /** Commands forwarded upstream for this shard's clients. */
  commands = 0;

  constructor(
    readonly id: number,
    replaySize: number,
  ) {
    this.ring = new ReplayRing(replaySize);
  }

  /**
   * Push one dispatch (already applied to `cache`) to the ring; returns its position. A GUILD_CREATE of a guild the
   * cache now holds is kept as a reference (`{"id":…}`, ~30 bytes instead of the guild's JSON): a replay builds it
   * from the cache then (`expandRef`), i.e. the guild's state at replay time, which the later entries for it in the
   * ring bring again (applying them twice is harmless: they set, merge or delete). `parsed` is `d` parsed, when it was.
   */
  record(type: string, d: string, parsed: unknown, cache: GuildCache): number {
    if (type === 'GUILD_CREATE') {
      const id = ((parsed ?? JSON.parse(d)) as { id?: unknown } | null)?.id;
      if (typeof id === 'string' && cache.has(id)) return this.ring.pushRef(type, guildRef(id));
    }
    return this.ring.push(type, d);
  }

  /** Start from a ring read back from Redis: `entries` (oldest first) end at position `newest`. */
  restoreRing(newest: number, entries: { type: string; d: string; ref?: boolean }[]): void {
    const ring = new ReplayRing(this.ring.capacity, newest - entries.length + 1);
    for (const e of entries) {
      if (e.ref === true) ring.pushRef(e.type, e.d);
      else ring.push(e.type, e.d);
    }
    this.ring = ring;
  }
}
