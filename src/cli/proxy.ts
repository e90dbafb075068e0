/**
 * `shardline proxy`: run a {@link GatewayProxy} until SIGINT / SIGTERM.
 * @packageDocumentation
 */
import type { ParseArgsConfig } from 'node:util';
import { scaledClock, systemClock } from '../clock.js';
import type { ClusterOptions } from '../cluster.js';
import { attachMetrics } from '../metrics.js';
import { GatewayProxy } from '../proxy/gateway-proxy.js';
import { attachProxyMetrics } from '../proxy/metrics.js';
import { listenHttp, pathOf } from '../status-page/http.js';
import { statusHandler } from '../status-page/server.js';
import { envToken, handlerPath, int, parse, parseIntents, positive, UsageError, url } from './args.js';

export const PROXY_HELP = `shardline proxy — a gateway proxy: bots connect to it instead of Discord and restart without re-identifying

Usage: DISCORD_TOKEN=... shardline proxy --port <n> [options]

Options:
  --port <n>               port for clients: the gateway websocket and /api/ (default 0: a free port)
  --host <addr>            interface to listen on (default 127.0.0.1)
  --shards <n|auto>        upstream shard count (default auto: GET /gateway/bot)
  --intents <names|n>      upstream intents, e.g. Guilds,GuildMessages or 513 (default Guilds,GuildMessages)
  --api-url <url>          upstream REST base (default https://discord.com/api/v10)
  --gateway-url <url>      upstream gateway URL (default: from GET /gateway/bot)
  --redis <url>            persist upstream sessions, the cache, the replay rings and client sessions: a restarted
                           proxy RESUMEs upstream and its clients RESUME on it
  --replay-size <n>        dispatches kept per shard for client RESUMEs (default 10000)
  --time-scale <x>         run upstream timers 1/x times faster (only to match a simulator's --time-scale)
  --metrics-port <n>       serve Prometheus metrics (needs prom-client)
  --status-port <n>        serve the status page with the proxy's counters (also as JSON at /proxy.json)
  --handler <path>         run this handler module (export default defineHandler({ dispatch })) in the proxy on
                           every upstream dispatch, after its clients got it; prints what it posts (ctx.post) as
                           JSON lines {"shardId","worker","value"} on stdout, its log lines on stderr
  --json                   once upstream is ready, print {"url","apiUrl"} as one JSON line on stdout (with
                           --handler, after the lines it posted while the proxy started)
  -h, --help               show this help
`;

const PROXY_OPTIONS = {
  port: { type: 'string' },
  host: { type: 'string' },
  shards: { type: 'string' },
  intents: { type: 'string' },
  'api-url': { type: 'string' },
  'gateway-url': { type: 'string' },
  redis: { type: 'string' },
  'replay-size': { type: 'string' },
  'time-scale': { type: 'string' },
  'metrics-port': { type: 'string' },
  'status-port': { type: 'string' },
  handler: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/** Run the proxy command. Resolves with the exit code once stopped by a signal. */
export async function proxyCommand(argv: string[]): Promise<number> {
  const o = parse('proxy', argv, PROXY_OPTIONS);
  if (o.help) {
    process.stdout.write(PROXY_HELP);
    return 0;
  }
  const token = envToken();
  if (!token) throw new UsageError('no token: set the DISCORD_TOKEN environment variable to your bot token (clients connect with the same token)', 'proxy');
  const port = int('port', o.port, 0, 65535) ?? 0;
  const replaySize = int('replay-size', o['replay-size'], 1, 10_000_000);
  const metricsPort = int('metrics-port', o['metrics-port'], 0, 65535);
  const statusPort = int('status-port', o['status-port'], 0, 65535);
  let shards: ClusterOptions['shards'] = 'auto';
  if (o.shards !== undefined && o.shards !== 'auto') shards = int('shards', o.shards, 1, 100_000);
  const scale = positive('time-scale', o['time-scale']) ?? 1;
  const apiUrl = url('api-url', o['api-url']);
  const gatewayUrl = url('gateway-url', o['gateway-url']);
  const intents = o.intents !== undefined ? parseIntents(o.intents) : 1 | 512;
  const host = o.host ?? '127.0.0.1';
  const handler = handlerPath(o.handler);
  const clean = (m: string) => m.replaceAll(token, '[token]');

  const proxy = await GatewayProxy.start(
    {
      token,
      intents,
      shards,
      port,
      host,
      clock: scale === 1 ? systemClock : scaledClock(scale),
      ...(replaySize !== undefined ? { replaySize } : {}),
      ...(apiUrl ? { apiUrl } : {}),
      ...(gatewayUrl ? { gatewayUrl } : {}),
      ...(o.redis ? { redis: o.redis } : {}),
      ...(scale !== 1 ? { shardOptions: () => ({ helloTimeout: 600_000, readyTimeout: 600_000 }) } : {}),
      ...(handler !== undefined ? { handler } : {}),
    },
    (p) => {
      // from before the upstream connects: the handler runs on READY and the GUILD_CREATEs while the proxy starts
      p.on('error', (err) => process.stderr.write(`shardline proxy: ${clean(err.message)}\n`));
      p.on('handlerMessage', (m) => process.stdout.write(`${JSON.stringify({ shardId: m.shardId, worker: m.worker, value: m.value })}\n`));
      p.on('handlerLog', (l) => process.stderr.write(`shardline proxy: handler ${l.level}${l.shardId !== null ? ` shard ${l.shardId}` : ''}: ${clean(l.message)}\n`));
    },
  );
  const cleanups: (() => unknown)[] = [];
  if (metricsPort !== undefined) {
    const metrics = await attachMetrics(proxy.cluster, { defaultMetrics: true });
    const detach = await attachProxyMetrics(proxy, metrics.registry);
    const ep = await metrics.listen({ port: metricsPort, host });
    cleanups.push(detach, () => metrics.detach());
    process.stderr.write(`shardline proxy: metrics at ${ep.url}/metrics\n`);
  }
  if (statusPort !== undefined) {
    // The upstream cluster's page with the proxy's section (clients, replay rings, cache, commands); the raw
    // `proxy.stats()` also at /proxy.json.
    const page = statusHandler(proxy.cluster, { title: 'shardline proxy', sections: () => [proxy.statusSection()] });
    const ep = await listenHttp(
      (req, res) => {
        if (!pathOf(req).endsWith('proxy.json')) return page.handler(req, res);
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(JSON.stringify(proxy.stats()));
      },
      { port: statusPort, host },
      'status page',
    );
    cleanups.push(
      () => ep.close(),
      () => page.close(),
    );
    process.stderr.write(`shardline proxy: status page at ${ep.url}/ (proxy counters at ${ep.url}/proxy.json)\n`);
  }
  if (o.json) process.stdout.write(`${JSON.stringify({ url: proxy.url, apiUrl: proxy.apiUrl })}\n`);
  else process.stderr.write(`shardline proxy: clients connect to ${proxy.url} (REST base ${proxy.apiUrl}) with the bot's token\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  for (const c of cleanups.reverse()) await c();
  await proxy.close();
  return 0;
}
