/**
 * `shardline run`: connect a cluster (token from `DISCORD_TOKEN`, or `--simulator`) and write every dispatch as one
 * JSON line to stdout; progress, logs and errors go to stderr. Optional metrics and status page ports.
 * @packageDocumentation
 */
import { once } from 'node:events';
import type { ParseArgsConfig } from 'node:util';
import { closestEventName, isKnownEventName, type EventName } from '../event-names.js';
import { scaledClock, systemClock, type Clock } from '../clock.js';
import { Cluster, ClusterConnectError, type ClusterOptions } from '../cluster.js';
import { redact } from '../errors.js';
import type { TransportCompression } from '../inflate.js';
import { Intents, intentNames, intentsForEvent, intentsForEvents } from '../intents.js';
import { routeLogs, type LogLevel } from '../logging.js';
import { attachMetrics } from '../metrics.js';
import { GatewaySimulator } from '../simulator/index.js';
import { serveStatus } from '../status-page/server.js';
import { envToken, handlerPath, int, parse, parseIntents, positive, UsageError, url } from './args.js';
import { c, StderrUi, stderrLogger } from './ui.js';

export const RUN_HELP = `Usage: shardline run [options]

Connect a cluster of shards and write each dispatch to stdout as one JSON line:
  {"shardId":0,"type":"MESSAGE_CREATE","sequence":42,"data":{...}}
Progress, logs and errors go to stderr. The bot token is read from DISCORD_TOKEN (never from a flag, and
never printed).

Options:
  --simulator              start the bundled gateway simulator and connect to it (no real token needed)
  --shards <n|auto>        shard count (default auto: what GET /gateway/bot recommends)
  --intents <names|n>      intents by name, e.g. Guilds,GuildMessages,MessageContent, or as a number
                           (default: the intents --events need, or Guilds)
  --events <types>         dispatch types to print, e.g. MESSAGE_CREATE,GUILD_CREATE (default: all);
                           others are skipped without being parsed; a name this version does not
                           know is refused (with the closest known one)
  --extra-events <types>   dispatch types Discord added after this release, printed in addition to --events
  --max-events <n>         exit after printing n dispatches
  --metrics-port <port>    serve Prometheus /metrics (needs prom-client) and the probes /healthz, /readyz
  --status-port <port>     serve the live status page at http://<host>:<port>/ (and /healthz, /readyz)
  --host <address>         interface of the metrics and status servers (default 127.0.0.1)
  --workers <n>            run the shards in n worker threads (default 0: this thread)
  --handler <path>         run this handler module (export default defineHandler({ dispatch })) on every
                           dispatch, in the thread that runs its shard; prints what it posts (ctx.post) as
                           JSON lines instead of the dispatches (--max-events counts them)
  --compression <c>        zlib-stream (default), zstd-stream or none
  --api-url <url>          REST base for GET /gateway/bot (default https://discord.com/api/v10)
  --gateway-url <url>      gateway URL (default: the one GET /gateway/bot returns); without --api-url no REST
                           call is made (--shards auto then runs 1 shard)
  --time-scale <x>         run every timer 1/x times faster: only to match a simulator started with the same
                           --time-scale (default 1)
  --log-level <level>      debug, info, warn (default), error or silent
  -q, --quiet              no progress bar or status lines on stderr (errors are still printed)
  -h, --help               show this help

With --simulator:
  --traffic <n>            background events per second the simulator sends over all shards (default 5)
  --sim-guilds <n>         guilds of the simulated bot (default 10)

Exit codes: 0 done (Ctrl-C, or --max-events reached), 1 failed, 2 bad usage.
`;

