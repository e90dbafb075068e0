/**
 * GatewayProxy end to end on the simulator, with unmodified client libraries: @discordjs/ws 2 and discordeno's
 * gateway get READY, every guild's GUILD_CREATE and live events through the proxy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { inspect } from 'node:util';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REST } from '@discordjs/rest';
import WebSocket from 'ws';
import { CompressionMethod, WebSocketManager, WebSocketShardEvents } from '@discordjs/ws';
import { BOT_USER_ID } from '../src/simulator/index.js';
import { TOKEN, until } from './helpers/setup.js';
import { proxyRig } from './helpers/proxy-rig.js';
import { collectJsonLines } from './helpers/servers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

test('@discordjs/ws (zlib-stream, 2 shards) gets READY, every GUILD_CREATE and live events through the proxy', async () => {
  const r = await proxyRig({ shards: 2, guilds: 6 }, { shards: 2 });
  const rest = new REST({ api: r.proxy.apiUrl.replace(/\/v10$/, ''), version: '10' }).setToken(TOKEN);
  const manager = new WebSocketManager({ token: TOKEN, intents: 1 | 512 | 32768, rest, compression: CompressionMethod.ZlibNative });
  const seen: { shardId: number; t: string; d: Record<string, unknown> }[] = [];
  manager.on(WebSocketShardEvents.Dispatch, (payload, shardId) => {
    seen.push({ shardId, t: payload.t, d: payload.d as unknown as Record<string, unknown> });
  });
  try {
    const identifiesBefore = r.sim.stats.identifies;
    await manager.connect();
    await until(() => seen.filter((e) => e.t === 'GUILD_CREATE').length === 6, 'six GUILD_CREATEs', 10_000);
    assert.equal(seen.filter((e) => e.t === 'READY').length, 2);
    const created = new Set(seen.filter((e) => e.t === 'GUILD_CREATE').map((e) => e.d.id));
    assert.deepEqual([...created].sort(), [...r.sim.guildIds].sort());
    for (const e of seen.filter((x) => x.t === 'GUILD_CREATE')) assert.equal(r.sim.guildsForShard(e.shardId, 2).includes(e.d.id as string), true);
    const g = r.sim.guildIds[0]!;
    r.sim.dispatch({ guildId: g }, 'MESSAGE_CREATE', { id: '1', channel_id: '2', guild_id: g, content: 'through the proxy' });
    await until(() => seen.some((e) => e.t === 'MESSAGE_CREATE'), 'the live MESSAGE_CREATE', 10_000);
    assert.equal(seen.find((e) => e.t === 'MESSAGE_CREATE')!.d.content, 'through the proxy');
    assert.equal(r.sim.stats.identifies, identifiesBefore, 'clients never reach the upstream gateway');
  } finally {
    await manager.destroy();
    await r.stop();
  }
});

/** discordeno's gateway in a process of its own (its rate-limit bucket keeps a 60 s timer that nothing releases). */
const DISCORDENO = `
  import { createGatewayManager, TransportCompression } from '@discordeno/gateway';
  const quiet = { debug() {}, info() {}, warn() {}, error: (...a) => console.error(...a), fatal: (...a) => console.error(...a) };
  const gateway = createGatewayManager({
    token: process.env.TOKEN, intents: 1 | 512 | 32768, url: process.env.URL, totalShards: 2, lastShardId: 1, spawnShardDelay: 0,
    preferSnakeCase: true, transportCompression: TransportCompression.zstd, logger: quiet,
    connection: { url: process.env.URL, shards: 2, sessionStartLimit: { maxConcurrency: 16, remaining: 1000, total: 1000, resetAfter: 0 } },
    resharding: { enabled: false, shardsFullPercentage: 80, checkInterval: -1 },
    events: { message: (shard, p) => { if (p.t) console.log(JSON.stringify({ shardId: shard.id, t: p.t, d: p.d })); } },
  });
  await gateway.spawnShards();
`;

