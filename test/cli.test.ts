import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GatewaySimulator } from '../src/simulator/index.js';

/** The built CLI (`npm test` builds first; run `npm run build` before running this file alone). */
const CLI = fileURLToPath(new URL('../dist/cli/shardline.js', import.meta.url));
/** A recognisable token that must never be printed. */
const SECRET = 'NzkyNzE1NDU0MTk2MDg4ODQy.X-hvzA.Ovy4MCQywSkoMRRclStW4xAYK7I';
const SCALE = '0.02';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(args: string[], env: Record<string, string | undefined> = {}): ChildProcessWithoutNullStreams & { out: string[]; err: string[]; done: Promise<Result> } {
  const { DISCORD_TOKEN: _drop, ...base } = process.env;
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...base, NO_COLOR: '1', ...env } as NodeJS.ProcessEnv }) as ChildProcessWithoutNullStreams & {
    out: string[];
    err: string[];
    done: Promise<Result>;
  };
  child.out = [];
  child.err = [];
  child.stdout.on('data', (d: Buffer) => child.out.push(d.toString()));
  child.stderr.on('data', (d: Buffer) => child.err.push(d.toString()));
  const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
  child.done = new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(kill);
      resolve({ code, stdout: child.out.join(''), stderr: child.err.join('') });
    }),
  );
  return child;
}

const cli = (args: string[], env: Record<string, string | undefined> = {}) => start(args, env).done;

async function waitFor(read: () => string, re: RegExp, what: string, timeoutMs = 15_000): Promise<RegExpExecArray> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const m = re.exec(read());
    if (m) return m;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; got: …${read().slice(-800)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function noStack(text: string): void {
  assert.doesNotMatch(text, /\n\s+at .+\(.+:\d+:\d+\)/, 'no stack trace');
}

test('the CLI is built with a shebang', () => {
  assert.ok(existsSync(CLI), 'dist/cli/shardline.js exists (npm run build)');
});

test('--help for every command', async () => {
  const main = await cli(['--help']);
  assert.equal(main.code, 0);
  assert.match(main.stdout, /shardline run \[options\]/);
  assert.match(main.stdout, /shardline simulator \[options\]/);
  const run = await cli(['run', '--help']);
  assert.equal(run.code, 0);
  for (const flag of ['--simulator', '--shards', '--intents', '--events', '--metrics-port', '--status-port', 'DISCORD_TOKEN']) assert.ok(run.stdout.includes(flag), flag);
  const sim = await cli(['simulator', '-h']);
  assert.equal(sim.code, 0);
  for (const flag of ['--port', '--guilds', '--shards', '--time-scale']) assert.ok(sim.stdout.includes(flag), flag);
  assert.equal((await cli(['help', 'run'])).stdout, run.stdout);
  const none = await cli([]);
  assert.equal(none.code, 2, 'no command: usage on stderr, exit 2');
  assert.match(none.stderr, /Usage:/);
});

test('bad usage: exit 2, one line saying what to fix, no stack trace, never the token', async () => {
  const cases: [string[], RegExp][] = [
    [['run', '--bogus'], /unknown option --bogus\nSee 'shardline run --help'/],
    [['run', '--shards'], /--shards needs a value/],
    [['run', '--shards', 'many'], /--shards must be a whole number from 1/],
    [['run', '--simulator', '--intents', 'Guilds,Bogus'], /unknown intent 'Bogus' in --intents; known intents: Guilds, GuildMembers/],
    [['run', '--simulator', '--intents', '99999999999'], /not documented intents/],
    [
      ['run', '--simulator', '--events', 'MESSAGE_CREATE', '--intents', 'Guilds'],
      /--events MESSAGE_CREATE needs the GuildMessages or DirectMessages intent, which --intents lacks: add it \(e\.g\. --intents Guilds,GuildMessages\)/,
    ],
    [
      ['run', '--simulator', '--events', 'MESSAGE_CRAETE'],
      /--events MESSAGE_CRAETE is not a dispatch type this version knows \(did you mean MESSAGE_CREATE\?\); a type Discord added after this release goes in --extra-events MESSAGE_CRAETE/,
    ],
    [['run', '--simulator', '--events', 'MESSAGE_CREATE', '--extra-events', 'not-a-name'], /--extra-events NOT-A-NAME is not a dispatch name/],
    [['run', '--simulator', '--compression', 'gzip'], /--compression must be zlib-stream, zstd-stream or none/],
    [['run', '--traffic', '5'], /--traffic and --sim-guilds only apply with --simulator/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['simulator', '--port', '70000'], /--port must be a whole number from 0 to 65535/],
  ];
  await Promise.all(
    cases.map(async ([args, re]) => {
      const r = await cli(args, { DISCORD_TOKEN: SECRET });
      assert.equal(r.code, 2, `${args.join(' ')} → exit 2 (${r.stderr})`);
      assert.match(r.stderr, re);
      assert.equal(r.stdout, '');
      noStack(r.stderr);
      assert.ok(!r.stderr.includes(SECRET), 'no token');
    }),
  );
  const noToken = await cli(['run', '--intents', 'Guilds']);
  assert.equal(noToken.code, 2);
  assert.match(noToken.stderr, /no token: set the DISCORD_TOKEN environment variable.*or pass --simulator/);
});

test('run --simulator prints the chosen dispatches as JSON lines, a progress report on stderr, and never the token', async () => {
  const r = await cli(['run', '--simulator', '--shards', '3', '--events', 'MESSAGE_CREATE', '--intents', 'Guilds,GuildMessages', '--max-events', '5', '--time-scale', SCALE, '--traffic', '40'], {
    DISCORD_TOKEN: SECRET,
  });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 5);
  for (const line of lines) {
    const e = JSON.parse(line) as { shardId: number; type: string; sequence: number; data: { id: string; channel_id: string } };
    assert.equal(e.type, 'MESSAGE_CREATE');
    assert.ok(e.shardId >= 0 && e.shardId < 3);
    assert.ok(e.sequence > 0);
    assert.match(e.data.id, /^\d+$/);
  }
  assert.match(r.stderr, /bundled gateway simulator at ws:\/\/127\.0\.0\.1:\d+ \(3 shards/);
  assert.match(r.stderr, /3\/3 shards ready/);
  assert.match(r.stderr, /printing MESSAGE_CREATE as JSON lines/);
  assert.ok(!r.stdout.includes(SECRET) && !r.stderr.includes(SECRET), 'the token is in neither stream');
});

test('run --workers 2 --handler: the handler module runs in the workers and what it posts is printed', async () => {
  const handler = fileURLToPath(new URL('./helpers/cli-handler.mjs', import.meta.url));
  const args = ['run', '--simulator', '--shards', '2', '--workers', '2', '--handler', handler, '--events', 'MESSAGE_CREATE', '--intents', 'Guilds,GuildMessages'];
  const r = await cli([...args, '--max-events', '4', '--time-scale', SCALE, '--traffic', '40'], { DISCORD_TOKEN: SECRET });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.ok(lines.length >= 4, r.stdout);
  for (const line of lines) {
    const m = JSON.parse(line) as { shardId: number; worker: number; value: { type: string; shardId: number; worker: number } };
    assert.equal(m.value.type, 'MESSAGE_CREATE');
    assert.equal(m.value.shardId, m.shardId);
    assert.equal(m.value.worker, m.shardId, 'shard n runs in worker n (round robin over 2)');
  }
  assert.match(r.stderr, /handler .*cli-handler\.mjs runs on MESSAGE_CREATE; printing what it posts/);
  const missing = await cli(['run', '--simulator', '--handler', '/nonexistent/handler.js', '--workers', '1', '--time-scale', SCALE], { DISCORD_TOKEN: SECRET });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /handler .*nonexistent\/handler\.js could not be loaded/);
});

