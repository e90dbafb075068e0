#!/usr/bin/env node
// `npm test`: every check CI runs, in stages. Each stage runs and is reported even when an earlier one failed; the
// stages that need dist/ are skipped (and listed with the reason) when the build failed. A stage that needs a tool
// from outside node_modules (chromium, redis-server, nats-server) gets it through scripts/test-deps.mjs, or fails at
// once with one line naming the command that installs it. Ends with a table and, on
// the last line, `N passed, N failed[, N skipped]` (tests of the test stages; a failed build, typecheck, lint or api
// stage counts as 1 failed, a skipped stage as 1 skipped). Exits non-zero when any stage failed.
//
//   node scripts/test.mjs                          all stages
//   node scripts/test.mjs --only unit,serial       just these stages (the others are listed as skipped)
//   node scripts/test.mjs --skip lint              all but these (also SHARDLINE_TEST_SKIP=lint,api)
//   node scripts/test.mjs test/queue.test.ts       only these test files, each in the stage that runs it
//   node scripts/test.mjs --test-name-pattern=...  any --test-* flag goes to node's test runner
//
// Plain Node, no dependencies.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureTools } from './test-deps.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REPORTER = join(ROOT, 'scripts', 'count-reporter.mjs');
const TEST_TIMEOUT = '--test-timeout=120000';

/** `dir/*.test.ts`, relative to the root, sorted. */
function testFiles(dir) {
  return readdirSync(join(ROOT, dir))
    .filter((f) => f.endsWith('.test.ts'))
    .sort()
    .map((f) => `${dir}/${f}`);
}

/** Test files that need something outside node_modules run in stages of their own (see `requires`). */
const BROWSER = ['test/status-page.test.ts'];
const DISTRIBUTED = ['test/distributed-redis.test.ts', 'test/distributed-nats.test.ts', 'test/discordjs-redis.test.ts', 'test/proxy-redis.test.ts'];
const PACKAGE = ['test/package.test.ts'];
const OWN_STAGE = new Set([...BROWSER, ...DISTRIBUTED, ...PACKAGE]);

/**
 * name; `cmd`: an npm script (a check), or `files` (+ node flags, env): node's test runner. `needsDist`: skipped when
 * dist/ is not there (build failed). `distFiles`: test files of the stage that need dist/; only they are skipped then.
 * `timeout`: ms, instead of TEST_TIMEOUT. `requires`: tools outside node_modules (scripts/test-deps.mjs gets them, or the stage fails at once with one line
 * that says how to install them).
 */
const STAGES = [
  { name: 'build', cmd: ['npm', 'run', 'build'] },
  // examples/ import the package by name, which resolves to dist/*.d.ts
  { name: 'typecheck', cmd: ['npm', 'run', 'typecheck'], needsDist: true },
  { name: 'lint', cmd: ['npm', 'run', 'lint'] },
  { name: 'api', cmd: ['npm', 'run', 'api:check'], needsDist: true },
  {
    name: 'unit',
    files: () => testFiles('test').filter((f) => !OWN_STAGE.has(f)),
    flags: ['--test-concurrency=2'],
    distFiles: ['test/cli.test.ts', 'test/discordjs-example.test.ts', 'test/compat.test.ts'],
  },
  { name: 'browser', files: () => BROWSER, requires: ['chromium'] },
  { name: 'distributed', files: () => DISTRIBUTED, flags: ['--test-concurrency=2'], requires: ['redis-server', 'nats-server'] },
  { name: 'inflate-fallback', files: () => ['test/inflate.test.ts'], env: { SHARDLINE_INFLATE_FALLBACK: '1' } },
  // npm pack, install the tarball into temporary projects (npm's cache first), run and type-check it: about a minute
  // of two cores, so its time-out is for a machine that is busy with something else as well
  { name: 'package', files: () => PACKAGE, timeout: 600_000 },
  { name: 'serial', files: () => testFiles('test/serial'), flags: ['--test-concurrency=1'] },
];
const NAMES = STAGES.map((s) => s.name);

function usage(message) {
  if (message) console.error(`test.mjs: ${message}`);
  console.error(`usage: node scripts/test.mjs [--only STAGES] [--skip STAGES] [--test-*=...] [test files...]\nstages: ${NAMES.join(', ')}`);
  process.exit(2);
}

