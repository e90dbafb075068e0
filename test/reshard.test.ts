import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scaledClock, type Clock } from '../src/clock.js';
import { Cluster, type ClusterOptions } from '../src/cluster.js';
import { GatewayError, ShardlineError } from '../src/errors.js';
import type { DispatchEvent } from '../src/events.js';
import { OverlapDedupe, type ReshardEvent, type ReshardOptions, type ReshardResult } from '../src/reshard.js';
import { GatewaySimulator, generateGuildIds, shardForGuild } from '../src/simulator/index.js';
import type { GatewaySimulatorOptions } from '../src/simulator/types.js';
import { TOKEN, SCALE, until, delay, failOnUnhandledRejections } from './helpers/setup.js';

failOnUnhandledRejections();

/** Guilds | GuildMessages | DirectMessages | MessageContent: markers survive in guild messages and DMs. */
const INTENTS = 1 | 512 | 4096 | 32768;

interface Rig {
  sim: GatewaySimulator;
  clock: Clock;
  cluster: Cluster;
  stop(): Promise<void>;
}

/**
 * The simulator runs in this process: at scale 0.01 one real ms of event-loop delay is 100 virtual ms, so its
 * identify bucket gets a narrower window than the client's 5100 ms lanes (as in cluster.test.ts).
 */
async function rig(simOpts: GatewaySimulatorOptions, clusterOpts: Partial<ClusterOptions> = {}, scale = SCALE): Promise<Rig> {
  const clock = scaledClock(scale);
  const sim = await GatewaySimulator.start({ tokens: [TOKEN], clock, identifyWindow: 4000, ...simOpts });
  const cluster = new Cluster({ token: TOKEN, intents: INTENTS, apiUrl: sim.apiUrl, clock, ...clusterOpts });
  return {
    sim,
    clock,
    cluster,
    async stop() {
      for (const stop of flows) stop(); // a failed assertion must not leave traffic running (it would keep the file alive)
      flows.clear();
      await cluster.close().catch(() => undefined);
      await sim.stop();
    },
  };
}

// ---- steady traffic with unique markers -------------------------------------------------------------------

interface Delivery {
  marker: string;
  shardId: number;
  /** cluster.total when it was delivered */
  total: number | null;
}

/**
 * Sends a guild message to each guild in turn (and a DM every 5th tick, to shard 0 of every set) with a unique
 * marker `<guild index>:<n>` / `dm:<n>`, every real ms, until stopped; records every MESSAGE_CREATE the cluster delivers.
 */
const flows = new Set<() => void>();

