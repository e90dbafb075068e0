/** A child process that must exit by itself (nothing left open), for the tests of what a failed connect() leaves behind. */
import { spawn } from 'node:child_process';

/**
 * Run `script` (an ES module, through tsx) in a child process. Resolves once it exits by itself, with its exit code,
 * its trimmed stdout and the ms from its first output to its exit (-1 without output); rejects and kills it when it
 * is still running after `timeoutMs` (`what`: what it did before it should have exited, for the message).
 */
export function runChild(script: string, what: string, timeoutMs: number): Promise<{ code: number | null; out: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let failedAt = 0;
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      failedAt ||= Date.now();
    });
    const kill = setTimeout(() => {
      child.kill();
      reject(new Error(`the process did not exit after its ${what} (output: ${out.trim()})`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(kill);
      resolve({ code, out: out.trim(), ms: failedAt ? Date.now() - failedAt : -1 });
    });
  });
}