test('discordeno gateway (zstd-stream, 2 shards) gets READY, every GUILD_CREATE and live events through the proxy', async () => {
  const r = await proxyRig({ shards: 2, guilds: 5 }, { shards: 2 });
  const proc = spawn(process.execPath, ['--input-type=module', '-e', DISCORDENO], { cwd: root, env: { ...process.env, TOKEN, URL: r.proxy.url }, stdio: ['ignore', 'pipe', 'inherit'] });
  const seen: { shardId: number; t: string; d: Record<string, unknown> }[] = [];
  collectJsonLines(proc, seen as unknown as Record<string, unknown>[]);
  try {
    await until(() => seen.filter((e) => e.t === 'GUILD_CREATE').length === 5, 'five GUILD_CREATEs', 15_000);
    assert.equal(seen.filter((e) => e.t === 'READY').length, 2);
    assert.deepEqual(
      seen
        .filter((e) => e.t === 'GUILD_CREATE')
        .map((e) => e.d.id)
        .sort(),
      [...r.sim.guildIds].sort(),
    );
    const g = r.sim.guildIds[1]!;
    r.sim.dispatch({ guildId: g }, 'MESSAGE_CREATE', { id: '1', channel_id: '2', guild_id: g, content: 'zstd through the proxy' });
    await until(() => seen.some((e) => e.t === 'MESSAGE_CREATE'), 'the live MESSAGE_CREATE', 10_000);
    assert.equal(seen.find((e) => e.t === 'MESSAGE_CREATE')!.d.content, 'zstd through the proxy');
    assert.equal(r.proxy.stats().clients, 2);
  } finally {
    proc.kill('SIGKILL');
    await r.stop();
  }
});

/** One payload a client received. */
interface Got {
  op: number;
  t: string | null;
  s: number | null;
  d: Record<string, unknown>;
}

/** A plain websocket client (no compression) that records every payload. */
async function rawClient(url: string): Promise<{ ws: WebSocket; got: Got[]; closed: Promise<number>; send(p: unknown): void }> {
  const ws = new WebSocket(`${url}/?v=10&encoding=json`);
  const got: Got[] = [];
  ws.on('message', (data) => got.push(JSON.parse(data.toString())));
  const closed = new Promise<number>((res) => ws.once('close', (code) => res(code)));
  await once(ws, 'open');
  return { ws, got, closed, send: (p) => ws.send(JSON.stringify(p)) };
}

test('several clients on one shard each get the whole stream; op 8 answers go only to the asker; bad input closes only its client', async () => {
  const r = await proxyRig({ guilds: 2 }, { shards: 1 });
  try {
    const a = await rawClient(r.proxy.url);
    const b = await rawClient(r.proxy.url);
    const c = await rawClient(r.proxy.url);
    for (const x of [a, b, c]) x.send({ op: 2, d: { token: TOKEN, intents: 1 | 2 | 512, properties: {} } });
    await until(() => [a, b, c].every((x) => x.got.filter((p) => p.t === 'GUILD_CREATE').length === 2), 'three clients ready', 10_000);
    const g = r.sim.guildIds[0]!;
    a.send({ op: 8, d: { guild_id: g, query: '', limit: 0, nonce: 'mine' } });
    await until(() => a.got.some((p) => p.t === 'GUILD_MEMBERS_CHUNK'), 'the chunk for the asker', 10_000);
    assert.equal(a.got.find((p) => p.t === 'GUILD_MEMBERS_CHUNK')!.d.nonce, 'mine', 'the client sees its own nonce');
    c.ws.send('{not json');
    assert.equal(await c.closed, 4002);
    r.sim.dispatch({ guildId: g }, 'MESSAGE_CREATE', { id: '1', channel_id: '2', guild_id: g, content: 'to both' });
    await until(() => [a, b].every((x) => x.got.some((p) => p.t === 'MESSAGE_CREATE')), 'the message on both clients', 10_000);
    assert.ok(!b.got.some((p) => p.t === 'GUILD_MEMBERS_CHUNK'), 'the other client got no chunk');
    const seqs = a.got.filter((p) => p.op === 0).map((p) => p.s);
    assert.deepEqual(
      seqs,
      Array.from({ length: seqs.length }, (_, i) => i + 1),
      "the client's own sequence numbers",
    );
    const heartbeat = a.got.length;
    a.send({ op: 1, d: seqs.at(-1) });
    await until(() => a.got.slice(heartbeat).some((p) => p.op === 11), 'the heartbeat ACK', 10_000);
    const bad = await rawClient(r.proxy.url);
    bad.send({ op: 2, d: { token: 'not-the-token', intents: 1, properties: {} } });
    assert.equal(await bad.closed, 4004);
    const wrongShard = await rawClient(r.proxy.url);
    wrongShard.send({ op: 2, d: { token: TOKEN, intents: 1, properties: {}, shard: [1, 2] } });
    assert.equal(await wrongShard.closed, 4010);
    assert.equal(r.sim.stats.identifies, 1, 'upstream identified once, for the proxy');
    assert.equal(r.proxy.stats().shards[0]!.clients, 2);
    for (const shown of [inspect(r.proxy), JSON.stringify(r.proxy), inspect({ ...r.proxy }, { depth: 3 })]) assert.ok(!shown.includes(TOKEN), 'the token never shows');
    for (const x of [a, b]) x.ws.close();
  } finally {
    await r.stop();
  }
});

