// What the test stages need outside node_modules, and how `npm test` gets it on a fresh machine:
//   chromium       (the status page test): $SHARDLINE_CHROMIUM, a system chromium/chrome, else the browser that the
//                  devDependency @sparticuz/chromium ships inside its npm tarball (linux x64), unpacked once into
//                  node_modules/.cache/shardline/ with its own NSS libraries and fonts (no system library needed);
//   redis-server, nats-server (the distributed tests): $REDIS_SERVER_BIN / $NATS_SERVER_BIN, PATH, the usual
//                  sbin/bin directories. Neither is published on the npm registry as a binary.
// What is still missing is installed with apt-get when we are root on a Debian-like system (a container, CI; set
// SHARDLINE_TEST_INSTALL=0 to forbid it); otherwise the stage fails at once with one line naming the command.
// SHARDLINE_TEST_FRESH=1 pretends that no system binary exists and nothing may be installed (to try the fresh path).
//
// Plain Node, no dependencies. Every decision takes its world (env, exists, platform, root) as arguments, so
// test/test-deps.test.ts checks it without a fresh machine.
import { spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync, createBrotliDecompress } from 'node:zlib';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The tools, their override variable, the names to look for, and the Debian / Homebrew package. */
export const TOOLS = {
  chromium: { env: 'SHARDLINE_CHROMIUM', names: ['chromium', 'chromium-browser', 'google-chrome-stable', 'google-chrome'], apt: 'chromium', brew: '--cask chromium' },
  'redis-server': { env: 'REDIS_SERVER_BIN', names: ['redis-server'], apt: 'redis-server', brew: 'redis' },
  'nats-server': { env: 'NATS_SERVER_BIN', names: ['nats-server'], apt: 'nats-server', brew: 'nats-server' },
};

const SYSTEM_DIRS = ['/usr/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/sbin', '/opt/homebrew/bin'];
const MAC_APPS = ['/Applications/Chromium.app/Contents/MacOS/Chromium', '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome'];
/** The npm package that ships a whole chromium (brotli) in its tarball, and the platforms it ships it for. */
export const CHROMIUM_PACKAGE = '@sparticuz/chromium';

/** The world a decision looks at; tests pass their own. */
export function world(overrides = {}) {
  const env = overrides.env ?? process.env;
  const fresh = env.SHARDLINE_TEST_FRESH === '1';
  return {
    env,
    platform: process.platform,
    arch: process.arch,
    isRoot: typeof process.getuid === 'function' && process.getuid() === 0,
    exists: existsSync,
    /** The directory of the chromium npm package, or null. */
    chromiumPackage: () => findPackageDir(CHROMIUM_PACKAGE),
    hasApt: existsSync('/usr/bin/apt-get'),
    fresh,
    ...overrides,
  };
}

/**
 * Where `tool` is, without installing anything: `{ kind: 'system', path }`, `{ kind: 'npm', dir }` (chromium from
 * the npm package, still to be unpacked) or null.
 */
export function locate(tool, w = world()) {
  const spec = TOOLS[tool];
  if (!spec) throw new Error(`unknown tool ${tool}`);
  const override = w.env[spec.env];
  if (override) return w.exists(override) ? { kind: 'system', path: override } : null;
  if (!w.fresh) {
    const dirs = [...(w.env.PATH ?? '').split(delimiter).filter(Boolean), ...SYSTEM_DIRS];
    for (const name of spec.names) for (const d of dirs) if (w.exists(join(d, name))) return { kind: 'system', path: join(d, name) };
    if (tool === 'chromium' && w.platform === 'darwin') for (const p of MAC_APPS) if (w.exists(p)) return { kind: 'system', path: p };
  }
  if (tool === 'chromium' && w.platform === 'linux' && w.arch === 'x64') {
    const dir = w.chromiumPackage();
    if (dir && w.exists(join(dir, 'bin', 'chromium.br'))) return { kind: 'npm', dir };
  }
  return null;
}

/**
 * What to do about the tools that are missing: `{ apt: [...] }` (we may install them: root, apt-get, allowed) or
 * `{ line }`, the one line that tells the user which command installs what.
 */
export function installPlan(missing, w = world()) {
  if (missing.length === 0) return { apt: [] };
  const apt = missing.map((t) => TOOLS[t].apt);
  const allowed = !w.fresh && w.env.SHARDLINE_TEST_INSTALL !== '0';
  if (w.platform === 'linux' && w.hasApt && w.isRoot && allowed) return { apt };
  const vars = missing.map((t) => `$${TOOLS[t].env}`).join(' / ');
  let command;
  if (w.platform === 'darwin') command = `brew install ${missing.map((t) => TOOLS[t].brew).join(' ')}`;
  else command = `${w.isRoot ? '' : 'sudo '}apt-get install ${apt.join(' ')}`;
  // on linux x64 the browser also comes with `npm install` (the dev dependency), when it was skipped or failed
  const npm = missing.includes('chromium') && w.platform === 'linux' && w.arch === 'x64' ? `, run \`npm install\` for ${CHROMIUM_PACKAGE}` : '';
  return { line: `${missing.join(', ')} not found: install with \`${command}\`${npm} (or point ${vars} at the binary)` };
}

/** Run apt-get install (after an `apt-get update` if the first try fails). Returns an error text or null. */
export function aptInstall(packages, run = spawnSync) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { env, encoding: 'utf8' });
  let r = install();
  if (r.status !== 0) {
    run('apt-get', ['update', '-qq'], { env, encoding: 'utf8' });
    r = install();
  }
  return r.status === 0
    ? null
    : `apt-get install ${packages.join(' ')} failed: ${
        String(r.stderr ?? r.error ?? '')
          .trim()
          .split('\n')
          .slice(-1)[0]
      }`;
}

