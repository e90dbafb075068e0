/**
 * `shardline/distributed`: run one bot over many processes and machines.
 *
 * - {@link RedisIdentifyQueue}: identify lanes and the daily session start budget shared through Redis.
 * - {@link RedisSessionStore}: sessions in Redis (resume after a deploy or crash) and per-shard ownership leases.
 * - {@link NatsBroker}: events to worker processes over NATS JetStream, commands routed to the owning process.
 *
 * `ioredis`, `@nats-io/transport-node` and `@nats-io/jetstream` are optional peer dependencies, loaded only when a
 * class that needs them connects.
 *
 * @example
 * ```ts
 * import { Cluster, Intents } from 'shardline';
 * import { NatsBroker, RedisIdentifyQueue, RedisSessionStore } from 'shardline/distributed';
 * const ids = [0, 1, 2, 3], total = 8, bot = 'mybot';
 * const queue = new RedisIdentifyQueue({ redis: process.env.REDIS_URL!, bot, maxConcurrency: 1 });
 * const store = new RedisSessionStore({ redis: process.env.REDIS_URL!, bot });
 * const broker = await NatsBroker.connect({ servers: process.env.NATS_URL!, bot });
 * await store.acquireLeases(ids, { wait: 30_000 });
 * const sessions = await store.load(ids, total);
 * const cluster = new Cluster({ token, intents: Intents.Guilds, shards: { ids, total }, identifyQueue: queue, sessions });
 * store.attach(cluster, { sequence: 'manual', sessions });
 * const publisher = broker.publisher(cluster, { sessions: store, initialSessions: sessions });
 * await broker.serveCommands(cluster);
 * await cluster.connect();
 * process.on('SIGTERM', async () => {
 *   await cluster.close({ resumable: true });
 *   await publisher.close();
 *   await store.close();
 *   await broker.close();
 *   await queue.close();
 * });
 * ```
 * @packageDocumentation
 */
export {
  RedisIdentifyQueue,
  type RedisIdentifyQueueOptions,
  type RedisIdentifyQueueEvents,
  type RedisUnavailableEvent,
  type SharedBudget,
} from './redis-queue.js';
export {
  RedisSessionStore,
  type RedisSessionStoreOptions,
  type RedisSessionStoreEvents,
  type StoredSession,
} from './redis-sessions.js';
export type { SessionUpdate, AttachOptions } from './redis-sessions-follow.js';
export { NatsBroker } from './nats-broker.js';
export { EventPublisher } from './nats-publisher.js';
export { EventConsumer } from './nats-consumer.js';
export { CommandServer } from './nats-commands.js';
export type {
  NatsBrokerOptions,
  NatsBrokerEvents,
  BrokerEvent,
  PublisherOptions,
  ConsumeOptions,
  DeliveryInfo,
  PoisonEvent,
  ShardCommand,
  CommandReply,
} from './nats-types.js';
export type { RedisConnection } from './redis-client.js';
