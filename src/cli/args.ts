/**
 * What every `shardline` command shares: its usage error (exit code 2, naming the command's `--help`), the option
 * parser that turns `parseArgs`' errors into one, the checks of numbers and intents, and the token from
 * `DISCORD_TOKEN`.
 * @packageDocumentation
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { AllIntents, Intents } from '../intents.js';

/** The command being run, for the `--help` hint of a usage error. */
let currentCommand: string | null = null;

/** Name the command being run (main does, before handing its arguments on). */
export function setCommand(command: string): void {
  currentCommand = command;
}

/** A mistake in the command line: exit code 2, the message says what to fix. */
export class UsageError extends Error {
  readonly command: string | null;
  constructor(message: string, command: string | null) {
    super(message);
    this.command = command ?? currentCommand;
  }
}

/** The option values `parse()` returns for `options`. */
type Values<O extends NonNullable<ParseArgsConfig['options']>> = ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: true }>>['values'];

/** Parse `argv` with `options`, turning parseArgs' errors into a {@link UsageError} that names the fix. */
export function parse<O extends NonNullable<ParseArgsConfig['options']>>(command: string, argv: string[], options: O): Values<O> {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`, command);
    return values;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const e = err as Error & { code?: string };
    const opt = /'(-{1,2}[^' ]+)/.exec(e.message)?.[1];
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown option ${opt ?? e.message}`, command);
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const name = opt?.split(/[ ,]/)[0] ?? '';
      throw new UsageError(
        name && (options as Record<string, { type: string }>)[name.replace(/^-+/, '')]?.type === 'boolean' ? `option ${name} takes no value` : `option ${name || e.message} needs a value`,
        command,
      );
    }
    throw new UsageError(e.message, command);
  }
}

/** `--flag <n>`: a whole number in `[min, max]` (undefined when not given). */
export function int(flag: string, value: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${flag} must be a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}, got '${value}'`, null);
  }
  return n;
}

/** `--flag <x>`: a positive finite number (undefined when not given). */
export function positive(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n)) throw new UsageError(`--${flag} must be a positive number, got '${value}'`, null);
  return n;
}

const INTENT_BY_KEY = new Map(Object.entries(Intents).map(([name, bit]) => [name.toLowerCase().replace(/_/g, ''), bit]));

/** `Guilds,GuildMessages` (any case, `GUILD_MESSAGES` too) or a number. */
export function parseIntents(value: string, flag = 'intents'): number {
  const v = value.trim();
  if (/^\d+$/.test(v)) {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n > 0x7fffffff || (n & ~AllIntents) !== 0) {
      throw new UsageError(`--${flag} ${v} has bits that are not documented intents (valid bits: ${AllIntents})`, null);
    }
    return n;
  }
  let bits = 0;
  for (const raw of v.split(',')) {
    const name = raw.trim();
    if (name === '') continue;
    const bit = INTENT_BY_KEY.get(name.toLowerCase().replace(/_/g, ''));
    if (bit === undefined) throw new UsageError(`unknown intent '${name}' in --${flag}; known intents: ${Object.keys(Intents).join(', ')}`, null);
    bits |= bit;
  }
  if (bits === 0 && v !== '0') throw new UsageError(`--${flag} names no intent`, null);
  return bits;
}

/** `--flag <url>`: an absolute URL (undefined when not given). */
export function url(flag: string, value: string | undefined): string | undefined {
  if (value !== undefined && !URL.canParse(value)) throw new UsageError(`--${flag} is not a URL: '${value}'`, null);
  return value;
}

/** `--handler <path>`: the handler module's path (undefined when not given). */
export function handlerPath(value: string | undefined): string | undefined {
  if (value !== undefined && value.trim() === '') throw new UsageError('--handler names no module (e.g. --handler ./handler.js)', null);
  return value;
}

/** DISCORD_TOKEN without spaces or a `Bot ` prefix (what must never be printed), or undefined. */
export function envToken(): string | undefined {
  return process.env.DISCORD_TOKEN?.trim().replace(/^Bot\s+/i, '') || undefined;
}
