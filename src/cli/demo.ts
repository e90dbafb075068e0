#!/usr/bin/env node
/**
 * `npm start`: with DISCORD_TOKEN set, starts a cluster of the recommended shard count on Discord and prints
 * dispatch types. Without it, starts the bundled gateway simulator and brings up a 16-shard cluster
 * (max_concurrency 4) with a progress bar per identify lane, then a live per-shard status table, and shows one
 * shard survive a zombie connection, an op 7 and an abrupt drop by resuming — narrated for a person watching.
 *
 * Options (environment): DEMO_SECONDS (stop after N seconds; default: run until Ctrl-C).
 */
import { Cluster } from '../cluster.js';
import { Intents } from '../intents.js';
import { scaledClock } from '../clock.js';
import { GatewaySimulator } from '../simulator/index.js';
import { Screen, color, progressPanel, statusSummary, statusTable } from './demo-screen.js';

const screen = new Screen();
const say = (line: string) => screen.say(line);
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function live(token: string): Promise<void> {
  const cluster = new Cluster({ token, intents: Intents.Guilds | Intents.GuildMessages });
  cluster.on('shardStateChange', (c) => say(`shard ${c.shardId}: ${c.from} → ${color.bold(c.to)} ${color.dim(c.reason)}`));
  cluster.on('dispatch', (e) => say(`${color.cyan(e.type)} shard ${e.shardId} seq ${e.sequence}`));
  cluster.on('error', (e) => say(color.red(e.message)));
  process.once('SIGINT', () => void cluster.close().then(() => process.exit(0)));
  await cluster.connect({ onProgress: (p) => p.state === 'ready' && say(`${p.ready}/${p.total} shards ready`) });
}