function traffic(sim: GatewaySimulator, cluster: Cluster, guilds: readonly string[]) {
  const sent: string[] = [];
  const got: Delivery[] = [];
  const counters = new Map<string, number>();
  let id = 0;
  let tick = 0;
  const next = (k: string) => {
    const n = counters.get(k) ?? 0;
    counters.set(k, n + 1);
    return `${k}:${n}`;
  };
  cluster.on('dispatch', (e: DispatchEvent) => {
    if (e.type !== 'MESSAGE_CREATE') return;
    got.push({ marker: e.data.content, shardId: e.shardId, total: cluster.total });
  });
  const send = () => {
    const gi = tick % guilds.length;
    const g = guilds[gi]!;
    const marker = next(String(gi));
    sent.push(marker);
    sim.dispatch({ guildId: g }, 'MESSAGE_CREATE', { id: String(++id), channel_id: '10', guild_id: g, content: marker, author: { id: '2' } });
    if (tick % 5 === 0) {
      const dm = next('dm');
      sent.push(dm);
      sim.dispatch(0, 'MESSAGE_CREATE', { id: String(++id), channel_id: '11', content: dm, author: { id: '3' } });
    }
    tick++;
  };
  const timer = setInterval(() => {
    send();
    send();
  }, 1);
  const stop = () => {
    clearInterval(timer);
    flows.delete(stop);
  };
  flows.add(stop);
  return {
    sent,
    got,
    stop,
    /**
     * Stop the traffic and send one last marker per guild and one DM: once each of these arrived, everything sent
     * before it on its key was delivered (per-key order), and a duplicate of it could only have come before it.
     * No real-time wait decides that the stream is over.
     */
    fence(): string[] {
      stop();
      const fences: string[] = [];
      guilds.forEach((g, gi) => {
        const marker = next(String(gi));
        sent.push(marker);
        fences.push(marker);
        sim.dispatch({ guildId: g }, 'MESSAGE_CREATE', { id: String(++id), channel_id: '10', guild_id: g, content: marker, author: { id: '2' } });
      });
      const dm = next('dm');
      sent.push(dm);
      fences.push(dm);
      sim.dispatch(0, 'MESSAGE_CREATE', { id: String(++id), channel_id: '11', content: dm, author: { id: '3' } });
      return fences;
    },
    /** Every marker delivered exactly once, each key's markers in order. */
    check() {
      const counts = new Map<string, number>();
      for (const d of got) counts.set(d.marker, (counts.get(d.marker) ?? 0) + 1);
      const duplicates = [...counts].filter(([, n]) => n > 1).map(([m]) => m);
      const lost = sent.filter((m) => !counts.has(m));
      const unknown = [...counts.keys()].filter((m) => !sent.includes(m));
      const perKey = new Map<string, number[]>();
      for (const d of got) {
        const [k, n] = d.marker.split(':') as [string, string];
        (perKey.get(k) ?? perKey.set(k, []).get(k)!).push(Number(n));
      }
      const disorder = [...perKey].filter(([, ns]) => ns.some((n, i) => i > 0 && n <= ns[i - 1]!)).map(([k]) => k);
      return { duplicates, lost, unknown, disorder };
    },
  };
}

/** Real ms a step of the traffic tests may take on a loaded machine (a bound for a hang, not a timing assertion). */
const LOADED = 120_000;

