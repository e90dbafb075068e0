/**
 * {@link ShardStream}: what the proxy holds for one upstream shard — its guild ids, its replay ring, the clients
 * attached to it, and the upstream session (for persistence).
 * @packageDocumentation
 */
import type { Session } from '../session.js';
import type { ClientConnection } from './client-conn.js';
import { ReplayRing } from './replay.js';

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

  /** Start from a ring read back from Redis: `entries` (oldest first) end at position `newest`. */
  restoreRing(newest: number, entries: { type: string; d: string }[]): void {
    const ring = new ReplayRing(this.ring.capacity, newest - entries.length + 1);
    for (const e of entries) ring.push(e.type, e.d);
    this.ring = ring;
  }
}
