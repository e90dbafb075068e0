/**
 * {@link NatsBroker}: gateway events through NATS JetStream to worker processes, and gateway commands from any
 * process to the process that owns the shard. Its parts, one file a role: `nats-types.ts` (options and messages),
 * `nats-connection.ts` (peer dependencies, the stream), `nats-publisher.ts` (gateway side: {@link EventPublisher}),
 * `nats-consumer.ts` (worker side: {@link EventConsumer}), `nats-commands.ts` (the owner answering commands:
 * {@link CommandServer}) and `nats-remote.ts` (the caller's side of a command).
 * @packageDocumentation
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamClient, JetStreamManager, PubAck } from '@nats-io/jetstream';
import type { GatewayRequestGuildMembersData, GatewayVoiceStateUpdateData } from 'discord-api-types/v10';
import type { Cluster } from '../cluster.js';
import type { NoncedMemberRequest, RemoteCommands } from '../cluster-commands.js';
import type { MemberRequest } from '../members.js';
import { TypedEmitter } from '../emitter.js';
import { ShardlineError } from '../errors.js';
import type { PresenceData } from '../events.js';
import { Shard } from '../shard.js';
import { CommandServer } from './nats-commands.js';
import { enc, ensureStream, loadNats, NAME, type NatsModules, typeToken } from './nats-connection.js';
import { EventConsumer, openDurable } from './nats-consumer.js';
import { EventPublisher } from './nats-publisher.js';
import { remoteMemberRequest, requestCommand, type RemoteLink } from './nats-remote.js';
import type { BrokerEvent, CommandReply, ConsumeOptions, NatsBrokerEvents, NatsBrokerOptions, PublisherOptions, ShardCommand } from './nats-types.js';

/**
 * Events and commands between gateway and worker processes over NATS JetStream.
 *
 * - Gateway side, {@link NatsBroker.publisher}: every delivered dispatch is published to
 *   `shardline.{bot}.events.{shardId}.{TYPE}` on a bounded stream, with the JetStream message id
 *   `{sessionId}:{sequence}` so the replay after a RESUME is dropped by the server as duplicates. The event path
 *   only queues; publishes are ordered per shard and bounded — past `highWaterMark` the source stops reading its
 *   sockets until JetStream catches up.
 * - Worker side, {@link NatsBroker.consume}: a durable consumer with a stable name and explicit acks; a handler error
 *   is nak'ed with a delay; after `maxDeliveries` the event is terminated and reported as poison.
 * - Commands, {@link NatsBroker.command} and {@link NatsBroker.serveCommands}: request/reply on
 *   `shardline.{bot}.commands.{shardId}`, answered by the process running the shard; `NO_SHARD_OWNER` otherwise.
 *
 * @example
 * ```ts
 * // gateway process
 * const broker = await NatsBroker.connect({ servers: 'nats://10.0.0.7:4222', bot: 'mybot' });
 * store.attach(cluster, { sequence: 'manual', sessions });   // sequences follow what JetStream stored
 * const publisher = broker.publisher(cluster, { sessions: store, initialSessions: sessions });
 * const commands = await broker.serveCommands(cluster);
 * await cluster.connect();
 *
 * // worker process
 * const broker = await NatsBroker.connect({ servers: 'nats://10.0.0.7:4222', bot: 'mybot', shardCount: 16 });
 * await broker.consume({
 *   name: 'workers',
 *   handler: async (e) => {
 *     if (e.type === 'MESSAGE_CREATE') await handleMessage(e.data);
 *   },
 * });
 * await broker.updatePresence(3, { since: null, activities: [], status: 'online', afk: false });
 * ```
 */
export class NatsBroker extends TypedEmitter<NatsBrokerEvents> {
  /** Subject prefix, e.g. `shardline.mybot`. */
  readonly subjectPrefix: string;
  /** JetStream stream name. */
  readonly streamName: string;
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  private readonly jsm: JetStreamManager;
  private readonly mods: NatsModules;
  private readonly owned: boolean;
  private readonly opts: NatsBrokerOptions;
  private readonly closers = new Set<() => Promise<void>>();
  private closing: Promise<void> | null = null;

  private constructor(opts: NatsBrokerOptions, mods: NatsModules, nc: NatsConnection, owned: boolean, jsm: JetStreamManager) {
    super();
    this.opts = opts;
    this.mods = mods;
    this.nc = nc;
    this.owned = owned;
    this.jsm = jsm;
    this.js = mods.js.jetstream(nc);
    this.subjectPrefix = opts.subjectPrefix ?? `shardline.${opts.bot}`;
    this.streamName = opts.stream?.name ?? `SHARDLINE_${opts.bot.toUpperCase().replace(/-/g, '_')}`;
  }

