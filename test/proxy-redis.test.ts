/**
 * `shardline proxy --redis` killed with SIGKILL and restarted: the upstream sessions and the cache come back from
 * Redis, the simulator sees RESUMEs only (no IDENTIFY), and a new client gets a full READY and GUILD_CREATEs that
 * include what changed before the kill and while the proxy was down; a client that was connected RESUMEs its old
 * session on the restarted proxy and gets exactly what it missed. Uses a throwaway redis-server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { REST } from '@discordjs/rest';
import { WebSocketManager, WebSocketShardEvents } from '@discordjs/ws';
import { scaledClock } from '../src/clock.js';
import { GatewaySimulator } from '../src/simulator/index.js';
import { collectJsonLines, startRedis } from './helpers/servers.js';
import { SCALE, TOKEN, until } from './helpers/setup.js';
import { dispatch, gid, resume, started } from './helpers/ring.js';
import { Intents } from '../src/intents.js';
import { GuildCache } from '../src/proxy/cache.js';
import { ProxyStore } from '../src/proxy/persist.js';
import { ShardStream } from '../src/proxy/stream.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function proxyProcess(args: string[], env: Record<string, string> = {}): { proc: ChildProcess; lines: Record<string, unknown>[]; stderr: () => string } {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/shardline.ts'), 'proxy', ...args], {
    cwd: root,
    env: { ...process.env, DISCORD_TOKEN: TOKEN, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let err = '';
  collectJsonLines(proc, lines);
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  return { proc, lines, stderr: () => err };
}

/** A throwaway redis-server, a simulator, and the proxy's arguments for them. */
async function servers(guilds: number, intents: string) {
  const redisServer = await startRedis();
  const sim = await GatewaySimulator.start({ tokens: [TOKEN], clock: scaledClock(SCALE), heartbeatInterval: 150_000, sessionTimeout: 6_000_000, guilds, guildMemberCount: 5 });
  const redis = new Redis(redisServer.url);
  const args = ['--json', '--shards', '1', '--api-url', sim.apiUrl, '--time-scale', String(SCALE), '--redis', redisServer.url, '--intents', intents];
  const stop = async () => {
    redis.disconnect();
    await sim.stop();
    await redisServer.stop();
  };
  return { sim, redis, args, stop };
}

/** Start a proxy process where one was killed: it comes up by RESUMEing upstream (no IDENTIFY). Its --json line. */
async function restart(sim: GatewaySimulator, args: string[], procs: ChildProcess[]): Promise<{ url: string; apiUrl: string }> {
  const identifies = sim.stats.identifies;
  const resumes = sim.stats.resumes;
  const p = proxyProcess(args);
  procs.push(p.proc);
  await until(() => p.lines.some((l) => typeof l.url === 'string'), `the restarted proxy's --json line (${p.stderr()})`, 20_000);
  assert.equal(sim.stats.identifies, identifies, 'no IDENTIFY upstream after the restart');
  assert.equal(sim.stats.resumes, resumes + 1, 'the upstream session was resumed');
  return p.lines.find((l) => typeof l.url === 'string') as { url: string; apiUrl: string };
}

test('a proxy killed and restarted with Redis resumes upstream (no IDENTIFY) and serves a complete READY', async () => {
  const { sim, redis, args, stop } = await servers(3, 'Guilds,GuildMessages');
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
    const second = await restart(sim, args, procs);

    const rest = new REST({ api: second.apiUrl.replace(/\/v10$/, ''), version: '10' }).setToken(TOKEN);
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
    await stop();
  }
});

/** Until the proxy has written client session `sessionId` to Redis at sequence `seq` or later (stored as [id, shard, intents, seq, ...]). */
async function clientPersisted(redis: Redis, sessionId: string, seq: number): Promise<void> {
  let stored = 0;
  await until(
    () => {
      void redis.hget('shardline:proxy:{default}:clients', sessionId).then((t) => (stored = t ? (JSON.parse(t) as number[])[3]! : 0));
      return stored >= seq;
    },
    'the client session persisted',
    20_000,
  );
}