async function reshardWithTraffic(
  from: number,
  to: number,
  mc: number,
  t: { diagnostic(m: string): void },
  clusterOpts: Partial<ClusterOptions> = {},
  // generous: under CPU contention (tests in parallel) one real ms of event-loop lag is 100 virtual ms, so the
  // default timeout (80 s virtual for 4 shards) is under a second of real time here
  reshardOpts: ReshardOptions = { timeout: 1_000_000, catchUpTimeout: 1_000_000 },
  simOpts: GatewaySimulatorOptions = {},
) {
  const guilds = generateGuildIds(4 * to, to);
  const r = await rig({ shards: from, maxConcurrency: mc, guilds, ...simOpts }, clusterOpts);
  try {
    const { sim, cluster } = r;
    const events: ReshardEvent[] = [];
    cluster.on('reshard', (e) => events.push(e));
    // The one stream carries exactly what the named events deliver, the switch's released events included,
    // and the new sessions (observers that keep sessions need them; the named shardReady stays quiet).
    const streamed: string[] = [];
    const streamReady = new Map<number, string>();
    cluster.on('shardEvent', (e) => {
      if (e.kind === 'dispatch' && e.event.type === 'MESSAGE_CREATE') streamed.push((e.event.data as { content: string }).content);
      else if (e.kind === 'ready') streamReady.set(e.shardId, e.session.sessionId);
    });
    await cluster.connect();
    assert.equal(cluster.total, from);
    const flow = traffic(sim, cluster, guilds);
    // Progress, not real time, decides every step (a loaded machine only makes it slower): traffic is delivered
    // before the reshard, and delivered by the new set after it.
    await until(() => flow.got.length >= 50, 'traffic delivered by the running set', LOADED);
    sim.setOptions({ shards: to }); // /gateway/bot now recommends `to`
    const result: ReshardResult = await cluster.reshard(undefined, reshardOpts);
    const markersAtSwitch = flow.sent.length;
    await until(() => flow.got.filter((d) => d.total === to).length >= 50, 'traffic delivered by the new set', LOADED);
    const fences = flow.fence();
    const delivered = () => new Set(flow.got.map((d) => d.marker));
    await until(() => fences.every((m) => delivered().has(m)), 'the last marker of every key', LOADED).catch(() => undefined);
    const { duplicates, lost, unknown, disorder } = flow.check();
    // Everything the assertions below look at, in one line, whichever of them fails.
    t.diagnostic(
      `check: ${flow.sent.length} sent, ${flow.got.length} delivered; duplicates [${duplicates.join(', ')}], lost [${lost.join(', ')}], unknown [${unknown.join(', ')}], ` +
        `out of order [${disorder.join(', ')}], fences missing [${fences.filter((m) => !delivered().has(m)).join(', ')}]; result ${JSON.stringify(result)}`,
    );
    assert.deepEqual(duplicates, [], 'no marker delivered twice');
    assert.deepEqual(lost, [], 'no marker lost');
    assert.deepEqual(unknown, []);
    assert.deepEqual(disorder, [], 'per-guild (and DM) order kept');
    assert.deepEqual(
      streamed,
      flow.got.map((d) => d.marker),
      'shardEvent carries every delivered dispatch, in delivery order',
    );
    assert.deepEqual(
      [...streamReady].sort(([a], [b]) => a - b).map(([, id]) => id),
      cluster.status().map((s) => s.sessionId),
      'the new sessions reached the stream',
    );

    // the new set runs everything
    assert.equal(result.from, from);
    assert.equal(result.to, to);
    assert.equal(cluster.total, to);
    assert.deepEqual(
      cluster.ids,
      Array.from({ length: to }, (_, i) => i),
    );
    assert.deepEqual(
      cluster.status().map((s) => s.state),
      Array(to).fill('ready'),
    );
    assert.deepEqual(
      events.map((e) => e.kind),
      ['started', 'switched'],
    );
    await until(() => sim.sessions().filter((s) => !s.expired).length === to, 'the old sessions are gone', LOADED);
    const live = sim.sessions().filter((s) => !s.expired);
    assert.ok(live.every((s) => s.total === to));
    assert.equal(sim.connections().length, to);

    // guilds moved between shards: routing and delivery follow the new total
    const moved = guilds.filter((g) => shardForGuild(g, from) !== shardForGuild(g, to));
    assert.ok(moved.length > 0, 'some guilds change shard');
    for (const g of guilds) {
      assert.equal(cluster.shardIdFor(g), shardForGuild(g, to));
      assert.equal(cluster.shard(cluster.shardIdFor(g)).state, 'ready');
    }
    const after = flow.got.slice(flow.got.findIndex((d) => d.total === to));
    for (const d of after) {
      const [k] = d.marker.split(':') as [string];
      const expected = k === 'dm' ? 0 : shardForGuild(guilds[Number(k)]!, to);
      assert.equal(d.shardId, expected, `after the switch ${d.marker} comes from new shard ${expected}`);
    }
    // a command for a moved guild reaches the shard that owns it in the new set
    const g = moved[0]!;
    const payloads: { connectionId: number; shardId: number | null }[] = [];
    sim.on('payload', (p) => p.op === 3 && payloads.push(p));
    await cluster.send(cluster.shardIdFor(g), { op: 3, d: { since: null, activities: [], status: 'dnd', afk: false } });
    await until(() => payloads.length === 1, 'op 3 received', LOADED);
    const conn = sim.connections().find((c) => c.id === payloads[0]!.connectionId)!;
    assert.deepEqual([conn.shardId, conn.total], [shardForGuild(g, to), to]);
    await assert.rejects(cluster.send(to, { op: 1, d: null }), (e: ShardlineError) => e.code === 'UNKNOWN_SHARD');

    const overlap = flow.got.filter((d) => d.total === from).length;
    t.diagnostic(
      `${from} → ${to} (max_concurrency ${mc}${clusterOpts.workers ? `, ${clusterOpts.workers} workers` : ''}): ${flow.sent.length} markers sent ` +
        `(${markersAtSwitch} before the switch returned), ${overlap} delivered by the old set; new set received ${result.received} before the switch, ` +
        `${result.deduplicated} dropped as already delivered, ${result.replayed} withheld and released at the switch (max ${result.maxBuffered} withheld at once), ` +
        `${result.suppressed} READY/GUILD_CREATE suppressed, ${result.droppedOld} late old-set events dropped; duplicates ${duplicates.length}, lost ${lost.length}; ` +
        `switch ${result.switchDuration.toFixed(3)} ms real; reshard took ${(result.elapsed / 1000).toFixed(1)} s virtual`,
    );
    assert.ok(result.received > 0 && result.deduplicated > 0, 'the overlap really carried traffic on both sets');
  } finally {
    await r.stop();
  }
}

