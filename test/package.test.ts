/**
 * The package as a user gets it: `npm pack` in a copy of the repository without dist/ (as a fresh clone is; prepack
 * builds), the tarball's file list, then the tarball installed into a temporary project (from npm's cache: the
 * dependencies are there after `npm ci`) where the ten-line bot runs against the simulator and type-checks with
 * `skipLibCheck: false` under moduleResolution node16, nodenext and bundler — once without the optional peers
 * and optional dependencies (`--omit=optional`: no prom-client, ioredis, nats; a user who never imports
 * `shardline/distributed` must build, metrics options and all), once with them — and with TypeScript's next
 * majors (6 and 7, fetched into a scratch project when npm's cache does not hold them). Installs run without
 * install scripts (no native build).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT } from '../scripts/test-deps.mjs';

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const pkgJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
};
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

let work: string;
let tarball: string;
let files: string[];

function run(cmd: string, args: string[], cwd: string, timeout = 120_000): SpawnSyncReturns<string> {
  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
  delete env.NODE_TEST_CONTEXT;
  for (const k of Object.keys(env)) if (k.startsWith('npm_package_') || k === 'npm_lifecycle_event' || k === 'npm_lifecycle_script') delete env[k];
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout });
  if (process.env.SHARDLINE_PACK_TIMING) appendFileSync(process.env.SHARDLINE_PACK_TIMING, `${((performance.now() - t0) / 1000).toFixed(1)}s ${cmd} ${args.slice(0, 3).join(' ')} (${cwd})\n`);
  return r;
}
function ok(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what} failed (${r.status ?? r.signal}):\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
  return r.stdout;
}
/** npm install in `dir`, from npm's cache first (the registry only for what the cache lacks). */
function npmInstall(dir: string, specs: string[], what: string, extra: string[] = []): void {
  ok(run(NPM, ['install', '--prefer-offline', '--no-save', '--ignore-scripts', '--no-package-lock', ...extra, ...specs], dir, 180_000), what);
}