/** A plain websocket client (no compression) that records every payload. */
async function rawClient(url: string): Promise<{ ws: WebSocket; got: { op: number; t: string | null; s: number | null; d: Record<string, unknown> }[]; send(p: unknown): void }> {
  const ws = new WebSocket(`${url}/?v=10&encoding=json`);
  const got: { op: number; t: string | null; s: number | null; d: Record<string, unknown> }[] = [];
  ws.on('message', (data) => got.push(JSON.parse(data.toString())));
  ws.on('error', () => {}); // the proxy is killed under it
  await once(ws, 'open');
  return { ws, got, send: (p) => ws.send(JSON.stringify(p)) };
}

test('a client connected to a proxy killed with SIGKILL RESUMEs its session on the restarted proxy (same Redis) and gets exactly what it missed', async () => {
  const { sim, redis, args, stop } = await servers(2, 'Guilds,GuildMessages,MessageContent');
  const procs: ChildProcess[] = [];
  const clients: WebSocket[] = [];
  try {
    const first = proxyProcess(args);
    procs.push(first.proc);
    await until(() => first.lines.some((l) => typeof l.url === 'string'), `the first proxy's --json line (${first.stderr()})`, 20_000);
    // two clients: one resumes after the last sequence written to Redis, the other before it
    const url = first.lines.find((l) => typeof l.url === 'string')!.url as string;
    const a = await rawClient(url);
    const c = await rawClient(url);
    clients.push(a.ws, c.ws);
    for (const x of [a, c]) x.send({ op: 2, d: { token: TOKEN, intents: 1 | 512 | 32768, properties: {} } });
    await until(() => [a, c].every((x) => x.got.filter((p) => p.t === 'GUILD_CREATE').length === 2), 'the clients ready', 20_000);
    const g = sim.guildIds[0]!;
    const send = (n: number) => sim.dispatch({ guildId: g }, 'MESSAGE_CREATE', { id: String(n), channel_id: '2', guild_id: g, content: String(n) });
    const got = (x: { got: { t: string | null; s: number | null; d: Record<string, unknown> }[] }) => x.got.filter((p) => p.t === 'MESSAGE_CREATE');
    for (let n = 1; n <= 10; n++) send(n);
    await until(() => got(a).length === 10 && got(c).length === 10, 'ten messages', 20_000);
    const sessionId = (a.got.find((p) => p.t === 'READY')!.d as { session_id: string }).session_id;
    const otherId = (c.got.find((p) => p.t === 'READY')!.d as { session_id: string }).session_id;
    // the session (and with it the ring up to message 10) written to Redis: stored as [id, shard, intents, seq, ...]
    const tenth = got(a)[9]!.s!;
    await clientPersisted(redis, sessionId, tenth);
    // five more the client receives, perhaps not written yet when the proxy dies
    for (let n = 11; n <= 15; n++) send(n);
    await until(() => got(a).length === 15 && got(c).length === 15, 'fifteen messages', 20_000);
    first.proc.kill('SIGKILL');
    await new Promise((res) => first.proc.once('exit', res));
    for (let n = 16; n <= 20; n++) send(n); // while the proxy is down
    // the client had handled message 12 when its connection died (13..15 were lost in the dying socket)
    const resumeSeq = got(a)[11]!.s!;
    // the other client had handled message 8 only (before what Redis holds of its session)
    const otherSeq = got(c)[7]!.s!;

    const identifies = sim.stats.identifies;
    const second = await restart(sim, args, procs);

    const b = await rawClient(second.url);
    clients.push(b.ws);
    b.send({ op: 6, d: { token: TOKEN, session_id: sessionId, seq: resumeSeq } });
    await until(() => b.got.some((p) => p.t === 'RESUMED' || p.op === 9), 'RESUMED', 20_000);
    assert.ok(!b.got.some((p) => p.op === 9), 'not invalidated');
    const dispatches = b.got.filter((p) => p.op === 0);
    assert.deepEqual(
      dispatches.map((p) => [p.t, p.s, p.t === 'MESSAGE_CREATE' ? p.d.content : null]),
      [...Array.from({ length: 8 }, (_, i) => ['MESSAGE_CREATE', resumeSeq + 1 + i, String(13 + i)]), ['RESUMED', resumeSeq + 9, null]],
      'messages 13..20 in order, numbered after the resumed sequence, then RESUMED',
    );
    send(21);
    await until(() => got(b).length === 9, 'the live stream continues', 20_000);
    assert.deepEqual([got(b)[8]!.s, got(b)[8]!.d.content], [resumeSeq + 10, '21']);
    assert.equal(sim.stats.identifies, identifies, 'still no IDENTIFY upstream');

    const d = await rawClient(second.url);
    clients.push(d.ws);
    d.send({ op: 6, d: { token: TOKEN, session_id: otherId, seq: otherSeq } });
    await until(() => d.got.some((p) => p.t === 'RESUMED' || p.op === 9), 'the other RESUMED', 20_000);
    assert.deepEqual(
      d.got.filter((p) => p.op === 0).map((p) => [p.t, p.s, p.t === 'MESSAGE_CREATE' ? p.d.content : null]),
      [...Array.from({ length: 13 }, (_, i) => ['MESSAGE_CREATE', otherSeq + 1 + i, String(9 + i)]), ['RESUMED', otherSeq + 14, null]],
      'messages 9..21 in order, then RESUMED',
    );
  } finally {
    for (const ws of clients) ws.terminate();
    for (const p of procs) p.kill('SIGKILL');
    await stop();
  }
});

