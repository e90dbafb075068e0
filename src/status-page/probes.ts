/**
 * Container probes for the metrics server and the status page: `/healthz` (the process answers: 200) and
 * `/readyz` (200 when every shard is ready, else 503 with a short JSON body saying which are not).
 * @packageDocumentation
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Cluster } from '../cluster.js';
import type { ShardEvent } from '../events.js';
import { pathOf } from './http.js';

/**
 * What `/readyz` waits for: `'shards'` (default), every shard of the cluster in state `ready`; `'guilds'`, also every
 * shard's guilds loaded since its last READY (its `guildsReady` event, see the Cluster's `waitForGuilds`).
 */
export type ReadinessMode = 'shards' | 'guilds';

/** The body of `/readyz`. */
export interface Readiness {
  /** True: `/readyz` answers 200; false: 503. */
  ready: boolean;
  /** What was waited for. */
  mode: ReadinessMode;
  /** Shards of this cluster. */
  shards: number;
  /** Shards not ready yet (at most 20 listed), with their state; `guilds: false` when only the guilds are missing. */
  waiting: { id: number; state: string; guilds?: false }[];
}

/** Answers `/healthz` and `/readyz` for one cluster; `close()` stops listening to it. */
export interface Probes {
  readiness(): Readiness;
  /** Answer the request when its path is a probe's; false otherwise (the caller answers it). */
  answer(req: IncomingMessage, res: ServerResponse): boolean;
  close(): void;
}

/** The probes of `cluster`. In `'guilds'` mode it listens to the cluster's `shardEvent` stream until `close()`. */
export function createProbes(cluster: Cluster, mode: ReadinessMode = 'shards'): Probes {
  const loaded = new Set<number>();
  const onEvent = (e: ShardEvent) => {
    if (e.kind === 'ready') loaded.delete(e.shardId);
    else if (e.kind === 'guildsReady') loaded.add(e.shardId);
  };
  if (mode === 'guilds') cluster.on('shardEvent', onEvent);
  const readiness = (): Readiness => {
    const status = cluster.status();
    const waiting: Readiness['waiting'] = [];
    for (const s of status) {
      if (s.state !== 'ready') waiting.push({ id: s.id, state: s.state });
      else if (mode === 'guilds' && !loaded.has(s.id)) waiting.push({ id: s.id, state: s.state, guilds: false });
    }
    return { ready: status.length > 0 && waiting.length === 0, mode, shards: status.length, waiting: waiting.slice(0, 20) };
  };
  return {
    readiness,
    answer(req, res) {
      // by suffix, like the status page's own paths, so a mounted handler (`/status/readyz`) answers too
      const path = pathOf(req);
      const health = path.endsWith('/healthz');
      if (!health && !path.endsWith('/readyz')) return false;
      const head = req.method === 'HEAD';
      if (health) {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end(head ? undefined : 'ok\n');
        return true;
      }
      const r = readiness();
      res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
      res.end(head ? undefined : `${JSON.stringify(r)}\n`);
      return true;
    },
    close() {
      cluster.off('shardEvent', onEvent);
    },
  };
}
