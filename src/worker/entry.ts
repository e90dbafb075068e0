/**
 * Worker-thread side of a cluster: runs a {@link ShardGroup} (sockets, inflate, header scan, filtering and
 * parsing all happen here), batches everything the shards report during one event-loop turn into one JSON
 * string for the main thread, asks the main thread's identify queue for IDENTIFY turns, and executes the
 * commands routed to it. Started by {@link WorkerHost}; not meant to be imported.
 * @packageDocumentation
 */
import { parentPort, workerData } from 'node:worker_threads';
import { scaledClock } from '../clock.js';
import { ShardGroup } from '../cluster-group.js';
import type { NoncedMemberRequest } from '../cluster-commands.js';
import type { ShardSink } from '../cluster-status.js';
import type { IdentifyQueue } from '../queue.js';
import type { ShardOptions } from '../shard.js';
import type { DispatchEvent } from '../events.js';
import { HandlerError, ShardlineError, redact } from '../errors.js';
import { HandlerRunner, loadHandler, type RouteMethod } from '../handler/runner.js';
import type { ShardEvent } from '../events.js';
import { HandledMarks, sessionMark } from './marks.js';
import {
  ACK_LINE,
  COUNT_LINE,
  HELD_LINE,
  RECORD_LINE,
  eventToWire,
  fromWire,
  toWire,
  ITEM_LINE,
  RAW_LINE,
  type BatchItem,
  type FromWorker,
  type StatusRow,
  type ToWorker,
  type WorkerSpec,
} from './protocol.js';

/** Real ms between status refreshes of every shard (latency and sequence change without events). */
const STATUS_EVERY = 1000;

if (!parentPort) throw new Error('shardline worker entry must run in a worker thread');
const port = parentPort;
const spec = workerData as WorkerSpec;
const clock = scaledClock(spec.clockScale);

// ---- batching -------------------------------------------------------------------------------------------

/** A batch is flushed at the end of the event-loop turn, or earlier when it reaches this many lines or chars. */
const BATCH_LINES = 512;
const BATCH_CHARS = 1 << 20;

/** Batches posted and not yet processed by the main thread, and the most that may be. */
let inFlight = 0;
const MAX_IN_FLIGHT = 16;
let flowPaused = false;
let mainPaused = false;
/** Handler mode: too many events wait for the handler. */
let handlerPaused = false;

function syncPaused(): void {
  group.setPaused(mainPaused || flowPaused || handlerPaused);
}

let lines: string[] = [];
let chars = 0;
let scheduled: NodeJS.Immediate | null = null;
const dirty = new Set<number>();

function add(line: string, shardId: number): void {
  lines.push(line);
  chars += line.length;
  dirty.add(shardId);
  if (lines.length >= BATCH_LINES || chars >= BATCH_CHARS) flush();
  else scheduled ??= setImmediate(flush);
}

function push(item: BatchItem, shardId: number): void {
  add(ITEM_LINE + JSON.stringify(item), shardId);
}

/** A wanted dispatch, forwarded unparsed: the main thread parses it, once. */
function pushRaw(shardId: number, type: string, sequence: number, json: string): void {
  if (json.includes('\n')) {
    // Compact JSON never has a raw newline; if a server sends pretty-printed JSON, fall back to an item line.
    const env = JSON.parse(json) as { d: unknown };
    push(['v', { kind: 'dispatch', shardId, event: { shardId, type, sequence, data: env.d } as DispatchEvent }], shardId);
    return;
  }
  add(`${RAW_LINE}${shardId}\t${sequence}\t${type}\t${json}`, shardId);
}