function stageList(value, flag) {
  const list = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of list) if (!NAMES.includes(n)) usage(`${flag}: unknown stage '${n}'`);
  return list;
}

// ------------------------------------------------------------------ arguments

let only = null;
const skip = new Map(); // stage -> reason
const testFlags = [];
const fileArgs = [];
if (process.env.SHARDLINE_TEST_SKIP) for (const n of stageList(process.env.SHARDLINE_TEST_SKIP, 'SHARDLINE_TEST_SKIP')) skip.set(n, 'SHARDLINE_TEST_SKIP');
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const value = () => (a.includes('=') ? a.slice(a.indexOf('=') + 1) : (argv[++i] ?? usage(`${a} needs a value`)));
  if (a === '--help' || a === '-h') usage();
  else if (a === '--only' || a.startsWith('--only=')) only = stageList(value(), '--only');
  else if (a === '--skip' || a.startsWith('--skip=')) for (const n of stageList(value(), '--skip')) skip.set(n, '--skip');
  else if (a.startsWith('--test-')) testFlags.push(a);
  else if (a.startsWith('-')) usage(`unknown flag ${a}`);
  else fileArgs.push(relative(ROOT, resolve(a)).split('\\').join('/'));
}
for (const f of fileArgs) if (!existsSync(join(ROOT, f))) usage(`no such test file: ${f}`);

// Test files given on the command line run in every stage that runs them (the inflate suite in both unit and
// inflate-fallback); a file no stage lists (a new one) in unit.
const given = fileArgs.length > 0 ? new Map(STAGES.filter((s) => s.files).map((s) => [s.name, []])) : null;
if (given) {
  for (const f of fileArgs) {
    const stages = STAGES.filter((s) => s.files?.().includes(f));
    for (const s of stages.length > 0 ? stages : [STAGES.find((s) => s.name === 'unit')]) given.get(s.name).push(f);
  }
}

// ------------------------------------------------------------------ running

let current = null;
let interrupted = null;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    interrupted = signal;
    current?.kill(signal);
  });
}

function run(command, args, env) {
  return new Promise((done) => {
    const childEnv = { ...process.env, ...env };
    delete childEnv.NODE_TEST_CONTEXT; // when run from a test: our runners report to us, not to that test
    const child = spawn(command, args, { cwd: ROOT, stdio: 'inherit', env: childEnv });
    current = child;
    child.on('error', (err) => {
      console.error(`test.mjs: cannot start ${command}: ${err.message}`);
      current = null;
      done({ code: 127, signal: null });
    });
    child.on('exit', (code, signal) => {
      current = null;
      done({ code, signal });
    });
  });
}

function readCounts(file) {
  let parsed = null;
  try {
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    parsed = JSON.parse(lines[lines.length - 1]);
  } catch {
    return null; // the runner died before its reporter finished
  }
  const s = 'pass' in parsed.summary ? parsed.summary : parsed.events;
  return { pass: s.pass ?? 0, fail: (s.fail ?? 0) + (s.cancelled ?? 0), skipped: (s.skipped ?? 0) + (s.todo ?? 0) };
}

const tmp = mkdtempSync(join(tmpdir(), 'shardline-test-'));
const results = [];
let distMissing = existsSync(join(ROOT, 'dist', 'index.js')) ? null : 'dist/ is missing (build not run)';