test('replay ring: GUILD_CREATE references persist in Redis and resolve against the restored cache', async () => {
  const redisServer = await startRedis();
  try {
    const { cache, st, c } = started(20, Intents.Guilds | Intents.GuildMessages);
    dispatch(st, cache, [c], 'MESSAGE_CREATE', { id: '1', channel_id: '2', guild_id: gid(1), content: 'x' });
    const state = c.session!;
    c.ended();
    const errors: Error[] = [];
    const store = await ProxyStore.open(redisServer.url, 'ring-test', 60_000, (e) => errors.push(e));
    for (let i = 0; i < 20; i++) store.markGuild(gid(i));
    const persisted = { sessions: {}, shardGuilds: {}, user: '{}', application: '{}', cache, replay: { rings: [[0, st.ring] as const], sessions: [{ state, attached: false }] } };
    await store.close(persisted);

    const back = await ProxyStore.open(redisServer.url, 'ring-test', 60_000, (e) => errors.push(e));
    const loaded = await back.load();
    await back.close(null);
    assert.deepEqual(errors, []);
    const cache2 = new GuildCache();
    for (const [id, g] of Object.entries(loaded.guilds)) cache2.restore(id, g);
    const st2 = new ShardStream(0, 10_000);
    const r = loaded.replay.rings.get(0)!;
    assert.equal(r.entries.filter((e) => e.ref === true).length, 20, 'stored as references');
    st2.restoreRing(r.newest, r.entries);
    assert.equal(st2.ring.bytes(), st.ring.bytes());
    const s = loaded.replay.sessions[0]!;
    const state2 = { ...s, stripContent: false };
    const got = resume(cache2, st2, state2, 1);
    assert.deepEqual(
      got.map((p) => p.t),
      [...Array.from({ length: 20 }, () => 'GUILD_CREATE'), 'MESSAGE_CREATE', 'RESUMED'],
    );
    for (let i = 0; i < 20; i++) assert.deepEqual(got[i]!.d, JSON.parse(cache.build(gid(i), { presences: false })!), `guild ${i} from the restored cache`);
  } finally {
    await redisServer.stop();
  }
});