test('reshard 2 → 4 (the recommended count) under steady traffic: every event exactly once, in order; routing moves', (t) => reshardWithTraffic(2, 4, 2, t));

test('reshard 3 → 6 with max_concurrency 1 under steady traffic', (t) => reshardWithTraffic(3, 6, 1, t));

// Worker threads take real time to boot (~0.5 s under tsx), which at scale 0.01 is a minute of virtual time. On a
// loaded machine one real second of lag is 100 virtual s: no heartbeat deadline, session expiry or handshake timeout
// may fall in the test (they would reconnect or expire sessions, which is not what this test is about); the
// reshard's heartbeat barrier sends its own beats.
test('reshard in worker mode: 2 → 4, shards in 2 worker threads', (t) =>
  reshardWithTraffic(
    2,
    4,
    2,
    t,
    { workers: 2, shardOptions: () => ({ helloTimeout: 100_000_000, readyTimeout: 100_000_000 }) },
    { timeout: 100_000_000, catchUpTimeout: 100_000_000, guildTimeout: 100_000_000 },
    { heartbeatInterval: 100_000_000, sessionTimeout: 100_000_000 },
  ));

test('reshard(n) rounds nothing; the default is /gateway/bot rounded up to a multiple of max_concurrency', async () => {
  const r = await rig({ shards: 2, maxConcurrency: 2, guilds: 8 });
  try {
    await r.cluster.connect();
    r.sim.setOptions({ shards: 3 }); // recommended 3, max_concurrency 2 -> 4
    const res = await r.cluster.reshard();
    assert.equal(res.to, 4);
    assert.equal(r.cluster.total, 4);
    await assert.rejects(r.cluster.reshard(4), (e: ShardlineError) => e.code === 'RESHARD_NOOP');
    await assert.rejects(r.cluster.reshard(0), (e: ShardlineError) => e.code === 'INVALID_SHARD');
    const shrink = await r.cluster.reshard(3); // an explicit count is used as given (shrinking works too)
    assert.equal(shrink.to, 3);
    assert.deepEqual(
      r.cluster.status().map((s) => s.id),
      [0, 1, 2],
    );
  } finally {
    await r.stop();
  }
});

// ---- aborted reshards ------------------------------------------------------------------------------------------

function resources(): number {
  return process.getActiveResourcesInfo().filter((x) => x !== 'TTYWrap').length;
}

