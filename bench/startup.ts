/**
 * `npm run bench:startup`: how close does a {@link Cluster} come to the identify-rate bound when it starts N
 * shards? Discord allows one IDENTIFY per `shard_id % max_concurrency` lane per 5 s, so N shards cannot all be
 * READY before `(ceil(N / mc) - 1) × 5 s` after the first IDENTIFY, and a good queue has them all READY by
 * `ceil(N / mc) × 5 s`. This bench runs the bundled simulator with a scaled clock (the simulator enforces the
 * 5 s buckets and would answer op 9 to a queue that ran too fast) and reports, per configuration:
 *
 *   - start-up time in virtual seconds and as a share of `ceil(N / mc) × 5 s`;
 *   - the identify span (first to last identify turn) against the ideal `(ceil(N / mc) - 1) × 5 s`;
 *   - the smallest gap between two identify turns of one lane (must be >= 5 s, give or take 5 real ms of
 *     reporting delay; the cluster's window is 5.1 s);
 *   - op 9 answers from the simulator (must be 0).
 *
 * Timers on a scaled clock fire late by real milliseconds that the scale magnifies (at scale 0.1, 1 real ms
 * is 10 virtual ms), so run it on a quiet machine; `npm test` asserts the same bounds with a tolerance for a
 * busy host. Flags: `--quick` (small configurations, checks the harness), `--only 128x16,100x4` (N x mc),
 * `--json PATH`.
 *
 * Run: `npm run bench:startup` (= `node --import tsx bench/startup.ts`).
 *
 * @module
 */
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { Cluster, scaledClock } from '../src/index.js';
import { GatewaySimulator } from '../src/simulator/index.js';

const TOKEN = 'bench-token-startup.aaaa.bbbb';

interface Config {
  shards: number;
  maxConcurrency: number;
  /** Virtual ms per real ms is 1 / scale. */
  scale: number;
}

interface Result extends Config {
  readyMs: number;
  bound: number;
  spanMs: number;
  idealSpan: number;
  minLaneGap: number;
  identifies: number;
  invalidSessions: number;
}

const FULL: Config[] = [
  { shards: 16, maxConcurrency: 1, scale: 0.05 },
  { shards: 100, maxConcurrency: 1, scale: 0.03 },
  { shards: 100, maxConcurrency: 4, scale: 0.05 },
  { shards: 128, maxConcurrency: 16, scale: 0.1 },
  { shards: 1000, maxConcurrency: 16, scale: 0.1 },
];
const QUICK: Config[] = [
  { shards: 4, maxConcurrency: 1, scale: 0.01 },
  { shards: 16, maxConcurrency: 4, scale: 0.01 },
];

async function measure(c: Config): Promise<Result> {
  const clock = scaledClock(c.scale);
  const sim = await GatewaySimulator.start({
    tokens: [TOKEN],
    clock,
    shards: c.shards,
    maxConcurrency: c.maxConcurrency,
    guilds: c.shards,
    // the simulator's own bucket forgives a few real ms of socket latency, magnified by the scale
    identifyWindow: 5000 - 30 / c.scale,
  });
  const cluster = new Cluster({ token: TOKEN, intents: 1, apiUrl: sim.apiUrl, clock, compression: false });
  const turnAt = new Map<number, number>();
  cluster.on('debug', (e) => {
    const m = /^identify turn: shard (\d+)/.exec(e.message);
    if (m) turnAt.set(Number(m[1]), clock.now());
  });
  try {
    const t0 = clock.now();
    await cluster.connect();
    const readyMs = clock.now() - t0;
    const k = Math.ceil(c.shards / c.maxConcurrency);
    let minLaneGap = Infinity;
    for (let lane = 0; lane < c.maxConcurrency; lane++) {
      const times = [...turnAt]
        .filter(([id]) => id % c.maxConcurrency === lane)
        .map(([, t]) => t)
        .sort((a, b) => a - b);
      for (let i = 1; i < times.length; i++) minLaneGap = Math.min(minLaneGap, times[i]! - times[i - 1]!);
    }
    const times = [...turnAt.values()];
    return {
      ...c,
      readyMs,
      bound: k * 5000,
      spanMs: Math.max(...times) - Math.min(...times),
      idealSpan: (k - 1) * 5000,
      minLaneGap,
      identifies: sim.stats.identifies,
      invalidSessions: sim.stats.invalidSessions,
    };
  } finally {
    await cluster.close();
    await sim.stop();
  }
}

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
let configs = args.includes('--quick') ? QUICK : FULL;
const only = flag('--only');
if (only) {
  const wanted = new Set(only.split(','));
  configs = configs.filter((c) => wanted.has(`${c.shards}x${c.maxConcurrency}`));
}

console.log(
  `# cluster start-up against the identify-rate bound (${cpus()[0]?.model ?? 'cpu'}, ${availableParallelism()} cores, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')})`,
);
console.log('');
console.log('| shards | max_concurrency | scale | all READY (virtual s) | % of ceil(N/mc) × 5 s | identify span vs ideal | min lane gap | IDENTIFYs | op 9 |');
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
const results: Result[] = [];
let failed = false;
for (const c of configs) {
  const r = await measure(c);
  results.push(r);
  const pct = ((r.readyMs / r.bound) * 100).toFixed(1);
  const span = r.idealSpan > 0 ? `${(r.spanMs / 1000).toFixed(2)} s vs ${r.idealSpan / 1000} s (+${(((r.spanMs - r.idealSpan) / r.idealSpan) * 100).toFixed(2)} %)` : 'one window';
  const gap = Number.isFinite(r.minLaneGap) ? `${r.minLaneGap.toFixed(0)} ms` : '-';
  console.log(`| ${r.shards} | ${r.maxConcurrency} | ${r.scale} | ${(r.readyMs / 1000).toFixed(2)} | ${pct} % | ${span} | ${gap} | ${r.identifies} | ${r.invalidSessions} |`);
  // Turns are timed when the cluster reports them, a real ms or so after the queue granted them (the queue
  // itself keeps 5.1 s), so the gap check forgives a few real ms, which the scale magnifies.
  if (r.invalidSessions > 0 || r.identifies !== r.shards || r.minLaneGap < 5000 - 5 / r.scale) failed = true;
}
const json = flag('--json');
if (json) writeFileSync(json, JSON.stringify(results, null, 2));
if (failed) {
  console.error('FAILED: an identify bucket was violated (op 9, a lane gap under 5 s, or extra IDENTIFYs)');
  process.exitCode = 1;
}
