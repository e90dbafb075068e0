/**
 * {@link NatsBroker}: gateway events through NATS JetStream to worker processes, and gateway commands from any
 * process to the process that owns the shard.
 * @packageDocumentation
 */
import type { NatsConnection, Msg } from '@nats-io/transport-node';
import type { ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg, PubAck } from '@nats-io/jetstream';
import type { GatewayRequestGuildMembersData, GatewayVoiceStateUpdateData } from 'discord-api-types/v10';
import { systemClock } from '../clock.js';
import { Cluster } from '../cluster.js';
import type { NoncedMemberRequest, RemoteCommands } from '../cluster-commands.js';
import { MemberRequest } from '../members.js';
import { TypedEmitter } from '../emitter.js';
import { ShardlineError } from '../errors.js';
import type { DispatchEvent, GuildMembersChunk, PresenceData, ShardEvent } from '../events.js';
import type { Session } from '../session.js';
import { Shard } from '../shard.js';
import type { RedisSessionStore } from './redis-sessions.js';

/** Options of {@link NatsBroker.connect}. Durations are real milliseconds. */
export interface NatsBrokerOptions {
  /** NATS server URL(s), e.g. `nats://10.0.0.7:4222`. Ignored when `connection` is given. */
  servers?: string | string[];
  /** An existing connection (shardline never closes it). */
  connection?: NatsConnection;
  /** Bot name or id (A–Z, a–z, 0–9, _ and -); names the subjects and the stream. */
  bot: string;
  /** Subject prefix. Default `shardline.{bot}`. */
  subjectPrefix?: string;
  /** The JetStream stream of events (created or updated on connect). */
  stream?: {
    /** Default `SHARDLINE_{BOT}`. */
    name?: string;
    /** Events older than this are dropped, ms. Default 86 400 000 (24 h). */
    maxAge?: number;
    /** The stream keeps at most this many bytes, dropping the oldest events. Default 1 GiB. */
    maxBytes?: number;
    /** Window in which a repeated message id (`{sessionId}:{seq}`) is dropped as a duplicate, ms. Default 120 000. */
    duplicateWindow?: number;
    /** Default `'file'`. */
    storage?: 'file' | 'memory';
    /** Default 1. */
    replicas?: number;
  };
  /** How long a command waits for the owning process to answer, ms. Default 5000. */
  commandTimeout?: number;
  /** Shard count, to route guild commands (`(guild_id >> 22) % shardCount`). */
  shardCount?: number;
  /** Connection name shown by the NATS server. */
  name?: string;
}

/** An event as it travels through the stream: the dispatch plus the session it belongs to. */
export interface BrokerEvent<D = unknown> {
  shardId: number;
  type: string;
  sequence: number;
  /** Session of the sequence: `{sessionId}:{sequence}` identifies the event (also its JetStream message id). */
  sessionId: string;
  data: D;
}

/** Options of {@link NatsBroker.publisher}. */
export interface PublisherOptions {
  /**
   * Record each sequence in this store once its event is safely in the stream (attach the store with
   * `sequence: 'manual'`), so a crash never stores a sequence whose event was not published.
   */
  sessions?: RedisSessionStore;
  /** Called in order per shard once an event is stored by JetStream. */
  onPublished?: (event: { shardId: number; sessionId: string; sequence: number; duplicate: boolean }) => void;
  /** Sessions the source resumes (used for message ids until the shard's own session is visible). */
  initialSessions?: Record<number, Session>;
  /**
   * Events waiting for JetStream (all shards) above which the source stops reading its sockets until half have
   * been stored. Default 5000.
   */
  highWaterMark?: number;
  /** Publishes in flight per shard. Default 1 (strict per-shard order even when a publish is retried). */
  maxInFlightPerShard?: number;
  /** Time-out of one publish, ms. Default 5000. Failed publishes are retried (with back-off) until closed. */
  publishTimeout?: number;
}

