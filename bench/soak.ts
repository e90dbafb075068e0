/**
 * `npm run soak -- --minutes N`: chaos soak of a shardline `Cluster` against the gateway simulator.
 *
 * Many shards with steady traffic; faults at random from a seeded PRNG (`src/simulator/chaos.ts`); invariants
 * checked on the client side: every dispatch of a session delivered exactly once and in order (across resumes),
 * a new session only where the protocol forced one, every shard back to `ready` within a bound after each fault,
 * no unhandled rejection, memory and open handles flat after warm-up, no handle left after close, and fatal
 * close codes stopping exactly the shard that got them.
 *
 * Flags (all optional):
 *   --minutes N | --seconds N   how long faults are injected (default 1 minute)
 *   --seed N                    PRNG seed (default: random, printed; rerun with it to replay the fault sequence)
 *   --shards N                  shards of the cluster (default 12)
 *   --scale X                   clock scale: 1 virtual second = 1000·X real ms (default 0.01)
 *   --events N                  traffic, dispatches per real second over all shards (default 1500)
 *   --markers N                 marker MESSAGE_CREATEs per real second (default 60)
 *   --faults N                  faults per real second (default 4)
 *   --no-fatal                  skip the fatal close code check
 *   --json PATH                 also write the report as JSON
 *   --quiet                     no progress lines
 * Exit code 1 when any invariant was violated.
 *
 * `test/serial/soak.test.ts` runs the same engine in-process with a fixed seed for ~30 s.
 * @module
 */
