#!/usr/bin/env node
/**
 * `npm start`: with DISCORD_TOKEN set, connects one shard to Discord and prints dispatch types. Without it,
 * starts the bundled gateway simulator and shows a shard identify, receive traffic, survive a zombie
 * connection and an op 7, and resume — narrated for a person watching.
 *
 * Options (environment): DEMO_SECONDS (stop after N seconds; default: run until Ctrl-C).
 */
import { Shard } from '../shard.js';
import { Intents } from '../intents.js';
import { scaledClock } from '../clock.js';
import { GatewaySimulator } from '../simulator/index.js';

const color = process.stdout.isTTY
  ? { dim: (s: string) => `\x1b[2m${s}\x1b[0m`, bold: (s: string) => `\x1b[1m${s}\x1b[0m`, green: (s: string) => `\x1b[32m${s}\x1b[0m`, yellow: (s: string) => `\x1b[33m${s}\x1b[0m`, red: (s: string) => `\x1b[31m${s}\x1b[0m`, cyan: (s: string) => `\x1b[36m${s}\x1b[0m` }
  : { dim: (s: string) => s, bold: (s: string) => s, green: (s: string) => s, yellow: (s: string) => s, red: (s: string) => s, cyan: (s: string) => s };

const started = Date.now();
function say(line: string): void {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
  console.log(`${color.dim(t + 's')}  ${line}`);
}

async function live(token: string): Promise<void> {
  const shard = new Shard({ token, intents: Intents.Guilds | Intents.GuildMessages });
  shard.on('stateChange', (c) => say(`${c.from} → ${color.bold(c.to)} ${color.dim(c.reason)}`));
  shard.on('dispatch', (e) => say(`${color.cyan(e.type)} seq ${e.sequence}`));
  shard.on('error', (e) => say(color.red(e.message)));
  process.once('SIGINT', () => void shard.close().then(() => process.exit(0)));
  await shard.connect();
}

async function demo(): Promise<void> {
  // 1 real second = 10 virtual seconds: a 41.25 s heartbeat beats every ~4 s.
  const clock = scaledClock(0.1);
  const sim = await GatewaySimulator.start({ clock, guilds: 6, shards: 1 });
  say(`${color.bold('gateway simulator')} listening on ${sim.url} (time runs 10x faster)`);
  const shard = new Shard({
    token: 'sim-token',
    intents: Intents.Guilds | Intents.GuildMessages | Intents.GuildMessageTyping | Intents.GuildMessageReactions | Intents.GuildVoiceStates,
    gatewayUrl: sim.url,
    clock,
  });
  const counts = new Map<string, number>();
  shard.on('stateChange', (c) => {
    const paint = c.to === 'ready' ? color.green : c.to === 'fatal' ? color.red : color.yellow;
    say(`shard state ${c.from} → ${paint(color.bold(c.to))}  ${color.dim(c.reason)}`);
  });
  shard.on('disconnected', (d) => say(`${color.yellow('disconnected')}: ${d.cause} → ${d.action}`));
  shard.on('ready', (d) => say(`${color.green('READY')} as ${d.user.username}, ${d.guilds.length} guilds, session ${d.session_id.slice(0, 8)}…`));
  shard.on('resumed', (s) => say(`${color.green('RESUMED')} session ${s.sessionId.slice(0, 8)}… at seq ${s.sequence} — nothing missed`));
  shard.on('error', (e) => say(color.red(`error: ${e.message}`)));
  shard.on('dispatch', (e) => {
    counts.set(e.type, (counts.get(e.type) ?? 0) + 1);
    if (e.type === 'GUILD_CREATE') say(`${color.cyan('GUILD_CREATE')} ${e.data.name ?? e.data.id}`);
  });
  sim.on('identify', () => say(color.dim('simulator: IDENTIFY received')));
  sim.on('resume', (r: { seq: number; ok: boolean }) => say(color.dim(`simulator: RESUME at seq ${r.seq} → ${r.ok ? 'replaying' : 'rejected'}`)));

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    stopTraffic();
    clearInterval(report);
    const session = await shard.close({ resumable: true });
    await sim.stop();
    say(`closed; resumable session ${session?.sessionId.slice(0, 8)}… at seq ${session?.sequence}`);
  };
  process.once('SIGINT', () => void stop());

  await shard.connect();
  const stopTraffic = sim.startTraffic({ eventsPerSecond: 200, mix: 'presences_off' });
  const report = setInterval(() => {
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    const top = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([t, n]) => `${t} ${n}`).join(', ');
    say(`${color.bold(String(total))} dispatches (${top}); latency ${shard.latency.average ?? '–'} ms; seq ${shard.session?.sequence}`);
  }, 2000);

  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
  await wait(4000);
  say(color.bold('▶ fault: the simulator stops ACKing heartbeats (zombie connection)'));
  sim.setAcks(0, false);
  await new Promise((r) => shard.once('disconnected', r));
  sim.setAcks('all', true);
  await new Promise((r) => shard.once('resumed', r));
  await wait(3000);
  say(color.bold('▶ fault: the simulator sends op 7 RECONNECT'));
  sim.sendReconnect(0);
  await new Promise((r) => shard.once('resumed', r));
  await wait(3000);
  say(color.bold('▶ fault: the TCP connection drops abruptly'));
  sim.terminate(0);
  await new Promise((r) => shard.once('resumed', r));
  say(color.bold('demo scenario done; traffic keeps flowing — Ctrl-C to stop'));
  const seconds = Number(process.env.DEMO_SECONDS ?? 0);
  if (seconds > 0) {
    await wait(Math.max(0, seconds * 1000 - (Date.now() - started)));
    await stop();
  }
}

const token = process.env.DISCORD_TOKEN;
(token ? live(token) : demo()).catch((err: Error) => {
  console.error(color.red(`shardline: ${err.message}`));
  process.exitCode = 1;
});
