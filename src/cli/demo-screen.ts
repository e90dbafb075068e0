/**
 * Terminal output of the `npm start` demo: narration lines that scroll, and a panel (progress bar or status
 * table) that is redrawn in place below them on a TTY, or printed now and then otherwise.
 * @packageDocumentation
 */
import type { ShardStatus } from '../cluster-status.js';
import type { ShardState } from '../state.js';
import { fit, wrap } from './width.js';

const tty = process.stdout.isTTY === true;
const paint = (code: number) => (s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
export const color = { dim: paint(2), bold: paint(1), green: paint(32), yellow: paint(33), red: paint(31), cyan: paint(36) };

/** Where a {@link Screen} writes and how wide it is (tests pass their own). */
export interface ScreenOptions {
  /** Redraw the panel in place (a terminal). Default: stdout is a TTY. */
  live?: boolean;
  /** Terminal width. Default: stdout's columns, else 80. */
  columns?: number;
  /** Default: process.stdout.write. */
  write?: (text: string) => void;
}

/** Scrolling log above a live panel; every line fits the terminal's width, so nothing wraps (a wrapped panel line would break the redraw). */
export class Screen {
  readonly live: boolean;
  private panel: string[] = [];
  private readonly started = Date.now();
  private readonly out: (text: string) => void;
  private readonly fixedColumns: number | undefined;

  constructor(options: ScreenOptions = {}) {
    this.live = options.live ?? tty;
    this.fixedColumns = options.columns;
    this.out = options.write ?? ((text) => void process.stdout.write(text));
  }

  /** The terminal's width now (it can be resized). */
  get columns(): number {
    return Math.max(20, this.fixedColumns ?? (process.stdout.columns || 80));
  }

  /** A narration line (above the panel), wrapped to the terminal's width. */
  say(line: string): void {
    const t = ((Date.now() - this.started) / 1000).toFixed(1).padStart(5);
    this.write(wrap(`${color.dim(t + 's')}  ${line}`, this.columns, 8));
  }

  /** Replace the panel: redrawn in place on a TTY; printed as-is otherwise (call it sparingly then). Lines are cut to the width. */
  setPanel(lines: string[]): void {
    const fitted = lines.map((l) => fit(l, this.columns));
    if (!this.live) {
      this.out(fitted.map((l) => `${l}\n`).join(''));
      return;
    }
    this.erase();
    this.panel = fitted;
    this.out(fitted.map((l) => `${l}\n`).join(''));
  }

  /** Leave the panel on screen as normal output. */
  release(): void {
    this.panel = [];
  }

  private write(lines: string[]): void {
    const panel = this.panel;
    this.erase();
    this.out(lines.map((l) => `${l}\n`).join(''));
    if (this.live && panel.length > 0) this.setPanel(panel);
  }

  private erase(): void {
    if (!this.live || this.panel.length === 0) return;
    this.out(`\x1b[${this.panel.length}A\x1b[J`);
    this.panel = [];
  }
}

const STATE_MARK: Record<ShardState, string> = {
  idle: color.dim('·'),
  connecting: color.yellow('○'),
  identifying: color.yellow('◔'),
  resuming: color.yellow('◑'),
  ready: color.green('●'),
  reconnecting: color.yellow('◌'),
  closed: color.dim('×'),
  fatal: color.red('✗'),
};

/** Progress bar (shards ready / total) and one row per identify lane. */
export function progressPanel(status: ShardStatus[], lanes: number, elapsedMs: number, idealMs: number): string[] {
  const total = status.length;
  const ready = status.filter((s) => s.state === 'ready').length;
  const width = 24;
  const filled = Math.round((ready / Math.max(1, total)) * width);
  const bar = color.green('█'.repeat(filled)) + color.dim('░'.repeat(width - filled));
  const lines = [`${color.bold('shards ready')} ${bar} ${String(ready).padStart(3)}/${total}  ${(elapsedMs / 1000).toFixed(1)} s of ≤ ${(idealMs / 1000).toFixed(0)} s`];
  for (let lane = 0; lane < lanes; lane++) {
    const mine = status.filter((s) => s.id % lanes === lane);
    lines.push(`  ${color.dim(`lane ${lane}`)}  ${mine.map((s) => STATE_MARK[s.state]).join(' ')}   ${color.dim(`shards ${mine.map((s) => s.id).join(', ')}`)}`);
  }
  lines.push(color.dim(`  ${STATE_MARK.idle} waiting  ${STATE_MARK.identifying} identifying  ${STATE_MARK.ready} ready  ${STATE_MARK.fatal} failed   ≤ ceil(N / lanes) × 5 s`));
  return lines;
}

/** One row per shard. */
export function statusTable(status: ShardStatus[], dispatches: Map<number, number>): string[] {
  const head = color.bold(`${'shard'.padEnd(6)}${'state'.padEnd(14)}${'latency'.padStart(8)}${'seq'.padStart(8)}${'events'.padStart(8)}${'reconn'.padStart(8)}${'guilds'.padStart(8)}  last close`);
  const rows = status.map((s) => {
    const state = s.state === 'ready' ? color.green(s.state.padEnd(14)) : s.state === 'fatal' ? color.red(s.state.padEnd(14)) : color.yellow(s.state.padEnd(14));
    const latency = s.latency === null ? '–' : `${s.latency} ms`;
    return (
      `${String(s.id).padEnd(6)}${state}${latency.padStart(8)}${String(s.sequence).padStart(8)}${String(dispatches.get(s.id) ?? 0).padStart(8)}` +
      `${String(s.reconnects).padStart(8)}${String(s.guilds ?? '–').padStart(8)}  ${s.lastCloseCode ?? '–'}`
    );
  });
  return [head, ...rows];
}

/** One line for logs that are not a terminal. */
export function statusSummary(status: ShardStatus[], dispatches: Map<number, number>): string {
  const ready = status.filter((s) => s.state === 'ready').length;
  const events = [...dispatches.values()].reduce((a, b) => a + b, 0);
  const reconnects = status.reduce((a, s) => a + s.reconnects, 0);
  const lat = status.map((s) => s.latency).filter((l): l is number => l !== null);
  const avg = lat.length ? Math.round(lat.reduce((a, b) => a + b, 0) / lat.length) : null;
  const notReady = status.filter((s) => s.state !== 'ready').map((s) => `${s.id}:${s.state}`);
  return `status: ${ready}/${status.length} ready, ${events} dispatches, ${reconnects} reconnects, latency ${avg ?? '–'} ms${notReady.length ? `; not ready: ${notReady.join(' ')}` : ''}`;
}
