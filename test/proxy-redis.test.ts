/**
 * `shardline proxy --redis` killed with SIGKILL and restarted: the upstream sessions and the cache come back from
 * Redis, the simulator sees RESUMEs only (no IDENTIFY), and a new client gets a full READY and GUILD_CREATEs that
 * include what changed before the kill and while the proxy was down. Uses a throwaway redis-server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { REST } from '@discordjs/rest';
import { WebSocketManager, WebSocketShardEvents } from '@discordjs/ws';
import { scaledClock } from '../src/clock.js';
import { GatewaySimulator } from '../src/simulator/index.js';
import { collectJsonLines, startRedis } from './helpers/servers.js';
import { SCALE, TOKEN, until } from './helpers/setup.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function proxyProcess(args: string[]): { proc: ChildProcess; lines: Record<string, unknown>[]; stderr: () => string } {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/shardline.ts'), 'proxy', ...args], {
    cwd: root,
    env: { ...process.env, DISCORD_TOKEN: TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let err = '';
  collectJsonLines(proc, lines);
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  return { proc, lines, stderr: () => err };
}

test('a proxy killed and restarted with Redis resumes upstream (no IDENTIFY) and serves a complete READY', async () => {
  const redisServer = await startRedis();
  const sim = await GatewaySimulator.start({ tokens: [TOKEN], clock: scaledClock(SCALE), heartbeatInterval: 150_000, sessionTimeout: 6_000_000, guilds: 3, guildMemberCount: 5 });
  const redis = new Redis(redisServer.url);
  const args = ['--json', '--shards', '1', '--api-url', sim.apiUrl, '--time-scale', String(SCALE), '--redis', redisServer.url, '--intents', 'Guilds,GuildMessages'];
  const procs: ChildProcess[] = [];
  let manager: WebSocketManager | null = null;
  try {
    const first = proxyProcess(args);
    procs.push(first.proc);
    await until(() => first.lines.some((l) => typeof l.url === 'string'), `the first proxy's --json line (${first.stderr()})`, 20_000);
    assert.equal(sim.stats.identifies, 1);
    const g = sim.guildIds[0]!;
    const [seq] = sim.dispatch({ guildId: g }, 'CHANNEL_CREATE', { id: '900000000000000001', type: 0, name: 'before-kill', guild_id: g });
    const stored = async (): Promise<number> => {
      const text = await redis.hget('shardline:proxy:{default}:meta', 'sessions');
      return text ? ((JSON.parse(text) as Record<string, { sequence: number }>)['0']?.sequence ?? 0) : 0;
    };
    let storedSeq = 0;
    await until(
      () => {
        void stored().then((s) => (storedSeq = s));
        return storedSeq >= seq!;
      },
      'the CHANNEL_CREATE persisted',
      20_000,
    );
    first.proc.kill('SIGKILL');
    await new Promise((res) => first.proc.once('exit', res));
    sim.dispatch({ guildId: g }, 'CHANNEL_CREATE', { id: '900000000000000002', type: 0, name: 'while-down', guild_id: g });

    const identifies = sim.stats.identifies;
    const resumes = sim.stats.resumes;
    const second = proxyProcess(args);
    procs.push(second.proc);
    await until(() => second.lines.some((l) => typeof l.url === 'string'), `the second proxy's --json line (${second.stderr()})`, 20_000);
    assert.equal(sim.stats.identifies, identifies, 'no IDENTIFY upstream after the restart');
    assert.equal(sim.stats.resumes, resumes + 1, 'the upstream session was resumed');

    const apiUrl = second.lines.find((l) => typeof l.apiUrl === 'string')!.apiUrl as string;
    const rest = new REST({ api: apiUrl.replace(/\/v10$/, ''), version: '10' }).setToken(TOKEN);
    manager = new WebSocketManager({ token: TOKEN, intents: 1 | 512, rest });
    const seen: { t: string; d: Record<string, unknown> }[] = [];
    manager.on(WebSocketShardEvents.Dispatch, (p) => {
      seen.push({ t: p.t, d: p.d as unknown as Record<string, unknown> });
    });
    await manager.connect();
    await until(() => seen.filter((e) => e.t === 'GUILD_CREATE').length === 3, 'three GUILD_CREATEs from the restarted proxy', 20_000);
    const ready = seen.find((e) => e.t === 'READY')!;
    assert.equal((ready.d.guilds as unknown[]).length, 3);
    const guild = seen.find((e) => e.t === 'GUILD_CREATE' && e.d.id === g)!.d;
    const names = (guild.channels as { name: string }[]).map((c) => c.name);
    assert.ok(names.includes('before-kill'), 'the cache persisted before the kill');
    assert.ok(names.includes('while-down'), 'what happened while the proxy was down came with the upstream RESUME');
    assert.equal(sim.stats.identifies, identifies, 'the client never reached upstream');
  } finally {
    await manager?.destroy();
    for (const p of procs) p.kill('SIGKILL');
    redis.disconnect();
    await sim.stop();
    await redisServer.stop();
  }
});
