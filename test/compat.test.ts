// The compatibility matrix: each client library's real client, in its own child process (test/compat/<lib>.mjs),
// against the simulator. Each logs in and fills its guild cache, answers `!ping N` with `pong N` over REST, sees its
// own reply (the MESSAGE_CREATE the simulator dispatches for the created message), answers a `/ping` slash command
// through the interaction callback, and keeps working after an op 7 RECONNECT, a dropped connection and a 429. The children refuse every connection outside loopback (common.mjs), and
// every request is asserted to have reached the simulator. To add a library, add one line to LIBRARIES.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { BOT_USER_ID, buildMember, snowflake } from '../src/simulator/fixtures.js';
import { GatewaySimulator } from '../src/simulator/index.js';
import { guildChannels } from '../src/simulator/rest-objects.js';

interface CompatCase {
  /** Name in the results table. */
  name: string;
  /** Child script, relative to the repository root. */
  script: string;
}

const LIBRARIES: CompatCase[] = [
  { name: 'discord.js 14 (default strategy)', script: 'test/compat/discordjs.mjs' },
  { name: 'discord.js 14 (ShardlineStrategy)', script: 'test/compat/discordjs-shardline.mjs' },
  { name: '@discordjs/ws 2 (WebSocketManager)', script: 'test/compat/discordjs-ws.mjs' },
  { name: 'discordeno 21 (gateway + rest)', script: 'test/compat/discordeno.mjs' },
  { name: 'Eris 0.18', script: 'test/compat/eris.mjs' },
  { name: 'Oceanic 1.15', script: 'test/compat/oceanic.mjs' },
];

/** Shaped like a real bot token (base64 of the bot's user id first): discordeno reads the bot id out of it. */
const TOKEN = `${Buffer.from(BOT_USER_ID).toString('base64')}.SIMSIM.compat-not-a-real-token`;
const GUILDS = 3;
/** Real-time limit of one step (login, a ping round trip, a reconnect); a loaded 2-core machine is slow to start node. */
const STEP_MS = 20_000;

interface Line {
  e: string;
  [k: string]: unknown;
}

/** A child process speaking the line protocol of test/compat/common.mjs. */
class Child {
  readonly lines: Line[] = [];
  readonly stderr: string[] = [];
  private waiters = new Set<() => void>();
  readonly exited: Promise<number | null>;

