/**
 * Prometheus metrics of a {@link Cluster}, through `prom-client` (an optional dependency, loaded only when
 * {@link attachMetrics} is called).
 *
 * Almost everything is read when Prometheus scrapes (`collect()` callbacks over `cluster.status()`, the identify
 * queue and the shards' own counters), so metrics cost nothing between scrapes. The only per-event work is done by
 * one listener on the cluster's `shardEvent` stream in the main thread (two increments per dispatch, one per
 * disconnect, one histogram observation per heartbeat ACK; the `ClusterTracker` of `cluster-tracker.ts`), which
 * also works in worker mode.
 * Labels are kept low-cardinality: event `type` and `shard` are separate series, never combined.
 *
 * @example
 * ```ts
 * import { Cluster, attachMetrics } from 'shardline';
 * const cluster = new Cluster({ token, intents });
 * const metrics = await attachMetrics(cluster);           // or { registry, prefix: 'mybot_' }
 * await metrics.listen({ port: 9464 });                   // GET http://127.0.0.1:9464/metrics
 * // or mount it: app.get('/metrics', metrics.handler)
 * await cluster.connect();
 * ```
 * @packageDocumentation
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Counter, Gauge, Registry } from 'prom-client';
import type { Cluster } from './cluster.js';
import type { IdentifyStatus, ShardStatus } from './cluster-status.js';
import { ClusterTracker } from './cluster-tracker.js';
import { ShardlineError } from './errors.js';
import { TRANSITIONS, type ShardState } from './state.js';
import { listenHttp, pathOf, type HttpEndpoint, type ListenOptions, type RequestHandler } from './status-page/http.js';
import { createProbes, type Probes, type ReadinessMode } from './status-page/probes.js';

// ---- prom-client ---------------------------------------------------------------------------------------------

type PromClient = typeof import('prom-client');

/**
 * What shardline needs of a Prometheus registry. prom-client's `Registry` is one; the type is ours (structural)
 * so that the declarations of `shardline` name no type of the optional `prom-client`: a program that never
 * installs it type-checks with `skipLibCheck` off.
 */
export interface MetricsRegistry {
  /** `Content-Type` of {@link MetricsRegistry.metrics}' text. */
  readonly contentType: string;
  /** Every registered metric in Prometheus text format. */
  metrics(): Promise<string>;
  /** Add a metric (a prom-client metric object). */
  registerMetric(metric: unknown): void;
  /** The registered metrics (only their names are read). */
  getMetricsAsArray(): ReadonlyArray<{ readonly name: string }>;
  /** Remove the metric of this name. */
  removeSingleMetric(name: string): void;
}

/**
 * The constructors shardline's metrics use, as `loadPromClient` promises them: typed loosely here, so that no
 * declaration of this module names a type of the optional `prom-client` (its callers cast to what they build).
 * @internal
 */
export type PromClientModule = Readonly<Record<'Counter' | 'Gauge' | 'Histogram' | 'Registry' | 'collectDefaultMetrics', unknown>>;

let promClient: Promise<PromClient> | null = null;

/** Load `prom-client` once; a clear error when it is not installed. */
function loadProm(): Promise<PromClient> {
  promClient ??= import('prom-client').then(
    (m) => ((m as unknown as { default?: PromClient }).default ?? m) as PromClient,
    (err: unknown) => {
      promClient = null;
      throw new ShardlineError('MISSING_DEPENDENCY', `metrics need the optional dependency prom-client, which is not installed: run \`npm install prom-client\` (${(err as Error).message})`, {
        cause: err,
      });
    },
  );
  return promClient;
}

/**
 * Load `prom-client` once (for the proxy's metrics); a clear error when it is not installed.
 * @internal
 */
export function loadPromClient(): Promise<PromClientModule> {
  return loadProm();
}

/** Options of {@link attachMetrics}. */
export interface MetricsOptions<R extends MetricsRegistry = MetricsRegistry> {
  /** prom-client registry to register the metrics in (any {@link MetricsRegistry}). Default: a new prom-client `Registry` (see `metrics.registry`). */
  registry?: R;
  /** Prefix of every metric name. Default `'shardline_'`. */
  prefix?: string;
  /** Also collect prom-client's default process metrics (CPU, memory, event loop lag) into the registry. Default false. */
  defaultMetrics?: boolean;
  /** Buckets of the heartbeat latency histogram, seconds. Default 0.025 … 5. */
  latencyBuckets?: number[];
  /** Buckets of the identify queue wait histogram, seconds. Default 0 … 600. */
  identifyWaitBuckets?: number[];
  /** What `/readyz` of {@link ClusterMetrics.listen}'s server waits for. Default `'shards'` (see {@link ReadinessMode}). */
  readyz?: ReadinessMode;
}

