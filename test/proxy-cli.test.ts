/**
 * `shardline proxy`: the --json line once upstream is ready, the metrics and status ports with the proxy's own
 * counters, a clean exit on SIGTERM, usage errors (exit 2).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scaledClock } from '../src/clock.js';
import { GatewaySimulator } from '../src/simulator/index.js';
import { collectJsonLines } from './helpers/servers.js';
import { SCALE, TOKEN, until } from './helpers/setup.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'src/cli/shardline.ts');

/** The bundled simulator and `shardline proxy --json --shards 1` in front of it (with `args`), its output collected. */
async function cliProxy(args: string[]) {
  const sim = await GatewaySimulator.start({ tokens: [TOKEN], clock: scaledClock(SCALE), heartbeatInterval: 150_000, guilds: 2, guildMemberCount: 5 });
  const proc = spawn(process.execPath, ['--import', 'tsx', cli, 'proxy', '--json', '--shards', '1', '--api-url', sim.apiUrl, '--time-scale', String(SCALE), ...args], {
    cwd: root,
    env: { ...process.env, DISCORD_TOKEN: TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  collectJsonLines(proc, lines);
  const err = { text: '' };
  proc.stderr!.on('data', (d: Buffer) => (err.text += d.toString()));
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  return { sim, proc, lines, err, exited };
}

test('shardline proxy --json prints the URLs once ready, serves metrics, the proxy section on the status page and /proxy.json, exits 0 on SIGTERM', async () => {
  const { sim, proc, lines, err, exited } = await cliProxy(['--metrics-port', '0', '--status-port', '0']);
  try {
    await until(() => lines.length > 0 && /status page at (\S+)\//.test(err.text) && /metrics at (\S+)\/metrics/.test(err.text), `the --json line and the ports (${err.text})`, 20_000);
    const info = lines[0] as { url: string; apiUrl: string };
    assert.match(info.url, /^ws:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(info.apiUrl, `${info.url.replace('ws', 'http')}/api/v10`);
    assert.ok(!err.text.includes(TOKEN) && !JSON.stringify(lines).includes(TOKEN), 'the token is never printed');
    const metricsUrl = /metrics at (\S+)\/metrics/.exec(err.text)![1]!;
    const statusUrl = /status page at (\S+)\//.exec(err.text)![1]!;
    const metrics = await (await fetch(`${metricsUrl}/metrics`)).text();
    assert.match(metrics, /shardline_proxy_clients\{shard="0"\} 0/);
    assert.match(metrics, /shardline_proxy_cache_guilds 2/);
    const stats = (await (await fetch(`${statusUrl}/proxy.json`)).json()) as { guilds: number; shards: { id: number }[] };
    assert.equal(stats.guilds, 2);
    assert.deepEqual(
      stats.shards.map((s) => s.id),
      [0],
    );
    assert.match(await (await fetch(`${statusUrl}/`)).text(), /shardline proxy/);
    // the page's own snapshot carries the proxy's section: a row per shard and the cache figures
    const snap = (await (await fetch(`${statusUrl}/status.json`)).json()) as {
      cluster: { guildsReady: number };
      shards: { id: number; dispatches: number }[];
      sections: { title: string; summary: { label: string; value: unknown }[]; columns: string[]; shards: { id: number; values: unknown[] }[] }[];
    };
    // the upstream shard's own card: its guilds loaded before the page existed, its (raw-mode) GUILD_CREATEs counted
    assert.equal(snap.cluster.guildsReady, 1);
    assert.ok(snap.shards[0]!.dispatches >= 2, `dispatches ${snap.shards[0]!.dispatches}`);
    const proxySection = snap.sections.find((s) => s.title === 'Gateway proxy');
    assert.ok(proxySection, JSON.stringify(snap.sections));
    assert.deepEqual(proxySection.columns, ['clients', 'replay depth', 'replay bytes', 'guilds', 'forwarded commands']);
    assert.deepEqual(
      proxySection.shards.map((s) => [s.id, s.values[0], s.values[3], s.values[4]]),
      [[0, 0, 2, 0]],
    );
    const summary = Object.fromEntries(proxySection.summary.map((e) => [e.label, e.value]));
    assert.equal(summary['cache guilds'], 2);
    assert.ok((summary['cache bytes'] as number) > 0);
    assert.equal(summary['detached sessions'], 0);
    assert.equal(summary['client identifies'], 0);
    proc.kill('SIGTERM');
    assert.equal(await exited, 0);
  } finally {
    proc.kill('SIGKILL');
    await sim.stop();
  }
});

test('shardline proxy: usage errors exit 2 and say what to fix; --help exits 0', () => {
  const run = (args: string[], env: Record<string, string> = { DISCORD_TOKEN: TOKEN }) =>
    spawnSync(process.execPath, ['--import', 'tsx', cli, 'proxy', ...args], { cwd: root, env: { ...process.env, DISCORD_TOKEN: '', ...env }, encoding: 'utf8' });
  const help = run(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--replay-size/);
  assert.match(help.stdout, /--handler <path>/);
  const noModule = run(['--handler', ' ']);
  assert.equal(noModule.status, 2);
  assert.match(noModule.stderr, /--handler names no module/);
  const bad = run(['--port', 'x']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--port must be a whole number from 0 to 65535, got 'x'/);
  const noToken = run([], { DISCORD_TOKEN: '' });
  assert.equal(noToken.status, 2);
  assert.match(noToken.stderr, /DISCORD_TOKEN/);
});

test('shardline proxy --handler runs the module on upstream dispatches and prints what it posts as JSON lines', async () => {
  const { sim, proc, lines, err, exited } = await cliProxy(['--handler', 'test/helpers/cli-handler.mjs']);
  try {
    await until(() => lines.some((l) => typeof l.url === 'string'), `the --json line (${err.text})`, 20_000);
    const g = sim.guildIds[0]!;
    sim.dispatch({ guildId: g }, 'MESSAGE_CREATE', { id: '1', channel_id: '2', guild_id: g, content: 'hi' });
    await until(() => lines.some((l) => l.value !== undefined), `the handler's post (${err.text})`, 20_000);
    assert.deepEqual(
      lines.filter((l) => l.value !== undefined),
      [{ shardId: 0, worker: null, value: { type: 'MESSAGE_CREATE', shardId: 0, worker: null } }],
    );
    proc.kill('SIGTERM');
    assert.equal(await exited, 0);
  } finally {
    proc.kill('SIGKILL');
    await sim.stop();
  }
});
