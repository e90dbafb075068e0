/**
 * Where a cluster's gateway command goes: the shard that owns a guild (`(guild_id >> 22) % total`), then the
 * running set when it runs that shard (in this thread or a worker thread), `remoteCommands` when another process
 * does, and otherwise a clear error. Fan-outs (presence, soundboard) try every shard and report the failures once.
 * @packageDocumentation
 */
import type { GatewayRequestGuildMembersData, GatewayVoiceStateUpdateData } from 'discord-api-types/v10';
import type { Clock } from './clock.js';
import { allOrReport, byShard, failedMemberRequest, memberRequestData, voiceStateData, type GuildMembersQuery, type RemoteCommands, type VoiceStateOptions } from './cluster-commands.js';
import type { GatewayCommand } from './cluster-status.js';
import { ShardlineError } from './errors.js';
import type { PresenceData } from './events.js';
import type { MemberRequest } from './members.js';
import type { Placement } from './placement.js';

/** What routing reads of the cluster. */
export interface CommandRouterHost {
  readonly clock: Clock;
  /** `ClusterOptions.remoteCommands`: the shards other processes run. */
  readonly remote: RemoteCommands | undefined;
  /** The running set (null until `connect()` created the shards). */
  running(): Placement | null;
  /** Shard count of the bot (null: not known yet) and the ids this cluster runs. */
  total(): number | null;
  ids(): readonly number[];
  closed(): boolean;
}

/** Routes the cluster's commands; the cluster's public methods of the same names call it. */
export class CommandRouter {
  readonly #host: CommandRouterHost;
  /** Member request nonces made here. */
  #nonces = 0;

  constructor(host: CommandRouterHost) {
    this.#host = host;
  }

  /** The shard that receives a guild's events: `(guild_id >> 22) % total`, computed exactly with BigInt. */
  shardIdFor(guildId: string | bigint): number {
    const total = this.#host.total();
    if (total === null) throw new ShardlineError('NOT_STARTED', 'the shard count is not known yet: connect() first or pass shards');
    let id: bigint;
    try {
      id = BigInt(guildId);
    } catch {
      throw new ShardlineError('INVALID_SNOWFLAKE', `not a snowflake: ${String(guildId).slice(0, 40)}`);
    }
    if (id < 0n) throw new ShardlineError('INVALID_SNOWFLAKE', `not a snowflake: ${String(guildId)}`);
    return Number((id >> 22n) % BigInt(total));
  }

  /** The running set, when it runs shard `id` (throws `NOT_STARTED` / `UNKNOWN_SHARD` otherwise). */
  route(id: number): Placement {
    const set = this.#host.running();
    if (set?.owner(id)) return set;
    const ids = this.#host.ids();
    if (ids.includes(id)) throw new ShardlineError('NOT_STARTED', `shard ${id} has not been created yet: call connect() first`);
    throw new ShardlineError('UNKNOWN_SHARD', `shard ${id} is not part of this cluster (ids ${describeIds(ids)})`);
  }

  /** Send a command on one shard of this cluster (routed to the thread that owns it). */
  send(shardId: number, payload: GatewayCommand): Promise<void> {
    try {
      return this.route(shardId).send(shardId, payload);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Op 3 on every running shard of this cluster and, with `remoteCommands`, on the bot's other shards; `PRESENCE_FAILED` when some failed. */
  async updatePresence(presence: PresenceData): Promise<void> {
    const set = this.#host.running();
    const own = this.#host.ids();
    const ids = own.filter((id) => set && set.state(id) !== 'fatal' && set.state(id) !== 'closed');
    const calls = ids.map((id) => ({ shardId: id, run: () => this.send(id, { op: 3, d: presence }) }));
    const remote = this.#host.remote;
    const total = this.#host.total();
    if (remote && total !== null) {
      for (let id = 0; id < total; id++) if (!own.includes(id)) calls.push({ shardId: id, run: () => remote.send(id, { op: 3, d: presence }).then(() => undefined) });
    }
    await allOrReport(calls, 'PRESENCE_FAILED', 'presence');
  }

  /** Op 8 on the shard that owns the guild, wherever it runs; a failure before sending rejects the returned request. */
  requestGuildMembers(guild: string | bigint | GatewayRequestGuildMembersData, options?: GuildMembersQuery): MemberRequest {
    const { clock } = this.#host;
    const request = memberRequestData(guild, options);
    let shardId = -1;
    try {
      if (this.#host.closed()) throw new ShardlineError('CLUSTER_CLOSED', 'the cluster is closed');
      shardId = this.shardIdFor(request.guild_id);
    } catch (err) {
      return failedMemberRequest(request.nonce ?? 'unsent', clock, err as Error);
    }
    const nonce = request.nonce ?? `c${shardId.toString(36)}-${(this.#nonces++).toString(36)}-${Date.now().toString(36)}`;
    const sent = { ...request, nonce };
    const set = this.#host.running();
    if (set?.owner(shardId)) return set.requestGuildMembers(shardId, sent);
    const remote = this.#host.remote;
    if (remote && !this.#host.ids().includes(shardId)) return remote.requestGuildMembers(shardId, sent);
    try {
      this.route(shardId);
      throw new ShardlineError('UNKNOWN_SHARD', `shard ${shardId} is not running`);
    } catch (err) {
      return failedMemberRequest(nonce, clock, err as Error);
    }
  }

  /** Op 4 through the shard that owns the guild, wherever it runs. */
  async updateVoiceState(guild: string | bigint | GatewayVoiceStateUpdateData, state?: VoiceStateOptions): Promise<void> {
    const d = voiceStateData(guild, state);
    await this.sendRouted(this.shardIdFor(d.guild_id), { op: 4, d });
  }

  /** Op 31 per shard, each for the guilds it owns; `SOUNDBOARD_FAILED` when some could not send. */
  async requestSoundboardSounds(guildIds: Iterable<string>): Promise<void> {
    const groups = byShard(guildIds, (g) => this.shardIdFor(g));
    const calls = [...groups].map(([shardId, ids]) => ({ shardId, run: () => this.sendRouted(shardId, { op: 31, d: { guild_ids: ids } }) }));
    await allOrReport(calls, 'SOUNDBOARD_FAILED', 'soundboard request');
  }

  /** A command for the shard owning a guild: this cluster's shard, or through `remoteCommands` another process's. */
  private async sendRouted(shardId: number, payload: GatewayCommand): Promise<void> {
    const remote = this.#host.remote;
    if (remote && !this.#host.ids().includes(shardId)) await remote.send(shardId, payload);
    else await this.send(shardId, payload);
  }
}

/** `0–15`, or the first ids of a sparse set. */
function describeIds(ids: readonly number[]): string {
  if (ids.length === 0) return 'none yet';
  const contiguous = ids.every((id, i) => i === 0 || id === ids[i - 1]! + 1);
  return contiguous ? `${ids[0]}–${ids[ids.length - 1]}` : ids.slice(0, 8).join(', ') + (ids.length > 8 ? ', …' : '');
}
