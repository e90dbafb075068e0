/**
 * scripts/test-deps.mjs: how `npm test` finds or gets chromium, redis-server and nats-server on a fresh machine, and
 * the one line it prints when it cannot; plus scripts/test.mjs failing just that stage and running the others.
 * The machine is simulated (env, exists, platform, root are injected), so this runs anywhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureTools, extractTar, installPlan, locate, ROOT, world, type World } from '../scripts/test-deps.mjs';

/** A machine with only these files, Linux x64, not root, no npm chromium unless `pkg`. */
function machine(files: string[], over: Partial<World> = {}): World {
  const set = new Set(files);
  return world({
    env: { PATH: '/usr/local/bin:/usr/bin:/bin' },
    platform: 'linux',
    arch: 'x64',
    isRoot: false,
    hasApt: true,
    fresh: false,
    exists: (p) => set.has(p),
    chromiumPackage: () => null,
    ...over,
  });
}

test('a fresh machine (only node): nothing is found, and the one line names the apt-get command', () => {
  const w = machine([]);
  assert.equal(locate('chromium', w), null);
  assert.equal(locate('redis-server', w), null);
  assert.equal(locate('nats-server', w), null);
  const plan = installPlan(['chromium', 'redis-server', 'nats-server'], w);
  assert.equal(plan.apt, undefined);
  assert.equal(
    plan.line,
    'chromium, redis-server, nats-server not found: install with `sudo apt-get install chromium redis-server nats-server`, run `npm install` for @sparticuz/chromium (or point $SHARDLINE_CHROMIUM / $REDIS_SERVER_BIN / $NATS_SERVER_BIN at the binary)',
  );
  assert.ok(!plan.line!.includes('\n'));
  assert.match(installPlan(['nats-server'], machine([], { platform: 'darwin' })).line!, /`brew install nats-server`/);
});

test('system binaries are found on PATH or in sbin; an override variable wins and must exist', () => {
  const w = machine(['/usr/bin/chromium', '/usr/sbin/nats-server', '/usr/bin/redis-server', '/opt/redis/bin/redis-server']);
  assert.deepEqual(locate('chromium', w), { kind: 'system', path: '/usr/bin/chromium' });
  assert.deepEqual(locate('nats-server', w), { kind: 'system', path: '/usr/sbin/nats-server' });
  assert.deepEqual(locate('redis-server', { ...w, env: { ...w.env, REDIS_SERVER_BIN: '/opt/redis/bin/redis-server' } }), { kind: 'system', path: '/opt/redis/bin/redis-server' });
  assert.equal(locate('redis-server', { ...w, env: { ...w.env, REDIS_SERVER_BIN: '/nowhere/redis-server' } }), null);
  // SHARDLINE_TEST_FRESH=1 pretends the system has none of them
  assert.equal(locate('chromium', { ...w, fresh: true }), null);
});

test('without a system browser, the chromium of the npm package is used (linux x64 only)', () => {
  const pkg = '/p/node_modules/@sparticuz/chromium';
  const w = machine([`${pkg}/bin/chromium.br`], { chromiumPackage: () => pkg });
  assert.deepEqual(locate('chromium', w), { kind: 'npm', dir: pkg });
  assert.equal(locate('chromium', { ...w, arch: 'arm64' }), null, 'the package ships an x64 build only');
  assert.deepEqual(locate('chromium', { ...w, fresh: true }), { kind: 'npm', dir: pkg }, 'the npm package is part of a fresh install');
  // a system browser still wins
  const both = machine(['/usr/bin/chromium', `${pkg}/bin/chromium.br`], { chromiumPackage: () => pkg });
  assert.deepEqual(locate('chromium', both), { kind: 'system', path: '/usr/bin/chromium' });
});