async function demo(): Promise<void> {
  // 1 real second = 10 virtual seconds: a 41.25 s heartbeat beats every ~4 s, an identify window is 0.5 s.
  const clock = scaledClock(0.1);
  const shards = 16;
  const lanes = 4;
  // The cluster spaces a lane's IDENTIFYs 5100 virtual ms apart: at 10x speed that margin is 10 real ms, which a
  // busy machine's event loop exceeds, and the simulator would answer op 9 (a fault nobody asked for). The demo's
  // simulator enforces 4500 ms instead (60 real ms of slack); its faults are the ones it announces.
  const sim = await GatewaySimulator.start({ clock, guilds: 48, shards, maxConcurrency: lanes, identifyWindow: 4500 });
  say(`${color.bold('gateway simulator')} listening on ${sim.url} (time runs 10x faster): ${shards} shards recommended, max_concurrency ${lanes}`);
  const cluster = new Cluster({
    ...sim.clusterOptions(), // token, gatewayUrl, apiUrl, clock: nothing is asked of discord.com
    intents: Intents.Guilds | Intents.GuildMessages | Intents.GuildMessageTyping | Intents.GuildMessageReactions | Intents.GuildVoiceStates,
  });
  const dispatches = new Map<number, number>();
  const watched = 0; // the shard the faults happen to
  cluster.on('dispatch', (e) => dispatches.set(e.shardId, (dispatches.get(e.shardId) ?? 0) + 1));
  cluster.on('shardStateChange', (c) => {
    if (c.shardId !== watched || !started) return;
    const paint = c.to === 'ready' ? color.green : c.to === 'fatal' ? color.red : color.yellow;
    say(`shard ${watched} state ${c.from} → ${paint(color.bold(c.to))}  ${color.dim(c.reason)}`);
  });
  cluster.on('shardDisconnected', (d) => d.shardId === watched && say(`shard ${watched} ${color.yellow('disconnected')}: ${d.cause} → ${d.action}`));
  cluster.on('shardResumed', (id, s) => id === watched && say(`shard ${id} ${color.green('RESUMED')} session ${s.sessionId.slice(0, 8)}… at seq ${s.sequence} — nothing missed`));
  cluster.on('error', (e) => say(color.red(`error: ${e.message}`)));
  cluster.on('shardDisconnected', (d) => !started && say(color.yellow(`shard ${d.shardId} disconnected during start-up: ${d.cause} → ${d.action}`)));
  cluster.on('ready', (e) => say(`${color.green('all shards READY')} after ${(e.elapsed / 1000).toFixed(1)} virtual s`));
  sim.on('resume', (r: { seq: number; ok: boolean; shardId: number | null }) => {
    if (r.shardId === watched) say(color.dim(`simulator: RESUME of shard ${watched} at seq ${r.seq} → ${r.ok ? 'replaying' : 'rejected'}`));
  });

  let started = false;
  let stopped = false;
  let stopTraffic = () => {};
  let table: NodeJS.Timeout | undefined;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    stopTraffic();
    clearInterval(table);
    const sessions = await cluster.close({ resumable: true });
    await sim.stop();
    screen.release();
    say(`closed; ${Object.keys(sessions).length} resumable sessions (pass them as new Cluster({ sessions }) to resume without IDENTIFY)`);
  };
  process.once('SIGINT', () => void stop());

  // ---- start-up with a progress bar -------------------------------------------------------------------
  const ideal = Math.ceil(shards / lanes) * 5000;
  const t0 = clock.now();
  let lastReady = -1;
  const drawProgress = () => {
    const status = cluster.status();
    const ready = status.filter((s) => s.state === 'ready').length;
    if (!screen.live && ready === lastReady) return;
    lastReady = ready;
    const panel = progressPanel(status, lanes, clock.now() - t0, ideal);
    screen.setPanel(screen.live ? panel : panel.slice(0, 1));
  };
  say(`${color.bold('connecting')} ${shards} shards: one IDENTIFY per lane (shard_id % ${lanes}) every 5 s, lanes in parallel`);
  const progress = setInterval(drawProgress, screen.live ? 100 : 1000);
  try {
    await cluster.connect({ onProgress: () => screen.live || drawProgress() });
  } finally {
    clearInterval(progress);
  }
  drawProgress();
  screen.release();
  started = true;

  // ---- live status table ------------------------------------------------------------------------------
  stopTraffic = sim.startTraffic({ eventsPerSecond: 50, mix: 'presences_off' });
  const drawTable = () => screen.setPanel(screen.live ? statusTable(cluster.status(), dispatches) : [statusSummary(cluster.status(), dispatches)]);
  table = setInterval(drawTable, screen.live ? 500 : 5000);
  drawTable();

  const resumed = () =>
    new Promise<void>((r) => {
      const on = (id: number) => {
        if (id !== watched) return;
        cluster.off('shardResumed', on);
        r();
      };
      cluster.on('shardResumed', on);
    });
  const dropped = () =>
    new Promise<void>((r) => {
      const on = (d: { shardId: number }) => {
        if (d.shardId !== watched) return;
        cluster.off('shardDisconnected', on);
        r();
      };
      cluster.on('shardDisconnected', on);
    });

  await wait(4000);
  say(color.bold(`▶ fault: shard ${watched}'s connection goes silent: no heartbeat ACKs, no events (zombie connection)`));
  const traffic = (only?: number[]) => {
    stopTraffic();
    stopTraffic = sim.startTraffic({ eventsPerSecond: 50, mix: 'presences_off', ...(only ? { shards: only } : {}) });
  };
  traffic(cluster.ids.filter((id) => id !== watched));
  sim.setAcks(watched, false);
  await dropped();
  sim.setAcks('all', true);
  traffic();
  await resumed();
  await wait(3000);
  say(color.bold(`▶ fault: the simulator sends shard ${watched} op 7 RECONNECT`));
  sim.sendReconnect(watched);
  await resumed();
  await wait(3000);
  say(color.bold(`▶ fault: shard ${watched}'s TCP connection drops abruptly`));
  sim.terminate(watched);
  await resumed();
  say(color.bold('demo scenario done; traffic keeps flowing on every shard — Ctrl-C to stop'));
  const seconds = Number(process.env.DEMO_SECONDS ?? 0);
  if (seconds > 0) {
    await wait(Math.max(0, seconds * 1000 - (Date.now() - startedAt)));
    await stop();
  }
}

const startedAt = Date.now();
const token = process.env.DISCORD_TOKEN;
(token ? live(token) : demo()).catch((err: Error) => {
  console.error(color.red(`shardline: ${err.message}`));
  process.exitCode = 1;
});
