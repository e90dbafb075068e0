/**
 * Fitting lines to a terminal's width, so nothing the CLI and the demo redraw in place ever wraps (a wrapped line
 * breaks the cursor arithmetic of the redraw).
 * @packageDocumentation
 */

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

/** Columns a line takes on a terminal: ANSI codes take none, every other code point one (all we print is narrow). */
export function visibleWidth(line: string): number {
  let n = 0;
  for (const _ of line.replace(ANSI, '')) n++;
  return n;
}

/** Cut `line` to `width` columns (ending in `…` when cut), keeping its colour codes balanced. */
export function fit(line: string, width: number): string {
  if (visibleWidth(line) <= width) return line;
  let out = '';
  let n = 0;
  for (let i = 0; i < line.length; ) {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: an ANSI escape sequence
    const m = line[i] === '\x1b' ? /^\x1b\[[0-9;]*[A-Za-z]/.exec(line.slice(i)) : null;
    if (m) {
      out += m[0];
      i += m[0].length;
      continue;
    }
    const ch = String.fromCodePoint(line.codePointAt(i)!);
    if (n === width - 1) break;
    out += ch;
    n++;
    i += ch.length;
  }
  return `${out}…${line.includes('\x1b[') ? '\x1b[0m' : ''}`;
}

/** Break `line` at spaces into lines of at most `width` columns; continuation lines start with `indent` spaces. */
export function wrap(line: string, width: number, indent: number): string[] {
  if (visibleWidth(line) <= width) return [line];
  const words = line.split(' ');
  const lines: string[] = [];
  let cur = '';
  for (const w of words) {
    const next = cur === '' ? w : `${cur} ${w}`;
    if (visibleWidth(next) <= width || cur === '' || cur.trim() === '') cur = next;
    else {
      lines.push(cur);
      cur = `${' '.repeat(indent)}${w}`;
    }
  }
  lines.push(cur);
  return lines.map((l) => fit(l, width));
}
