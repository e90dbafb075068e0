/**
 * Guild commands at the cluster level: the types of `cluster.requestGuildMembers()` / `updateVoiceState()` /
 * `requestSoundboardSounds()`, the hook that carries commands to shards another process runs
 * ({@link RemoteCommands}), and the pure helpers the cluster routes them with.
 * @packageDocumentation
 */
import type { GatewayRequestGuildMembersData, GatewayRequestGuildMembersDataWithQuery, GatewayRequestGuildMembersDataWithUserIds, GatewayVoiceStateUpdateData } from 'discord-api-types/v10';
import type { Clock } from './clock.js';
import type { GatewayCommand } from './cluster-status.js';
import { ShardlineError } from './errors.js';
import { MemberRequest } from './members.js';

/**
 * What to ask for in `cluster.requestGuildMembers(guildId, options)`: the fields of a Request Guild Members (op 8)
 * besides `guild_id` — `{ query, limit }` or `{ user_ids }`, and `presences`, `nonce`. Default `{ query: '', limit: 0 }`:
 * every member (needs the GuildMembers intent).
 */
export type MemberRequestOptions = Omit<GatewayRequestGuildMembersDataWithQuery, 'guild_id'> | Omit<GatewayRequestGuildMembersDataWithUserIds, 'guild_id'>;

/** The fields of a Voice State Update (op 4) besides `guild_id`: `{ channel_id, self_mute, self_deaf }`. */
export type VoiceStateOptions = Omit<GatewayVoiceStateUpdateData, 'guild_id'>;

/** A member request with its nonce chosen (the cluster picks one when the caller did not). */
export type NoncedMemberRequest = GatewayRequestGuildMembersData & { nonce: string };

/**
 * Carries commands for shards this cluster does not run (`shards: { ids, total }`: other processes run the rest)
 * to the process that does. `ClusterOptions.remoteCommands`; `NatsBroker.remoteCommands()` implements it over NATS.
 */
export interface RemoteCommands {
  /** Send a command on shard `shardId` of another process; resolves once it was sent there. */
  send(shardId: number, payload: GatewayCommand): Promise<unknown>;
  /** Request guild members on shard `shardId` of another process; its chunks come back to the caller. */
  requestGuildMembers(shardId: number, request: NoncedMemberRequest): MemberRequest;
}

/** The full op 8 payload of `requestGuildMembers(guildId | request, options)`. */
export function memberRequestData(guild: string | bigint | GatewayRequestGuildMembersData, options?: MemberRequestOptions): GatewayRequestGuildMembersData {
  if (typeof guild === 'object' && guild !== null) return guild;
  const o = (options ?? {}) as Partial<GatewayRequestGuildMembersData>;
  const selector = 'user_ids' in o || 'query' in o ? {} : { query: '', limit: 0 };
  return { ...selector, ...o, guild_id: String(guild) } as GatewayRequestGuildMembersData;
}

/** The full op 4 payload of `updateVoiceState(guildId | state, options)`. */
export function voiceStateData(guild: string | bigint | GatewayVoiceStateUpdateData, options?: VoiceStateOptions): GatewayVoiceStateUpdateData {
  if (typeof guild === 'object' && guild !== null) return guild;
  if (!options) throw new ShardlineError('INVALID_OPTION', 'updateVoiceState(guildId, { channel_id, self_mute, self_deaf }): the voice state is missing');
  return { ...options, guild_id: String(guild) };
}

/** Group guild ids by the shard that owns them (`shardIdFor`), keeping each group's order. */
export function byShard(guildIds: Iterable<string>, shardIdFor: (guildId: string) => number): Map<number, string[]> {
  const groups = new Map<number, string[]>();
  for (const g of guildIds) {
    const id = shardIdFor(g);
    const list = groups.get(id);
    if (list) list.push(g);
    else groups.set(id, [g]);
  }
  return groups;
}

/** A member request that failed before it was sent (bad guild id, a shard nobody runs, ...): awaiting it rejects. */
export function failedMemberRequest(nonce: string, clock: Clock, error: Error): MemberRequest {
  const req = new MemberRequest(nonce, clock, 1, () => undefined);
  req.fail(error);
  return req;
}

/**
 * Settle every promise; reject with one error naming how many of them failed (`code`), the first failure as cause.
 * `what` describes one call, e.g. `presence`.
 */
export async function allOrReport(calls: { shardId: number; run: () => Promise<unknown> }[], code: string, what: string): Promise<void> {
  const results = await Promise.allSettled(
    calls.map((c) => {
      try {
        return c.run();
      } catch (err) {
        return Promise.reject(err);
      }
    }),
  );
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [{ id: calls[i]!.shardId, err: r.reason as Error }] : []));
  if (failed.length > 0) {
    throw new ShardlineError(code, `${what} not sent on ${failed.length} of ${calls.length} shards (shard ${failed[0]!.id}: ${failed[0]!.err?.message ?? String(failed[0]!.err)})`, {
      cause: failed[0]!.err,
    });
  }
}