test('a fatal close on a new shard (4011) aborts the reshard; the old set keeps running and delivering; nothing leaks', async () => {
  // 8 guilds: 4 per shard at 2 shards, 2 per shard at 4
  const guilds = generateGuildIds(8, 4);
  const r = await rig({ shards: 2, maxConcurrency: 2, guilds });
  try {
    const { sim, cluster } = r;
    const events: ReshardEvent[] = [];
    cluster.on('reshard', (e) => events.push(e));
    const clusterErrors: Error[] = [];
    cluster.on('error', (e) => clusterErrors.push(e));
    await cluster.connect();
    const before = resources();
    const sessionsBefore = cluster.status().map((s) => s.sessionId);
    const flow = traffic(sim, cluster, guilds);
    // From now on IDENTIFY fails with 4011 for shards of more than 1 guild: the new shards (2 each) fail; the
    // running shards (4 each) are already identified and keep going.
    sim.setOptions({ maxGuildsPerShard: 1 });
    const err = (await cluster.reshard(4).catch((e: unknown) => e)) as ShardlineError;
    assert.ok(err instanceof ShardlineError, String(err));
    assert.equal(err.code, 'RESHARD_ABORTED');
    assert.match(err.message, /new shard \d of 4 failed: .*4011.*2 running shards are untouched/);
    assert.ok(err.cause instanceof GatewayError);
    assert.equal((err.cause as GatewayError).closeCode, 4011);
    assert.deepEqual(
      events.map((e) => e.kind),
      ['started', 'aborted'],
    );
    assert.deepEqual(clusterErrors, [], 'a failed new shard is not a cluster error');

    await delay(30);
    flow.stop();
    await until(() => flow.got.length >= flow.sent.length, 'markers delivered by the old set');
    await delay(30);
    const { duplicates, lost, disorder } = flow.check();
    assert.deepEqual([duplicates, lost, disorder], [[], [], []], 'the old set delivered everything, once, in order');
    assert.ok(flow.got.every((d) => d.total === 2 && d.shardId < 2));

    assert.equal(cluster.total, 2);
    assert.deepEqual(
      cluster.status().map((s) => [s.state, s.sessionId]),
      sessionsBefore.map((id) => ['ready', id]),
      'old set untouched',
    );
    assert.equal(cluster.shardIdFor(guilds[1]!), shardForGuild(guilds[1]!, 2));
    await until(() => sim.connections().length === 2, 'only the old connections are left');
    assert.ok(
      sim
        .sessions()
        .filter((s) => !s.expired)
        .every((s) => s.total === 2),
    );
    await delay(30);
    const leftover = resources();
    assert.ok(leftover <= before, `no timer or socket left behind (${before} → ${leftover}: ${process.getActiveResourcesInfo().join(', ')})`);

    // fixed: the next reshard works
    sim.setOptions({ maxGuildsPerShard: 2500 });
    const ok = await cluster.reshard(4);
    assert.equal(ok.to, 4);
  } finally {
    await r.stop();
  }
});

test('the identify budget is checked before anything connects; budgetShare limits what a reshard may spend', async () => {
  // Counts IDENTIFYs exactly: every shard has its own identify bucket and no deadline is within reach, so a late
  // event loop (a loaded machine at scale 0.01) can cause no op 9, zombie or expired session, hence no extra IDENTIFY.
  const r = await rig({
    shards: 2,
    maxConcurrency: 16,
    guilds: 8,
    sessionTimeout: 3_600_000,
    heartbeatInterval: 3_600_000,
    sessionStartLimit: { total: 1000, remaining: 7, resetAfter: 3_600_000 },
  });
  try {
    const { sim, cluster } = r;
    await cluster.connect(); // 5 left
    const connections = sim.stats.connections;
    const events: ReshardEvent[] = [];
    cluster.on('reshard', (e) => events.push(e));
    await assert.rejects(cluster.reshard(6), (e: ShardlineError) => e.code === 'RESHARD_BUDGET' && /needs 6 IDENTIFYs but only 5 may be spent/.test(e.message));
    await assert.rejects(cluster.reshard(4, { budgetShare: 0.5 }), (e: ShardlineError) => e.code === 'RESHARD_BUDGET' && /only 2 may be spent/.test(e.message));
    assert.equal(sim.stats.connections, connections, 'no connection was opened');
    assert.deepEqual(events, [], 'nothing started');
    assert.equal(cluster.total, 2);
    const res = await cluster.reshard(4);
    assert.equal(res.to, 4);
    assert.equal(sim.stats.sessionStartRemaining, 1);
  } finally {
    await r.stop();
  }
});

