// discord.js 14 on shardline's shards: the bot of discordjs.mjs with ShardlineStrategy plugged into
// `ws.buildStrategy`. Needs dist/ (npm run build): it imports the package as a user would.
import { ShardlineStrategy } from 'shardline/discordjs';
import { runDiscordjsBot } from './discordjs.mjs';

runDiscordjsBot({ buildStrategy: (manager) => new ShardlineStrategy(manager, { compression: 'zlib-stream' }) });