function flush(): void {
  if (scheduled) clearImmediate(scheduled);
  scheduled = null;
  if (lazy) clearTimeout(lazy);
  lazy = null;
  if (counts.size > 0) countLines();
  for (const id of dirty) {
    const row = statusRow(id);
    if (row) lines.push(ITEM_LINE + JSON.stringify(['s', row]));
  }
  dirty.clear();
  if (lines.length === 0) return;
  const data = lines.join('\n');
  lines = [];
  chars = 0;
  port.postMessage({ t: 'batch', data } satisfies FromWorker);
  // The positions this batch carried are the shards' handled marks now (the batch is on its way: a crash from
  // here on finds them in the host either way).
  if (marks && acked.size > 0) {
    for (const [id, sequence] of acked) marks.handled(id, sequence);
    acked.clear();
  }
  // Bounded: when the main thread falls this many batches behind, stop reading the sockets until it catches up.
  if (++inFlight >= MAX_IN_FLIGHT && !flowPaused) {
    flowPaused = true;
    syncPaused();
  }
}

/** Send a message after everything the shards reported before it. */
function post(msg: FromWorker): void {
  flush();
  port.postMessage(msg);
}

// ---- identify queue: the main thread's --------------------------------------------------------------------

const acquires = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
let nextAcquire = 1;
const remoteQueue: IdentifyQueue = {
  acquire(shardId, signal) {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const id = nextAcquire++;
      const onAbort = () => {
        if (!acquires.delete(id)) return;
        port.postMessage({ t: 'abort', id } satisfies FromWorker);
        reject(signal!.reason);
      };
      acquires.set(id, {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      port.postMessage({ t: 'acquire', id, shardId } satisfies FromWorker);
    });
  },
};

// ---- shards ---------------------------------------------------------------------------------------------

// ---- handler mode: the bot's handler runs here, on parsed dispatches; the main thread gets the rest ---------

const routes = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
let nextRoute = 1;

function route(method: RouteMethod, args: unknown[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const id = nextRoute++;
    routes.set(id, { resolve, reject });
    post({ t: 'route', id, method, args });
  });
}

/** A value the handler posted, as a batch line; null (and reported) when it cannot be serialised. */
function postLine(shardId: number | null, value: unknown): string | null {
  try {
    return ITEM_LINE + JSON.stringify(['p', shardId, value] satisfies BatchItem);
  } catch (err) {
    const id = shardId ?? spec.ids[0]!;
    const why = `ctx.post(): the value is not JSON-serialisable (${(err as Error).message}); it was not posted`;
    push(['v', eventToWire({ kind: 'error', shardId: id, error: new HandlerError('HANDLER_FAILED', why, { shardId: id, eventType: null }) })], id);
    return null;
  }
}

const handlerSpec = spec.handler;
/** Handler mode: where each shard's handler has got to, shared with the host (read there when this thread died). */
const marks = handlerSpec ? new HandledMarks(spec.ids, handlerSpec.marks) : null;
/**
 * Shards whose last handled position is in the unflushed batch (an `a` line after posts, or before a session
 * mark): their later positions go there too until it is posted, so the shared mark never runs ahead of posts
 * that could still be lost.
 */
const acked = new Map<number, number>();
/** Handled dispatches by shard and type since the last count line (the host's `dispatchHandled`, for metrics). */
const counts = new Map<number, Map<string, number>>();
/** Real ms a batch with nothing but counts may wait: counts are for metrics, and a flush per turn costs per event. */
const COUNT_EVERY = 25;
let lazy: NodeJS.Timeout | null = null;
function countLines(): void {
  for (const [id, byType] of counts) {
    let line = `${COUNT_LINE}${id}`;
    for (const [type, n] of byType) line += `\t${type}\t${n}`;
    lines.push(line);
    chars += line.length;
  }
  counts.clear();
}

/**
 * The handler finished a dispatch (and `posts` are what it posted meanwhile); `type` null: a reshard's verdict
 * dropped it (not counted). No message per event.
 */