test('cancelling with an AbortSignal closes the new set and leaves the old one alone', async () => {
  const r = await rig({ shards: 2, maxConcurrency: 1, guilds: 8 });
  try {
    const { sim, cluster } = r;
    await cluster.connect();
    const before = resources();
    const ac = new AbortController();
    sim.on('ready', (e) => {
      if (sim.sessions().find((s) => s.sessionId === e.sessionId)?.total === 6) ac.abort(new Error('operator changed their mind'));
    });
    const err = (await cluster.reshard(6, { signal: ac.signal }).catch((e: unknown) => e)) as ShardlineError;
    assert.equal(err.code, 'RESHARD_ABORTED');
    assert.match(err.message, /operator changed their mind/);
    assert.equal(cluster.total, 2);
    assert.deepEqual(
      cluster.status().map((s) => s.state),
      ['ready', 'ready'],
    );
    await until(() => sim.connections().length === 2, 'new connections closed');
    assert.ok(
      sim
        .sessions()
        .filter((s) => !s.expired)
        .every((s) => s.total === 2),
      'the new sessions were closed (not left to time out)',
    );
    await delay(30);
    assert.ok(resources() <= before, `nothing leaked: ${process.getActiveResourcesInfo().join(', ')}`);
    // already aborted
    await assert.rejects(cluster.reshard(4, { signal: AbortSignal.abort() }), (e: ShardlineError) => e.code === 'RESHARD_ABORTED');
    // a partial cluster cannot reshard
    const partial = new Cluster({ token: TOKEN, intents: INTENTS, apiUrl: sim.apiUrl, clock: r.clock, shards: { ids: [1], total: 2 } });
    await partial.connect();
    await assert.rejects(partial.reshard(4), (e: ShardlineError) => e.code === 'RESHARD_UNSUPPORTED');
    await partial.close();
    await assert.rejects(new Cluster({ token: TOKEN, intents: 1 }).reshard(2), (e: ShardlineError) => e.code === 'NOT_STARTED');
  } finally {
    await r.stop();
  }
});

test('a running set that cannot prove it caught up (no heartbeat ACK) aborts the reshard instead of switching', async () => {
  const guilds = generateGuildIds(8, 4);
  const r = await rig({ shards: 2, maxConcurrency: 2, guilds });
  try {
    const { sim, cluster } = r;
    await cluster.connect();
    const flow = traffic(sim, cluster, guilds);
    sim.setAcks(1, false); // old shard 1 (the newest connection of id 1 for now) stops getting ACKs
    const err = (await cluster.reshard(4, { catchUpTimeout: 3000 }).catch((e: unknown) => e)) as ShardlineError;
    sim.setAcks(1, true);
    assert.equal(err.code, 'RESHARD_ABORTED');
    assert.match(err.message, /did not catch up within 3 s.*nothing was switched/);
    assert.equal(cluster.total, 2);
    await delay(20);
    flow.stop();
    await until(() => flow.got.length >= flow.sent.length, 'markers delivered by the old set');
    await delay(30);
    const { duplicates, lost } = flow.check();
    assert.deepEqual([duplicates, lost], [[], []]);
    assert.deepEqual(
      cluster.status().map((s) => s.state),
      ['ready', 'ready'],
    );
    await until(() => sim.connections().length === 2, 'the new set is closed');
  } finally {
    await r.stop();
  }
});

test('closing the cluster during a reshard aborts it and releases both sets', async () => {
  const r = await rig({ shards: 2, maxConcurrency: 1, guilds: 8 });
  try {
    const { sim, cluster } = r;
    await cluster.connect();
    const p = cluster.reshard(4);
    await until(() => sim.sessions().some((s) => s.total === 4), 'a new session');
    await cluster.close();
    await assert.rejects(p, (e: ShardlineError) => e.code === 'RESHARD_ABORTED' && /closed/.test(e.message));
    await until(() => sim.connections().length === 0, 'every connection closed');
  } finally {
    await r.stop();
  }
});

// ---- the periodic policy --------------------------------------------------------------------------------------

