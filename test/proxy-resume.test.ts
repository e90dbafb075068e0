/**
 * A bot process behind the proxy (unmodified @discordjs/ws) killed with SIGKILL mid-traffic and restarted with its
 * saved session RESUMEs through the proxy and receives exactly the dispatches it missed, in order; upstream the
 * simulator sees no new IDENTIFY (nor RESUME).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { collectJsonLines } from './helpers/servers.js';
import { TOKEN, until } from './helpers/setup.js';
import { proxyRig } from './helpers/proxy-rig.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The bot: @discordjs/ws, resuming the session in env SESSION when given; prints every dispatch as a JSON line. */
const BOT = `
  import { REST } from '@discordjs/rest';
  import { CompressionMethod, WebSocketManager, WebSocketShardEvents } from '@discordjs/ws';
  const saved = process.env.SESSION ? JSON.parse(process.env.SESSION) : null;
  const rest = new REST({ api: process.env.API, version: '10' }).setToken(process.env.TOKEN);
  const manager = new WebSocketManager({
    token: process.env.TOKEN, intents: 1 | 512 | 32768, rest, compression: CompressionMethod.ZlibNative,
    retrieveSessionInfo: () => saved,
    updateSessionInfo: () => {},
  });
  manager.on(WebSocketShardEvents.Dispatch, (p) => {
    const line = { t: p.t, s: p.s };
    if (p.t === 'READY') Object.assign(line, { sessionId: p.d.session_id, resumeURL: p.d.resume_gateway_url });
    if (p.t === 'MESSAGE_CREATE') line.n = Number(p.d.content);
    console.log(JSON.stringify(line));
  });
  await manager.connect();
`;

function bot(env: Record<string, string>): { proc: ChildProcess; lines: Record<string, unknown>[] } {
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', BOT], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: Record<string, unknown>[] = [];
  collectJsonLines(proc, lines);
  return { proc, lines };
}

test('a client killed with SIGKILL and restarted with its session resumes through the proxy and gets exactly what it missed', async () => {
  const r = await proxyRig({ guilds: 2 }, { shards: 1 });
  const env = { API: r.proxy.apiUrl.replace(/\/v10$/, ''), TOKEN };
  const a = bot(env);
  let b: ReturnType<typeof bot> | null = null;
  let sent = 0;
  let timer: ReturnType<typeof setInterval> | null = null;
  try {
    await until(() => a.lines.filter((l) => l.t === 'GUILD_CREATE').length === 2, 'the first bot is ready', 20_000);
    const identifies = r.sim.stats.identifies;
    const resumes = r.sim.stats.resumes;
    const g = r.sim.guildIds[0]!;
    const send = () => r.sim.dispatch({ guildId: g }, 'MESSAGE_CREATE', { id: String(1000 + sent), channel_id: '2', guild_id: g, content: String(++sent) });
    timer = setInterval(() => {
      for (let i = 0; i < 3 && sent < 150; i++) send();
    }, 2);
    await until(() => a.lines.filter((l) => l.t === 'MESSAGE_CREATE').length >= 20, 'traffic reaching the first bot', 20_000);
    a.proc.kill('SIGKILL');
    await new Promise((res) => a.proc.once('exit', res));
    await until(() => sent >= 150, 'the rest of the traffic', 20_000);
    clearInterval(timer);
    timer = null;

    const ready = a.lines.find((l) => l.t === 'READY')!;
    const last = a.lines.at(-1)!;
    const got1 = a.lines.filter((l) => l.t === 'MESSAGE_CREATE').map((l) => l.n as number);
    assert.ok(got1.length < 150, 'the first bot was killed mid-traffic');
    const session = { sessionId: ready.sessionId, resumeURL: ready.resumeURL, sequence: last.s, shardId: 0, shardCount: 1 };
    b = bot({ ...env, SESSION: JSON.stringify(session) });
    // RESUMED follows the replay: under load its line can arrive after the last replayed message's
    await until(() => b!.lines.some((l) => l.t === 'MESSAGE_CREATE' && l.n === 150) && b!.lines.some((l) => l.t === 'RESUMED' || l.t === 'READY'), 'the restarted bot catching up', 20_000);
    assert.ok(
      b.lines.some((l) => l.t === 'RESUMED'),
      'the restarted bot resumed',
    );
    assert.ok(!b.lines.some((l) => l.t === 'READY'), 'no new READY');
    const got2 = b.lines.filter((l) => l.t === 'MESSAGE_CREATE').map((l) => l.n as number);
    assert.deepEqual(
      [...got1, ...got2],
      Array.from({ length: 150 }, (_, i) => i + 1),
      'every message exactly once, in order',
    );
    const seqs = b.lines.map((l) => l.s as number);
    assert.deepEqual(
      seqs,
      [...seqs].sort((x, y) => x - y),
      'sequence numbers increase',
    );
    assert.equal(seqs[0], (last.s as number) + 1, 'the replay continues from the saved sequence');
    assert.equal(r.sim.stats.identifies, identifies, 'no IDENTIFY upstream');
    assert.equal(r.sim.stats.resumes, resumes, 'no RESUME upstream either');
  } finally {
    if (timer) clearInterval(timer);
    a.proc.kill('SIGKILL');
    b?.proc.kill('SIGKILL');
    await r.stop();
  }
});
