/**
 * `shardline/proxy`: a gateway proxy. It holds the real gateway sessions and speaks Discord's gateway protocol to
 * bot processes, so a bot restart costs nothing upstream and loses nothing.
 *
 * @example
 * ```ts
 * import { GatewayProxy } from 'shardline/proxy';
 * const proxy = await GatewayProxy.start({ token: process.env.DISCORD_TOKEN!, intents: 513, shards: 'auto', port: 7878 });
 * // bots: gateway URL proxy.url, REST base proxy.apiUrl, the same token
 * ```
 * @packageDocumentation
 */
export { GatewayProxy, type GatewayProxyEventMap, type ProxyStats } from './gateway-proxy.js';
export type { GatewayProxyOptions } from './options.js';
export { attachProxyMetrics } from './metrics.js';
