/**
 * Main-thread side of one shard worker: spawns it, turns its event batches back into cluster events, answers
 * its identify-queue requests from the cluster's single queue (lanes are global), routes commands to it and
 * mirrors its shards' status so `cluster.status()` stays synchronous.
 * @packageDocumentation
 */
import { Worker } from 'node:worker_threads';
import { DecodeError, GatewayError, ShardlineError } from '../errors.js';
import type { DispatchEvent } from '../events.js';
import type { IdentifyQueue } from '../queue.js';
import type { Session } from '../session.js';
import type { Shard, ShardOptions } from '../shard.js';
import type { GatewayCommand, ShardBackend, ShardSink, ShardStatus } from '../cluster-status.js';
import { fromWire, toWire, RAW_LINE, type BatchItem, type CallMethod, type FromWorker, type StatusRow, type ToWorker, type WorkerSpec } from './protocol.js';

/** How long `close()` waits for a worker to close its shards before terminating it, real ms. */
const CLOSE_TIMEOUT = 10_000;

/** Shard options that can cross a thread boundary: plain data only (functions, the clock and queue stay behind). */
export function cloneableShardOptions(options: Partial<ShardOptions>): Partial<ShardOptions> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined || typeof v === 'function' || k === 'clock' || k === 'identifyQueue' || k === 'random') continue;
    out[k] = k === 'events' && v !== null && typeof v === 'object' ? [...(v as Iterable<string>)] : v;
  }
  return out as Partial<ShardOptions>;
}

/**
 * Start the worker entry next to this file: `entry.js` in `dist/`, or `entry.ts` when running from source under
 * tsx. (`execArgv: ['--import', 'tsx']` does not install tsx's loader in a worker on Node 20, so the source case
 * boots through a one-line script that registers tsx's ESM API first.)
 */