test('GET /api/v10/gateway/bot is answered by the proxy; other /api/ requests are forwarded with their status', async () => {
  const r = await proxyRig({ shards: 2 }, { shards: 2 });
  try {
    const bot = await fetch(`${r.proxy.apiUrl}/gateway/bot`, { headers: { authorization: `Bot ${TOKEN}` } });
    const body = (await bot.json()) as { url: string; shards: number; session_start_limit: { remaining: number } };
    assert.equal(body.url, r.proxy.url);
    assert.equal(body.shards, 2);
    assert.ok(body.session_start_limit.remaining > 0);
    assert.equal((await fetch(`${r.proxy.apiUrl}/gateway/bot`, { headers: { authorization: 'Bot nope' } })).status, 401);
    // Whatever the upstream answers (the simulator's REST routes), the proxy returns the same status and body.
    const requests: [string, RequestInit][] = [
      ['/users/@me', {}],
      ['/users/@me', { headers: { authorization: `Bot ${TOKEN}` } }],
      ['/channels/123/messages', { method: 'POST', headers: { authorization: `Bot ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ content: 'hi' }) }],
      ['/no/such/route?x=1', {}],
    ];
    for (const [path, init] of requests) {
      const direct = await fetch(`${r.sim.apiUrl}${path}`, init);
      const proxied = await fetch(`${r.proxy.apiUrl}${path}`, init);
      assert.equal(proxied.status, direct.status, `${init.method ?? 'GET'} ${path}`);
      assert.equal(await proxied.text(), await direct.text(), `${init.method ?? 'GET'} ${path}`);
    }
    assert.equal(r.proxy.stats().restRequests, requests.length);
  } finally {
    await r.stop();
  }
});

test('an upstream disconnect is invisible to clients: the proxy RESUMEs upstream and the stream continues in order', async () => {
  const r = await proxyRig({ guilds: 1 }, { shards: 1 });
  try {
    const a = await rawClient(r.proxy.url);
    a.send({ op: 2, d: { token: TOKEN, intents: 1 | 512 | 32768, properties: {} } });
    await until(() => a.got.some((p) => p.t === 'GUILD_CREATE'), 'the client ready', 10_000);
    const g = r.sim.guildIds[0]!;
    const send = (n: number) => r.sim.dispatch({ guildId: g }, 'MESSAGE_CREATE', { id: String(n), channel_id: '2', guild_id: g, content: String(n) });
    for (let n = 1; n <= 5; n++) send(n);
    const resumes = r.sim.stats.resumes;
    r.sim.terminate(0); // abrupt loss of the proxy's upstream connection
    for (let n = 6; n <= 10; n++) send(n); // buffered by the gateway for the session, replayed on RESUME
    await until(() => a.got.filter((p) => p.t === 'MESSAGE_CREATE').length === 10, 'all ten messages', 10_000);
    assert.deepEqual(
      a.got.filter((p) => p.t === 'MESSAGE_CREATE').map((p) => p.d.content),
      Array.from({ length: 10 }, (_, i) => String(i + 1)),
    );
    assert.equal(r.sim.stats.resumes, resumes + 1, 'the proxy resumed upstream');
    assert.equal(a.got.filter((p) => p.t === 'READY').length, 1, 'the client saw nothing of it');
    const seqs = a.got.filter((p) => p.op === 0).map((p) => p.s);
    assert.deepEqual(
      seqs,
      Array.from({ length: seqs.length }, (_, i) => i + 1),
    );
    a.ws.close();
  } finally {
    await r.stop();
  }
});

test('MessageContent per client: a client without it gets guild messages stripped (live and replayed), one with it the whole payload', async () => {
  const r = await proxyRig({ guilds: 1 }, { shards: 1 }); // the upstream has MessageContent
  try {
    const withIt = await rawClient(r.proxy.url);
    const without = await rawClient(r.proxy.url);
    withIt.send({ op: 2, d: { token: TOKEN, intents: 1 | 512 | 4096 | 32768, properties: {} } });
    without.send({ op: 2, d: { token: TOKEN, intents: 1 | 512 | 4096, properties: {} } });
    await until(() => [withIt, without].every((x) => x.got.some((p) => p.t === 'GUILD_CREATE')), 'both clients ready', 10_000);
    const g = r.sim.guildIds[0]!;
    const body = { channel_id: '2', author: { id: '5' }, mentions: [], embeds: [{ title: 'e' }], attachments: [{ id: '3' }], components: [{ type: 1, components: [] }] };
    const guildMessage = (id: string, extra: Record<string, unknown> = {}) => ({ ...body, id, guild_id: g, content: `content ${id}`, ...extra });
    r.sim.dispatch({ guildId: g }, 'MESSAGE_CREATE', guildMessage('1', { poll: { question: { text: 'q' } } }));
    r.sim.dispatch({ guildId: g }, 'MESSAGE_CREATE', guildMessage('2', { mentions: [{ id: BOT_USER_ID }] }));
    r.sim.dispatch({ guildId: g }, 'MESSAGE_CREATE', guildMessage('3', { author: { id: BOT_USER_ID } }));
    r.sim.dispatch(0, 'MESSAGE_CREATE', { ...body, id: '4', content: 'content 4' }); // a DM
    r.sim.dispatch({ guildId: g }, 'MESSAGE_UPDATE', guildMessage('5'));
    const messages = (x: { got: Got[] }) => x.got.filter((p) => p.t === 'MESSAGE_CREATE' || p.t === 'MESSAGE_UPDATE').map((p) => p.d);
    await until(() => messages(withIt).length === 5 && messages(without).length === 5, 'five messages on both clients', 10_000);
    for (const m of messages(withIt)) {
      assert.equal(m.content, `content ${m.id}`);
      assert.deepEqual([m.embeds, m.attachments, m.components], [body.embeds, body.attachments, body.components]);
    }
    assert.deepEqual((messages(withIt)[0]!.poll as { question: unknown }).question, { text: 'q' });
    const stripped = messages(without);
    for (const m of [stripped[0]!, stripped[4]!]) {
      assert.deepEqual([m.content, m.embeds, m.attachments, m.components, 'poll' in m], ['', [], [], [], false], `message ${m.id}`);
      assert.equal(m.channel_id, '2', 'the rest of the message is kept');
    }
    for (const m of stripped.slice(1, 4)) assert.equal(m.content, `content ${m.id}`, `message ${m.id}: a mention, the bot's own, a DM keep their content`);

    // the client without the intent disconnects; what it missed is replayed stripped too
    const sessionId = (without.got.find((p) => p.t === 'READY')!.d as { session_id: string }).session_id;
    const seq = without.got.at(-1)!.s!;
    without.ws.terminate();
    await until(() => r.proxy.stats().detachedSessions === 1, 'the session detached', 10_000);
    r.sim.dispatch({ guildId: g }, 'MESSAGE_CREATE', guildMessage('6'));
    await until(() => messages(withIt).length === 6, 'the sixth message', 10_000);
    const back = await rawClient(r.proxy.url);
    back.send({ op: 6, d: { token: TOKEN, session_id: sessionId, seq } });
    await until(() => back.got.some((p) => p.t === 'RESUMED'), 'RESUMED', 10_000);
    const replayed = back.got.filter((p) => p.t === 'MESSAGE_CREATE');
    assert.deepEqual(
      replayed.map((p) => [p.s, p.d.id, p.d.content, p.d.embeds]),
      [[seq + 1, '6', '', []]],
    );
    assert.equal(messages(withIt)[5]!.content, 'content 6');
    for (const x of [withIt, back]) x.ws.close();
  } finally {
    await r.stop();
  }
});
