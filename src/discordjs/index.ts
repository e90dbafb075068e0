/**
 * `shardline/discordjs` — run discord.js 14 (or a bare `@discordjs/ws` manager) on shardline's shards.
 *
 * - {@link ShardlineStrategy}: an `@discordjs/ws` `IShardingStrategy` for `ws.buildStrategy`.
 * - {@link ShardlineIdentifyThrottler} / {@link shardlineIdentifyThrottler}: `ws.buildIdentifyThrottler` backed by a
 *   shardline identify queue (share the lanes and the daily budget between processes with `RedisIdentifyQueue`).
 *
 * shardline does not import `@discordjs/ws` or discord.js: the strategy works with the manager it is handed.
 *
 * @example
 * ```ts
 * import { Client, GatewayIntentBits } from 'discord.js';
 * import { ShardlineStrategy } from 'shardline/discordjs';
 *
 * const client = new Client({
 *   intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages],
 *   ws: { buildStrategy: (manager) => new ShardlineStrategy(manager) },
 * });
 * client.on('clientReady', () => console.log(`${client.user?.tag}: ${client.guilds.cache.size} guilds`));
 * await client.login(process.env.DISCORD_TOKEN);
 * ```
 * @packageDocumentation
 */
export { ShardlineStrategy, type ShardlineStrategyOptions, type DiscordjsShardStatus } from './strategy.js';
export { ShardlineIdentifyThrottler, shardlineIdentifyThrottler } from './throttler.js';
export type { DiscordjsManager, DiscordjsManagerOptions, DiscordjsSessionInfo, EventShape } from './shapes.js';
