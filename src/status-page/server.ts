/**
 * The live status page of a {@link Cluster}: one self-contained HTML page (no external assets) that polls a
 * JSON snapshot once a second and draws every shard as a tile coloured by state, with the identify budget and
 * queue. Serve it on a port of its own ({@link serveStatus}) or mount its handler ({@link statusHandler}).
 *
 * @example
 * ```ts
 * import { Cluster, serveStatus } from 'shardline';
 * const cluster = new Cluster({ token, intents });
 * const status = await serveStatus(cluster, { port: 8080 });   // http://127.0.0.1:8080/
 * await cluster.connect();
 * // later: await status.close();
 * ```
 * @packageDocumentation
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Cluster } from '../cluster.js';
import type { IdentifyStatus } from '../cluster-status.js';
import { ClusterTracker, type LastDisconnect } from '../cluster-tracker.js';
import type { ClusterMetrics } from '../metrics.js';
import type { ShardState } from '../state.js';
import { listenHttp, pathOf, type HttpEndpoint, type ListenOptions, type RequestHandler } from './http.js';
import { STATUS_PAGE_HTML } from './page.js';
import { createProbes, type ReadinessMode } from './probes.js';
import { collectSections, type StatusSection } from './sections.js';

/** One shard in the status snapshot. */
export interface StatusShard {
  id: number;
  state: ShardState;
  /** Average heartbeat round trip, ms. */
  latency: number | null;
  guilds: number | null;
  sequence: number;
  lastCloseCode: number | null;
  reconnects: number;
  resumes: number;
  identifies: number;
  /** Dispatches delivered. */
  dispatches: number;
  /** First 8 characters of the session id (enough to tell sessions apart; the rest is not published). */
  session: string | null;
  worker: number | null;
  /** Why the shard stopped, when fatal. */
  error: string | null;
  lastDisconnect: LastDisconnect | null;
}

/** The JSON served at `status.json`. */
export interface StatusSnapshot {
  /** Format version. */
  v: 1;
  /** `Date.now()` of the snapshot. */
  at: number;
  title: string;
  /** Seconds since the status page was attached. */
  uptime: number;
  cluster: {
    shards: number;
    total: number | null;
    gateway: string | null;
    states: Partial<Record<ShardState, number>>;
    /** Shards whose guilds are loaded (`guildsReady`), and the guilds they reported still unavailable. */
    guildsReady: number;
    guildsUnavailable: number;
  };
  identify: IdentifyStatus;
  events: { total: number; byType: { type: string; count: number }[] };
  disconnects: { cause: string; action: string; count: number }[];
  shards: StatusShard[];
  /** Extra sections from {@link StatusPageOptions.sections} (empty without it). */
  sections: StatusSection[];
}

/** Options of {@link statusHandler} and {@link serveStatus}. */
export interface StatusPageOptions {
  /** Heading of the page. Default `'shardline'`. */
  title?: string;
  /** Also answer `/metrics` from these metrics (one port for both). */
  metrics?: ClusterMetrics;
  /** What `/readyz` waits for. Default `'shards'` (see {@link ReadinessMode}). */
  readyz?: ReadinessMode;
  /**
   * Extra sections, called at every snapshot: each is drawn under the shard tiles as summary cards and a per-shard
   * table, and published in `status.json` as `sections`. `GatewayProxy.statusSection()` is one.
   *
   * @example
   * ```ts
   * const status = await serveStatus(proxy.cluster, { port: 8080, sections: () => [proxy.statusSection()] });
   * ```
   */
  sections?: () => StatusSection[];
}

/** A status page that can be closed. */
export interface StatusPage {
  /** `(req, res)` handler: the page for any path, `…/status.json` for the snapshot, `/healthz` and `/readyz` for container probes. */
  readonly handler: RequestHandler;
  /** The current snapshot (what `status.json` returns). */
  snapshot(): StatusSnapshot;
  /** Stop listening to the cluster (and close the server of {@link serveStatus}). */
  close(): Promise<void>;
}

/** A status page served on its own port. */
export interface StatusServer extends StatusPage {
  /** `http://host:port/` — open it in a browser. */
  readonly url: string;
  readonly port: number;
}