test('autoReshard: triggers once when guilds per shard pass the threshold, within the budget share', async () => {
  // 16 guilds over 2 shards = 8 per shard; threshold 5 -> reshard to max(recommended, ceil(16/5)=4) = 4
  const r = await rig(
    { shards: 2, maxConcurrency: 2, guilds: generateGuildIds(16, 4), sessionStartLimit: { total: 1000, remaining: 9, resetAfter: 3_600_000 } },
    { autoReshard: { interval: 2000, guildsPerShard: 5, budgetShare: 0.5 } },
  );
  try {
    const { sim, cluster } = r;
    const events: ReshardEvent[] = [];
    cluster.on('reshard', (e) => events.push(e));
    // The one stream carries exactly what the named events deliver, the switch's released events included,
    // and the new sessions (observers that keep sessions need them; the named shardReady stays quiet).
    const streamed: string[] = [];
    const streamReady = new Map<number, string>();
    cluster.on('shardEvent', (e) => {
      if (e.kind === 'dispatch' && e.event.type === 'MESSAGE_CREATE') streamed.push((e.event.data as { content: string }).content);
      else if (e.kind === 'ready') streamReady.set(e.shardId, e.session.sessionId);
    });
    await cluster.connect(); // 7 session starts left: 0.5 × 7 = 3 < 4 -> skipped
    await until(() => events.length >= 2, 'two checks skipped', 5000);
    assert.deepEqual(
      events.slice(0, 2).map((e) => e.kind),
      ['skipped', 'skipped'],
    );
    assert.match((events[0] as { reason: string }).reason, /needs 4 IDENTIFYs, only 3 allowed/);
    assert.equal(sim.stats.identifies, 2, 'no IDENTIFY spent while over the share');
    assert.equal(cluster.total, 2);

    sim.setOptions({ shards: 4, sessionStartLimit: { total: 1000, remaining: 1000 } }); // the budget refilled; Discord now recommends 4
    await until(() => events.some((e) => e.kind === 'switched'), 'the policy resharded', 10_000);
    assert.equal(cluster.total, 4);
    const identifies = sim.stats.identifies;
    await delay(100); // several more checks: 4 guilds per shard is within the threshold
    assert.equal(events.filter((e) => e.kind === 'started').length, 1, 'exactly one reshard');
    assert.equal(events.filter((e) => e.kind === 'switched').length, 1);
    assert.equal(sim.stats.identifies, identifies);
    const started = events.find((e) => e.kind === 'started') as Extract<ReshardEvent, { kind: 'started' }>;
    assert.deepEqual([started.from, started.to, started.reason], [2, 4, 'policy']);
  } finally {
    await r.stop();
  }
});