function handled(shardId: number, sequence: number, type: string | null, posts: unknown[]): void {
  if (type !== null) {
    let byType = counts.get(shardId);
    if (!byType) counts.set(shardId, (byType = new Map()));
    byType.set(type, (byType.get(type) ?? 0) + 1);
  }
  if (posts.length === 0 && !acked.has(shardId)) {
    marks!.handled(shardId, sequence);
    if (scheduled === null) lazy ??= setTimeout(flush, COUNT_EVERY);
    return;
  }
  // The posts and the position go in one batch (no flush between them): both arrive, or neither.
  for (const value of posts) {
    const line = postLine(shardId, value);
    if (line === null) continue;
    lines.push(line);
    chars += line.length;
  }
  acked.set(shardId, sequence);
  add(`${ACK_LINE}${shardId}\t${sequence}`, shardId);
}

/** A shard's other event, in order after its handled dispatches; a session mark travels at once, position first. */
function passed(e: ShardEvent): void {
  const id = e.shardId;
  if (!sessionMark(e)) {
    push(['v', eventToWire(e)], id);
    return;
  }
  const at = marks!.read(id).sequence;
  if (at > 0 && !acked.has(id)) add(`${ACK_LINE}${id}\t${at}`, id);
  push(['v', eventToWire(e)], id);
  flush(); // the position and the mark are posted; only then does the shared slot start the new epoch
  marks!.mark(id);
}

const runner: HandlerRunner | null = handlerSpec
  ? new HandlerRunner(loadHandler(handlerSpec.url), {
      worker: spec.index,
      handlerErrors: handlerSpec.errors,
      redact: (text) => redact(text, (spec.shardOptions[spec.ids[0]!] as ShardOptions).token),
      pass: passed,
      done: handled,
      skipped: (shardId, sequence) => handled(shardId, sequence, null, []),
      // Reshard, running set: the fingerprint travels with the position (`acked`: the `a` line that `done` adds).
      recorded: (shardId, sequence, key, fp) => {
        acked.set(shardId, sequence);
        add(`${RECORD_LINE}${shardId}\t${fp}\t${key}`, shardId);
      },
      held: (shardId, ticket, type, key, fp, burst) => add(`${HELD_LINE}${shardId}\t${ticket}\t${burst ? 1 : 0}\t${fp}\t${type}\t${key}`, shardId),
      post: (shardId, value) => {
        const line = postLine(shardId, value);
        if (line !== null) add(line, shardId ?? spec.ids[0]!);
      },
      log: (level, shardId, message) => push(['l', level, shardId, message], shardId ?? spec.ids[0]!),
      exit: (error) => {
        push(['v', eventToWire({ kind: 'error', shardId: error.shardId, error })], error.shardId);
        flush();
        process.exit(1);
      },
      send: (shardId, payload): Promise<void> => group.send(shardId, payload),
      owns: (shardId) => spec.shardOptions[shardId] !== undefined,
      route,
      pause: (paused) => {
        handlerPaused = paused;
        syncPaused();
      },
      // A module that cannot be loaded ends the thread; the host stops its shards with the reason (a respawn would
      // fail alike). Reported here only: the connects waiting in `gate` never run.
      failed: (error) => {
        post({ t: 'loadFailed', error: toWire(error) });
        process.exit(1);
      },
    })
  : null;
if (handlerSpec?.gated) runner!.gated(true);
if (handlerSpec?.record) runner!.record(true);

/**
 * Every shard's one event stream goes to the main thread in order (wanted dispatches mostly as raw lines); in
 * handler mode, through the handler (dispatches stay here, the rest follows them in order).
 */
const sink: ShardSink = runner ? { event: (e) => runner.event(e) } : { event: (e) => push(['v', eventToWire(e)], e.shardId) };

const group: ShardGroup = new ShardGroup(
  spec.ids,
  (id) => ({
    ...(spec.shardOptions[id] as ShardOptions),
    clock,
    identifyQueue: remoteQueue,
    // Handler mode: dispatches are parsed by the shard (once) for the handler here.
    ...(runner ? {} : { forwardRaw: (type: string, sequence: number, json: string) => pushRaw(id, type, sequence, json) }),
  }),
  sink,
);