const RUN_OPTIONS = {
  simulator: { type: 'boolean' },
  shards: { type: 'string' },
  intents: { type: 'string' },
  events: { type: 'string' },
  'extra-events': { type: 'string' },
  'max-events': { type: 'string' },
  'metrics-port': { type: 'string' },
  'status-port': { type: 'string' },
  host: { type: 'string' },
  workers: { type: 'string' },
  handler: { type: 'string' },
  compression: { type: 'string' },
  'api-url': { type: 'string' },
  'gateway-url': { type: 'string' },
  'time-scale': { type: 'string' },
  'log-level': { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  traffic: { type: 'string' },
  'sim-guilds': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/** "2 of 2 shards failed to start: <cause> (shards 0, 1)", one line per distinct cause. */
function describeFailures(err: ClusterConnectError, total: number): string {
  const byCause = new Map<string, number[]>();
  for (const f of err.failures) {
    const cause = f.error.message.replace(/^shard \d+: /, '');
    byCause.set(cause, [...(byCause.get(cause) ?? []), f.shardId]);
  }
  const causes = [...byCause].map(([cause, ids]) => `${cause} (shard${ids.length > 1 ? 's' : ''} ${ids.join(', ')})`);
  return `${err.failures.length} of ${total} shards failed to start: ${causes.join('; ')}`;
}

/** Run `shardline run` with its arguments; resolves with the exit code. */
export async function runCommand(argv: string[]): Promise<number> {
  const o = parse('run', argv, RUN_OPTIONS);
  if (o.help) {
    process.stdout.write(RUN_HELP);
    return 0;
  }
  const secretFromEnv = envToken();
  const ui = new StderrUi(secretFromEnv, o.quiet === true);

  // -- validate everything before connecting
  const events = o.events
    ?.split(',')
    .map((e) => e.trim().toUpperCase())
    .filter(Boolean);
  if (o.events !== undefined && (!events || events.length === 0)) throw new UsageError('--events names no event type (e.g. --events MESSAGE_CREATE)', 'run');
  const extraEvents = o['extra-events']
    ?.split(',')
    .map((e) => e.trim().toUpperCase())
    .filter(Boolean);
  for (const e of events ?? []) {
    if (!isKnownEventName(e) && !extraEvents?.includes(e)) {
      const hint = closestEventName(e);
      throw new UsageError(
        `--events ${e} is not a dispatch type this version knows${hint ? ` (did you mean ${hint}?)` : ''}; a type Discord added after this release goes in --extra-events ${e}`,
        'run',
      );
    }
  }
  for (const e of extraEvents ?? []) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(e)) throw new UsageError(`--extra-events ${e} is not a dispatch name (UPPER_SNAKE_CASE)`, 'run');
  }
  const intents = o.intents !== undefined ? parseIntents(o.intents) : events ? intentsForEvents(events) || Intents.Guilds : Intents.Guilds;
  for (const e of events ?? []) {
    const need = intentsForEvent(e);
    if (need !== 0 && (need & intents) === 0) {
      throw new UsageError(
        `--events ${e} needs the ${intentNames(need).join(' or ')} intent, which --intents lacks: add it (e.g. --intents ${[...intentNames(intents), intentNames(need)[0]].join(',')})`,
        'run',
      );
    }
  }
  if (events?.some((e) => e.startsWith('MESSAGE_')) && (intents & Intents.MessageContent) === 0) {
    ui.line(`shardline ${c.yellow('note')} without the MessageContent intent, guild messages arrive with empty content`);
  }
  let shards: ClusterOptions['shards'] = 'auto';
  if (o.shards !== undefined && o.shards !== 'auto') shards = int('shards', o.shards, 1, 100_000);
  const maxEvents = int('max-events', o['max-events'], 1);
  const metricsPort = int('metrics-port', o['metrics-port'], 0, 65535);
  const statusPort = int('status-port', o['status-port'], 0, 65535);
  const workers = int('workers', o.workers, 0, 1024) ?? 0;
  const handler = handlerPath(o.handler);
  const scale = positive('time-scale', o['time-scale']) ?? 1;
  const traffic = o.traffic !== undefined ? (o.traffic === '0' ? 0 : positive('traffic', o.traffic)) : 5;
  const simGuilds = int('sim-guilds', o['sim-guilds'], 0, 1_000_000) ?? 10;
  let compression: TransportCompression | false = 'zlib-stream';
  if (o.compression !== undefined) {
    if (o.compression === 'none' || o.compression === 'false') compression = false;
    else if (o.compression === 'zlib-stream' || o.compression === 'zstd-stream') compression = o.compression;
    else throw new UsageError(`--compression must be zlib-stream, zstd-stream or none, got '${o.compression}'`, 'run');
  }
  const levels = ['debug', 'info', 'warn', 'error', 'silent'];
  const logLevel = (o['log-level'] ?? 'warn') as LogLevel;
  if (!levels.includes(logLevel)) throw new UsageError(`--log-level must be one of ${levels.join(', ')}, got '${o['log-level']}'`, 'run');
  for (const flag of ['api-url', 'gateway-url'] as const) url(flag, o[flag]);
  if (!o.simulator && (o.traffic !== undefined || o['sim-guilds'] !== undefined)) {
    throw new UsageError('--traffic and --sim-guilds only apply with --simulator', 'run');
  }

  // -- the token
  let token: string;
  if (o.simulator) token = secretFromEnv ?? 'sim-token';
  else if (secretFromEnv) token = secretFromEnv;
  else {
    throw new UsageError(
      'no token: set the DISCORD_TOKEN environment variable to your bot token (Developer Portal → your app → Bot → Reset Token), or pass --simulator to try the bundled gateway simulator',
      'run',
    );
  }
  const clean = (s: string) => redact(s, token);

  // -- start
  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanup = async () => {
    for (const f of cleanups.reverse()) await f().catch(() => undefined);
    cleanups.length = 0;
  };
  const clock: Clock = scale === 1 ? systemClock : scaledClock(scale);
  let apiUrl = o['api-url'];
  let stopTraffic = () => {};
  try {
    if (o.simulator) {
      const simShards = typeof shards === 'number' ? shards : 2;
      const sim = await GatewaySimulator.start({ clock, tokens: [token], shards: simShards, guilds: simGuilds, maxConcurrency: Math.min(simShards, 16) });
      cleanups.push(() => sim.stop());
      apiUrl = sim.apiUrl;
      ui.line(`shardline: bundled gateway simulator at ${sim.url} (${simShards} shards, ${simGuilds} guilds${scale !== 1 ? `, time ×${+(1 / scale).toFixed(2)}` : ''})`);
      // Traffic goes to whichever shards have a live session at each tick.
      if (traffic) stopTraffic = sim.startTraffic({ eventsPerSecond: traffic, mix: 'presences_off' });
    }
    // With --gateway-url and no --api-url the cluster makes no REST call (the token goes nowhere else): 'auto' runs
    // 1 shard, one identify lane.
    const cluster = new Cluster({
      token,
      intents,
      shards,
      workers,
      compression,
      clock,
      ...(handler ? { handler } : {}),
      ...(events ? { events: events as EventName[] } : {}),
      ...(extraEvents ? { extraEvents } : {}),
      ...(apiUrl ? { apiUrl } : {}),
      ...(o['gateway-url'] ? { gatewayUrl: o['gateway-url'] } : {}),
    });
    cleanups.push(() => cluster.close());
    routeLogs(cluster, stderrLogger(ui), { level: logLevel, redact: [token] });
    const host = o.host ?? '127.0.0.1';
    let metrics: Awaited<ReturnType<typeof attachMetrics>> | null = null;
    if (metricsPort !== undefined) {
      metrics = await attachMetrics(cluster, { defaultMetrics: true });
      const m = metrics;
      cleanups.push(() => m.detach());
      if (!(metricsPort === statusPort && metricsPort !== 0)) {
        const ep = await m.listen({ port: metricsPort, host });
        ui.line(`shardline: metrics at ${ep.url}/metrics`);
      }
    }
    if (statusPort !== undefined) {
      const page = await serveStatus(cluster, { port: statusPort, host, ...(metrics && metricsPort === statusPort && metricsPort !== 0 ? { metrics } : {}) });
      cleanups.push(() => page.close());
      ui.line(`shardline: status page at ${page.url}`);
      if (metrics && metricsPort === statusPort && metricsPort !== 0) ui.line(`shardline: metrics at ${page.url}metrics`);
    }

    // -- stop on signals, --max-events, or a broken stdout pipe
    let stopping = false;
    let exitCode = 0;
    const stream = cluster.events();
    const stop = (code: number) => {
      if (stopping) return;
      stopping = true;
      exitCode = code;
      void cluster.close(); // ends the event stream after its buffered events
    };
    const onSignal = () => {
      if (stopping) process.exit(130);
      ui.line('shardline: closing (Ctrl-C again to force)');
      stop(0);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.stdout.on('error', (err: NodeJS.ErrnoException) => stop(err.code === 'EPIPE' ? 0 : 1));

    // What will be printed, said before connecting: events may be printed (and --max-events reached) before the
    // last shard is ready.
    ui.line(
      `shardline: ${handler ? `handler ${handler} runs on ${events ? events.join(', ') : 'every dispatch'}; printing what it posts` : `printing ${events ? events.join(', ') : 'every dispatch'}`} as JSON lines (Ctrl-C to stop)`,
    );

    // -- connect with a progress bar
    const t0 = clock.now();
    const draw = () => ui.progress(cluster.status(), clock.now() - t0);
    const timer = setInterval(draw, 100);
    timer.unref();
    const connected = cluster.connect({ onProgress: () => draw() }).then(
      () => null,
      (err: Error) => err,
    );
    // Print events while connecting too (GUILD_CREATEs of early shards arrive before the last shard is ready).
    // With --handler the dispatches stay with the handler: what it posts is printed instead.
    let posted = 0;
    if (handler) {
      cluster.on('handlerMessage', (m) => {
        if (stopping) return;
        process.stdout.write(`${JSON.stringify({ shardId: m.shardId, worker: m.worker, value: m.value })}\n`);
        if (maxEvents !== undefined && ++posted >= maxEvents) stop(0);
      });
    }
    const printing = (async () => {
      let printed = 0;
      for await (const e of stream) {
        if (!process.stdout.write(`${JSON.stringify(e)}\n`)) await once(process.stdout, 'drain');
        if (maxEvents !== undefined && ++printed >= maxEvents) {
          stop(0);
          break;
        }
      }
    })();
    const err = await connected;
    clearInterval(timer);
    if (!stopping) draw();
    ui.endProgress();
    if (err) {
      if (err instanceof ClusterConnectError && err.failures.length < cluster.ids.length) {
        ui.line(`shardline ${c.yellow('warn')} ${clean(describeFailures(err, cluster.ids.length))}; the other shards keep running`, true);
      } else if (!stopping) {
        ui.line(`shardline: ${c.red('error')}: ${clean(err instanceof ClusterConnectError ? describeFailures(err, cluster.ids.length) : err.message)}`, true);
        stop(1);
      }
    } else if (!stopping) {
      const ready = cluster.status().filter((s) => s.state === 'ready').length;
      ui.line(`shardline: ${ready}/${cluster.ids.length} shards ready in ${((clock.now() - t0) / 1000).toFixed(1)} s`);
    }
    await printing;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
    return exitCode;
  } catch (err) {
    await cleanup();
    throw err;
  } finally {
    stopTraffic();
  }
}