/**
 * Make sure `tools` are there: unpack the npm chromium, apt-get what is missing when allowed.
 * Resolves `{ ok: true, notes }` or `{ ok: false, line }` (one line: what is missing and the command to install it).
 */
export async function ensureTools(tools, w = world(), install = aptInstall) {
  const notes = [];
  const missing = [];
  for (const t of tools) {
    const found = locate(t, w);
    if (!found) missing.push(t);
    else if (found.kind === 'npm') {
      const browser = await unpackChromium(found.dir);
      notes.push(`chromium from ${CHROMIUM_PACKAGE} (${browser.executablePath})`);
    }
  }
  if (missing.length === 0) return { ok: true, notes };
  const plan = installPlan(missing, w);
  if (plan.line) return { ok: false, line: plan.line };
  console.log(`test.mjs: ${missing.join(', ')} not found; installing with apt-get install ${plan.apt.join(' ')} (root; SHARDLINE_TEST_INSTALL=0 forbids this)`);
  const error = install(plan.apt);
  const still = missing.filter((t) => !locate(t, w));
  if (error || still.length > 0) return { ok: false, line: error ?? installPlan(still, { ...w, isRoot: false }).line };
  notes.push(`installed ${plan.apt.join(' ')} with apt-get`);
  return { ok: true, notes };
}

/**
 * How to launch chromium for playwright: `{ executablePath, env }` (env: what the browser process needs on top of
 * process.env, e.g. the npm build's own libraries), or `{ missing: line }`.
 */
export async function chromiumLaunch(w = world()) {
  const found = locate('chromium', w);
  if (!found) return { missing: installPlan(['chromium'], { ...w, isRoot: false }).line };
  if (found.kind === 'system') return { executablePath: found.path, env: {} };
  return unpackChromium(found.dir);
}

// ------------------------------------------------------------------ the npm chromium

function findPackageDir(name) {
  let entry;
  try {
    entry = createRequire(join(ROOT, 'package.json')).resolve(name);
  } catch {
    return null;
  }
  // .../node_modules/@scope/name/<main>: walk up to the directory whose package.json has this name
  for (let d = dirname(entry); d !== dirname(d); d = dirname(d)) {
    const pj = join(d, 'package.json');
    if (existsSync(pj)) {
      try {
        if (JSON.parse(readFileSync(pj, 'utf8')).name === name) return d;
      } catch {
        // not ours
      }
    }
  }
  return null;
}

/**
 * Unpack the npm package's chromium (once per version) next to it, in `node_modules/.cache/shardline/`:
 * the binary, its NSS/expat libraries (the package's al2023 set, so no system library is needed) and fonts.
 */
export async function unpackChromium(packageDir) {
  const version = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')).version;
  const cacheRoot = packageDir.includes(`${join('node_modules', '@sparticuz')}`) ? join(packageDir, '..', '..', '.cache', 'shardline') : join(packageDir, '.cache');
  const dir = join(cacheRoot, `chromium-${version}`);
  const result = () => ({
    executablePath: join(dir, 'chromium'),
    env: { LD_LIBRARY_PATH: [join(dir, 'lib'), process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'), FONTCONFIG_FILE: join(dir, 'fonts.conf') },
  });
  if (existsSync(join(dir, 'chromium'))) return result();
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const bin = join(packageDir, 'bin');
  for (const tar of ['al2023.tar.br', 'fonts.tar.br']) if (existsSync(join(bin, tar))) extractTar(brotliDecompressSync(readFileSync(join(bin, tar))), tmp);
  writeFileSync(join(tmp, 'fonts.conf'), `<?xml version="1.0"?>\n<fontconfig><dir>${join(dir, 'fonts')}</dir><cachedir>${join(dir, 'fonts-cache')}</cachedir></fontconfig>\n`);
  await pipeline(createReadStream(join(bin, 'chromium.br')), createBrotliDecompress(), createWriteStream(join(tmp, 'chromium'), { mode: 0o755 }));
  try {
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(join(dir, 'chromium'))) throw err; // else: another process unpacked it first
  }
  return result();
}

/** Extract a ustar archive (regular files and directories, GNU long names: what the package ships) into `dir`. */
export function extractTar(buf, dir) {
  const str = (o, n) => {
    const s = buf.subarray(o, o + n);
    const end = s.indexOf(0);
    return s.subarray(0, end === -1 ? n : end).toString('utf8');
  };
  let longName = null;
  for (let o = 0; o + 512 <= buf.length; ) {
    const h = o;
    if (buf.subarray(h, h + 512).every((b) => b === 0)) break;
    const size = Number.parseInt(str(h + 124, 12).trim() || '0', 8);
    const type = String.fromCharCode(buf[h + 156] || 48);
    const mode = Number.parseInt(str(h + 100, 8).trim() || '644', 8) & 0o777;
    const prefix = str(h + 345, 155);
    let name = longName ?? (prefix ? `${prefix}/${str(h, 100)}` : str(h, 100));
    longName = null;
    const data = buf.subarray(h + 512, h + 512 + size);
    o = h + 512 + Math.ceil(size / 512) * 512;
    if (type === 'L') {
      longName = data.toString('utf8').replace(/\0.*$/s, '');
      continue;
    }
    name = name.replace(/^\.\//, '');
    const target = resolve(dir, name);
    if (!target.startsWith(resolve(dir))) throw new Error(`tar entry outside the target: ${name}`);
    if (type === '5') mkdirSync(target, { recursive: true });
    else if (type === '0' || type === '7') {
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, data, { mode });
    }
  }
}