/** Options of {@link NatsBroker.consume}. */
export interface ConsumeOptions {
  /**
   * Durable consumer name (A–Z, a–z, 0–9, _ and -). Stable across restarts, so a restarted worker gets the messages
   * it had not acknowledged; workers sharing a name share the work.
   */
  name: string;
  /** Handles one event. Resolve to acknowledge; throw to have it redelivered after `nakDelay`. */
  handler: (event: BrokerEvent, info: DeliveryInfo) => unknown;
  /** Only events of this shard and/or type (one JetStream filter subject). Default: all. */
  filter?: { shardId?: number; type?: string };
  /** Deliveries of one event before it is terminated as poison and reported. Default 5. */
  maxDeliveries?: number;
  /** Redelivery delay after a handler error, ms (or a function of the delivery count). Default 1 s doubling to 30 s. */
  nakDelay?: number | ((deliveryCount: number) => number);
  /** Time a delivered event may stay unacknowledged before the server redelivers it, ms. Default 30 000. */
  ackWait?: number;
  /** Unacknowledged events the server delivers at once. Default 1000. */
  maxAckPending?: number;
  /** Events fetched ahead. Default 100. */
  prefetch?: number;
  /** Told about poison events (also emitted as the broker's `poison` event). */
  onPoison?: (event: PoisonEvent) => void;
}

/** Delivery details passed to a consumer's handler. */
export interface DeliveryInfo {
  /** 1 on the first delivery. */
  deliveryCount: number;
  redelivered: boolean;
  subject: string;
  streamSequence: number;
}

/** An event given up on: it failed `maxDeliveries` times, or could not be decoded. It is terminated, never redelivered. */
export interface PoisonEvent {
  consumer: string;
  subject: string;
  streamSequence: number;
  deliveryCount: number;
  /** The decoded event (null when it could not be decoded). */
  event: BrokerEvent | null;
  error: Error;
}

/** A command for the process that owns a shard. */
export type ShardCommand =
  | { kind: 'presence'; presence: PresenceData }
  | { kind: 'voice'; state: GatewayVoiceStateUpdateData }
  /** `chunks`: a subject on which the owner publishes each GUILD_MEMBERS_CHUNK (`{ chunk }`) or the failure (`{ error }`). */
  | { kind: 'members'; request: GatewayRequestGuildMembersData; chunks?: string }
  | { kind: 'send'; op: number; d: unknown };

/** The owner's answer to a command. */
export interface CommandReply {
  shardId: number;
  /** For `members`: the nonce of the request (its GUILD_MEMBERS_CHUNKs arrive as events with it). */
  nonce?: string;
}

/** Events of a {@link NatsBroker}. */
export interface NatsBrokerEvents {
  /** Publishing, consuming or serving failed (most are retried). */
  error: [error: Error];
  /** A consumer terminated an event it cannot process. */
  poison: [event: PoisonEvent];
}

type NatsModules = { nats: typeof import('@nats-io/transport-node'); js: typeof import('@nats-io/jetstream') };

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** Ops a remote command may not send: they belong to the shard's own session handling. */
const FORBIDDEN_OPS = new Set([1, 2, 6]);
const enc = new TextEncoder();
const dec = new TextDecoder();
const ms = (n: number) => Math.round(n * 1_000_000);