import { writeFileSync } from 'node:fs';
import { loadavg, availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { scaledClock } from '../src/clock.js';
import { Cluster } from '../src/cluster.js';
import type { TransportCompression } from '../src/inflate.js';
import type { Shard } from '../src/shard.js';
import type { ShardState } from '../src/state.js';
import { ChaosMonkey, DeliveryLedger, FATAL_CLOSE_CODES, NEW_SESSION_CLOSE_CODES, type FaultKind, type InjectedFault } from '../src/simulator/chaos.js';
import { GatewaySimulator, zstdAvailable } from '../src/simulator/index.js';
import { prng } from '../src/simulator/traffic.js';

const TOKEN = 'soak-token-abcdefghijklmnopqrstuvwxyz.0123';
/** Guilds | GuildMessages | MessageContent: markers (guild MESSAGE_CREATEs) keep their content. */
const INTENTS = 1 | 512 | 32768;
const HEARTBEAT = 41_250;

export interface SoakOptions {
  seed: number;
  /** Real ms during which faults are injected. */
  durationMs: number;
  shards?: number;
  /** Clock scale (default 0.01: 1 virtual second = 10 real ms). */
  scale?: number;
  /** Traffic in dispatches per real second over all shards. Default 1500. */
  eventsPerSecond?: number;
  /** Marker MESSAGE_CREATEs per real second. Default 60. */
  markersPerSecond?: number;
  /** Faults per real second. Default 4. */
  faultsPerSecond?: number;
  /** Virtual ms within which a shard must be ready again after a fault. Default 300 000 (zombie detection alone may take 4 heartbeat intervals). */
  recoveryBound?: number;
  /** Transport compression per shard, round robin. Default zlib-stream, zlib-stream, zstd-stream (when available), none. */
  compressions?: (TransportCompression | false)[];
  /** Weights of the fault kinds (see DEFAULT_FAULT_WEIGHTS). */
  weights?: Partial<Record<FaultKind, number>>;
  /** Check that fatal close codes stop exactly their shard (needs > 6 shards). Default true. */
  fatalCheck?: boolean;
  /** Real ms between memory / handle samples. Default: duration / 40, at least 500. */
  sampleEveryMs?: number;
  /** Fraction of the run treated as warm-up for the trend checks. Default 30 %, at least 10 s (at most half the run). */
  warmup?: number;
  /** Allowed heap growth over the measured part of the run, bytes. Default 24 MiB. */
  heapTolerance?: number;
  /** Allowed growth of active handles/requests over the measured part of the run. Default 12. */
  handleTolerance?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface Sample {
  /** Real ms since start. */
  t: number;
  heapUsed: number;
  rss: number;
  arrayBuffers: number;
  handles: number;
}

export interface SoakReport {
  seed: number;
  shards: number;
  scale: number;
  compressions: string[];
  durationMs: number;
  wallMs: number;
  faults: Record<string, number>;
  faultsTotal: number;
  recovery: { count: number; p50: number; p99: number; max: number };
  client: { reconnects: number; resumes: number; identifies: number; zombies: number; decodeErrors: number };
  disconnectsByCause: Record<string, number>;
  shardErrors: Record<string, number>;
  gateway: { dispatches: number; identifies: number; resumes: number; resumeFailures: number; invalidSessions: number; closesByCode: Record<string, number>; connections: number };
  events: number;
  markers: { delivered: number; lostToForcedNewSession: number };
  newSessions: number;
  missedHeartbeatCloses: number;
  fatal: { checked: boolean; codes: Record<string, string> };
  memory: { heapGrowth: number; heapTolerance: number; handleGrowth: number; handleTolerance: number; handlesBefore: number; handlesAfterClose: number; samples: Sample[] };
  unhandledRejections: number;
  load: { before: number[]; after: number[]; cpus: number };
  violations: number;
  violationList: { kind: string; shardId: number; detail: string }[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function getGc(): (() => void) | null {
  try {
    setFlagsFromString('--expose_gc');
    const gc = runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    return null;
  }
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

function resourceCounts(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
  return out;
}

interface InFlight {
  fault: InjectedFault;
  at: number;
  sessionBefore: string | null;
  disconnects: number;
  causes: string[];
}

/** Run one chaos soak. Resolves with the report; never throws for a violated invariant (see `violations`). */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const started = Date.now();
  const seed = options.seed >>> 0;
  const nShards = options.shards ?? 12;
  const scale = options.scale ?? 0.01;
  const bound = options.recoveryBound ?? 300_000;
  const log = options.log ?? (() => {});
  const compressions = options.compressions ?? (['zlib-stream', 'zlib-stream', ...(zstdAvailable() ? (['zstd-stream'] as const) : []), false] as (TransportCompression | false)[]);
  const gc = getGc();
  const loadBefore = loadavg();

  // Recent history per shard, attached to every violation so a failure can be understood without a rerun.
  const history = new Map<number, string[]>();
  const note = (shardId: number, line: string): void => {
    let h = history.get(shardId);
    if (!h) history.set(shardId, (h = []));
    h.push(line);
    if (h.length > 12) h.shift();
  };
  let clockNow = (): number => 0;
  const ledger = new DeliveryLedger(200, (id) => (history.get(id) ?? []).join(' | '));
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
    ledger.report('unhandled-rejection', -1, String((reason as Error)?.stack ?? reason).slice(0, 300));
  };
  process.on('unhandledRejection', onUnhandled);

  gc?.();
  await sleep(50);
  const handlesBefore = process.getActiveResourcesInfo().length;
  const resourcesBefore = resourceCounts();

  const clock = scaledClock(scale);
  clockNow = () => Math.round(clock.now() / 1000);
  const sim = await GatewaySimulator.start({
    tokens: [TOKEN],
    clock,
    seed,
    shards: nShards,
    guilds: nShards * 3,
    maxConcurrency: 4,
    heartbeatInterval: HEARTBEAT,
    // Small enough to fill during warm-up (it is memory the trend check would otherwise see growing), large enough
    // for the longest outage (a zombie takes up to 4 heartbeat intervals to detect) at the default traffic.
    replayBufferSize: 600,
    // The scaled clock magnifies real event-loop jitter 1/scale times (1 real ms = 100 virtual ms at 0.01), so the
    // simulator's identify bucket gets ~20 real ms of slack; the client's own queue still spaces IDENTIFYs 5.1 s.
    identifyWindow: Math.max(1000, 5000 - 20 / scale),
    sessionStartLimit: { total: 10_000_000, remaining: 10_000_000 },
    guildMemberCount: 50,
  });
  const simErrors: Error[] = [];
  sim.on('error', (e) => simErrors.push(e));

  const clientRandomSeed = prng(seed ^ 0x5eed);
  const cluster = new Cluster({
    token: TOKEN,
    intents: INTENTS,
    apiUrl: sim.apiUrl,
    clock,
    shards: nShards,
    shardOptions: (id) => ({ compression: compressions[id % compressions.length]!, random: prng(Math.floor(clientRandomSeed() * 2 ** 32) + id) }),
  });

  const shardObjs = new Map<number, Shard>();
  const local = (id: number): Shard | undefined => {
    let s = shardObjs.get(id);
    if (!s) {
      s = cluster.shard(id).shard;
      if (s) shardObjs.set(id, s);
    }
    return s;
  };
  const sessionOf = (id: number): string | null => local(id)?.session?.sessionId ?? null;

  const states = new Map<number, ShardState>();
  const inflight = new Map<number, InFlight>();
  const recoveries: number[] = [];
  const disconnectsByCause: Record<string, number> = {};
  const shardErrors: Record<string, number> = {};
  const fatalShards = new Set<number>();
  let missedHeartbeatCloses = 0;
  let phase: 'startup' | 'chaos' | 'quiesce' | 'fatal' | 'closing' = 'startup';

  cluster.on('dispatch', (e) => ledger.onDispatch(e.shardId, sessionOf(e.shardId), e.sequence, e.type, e.data));
  cluster.on('shardStateChange', (c) => {
    states.set(c.shardId, c.to);
    if (c.to === 'ready' || c.to === 'fatal') note(c.shardId, `${clockNow()}s ${c.to}: ${c.reason.slice(0, 60)}`);
    if (c.to === 'ready') {
      const f = inflight.get(c.shardId);
      if (f && f.disconnects > 0) complete(c.shardId, f);
    }
  });
  cluster.on('shardDisconnected', (e) => {
    const key = e.kind === 'close' || e.kind === 'connect-failed' ? `close ${e.code}` : e.kind;
    disconnectsByCause[key] = (disconnectsByCause[key] ?? 0) + 1;
    note(e.shardId, `${clockNow()}s client: ${e.cause} → ${e.action}`);
    const f = inflight.get(e.shardId);
    if (f) {
      f.disconnects++;
      f.causes.push(`${e.cause} → ${e.action}`);
    } else if (phase === 'chaos' || phase === 'quiesce') {
      // A disconnect nobody injected: fine if the gateway forced it (counted below), suspicious otherwise.
      if (e.action !== 'fatal') log(`  note: shard ${e.shardId} disconnected without an injected fault: ${e.cause} → ${e.action}`);
    }
  });
  cluster.on('shardError', (err) => {
    const code = (err as { code?: string }).code ?? err.name;
    shardErrors[code] = (shardErrors[code] ?? 0) + 1;
  });
  cluster.on('error', () => {});

  // The gateway forcing a new session is what allows one.
  // Close codes the gateway uses when the client broke the protocol. (The close event's reason is the one the
  // peer echoed, so a close is attributed to chaos by the code the monkey just used on that shard, not by reason.)
  const CLIENT_FAULT_CODES = new Set([4001, 4002, 4003, 4005, 4007, 4008]);
  const injectedCloses = new Map<number, { code: number; at: number }>();
  sim.on('close', (e) => {
    if (e.shardId === null) return;
    note(e.shardId, `${clockNow()}s gateway: close ${e.code}${e.byClient ? ' by client' : ''}`);
    if (e.byClient || e.code === 1006) return;
    if (NEW_SESSION_CLOSE_CODES.includes(e.code)) ledger.allowNewSession(e.shardId, `close ${e.code}`);
    if (e.reason.startsWith('Session timed out (missed heartbeats)')) missedHeartbeatCloses++;
    const inj = injectedCloses.get(e.shardId);
    const injected = inj !== undefined && inj.code === e.code && Date.now() - inj.at < 5000;
    if (CLIENT_FAULT_CODES.has(e.code) && !injected) ledger.report('gateway-rejected-client', e.shardId, `the gateway closed shard ${e.shardId} with ${e.code}`);
  });
  sim.on('identify', (e) => note(e.shardId, `${clockNow()}s gateway: IDENTIFY ${e.accepted ? 'accepted' : `refused (${e.reason})`}`));
  sim.on('resume', (e) => {
    if (e.shardId !== null) note(e.shardId, `${clockNow()}s gateway: resume ${e.ok ? 'ok' : `rejected (${e.reason})`} at seq ${e.seq}`);
    if (e.ok || e.shardId === null) return;
    ledger.allowNewSession(e.shardId, `resume rejected (${e.reason})`);
    ledger.report('resume-rejected', e.shardId, `the gateway rejected a RESUME of session ${e.sessionId.slice(0, 8)} at seq ${e.seq}: ${e.reason}`);
  });

  // ---- markers: MESSAGE_CREATEs whose seq per session is known -------------------------------------------
  const markerRandom = prng(seed ^ 0x6d61726b);
  let markerN = 0;
  const guildOf = (id: number): string => sim.guildsForShard(id, nShards)[0]!;
  /** `count` markers to `shardId`; the simulator's live sessions are listed once (sim.sessions() is O(sessions)). */
  const sendMarker = (shardId: number, count = 1): void => {
    const live = sim.sessions().filter((s) => !s.expired && s.shardId === shardId);
    for (let k = 0; k < count; k++) {
      const content = `mk:${shardId}:${++markerN}`;
      const seqs = sim.dispatch(shardId, 'MESSAGE_CREATE', { id: String(1_000_000 + markerN), channel_id: '10', guild_id: guildOf(shardId), content, author: { id: '20', username: 'soak' } });
      if (seqs.length !== live.length) continue;
      seqs.forEach((seq, i) => ledger.expectMarker(shardId, live[i]!.sessionId, seq, content));
    }
  };

  const monkey = new ChaosMonkey(sim, {
    seed,
    weights: options.weights,
    heartbeatInterval: HEARTBEAT,
    flood: (shardId, n) => sendMarker(shardId, n),
  });

  function complete(shardId: number, f: InFlight): void {
    inflight.delete(shardId);
    const now = clock.now();
    const after = sessionOf(shardId);
    const what = `${f.fault.label} on shard ${shardId}`;
    if (f.disconnects > 0) recoveries.push(now - f.at);
    switch (f.fault.expect) {
      case 'none':
        if (f.disconnects > 0) ledger.report('unexpected-reconnect', shardId, `${what} should not drop the connection: ${f.causes.join('; ')}`);
        break;
      case 'resume':
        if (f.disconnects === 0) ledger.report('fault-ignored', shardId, `${what}: no reconnect`);
        break;
      case 'identify':
        if (after !== null && after === f.sessionBefore) ledger.report('no-new-session', shardId, `${what}: still on session ${after.slice(0, 8)}`);
        break;
      case 'recover':
        break;
    }
  }

  const checkInflight = (): void => {
    const now = clock.now();
    for (const [id, f] of inflight) {
      const age = now - f.at;
      const state = states.get(id);
      if ((f.fault.expect === 'none' || f.fault.expect === 'recover') && f.disconnects === 0 && age >= f.fault.duration && state === 'ready') complete(id, f);
      else if (age > bound) {
        inflight.delete(id);
        ledger.report('not-ready-within-bound', id, `${f.fault.label}: shard ${id} is ${state} ${Math.round(age)} virtual ms later (bound ${bound}); ${f.causes.join('; ') || 'no disconnect seen'}`);
      }
    }
  };

  // ---- start ----------------------------------------------------------------------------------------------
  log(`soak: seed ${seed}, ${nShards} shards (${compressions.map((c) => c || 'none').join('/')}), scale ${scale}, ${Math.round(options.durationMs / 1000)} s of faults`);
  await cluster.connect();
  for (const id of cluster.ids) states.set(id, cluster.shard(id).state);
  log(`  all ${nShards} shards ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);

  phase = 'chaos';
  const eps = options.eventsPerSecond ?? 1500;
  const stopTraffic = sim.startTraffic({ eventsPerSecond: eps * scale, mix: 'presences_off' });

  const samples: Sample[] = [];
  const chaosStart = Date.now();
  const sampleEvery = options.sampleEveryMs ?? Math.max(500, options.durationMs / 40);
  const sample = (): void => {
    gc?.();
    const m = process.memoryUsage();
    samples.push({ t: Date.now() - chaosStart, heapUsed: m.heapUsed, rss: m.rss, arrayBuffers: m.arrayBuffers, handles: process.getActiveResourcesInfo().length });
  };

  const timers: ReturnType<typeof setInterval>[] = [];
  const markerEvery = 1000 / (options.markersPerSecond ?? 60);
  timers.push(setInterval(() => sendMarker(Math.floor(markerRandom() * nShards)), markerEvery));
  timers.push(setInterval(checkInflight, 25));
  timers.push(setInterval(sample, sampleEvery));
  let lastProgress = Date.now();
  const faultEvery = 1000 / (options.faultsPerSecond ?? 4);

  // Faults: one in flight per shard, only on ready shards.
  while (Date.now() - chaosStart < options.durationMs) {
    await sleep(faultEvery * (0.5 + monkey.random()));
    const candidates = cluster.ids.filter((id) => states.get(id) === 'ready' && !inflight.has(id));
    if (candidates.length === 0) continue;
    const shardId = monkey.pick(candidates);
    const sessionBefore = sessionOf(shardId);
    const fault = monkey.inject(shardId);
    if (!fault.applied) continue;
    note(shardId, `${clockNow()}s fault ${fault.label}`);
    if (fault.kind === 'invalidate') ledger.allowNewSession(shardId, 'op 9 false');
    if (fault.kind === 'close') injectedCloses.set(shardId, { code: Number(fault.label.split(':')[1]), at: Date.now() });
    inflight.set(shardId, { fault, at: clock.now(), sessionBefore, disconnects: 0, causes: [] });
    if (Date.now() - lastProgress > 10_000) {
      lastProgress = Date.now();
      const total = Object.values(monkey.counts).reduce((a, b) => a + b, 0);
      log(
        `  ${Math.round((Date.now() - chaosStart) / 1000)} s: ${total} faults, ${ledger.events} events, ${ledger.violationCount} violations, heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB`,
      );
    }
  }

  // ---- quiesce: faults finish, traffic stops, every shard catches up ------------------------------------
  phase = 'quiesce';
  const waitEnd = Date.now() + bound * scale + 2000;
  while (inflight.size > 0 && Date.now() < waitEnd) await sleep(25);
  checkInflight();
  for (const [id, f] of inflight) ledger.report('not-ready-within-bound', id, `${f.fault.label}: still in flight at the end`);
  inflight.clear();
  monkey.stop();
  stopTraffic();
  clearInterval(timers[0]);
  sample();
  for (const t of timers) clearInterval(t);

  const simSeq = (sessionId: string): number | null => sim.sessions().find((s) => s.sessionId === sessionId)?.seq ?? null;
  const caughtUp = (): boolean =>
    cluster.ids.every((id) => {
      if (states.get(id) !== 'ready') return false;
      const p = ledger.position(id);
      return p.sessionId !== null && simSeq(p.sessionId) === p.last;
    });
  const catchUpEnd = Date.now() + 15_000;
  while (!caughtUp() && Date.now() < catchUpEnd) await sleep(20);
  for (const id of cluster.ids) if (states.get(id) !== 'ready') ledger.report('not-ready-at-end', id, `shard ${id} is ${states.get(id)} at the end`);
  ledger.finish(simSeq);

  // ---- fatal close codes stop exactly their shard ------------------------------------------------------
  const fatalCodes: Record<string, string> = {};
  const fatalCheck = (options.fatalCheck ?? true) && nShards > FATAL_CLOSE_CODES.length;
  if (fatalCheck) {
    phase = 'fatal';
    const disconnectsBefore = new Map(cluster.ids.map((id) => [id, cluster.shard(id).status().reconnects]));
    const victims = FATAL_CLOSE_CODES.map((code, i) => ({ code, id: i }));
    for (const { code, id } of victims) {
      sim.closeConnection(id, code, 'chaos-fatal');
      fatalShards.add(id);
    }
    const end = Date.now() + 5000;
    while (Date.now() < end && !victims.every(({ id }) => states.get(id) === 'fatal')) await sleep(10);
    for (const { code, id } of victims) {
      const st = states.get(id);
      const status = cluster.shard(id).status();
      fatalCodes[String(code)] = `shard ${id}: ${st}${status.error ? ` (${status.error.slice(0, 90)}…)` : ''}`;
      if (st !== 'fatal') ledger.report('fatal-not-stopped', id, `close ${code}: shard ${id} is ${st}, expected fatal`);
    }
    await sleep(Math.max(200, HEARTBEAT * 2 * scale)); // a retry would show up by now
    for (const { code, id } of victims) {
      if (states.get(id) !== 'fatal') ledger.report('fatal-retried', id, `close ${code}: shard ${id} left fatal (${states.get(id)})`);
    }
    const survivors = cluster.ids.filter((id) => !fatalShards.has(id));
    for (const id of survivors) {
      if (states.get(id) !== 'ready') ledger.report('fatal-collateral', id, `shard ${id} is ${states.get(id)} after other shards' fatal closes`);
      if (cluster.shard(id).status().reconnects !== disconnectsBefore.get(id)) ledger.report('fatal-collateral', id, `shard ${id} reconnected during other shards' fatal closes`);
    }
    const deliveredBefore = ledger.markersDelivered;
    for (const id of survivors) sendMarker(id);
    const end2 = Date.now() + 5000;
    while (Date.now() < end2 && ledger.markersDelivered < deliveredBefore + survivors.length) await sleep(10);
    if (ledger.markersDelivered !== deliveredBefore + survivors.length) {
      ledger.report('fatal-collateral', -1, `survivors delivered ${ledger.markersDelivered - deliveredBefore} of ${survivors.length} markers after the fatal closes`);
    }
  }

  // ---- close: every handle released ---------------------------------------------------------------------
  phase = 'closing';
  const status = cluster.status();
  const client = { reconnects: 0, resumes: 0, identifies: 0, zombies: 0, decodeErrors: 0 };
  for (const s of status) {
    client.reconnects += s.reconnects;
    client.resumes += s.resumes;
    client.identifies += s.identifies;
  }
  for (const id of cluster.ids) {
    const c = local(id)?.counters;
    if (c) {
      client.zombies += c.zombies;
      client.decodeErrors += c.decodeErrors;
    }
  }
  const gwStats = sim.stats;
  await cluster.close();
  await sim.stop();
  await sleep(1500); // sockets discarded by a teardown are terminated after at most 1 s
  gc?.();
  await sleep(50);
  const handlesAfterClose = process.getActiveResourcesInfo().length;
  if (handlesAfterClose > handlesBefore) {
    const after = resourceCounts();
    const diff = Object.entries(after)
      .filter(([k, v]) => v > (resourcesBefore[k] ?? 0))
      .map(([k, v]) => `${k} +${v - (resourcesBefore[k] ?? 0)}`)
      .join(', ');
    ledger.report('handles-after-close', -1, `${handlesAfterClose} active handles/requests after close, ${handlesBefore} before start (${diff})`);
  }
  process.off('unhandledRejection', onUnhandled);
  for (const e of simErrors) ledger.report('simulator-error', -1, e.message);

  // ---- trends after warm-up -----------------------------------------------------------------------------
  const warmMs = options.warmup !== undefined ? options.durationMs * options.warmup : Math.max(options.durationMs * 0.3, Math.min(10_000, options.durationMs / 2));
  const measured = samples.filter((s) => s.t >= warmMs);
  const xs = measured.map((s) => s.t);
  const span = xs.length > 1 ? xs.at(-1)! - xs[0]! : 0;
  const heapGrowth =
    slope(
      xs,
      measured.map((s) => s.heapUsed),
    ) * span;
  const handleGrowth =
    slope(
      xs,
      measured.map((s) => s.handles),
    ) * span;
  const heapTolerance = options.heapTolerance ?? 24 * 2 ** 20;
  const handleTolerance = options.handleTolerance ?? 12;
  if (measured.length >= 4 && heapGrowth > heapTolerance) {
    ledger.report('memory-trend', -1, `heap grew ${(heapGrowth / 2 ** 20).toFixed(1)} MiB (trend) over the last ${(span / 1000).toFixed(0)} s, tolerance ${(heapTolerance / 2 ** 20).toFixed(0)} MiB`);
  }
  if (measured.length >= 4 && handleGrowth > handleTolerance) {
    ledger.report('handle-trend', -1, `active handles grew by ${handleGrowth.toFixed(1)} (trend) over the last ${(span / 1000).toFixed(0)} s, tolerance ${handleTolerance}`);
  }

  const sorted = [...recoveries].sort((a, b) => a - b);
  return {
    seed,
    shards: nShards,
    scale,
    compressions: compressions.map((c) => c || 'none'),
    durationMs: options.durationMs,
    wallMs: Date.now() - started,
    faults: { ...monkey.counts },
    faultsTotal: Object.values(monkey.counts).reduce((a, b) => a + b, 0),
    recovery: { count: sorted.length, p50: Math.round(percentile(sorted, 0.5)), p99: Math.round(percentile(sorted, 0.99)), max: Math.round(sorted.at(-1) ?? 0) },
    client,
    disconnectsByCause,
    shardErrors,
    gateway: {
      dispatches: gwStats.dispatches,
      identifies: gwStats.identifies,
      resumes: gwStats.resumes,
      resumeFailures: gwStats.resumeFailures,
      invalidSessions: gwStats.invalidSessions,
      closesByCode: gwStats.closesByCode,
      connections: gwStats.connections,
    },
    events: ledger.events,
    markers: { delivered: ledger.markersDelivered, lostToForcedNewSession: ledger.markersLostToNewSession },
    newSessions: ledger.newSessions,
    missedHeartbeatCloses,
    fatal: { checked: fatalCheck, codes: fatalCodes },
    memory: { heapGrowth, heapTolerance, handleGrowth, handleTolerance, handlesBefore, handlesAfterClose, samples },
    unhandledRejections: unhandled.length,
    load: { before: loadBefore.map((l) => Math.round(l * 100) / 100), after: loadavg().map((l) => Math.round(l * 100) / 100), cpus: availableParallelism() },
    violations: ledger.violationCount,
    violationList: ledger.violations,
  };
}

/** Human-readable summary of a report. */
export function formatReport(r: SoakReport): string {
  const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const sortedEntries = (o: Record<string, number>): string =>
    Object.entries(o)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  const heap = r.memory.samples.map((s) => s.heapUsed);
  const lines = [
    `seed ${r.seed} · ${r.shards} shards (${r.compressions.join('/')}) · scale ${r.scale} · faults for ${(r.durationMs / 1000).toFixed(0)} s · wall ${(r.wallMs / 1000).toFixed(1)} s`,
    `load average ${r.load.before.join(' ')} → ${r.load.after.join(' ')} on ${r.load.cpus} CPUs`,
    `faults injected: ${r.faultsTotal} (${sortedEntries(r.faults)})`,
    `client: ${r.client.reconnects} reconnects, ${r.client.resumes} resumes, ${r.client.identifies} identifies (${r.newSessions} new sessions after the first), ${r.client.zombies} zombies, ${r.client.decodeErrors} decode errors`,
    `recovery to ready (virtual ms): n ${r.recovery.count}, p50 ${r.recovery.p50}, p99 ${r.recovery.p99}, max ${r.recovery.max}`,
    `disconnects by cause: ${sortedEntries(r.disconnectsByCause)}`,
    `shard errors: ${sortedEntries(r.shardErrors) || 'none'}`,
    `gateway: ${r.gateway.dispatches} dispatches, ${r.gateway.connections} connections, ${r.gateway.identifies} identifies, ${r.gateway.resumes} resumes, ${r.gateway.resumeFailures} resume failures, ${r.gateway.invalidSessions} op 9`,
    `events delivered: ${r.events}; markers delivered exactly once: ${r.markers.delivered} (${r.markers.lostToForcedNewSession} dropped with a session the gateway ended)`,
    `missed-heartbeat closes by the gateway: ${r.missedHeartbeatCloses}`,
    `fatal codes: ${
      r.fatal.checked
        ? Object.entries(r.fatal.codes)
            .map(([c, s]) => `${c} → ${s.split(' (')[0]}`)
            .join(', ')
        : 'not checked'
    }`,
    `memory: heap ${mib(Math.min(...heap))}–${mib(Math.max(...heap))}, trend after warm-up ${mib(r.memory.heapGrowth)} (tolerance ${mib(r.memory.heapTolerance)}); ` +
      `handles trend ${r.memory.handleGrowth.toFixed(1)} (tolerance ${r.memory.handleTolerance}), ${r.memory.handlesBefore} before start, ${r.memory.handlesAfterClose} after close`,
    `unhandled rejections: ${r.unhandledRejections}`,
    `violations: ${r.violations}`,
    ...r.violationList.slice(0, 30).map((v) => `  - [${v.kind}] shard ${v.shardId}: ${v.detail}`),
  ];
  return lines.join('\n');
}

function parseArgs(argv: string[]): { opts: SoakOptions; json: string | null } {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    if (i >= 0) return argv[i + 1];
    const eq = argv.find((a) => a.startsWith(`--${name}=`));
    return eq?.slice(name.length + 3);
  };
  const num = (name: string): number | undefined => {
    const v = get(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${v}`);
    return n;
  };
  const minutes = num('minutes');
  const seconds = num('seconds');
  const durationMs = seconds !== undefined ? seconds * 1000 : (minutes ?? 1) * 60_000;
  const seed = num('seed') ?? Math.floor(Math.random() * 2 ** 31);
  const quiet = argv.includes('--quiet');
  return {
    opts: {
      seed,
      durationMs,
      shards: num('shards'),
      scale: num('scale'),
      eventsPerSecond: num('events'),
      markersPerSecond: num('markers'),
      faultsPerSecond: num('faults'),
      fatalCheck: !argv.includes('--no-fatal'),
      log: quiet ? undefined : (l) => console.log(l),
    },
    json: get('json') ?? null,
  };
}

async function main(): Promise<void> {
  const { opts, json } = parseArgs(process.argv.slice(2));
  const report = await runSoak(opts);
  console.log(formatReport(report));
  if (json) writeFileSync(json, JSON.stringify(report, null, 2));
  if (report.violations > 0) console.log(`\nFAILED: replay with npm run soak -- --seed ${report.seed} --seconds ${opts.durationMs / 1000}`);
  process.exitCode = report.violations > 0 ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 2;
  });
}
