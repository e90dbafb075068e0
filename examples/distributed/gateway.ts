/**
 * A gateway process of a distributed bot: runs some shards of the bot, shares the identify rate and sessions through
 * Redis, publishes every event to NATS JetStream and answers commands for its shards.
 *
 * Configuration comes from the environment (see `run-demo.ts`, which starts two of these against the simulator):
 *   DEMO_BOT, DEMO_TOKEN, DEMO_GATEWAY_URL, DEMO_REDIS_URL, DEMO_NATS_URL, DEMO_SHARDS (e.g. "0,1"), DEMO_TOTAL,
 *   DEMO_SCALE (clock scale, 1 = real time), DEMO_MAX_CONCURRENCY, DEMO_WINDOW (real ms), DEMO_LEASE_TTL (real ms).
 *
 * Prints one JSON object per line on stdout: `{"ev":"ready",...}` when every shard is up, `{"ev":"closed"}` at the end.
 *
 * Run against Discord for real: set DEMO_TOKEN to the bot token, DEMO_GATEWAY_URL to wss://gateway.discord.gg,
 * DEMO_SCALE=1, DEMO_WINDOW=5500 and DEMO_MAX_CONCURRENCY to `session_start_limit.max_concurrency`.
 */
import { Cluster, Intents, scaledClock } from '../../src/index.js';
import { NatsBroker, RedisIdentifyQueue, RedisSessionStore } from '../../src/distributed/index.js';

const env = (name: string, fallback?: string): string => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`missing environment variable ${name}`);
  return v;
};

const bot = env('DEMO_BOT', 'demo');
const ids = env('DEMO_SHARDS').split(',').map(Number);
const total = Number(env('DEMO_TOTAL'));
const scale = Number(env('DEMO_SCALE', '1'));
const leaseTtl = Number(env('DEMO_LEASE_TTL', '15000'));
const print = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ pid: process.pid, ...o })}\n`);

const store = new RedisSessionStore({ redis: env('DEMO_REDIS_URL'), bot, leaseTtl, flushInterval: 100 });
const queue = new RedisIdentifyQueue({
  redis: env('DEMO_REDIS_URL'),
  bot,
  maxConcurrency: Number(env('DEMO_MAX_CONCURRENCY', '1')),
  window: Number(env('DEMO_WINDOW', '5500')),
  onUnavailable: (e) => print({ ev: 'redis-unavailable', shardId: e.shardId, error: e.error.message }),
});
store.on('error', (err) => print({ ev: 'store-error', error: err.message }));

// 1. Own the shards. After a crash the old leases run out within leaseTtl; a live owner makes this fail.
await store.acquireLeases(ids, { wait: leaseTtl * 3 });
// 2. Resume whatever the previous owner left (same shard count only).
const sessions = await store.load(ids, total);
print({ ev: 'leases', ids, resuming: Object.keys(sessions).map(Number) });

const broker = await NatsBroker.connect({ servers: env('DEMO_NATS_URL'), bot });
broker.on('error', (err) => print({ ev: 'broker-error', error: err.message }));

const cluster = new Cluster({
  token: env('DEMO_TOKEN'),
  intents: Intents.Guilds | Intents.GuildMessages | Intents.MessageContent,
  shards: { ids, total },
  gatewayUrl: env('DEMO_GATEWAY_URL'),
  identifyQueue: queue,
  sessions,
  clock: scaledClock(scale),
});
cluster.on('error', (err) => print({ ev: 'cluster-error', error: err.message }));

// 3. Sequences are stored only once JetStream has the event: a crash can replay, never skip.
store.attach(cluster, { sequence: 'manual', sessions });
const publisher = broker.publisher(cluster, { sessions: store, initialSessions: sessions });
const commands = await broker.serveCommands(cluster);

// 4. Losing a lease means another process may run the shard now: stop at once.
store.on('leaseLost', ({ shardId, reason }) => {
  print({ ev: 'lease-lost', shardId, reason });
  void shutdown(1);
});

let closing: Promise<void> | null = null;
async function shutdown(code: number): Promise<void> {
  closing ??= (async () => {
    await commands.close();
    await cluster.close({ resumable: true }); // sessions stay resumable for the next process
    await publisher.close(); // wait for JetStream to store what is queued; the store follows the acks
    await store.close(); // last flush, leases released
    await broker.close();
    await queue.close();
    print({ ev: 'closed', published: publisher.stats.published, duplicates: publisher.stats.duplicates });
    process.exit(code);
  })();
  return closing;
}
process.on('SIGTERM', () => void shutdown(0));
process.on('SIGINT', () => void shutdown(0));

await cluster.connect();
const status = cluster.status();
print({
  ev: 'ready',
  ids,
  identifies: status.reduce((n, s) => n + s.identifies, 0),
  resumes: status.reduce((n, s) => n + s.resumes, 0),
  sessions: Object.fromEntries(status.map((s) => [s.id, s.sessionId])),
});