test('a proxy with a handler killed with SIGKILL while its handler is behind: the restarted proxy resumes upstream from what the handler finished, so nothing received but not handled is lost (and clients get nothing twice)', async () => {
  const { sim, redis, args, stop } = await servers(1, 'Guilds,GuildMessages,MessageContent');
  const handler = join(root, 'test/helpers/proxy-handler.ts');
  const procs: ChildProcess[] = [];
  const clients: WebSocket[] = [];
  type Post = { shardId: number; value: { type?: string; sequence?: number } };
  const handled = (lines: Record<string, unknown>[]) => (lines as unknown as Post[]).filter((l) => l.value?.type === 'MESSAGE_CREATE').map((l) => l.value.sequence!);
  try {
    const first = proxyProcess([...args, '--handler', handler]);
    procs.push(first.proc);
    await until(() => first.lines.some((l) => typeof l.url === 'string'), `the first proxy's --json line (${first.stderr()})`, 20_000);
    const url = first.lines.find((l) => typeof l.url === 'string')!.url as string;
    const client = await rawClient(url);
    clients.push(client.ws);
    client.send({ op: 2, d: { token: TOKEN, intents: 1 | 512 | 32768, properties: {} } });
    await until(() => client.got.some((p) => p.t === 'GUILD_CREATE'), 'the client ready', 20_000);
    const g = sim.guildIds[0]!;
    const seqs: number[] = [];
    const say = (content: string) => {
      sim.dispatch({ guildId: g }, 'MESSAGE_CREATE', { id: String(seqs.length + 1), channel_id: '2', guild_id: g, content, author: { id: '5' } });
      seqs.push(sim.sessions().find((s) => !s.expired)!.seq);
    };
    say('m1');
    say('m2');
    await until(() => handled(first.lines).length === 2, 'two messages handled', 20_000);
    say('block'); // the handler waits for good: everything after it is received, cached, sent to clients, not handled
    for (let i = 0; i < 5; i++) say(`queued${i}`);
    const last = seqs.at(-1)!;
    await until(() => client.got.filter((p) => p.t === 'MESSAGE_CREATE').length === 8, 'the client got all eight', 20_000);
    // the proxy's state written to Redis after the last one arrived: its stored upstream sequence covers it
    let stored = 0;
    await until(
      () => {
        void redis.hget('shardline:proxy:{default}:meta', 'sessions').then((t) => (stored = t ? (Object.values(JSON.parse(t) as Record<string, { sequence: number }>)[0]?.sequence ?? 0) : 0));
        return stored >= last;
      },
      'the last message persisted',
      20_000,
    );
    // and the client's session, up to the last message it got
    const sessionId = (client.got.find((p) => p.t === 'READY')!.d as { session_id: string }).session_id;
    const lastS = client.got.filter((p) => p.t === 'MESSAGE_CREATE').at(-1)!.s!;
    await clientPersisted(redis, sessionId, lastS);
    first.proc.kill('SIGKILL');
    await new Promise((res) => first.proc.once('exit', res));

    const identifies = sim.stats.identifies;
    const second = proxyProcess([...args, '--handler', handler], { SHARDLINE_TEST_NO_BLOCK: '1' });
    procs.push(second.proc);
    await until(() => second.lines.some((l) => typeof l.url === 'string'), `the restarted proxy's --json line (${second.stderr()})`, 20_000);
    assert.equal(sim.stats.identifies, identifies, 'no IDENTIFY upstream after the restart');
    say('after');
    await until(() => handled(second.lines).includes(seqs.at(-1)!), 'the restarted proxy handles the message after the restart', 20_000);
    // 'block' is handled again by the restarted proxy (which does not wait on it) ...
    const all = [...handled(first.lines), ...handled(second.lines)];
    const lost = seqs.filter((s) => !all.includes(s));
    assert.deepEqual(lost, [], 'every message handled, those queued behind the blocked one included');
    assert.deepEqual(handled(second.lines), seqs.slice(2), 'the restarted proxy handled from the blocked one on, in order');
    // ... but the dispatches replayed for the handler did not enter the replay ring again: the client RESUMEs its
    // session on the restarted proxy and gets the one message it missed, nothing twice
    const back = await rawClient(second.lines.find((l) => typeof l.url === 'string')!.url as string);
    clients.push(back.ws);
    back.send({ op: 6, d: { token: TOKEN, session_id: sessionId, seq: lastS } });
    await until(() => back.got.some((p) => p.t === 'RESUMED'), 'the client resumed on the restarted proxy', 20_000);
    const replayed = back.got.filter((p) => p.t === 'MESSAGE_CREATE').map((p) => p.d.content);
    assert.deepEqual(replayed, ['after'], 'exactly what the client missed');
  } finally {
    for (const c of clients) c.terminate();
    for (const p of procs) p.kill('SIGKILL');
    await stop();
  }
});
