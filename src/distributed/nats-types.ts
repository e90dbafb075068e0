/**
 * The options and messages of {@link NatsBroker} (`nats-broker.ts`): what travels through the stream and the
 * command subjects, and the events the broker emits.
 * @packageDocumentation
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { GatewayRequestGuildMembersData, GatewayVoiceStateUpdateData } from 'discord-api-types/v10';
import type { PresenceData } from '../events.js';
import type { Session } from '../session.js';
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