test('run serves metrics and the status page while running, logs at debug without the token, and stops on SIGINT', async () => {
  const child = start(
    ['run', '--simulator', '--shards', '2', '--intents', 'Guilds,GuildMessages', '--time-scale', SCALE, '--traffic', '20', '--metrics-port', '0', '--status-port', '0', '--log-level', 'debug'],
    { DISCORD_TOKEN: SECRET },
  );
  try {
    const err = () => child.err.join('');
    const metricsUrl = (await waitFor(err, /metrics at (http:\/\/\S+\/metrics)/, 'metrics URL'))[1]!;
    const statusUrl = (await waitFor(err, /status page at (http:\/\/\S+\/)/, 'status URL'))[1]!;
    await waitFor(err, /2\/2 shards ready in/, 'shards ready');
    await waitFor(() => child.out.join(''), /"type":"MESSAGE_CREATE"/, 'traffic on stdout');
    // the CLI runs on a scaled real clock in its own process: a heartbeat ACK late on a loaded machine can make a
    // shard resume (a zombie), which is not what this test is about, so the scrape waits until both are ready again
    const bothReady = /^shardline_shards\{state="ready"\} 2$/m;
    let metrics = await (await fetch(metricsUrl)).text();
    for (let i = 0; i < 100 && !bothReady.test(metrics); i++) {
      await new Promise((r) => setTimeout(r, 50));
      metrics = await (await fetch(metricsUrl)).text();
    }
    assert.match(metrics, bothReady);
    assert.ok(Number(/^shardline_dispatches_total\{type="GUILD_CREATE"\} (\d+)$/m.exec(metrics)?.[1]) >= 10, 'GUILD_CREATE of every guild counted');
    assert.match(metrics, /^shardline_dispatches_total\{type="MESSAGE_CREATE"\} [1-9]\d*$/m);
    assert.match(metrics, /^shardline_process_cpu_seconds_total /m, 'process metrics too');
    // container probes on both ports
    for (const base of [metricsUrl.replace(/\/metrics$/, '/'), statusUrl]) {
      assert.equal((await fetch(`${base}healthz`)).status, 200);
      assert.equal((await fetch(`${base}readyz`)).status, 200, `${base}readyz: both shards ready`);
    }
    const status = await (await fetch(`${statusUrl}status.json`)).text();
    assert.equal((JSON.parse(status) as { shards: unknown[] }).shards.length, 2);
    assert.match(await (await fetch(statusUrl)).text(), /<title>shardline · shard status<\/title>/);
    assert.match(err(), /shardline debug /, 'debug lines routed to stderr');
    for (const text of [metrics, status, err(), child.out.join('')]) assert.ok(!text.includes(SECRET), 'no token anywhere');
    child.kill('SIGINT');
    const r = await child.done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /closing/);
    // every JSON line is complete
    for (const line of r.stdout.trim().split('\n')) JSON.parse(line);
  } finally {
    child.kill('SIGKILL');
  }
});

