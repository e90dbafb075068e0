import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { Registry } from 'prom-client';
import { scaledClock } from '../src/clock.js';
import { Cluster } from '../src/cluster.js';
import { routeLogs } from '../src/logging.js';
import { disconnectCause } from '../src/cluster-tracker.js';
import { attachMetrics } from '../src/metrics.js';
import { Shard } from '../src/shard.js';
import { GatewaySimulator } from '../src/simulator/index.js';
import { statusHandler } from '../src/status-page/server.js';
import { TOKEN, SCALE, until, failOnUnhandledRejections } from './helpers/setup.js';
import { ManualClock, drive, driveFor, driveUntil, simActivity } from './helpers/manual-clock.js';

failOnUnhandledRejections();

/** Guilds | GuildMessages | DirectMessages. */
const INTENTS = 1 | 512 | 4096;
const MSG = (n: number) => ({ id: String(1000 + n), channel_id: '1', content: `m${n}`, author: { id: '2' } });

/** Parse Prometheus text into `name{labels}` → value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+?)(\{.*\})? (\S+)$/.exec(line);
    assert.ok(m, `parsable metric line: ${line}`);
    out.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return out;
}

function get(metrics: Map<string, number>, key: string): number {
  const v = metrics.get(key);
  assert.ok(v !== undefined, `metric ${key} present; have ${[...metrics.keys()].filter((k) => k.startsWith(key.split('{')[0]!)).join(', ') || 'none like it'}`);
  return v;
}

test('disconnect causes become short bounded labels', () => {
  assert.equal(disconnectCause({ code: 4014, kind: 'close', action: 'fatal' }), 'close_4014');
  assert.equal(disconnectCause({ code: 1006, kind: 'close', action: 'resume' }), 'close_1006');
  assert.equal(disconnectCause({ code: 1006, kind: 'connect-failed', action: 'resume' }), 'close_1006');
  assert.equal(disconnectCause({ code: 4999, kind: 'close', action: 'resume' }), 'close_other');
  assert.equal(disconnectCause({ code: null, kind: 'reconnect-request', action: 'resume' }), 'op7');
  assert.equal(disconnectCause({ code: null, kind: 'invalid-session', action: 'identify' }), 'op9');
  assert.equal(disconnectCause({ code: null, kind: 'invalid-session', action: 'resume' }), 'op9_resumable');
  assert.equal(disconnectCause({ code: null, kind: 'zombie', action: 'resume' }), 'zombie');
  assert.equal(disconnectCause({ code: null, kind: 'hello-timeout', action: 'resume' }), 'hello_timeout');
  assert.equal(disconnectCause({ code: null, kind: 'worker-exit', action: 'resume' }), 'worker_exit');
});

test('metrics scraped over HTTP after traffic and faults on the simulator; the token is in no log, metric or status line', async () => {
  // The cluster and the simulator share a manual clock: time moves only while the test drives it, with I/O turns
  // between steps, so a loaded machine cannot make a heartbeat miss its ACK or an IDENTIFY miss its window.
  const clock = new ManualClock();
  const sim = await GatewaySimulator.start({ tokens: [TOKEN], clock, shards: 4, maxConcurrency: 2, guilds: 8 });
  const activity = simActivity(sim);
  const cluster = new Cluster({ token: TOKEN, intents: INTENTS, apiUrl: sim.apiUrl, clock, events: ['MESSAGE_CREATE', 'GUILD_CREATE'] });
  const registry = new Registry();
  const metrics = await attachMetrics(cluster, { registry });
  assert.equal(metrics.registry, registry);
  const endpoint = await metrics.listen({ port: 0 });
  const page = statusHandler(cluster);
  const logLines: string[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        logLines.push(chunk.toString());
        cb();
      },
    }),
  );
  const stopLogs = routeLogs(cluster, logger, { level: 'debug' });
  const waits: number[] = [];
  cluster.on('identifyTurn', (e) => waits.push(e.waited));
  const seen = new Map<string, number>();
  cluster.on('dispatch', (e) => seen.set(e.type, (seen.get(e.type) ?? 0) + 1));
  // What the shards reported, to check the counters against (and to check that only what the test caused happened).
  const disconnects = new Map<string, number>();
  const resumesByShard = new Map<number, number>();
  const reconnectsByShard = new Map<number, number>();
  cluster.on('shardDisconnected', (d) => {
    const key = `${d.kind}/${d.action}`;
    disconnects.set(key, (disconnects.get(key) ?? 0) + 1);
    if (d.action === 'resume') reconnectsByShard.set(d.shardId, (reconnectsByShard.get(d.shardId) ?? 0) + 1);
  });
  cluster.on('shardResumed', (id) => resumesByShard.set(id, (resumesByShard.get(id) ?? 0) + 1));
  const sum = (m: Map<unknown, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
  try {
    // container probes before connect: alive, not ready
    assert.equal((await fetch(`${endpoint.url}/healthz`)).status, 200);
    const early = await fetch(`${endpoint.url}/readyz`);
    assert.equal(early.status, 503);
    assert.deepEqual(await early.json(), { ready: false, mode: 'shards', shards: 0, waiting: [] });
    await drive(clock, cluster.connect(), { what: 'connect', activity });
    assert.equal((await fetch(`${endpoint.url}/readyz`)).status, 200, 'every shard ready');
    // traffic: explicit messages plus a mix, most of which the `events` filter skips unparsed
    for (let i = 0; i < 20; i++) sim.dispatch(i % 4, 'MESSAGE_CREATE', MSG(i));
    const stopTraffic = sim.startTraffic({ eventsPerSecond: 30, mix: 'presences_off' });
    await drive(clock, cluster.updatePresence({ status: 'online', activities: [], since: null, afk: false }), { activity });
    await driveFor(clock, 30_000, { activity });
    stopTraffic();

    // faults: op 7 on shard 1, a zombie on shard 2, a fatal 4014 on shard 3
    const disconnected = (id: number) => new Promise<void>((r) => cluster.on('shardDisconnected', (d) => d.shardId === id && r()));
    const resumed = (id: number) => new Promise<void>((r) => cluster.on('shardResumed', (s) => s === id && r()));
    let r1 = resumed(1);
    sim.sendReconnect(1);
    await drive(clock, r1, { what: 'shard 1 resumed after op 7', activity });
    r1 = resumed(2);
    const d2 = disconnected(2);
    sim.setAcks(2, false);
    await drive(clock, d2, { what: 'shard 2 zombie', activity });
    await drive(clock, r1, { what: 'shard 2 resumed', activity });
    sim.closeConnection(3, 4014);
    await driveUntil(clock, () => cluster.shard(3).state === 'fatal', { what: 'shard 3 fatal', activity });
    // heartbeat ACKs for the latency histogram (every 41.25 s virtual)
    await driveUntil(
      clock,
      () =>
        cluster
          .status()
          .filter((s) => s.state === 'ready')
          .every((s) => s.latency !== null),
      { what: 'latency samples', activity },
    );
    assert.ok(
      [0, 1, 2].every((id) => cluster.shard(id).state === 'ready'),
      'shards 0-2 ready',
    );

    const res = await fetch(`${endpoint.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    const m = parseMetrics(text);

    // dispatches by type and by shard: separate series, never their product
    assert.equal(get(m, 'shardline_dispatches_total{type="MESSAGE_CREATE"}'), seen.get('MESSAGE_CREATE'));
    assert.equal(get(m, 'shardline_dispatches_total{type="GUILD_CREATE"}'), seen.get('GUILD_CREATE'));
    assert.ok(seen.get('GUILD_CREATE')! >= 8);
    assert.ok(!m.has('shardline_dispatches_total{type="TYPING_START"}'), 'filtered types are not delivered');
    const byShard = [0, 1, 2, 3].map((id) => m.get(`shardline_shard_dispatches_total{shard="${id}"}`) ?? 0);
    assert.equal(
      byShard.reduce((a, b) => a + b, 0),
      [...seen.values()].reduce((a, b) => a + b, 0),
    );
    for (const line of text.split('\n')) assert.ok(!(/type="/.test(line) && /shard="/.test(line)), `no series with both type and shard: ${line}`);
    const filtered = [0, 1, 2, 3].reduce((a, id) => a + (m.get(`shardline_events_filtered_total{shard="${id}"}`) ?? 0), 0);
    assert.ok(filtered > 10, `events dropped by the filter are counted (${filtered})`);

    // payloads sent by op
    assert.ok(get(m, 'shardline_payloads_sent_total{op="1",name="heartbeat"}') >= 3);
    assert.equal(sim.stats.invalidSessions, 0);
    assert.equal(get(m, 'shardline_payloads_sent_total{op="2",name="identify"}'), 4);
    assert.equal(get(m, 'shardline_payloads_sent_total{op="3",name="presence_update"}'), 4);
    assert.equal(get(m, 'shardline_payloads_sent_total{op="6",name="resume"}'), sum(resumesByShard), 'one RESUME sent per resume seen');
    assert.deepEqual(
      [...resumesByShard].sort(),
      [
        [1, 1],
        [2, 1],
      ],
      'the op 7 and the zombie resumed, nothing else',
    );

    // per-shard state and the states overall
    assert.equal(get(m, 'shardline_shards{state="ready"}'), 3);
    assert.equal(get(m, 'shardline_shards{state="fatal"}'), 1);
    assert.equal(get(m, 'shardline_shards{state="reconnecting"}'), 0);
    assert.equal(get(m, 'shardline_shard_state{shard="3",state="fatal"}'), 1);
    assert.equal(get(m, 'shardline_shard_state{shard="0",state="ready"}'), 1);
    assert.equal([...m.keys()].filter((k) => k.startsWith('shardline_shard_state{')).length, 4, 'one series per shard: its current state');
    // readyz names the shard that is not ready
    const notReady = await fetch(`${endpoint.url}/readyz`);
    assert.equal(notReady.status, 503);
    assert.deepEqual(await notReady.json(), { ready: false, mode: 'shards', shards: 4, waiting: [{ id: 3, state: 'fatal' }] });
    assert.equal(get(m, 'shardline_shard_last_close_code{shard="3"}'), 4014);
    assert.equal(get(m, 'shardline_shard_guilds{shard="0"}'), 2);
    assert.ok(get(m, 'shardline_shard_sequence{shard="0"}') > 2);
    assert.ok(get(m, 'shardline_shard_latency_seconds{shard="0"}') >= 0);

    // heartbeat latency histogram
    const beats = get(m, 'shardline_heartbeat_latency_seconds_count');
    assert.ok(beats >= 3, `latency samples observed (${beats})`);
    assert.equal(get(m, 'shardline_heartbeat_latency_seconds_bucket{le="+Inf"}'), beats);

    // reconnects and resumes by cause
    assert.equal(get(m, 'shardline_disconnects_total{cause="op7",action="resume"}'), 1);
    assert.equal(get(m, 'shardline_disconnects_total{cause="zombie",action="resume"}'), disconnects.get('zombie/resume'));
    assert.equal(disconnects.get('zombie/resume'), 1, 'the silenced ACKs made one zombie');
    assert.equal(get(m, 'shardline_disconnects_total{cause="close_4014",action="fatal"}'), 1);
    assert.equal(get(m, 'shardline_shard_resumes_total{shard="1"}'), resumesByShard.get(1));
    assert.equal(get(m, 'shardline_shard_reconnects_total{shard="2"}'), reconnectsByShard.get(2));
    assert.equal(reconnectsByShard.get(2), 1);
    assert.equal(get(m, 'shardline_shard_identifies_total{shard="0"}'), 1);

    // identify budget and queue: 4 shards over 2 lanes, so the second wave waited about one 5 s window
    assert.equal(get(m, 'shardline_identify_budget_limit'), 1000);
    assert.equal(get(m, 'shardline_identify_budget_remaining'), 1000 - 4);
    assert.ok(get(m, 'shardline_identify_budget_reset_seconds') > 80_000);
    assert.equal(get(m, 'shardline_identify_queue_waiting'), 0);
    assert.equal(get(m, 'shardline_identify_queue_wait_seconds_count'), 4);
    const waitSum = get(m, 'shardline_identify_queue_wait_seconds_sum');
    assert.ok(Math.abs(waitSum - waits.reduce((a, b) => a + b, 0) / 1000) < 1e-6, 'every wait observed');

    // transport decompression
    const inBytes = get(m, 'shardline_inflate_input_bytes_total{shard="0"}');
    const outBytes = get(m, 'shardline_inflate_output_bytes_total{shard="0"}');
    assert.ok(inBytes > 0 && outBytes > inBytes, `zlib-stream inflates (${inBytes} → ${outBytes})`);
    assert.equal(get(m, 'shardline_inflate_buffer_bytes{shard="0"}'), 0);

    // Prometheus' conventions: counters end in _total, nothing else does; units are base units in the name
    const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    assert.equal(get(m, `shardline_build_info{version="${version}",node="${process.versions.node}"}`), 1);
    const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((x) => [x[1]!, x[2]!] as const);
    assert.ok(types.length >= 25, `${types.length} series`);
    for (const [name, type] of types) {
      assert.equal(name.endsWith('_total'), type === 'counter', `${name} (${type}): _total if and only if a counter`);
      assert.doesNotMatch(name, /_(ms|milliseconds|kb|kib|mb|percent)(_|$)/, `${name}: base units (seconds, bytes)`);
    }

    // a second scrape does not double counters that are read from totals
    const again = parseMetrics(await (await fetch(`${endpoint.url}/metrics`)).text());
    assert.equal(again.get('shardline_disconnects_total{cause="op7",action="resume"}'), 1);
    assert.equal(again.get('shardline_payloads_sent_total{op="6",name="resume"}'), sum(resumesByShard));
    assert.equal(again.get('shardline_heartbeat_latency_seconds_count')! - beats < 4, true, 'only new samples are observed');

    // the endpoint: HEAD, wrong method, other paths
    assert.equal((await fetch(`${endpoint.url}/metrics`, { method: 'POST' })).status, 405);
    assert.equal((await fetch(`${endpoint.url}/nope`)).status, 404);

    // the token is nowhere: logs (debug included), metrics text, status JSON
    const statusJson = JSON.stringify(page.snapshot());
    const logs = logLines.join('');
    assert.ok(logLines.length > 20, `debug logs were routed (${logLines.length})`);
    assert.match(logs, /"shardId":3.*"to":"fatal"/, 'the fatal state change is logged with fields');
    assert.match(logs, /"cause":"zombie connection/);
    for (const [what, out] of [
      ['logs', logs],
      ['metrics', text],
      ['status', statusJson],
    ] as const) {
      assert.ok(!out.includes(TOKEN), `no token in ${what}`);
      assert.ok(!out.includes(TOKEN.slice(0, 20)), `no token prefix in ${what}`);
    }

    // detach removes the series from the registry
    await metrics.detach();
    assert.equal(registry.getMetricsAsArray().length, 0);

    // and the log routing leaves no listener behind
    // (shard-level lines come from the one stream; shardError only for the cluster's own reports)
    const events = ['shardEvent', 'debug', 'shardError', 'error', 'ready', 'identifyBudget', 'workerExit', 'handlerLog'] as const;
    const named = ['dispatch', 'shardStateChange', 'shardDisconnected', 'shardReady', 'shardResumed'] as const;
    const before = events.map((e) => cluster.listenerCount(e));
    const namedBefore = named.map((e) => cluster.listenerCount(e));
    const totalBefore = cluster.eventNames().reduce((n, e) => n + cluster.listenerCount(e), 0);
    stopLogs();
    assert.deepEqual(
      events.map((e, i) => before[i]! - cluster.listenerCount(e)),
      events.map(() => 1),
      'routeLogs added exactly one listener per event and stopLogs removed it',
    );
    assert.deepEqual(
      named.map((e) => cluster.listenerCount(e)),
      namedBefore,
      'routeLogs does not listen to the named shard events',
    );
    assert.equal(totalBefore - cluster.eventNames().reduce((n, e) => n + cluster.listenerCount(e), 0), events.length, 'nothing else was left behind');
  } finally {
    stopLogs();
    await page.close();
    await metrics.detach();
    await cluster.close();
    await sim.stop();
  }
});

test('routeLogs on a single Shard: one stream listener, each line once, debug lines only while routed at debug', async () => {
  const clock = new ManualClock();
  const sim = await GatewaySimulator.start({ tokens: [TOKEN], clock, heartbeatInterval: 41_250 });
  const activity = simActivity(sim);
  const shard = new Shard({ token: TOKEN, intents: INTENTS, gatewayUrl: sim.url, clock });
  const lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
  const logger = Object.fromEntries(
    (['debug', 'info', 'warn', 'error'] as const).map((level) => [
      level,
      (fields: object, message?: string) => lines.push({ level, fields: fields as Record<string, unknown>, message: message ?? '' }),
    ]),
  ) as unknown as Parameters<typeof routeLogs>[1];
  const total = () => shard.eventNames().reduce((n, e) => n + shard.listenerCount(e), 0);
  try {
    // at info level nothing asks the shard for debug lines
    const base = total();
    const stopInfo = routeLogs(shard, logger, { level: 'info' });
    assert.equal(shard.listenerCount('debug'), 0);
    assert.equal(shard.listenerCount('event'), 1);
    stopInfo();
    assert.equal(total(), base);

    const stop = routeLogs(shard, logger, { level: 'debug' });
    assert.equal(shard.listenerCount('event'), 1);
    assert.equal(shard.listenerCount('debug'), 1, 'the debug listener turns debug lines on');
    assert.equal(shard.listenerCount('stateChange') + shard.listenerCount('disconnected') + shard.listenerCount('error'), 0);
    let debugEvents = 0;
    const countDebug = () => void debugEvents++;
    shard.on('debug', countDebug);
    await drive(clock, shard.connect(), { activity });
    const resumed = new Promise<void>((r) => shard.once('resumed', () => r()));
    sim.sendReconnect(0);
    await drive(clock, resumed, { activity });
    shard.off('debug', countDebug);

    const states = lines.filter((l) => l.fields.to !== undefined);
    assert.deepEqual(states.map((l) => `${String(l.fields.from)}>${String(l.fields.to)}`).slice(0, 3), ['idle>connecting', 'connecting>identifying', 'identifying>ready']);
    assert.ok(states.every((l) => l.level === 'info' && l.fields.shardId === 0 && typeof l.fields.cause === 'string' && typeof l.fields.reason === 'string'));
    assert.ok(states.some((l) => l.fields.to === 'resuming'));
    const disconnects = lines.filter((l) => l.level === 'warn' && l.fields.kind !== undefined);
    assert.equal(disconnects.length, 1);
    assert.deepEqual(
      { kind: disconnects[0]!.fields.kind, action: disconnects[0]!.fields.action, shardId: disconnects[0]!.fields.shardId },
      { kind: 'reconnect-request', action: 'resume', shardId: 0 },
    );
    assert.match(disconnects[0]!.message, /^shard 0 disconnected: .+; resume$/);
    const debugLines = lines.filter((l) => l.level === 'debug');
    assert.ok(debugLines.length > 0, 'debug lines are routed');
    assert.equal(debugLines.length, debugEvents, 'each debug line logged once');
    assert.ok(debugLines.every((l) => l.fields.shardId === 0));
    assert.ok(!JSON.stringify(lines).includes(TOKEN));

    stop();
    stop();
    assert.equal(total(), base, 'stop() removed every listener routeLogs added');
  } finally {
    await shard.close().catch(() => undefined);
    await sim.stop();
  }
});

test('metrics in worker mode: status and main-thread counters are complete', async () => {
  const clock = scaledClock(SCALE);
  const sim = await GatewaySimulator.start({ tokens: [TOKEN], clock, shards: 2, maxConcurrency: 2, guilds: 4 });
  const cluster = new Cluster({ token: TOKEN, intents: INTENTS, apiUrl: sim.apiUrl, clock, workers: 2 });
  const metrics = await attachMetrics(cluster, { prefix: 'bot_' });
  try {
    await cluster.connect();
    for (let i = 0; i < 6; i++) sim.dispatch(i % 2, 'MESSAGE_CREATE', MSG(i));
    const resumed = new Promise<void>((r) => cluster.on('shardResumed', (id) => id === 1 && r()));
    sim.sendReconnect(1);
    await resumed;
    await until(() => cluster.status().every((s) => s.latency !== null), 'latency mirrored from the workers', 5000);
    const m = parseMetrics(await metrics.metrics());
    assert.equal(get(m, 'bot_dispatches_total{type="MESSAGE_CREATE"}'), 6);
    assert.equal(get(m, 'bot_shards{state="ready"}'), 2);
    assert.equal(get(m, 'bot_disconnects_total{cause="op7",action="resume"}'), 1);
    assert.equal(get(m, 'bot_shard_resumes_total{shard="1"}'), 1);
    assert.equal(get(m, 'bot_identify_queue_wait_seconds_count'), 2);
    assert.ok(get(m, 'bot_shard_latency_seconds{shard="0"}') >= 0);
    assert.equal(get(m, 'bot_shard_guilds{shard="1"}'), 2);
    // series counted inside the workers reach the main thread through status rows
    assert.ok(get(m, 'bot_inflate_input_bytes_total{shard="0"}') > 0);
    assert.ok(get(m, 'bot_inflate_output_bytes_total{shard="1"}') > get(m, 'bot_inflate_input_bytes_total{shard="1"}'));
    assert.ok(get(m, 'bot_payloads_sent_total{op="2",name="identify"}') >= 2);
    assert.ok(get(m, 'bot_heartbeat_latency_seconds_count') >= 2);
  } finally {
    await metrics.detach();
    await cluster.close();
    await sim.stop();
  }
});

test('shardline loads without prom-client; attachMetrics then says how to install it', () => {
  const hooks = `export async function resolve(spec, ctx, next) {
    if (spec === 'prom-client') throw Object.assign(new Error("Cannot find package 'prom-client'"), { code: 'ERR_MODULE_NOT_FOUND' });
    return next(spec, ctx);
  }`;
  const register = `import { register } from 'node:module'; register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}));`;
  const index = fileURLToPath(new URL('../src/index.ts', import.meta.url));
  const script = `
    const m = await import(${JSON.stringify(index)});
    const c = new m.Cluster({ token: 'x-token-1234', intents: 1, shards: 1 });
    try { await m.attachMetrics(c); console.log('no error'); } catch (e) { console.log(e.code + ': ' + e.message); }
  `;
  const r = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, '--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^MISSING_DEPENDENCY: metrics need the optional dependency prom-client.*npm install prom-client/);
});