/** Build the status snapshot of `cluster`. */
export function statusSnapshot(cluster: Cluster, tracker: ClusterTracker, title = 'shardline', sections?: () => StatusSection[]): StatusSnapshot {
  const status = cluster.status();
  const states: Partial<Record<ShardState, number>> = {};
  const shards: StatusShard[] = status.map((s) => {
    states[s.state] = (states[s.state] ?? 0) + 1;
    return {
      id: s.id,
      state: s.state,
      latency: s.latency,
      guilds: s.guilds ?? null,
      sequence: s.sequence,
      lastCloseCode: s.lastCloseCode,
      reconnects: s.reconnects,
      resumes: s.resumes,
      identifies: s.identifies,
      dispatches: tracker.byShard[s.id] ?? 0,
      session: s.sessionId ? s.sessionId.slice(0, 8) : null,
      worker: s.worker ?? null,
      error: s.error ?? null,
      lastDisconnect: tracker.lastDisconnect.get(s.id) ?? null,
    };
  });
  let guildsReady = 0;
  let guildsUnavailable = 0;
  for (const s of status) {
    const missing = tracker.guildsReady.get(s.id);
    if (missing === undefined) continue;
    guildsReady++;
    guildsUnavailable += missing;
  }
  const byType = [...tracker.byType].map(([type, count]) => ({ type, count })).sort((a, b) => b.count - a.count);
  let gateway: string | null = null;
  try {
    gateway = cluster.gatewayUrl ? new URL(cluster.gatewayUrl).host : null;
  } catch {
    gateway = null;
  }
  return {
    v: 1,
    at: Date.now(),
    title,
    uptime: Math.round((Date.now() - tracker.createdAt) / 1000),
    cluster: { shards: status.length, total: cluster.total, gateway, states, guildsReady, guildsUnavailable },
    identify: cluster.identifyStatus(),
    events: { total: tracker.dispatches, byType: byType.slice(0, 12) },
    disconnects: [...tracker.disconnects.values()].map((d) => ({ ...d })).sort((a, b) => b.count - a.count),
    shards,
    sections: collectSections(sections),
  };
}

/**
 * The status page of `cluster` as a `(req, res)` handler to mount anywhere (e.g. `app.use('/status', page.handler)`):
 * any path answers the HTML page, a path ending in `status.json` the snapshot. Call `close()` when done.
 */
export function statusHandler(cluster: Cluster, options: StatusPageOptions = {}): StatusPage {
  const tracker = ClusterTracker.acquire(cluster);
  const title = options.title ?? 'shardline';
  const html = STATUS_PAGE_HTML.replaceAll('__TITLE__', escapeHtml(title));
  let closed = false;
  const probes = createProbes(cluster, options.readyz);
  const snapshot = () => statusSnapshot(cluster, tracker, title, options.sections);
  const handler: RequestHandler = (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    const path = pathOf(req);
    if (options.metrics && path.endsWith('/metrics')) return options.metrics.handler(req, res);
    if (probes.answer(req, res)) return;
    if (path.endsWith('/favicon.ico')) {
      res.writeHead(204).end();
      return;
    }
    const json = path.endsWith('status.json');
    const body = json ? JSON.stringify(snapshot()) : html;
    res.writeHead(200, {
      'content-type': json ? 'application/json; charset=utf-8' : 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      ...(json ? {} : { 'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:" }),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  return {
    handler,
    snapshot,
    async close() {
      if (closed) return;
      closed = true;
      probes.close();
      tracker.release();
    },
  };
}

/** Serve the live status page of `cluster` on `port` (host 127.0.0.1 unless given). */
export async function serveStatus(cluster: Cluster, options: StatusPageOptions & ListenOptions): Promise<StatusServer> {
  const page = statusHandler(cluster, options);
  let ep: HttpEndpoint;
  try {
    ep = await listenHttp(page.handler, options, 'status page');
  } catch (err) {
    await page.close();
    throw err;
  }
  return {
    url: `${ep.url}/`,
    port: ep.port,
    handler: page.handler,
    snapshot: page.snapshot,
    async close() {
      await Promise.all([ep.close(), page.close()]);
    },
  };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
