/**
 * Throwaway `redis-server` and `nats-server` processes on free loopback ports with temporary directories, for the
 * demo and the tests. Never touches the shared instances on the default ports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** A server process started by {@link startRedis} or {@link startNats}. */
export interface ServerProcess {
  readonly kind: 'redis' | 'nats';
  readonly port: number;
  /** `redis://127.0.0.1:P` or `nats://127.0.0.1:P`. */
  readonly url: string;
  readonly dir: string;
  readonly pid: number | undefined;
  /** Stop it (SIGTERM, then SIGKILL after 3 s); the temp dir is removed unless `keepDir`. Idempotent. */
  stop(options?: { keepDir?: boolean }): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHook = false;

/**
 * Kill every child still running when this process exits — normally, or by SIGTERM / SIGINT / SIGHUP (e.g. a test
 * runner's time-out) — so a crashed test leaves no server behind.
 */
function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  const killAll = () => {
    for (const c of live) {
      try {
        if (c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  process.once('exit', killAll);
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    const onSignal = () => {
      killAll();
      // Only when nobody else handles the signal: then die of it as we would have without this hook.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.once(sig, onSignal);
  }
}

/** Find a server binary: `$ENV_VAR`, then PATH, then the usual sbin/bin directories. Throws a clear error when missing. */
export function findBinary(name: 'redis-server' | 'nats-server'): string {
  const env = process.env[name === 'redis-server' ? 'REDIS_SERVER_BIN' : 'NATS_SERVER_BIN'];
  if (env && existsSync(env)) return env;
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/sbin', '/opt/homebrew/bin'];
  for (const d of dirs) {
    if (d && existsSync(join(d, name))) return join(d, name);
  }
  throw new Error(
    `${name} was not found (looked in $${name === 'redis-server' ? 'REDIS_SERVER_BIN' : 'NATS_SERVER_BIN'}, PATH, /usr/sbin, /usr/bin, /usr/local/bin). ` +
      `The distributed tests need a real ${name}: install it (e.g. apt-get install ${name === 'redis-server' ? 'redis-server' : 'nats-server'}) or set the variable.`,
  );
}

/** A free TCP port on 127.0.0.1 (bound and released; racy in theory, fine for tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolve when `probe` succeeds; reject when the child exits or after `timeout` ms. */
async function waitUntilUp(child: ChildProcess, name: string, port: number, probe: () => Promise<boolean>, output: () => string, timeout = 10_000): Promise<void> {
  const end = Date.now() + timeout;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name} on port ${port} exited with ${child.exitCode ?? child.signalCode} before it was ready:\n${output().slice(-2000)}`);
    }
    if (await probe().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`${name} on port ${port} was not ready within ${timeout} ms:\n${output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Open a TCP connection, optionally write `send`, resolve true when the reply contains `expect`. */
function tcpProbe(port: number, send: string | null, expect: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = tcpConnect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 500);
    sock.on('connect', () => {
      if (send) sock.write(send);
    });
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes(expect)) done(true);
    });
    sock.on('error', () => done(false));
    sock.on('close', () => done(false));
  });
}

async function startServer(kind: 'redis' | 'nats', options: { port?: number; dir?: string }): Promise<ServerProcess> {
  installExitHook();
  const bin = findBinary(kind === 'redis' ? 'redis-server' : 'nats-server');
  const port = options.port ?? (await freePort());
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), `shardline-${kind}-`));
  const args =
    kind === 'redis'
      ? ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'yes']
      : ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const spawnError = new Promise<never>((_, reject) => child.once('error', (err) => reject(new Error(`cannot start ${bin}: ${err.message}`))));
  spawnError.catch(() => undefined);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => live.delete(child));
  const probe = kind === 'redis' ? () => tcpProbe(port, 'PING\r\n', '+PONG') : () => tcpProbe(port, null, 'INFO');
  try {
    await Promise.race([waitUntilUp(child, kind === 'redis' ? 'redis-server' : 'nats-server', port, probe, () => out), spawnError]);
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    if (!options.dir) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let stopping: Promise<void> | null = null;
  return {
    kind,
    port,
    dir,
    url: `${kind}://127.0.0.1:${port}`,
    pid: child.pid,
    stop(opts = {}) {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
          await exited;
          clearTimeout(timer);
        }
        if (!opts.keepDir) rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

/** `redis-server --port P --save '' --appendonly no --dir TMP` on 127.0.0.1. */
export function startRedis(options: { port?: number; dir?: string } = {}): Promise<ServerProcess> {
  return startServer('redis', options);
}

/** `nats-server -a 127.0.0.1 -p P -js -sd TMP`. */
export function startNats(options: { port?: number; dir?: string } = {}): Promise<ServerProcess> {
  return startServer('nats', options);
}

/**
 * Read a child's stdout as JSON lines: each parsed line is pushed to `lines`, anything else goes to `other`;
 * `onData` runs after every chunk (e.g. to wake waiters).
 */
export function collectJsonLines(proc: ChildProcess, lines: Record<string, unknown>[], other: (line: string) => void = () => {}, onData: () => void = () => {}): void {
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        other(line);
      }
    }
    onData();
  });
}