before(() => {
  work = mkdtempSync(join(tmpdir(), 'shardline-pack-'));
  // A clean copy: what git tracks (plus new files not ignored), no dist/, the dev tools linked in for prepack.
  const repo = join(work, 'repo');
  const listed = ok(run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], ROOT), 'git ls-files')
    .split('\0')
    .filter(Boolean);
  for (const f of listed) {
    if (f === 'node_modules' || !existsSync(join(ROOT, f))) continue;
    mkdirSync(dirname(join(repo, f)), { recursive: true });
    cpSync(join(ROOT, f), join(repo, f));
  }
  assert.equal(existsSync(join(repo, 'dist')), false);
  symlinkSync(join(ROOT, 'node_modules'), join(repo, 'node_modules'), 'dir');
  const out = ok(run(NPM, ['pack', '--json', '--pack-destination', work], repo, 180_000), 'npm pack');
  const info = JSON.parse(out.slice(out.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  tarball = join(work, info[0]!.filename);
  files = info[0]!.files.map((f) => f.path).sort();
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test('npm pack from a clean copy builds and ships dist/ with types, the CLI, README, LICENSE and docs/, and nothing else', () => {
  for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/simulator/index.js', 'dist/simulator/index.d.ts', 'dist/distributed/index.js', 'dist/distributed/index.d.ts', 'dist/cli/shardline.js']) {
    assert.ok(files.includes(f), `${f} is in the tarball`);
  }
  for (const f of ['README.md', 'LICENSE', 'package.json', 'docs/OPERATING.md', 'docs/ARCHITECTURE.md']) assert.ok(files.includes(f), `${f} is in the tarball`);
  const stray = files.filter((f) => !/^(dist\/.*\.(js|d\.ts)|docs\/.*\.md|README\.md|LICENSE|package\.json)$/.test(f));
  assert.deepEqual(stray, [], 'only code, types and docs');
  assert.match(readFileSync(join(ROOT, 'LICENSE'), 'utf8'), /^MIT License/);
});

const BOT = `import { Shard, Intents } from 'shardline';
import { GatewaySimulator } from 'shardline/simulator';

const sim = await GatewaySimulator.start({ tokens: ['test-token'], guilds: 2 });
const shard = new Shard({
  token: 'test-token',
  intents: Intents.Guilds | Intents.GuildMessages | Intents.MessageContent,
  events: ['MESSAGE_CREATE'],
  gatewayUrl: sim.url,
});
const got = new Promise<string>((resolve) => {
  shard.on('dispatch', (e) => {
    if (e.type === 'MESSAGE_CREATE') resolve(\`\${e.data.author.username}: \${e.data.content}\`);
  });
});
await shard.connect();
sim.dispatch(0, 'MESSAGE_CREATE', { guild_id: sim.guildIds[0], author: { id: '1', username: 'ada' }, content: 'hello from the simulator' });
console.log(await got);
await shard.close();
await sim.stop();
`;

const DISTRIBUTED = `import { Cluster } from 'shardline';
import { RedisSessionStore, RedisIdentifyQueue, NatsBroker } from 'shardline/distributed';

export function wire(cluster: Cluster): [typeof RedisSessionStore, typeof RedisIdentifyQueue, typeof NatsBroker] {
  void cluster;
  return [RedisSessionStore, RedisIdentifyQueue, NatsBroker];
}
`;

/**
 * The main entry's metrics API, type-checked where prom-client is not installed: its declarations must not name a
 * prom-client type (TS2307 with skipLibCheck off), and the other entries a user can import without the optional
 * peers likewise.
 */
const METRICS = `import { attachMetrics, Cluster, type ClusterMetrics, type MetricsOptions, type MetricsRegistry } from 'shardline';
import { ShardlineStrategy } from 'shardline/discordjs';
import { attachProxyMetrics, GatewayProxy, type GatewayProxyOptions } from 'shardline/proxy';

const options: MetricsOptions = { prefix: 'mybot_', readyz: 'guilds', latencyBuckets: [0.05, 0.1, 0.5] };
export async function serve(cluster: Cluster, registry?: MetricsRegistry): Promise<ClusterMetrics> {
  const metrics = await attachMetrics(cluster, registry ? { ...options, registry } : options);
  await metrics.listen({ port: 9464 });
  return metrics;
}
export const strategy: typeof ShardlineStrategy = ShardlineStrategy;
export async function proxy(o: GatewayProxyOptions, registry: MetricsRegistry): Promise<() => void> {
  const p = await GatewayProxy.start(o);
  return attachProxyMetrics(p, registry);
}
`;

const RESOLUTIONS = [
  { module: 'node16', moduleResolution: 'node16' },
  { module: 'nodenext', moduleResolution: 'nodenext' },
  { module: 'esnext', moduleResolution: 'bundler' },
];

/**
 * A project with the tarball installed; `peers` adds the optional peer dependencies, without them optional
 * dependencies are left out too (`--omit=optional`: no prom-client).
 */
function project(name: string, peers: boolean): string {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  const specs = [tarball, `@types/node@${pkgJson.devDependencies['@types/node']}`];
  if (peers) for (const [p, range] of Object.entries(pkgJson.peerDependencies)) specs.push(`${p}@${pkgJson.devDependencies[p] ?? range}`);
  npmInstall(dir, specs, `npm install into ${name}`, peers ? [] : ['--omit=optional']);
  writeFileSync(join(dir, 'bot.ts'), BOT);
  writeFileSync(join(dir, 'metrics.ts'), METRICS);
  if (peers) {
    writeFileSync(join(dir, 'distributed.ts'), DISTRIBUTED);
    // ioredis' own declarations import the untyped 'redis-errors' (TS7016 with skipLibCheck off, shardline or not):
    // the one-line shim its users need
    writeFileSync(join(dir, 'redis-errors.d.ts'), "declare module 'redis-errors';\n");
  }
  for (const r of RESOLUTIONS) {
    // nodenext also emits: that is the bot we run
    const emit = r.moduleResolution === 'nodenext' ? { outDir: 'out' } : { noEmit: true };
    const compilerOptions = { ...r, ...emit, target: 'es2022', strict: true, skipLibCheck: false, types: ['node'] };
    writeFileSync(join(dir, `tsconfig.${r.moduleResolution}.json`), JSON.stringify({ compilerOptions, include: ['*.ts'] }, null, 2));
  }
  return dir;
}

/** Run commands two at a time (the machine has two cores); fail with every failure's output. */
async function parallel(jobs: { what: string; cmd: string; args: string[]; cwd: string }[]): Promise<void> {
  const failures: string[] = [];
  const queue = [...jobs];
  const worker = async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const { what, cmd, args, cwd } = job;
      const r = await runAsync(cmd, args, cwd);
      if (r.code !== 0) failures.push(`${what} failed (${r.code}):\n${r.out.slice(-3000)}`);
    }
  };
  await Promise.all([worker(), worker()]);
  assert.deepEqual(failures, []);
}

