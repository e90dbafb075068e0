/**
 * `npm run bench:check`, not part of `npm test` (it spawns the competitor clients): the `npm run bench` harness in
 * `--quick` mode. Every client process connects to the bench server, receives every dispatch of every workload (or
 * exactly the filtered ones), and the idle-shard memory run gets every shard READY. No timing assertions: the figures
 * of a quick run mean nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');

interface QuickResults {
  stream: Array<{ workload: string; client: string; received: number; expectedTotal: number; receivedWindow: number; expectedWindow: number; inversions: number; ok: boolean; cpuUs: number }>;
  idle: Array<{ client: string; shards: number; ready: number; ok: boolean }>;
  failures: string[];
  options: { shards: number[] };
}

function runQuick(jsonPath: string): Promise<{ code: number | null; output: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick', '--json', jsonPath], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      rej(new Error(`bench --quick did not finish in 55 s:\n${output}`));
    }, 55_000);
    child.on('error', rej);
    child.on('exit', (code) => {
      clearTimeout(timer);
      res({ code, output });
    });
  });
}

test('bench --quick: every client receives every dispatch, every idle shard gets READY', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shardline-bench-'));
  try {
    const jsonPath = join(dir, 'quick.json');
    const { code, output } = await runQuick(jsonPath);
    assert.equal(code, 0, `bench --quick failed:\n${output}`);
    const r = JSON.parse(readFileSync(jsonPath, 'utf8')) as QuickResults;
    assert.deepEqual(r.failures, []);

    const byWorkload = new Map<string, Set<string>>();
    for (const s of r.stream) {
      (byWorkload.get(s.workload) ?? byWorkload.set(s.workload, new Set()).get(s.workload)!).add(s.client);
      assert.ok(s.expectedTotal > 0, `${s.workload}/${s.client}: empty stream`);
      assert.equal(s.received, s.expectedTotal, `${s.workload}/${s.client}: dispatches received`);
      assert.equal(s.receivedWindow, s.expectedWindow, `${s.workload}/${s.client}: dispatches in the measured window`);
      assert.equal(s.inversions, 0, `${s.workload}/${s.client}: out-of-order dispatches`);
      assert.ok(Number.isFinite(s.cpuUs), `${s.workload}/${s.client}: CPU was measured`);
      assert.ok(s.ok);
    }
    for (const w of ['presences_on', 'presences_off', 'filtered']) {
      const clients = byWorkload.get(w);
      assert.ok(clients, `workload ${w} ran`);
      for (const c of ['floor-zlib', 'floor-none', 'shardline-zlib', 'shardline-none', 'djs-zlib-sync']) assert.ok(clients.has(c), `${w}: ${c} ran`);
    }
    for (const c of ['djs-native-zlib', 'discordeno-zlib']) assert.ok(byWorkload.get('presences_on')!.has(c), `presences_on: ${c} ran`);

    // The filtered workload delivers only what shardline asked for; the others still get everything.
    const filtered = r.stream.filter((s) => s.workload === 'filtered');
    const full = filtered.find((s) => s.client === 'floor-zlib')!;
    for (const s of filtered.filter((x) => x.client.startsWith('shardline-'))) assert.ok(s.received < full.received, `${s.client} filtered`);

    assert.deepEqual(r.idle.map((i) => i.client).sort(), ['discordeno-zlib', 'djs-native-zlib', 'djs-zlib-sync', 'floor-zlib', 'floor-zlib-sync', 'shardline-zlib']);
    for (const i of r.idle) {
      assert.deepEqual([i.shards], r.options.shards, `${i.client}: shard count`);
      assert.equal(i.ready, i.shards, `${i.client}: idle shards READY`);
      assert.ok(i.ok, `${i.client}: idle run checks`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bench:startup --quick: every shard identifies once, no op 9, lanes 5 s apart', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shardline-bench-'));
  try {
    const jsonPath = join(dir, 'startup.json');
    const { code, output } = await new Promise<{ code: number | null; output: string }>((res, rej) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'bench/startup.ts', '--quick', '--json', jsonPath], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', rej);
      child.on('exit', (c) => res({ code: c, output: out }));
    });
    assert.equal(code, 0, `bench:startup --quick failed:\n${output}`);
    const rows = JSON.parse(readFileSync(jsonPath, 'utf8')) as Array<{
      shards: number;
      maxConcurrency: number;
      scale: number;
      identifies: number;
      invalidSessions: number;
      minLaneGap: number;
      readyMs: number;
      idealSpan: number;
    }>;
    assert.ok(rows.length >= 2);
    for (const r of rows) {
      assert.equal(r.identifies, r.shards);
      assert.equal(r.invalidSessions, 0);
      assert.ok(r.minLaneGap >= 5000 - 5 / r.scale, `lane gap ${r.minLaneGap} (5 s, give or take 5 real ms of reporting delay)`);
      assert.ok(r.readyMs >= r.idealSpan, 'never faster than the protocol allows');
    }
    assert.match(output, /\| 16 \| 4 \|/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