// ---- the dedupe itself, against adversarial interleavings ---------------------------------------------------------

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function dedupeModel(REPEATS: boolean) {
  const anomalies = { events: 0, lost: 0, duplicates: 0 };
  const FROM = 2;
  const TO = 4;
  const guilds = generateGuildIds(8, 4);
  let withheldTotal = 0;
  let matchedTotal = 0;
  for (let run = 0; run < 300; run++) {
    const rnd = prng(run + 1);
    const dedupe = new OverlapDedupe(FROM, TO);
    const M = 200 + Math.floor(rnd() * 200);
    const index = new WeakMap<DispatchEvent, number>();
    // the new session of shard n exists from event index start[n] on
    const start = Array.from({ length: TO }, () => 10 + Math.floor(rnd() * M * 0.4));
    // recording starts at the IDENTIFY turn, a little before the session exists
    const recordFrom = start.map((s) => s - Math.floor(rnd() * 10));
    type Ev = { i: number; key: string; old: number; nu: number; event: (shardId: number) => DispatchEvent };
    const evs: Ev[] = [];
    for (let i = 0; i < M; i++) {
      const dm = rnd() < 0.15;
      const g = guilds[Math.floor(rnd() * guilds.length)]!;
      const key = dm ? 'dm' : g;
      // some payloads repeat byte for byte (e.g. TYPING_START twice in a second): same fingerprint, distinct events
      const data = REPEATS && rnd() < 0.1 ? { content: 'same', ...(dm ? {} : { guild_id: g }) } : { id: String(i), content: `${key}:${i}`, ...(dm ? {} : { guild_id: g }) };
      evs.push({
        i,
        key,
        old: dm ? 0 : shardForGuild(g, FROM),
        nu: dm ? 0 : shardForGuild(g, TO),
        event: (shardId) => {
          const e = { shardId, type: 'MESSAGE_CREATE', sequence: i, data } as unknown as DispatchEvent;
          index.set(e, i);
          return e;
        },
      });
    }
    const oldQ: Ev[][] = Array.from({ length: FROM }, () => []);
    const newQ: Ev[][] = Array.from({ length: TO }, () => []);
    const delivered: number[] = [];
    let produced = 0;
    let switched = false;
    // switch once every new session exists, the old set has no old-only event left to read (the precondition the
    // cluster approximates by waiting) and at a random moment after that
    const switchAfter = Math.max(...start) + Math.floor(rnd() * M * 0.5);
    const oldOnlyPending = () => oldQ.some((q) => q.some((e) => e.i < start[e.nu]!));
    for (let step = 0; produced < M || newQ.some((q) => q.length) || (!switched && oldQ.some((q) => q.length)); step++) {
      if (!switched && produced >= switchAfter && !oldOnlyPending()) {
        switched = true;
        for (const q of oldQ) q.length = 0; // old set paused: its late events are dropped
        for (const e of dedupe.release()) delivered.push(index.get(e)!);
      }
      for (let n = 0; n < TO; n++) if (produced >= recordFrom[n]!) dedupe.started.add(n);
      const r = rnd();
      if (produced < M && r < 0.4) {
        const e = evs[produced++]!;
        if (!switched) oldQ[e.old]!.push(e);
        if (e.i >= start[e.nu]!) newQ[e.nu]!.push(e);
        continue;
      }
      // consume from a random shard of either set (this is where the lags come from)
      const side = !switched && rnd() < 0.5 ? 'old' : 'new';
      const qs = side === 'old' ? oldQ : newQ;
      const q = qs[Math.floor(rnd() * qs.length)]!;
      const e = q.shift();
      if (!e) continue;
      if (side === 'old') {
        dedupe.old(e.event(e.old), step);
        delivered.push(e.i);
      } else if (!switched) {
        dedupe.withhold(e.event(e.nu));
      } else if (dedupe.pass(e.event(e.nu))) delivered.push(e.i);
    }
    withheldTotal += dedupe.received;
    matchedTotal += dedupe.deduplicated;
    const seen = new Set<number>();
    for (const i of delivered) {
      if (seen.has(i)) {
        anomalies.duplicates++;
        if (!REPEATS) assert.fail(`run ${run}: event ${i} delivered twice`);
      }
      seen.add(i);
    }
    for (let i = 0; i < M; i++) {
      if (seen.has(i)) continue;
      anomalies.lost++;
      if (!REPEATS) assert.fail(`run ${run}: event ${i} (${evs[i]!.key}) lost`);
    }
    anomalies.events += M;
    const last = new Map<string, number>();
    for (const i of delivered) {
      const k = evs[i]!.key;
      if (!REPEATS) assert.ok((last.get(k) ?? -1) < i, `run ${run}: ${k} out of order at ${i}`);
      last.set(k, i);
    }
  }
  assert.ok(withheldTotal > 0 && matchedTotal > 0);
  return anomalies;
}

test('OverlapDedupe: random lags on both sets, random session starts and switch points: exactly once, per-key order', () => {
  dedupeModel(false);
});
test('OverlapDedupe: with 10 % of payloads repeated byte for byte, a content fingerprint cannot always tell them apart (measured)', (t) => {
  const a = dedupeModel(true);
  t.diagnostic(`${a.events} events in 300 runs: ${a.lost} lost, ${a.duplicates} duplicated (${((100 * (a.lost + a.duplicates)) / a.events).toFixed(3)} %)`);
  // a known limit (docs/RESHARDING.md): only identical payloads of one guild around the switch are at risk
  assert.ok(a.lost + a.duplicates <= a.events * 0.002, 'rare');
});
