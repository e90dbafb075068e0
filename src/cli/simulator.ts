/**
 * `shardline simulator`: start the bundled gateway simulator for other tools to test against, until Ctrl-C.
 * @packageDocumentation
 */
import type { ParseArgsConfig } from 'node:util';
import { ShardlineError } from '../errors.js';
import { PrivilegedIntents } from '../intents.js';
import { GatewaySimulator } from '../simulator/index.js';
import { int, parse, parseIntents, positive } from './args.js';
import { c } from './ui.js';

export const SIM_HELP = `Usage: shardline simulator [options]

Start the bundled gateway simulator: a real websocket gateway and a REST API (gateway/bot, users, guilds,
channels, messages, application commands, interaction callbacks) on one loopback port, for bots of any library
to test against offline. Prints its URLs, then runs until Ctrl-C.

Options:
  --port <port>            TCP port (default 0: a free one)
  --host <address>         interface (default 127.0.0.1)
  --shards <n>             shard count GET /gateway/bot recommends (default 2)
  --max-concurrency <n>    identify lanes, session_start_limit.max_concurrency (default 1)
  --guilds <n>             guilds of the simulated bot, spread over the shards (default 10)
  --time-scale <x>         virtual time runs 1/x times faster, e.g. 0.1; clients must use the same scale
                           (shardline run --time-scale) (default 1)
  --token <token>          a token the simulator accepts; repeat for more (default sim-token)
  --app-intents <names|n>  privileged intents the application has enabled; others close with 4014
                           (default: GuildMembers,GuildPresences,MessageContent)
  --traffic <n>            background events per second over all shards (default 0: none)
  --heartbeat-interval <ms>  heartbeat_interval sent in HELLO (default 41250)
  --identify-window <ms>   one IDENTIFY per identify lane per window (default 5000)
  --no-rest                serve only GET /gateway and /gateway/bot (default: the whole REST API)
  --json                   print the URLs as one JSON line instead of text
  -h, --help               show this help
`;

const SIM_OPTIONS = {
  port: { type: 'string' },
  host: { type: 'string' },
  shards: { type: 'string' },
  'max-concurrency': { type: 'string' },
  guilds: { type: 'string' },
  'time-scale': { type: 'string' },
  token: { type: 'string', multiple: true },
  'app-intents': { type: 'string' },
  traffic: { type: 'string' },
  'heartbeat-interval': { type: 'string' },
  'identify-window': { type: 'string' },
  'no-rest': { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/** Run `shardline simulator` with its arguments; resolves with the exit code. */
export async function simulatorCommand(argv: string[]): Promise<number> {
  const o = parse('simulator', argv, SIM_OPTIONS);
  if (o.help) {
    process.stdout.write(SIM_HELP);
    return 0;
  }
  const port = int('port', o.port, 0, 65535) ?? 0;
  const shards = int('shards', o.shards, 1, 100_000) ?? 2;
  const maxConcurrency = int('max-concurrency', o['max-concurrency'], 1, 1024) ?? 1;
  const guilds = int('guilds', o.guilds, 0, 1_000_000) ?? 10;
  const scale = positive('time-scale', o['time-scale']) ?? 1;
  const traffic = o.traffic === undefined || o.traffic === '0' ? 0 : positive('traffic', o.traffic)!;
  const heartbeatInterval = int('heartbeat-interval', o['heartbeat-interval'], 1);
  const identifyWindow = int('identify-window', o['identify-window'], 0);
  const tokens = o.token?.length ? o.token : ['sim-token'];
  const applicationIntents = o['app-intents'] !== undefined ? parseIntents(o['app-intents'], 'app-intents') & PrivilegedIntents : PrivilegedIntents;
  let sim: GatewaySimulator;
  try {
    sim = await GatewaySimulator.start({
      host: o.host ?? '127.0.0.1',
      port,
      shards,
      maxConcurrency,
      guilds,
      tokens,
      applicationIntents,
      ...(scale !== 1 ? { timeScale: scale } : {}),
      ...(heartbeatInterval ? { heartbeatInterval } : {}),
      ...(identifyWindow !== undefined ? { identifyWindow } : {}),
      rest: !o['no-rest'],
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') throw new ShardlineError('PORT_IN_USE', `port ${port} is already in use; pick another with --port (0 picks a free one)`);
    throw err;
  }
  // Traffic goes to whichever shards have a live session at each tick.
  const stopTraffic = traffic ? sim.startTraffic({ eventsPerSecond: traffic, mix: 'presences_off' }) : () => {};
  const info = {
    url: sim.url,
    apiUrl: sim.apiUrl,
    apiBaseUrl: sim.apiBaseUrl,
    gatewayBot: `${sim.apiUrl}/gateway/bot`,
    rest: !o['no-rest'],
    tokens,
    shards,
    maxConcurrency,
    guilds,
    identifyWindow: identifyWindow ?? 5000,
    timeScale: scale,
  };
  if (o.json) process.stdout.write(`${JSON.stringify(info)}\n`);
  else {
    process.stdout.write(
      [
        `${c.bold('shardline gateway simulator')} listening`,
        `  gateway     ${sim.url}  (?v=10&encoding=json&compress=zlib-stream)`,
        `  REST        ${sim.apiUrl}  (${o['no-rest'] ? 'GET /gateway/bot only' : `gateway/bot, users, guilds, channels, messages, commands; API root ${sim.apiBaseUrl}`})`,
        `  token       ${tokens.join(', ')}`,
        `  shards      ${shards} recommended, max_concurrency ${maxConcurrency}, ${guilds} guilds${scale !== 1 ? `, time ×${+(1 / scale).toFixed(2)} (clients need --time-scale ${scale})` : ''}`,
        `  try         DISCORD_TOKEN=${tokens[0]} shardline run --api-url ${sim.apiUrl}${scale !== 1 ? ` --time-scale ${scale}` : ''}`,
        'Ctrl-C to stop.',
        '',
      ].join('\n'),
    );
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  stopTraffic();
  await sim.stop();
  return 0;
}