function statusRow(id: number): StatusRow | null {
  if (!spec.shardOptions[id]) return null;
  const s = group.status(id);
  return [s.id, s.state, s.latency, s.sessionId, s.sequence, s.reconnects, s.identifies, s.resumes, s.lastCloseCode, s.guilds ?? null, s.error ?? null, s.io ?? null];
}

const refresh = setInterval(() => {
  for (const id of spec.ids) dirty.add(id);
  flush();
}, STATUS_EVERY);
refresh.unref();

// ---- commands -----------------------------------------------------------------------------------------------

async function run(method: string, args: unknown[]): Promise<unknown> {
  switch (method) {
    case 'connect':
      // Handler mode: no shard connects before the module has loaded (the runner's gate; a load failure ends the thread).
      return runner ? runner.gate(() => group.connect(args[0] as number)) : group.connect(args[0] as number);
    case 'send':
      return group.send(args[0] as number, args[1] as { op: number; d: unknown });
    case 'members': {
      // Each chunk goes to the main thread in the batch stream; the result follows the last one (post() flushes).
      const shardId = args[0] as number;
      for await (const chunk of group.requestGuildMembers(shardId, args[1] as NoncedMemberRequest)) push(['m', chunk], shardId);
      return undefined;
    }
    case 'restart':
      return group.restart(args[0] as number, args[1] as boolean);
    case 'record':
      runner?.record(args[0] as boolean);
      return undefined;
    case 'freeze': // its result follows the fingerprints of everything handled before (post() flushes)
      return runner?.freeze(args[0] as boolean);
    case 'barrier': // its result is posted after the batch of everything read before the ACK (post() flushes)
      await group.barrier(args[0] as number);
      return runner?.drained(args[0] as number); // handler mode: and handled
    case 'close': {
      clearInterval(refresh);
      for (const p of acquires.values()) p.reject(new Error('worker closing'));
      acquires.clear();
      // Frozen at a reshard's switch: what it holds is dropped at once (its sockets may be paused by it).
      const dropped = runner?.frozen ? runner.close() : null;
      const sessions = await group.close(args[0] as boolean);
      await (dropped ?? runner?.close()); // every event read is handled before the sessions go back
      for (const r of routes.values()) r.reject(new ShardlineError('CLUSTER_CLOSED', 'the cluster closed before the command was carried out'));
      routes.clear();
      for (const id of spec.ids) dirty.add(id);
      return sessions;
    }
    default:
      throw new Error(`unknown method ${method}`);
  }
}

port.on('message', (msg: ToWorker) => {
  switch (msg.t) {
    case 'call':
      run(msg.method, msg.args).then(
        (value) => post({ t: 'result', id: msg.id, ok: true, value: value ?? undefined }),
        (err: unknown) => post({ t: 'result', id: msg.id, ok: false, error: toWire(err) }),
      );
      return;
    case 'grant':
      acquires.get(msg.id)?.resolve();
      acquires.delete(msg.id);
      return;
    case 'deny':
      acquires.get(msg.id)?.reject(fromWire(msg.error));
      acquires.delete(msg.id);
      return;
    case 'pause':
      mainPaused = msg.paused;
      syncPaused();
      return;
    case 'ack':
      inFlight--;
      if (flowPaused && inFlight <= MAX_IN_FLIGHT / 2) {
        flowPaused = false;
        syncPaused();
      }
      return;
    case 'routed': {
      const r = routes.get(msg.id);
      routes.delete(msg.id);
      if (msg.ok) r?.resolve(msg.value);
      else r?.reject(fromWire(msg.error));
      return;
    }
    case 'debug':
      group.setDebug(msg.enabled);
      return;
    case 'verdicts':
      for (let i = 0; i + 2 < msg.v.length; i += 3) runner?.decide(msg.v[i]!, msg.v[i + 1]!, msg.v[i + 2] === 1);
      return;
    case 'ungate':
      runner?.gated(false);
      return;
  }
});
