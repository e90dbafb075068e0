/**
 * stderr of the `shardline` CLI: log lines, and a progress bar redrawn in place while shards come up (on a
 * terminal; elsewhere one line whenever the number of ready shards changes). stdout stays pure JSON lines.
 * Every line passes through `redact` so the token can never be printed.
 * @packageDocumentation
 */
import type { ShardStatus } from '../cluster-status.js';
import { redact } from '../errors.js';
import type { Logger } from '../logging.js';
import { fit } from './width.js';

const tty = process.stderr.isTTY === true && !process.env.NO_COLOR;
const paint = (code: number) => (s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
export const c = { dim: paint(2), bold: paint(1), green: paint(32), yellow: paint(33), red: paint(31), cyan: paint(36) };

export class StderrUi {
  private barShown = false;
  private lastBar = '';
  private lastReady = -1;

  constructor(
    private readonly secret: string | undefined,
    private readonly quiet: boolean,
  ) {}

  /** A line on stderr (above the progress bar). `always`: printed even with --quiet (errors). */
  line(text: string, always = false): void {
    if (this.quiet && !always) return;
    const safe = redact(text, this.secret);
    this.clearBar();
    process.stderr.write(`${safe}\n`);
    if (this.lastBar && tty) this.drawBar(this.lastBar);
  }

  /** Update the start-up progress from the shards' status. */
  progress(status: ShardStatus[], elapsedMs: number): void {
    if (this.quiet) return;
    const total = status.length;
    let ready = 0;
    let starting = 0;
    let failed = 0;
    for (const s of status) {
      if (s.state === 'ready') ready++;
      else if (s.state === 'fatal') failed++;
      else if (s.state !== 'idle' && s.state !== 'closed') starting++;
    }
    const secs = `${(elapsedMs / 1000).toFixed(1)} s`;
    if (!tty) {
      if (ready === this.lastReady) return;
      this.lastReady = ready;
      process.stderr.write(`shardline: ${ready}/${total} shards ready (${secs})${failed ? `, ${failed} failed` : ''}\n`);
      return;
    }
    this.drawBar(fit(progressLine({ ready, starting, failed, total }, secs), (process.stderr.columns || 80) - 1));
  }

  /** Remove the progress bar for good. */
  endProgress(): void {
    this.clearBar();
    this.lastBar = '';
  }

  private drawBar(text: string): void {
    this.lastBar = text;
    process.stderr.write(`\r\x1b[K${text}`);
    this.barShown = true;
  }

  private clearBar(): void {
    if (!this.barShown) return;
    process.stderr.write('\r\x1b[K');
    this.barShown = false;
  }
}

/** The progress bar's line (under 80 columns up to ~1000 shards; cut to the terminal's width when drawn). */
export function progressLine(n: { ready: number; starting: number; failed: number; total: number }, secs: string): string {
  const width = 16;
  const filled = Math.round((n.ready / Math.max(1, n.total)) * width);
  const bar = c.green('█'.repeat(filled)) + c.dim('░'.repeat(width - filled));
  const waiting = n.total - n.ready - n.starting - n.failed;
  const parts = [`${n.starting} starting`, `${waiting} waiting`];
  if (n.failed) parts.push(c.red(`${n.failed} failed`));
  return `${c.bold('ready')} ${bar} ${n.ready}/${n.total}  ${c.dim(parts.join(' · '))}  ${c.dim(secs)}`;
}

/** A {@link Logger} that writes readable lines to the CLI's stderr. */
export function stderrLogger(ui: StderrUi): Logger {
  const line = (level: string, paintLevel: (s: string) => string) => (fields: object, message?: string) => {
    const f = fields as Record<string, unknown>;
    const extra = typeof f.reason === 'string' && f.reason ? c.dim(` (${f.reason})`) : '';
    ui.line(`shardline ${paintLevel(level)} ${message ?? ''}${extra}`, level === 'error');
  };
  return { debug: line('debug', c.dim), info: line('info', c.cyan), warn: line('warn', c.yellow), error: line('error', c.red) };
}