  /** Connect (or adopt `connection`) and create or update the event stream. */
  static async connect(options: NatsBrokerOptions): Promise<NatsBroker> {
    if (!NAME.test(options.bot ?? '')) {
      throw new ShardlineError('INVALID_OPTION', `bot must be 1–64 characters of A–Z, a–z, 0–9, _ or - (it names subjects), got ${JSON.stringify(options.bot)}`);
    }
    const mods = await loadNats();
    const owned = !options.connection;
    const nc =
      options.connection ??
      (await mods.nats.connect({
        servers: options.servers ?? 'nats://127.0.0.1:4222',
        name: options.name ?? `shardline:${options.bot}`,
        maxReconnectAttempts: -1,
      }));
    try {
      const jsm = await mods.js.jetstreamManager(nc);
      const broker = new NatsBroker(options, mods, nc, owned, jsm);
      await ensureStream(jsm, mods, broker.streamName, broker.subjectPrefix, options.stream);
      return broker;
    } catch (err) {
      if (owned) await nc.close().catch(() => undefined);
      throw err;
    }
  }

  /** Subject of a shard's events of one type. */
  eventSubject(shardId: number, type: string): string {
    return `${this.subjectPrefix}.events.${shardId}.${typeToken(type) || '_'}`;
  }

  /** Subject on which the owner of a shard answers commands. */
  commandSubject(shardId: number): string {
    return `${this.subjectPrefix}.commands.${shardId}`;
  }

  /**
   * Publish one event with message id `{sessionId}:{sequence}` and wait for JetStream to store it. `duplicate` is
   * true when the server dropped it as a repeat within the duplicate window. (The publisher does this for you.)
   */
  async publishEvent(event: Omit<BrokerEvent, 'sessionId'>, sessionId: string, options: { timeout?: number } = {}): Promise<{ duplicate: boolean; streamSequence: number }> {
    const body: BrokerEvent = { shardId: event.shardId, type: event.type, sequence: event.sequence, sessionId, data: event.data };
    const ack: PubAck = await this.js.publish(this.eventSubject(event.shardId, event.type), enc.encode(JSON.stringify(body)), {
      msgID: `${sessionId}:${event.sequence}`,
      timeout: options.timeout ?? 5000,
    });
    return { duplicate: ack.duplicate, streamSequence: ack.seq };
  }

  /** Publish every dispatch `source` delivers, from now until closed. See {@link EventPublisher}. */
  publisher(source: Shard | Cluster, options: PublisherOptions = {}): EventPublisher {
    this.assertOpen();
    const p = new EventPublisher(this, source, options, (err) => this.report(err));
    const closer = () => p.close();
    this.closers.add(closer);
    p.onClosed = () => this.closers.delete(closer);
    return p;
  }

  /**
   * Consume events with a durable consumer (created or updated). The handler runs one event at a time; resolving
   * acknowledges it, throwing nak's it with a delay, and after `maxDeliveries` it is terminated as poison.
   */
  async consume(options: ConsumeOptions): Promise<EventConsumer> {
    this.assertOpen();
    const { messages, maxDeliveries } = await openDurable({ js: this.js, jsm: this.jsm, mods: this.mods }, this.streamName, this.subjectPrefix, options);
    const c = new EventConsumer(options, maxDeliveries, messages, (p) => {
      try {
        options.onPoison?.(p);
      } catch {
        // listeners are told, never trusted
      }
      this.emitSafe('poison', p);
    });
    const closer = () => c.stop();
    this.closers.add(closer);
    void c.done.finally(() => this.closers.delete(closer));
    return c;
  }

  /**
   * Answer commands for the shards `source` runs (default: all of its ids) on their command subjects. Subscribe
   * after taking the shards' leases, so only their owner answers.
   */
  async serveCommands(source: Shard | Cluster, options: { shardIds?: Iterable<number> } = {}): Promise<CommandServer> {
    this.assertOpen();
    const ids = [...(options.shardIds ?? (source instanceof Shard ? [source.id] : source.ids))];
    const server = new CommandServer(this, source, ids, (err) => this.report(err));
    await this.nc.flush();
    const closer = () => server.close();
    this.closers.add(closer);
    server.onClosed = () => this.closers.delete(closer);
    return server;
  }

  /**
   * Send a command to the process that owns `shardId` and wait for it to be sent on the gateway. Rejects with
   * `NO_SHARD_OWNER` when no process answers within `timeout` (default `commandTimeout`), or with the owner's
   * error (e.g. `SHARD_CLOSED`, `PAYLOAD_TOO_LARGE`).
   */
  async command(shardId: number, command: ShardCommand, options: { timeout?: number } = {}): Promise<CommandReply> {
    this.assertOpen();
    if (!Number.isInteger(shardId) || shardId < 0) throw new ShardlineError('INVALID_SHARD', `shard id must be an integer >= 0, got ${String(shardId)}`);
    const timeout = options.timeout ?? this.opts.commandTimeout ?? 5000;
    return requestCommand(this.nc, this.commandSubject(shardId), shardId, command, timeout);
  }