test('shardline simulator prints its URLs; a rejected token and disallowed intents are clear errors (exit 1)', async () => {
  const sim = start(['simulator', '--json', '--time-scale', SCALE, '--shards', '2', '--token', 'good-token-1', '--app-intents', 'GuildPresences', '--identify-window', '250']);
  try {
    const info = JSON.parse((await waitFor(() => sim.out.join(''), /^\{.*\}\n/, 'simulator URLs'))[0]) as { url: string; apiUrl: string; gatewayBot: string; rest: boolean; identifyWindow: number };
    assert.match(info.url, /^ws:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(info.identifyWindow, 250);
    assert.equal(info.rest, true);
    const bot = (await (await fetch(info.gatewayBot, { headers: { authorization: 'Bot good-token-1' } })).json()) as { shards: number; url: string };
    assert.equal(bot.shards, 2);
    assert.equal(bot.url, info.url);
    // REST is on by default: the bot user answers
    const me = await fetch(`${info.apiUrl}/users/%40me`, { headers: { authorization: 'Bot good-token-1' } });
    assert.equal(me.status, 200);
    assert.ok(me.headers.get('x-ratelimit-bucket'));

    // a token the gateway rejects: GET /gateway/bot answers 401
    const bad = await cli(['run', '--api-url', info.apiUrl, '--time-scale', SCALE], { DISCORD_TOKEN: SECRET });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /shardline: error: .*token was rejected; check DISCORD_TOKEN/);
    assert.ok(!bad.stderr.includes(SECRET) && !bad.stdout.includes(SECRET));
    noStack(bad.stderr);

    // privileged intents the application has not enabled: every shard closes with 4014
    const intents = await cli(['run', '--api-url', info.apiUrl, '--time-scale', SCALE, '--intents', 'Guilds,GuildMembers', '-q'], { DISCORD_TOKEN: 'good-token-1' });
    assert.equal(intents.code, 1);
    assert.match(intents.stderr, /4014 Disallowed intent\(s\).*enable it in the Developer Portal \(Bot → Privileged Gateway Intents\) or remove it from intents/);
    noStack(intents.stderr);
    assert.ok(!intents.stderr.includes('good-token-1'));
  } finally {
    sim.kill('SIGTERM');
    const r = await sim.done;
    assert.equal(r.code, 0);
  }
});

test('run against an external simulator with a real-looking flow: --gateway-url and --shards skip /gateway/bot', async () => {
  const sim = await GatewaySimulator.start({ tokens: [SECRET], timeScale: Number(SCALE), shards: 1, guilds: 2 });
  try {
    const r = await cli(['run', '--gateway-url', sim.url, '--shards', '1', '--time-scale', SCALE, '--events', 'GUILD_CREATE', '--max-events', '2', '--compression', 'zstd-stream'], {
      DISCORD_TOKEN: `Bot ${SECRET}`,
    });
    assert.equal(r.code, 0, r.stderr);
    const guilds = r.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { data: { id: string } }).data.id);
    assert.deepEqual(guilds.sort(), [...sim.guildIds].sort());
    assert.ok(!r.stderr.includes(SECRET));
  } finally {
    await sim.stop();
  }
});