function spawnWorker(spec: WorkerSpec): Worker {
  const here = import.meta.url;
  const name = `shardline-worker-${spec.index}`;
  if (!here.endsWith('.ts')) return new Worker(new URL('./entry.js', here), { workerData: spec, name });
  const api = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./entry.ts', here).href;
  const boot = `import(${JSON.stringify(api)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, workerData: spec, name });
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/** One worker thread running some of the cluster's shards. Implements the cluster's {@link ShardBackend}. */
export class WorkerHost implements ShardBackend {
  readonly index: number;
  private readonly worker: Worker;
  private readonly mirror = new Map<number, ShardStatus>();
  private readonly calls = new Map<number, Pending>();
  private readonly acquires = new Map<number, AbortController>();
  private nextCall = 1;
  private exited = false;
  private closing = false;
  private crash: string | null = null;

  constructor(
    spec: WorkerSpec,
    private readonly sink: ShardSink,
    private readonly queue: IdentifyQueue,
  ) {
    this.index = spec.index;
    for (const id of spec.ids) {
      this.mirror.set(id, { id, state: 'idle', latency: null, sessionId: null, sequence: 0, reconnects: 0, identifies: 0, resumes: 0, lastCloseCode: null, worker: spec.index });
    }
    this.worker = spawnWorker(spec);
    this.worker.on('message', (msg: FromWorker) => this.onMessage(msg));
    this.worker.on('error', (err: Error) => {
      this.crash = err.message;
    });
    this.worker.on('exit', (code: number) => this.onExit(code));
  }

  local(): Shard | undefined {
    return undefined;
  }

  connect(shardId: number): Promise<void> {
    return this.call('connect', [shardId]).then(() => undefined);
  }

  send(shardId: number, payload: GatewayCommand): Promise<void> {
    return this.call('send', [shardId, { op: payload.op, d: payload.d }]).then(() => undefined);
  }

  restart(shardId: number, resume: boolean): Promise<void> {
    return this.call('restart', [shardId, resume]).then(() => undefined);
  }

  barrier(shardId: number): Promise<void> {
    return this.call('barrier', [shardId]).then(() => undefined);
  }

  status(shardId: number): ShardStatus {
    const s = this.mirror.get(shardId);
    if (!s) throw new ShardlineError('UNKNOWN_SHARD', `shard ${shardId} is not run by worker ${this.index}`);
    return { ...s };
  }

  async close(resumable: boolean): Promise<Record<number, Session>> {
    this.closing = true;
    let sessions: Record<number, Session> = {};
    if (!this.exited) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new ShardlineError('WORKER_TIMEOUT', `worker ${this.index} did not close in time`)), CLOSE_TIMEOUT);
      });
      try {
        sessions = (await Promise.race([this.call('close', [resumable]), timeout])) as Record<number, Session>;
      } catch {
        // terminated below; its sockets die with it
      } finally {
        clearTimeout(timer);
      }
    }
    for (const ac of this.acquires.values()) ac.abort(new ShardlineError('ABORTED', 'cluster closed'));
    this.acquires.clear();
    if (!this.exited) await this.worker.terminate();
    this.worker.removeAllListeners();
    return sessions;
  }

  setPaused(paused: boolean): void {
    this.post({ t: 'pause', paused });
  }

  setDebug(enabled: boolean): void {
    this.post({ t: 'debug', enabled });
  }

  private call(method: CallMethod, args: unknown[]): Promise<unknown> {
    if (this.exited) {
      return Promise.reject(new GatewayError('WORKER_EXITED', `worker ${this.index} is not running${this.crash ? ` (${this.crash})` : ''}`));
    }
    const id = this.nextCall++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.post({ t: 'call', id, method, args });
    });
  }

  private post(msg: ToWorker): void {
    if (!this.exited) this.worker.postMessage(msg);
  }

  private onMessage(msg: FromWorker): void {
    switch (msg.t) {
      case 'batch':
        this.onBatch(msg.data);
        this.post({ t: 'ack' });
        return;
      case 'result': {
        const p = this.calls.get(msg.id);
        this.calls.delete(msg.id);
        if (msg.ok) p?.resolve(msg.value);
        else p?.reject(fromWire(msg.error));
        return;
      }
      case 'acquire': {
        const ac = new AbortController();
        this.acquires.set(msg.id, ac);
        this.queue.acquire(msg.shardId, ac.signal).then(
          () => {
            if (this.acquires.delete(msg.id)) this.post({ t: 'grant', id: msg.id });
          },
          (err: unknown) => {
            if (this.acquires.delete(msg.id)) this.post({ t: 'deny', id: msg.id, error: toWire(err) });
          },
        );
        return;
      }
      case 'abort': {
        const ac = this.acquires.get(msg.id);
        this.acquires.delete(msg.id);
        ac?.abort(new ShardlineError('ABORTED', 'identify wait cancelled'));
        return;
      }
    }
  }

  private onBatch(data: string): void {
    const sink = this.sink;
    let start = 0;
    while (start < data.length) {
      let end = data.indexOf('\n', start);
      if (end === -1) end = data.length;
      const kind = data[start];
      if (kind === RAW_LINE) this.onRaw(data, start + 1, end);
      else this.onItem(JSON.parse(data.slice(start + 1, end)) as BatchItem, sink);
      start = end + 1;
    }
  }

  /** A dispatch forwarded unparsed: `shardId \t sequence \t type \t payload`. */
  private onRaw(data: string, from: number, to: number): void {
    const t1 = data.indexOf('\t', from);
    const t2 = data.indexOf('\t', t1 + 1);
    const t3 = data.indexOf('\t', t2 + 1);
    const shardId = Number(data.slice(from, t1));
    const sequence = Number(data.slice(t1 + 1, t2));
    const type = data.slice(t2 + 1, t3);
    let payload: { d: unknown };
    try {
      payload = JSON.parse(data.slice(t3 + 1, to)) as { d: unknown };
    } catch (err) {
      this.sink.error(new DecodeError(`shard ${shardId}: dispatch ${type} seq ${sequence} is not valid JSON; dropped`, { cause: err }), shardId);
      return;
    }
    const m = this.mirror.get(shardId);
    if (m && sequence > m.sequence) m.sequence = sequence;
    this.sink.dispatch({ shardId, type, sequence, data: payload.d } as DispatchEvent);
  }

  private onItem(item: BatchItem, sink: ShardSink): void {
    switch (item[0]) {
      case 'd': {
        const m = this.mirror.get(item[1].shardId);
        if (m && item[1].sequence > m.sequence) m.sequence = item[1].sequence;
        sink.dispatch(item[1]);
        break;
      }
      case 'r':
        sink.ready(item[1], item[2]);
        break;
      case 'R':
        sink.resumed(item[1], item[2]);
        break;
      case 'c': {
        const m = this.mirror.get(item[1].shardId);
        if (m) m.state = item[1].to;
        sink.stateChange(item[1]);
        break;
      }
      case 'x':
        sink.disconnected(item[1]);
        break;
      case 'e':
        sink.error(fromWire(item[2]), item[1]);
        break;
      case 'g':
        sink.debug(item[1]);
        break;
      case 's':
        this.applyStatus(item[1]);
        break;
    }
  }

  private applyStatus(row: StatusRow): void {
    const [id, state, latency, sessionId, sequence, reconnects, identifies, resumes, lastCloseCode, guilds, error, io] = row;
    const s: ShardStatus = { id, state, latency, sessionId, sequence, reconnects, identifies, resumes, lastCloseCode, worker: this.index };
    if (guilds !== null) s.guilds = guilds;
    if (error !== null) s.error = error;
    if (io !== null) s.io = io;
    this.mirror.set(id, s);
  }

  private onExit(code: number): void {
    this.exited = true;
    const why = `worker ${this.index} exited (code ${code})${this.crash ? `: ${this.crash}` : ''}`;
    for (const p of this.calls.values()) p.reject(new GatewayError('WORKER_EXITED', why));
    this.calls.clear();
    for (const ac of this.acquires.values()) ac.abort(new ShardlineError('ABORTED', why));
    this.acquires.clear();
    if (this.closing) return;
    // The worker died on its own: its shards are gone. Report each one as stopped.
    for (const m of this.mirror.values()) {
      if (m.state === 'closed' || m.state === 'fatal') continue;
      const from = m.state;
      m.state = 'fatal';
      m.error = why;
      this.sink.stateChange({ shardId: m.id, from, to: 'fatal', reason: why });
      this.sink.error(new GatewayError('WORKER_EXITED', `shard ${m.id}: ${why}`, { shardId: m.id }), m.id);
    }
  }
}