  /** Update the presence of one shard (op 3), wherever it runs. */
  updatePresence(shardId: number, presence: PresenceData): Promise<CommandReply> {
    return this.command(shardId, { kind: 'presence', presence });
  }

  /** Join, move or leave a voice channel (op 4) through the shard of `state.guild_id` (needs `shardCount`). */
  updateVoiceState(state: GatewayVoiceStateUpdateData, options: { shardId?: number } = {}): Promise<CommandReply> {
    return this.command(options.shardId ?? this.shardForGuild(state.guild_id), { kind: 'voice', state });
  }

  /**
   * Request guild members (op 8) through the guild's shard (needs `shardCount`). Resolves with the nonce once sent;
   * the GUILD_MEMBERS_CHUNKs arrive as events carrying it.
   */
  requestGuildMembers(request: GatewayRequestGuildMembersData, options: { shardId?: number } = {}): Promise<CommandReply> {
    return this.command(options.shardId ?? this.shardForGuild(request.guild_id), { kind: 'members', request });
  }

  /**
   * Commands for the shards other processes run, to pass as a Cluster's `remoteCommands`: then
   * `cluster.requestGuildMembers()` / `updateVoiceState()` / `requestSoundboardSounds()` / `updatePresence()` reach
   * a shard the cluster does not run through its owner's {@link NatsBroker.serveCommands}. A member request's chunks
   * come back to the caller (on a private inbox subject), so it is awaitable and iterable as on a local shard.
   * `memberRequestTimeout` (real ms, default 35 000) bounds the wait here; the owner's shard has its own timeout.
   *
   * @example
   * ```ts
   * const broker = await NatsBroker.connect({ servers, bot: 'mybot' });
   * const cluster = new Cluster({ token, intents, shards: { ids: [0, 1], total: 4 }, remoteCommands: broker.remoteCommands() });
   * await broker.serveCommands(cluster);
   * const chunks = await cluster.requestGuildMembers(guildOnShard3); // answered by the process running shard 3
   * ```
   */
  remoteCommands(options: { memberRequestTimeout?: number } = {}): RemoteCommands {
    const timeout = options.memberRequestTimeout ?? 35_000;
    return {
      send: (shardId, payload) => this.send(shardId, payload),
      requestGuildMembers: (shardId, request) => this.remoteMembers(shardId, request, timeout),
    };
  }

  private remoteMembers(shardId: number, request: NoncedMemberRequest, timeout: number): MemberRequest {
    const link: RemoteLink = {
      nc: this.nc,
      createInbox: () => this.mods.nats.createInbox(),
      assertOpen: () => this.assertOpen(),
      onClose: (closer) => {
        this.closers.add(closer);
        return () => this.closers.delete(closer);
      },
      command: (id, cmd) => this.command(id, cmd),
    };
    return remoteMemberRequest(link, shardId, request, timeout);
  }

  /** Send a raw gateway payload on a shard (ops 1, 2 and 6 are refused: they belong to the session). */
  send(shardId: number, payload: { op: number; d: unknown }): Promise<CommandReply> {
    return this.command(shardId, { kind: 'send', op: payload.op, d: payload.d });
  }

  /** `(guild_id >> 22) % shardCount`, exactly (BigInt). */
  shardForGuild(guildId: string | bigint, shardCount = this.opts.shardCount): number {
    if (!shardCount) throw new ShardlineError('INVALID_OPTION', 'pass shardCount (to NatsBroker.connect or here) to route guild commands');
    let id: bigint;
    try {
      id = BigInt(guildId);
    } catch {
      throw new ShardlineError('INVALID_SNOWFLAKE', `not a snowflake: ${String(guildId).slice(0, 40)}`);
    }
    return Number((id >> 22n) % BigInt(shardCount));
  }

  /** Stop publishers (after flushing them), consumers and command servers; drain a connection the broker opened. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.closers].map((c) => c().catch((err: Error) => this.report(err))));
      this.closers.clear();
      if (this.owned && !this.nc.isClosed()) await this.nc.drain().catch(() => this.nc.close());
      this.removeAllListeners();
    })();
    return this.closing;
  }

  // ---- internals ------------------------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closing) throw new ShardlineError('BROKER_CLOSED', 'the broker is closed');
  }

  /** @internal */
  report(err: Error): void {
    this.emitSafe('error', err);
  }

  private emitSafe<K extends keyof NatsBrokerEvents & string>(event: K, ...args: NatsBrokerEvents[K]): void {
    try {
      this.emit(event, ...args);
    } catch {
      // a throwing listener must not break the broker
    }
  }
}
