/**
 * Prometheus series of a {@link GatewayProxy}, read from `proxy.stats()` at scrape time.
 * @packageDocumentation
 */
import { loadPromClient, type MetricsRegistry } from '../metrics.js';
import type { GatewayProxy } from './gateway-proxy.js';

/**
 * Register the proxy's series in `registry` (prefix `shardline_proxy_`): `clients{shard}`, `replay_depth{shard}`,
 * `replay_bytes{shard}`, `forwarded_commands_total{shard}`, `cache_guilds`, `cache_bytes`, `detached_sessions`,
 * `client_identifies_total`, `client_resumes_total`, `client_resumes_refused_total`, `client_burst_overflows_total`,
 * `rest_requests_total`, `handled_dispatches_total` (finished by the `handler` module).
 * Returns a function that removes them.
 */
export async function attachProxyMetrics(proxy: GatewayProxy, registry: MetricsRegistry, prefix = 'shardline_proxy_'): Promise<() => void> {
  const prom = await loadPromClient();
  const names: string[] = [];
  /** One Gauge or Counter whose values are read at scrape time: `[labels, value]` pairs (no labels: `{}`). */
  const series = (name: string, help: string, kind: 'Gauge' | 'Counter', labelNames: string[], read: () => [object, number][]) => {
    const Ctor = prom[kind] as unknown as new (o: object) => { name: string };
    names.push(prefix + name);
    registry.registerMetric(
      new Ctor({
        name: prefix + name,
        help,
        labelNames,
        registers: [],
        collect(this: { reset(): void; set?(l: object, v: number): void; inc?(l: object, v: number): void }) {
          this.reset();
          for (const [labels, v] of read()) {
            if (this.set) this.set(labels, v);
            else this.inc?.(labels, v);
          }
        },
      }),
    );
  };
  const perShard = (name: string, help: string, field: 'clients' | 'ringDepth' | 'ringBytes' | 'commands', kind: 'Gauge' | 'Counter') =>
    series(name, help, kind, ['shard'], () => proxy.stats().shards.map((s) => [{ shard: String(s.id) }, s[field]]));
  const single = (name: string, help: string, read: () => number, kind: 'Gauge' | 'Counter') => series(name, help, kind, [], () => [[{}, read()]]);
  perShard('clients', 'Clients attached to each upstream shard.', 'clients', 'Gauge');
  perShard('replay_depth', 'Dispatches held in each shard replay ring.', 'ringDepth', 'Gauge');
  perShard('replay_bytes', 'JSON bytes held in each shard replay ring.', 'ringBytes', 'Gauge');
  perShard('forwarded_commands_total', 'Client commands forwarded upstream, per shard.', 'commands', 'Counter');
  single('cache_guilds', 'Guilds in the proxy cache.', () => proxy.stats().guilds, 'Gauge');
  single('cache_bytes', 'Bytes the guild cache holds (compressed guilds, pending changes, open guilds).', () => proxy.cacheBytes(), 'Gauge');
  single('detached_sessions', 'Disconnected client sessions kept for RESUME.', () => proxy.stats().detachedSessions, 'Gauge');
  single('client_identifies_total', 'Client IDENTIFYs answered.', () => proxy.stats().identifies, 'Counter');
  single('client_resumes_total', 'Client RESUMEs replayed.', () => proxy.stats().resumes, 'Counter');
  single('client_resumes_refused_total', 'Client RESUMEs refused (op 9).', () => proxy.stats().resumesRefused, 'Counter');
  single('client_burst_overflows_total', 'Clients closed (4000) because the replay ring moved past them during their READY burst.', () => proxy.stats().burstOverflows, 'Counter');
  single('rest_requests_total', 'REST requests forwarded upstream.', () => proxy.stats().restRequests, 'Counter');
  single('handled_dispatches_total', 'Upstream dispatches the handler module finished.', () => proxy.stats().handled, 'Counter');
  return () => {
    for (const n of names) registry.removeSingleMetric(n);
  };
}
