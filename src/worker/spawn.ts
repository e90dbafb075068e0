/**
 * Starting a worker thread: the entry module next to this file, and the shard options that can be given to it.
 * @packageDocumentation
 */
import { Worker } from 'node:worker_threads';
import type { ShardOptions } from '../shard.js';
import type { WorkerSpec } from './protocol.js';

/** Shard options that can cross a thread boundary: plain data only (functions, the clock and queue stay behind). */
export function cloneableShardOptions(options: Partial<ShardOptions>): Partial<ShardOptions> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined || typeof v === 'function' || k === 'clock' || k === 'identifyQueue' || k === 'random') continue;
    out[k] = (k === 'events' || k === 'extraEvents') && v !== null && typeof v === 'object' ? [...(v as Iterable<string>)] : v;
  }
  return out as Partial<ShardOptions>;
}

/**
 * Start the worker entry next to this file: `entry.js` in `dist/`, or `entry.ts` when running from source under
 * tsx. (`execArgv: ['--import', 'tsx']` does not install tsx's loader in a worker on Node 20, so the source case
 * boots through a one-line script that registers tsx's ESM API first.)
 */
export function spawnWorker(spec: WorkerSpec): Worker {
  const here = import.meta.url;
  const name = `shardline-worker-${spec.index}`;
  if (!here.endsWith('.ts')) return new Worker(new URL('./entry.js', here), { workerData: spec, name });
  const api = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./entry.ts', here).href;
  const boot = `import(${JSON.stringify(api)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, workerData: spec, name });
}