test('as root with apt-get, what is missing is installed; not as root, or forbidden, it is one line', async () => {
  const files = new Set<string>();
  const calls: string[][] = [];
  const install = (pkgs: string[]) => {
    calls.push(pkgs);
    for (const p of pkgs) files.add(`/usr/bin/${p}`);
    return null;
  };
  const root = machine([], { isRoot: true, exists: (p) => files.has(p) });
  const ok = await ensureTools(['redis-server', 'nats-server'], root, install);
  assert.deepEqual(calls, [['redis-server', 'nats-server']]);
  assert.deepEqual(ok, { ok: true, notes: ['installed redis-server nats-server with apt-get'] });
  // now present: nothing more to install
  assert.deepEqual(await ensureTools(['redis-server'], root, install), { ok: true, notes: [] });
  assert.equal(calls.length, 1);

  const never = () => assert.fail('must not install');
  const user = await ensureTools(['nats-server'], machine([]), never);
  assert.deepEqual(user, { ok: false, line: 'nats-server not found: install with `sudo apt-get install nats-server` (or point $NATS_SERVER_BIN at the binary)' });
  const forbidden = machine([], { isRoot: true, env: { PATH: '/usr/bin', SHARDLINE_TEST_INSTALL: '0' } });
  assert.equal((await ensureTools(['nats-server'], forbidden, never)).ok, false);

  // apt-get fails: the one line says what failed
  const failed = await ensureTools(['nats-server'], machine([], { isRoot: true }), () => 'apt-get install nats-server failed: E: Unable to locate package nats-server');
  assert.deepEqual(failed, { ok: false, line: 'apt-get install nats-server failed: E: Unable to locate package nats-server' });
});

test('extractTar unpacks files with their modes and directories, and refuses paths outside the target', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'shardline-tar-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, 'src');
  mkdirSync(join(src, 'lib', 'deep'), { recursive: true });
  writeFileSync(join(src, 'lib', 'libx.so'), 'elf');
  writeFileSync(join(src, 'lib', 'deep', 'run'), '#!/bin/sh\n', { mode: 0o755 });
  const r = spawnSync('tar', ['--format=ustar', '-cf', join(dir, 'a.tar'), '-C', src, 'lib'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = join(dir, 'out');
  extractTar(readFileSync(join(dir, 'a.tar')), out);
  assert.equal(readFileSync(join(out, 'lib', 'libx.so'), 'utf8'), 'elf');
  assert.equal(statSync(join(out, 'lib', 'deep', 'run')).mode & 0o777, 0o755);

  const evil = Buffer.alloc(1024);
  evil.write('../escape', 0);
  evil.write('0000644\0', 100);
  evil.write('00000000000\0', 124);
  evil.write('0', 156);
  assert.throws(() => extractTar(evil, out), /outside the target/);
  assert.equal(existsSync(join(dir, 'escape')), false);
});

test('npm test: a stage whose tools are missing fails at once with one line, and the other stages still run', () => {
  const r = spawnSync(process.execPath, ['scripts/test.mjs', '--only', 'unit,distributed', 'test/backoff.test.ts', 'test/distributed-redis.test.ts'], {
    cwd: ROOT,
    env: { ...process.env, SHARDLINE_TEST_FRESH: '1' },
    encoding: 'utf8',
    timeout: 90_000,
  });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  const line = 'redis-server, nats-server not found: install with `apt-get install redis-server nats-server` (or point $REDIS_SERVER_BIN / $NATS_SERVER_BIN at the binary)';
  const userLine = line.replace('`apt-get', '`sudo apt-get');
  const said = r.stdout.includes(line) ? line : userLine;
  assert.ok(r.stdout.includes(`=== distributed: ${said}`), r.stdout);
  assert.match(r.stdout, /^unit +ok /m);
  assert.match(r.stdout, /^distributed +FAILED +\d+\.\ds +0 passed, 1 failed/m);
  assert.match(r.stdout, /^\d+ passed, 1 failed, \d+ skipped$/m);
  assert.doesNotMatch(r.stdout, /redis-server.*exited|ECONNREFUSED/, 'the stage stopped before any test ran');
});