/** A cluster's metrics: the registry, its text, and an HTTP endpoint. `R`: the registry's type (the one passed in `options.registry`). */
export interface ClusterMetrics<R extends MetricsRegistry = MetricsRegistry> {
  /** The registry the metrics are in: `options.registry`, or the prom-client `Registry` made for them. */
  readonly registry: R;
  /** `Content-Type` of {@link ClusterMetrics.metrics}' text. */
  readonly contentType: string;
  /** The metrics in Prometheus text format (what a scrape returns). */
  metrics(): Promise<string>;
  /** `(req, res)` handler answering GET / HEAD with the metrics; mount it where you like, e.g. `app.get('/metrics', metrics.handler)`. */
  readonly handler: RequestHandler;
  /** Serve `GET /metrics`, and the container probes `/healthz` and `/readyz`, on a port of its own (default host 127.0.0.1). */
  listen(options: ListenOptions): Promise<HttpEndpoint>;
  /** Remove the metrics from the registry and stop listening to the cluster. Servers from `listen()` are closed. */
  detach(): Promise<void>;
}

const STATES = Object.keys(TRANSITIONS) as ShardState[];
/** This package's version (the `build_info` series). */
const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
const OP_NAMES: Record<number, string> = {
  1: 'heartbeat',
  2: 'identify',
  3: 'presence_update',
  4: 'voice_state_update',
  6: 'resume',
  8: 'request_guild_members',
  31: 'request_soundboard_sounds',
  43: 'request_channel_info',
};

/**
 * Register shardline's metrics for `cluster` and return them with an HTTP handler. Opt-in and per cluster:
 * nothing is measured until this is called. Needs `prom-client` (`npm install prom-client`).
 *
 * Series (prefix `shardline_`), named by Prometheus' conventions (base units in the name, `_total` for counters):
 * `build_info{version,node}` (always 1), `dispatches_total{type}`, `shard_dispatches_total{shard}`,
 * `events_filtered_total{shard}`, `payloads_sent_total{op,name}`, `shards{state}`, `shard_state{shard,state}` (1 for
 * each shard's current state),
 * `shard_latency_seconds{shard}`, `heartbeat_latency_seconds` (histogram), `shard_sequence{shard}`,
 * `shard_guilds{shard}`, `shard_last_close_code{shard}`, `shard_reconnects_total{shard}`,
 * `shard_resumes_total{shard}`, `shard_identifies_total{shard}`, `disconnects_total{cause,action}`,
 * `identify_budget_remaining`, `identify_budget_limit`, `identify_budget_reset_seconds`,
 * `identify_queue_waiting`, `identify_queue_wait_seconds` (histogram), `inflate_input_bytes_total{shard}`,
 * `inflate_output_bytes_total{shard}`, `inflate_buffer_bytes{shard}`, `shard_commands_queued{shard}`,
 * `shards_guilds_ready`, `guilds_unavailable`, `rate_limited_total{opcode}`, `shard_silent_total{shard}`.
 * With `workers: n` the series counted inside the shards (filtered events, payloads sent, inflate, queued
 * commands) reach the main thread through the workers' status rows; dispatches, disconnects and the heartbeat
 * latency histogram come from the cluster's `shardEvent` stream, complete in both modes.
 */