  constructor(readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (text) => {
      try {
        this.lines.push(JSON.parse(text) as Line);
      } catch {
        this.stderr.push(`stdout: ${text}`);
      }
      for (const w of this.waiters) w();
    });
    proc.stderr!.on('data', (d: Buffer) => this.stderr.push(String(d)));
    this.exited = new Promise((resolve) => proc.once('close', (code) => resolve(code))); // after stdout was read
  }

  /** Resolve with the first line (from index `from`) that matches, or fail after `ms`. */
  async waitLine(what: string, match: (l: Line) => boolean, from = 0, ms = STEP_MS): Promise<Line> {
    const find = () => this.lines.slice(from).find(match);
    const errors = () => this.lines.filter((l) => l.e === 'error' || l.e === 'violation');
    let timer: NodeJS.Timeout | undefined;
    let wake: () => void = () => {};
    try {
      return await new Promise<Line>((resolve, reject) => {
        const check = () => {
          const hit = find();
          if (hit) resolve(hit);
          else if (errors().length > 0) reject(new Error(`${what}: the child reported ${JSON.stringify(errors())}`));
        };
        wake = check;
        this.waiters.add(wake);
        timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; lines ${JSON.stringify(this.lines)}; stderr ${this.stderr.join('').slice(-2000)}`)), ms);
        this.proc.once('exit', (code) => reject(new Error(`the child exited (${code}) while waiting for ${what}; stderr ${this.stderr.join('').slice(-2000)}`)));
        check();
      });
    } finally {
      clearTimeout(timer);
      this.waiters.delete(wake);
    }
  }
}

let messageCounter = 0;

/** A `!ping N` from a member of the first guild, as Discord dispatches a user's message. */
function userMessage(guildId: string, channelId: string, content: string): Record<string, unknown> {
  const { user, ...member } = buildMember(guildId, 1) as Record<string, unknown>;
  return {
    type: 0,
    tts: false,
    timestamp: new Date().toISOString(),
    pinned: false,
    nonce: String(messageCounter),
    mentions: [],
    mention_roles: [],
    mention_everyone: false,
    member,
    id: snowflake(Date.now(), messageCounter++ & 4095, 9),
    flags: 0,
    embeds: [],
    edited_timestamp: null,
    content,
    components: [],
    channel_id: channelId,
    author: user,
    attachments: [],
    guild_id: guildId,
  };
}

/** A `/ping` slash command from a member of the guild, as Discord dispatches it. */
function slashCommand(guildId: string, channelId: string): Record<string, unknown> {
  const { user, ...member } = buildMember(guildId, 1) as Record<string, unknown>;
  const id = snowflake(Date.now(), messageCounter++ & 4095, 10);
  return {
    version: 1,
    type: 2,
    token: `aW50ZXJhY3Rpb246${id}`,
    member: { ...member, user, permissions: '2248473465835073' },
    locale: 'en-US',
    id,
    guild_locale: 'en-US',
    guild_id: guildId,
    guild: { id: guildId, locale: 'en-US', features: [] },
    entitlements: [],
    data: { type: 1, name: 'ping', id: snowflake(Date.now() - 86_400_000, 1, 11) },
    context: 0,
    channel_id: channelId,
    channel: { id: channelId, type: 0, guild_id: guildId, name: 'general', flags: 0, permissions: '2248473465835073' },
    authorizing_integration_owners: { '0': guildId },
    attachment_size_limit: 10_485_760,
    app_permissions: '2248473465835073',
    application_id: BOT_USER_ID,
  };
}

/** Resolve when shard 0 has a live session again after a disconnect (resumed, or identified anew). */
function backOnline(sim: GatewaySimulator): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error('timed out waiting for the client to resume or re-identify')), STEP_MS);
    const onResume = (e: { ok: boolean; shardId: number | null }) => e.ok && done(null, 'resumed');
    const onReady = () => done(null, 're-identified');
    function done(err: Error | null, how?: string) {
      clearTimeout(timer);
      sim.off('resume', onResume);
      sim.off('ready', onReady);
      if (err) reject(err);
      else resolve(how!);
    }
    sim.on('resume', onResume);
    sim.on('ready', onReady);
  });
}

test('compat: the children refuse (and report) every connection outside loopback, before any DNS lookup', async () => {
  const script = `import './test/compat/common.mjs'; import net from 'node:net';
    const s = net.connect(443, 'discord.com'); s.on('error', (e) => { console.log(JSON.stringify({ e: 'refused', message: e.message })); process.exit(0); });`;
  const proc = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: new URL('..', import.meta.url),
    env: { ...process.env, SIM_WS: 'ws://127.0.0.1:1', SIM_API: 'http://127.0.0.1:1/api', SIM_PORT: '1', SIM_TOKEN: 'x' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const child = new Child(proc);
  assert.equal(await child.exited, 0);
  assert.deepEqual(
    child.lines.map((l) => l.e),
    ['violation', 'refused'],
  );
  assert.deepEqual(child.lines[0], { e: 'violation', host: 'discord.com', port: 443 });
  assert.match(String(child.lines[1]!.message), /compat guard: connection to discord\.com refused/);
});

for (const lib of LIBRARIES) {
  test(`compat: ${lib.name}`, { timeout: 120_000 }, async (t) => {
    const sim = await GatewaySimulator.start({ tokens: [TOKEN], guilds: GUILDS, identifyWindow: 100, heartbeatInterval: 10_000, reconnectCloseDelay: 2000 });
    const proc = spawn(process.execPath, [lib.script], {
      cwd: new URL('..', import.meta.url),
      env: { ...process.env, SIM_WS: sim.url, SIM_API: sim.apiBaseUrl, SIM_PORT: String(sim.port), SIM_TOKEN: TOKEN },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const child = new Child(proc);
    const results: string[] = [];
    const identifies: string[] = [];
    sim.on('identify', (e) => identifies.push(`${e.accepted ? 'accepted' : `refused (${e.reason})`}, compress ${JSON.stringify(e.payload.compress)}`));
    try {
      const ready = await child.waitLine('ready', (l) => l.e === 'ready');
      assert.equal(ready.guilds, GUILDS, 'guild cache filled');
      results.push('login + guild cache');

      const guildId = sim.guildIds[0]!;
      const channelId = guildChannels(guildId).find((c) => c.type === 0)!.id as string;
      const pingRound = async (n: number) => {
        const from = child.lines.length;
        assert.ok(sim.dispatch({ guildId }, 'MESSAGE_CREATE', userMessage(guildId, channelId, `!ping ${n}`)).length > 0, 'a session received !ping');
        await child.waitLine(`own reply pong ${n}`, (l) => l.e === 'own' && l.content === `pong ${n}`, from);
        const post = sim.restRequests().find((r) => r.method === 'POST' && r.route === '/channels/:channel_id/messages' && (r.body as { content?: string })?.content === `pong ${n}`);
        assert.ok(post, `POST pong ${n} reached the simulator`);
        assert.equal(post.status, 200);
        assert.equal(post.path, `/channels/${channelId}/messages`);
      };
      await pingRound(1);
      results.push('!ping → pong → own reply');

      // A slash command: the library answers the interaction callback; the response message comes back as its own.
      const beforeSlash = child.lines.length;
      sim.dispatch({ guildId }, 'INTERACTION_CREATE', slashCommand(guildId, channelId));
      await child.waitLine('own reply to /ping', (l) => l.e === 'own' && l.content === 'pong /ping', beforeSlash);
      const callback = sim.restRequests().find((r) => r.route === '/interactions/:interaction_id/:interaction_token/callback');
      assert.ok(callback?.status === 204 || callback?.status === 200, `callback answered ${callback?.status}`); // 200 with ?with_response=true
      assert.equal((callback?.body as { type?: number })?.type, 4);
      results.push('/ping → interaction callback → own reply');

      const afterOp7 = backOnline(sim);
      assert.ok(sim.sendReconnect(0));
      results.push(`op 7: ${await afterOp7}`);
      await pingRound(2);

      const afterDrop = backOnline(sim);
      assert.ok(sim.terminate(0));
      results.push(`dropped connection: ${await afterDrop}`);
      await pingRound(3);

      // A route limit of 1 per 1.5 s: two pings at once; the library must wait for the bucket (or retry its 429).
      sim.setOptions({ rest: { rateLimits: { routes: { 'POST /channels/:channel_id/messages': { limit: 1, window: 1500 } } } } });
      const from = child.lines.length;
      for (const n of [4, 5]) sim.dispatch({ guildId }, 'MESSAGE_CREATE', userMessage(guildId, channelId, `!ping ${n}`));
      for (const n of [4, 5]) await child.waitLine(`own reply pong ${n} under a rate limit`, (l) => l.e === 'own' && l.content === `pong ${n}`, from);
      const posts = sim.restRequests().filter((r) => r.route === '/channels/:channel_id/messages');
      results.push(`rate limit: ${posts.some((r) => r.status === 429) ? 'retried a 429' : 'waited for the bucket'}`);

      const rest = sim.restRequests();
      assert.ok(rest.length > 0, 'REST requests reached the simulator');
      for (const r of rest) assert.ok(!JSON.stringify(r).includes(TOKEN), 'the token is not recorded');
      assert.deepEqual(
        child.lines.filter((l) => l.e === 'violation' || l.e === 'error'),
        [],
      );
      assert.equal(sim.stats.closesByCode['4001'] ?? 0, 0, 'no payload was refused as invalid');
      t.diagnostic(`${lib.name}: ${results.join('; ')}; IDENTIFY ${identifies.join(' / ')}; REST ${[...new Set(rest.map((r) => `${r.method} ${r.route ?? r.path}`))].join(', ')}`);
    } finally {
      proc.stdin!.end();
      proc.kill('SIGTERM');
      const killer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await child.exited;
      clearTimeout(killer);
      await sim.stop();
    }
  });
}
