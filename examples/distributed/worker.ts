/**
 * A worker process: consumes the bot's events from NATS JetStream with a durable consumer and sends commands back to
 * whichever gateway process owns a shard.
 *
 * Environment: DEMO_BOT, DEMO_NATS_URL, DEMO_TOTAL, DEMO_CONSUMER (durable name, default "workers").
 * Prints one JSON object per event on stdout. A MESSAGE_CREATE whose content is `command:N` makes it update the
 * presence of shard N (wherever it runs) and also try shard `DEMO_TOTAL` (which nobody owns: NO_SHARD_OWNER).
 */
import { ShardlineError } from '../../src/index.js';
import { NatsBroker } from '../../src/distributed/index.js';

const bot = process.env.DEMO_BOT ?? 'demo';
const total = Number(process.env.DEMO_TOTAL ?? '1');
const print = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);

const broker = await NatsBroker.connect({ servers: process.env.DEMO_NATS_URL ?? 'nats://127.0.0.1:4222', bot, shardCount: total, commandTimeout: 2000 });
broker.on('poison', (p) => print({ ev: 'poison', subject: p.subject, error: p.error.message }));

const consumer = await broker.consume({
  name: process.env.DEMO_CONSUMER ?? 'workers',
  ackWait: 5000,
  handler: async (e) => {
    const content = e.type === 'MESSAGE_CREATE' ? (e.data as { content?: string }).content : undefined;
    print({ ev: 'event', shardId: e.shardId, sessionId: e.sessionId, seq: e.sequence, type: e.type, content });
    const m = content ? /^command:(\d+)$/.exec(content) : null;
    if (m) {
      const target = Number(m[1]);
      const reply = await broker.updatePresence(target, { since: null, activities: [{ name: 'distributed', type: 0 }], status: 'online', afk: false });
      print({ ev: 'command', shardId: reply.shardId, ok: true });
      try {
        await broker.updatePresence(total, { since: null, activities: [], status: 'online', afk: false });
      } catch (err) {
        print({ ev: 'no-owner', code: err instanceof ShardlineError ? err.code : String(err) });
      }
    }
  },
});
print({ ev: 'consuming', name: consumer.name });

const stop = async () => {
  await consumer.stop();
  await broker.close();
  print({ ev: 'closed' });
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
