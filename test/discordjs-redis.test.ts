/**
 * `ws.buildIdentifyThrottler` over Redis: two discord.js Clients (one shard each, as two processes of one bot would
 * run them), each with its own RedisIdentifyQueue on a throwaway redis-server, share one identify lane and one daily
 * session budget. Gateway and /gateway/bot: the simulator.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { Client, GatewayIntentBits } from 'discord.js';
import { scaledClock } from '../src/clock.js';
import { ShardlineStrategy, shardlineIdentifyThrottler } from '../src/discordjs/index.js';
import { RedisIdentifyQueue } from '../src/distributed/index.js';
import { GatewaySimulator } from '../src/simulator/index.js';
import { startRedis } from './helpers/servers.js';

const TOKEN = 'sim-token-djs-redis.abcdefghijklmnop.secret';
/** The lane's window, real ms (the simulator's own is 50 ms real: 5000 virtual at 0.01). */
const WINDOW = 400;

async function rig(budget?: { total: number; remaining: number; resetAfter: number }) {
  const redis = await startRedis();
  const clock = scaledClock(0.01);
  const sim = await GatewaySimulator.start({ clock, tokens: [TOKEN], guilds: 4, shards: 2, maxConcurrency: 1, identifyWindow: 5000 });
  const queues: RedisIdentifyQueue[] = [];
  const clients: Client[] = [];
  const identifies: { shardId: number; at: number; accepted: boolean }[] = [];
  sim.on('identify', (e) => identifies.push({ shardId: e.shardId, at: Date.now(), accepted: e.accepted }));
  /** One "process": a client running shard `id` of 2 with its own connection to the shared queue. */
  const client = (id: number): Client => {
    const queue = new RedisIdentifyQueue({ redis: redis.url, bot: 'djs', maxConcurrency: 1, window: WINDOW, ...(budget ? { budget } : {}) });
    queues.push(queue);
    const c = new Client({
      intents: GatewayIntentBits.Guilds,
      shards: [id],
      shardCount: 2,
      rest: { api: sim.apiBaseUrl },
      ws: {
        buildStrategy: (m) => new ShardlineStrategy(m, { clock, gatewayUrl: sim.url, shardOptions: () => ({ helloTimeout: 600_000, readyTimeout: 600_000 }) }),
        buildIdentifyThrottler: shardlineIdentifyThrottler(queue) as never,
      },
    });
    clients.push(c);
    return c;
  };
  const stop = async (): Promise<void> => {
    for (const c of clients) await c.destroy().catch(() => undefined);
    for (const q of queues) await q.close().catch(() => undefined);
    await sim.stop();
    await redis.stop();
  };
  return { sim, client, identifies, stop };
}

async function login(c: Client): Promise<void> {
  const ready = once(c, 'clientReady');
  await c.login(TOKEN);
  await ready;
}

test('two clients with their own RedisIdentifyQueue share the identify lane', async () => {
  const r = await rig();
  try {
    const a = r.client(0);
    const b = r.client(1);
    await Promise.all([login(a), login(b)]);
    assert.equal(r.identifies.length, 2, `one accepted IDENTIFY per shard: ${JSON.stringify(r.identifies)}`);
    assert.ok(r.identifies.every((e) => e.accepted));
    const gap = Math.abs(r.identifies[1]!.at - r.identifies[0]!.at);
    assert.ok(gap >= WINDOW - 25, `the second IDENTIFY waited for the lane held through Redis (${gap} ms apart)`);
    assert.equal(a.guilds.cache.size + b.guilds.cache.size, r.sim.guildIds.length);
  } finally {
    await r.stop();
  }
});

test('the daily budget is shared: the second client fails with IDENTIFY_BUDGET_EXHAUSTED instead of identifying', async () => {
  const r = await rig({ total: 1000, remaining: 1, resetAfter: 3_600_000 });
  try {
    await login(r.client(0));
    const b = r.client(1);
    await assert.rejects(b.login(TOKEN), (err: Error & { failures?: { error: { code?: string } }[] }) => {
      assert.equal(err.failures?.[0]?.error.code, 'IDENTIFY_BUDGET_EXHAUSTED', err.message);
      return true;
    });
    assert.equal(r.identifies.length, 1, 'only the first client identified');
  } finally {
    await r.stop();
  }
});