for (const stage of STAGES) {
  const result = { name: stage.name, status: 'skipped', reason: '', ms: 0, counts: null, notes: [] };
  results.push(result);
  let files = stage.files ? (given ? given.get(stage.name) : stage.files()) : null;
  if (interrupted) result.reason = `interrupted (${interrupted})`;
  else if (only && !only.includes(stage.name)) result.reason = 'not selected (--only)';
  else if (skip.has(stage.name)) result.reason = `skipped by ${skip.get(stage.name)}`;
  else if (stage.needsDist && distMissing) result.reason = `needs dist/: ${distMissing}`;
  else if (files && files.length === 0) result.reason = given ? 'none of the given test files' : 'no test files';
  if (result.reason) {
    if (stage.name === 'build' && !distMissing && result.reason.startsWith('not selected')) result.reason += '; uses the existing dist/';
    continue;
  }

  const withheld = distMissing && stage.distFiles ? files.filter((f) => stage.distFiles.includes(f)) : [];
  if (withheld.length > 0) {
    files = files.filter((f) => !withheld.includes(f));
    result.notes.push(`${withheld.join(', ')} skipped: needs dist/, ${distMissing}`);
  }

  const started = performance.now();
  if (stage.requires) {
    const tools = await ensureTools(stage.requires);
    if (!tools.ok) {
      // stop this stage at once, with the one line that says what to install; the other stages still run
      console.log(`\n=== ${stage.name}: ${tools.line}`);
      Object.assign(result, { status: 'FAILED', ms: performance.now() - started, counts: { pass: 0, fail: 1, skipped: 0 } });
      result.notes.push(tools.line);
      continue;
    }
    result.notes.push(...tools.notes);
  }
  let outcome;
  if (stage.cmd) {
    console.log(`\n=== ${stage.name}: ${stage.cmd.join(' ')}\n`);
    outcome = await run(stage.cmd[0], stage.cmd.slice(1), {});
  } else {
    const countsFile = join(tmp, `${stage.name}.json`);
    const timeout = stage.timeout ? `--test-timeout=${stage.timeout}` : TEST_TIMEOUT;
    const args = ['--import', 'tsx', '--test', ...(stage.flags ?? []), timeout, '--test-reporter=spec', '--test-reporter-destination=stdout'];
    args.push(`--test-reporter=${REPORTER}`, `--test-reporter-destination=${countsFile}`, ...testFlags, ...files);
    const envText = Object.entries(stage.env ?? {}).map(([k, v]) => `${k}=${v} `);
    console.log(`\n=== ${stage.name}: ${envText.join('')}node --import tsx --test ${[...(stage.flags ?? []), timeout, ...testFlags].join(' ')} ${files.join(' ')}\n`);
    outcome = await run(process.execPath, args, stage.env ?? {});
    result.counts = readCounts(countsFile) ?? { pass: 0, fail: 0, skipped: 0 };
    result.counts.skipped += withheld.length;
    if (outcome.code !== 0 && result.counts.fail === 0) {
      result.counts.fail = 1; // the runner failed outside any test (crashed, killed, bad flag)
      result.notes.push('the test runner failed outside the tests');
    } else if (outcome.code === 0 && result.counts.pass + result.counts.fail === 0) {
      outcome.code = 1;
      result.counts.fail = 1;
      result.notes.push('no test ran');
    }
  }
  result.ms = performance.now() - started;
  result.status = outcome.code === 0 ? 'ok' : 'FAILED';
  if (outcome.signal) result.notes.push(`killed by ${outcome.signal}`);
  else if (outcome.code !== 0) result.notes.push(`exit code ${outcome.code}`);
  if (stage.name === 'build') {
    // A fresh clone has no dist/ before the build: what counts is whether this build produced one.
    if (result.status !== 'ok') distMissing = 'the build failed';
    else distMissing = existsSync(join(ROOT, 'dist', 'index.js')) ? null : 'the build produced no dist/index.js';
  }
}
rmSync(tmp, { recursive: true, force: true });

// ------------------------------------------------------------------ summary

let passed = 0;
let failed = 0;
let skipped = 0;
const rows = [['stage', 'result', 'duration', 'tests', 'notes']];
for (const r of results) {
  if (r.status === 'skipped') skipped++;
  else if (r.counts) {
    passed += r.counts.pass;
    failed += r.counts.fail;
    skipped += r.counts.skipped;
  } else if (r.status === 'FAILED') failed++;
  const tests = r.counts ? `${r.counts.pass} passed, ${r.counts.fail} failed${r.counts.skipped ? `, ${r.counts.skipped} skipped` : ''}` : '';
  const notes = r.status === 'skipped' ? r.reason : r.notes.join('; ');
  rows.push([r.name, r.status, r.status === 'skipped' ? '-' : `${(r.ms / 1000).toFixed(1)}s`, tests, notes]);
}
const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
console.log('');
for (const [i, row] of rows.entries()) {
  const cells = row.map((cell, c) => (c === 2 ? cell.padStart(widths[c]) : cell.padEnd(widths[c])));
  console.log(cells.join('  ').trimEnd());
  if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
}
const anyFailed = results.some((r) => r.status === 'FAILED') || interrupted !== null;
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exitCode = anyFailed ? 1 : 0;