async function loadNats(): Promise<NatsModules> {
  try {
    const [nats, js] = await Promise.all([import('@nats-io/transport-node'), import('@nats-io/jetstream')]);
    return { nats, js };
  } catch (err) {
    throw new ShardlineError(
      'MISSING_PEER_DEPENDENCY',
      'NatsBroker needs the optional peer dependencies "@nats-io/transport-node" and "@nats-io/jetstream": run `npm install @nats-io/transport-node @nats-io/jetstream`.',
      { cause: err },
    );
  }
}

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
      await broker.ensureStream();
      return broker;
    } catch (err) {
      if (owned) await nc.close().catch(() => undefined);
      throw err;
    }
  }

  /** Subject of a shard's events of one type. */
  eventSubject(shardId: number, type: string): string {
    return `${this.subjectPrefix}.events.${shardId}.${type.replace(/[^A-Za-z0-9_-]/g, '_') || '_'}`;
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
    if (!NAME.test(options.name ?? '')) {
      throw new ShardlineError('INVALID_OPTION', `consumer name must be 1–64 characters of A–Z, a–z, 0–9, _ or - (and stable across restarts), got ${JSON.stringify(options.name)}`);
    }
    const f = options.filter ?? {};
    const filter =
      f.shardId === undefined && f.type === undefined
        ? `${this.subjectPrefix}.events.>`
        : `${this.subjectPrefix}.events.${f.shardId ?? '*'}.${f.type === undefined ? '*' : f.type.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    const maxDeliveries = Math.max(1, options.maxDeliveries ?? 5);
    const config = {
      durable_name: options.name,
      ack_policy: this.mods.js.AckPolicy.Explicit,
      deliver_policy: this.mods.js.DeliverPolicy.All,
      filter_subject: filter,
      max_deliver: maxDeliveries,
      ack_wait: ms(options.ackWait ?? 30_000),
      max_ack_pending: options.maxAckPending ?? 1000,
    };
    try {
      await this.jsm.consumers.add(this.streamName, config);
    } catch (err) {
      const info = await this.jsm.consumers.info(this.streamName, options.name).catch(() => null);
      if (!info) throw err;
      if (info.config.filter_subject !== filter) {
        throw new ShardlineError('CONSUMER_MISMATCH', `durable consumer ${options.name} exists with filter ${info.config.filter_subject ?? '(none)'}, not ${filter}: use another name or delete it`, {
          cause: err,
        });
      }
      await this.jsm.consumers.update(this.streamName, options.name, { max_deliver: config.max_deliver, ack_wait: config.ack_wait, max_ack_pending: config.max_ack_pending });
    }
    const consumer = await this.js.consumers.get(this.streamName, options.name);
    const messages = await consumer.consume({ max_messages: options.prefetch ?? 100 });
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
    const subject = this.commandSubject(shardId);
    let msg: Msg;
    try {
      msg = await this.nc.request(subject, enc.encode(JSON.stringify(command)), { timeout });
    } catch (err) {
      const e = err as Error & { isNoResponders?: () => boolean; cause?: unknown };
      const noResponders = e.name === 'NoRespondersError' || e.isNoResponders?.() === true || (e.cause as Error | undefined)?.name === 'NoRespondersError';
      const timedOut = e.name === 'TimeoutError' || (e.cause as Error | undefined)?.name === 'TimeoutError';
      if (noResponders || timedOut) {
        throw new ShardlineError(
          'NO_SHARD_OWNER',
          noResponders
            ? `no process owns shard ${shardId}: nothing answers on ${subject} (is its gateway process running and serving commands?)`
            : `no process answered for shard ${shardId} on ${subject} within ${timeout} ms (its owner may be gone or overloaded; the command may still run)`,
          { cause: err },
        );
      }
      throw err;
    }
    let reply: { ok: boolean; shardId?: number; nonce?: string; code?: string; message?: string };
    try {
      reply = JSON.parse(dec.decode(msg.data)) as typeof reply;
    } catch (err) {
      throw new ShardlineError('BAD_REPLY', `the owner of shard ${shardId} sent an unreadable reply`, { cause: err });
    }
    if (!reply.ok) throw new ShardlineError(reply.code ?? 'COMMAND_FAILED', reply.message ?? `command failed on shard ${shardId}`);
    return reply.nonce === undefined ? { shardId } : { shardId, nonce: reply.nonce };
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
    let sub: { unsubscribe(): void } | null = null;
    const req = new MemberRequest(request.nonce, systemClock, timeout, () => {
      this.closers.delete(closer);
      try {
        sub?.unsubscribe();
      } catch {
        // the connection is already closed: so is the subscription
      }
    });
    // Closing the broker ends the request at once (its timer and subscription must not outlive the broker).
    const closer = async () => req.fail(new ShardlineError('BROKER_CLOSED', `the broker was closed before member request ${request.nonce} was answered`));
    this.closers.add(closer);
    try {
      this.assertOpen();
      const inbox = this.mods.nats.createInbox();
      sub = this.nc.subscribe(inbox, {
        callback: (err, msg) => {
          if (err) return req.fail(err);
          let m: { chunk?: GuildMembersChunk; error?: { code?: string; message?: string } };
          try {
            m = JSON.parse(dec.decode(msg.data)) as typeof m;
          } catch (e) {
            return req.fail(new ShardlineError('BAD_REPLY', `the owner of shard ${shardId} sent an unreadable member chunk`, { cause: e }));
          }
          if (m.chunk) req.push(m.chunk);
          else req.fail(new ShardlineError(m.error?.code ?? 'COMMAND_FAILED', m.error?.message ?? `member request failed on shard ${shardId}`));
        },
      });
      // The subscription is registered before the command is published (one connection, in order).
      this.command(shardId, { kind: 'members', request, chunks: inbox }).catch((err: Error) => req.fail(err));
    } catch (err) {
      req.fail(err as Error);
    }
    return req;
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

  private async ensureStream(): Promise<void> {
    const s = this.opts.stream ?? {};
    const subjects = [`${this.subjectPrefix}.events.>`];
    const limits = {
      max_age: ms(s.maxAge ?? 86_400_000),
      max_bytes: s.maxBytes ?? 1024 ** 3,
      duplicate_window: ms(s.duplicateWindow ?? 120_000),
    };
    const info = await this.jsm.streams.info(this.streamName).catch(() => null);
    if (!info) {
      await this.jsm.streams.add({
        name: this.streamName,
        subjects,
        ...limits,
        storage: s.storage === 'memory' ? this.mods.js.StorageType.Memory : this.mods.js.StorageType.File,
        num_replicas: s.replicas ?? 1,
        discard: this.mods.js.DiscardPolicy.Old,
      });
      return;
    }
    const merged = [...new Set([...(info.config.subjects ?? []), ...subjects])];
    await this.jsm.streams.update(this.streamName, { ...info.config, subjects: merged, ...limits });
  }

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

interface Pending {
  subject: string;
  msgId: string;
  body: Uint8Array;
  sessionId: string;
  sequence: number;
  state: 'queued' | 'sending' | 'done';
  duplicate: boolean;
}

interface Lane {
  items: Pending[];
  inFlight: number;
  retryTimer: NodeJS.Timeout | null;
  failures: number;
}

/**
 * Publishes a shard's or cluster's dispatches to JetStream (made by {@link NatsBroker.publisher}). Its one listener
 * on the source's event stream (`event` / `shardEvent`: dispatches, READY and RESUMED for the session ids) only
 * encodes and queues; publishes run in the background, in order per shard, at most
 * `maxInFlightPerShard` at a time, and are retried until stored. When more than `highWaterMark` events wait, the
 * source stops reading its sockets (heartbeats too, like any slow consumer) until half of them are stored.
 */
export class EventPublisher {
  /**
   * Counters: events stored, dropped by the server as duplicates, publish attempts that failed, and times the source
   * was held back because more than `highWaterMark` events were waiting.
   */
  readonly stats = { published: 0, duplicates: 0, failures: 0, pauses: 0 };
  /** @internal */
  onClosed: (() => void) | null = null;
  private readonly lanes = new Map<number, Lane>();
  private readonly sessions = new Map<number, string>();
  private readonly unknownReported = new Set<number>();
  private readonly highWater: number;
  private readonly perShard: number;
  private readonly timeout: number;
  private readonly detach: () => void;
  private gate: AsyncIterator<DispatchEvent> | null = null;
  private _pending = 0;
  private idle: (() => void)[] = [];
  private closed: Promise<void> | null = null;

  /** @internal */
  constructor(
    private readonly broker: NatsBroker,
    private readonly source: Shard | Cluster,
    private readonly options: PublisherOptions,
    private readonly report: (err: Error) => void,
  ) {
    this.highWater = Math.max(1, options.highWaterMark ?? 5000);
    this.perShard = Math.max(1, options.maxInFlightPerShard ?? 1);
    this.timeout = options.publishTimeout ?? 5000;
    for (const [id, s] of Object.entries(options.initialSessions ?? {})) this.sessions.set(Number(id), s.sessionId);
    // One listener on the source's event stream (`event` on a Shard, `shardEvent` on a Cluster).
    const onEvent = (e: ShardEvent) => {
      switch (e.kind) {
        case 'dispatch':
          this.enqueue(e.event);
          return;
        case 'ready':
          this.sessions.set(e.shardId, e.data.session_id);
          return;
        case 'resumed':
          this.sessions.set(e.shardId, e.session.sessionId);
          return;
        default:
          return;
      }
    };
    if (source instanceof Shard) this.detach = source.listen('event', onEvent);
    else if (source instanceof Cluster) this.detach = source.listen('shardEvent', onEvent);
    else throw new ShardlineError('INVALID_OPTION', 'publisher() takes a Shard or a Cluster');
  }

  /** Events queued or being published. */
  get pending(): number {
    return this._pending;
  }

  /** Whether the source is currently held back because JetStream is behind. */
  get paused(): boolean {
    return this.gate !== null;
  }

  /** Resolve when every event queued so far is stored (or reject after `timeout` ms). */
  flush(timeout = 10_000): Promise<void> {
    if (this._pending === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.idle = this.idle.filter((f) => f !== done);
        reject(new ShardlineError('PUBLISH_PENDING', `${this._pending} event(s) still not stored by JetStream after ${timeout} ms`));
      }, timeout);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.idle.push(done);
    });
  }

  /**
   * Stop listening, wait (up to `timeout`) for queued events to be stored, then give up on the rest (their
   * sequences were never recorded as published, so a resume replays them).
   */
  close(timeout = 10_000): Promise<void> {
    this.closed ??= (async () => {
      this.detach();
      this.release();
      try {
        await this.flush(timeout);
      } catch (err) {
        this.report(err as Error);
      }
      for (const lane of this.lanes.values()) {
        if (lane.retryTimer) clearTimeout(lane.retryTimer);
        lane.retryTimer = null;
        lane.items.length = 0;
      }
      this.lanes.clear();
      this._pending = 0;
      this.onClosed?.();
    })();
    return this.closed;
  }

  private sessionOf(shardId: number): string | undefined {
    let local: Session | null | undefined;
    if (this.source instanceof Shard) local = this.source.session;
    else {
      try {
        local = this.source.shard(shardId).shard?.session;
      } catch {
        local = undefined;
      }
    }
    return local?.sessionId ?? this.sessions.get(shardId);
  }

  /** Hot path: encode and queue (synchronous, never waits on the network). */
  private enqueue(event: DispatchEvent): void {
    if (this.closed) return;
    const sessionId = this.sessionOf(event.shardId);
    if (!sessionId && !this.unknownReported.has(event.shardId)) {
      this.unknownReported.add(event.shardId);
      this.report(new ShardlineError('NO_SESSION', `shard ${event.shardId}: ${event.type} seq ${event.sequence} has no known session; published without duplicate detection`));
    }
    const sid = sessionId ?? 'unknown';
    const body: BrokerEvent = { shardId: event.shardId, type: event.type, sequence: event.sequence, sessionId: sid, data: event.data };
    let lane = this.lanes.get(event.shardId);
    if (!lane) this.lanes.set(event.shardId, (lane = { items: [], inFlight: 0, retryTimer: null, failures: 0 }));
    lane.items.push({
      subject: this.broker.eventSubject(event.shardId, event.type),
      msgId: `${sid}:${event.sequence}`,
      body: enc.encode(JSON.stringify(body)),
      sessionId: sid,
      sequence: event.sequence,
      state: 'queued',
      duplicate: false,
    });
    this._pending++;
    if (this._pending >= this.highWater && !this.gate) this.hold();
    this.pump(event.shardId, lane);
  }

  private pump(shardId: number, lane: Lane): void {
    if (lane.retryTimer) return;
    for (const item of lane.items) {
      if (lane.inFlight >= this.perShard) break;
      if (item.state !== 'queued') continue;
      item.state = 'sending';
      lane.inFlight++;
      this.broker.js.publish(item.subject, item.body, { msgID: item.msgId, timeout: this.timeout }).then(
        (ack) => {
          lane.inFlight--;
          item.state = 'done';
          item.duplicate = ack.duplicate;
          lane.failures = 0;
          this.settle(shardId, lane);
        },
        (err: Error) => {
          lane.inFlight--;
          item.state = 'queued';
          this.stats.failures++;
          lane.failures++;
          if (this.closed && this.lanes.size === 0) return;
          const wait = Math.min(100 * 2 ** Math.min(lane.failures - 1, 6), 5000);
          this.report(new ShardlineError('PUBLISH_FAILED', `shard ${shardId}: publishing ${item.msgId} to ${item.subject} failed (${err.message}); retrying in ${wait} ms`, { cause: err }));
          if (!lane.retryTimer) {
            lane.retryTimer = setTimeout(() => {
              lane.retryTimer = null;
              if (this.lanes.get(shardId) === lane) this.pump(shardId, lane);
            }, wait);
          }
        },
      );
    }
  }

  /** Pop stored events off the head of a shard's queue, in order, and report them. */
  private settle(shardId: number, lane: Lane): void {
    let n = 0;
    while (n < lane.items.length && lane.items[n]!.state === 'done') n++;
    if (n > 0) {
      const done = lane.items.splice(0, n);
      this._pending -= n;
      for (const item of done) {
        if (item.duplicate) this.stats.duplicates++;
        else this.stats.published++;
        if (item.sessionId !== 'unknown') {
          this.options.sessions?.update(shardId, { sessionId: item.sessionId, sequence: item.sequence });
          try {
            this.options.onPublished?.({ shardId, sessionId: item.sessionId, sequence: item.sequence, duplicate: item.duplicate });
          } catch (err) {
            this.report(err as Error);
          }
        }
      }
      if (this.gate && this._pending <= this.highWater >> 1) this.release();
      if (this._pending === 0) {
        const waiters = this.idle;
        this.idle = [];
        for (const w of waiters) w();
      }
    }
    this.pump(shardId, lane);
  }

  /** Stop the source reading its sockets: an events() iterator nobody reads fills up and applies back-pressure. */
  private hold(): void {
    this.stats.pauses++;
    try {
      this.gate = this.source.events();
    } catch {
      this.gate = null;
    }
  }

  private release(): void {
    const g = this.gate;
    this.gate = null;
    void g?.return?.();
  }
}

/** A running durable consumer (made by {@link NatsBroker.consume}). */
export class EventConsumer {
  /** Counters: events acknowledged, handler failures (nak'ed), events terminated as poison. */
  readonly stats = { handled: 0, failed: 0, poisoned: 0 };
  readonly name: string;
  /** Settles when the consumer has stopped. */
  readonly done: Promise<void>;
  private stopping = false;

  /** @internal */
  constructor(
    private readonly options: ConsumeOptions,
    private readonly maxDeliveries: number,
    private readonly messages: ConsumerMessages,
    private readonly poison: (p: PoisonEvent) => void,
  ) {
    this.name = options.name;
    this.done = this.run();
  }

  /**
   * Stop fetching; the event being handled finishes (and is acknowledged) first, waiting at most `timeout` ms for it.
   * Un-acked events (prefetched, or a handler that did not finish) are redelivered to the next consumer of this name
   * after `ackWait`.
   */
  async stop(timeout = 10_000): Promise<void> {
    this.stopping = true;
    await this.messages.close().catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.done, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeout)))]);
    clearTimeout(timer);
  }

  private async run(): Promise<void> {
    try {
      for await (const m of this.messages) {
        await this.handle(m);
        if (this.stopping) break;
      }
    } catch {
      // the iterator ends with an error when the connection closes: the consumer stops
    }
  }

  private async handle(m: JsMsg): Promise<void> {
    const info: DeliveryInfo = { deliveryCount: m.info.deliveryCount, redelivered: m.redelivered, subject: m.subject, streamSequence: m.info.streamSequence };
    let event: BrokerEvent | null = null;
    try {
      event = JSON.parse(dec.decode(m.data)) as BrokerEvent;
      if (typeof event !== 'object' || event === null || typeof event.type !== 'string') throw new TypeError('not a shardline event');
    } catch (err) {
      m.term('undecodable');
      this.stats.poisoned++;
      this.poison({ consumer: this.name, subject: m.subject, streamSequence: info.streamSequence, deliveryCount: info.deliveryCount, event: null, error: err as Error });
      return;
    }
    try {
      await this.options.handler(event, info);
      m.ack();
      this.stats.handled++;
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      if (info.deliveryCount >= this.maxDeliveries) {
        m.term(`failed ${info.deliveryCount} times: ${error.message}`.slice(0, 200));
        this.stats.poisoned++;
        this.poison({ consumer: this.name, subject: m.subject, streamSequence: info.streamSequence, deliveryCount: info.deliveryCount, event, error });
        return;
      }
      const d = this.options.nakDelay;
      const delay = typeof d === 'function' ? d(info.deliveryCount) : (d ?? Math.min(1000 * 2 ** (info.deliveryCount - 1), 30_000));
      m.nak(Math.max(0, delay));
      this.stats.failed++;
    }
  }
}

/** Answers commands for the shards a process runs (made by {@link NatsBroker.serveCommands}). */
export class CommandServer {
  readonly shardIds: readonly number[];
  /** @internal */
  onClosed: (() => void) | null = null;
  private readonly subs: { unsubscribe(): void; drain(): Promise<void> }[] = [];
  private closed = false;
  private nonces = 0;

  private readonly nc: NatsConnection;

  /** @internal */
  constructor(
    broker: NatsBroker,
    private readonly source: Shard | Cluster,
    ids: number[],
    private readonly report: (err: Error) => void,
  ) {
    this.shardIds = ids;
    this.nc = broker.nc;
    for (const id of ids) {
      // A queue group: even if two processes briefly served one shard, a command runs once.
      const sub = broker.nc.subscribe(broker.commandSubject(id), {
        queue: 'owner',
        callback: (err, msg) => {
          if (err) return this.report(err);
          void this.answer(id, msg);
        },
      });
      this.subs.push(sub);
    }
  }

  /** Stop answering (in-flight commands finish). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.subs.map((s) => s.drain().catch(() => s.unsubscribe())));
    this.onClosed?.();
  }

  private async answer(shardId: number, msg: Msg): Promise<void> {
    let reply: Record<string, unknown>;
    try {
      const cmd = JSON.parse(dec.decode(msg.data)) as ShardCommand;
      reply = { ok: true, shardId, ...(await this.run(shardId, cmd)) };
    } catch (err) {
      const e = err as Error & { code?: string };
      reply = { ok: false, shardId, code: typeof e.code === 'string' ? e.code : 'COMMAND_FAILED', message: e.message ?? String(err) };
    }
    try {
      msg.respond(enc.encode(JSON.stringify(reply)));
    } catch (err) {
      this.report(err as Error);
    }
  }

  private localMembers(shardId: number, request: NoncedMemberRequest): MemberRequest {
    const source = this.source;
    if (source instanceof Shard) {
      if (source.id !== shardId) throw new ShardlineError('UNKNOWN_SHARD', `this process runs shard ${source.id}, not ${shardId}`);
      return source.requestGuildMembers(request);
    }
    const owner = source.shardIdFor(request.guild_id);
    if (owner !== shardId) throw new ShardlineError('WRONG_SHARD', `guild ${request.guild_id} belongs to shard ${owner}, not ${shardId} (do both sides use the same shard count?)`);
    return source.requestGuildMembers(request);
  }

  private async streamMembers(req: MemberRequest, subject: string): Promise<void> {
    try {
      for await (const chunk of req) this.nc.publish(subject, enc.encode(JSON.stringify({ chunk })));
    } catch (err) {
      const e = err as Error & { code?: string };
      try {
        this.nc.publish(subject, enc.encode(JSON.stringify({ error: { code: typeof e.code === 'string' ? e.code : 'COMMAND_FAILED', message: e.message ?? String(err) } })));
      } catch (publishError) {
        this.report(publishError as Error);
      }
    }
  }

  private async run(shardId: number, cmd: ShardCommand): Promise<{ nonce?: string }> {
    const send = (payload: { op: number; d: unknown }): Promise<void> => {
      if (this.source instanceof Shard) {
        if (this.source.id !== shardId) throw new ShardlineError('UNKNOWN_SHARD', `this process runs shard ${this.source.id}, not ${shardId}`);
        return this.source.send(payload);
      }
      return this.source.send(shardId, payload);
    };
    switch (cmd?.kind) {
      case 'presence':
        await send({ op: 3, d: cmd.presence });
        return {};
      case 'voice':
        await send({ op: 4, d: cmd.state });
        return {};
      case 'members': {
        const nonce = cmd.request.nonce ?? `slr${shardId.toString(36)}-${(this.nonces++).toString(36)}-${Date.now().toString(36)}`;
        if (typeof cmd.chunks === 'string') {
          // The caller wants the chunks back: run the request here and publish each chunk to its inbox.
          void this.streamMembers(this.localMembers(shardId, { ...cmd.request, nonce }), cmd.chunks);
          return { nonce };
        }
        await send({ op: 8, d: { ...cmd.request, nonce } });
        return { nonce };
      }
      case 'send':
        if (!Number.isInteger(cmd.op) || FORBIDDEN_OPS.has(cmd.op)) {
          throw new ShardlineError('FORBIDDEN_OP', `op ${String(cmd.op)} cannot be sent remotely (heartbeat, identify and resume belong to the shard)`);
        }
        await send({ op: cmd.op, d: cmd.d });
        return {};
      default:
        throw new ShardlineError('UNKNOWN_COMMAND', `unknown command kind ${JSON.stringify((cmd as { kind?: unknown })?.kind)}`);
    }
  }
}