export async function attachMetrics<R extends MetricsRegistry = MetricsRegistry>(cluster: Cluster, options: MetricsOptions<R> = {}): Promise<ClusterMetrics<R>> {
  const prom = await loadProm();
  const registry = options.registry ?? (new prom.Registry() as unknown as R);
  /** The same registry as prom-client's metric constructors take it (any {@link MetricsRegistry} works for them). */
  const promRegistry = registry as unknown as Registry;
  const p = options.prefix ?? 'shardline_';
  const tracker = ClusterTracker.acquire(cluster);
  const names: string[] = [];
  const endpoints = new Set<HttpEndpoint>();

  // One snapshot of status() per scrape (every collect() of one scrape runs in the same tick).
  let snap: { status: ShardStatus[]; identify: IdentifyStatus; at: number } | null = null;
  const snapshot = () => {
    const now = performance.now();
    if (snap && now - snap.at < 50) return snap;
    const status = cluster.status();
    snap = { status, identify: cluster.identifyStatus(), at: now };
    return snap;
  };
  const register = <T extends object>(m: T): T => {
    names.push((m as unknown as { name: string }).name);
    return m;
  };
  /** Counter whose values are read at scrape time (absolute totals). */
  const counter = <L extends string>(name: string, help: string, labelNames: L[], read: (set: (labels: Record<L, string | number>, v: number) => void) => void) =>
    register(
      new prom.Counter<L>({
        name: p + name,
        help,
        labelNames,
        registers: [promRegistry],
        collect(this: Counter<L>) {
          this.reset();
          read((labels, v) => this.inc(labels as never, v));
        },
      }),
    );
  const gauge = <L extends string>(name: string, help: string, labelNames: L[], read: (set: (labels: Record<L, string | number>, v: number) => void) => void) =>
    register(
      new prom.Gauge<L>({
        name: p + name,
        help,
        labelNames,
        registers: [promRegistry],
        collect(this: Gauge<L>) {
          this.reset();
          read((labels, v) => this.set(labels as never, v));
        },
      }),
    );
  const perShard = (pick: (s: ShardStatus) => number | null | undefined) => (set: (l: { shard: number }, v: number) => void) => {
    const { status } = snapshot();
    status.forEach((s) => {
      const v = pick(s);
      if (v !== null && v !== undefined) set({ shard: s.id }, v);
    });
  };

  gauge('build_info', 'Always 1: the shardline version and the Node.js version running it, as labels.', ['version', 'node'], (set) => set({ version: VERSION, node: process.versions.node }, 1));

  // -- events
  counter('dispatches_total', 'Dispatches delivered, by event type (events excluded by the `events` filter are not delivered).', ['type'], (set) => {
    for (const [type, n] of tracker.byType) set({ type }, n);
  });
  counter('shard_dispatches_total', 'Dispatches delivered, by shard.', ['shard'], (set) => {
    tracker.byShard.forEach((n, shard) => set({ shard }, n));
  });
  counter('events_filtered_total', 'Dispatches skipped unparsed by the `events` filter, by shard.', ['shard'], (set) => perShard((s) => s.io?.filtered)(set));
  counter('payloads_sent_total', 'Payloads written to the gateway by op, over all shards (heartbeats, IDENTIFY, RESUME, commands).', ['op', 'name'], (set) => {
    const byOp = new Map<number, number>();
    for (const st of snapshot().status) for (const [op, n] of Object.entries(st.io?.payloadsSent ?? {})) byOp.set(Number(op), (byOp.get(Number(op)) ?? 0) + n);
    for (const [op, n] of byOp) set({ op, name: OP_NAMES[op] ?? 'other' }, n);
  });

  // -- shard health
  gauge('shards', 'Shards of this cluster in each state.', ['state'], (set) => {
    const counts = new Map<ShardState, number>(STATES.map((s) => [s, 0]));
    for (const s of snapshot().status) counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
    for (const [state, n] of counts) set({ state }, n);
  });
  gauge('shard_state', `1 for each shard's current state (${STATES.join(', ')}); one series per shard.`, ['shard', 'state'], (set) => {
    for (const s of snapshot().status) set({ shard: s.id, state: s.state }, 1);
  });
  gauge('shard_latency_seconds', 'Average heartbeat round trip of each shard (last 10 heartbeats), seconds.', ['shard'], (set) => perShard((s) => (s.latency === null ? null : s.latency / 1000))(set));
  gauge('shard_sequence', 'Last sequence number received by each shard.', ['shard'], (set) => perShard((s) => s.sequence)(set));
  gauge('shard_guilds', 'Guilds of each shard.', ['shard'], (set) => perShard((s) => s.guilds)(set));
  gauge('shard_last_close_code', 'Last close code each shard received from the gateway (absent before the first close).', ['shard'], (set) => perShard((s) => s.lastCloseCode)(set));
  gauge('shard_commands_queued', 'Commands waiting for the rate limit or a reconnect, by shard.', ['shard'], (set) => perShard((s) => s.io?.queuedCommands)(set));
  counter('shard_reconnects_total', 'Connections lost and re-established, by shard.', ['shard'], (set) => perShard((s) => s.reconnects)(set));
  counter('shard_resumes_total', 'RESUMEs sent, by shard.', ['shard'], (set) => perShard((s) => s.resumes)(set));
  counter('shard_identifies_total', 'IDENTIFYs sent, by shard.', ['shard'], (set) => perShard((s) => s.identifies)(set));
  counter(
    'disconnects_total',
    'Connections lost, by cause (close_<code>, zombie, op7, op9, op9_resumable, hello_timeout, ready_timeout, malformed, worker_exit) and what the shard did next (resume, identify, fatal).',
    ['cause', 'action'],
    (set) => {
      for (const row of tracker.disconnects.values()) set({ cause: row.cause, action: row.action }, row.count);
    },
  );

  // -- guilds loading, gateway rate limits, silent shards (from the event stream)
  gauge('shards_guilds_ready', 'Shards whose guilds of the current session are loaded (guildsReady: every unavailable guild arrived or guildsTimeout ran out).', [], (set) => {
    const ids = new Set(snapshot().status.map((s) => s.id));
    let n = 0;
    for (const id of tracker.guildsReady.keys()) if (ids.has(id)) n++;
    set({}, n);
  });
  gauge('guilds_unavailable', 'Guilds still missing when their shard reported guildsReady (guildsTimeout ran out), over all shards.', [], (set) => {
    let n = 0;
    for (const v of tracker.guildsReady.values()) n += v;
    set({}, n);
  });
  counter('rate_limited_total', 'Requests the gateway refused for going too fast (RATE_LIMITED dispatches), by opcode.', ['opcode'], (set) => {
    for (const [opcode, n] of tracker.rateLimited) set({ opcode }, n);
  });
  counter('shard_silent_total', 'Times a shard was reported silent (heartbeats ACKed, no dispatch for silentTimeout), by shard.', ['shard'], (set) => {
    tracker.silent.forEach((n, shard) => set({ shard }, n));
  });

  // -- heartbeat latency histogram: every round trip of every shard, observed as its ACK passes on the stream
  const latencyHistogram = register(
    new prom.Histogram({
      name: p + 'heartbeat_latency_seconds',
      help: 'Heartbeat round trips (beat to ACK) of every shard, seconds.',
      buckets: options.latencyBuckets ?? [0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5],
      registers: [promRegistry],
    }),
  );
  const offLatency = tracker.observeLatency((ms) => latencyHistogram.observe(ms / 1000));

  // -- identify queue and budget
  gauge('identify_budget_remaining', 'Session starts (IDENTIFYs) left in the daily budget.', [], (set) => {
    const r = snapshot().identify.remaining;
    if (r !== null) set({}, r);
  });
  gauge('identify_budget_limit', 'Session starts (IDENTIFYs) per budget period.', [], (set) => {
    const t = snapshot().identify.total;
    if (t !== null) set({}, t);
  });
  gauge('identify_budget_reset_seconds', 'Seconds until the session start budget refills.', [], (set) => {
    const r = snapshot().identify.resetIn;
    if (r !== null) set({}, r / 1000);
  });
  gauge('identify_queue_waiting', 'Shards waiting for an identify turn now.', [], (set) => set({}, snapshot().identify.waiting));
  const waitHistogram = register(
    new prom.Histogram({
      name: p + 'identify_queue_wait_seconds',
      help: 'Time shards waited in the identify queue for their turn, seconds.',
      buckets: options.identifyWaitBuckets ?? [0, 1, 5, 10, 20, 30, 60, 120, 300, 600],
      registers: [promRegistry],
    }),
  );
  const onTurn = (e: { waited: number }) => waitHistogram.observe(e.waited / 1000);
  cluster.on('identifyTurn', onTurn);

  // -- transport decompression
  counter('inflate_input_bytes_total', 'Compressed bytes received, by shard.', ['shard'], (set) => perShard((s) => s.io?.inflate.bytesIn)(set));
  counter('inflate_output_bytes_total', 'Decompressed bytes produced, by shard.', ['shard'], (set) => perShard((s) => s.io?.inflate.bytesOut)(set));
  gauge('inflate_buffer_bytes', 'Compressed bytes held for an incomplete message, by shard.', ['shard'], (set) => perShard((s) => s.io?.inflate.bufferSize)(set));

  if (options.defaultMetrics) {
    const before = new Set(registry.getMetricsAsArray().map((m) => m.name));
    prom.collectDefaultMetrics({ register: promRegistry, prefix: p });
    for (const m of registry.getMetricsAsArray()) if (!before.has(m.name)) names.push(m.name);
  }

  const metrics = () => registry.metrics();
  const handler: RequestHandler = (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: Error) => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`metrics failed: ${err.message}\n`);
      },
    );
  };
  let detached = false;
  let probes: Probes | null = null;
  return {
    registry,
    get contentType() {
      return registry.contentType;
    },
    metrics,
    handler,
    async listen(opts) {
      probes ??= createProbes(cluster, options.readyz);
      const ep = await listenHttp(
        (req, res) => {
          const path = pathOf(req);
          if (path === '/metrics') return handler(req, res);
          if (probes?.answer(req, res)) return;
          if (path === '/') {
            res.writeHead(302, { location: '/metrics' }).end();
            return;
          }
          res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: the metrics are at /metrics (probes: /healthz, /readyz)\n');
        },
        opts,
        'metrics',
      );
      endpoints.add(ep);
      return ep;
    },
    async detach() {
      if (detached) return;
      detached = true;
      cluster.off('identifyTurn', onTurn);
      offLatency();
      tracker.release();
      probes?.close();
      for (const name of names) registry.removeSingleMetric(name);
      await Promise.all([...endpoints].map((e) => e.close()));
    },
  };
}
