/**
 * `npm start`'s screen (src/cli/demo-screen.ts, src/cli/width.ts) and the CLI's progress line (src/cli/ui.ts) at
 * 80 columns: every line the terminal receives — narration, progress panel, status table — is at most 80 columns
 * wide, so nothing wraps (a wrapped panel line would also break the in-place redraw).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ShardStatus } from '../src/cluster-status.js';
import { Screen, progressPanel, statusSummary, statusTable } from '../src/cli/demo-screen.js';
import { progressLine } from '../src/cli/ui.js';
import { fit, visibleWidth, wrap } from '../src/cli/width.js';
import type { ShardState } from '../src/state.js';

const STATES: ShardState[] = ['idle', 'connecting', 'identifying', 'resuming', 'ready', 'reconnecting', 'closed', 'fatal'];

/** Shards in every state, with wide numbers (as after a long run). */
function shards(n: number): ShardStatus[] {
  return Array.from({ length: n }, (_, id) => ({
    id,
    state: STATES[id % STATES.length]!,
    latency: id % 3 === 0 ? null : 1234,
    sequence: 9_876_543,
    reconnects: 12_345,
    resumes: 3,
    identifies: 4,
    guilds: 25_000,
    lastCloseCode: id % 2 ? 4000 : null,
    sessionId: 'abcdef0123456789',
  })) as unknown as ShardStatus[];
}

/** The lines a terminal shows for `written` (cursor movements and colours take no columns). */
function terminalLines(written: string): string[] {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: cursor control sequences
  const cursor = /\x1b\[\d*[AJK]/g;
  return written.replace(cursor, '').split('\n').slice(0, -1);
}

test('at 80 columns, every line of the narration, the progress panel and the status table fits without wrapping', () => {
  let written = '';
  const screen = new Screen({ live: true, columns: 80, write: (t) => void (written += t) });
  const status = shards(16);
  const dispatches = new Map(status.map((s) => [s.id, 12_345_678]));
  screen.say('gateway simulator listening on ws://127.0.0.1:65535 (time runs 10x faster): 16 shards recommended, max_concurrency 4');
  screen.setPanel(progressPanel(status, 4, 123_456, 20_000));
  screen.say('connecting 16 shards: one IDENTIFY per lane (shard_id % 4) every 5 s, lanes in parallel');
  screen.setPanel(statusTable(status, dispatches));
  screen.say(`shard 0 RESUMED session abcdef01… at seq 9876543 — nothing missed ${'and a very long reason '.repeat(6)}`);
  screen.say(`a-single-word-longer-than-the-terminal-${'x'.repeat(120)}`);
  // a lane with many shards (e.g. 256 shards on 4 lanes) is cut, not wrapped
  screen.setPanel(progressPanel(shards(256), 4, 1000, 320_000));
  screen.release();
  screen.setPanel([statusSummary(shards(64), dispatches)]); // the non-terminal summary line
  const lines = terminalLines(written);
  assert.ok(lines.length > 40, `${lines.length} lines rendered`);
  const wide = lines.filter((l) => visibleWidth(l) > 80);
  assert.deepEqual(wide, [], 'lines wider than 80 columns');
  // nothing of the table was cut at 80 columns: it was designed to fit
  assert.ok(lines.some((l) => l.startsWith('shard ') && l.includes('last close') && !l.includes('…')));
  assert.ok(
    lines.some((l) => l.includes('12345678') && !l.includes('…')),
    'a full table row',
  );
  // narration wraps at spaces, continuation lines indented under the text
  const wrapped = lines.findIndex((l) => l.includes('gateway simulator listening'));
  assert.match(lines[wrapped + 1]!, /^ {8}\S/);
});

test("the CLI's progress line: 1000 shards fit in 79 columns (it is drawn without a newline); any more is cut, not wrapped", () => {
  const line = progressLine({ ready: 512, starting: 16, failed: 3, total: 1000 }, '1234.5 s');
  assert.ok(visibleWidth(line) <= 79, `${visibleWidth(line)} columns: ${line}`);
  assert.ok(!line.includes('…'));
  const worst = fit(progressLine({ ready: 0, starting: 33_333, failed: 33_333, total: 99_999 }, '12345.6 s'), 79);
  assert.equal(visibleWidth(worst), 79);
});

test('fit and wrap count columns without ANSI codes and keep colours balanced', () => {
  const red = (s: string) => `\x1b[31m${s}\x1b[0m`;
  assert.equal(visibleWidth(red('abc')), 3);
  assert.equal(visibleWidth('●○◔◑◌×✗·→≤█░…'), 13);
  const cut = fit(`${red('x'.repeat(50))}${'y'.repeat(50)}`, 80);
  assert.equal(visibleWidth(cut), 80);
  assert.ok(cut.endsWith('…\x1b[0m'), 'a cut coloured line ends with a reset');
  assert.equal(fit('short', 80), 'short');
  assert.deepEqual(wrap('aaa bbb ccc', 7, 2), ['aaa bbb', '  ccc']);
  for (const l of wrap(`${'word '.repeat(60)}`, 80, 8)) assert.ok(visibleWidth(l) <= 80);
});