function runAsync(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; out: string }> {
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (process.env.SHARDLINE_PACK_TIMING) appendFileSync(process.env.SHARDLINE_PACK_TIMING, `${((performance.now() - t0) / 1000).toFixed(1)}s ${args.join(' ')} (${cwd})\n`);
      resolve({ code, out });
    });
  });
}

const tscJob = (dir: string, resolution: string, tsc = TSC, label = '5') => ({
  what: `tsc ${label} (${resolution}) in ${dir}`,
  cmd: process.execPath,
  args: [tsc, '-p', `tsconfig.${resolution}.json`],
  cwd: dir,
});

/** Run the bot as the nodenext type-check emitted it, with plain node. */
function runBot(dir: string): void {
  const out = ok(run(process.execPath, ['out/bot.js'], dir, 30_000), 'run the bot');
  assert.match(out, /^ada: hello from the simulator\n$/);
}

test('without the optional peers and prom-client: the ten-line bot runs against the simulator, and it and the metrics API type-check (skipLibCheck off) under node16, nodenext and bundler', async () => {
  const dir = project('no-peers', false);
  for (const p of [...Object.keys(pkgJson.peerDependencies), 'prom-client']) assert.equal(existsSync(join(dir, 'node_modules', p)), false, `${p} is not installed`);
  assert.equal(existsSync(join(dir, 'node_modules', 'shardline', 'src')), false);
  await parallel(RESOLUTIONS.map((r) => tscJob(dir, r.moduleResolution)));
  runBot(dir);
});

test('with the optional peers: the bot and an import of shardline/distributed type-check (nodenext; the other resolutions with TypeScript 7 below), run and load', async () => {
  const dir = project('peers', true);
  await parallel([tscJob(dir, 'nodenext')]);
  runBot(dir);
  const loaded = ok(
    run(process.execPath, ['--input-type=module', '-e', "const d = await import('shardline/distributed'); console.log(typeof d.NatsBroker, typeof d.RedisSessionStore)"], dir),
    'import shardline/distributed',
  );
  assert.equal(loaded.trim(), 'function function');
});

test("with TypeScript's next majors: 6 (nodenext) and 7 (node16, nodenext, bundler) type-check the bot and shardline/distributed", async () => {
  const dir = join(work, 'ts-next');
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'ts-next', private: true }));
  // typescript@7's compiler is a native binary in a per-platform optional dependency: keep optionals here
  ok(run(NPM, ['install', '--prefer-offline', '--no-save', '--no-package-lock', 'ts6@npm:typescript@^6.0.3', 'ts7@npm:typescript@^7.0.2'], dir, 180_000), 'npm install typescript 6 and 7');
  const peers = join(work, 'peers');
  assert.ok(existsSync(join(peers, 'node_modules', 'shardline')), 'the project of the previous test');
  const ts6 = join(dir, 'node_modules', 'ts6', 'bin', 'tsc');
  const ts7 = join(dir, 'node_modules', 'ts7', 'bin', 'tsc');
  assert.match(ok(run(process.execPath, [ts6, '--version'], dir), 'tsc 6 --version'), /Version 6\./);
  assert.match(ok(run(process.execPath, [ts7, '--version'], dir), 'tsc 7 --version'), /Version 7\./);
  await parallel([tscJob(peers, 'nodenext', ts6, '6'), ...RESOLUTIONS.map((r) => tscJob(peers, r.moduleResolution, ts7, '7'))]);
});
