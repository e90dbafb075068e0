#!/usr/bin/env node
/**
 * The `shardline` command.
 *
 * - `shardline run`: connect a cluster (token from `DISCORD_TOKEN`, or `--simulator`) and write every dispatch
 *   as one JSON line to stdout; progress, logs and errors go to stderr. Optional metrics and status page ports.
 * - `shardline simulator`: start the bundled gateway simulator for other tools to test against.
 * - `shardline proxy`: run a gateway proxy (bots restart without re-identifying).
 *
 * One file per command (`run.ts`, `simulator.ts`, `proxy.ts`); `args.ts` holds what they share.
 * Exit codes: 0 done, 1 failed (token rejected, every shard stopped, port in use, ...), 2 bad usage.
 * @packageDocumentation
 */
import { redact } from '../errors.js';
import { envToken, setCommand, UsageError } from './args.js';
import { RUN_HELP, runCommand } from './run.js';
import { SIM_HELP, simulatorCommand } from './simulator.js';

const MAIN_HELP = `shardline — a Discord gateway client on the command line

Usage:
  shardline run [options]         connect shards and print every dispatch as a JSON line
  shardline simulator [options]   start the bundled offline gateway simulator
  shardline proxy [options]       run a gateway proxy: bots restart without re-identifying
  shardline help [command]        show help

Run 'shardline <command> --help' for the options of a command.

Examples:
  DISCORD_TOKEN=... shardline run --intents Guilds,GuildMessages --events MESSAGE_CREATE
  shardline run --simulator --events MESSAGE_CREATE --status-port 8080
  shardline simulator --port 7878 --shards 4 --traffic 20
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
      process.stderr.write(MAIN_HELP);
      return 2;
    case '-h':
    case '--help':
      process.stdout.write(MAIN_HELP);
      return 0;
    case 'help': {
      const topic = rest[0];
      if (topic === 'proxy') {
        process.stdout.write((await import('./proxy.js')).PROXY_HELP);
        return 0;
      }
      process.stdout.write(topic === 'run' ? RUN_HELP : topic === 'simulator' ? SIM_HELP : MAIN_HELP);
      return topic === undefined || topic === 'run' || topic === 'simulator' ? 0 : 2;
    }
    case '-v':
    case '--version': {
      const { createRequire } = await import('node:module');
      const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
      process.stdout.write(`${pkg.version}\n`);
      return 0;
    }
    case 'run':
      setCommand('run');
      return runCommand(rest);
    case 'simulator':
    case 'sim':
      setCommand('simulator');
      return simulatorCommand(rest);
    case 'proxy': {
      setCommand('proxy');
      const { proxyCommand } = await import('./proxy.js');
      return proxyCommand(rest);
    }
    default:
      throw new UsageError(`unknown command '${command}' (commands: run, simulator, proxy, help)`, null);
  }
}

const secret = envToken();
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Let stdout drain, then leave even if a library left a handle open.
    process.stdout.write('', () => setTimeout(() => process.exit(code), 50).unref());
  },
  (err: unknown) => {
    const e = err instanceof Error ? err : new Error(String(err));
    if (e instanceof UsageError) {
      const help = e.command ? `shardline ${e.command} --help` : 'shardline --help';
      process.stderr.write(`shardline: ${redact(e.message, secret)}\nSee '${help}'.\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`shardline: error: ${redact(e.message, secret)}\n`);
      process.exitCode = 1;
    }
  },
);
