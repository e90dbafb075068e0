/**
 * Main-thread side of one shard worker: spawns it, turns its event batches back into cluster events, answers
 * its identify-queue requests from the cluster's single queue (lanes are global), routes commands to it and
 * mirrors its shards' status so `cluster.status()` stays synchronous.
 *
 * It is also the worker's supervisor: when the thread exits without being asked to, a new one is started with
 * the same shards after a back-off, and each shard resumes the session the main thread knows, from the last
 * dispatch the main thread was given (what the dead worker had read but not posted is replayed by the gateway;
 * what the replay repeats is dropped here). Too many exits within the policy's window stop the shards instead.
 * @packageDocumentation
 */
import { Worker } from 'node:worker_threads';
import { scaledClock, type Clock, type TimerHandle } from '../clock.js';
import { DecodeError, GatewayError, SendError, ShardlineError, redact } from '../errors.js';
import type { DispatchEvent, ShardEvent } from '../events.js';
import { trackGuilds } from '../cluster-group.js';
import type { NoncedMemberRequest } from '../cluster-commands.js';
import { MemberRequest } from '../members.js';
import type { IdentifyQueue } from '../queue.js';
import type { Session } from '../session.js';
import type { Shard, ShardOptions } from '../shard.js';
import type { ShardState } from '../state.js';
import type { GatewayCommand, ShardBackend, ShardSink, ShardStatus, WorkerExitEvent } from '../cluster-status.js';
import type { HandlerLogEvent } from '../handler/define.js';
import type { RouteMethod } from '../handler/runner.js';
import { HandledMarks, sessionMark } from './marks.js';
import {
  ACK_LINE,
  COUNT_LINE,
  HELD_LINE,
  RECORD_LINE,
  eventFromWire,
  fromWire,
  toWire,
  RAW_LINE,
  type BatchItem,
  type CallMethod,
  type FromWorker,
  type StatusRow,
  type ToWorker,
  type WorkerSpec,
} from './protocol.js';

/** How long `close()` waits for a worker to close its shards before terminating it, real ms. */
const CLOSE_TIMEOUT = 10_000;
/** Virtual ms a member request waits here beyond the worker shard's own `memberRequestTimeout`. */
const MEMBER_TIMEOUT_MARGIN = 5_000;

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
function spawnWorker(spec: WorkerSpec): Worker {
  const here = import.meta.url;
  const name = `shardline-worker-${spec.index}`;
  if (!here.endsWith('.ts')) return new Worker(new URL('./entry.js', here), { workerData: spec, name });
  const api = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./entry.ts', here).href;
  const boot = `import(${JSON.stringify(api)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, workerData: spec, name });
}

/** When and how often a worker that exited on its own is started again (see `ClusterOptions.workerRestart`). */
export interface WorkerRestartPolicy {
  /** Respawns allowed within `windowMs`; the exit after that many stops the worker's shards. */
  maxRestarts: number;
  /** Virtual ms over which exits are counted. */
  windowMs: number;
  /** Virtual ms before the first respawn; doubled for every further exit within the window. */
  initialDelay: number;
  /** Upper bound of the back-off, virtual ms. */
  maxDelay: number;
}

/** How a {@link WorkerHost} reports to its cluster and supervises its thread. */
export interface WorkerHostOptions {
  /** The cluster's clock: the respawn back-off and the exit window run on it. Default `scaledClock(spec.clockScale)`. */
  clock?: Clock;
  /** null (default): an unexpected exit stops the worker's shards (`fatal`, `WORKER_EXITED`). */
  restart?: WorkerRestartPolicy | null;
  /** Told about every exit the host did not ask for, once its shards' states say what happens to them. */
  onExit?: (event: WorkerExitEvent) => void;
  /** A cluster-level debug line. */
  debug?: (message: string) => void;
  /** Handler mode (`spec.handler` set): where the handler's posts, log lines and cluster-level commands go. */
  handler?: HostHandlerLink;
}

/** The main thread's side of a worker's handler. */
export interface HostHandlerLink {
  message(shardId: number | null, worker: number | null, value: unknown): void;
  log(level: HandlerLogEvent['level'], shardId: number | null, worker: number | null, message: string): void;
  route(method: RouteMethod, args: unknown[]): Promise<unknown>;
  /** The handler finished a dispatch of the shard (counted by metrics). */
  handled(shardId: number, type: string): void;
  /** Reshard, running set: the handler finished a dispatch of routing key `key` and fingerprint `fp`. */
  recorded?(key: string, fp: number): void;
  /** Reshard, new set: a dispatch waits in its thread for a verdict ({@link WorkerHost.verdict}). */
  held?(shardId: number, ticket: number, type: string, key: string, fp: number, burst: boolean): void;
}

interface Pending {
  method: CallMethod;
  args: unknown[];
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/** The session of a shard as the main thread knows it: from READY / RESUMED and the dispatches it was given. */
interface Delivered {
  sessionId: string;
  resumeUrl: string;
  /** Sequence of the last dispatch of this session delivered to the main thread. */
  sequence: number;
}

/** Counters of a shard's previous worker threads, added to the new thread's status rows so they never go back. */
interface Carried {
  reconnects: number;
  identifies: number;
  resumes: number;
  filtered: number;
  payloadsSent: Record<number, number>;
  heartbeatAcks: number;
  bytesIn: number;
  bytesOut: number;
}

const isStart = (m: CallMethod) => m === 'connect' || m === 'restart';

/** One worker thread running some of the cluster's shards. Implements the cluster's {@link ShardBackend}. */
export class WorkerHost implements ShardBackend {
  readonly index: number;
  /** Holds the shards' options, token included: private, so it never shows in `util.inspect` / JSON. */
  #spec: WorkerSpec;
  private worker: Worker;
  private readonly mirror = new Map<number, ShardStatus>();
  private readonly calls = new Map<number, Pending>();
  private readonly acquires = new Map<number, AbortController>();
  /** Member requests made through this host, by nonce: their chunks arrive in the batches. */
  private readonly members = new Map<string, MemberRequest>();
  private nextCall = 1;
  /** The current thread is not running (it exited, and was not respawned yet or will not be). */
  private exited = false;
  private closing = false;
  private crash: string | null = null;
  /** Handler mode: the thread could not load the handler module (not respawned: a new thread would fail alike). */
  private loadFailed = false;
  private readonly clock: Clock;
  private readonly policy: WorkerRestartPolicy | null;
  private readonly reportExit: (event: WorkerExitEvent) => void;
  private readonly debugLine: (message: string) => void;
  readonly #tokens: string[];
  private readonly delivered = new Map<number, Delivered | null>();
  /** Guilds of each shard, from the events this thread parses (READY, GUILD_CREATE, GUILD_DELETE). */
  private readonly guilds = new Map<number, Set<string> | null>();
  private readonly carried = new Map<number, Carried>();
  /** While the thread is down and a respawn is scheduled: calls waiting for the new thread. */
  private readonly backlog: Pending[] = [];
  /** Commands in `backlog`, by shard (bounded like a shard's own queue: `maxQueuedCommands`). */
  private readonly heldSends = new Map<number, number>();
  /** Shards the new thread connects: they were running, or a connect / restart waits for them. */
  private readonly relaunch = new Set<number>();
  /** Shards that were fatal or closed when their thread died: the new thread's idle rows do not replace them. */
  private readonly frozen = new Set<number>();
  private respawnTimer: TimerHandle | undefined;
  /** `clock.now()` of the unexpected exits within the policy's window. */
  private readonly exits: number[] = [];
  private restarts = 0;
  private paused = false;
  private debugging = false;
  private readonly link: HostHandlerLink | null;
  /** Handler mode: the current thread's shared handled marks, and the session marks seen from it, by shard. */
  private marks: HandledMarks | null = null;
  private readonly epochs = new Map<number, number>();
  /** Reshard, new set: verdicts not posted yet (flat triples), and the turn that posts them. */
  private verdicts: number[] = [];
  private verdictTurn: NodeJS.Immediate | null = null;

  constructor(
    spec: WorkerSpec,
    private readonly sink: ShardSink,
    private readonly queue: IdentifyQueue,
    options: WorkerHostOptions = {},
  ) {
    this.index = spec.index;
    this.#spec = spec;
    this.clock = options.clock ?? scaledClock(spec.clockScale);
    this.policy = options.restart ?? null;
    this.reportExit = options.onExit ?? (() => undefined);
    this.debugLine = options.debug ?? (() => undefined);
    this.link = spec.handler ? (options.handler ?? null) : null;
    const tokens = new Set<string>();
    for (const id of spec.ids) {
      const o = spec.shardOptions[id];
      if (typeof o?.token === 'string') tokens.add(o.token);
      const s = o?.session;
      this.delivered.set(id, s ? { sessionId: s.sessionId, resumeUrl: s.resumeUrl, sequence: s.sequence } : null);
      this.mirror.set(id, { id, state: 'idle', latency: null, sessionId: null, sequence: 0, reconnects: 0, identifies: 0, resumes: 0, lastCloseCode: null, worker: spec.index });
    }
    this.#tokens = [...tokens];
    this.worker = this.spawn(spec);
  }

  local(): Shard | undefined {
    return undefined;
  }

  connect(shardId: number): Promise<void> {
    return this.call('connect', [shardId]).then(() => undefined);
  }

  send(shardId: number, payload: GatewayCommand): Promise<void> {
    if (this.frozen.has(shardId)) {
      const state = this.mirror.get(shardId)?.state ?? 'closed';
      return Promise.reject(new SendError('SHARD_CLOSED', `shard ${shardId} is ${state}; connect() it again before sending`));
    }
    return this.call('send', [shardId, { op: payload.op, d: payload.d }]).then(() => undefined);
  }

  /**
   * The request lives here, in the main thread: the worker's shard sends op 8 and streams the chunks back in its
   * batches. Its timeout is the shard's plus a margin, so the worker's own (authoritative) timeout normally wins.
   */
  requestGuildMembers(shardId: number, request: NoncedMemberRequest): MemberRequest {
    const nonce = request.nonce;
    const timeout = (this.#spec.shardOptions[shardId]?.memberRequestTimeout ?? 30_000) + MEMBER_TIMEOUT_MARGIN;
    const req = new MemberRequest(nonce, this.clock, timeout, () => {
      if (this.members.get(nonce) === req) this.members.delete(nonce);
    });
    if (this.frozen.has(shardId)) {
      req.fail(new SendError('SHARD_CLOSED', `shard ${shardId} is ${this.mirror.get(shardId)?.state ?? 'closed'}; connect() it again before sending`));
      return req;
    }
    this.members.set(nonce, req);
    this.call('members', [shardId, request]).then(
      () => req.fail(new ShardlineError('MEMBER_REQUEST_INCOMPLETE', `member request ${nonce}: worker ${this.index} finished it without every chunk`)),
      (err: Error) => req.fail(err),
    );
    return req;
  }

  restart(shardId: number, resume: boolean): Promise<void> {
    return this.call('restart', [shardId, resume]).then(() => undefined);
  }

  barrier(shardId: number): Promise<void> {
    return this.call('barrier', [shardId]).then(() => undefined);
  }

  state(shardId: number): ShardState {
    return this.mirror.get(shardId)?.state ?? 'idle';
  }

  status(shardId: number): ShardStatus {
    const s = this.mirror.get(shardId);
    if (!s) throw new ShardlineError('UNKNOWN_SHARD', `shard ${shardId} is not run by worker ${this.index}`);
    return { ...s };
  }

  async close(resumable: boolean): Promise<Record<number, Session>> {
    this.closing = true;
    const down = this.respawnTimer !== undefined;
    this.clock.clearTimeout(this.respawnTimer);
    this.respawnTimer = undefined;
    for (const p of this.takeBacklog()) {
      const why = `shard ${p.args[0] as number} was closed before its worker ${this.index} was respawned`;
      p.reject(p.method === 'send' ? new SendError('SHARD_CLOSED', why) : new GatewayError('SHARD_CLOSED', why));
    }
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
    } else if (down) {
      // Closed during the back-off: the sessions worth resuming are the ones the main thread was given.
      for (const id of this.relaunch) {
        const d = this.delivered.get(id);
        if (resumable && d) sessions[id] = { sessionId: d.sessionId, sequence: d.sequence, resumeUrl: d.resumeUrl };
      }
      this.relaunch.clear();
      for (const m of this.mirror.values()) {
        if (m.state === 'closed' || m.state === 'fatal') continue;
        const from = m.state;
        m.state = 'closed';
        const reason = resumable ? 'closed by user (resumable)' : 'closed by user';
        this.sink.event({ kind: 'state', shardId: m.id, from, to: 'closed', cause: { kind: 'close', resumable, reason } });
      }
    }
    for (const ac of this.acquires.values()) ac.abort(new ShardlineError('ABORTED', 'cluster closed'));
    this.acquires.clear();
    for (const req of [...this.members.values()]) req.fail(new SendError('SHARD_CLOSED', `the shards of worker ${this.index} were closed`));
    if (!this.exited) await this.worker.terminate();
    this.worker.removeAllListeners();
    if (this.verdictTurn) clearImmediate(this.verdictTurn);
    this.verdictTurn = null;
    return sessions;
  }

  setPaused(paused: boolean): void {
    this.paused = paused;
    this.post({ t: 'pause', paused });
  }

  /** Whether the thread runs a handler. */
  get handling(): boolean {
    return this.#spec.handler !== undefined;
  }

  /** Reshard, new set: the verdict on a held dispatch (posted with the others of this turn). */
  verdict(shardId: number, ticket: number, handle: boolean): void {
    this.verdicts.push(shardId, ticket, handle ? 1 : 0);
    this.verdictTurn ??= setImmediate(() => this.postVerdicts());
  }

  private postVerdicts(): void {
    if (this.verdictTurn) clearImmediate(this.verdictTurn);
    this.verdictTurn = null;
    if (this.verdicts.length === 0) return;
    const v = this.verdicts;
    this.verdicts = [];
    this.post({ t: 'verdicts', v });
  }

  /** Reshard, new set: the overlap is over (a respawned thread starts ungated); the verdicts given so far go first. */
  ungate(): void {
    this.postVerdicts();
    this.setHandlerFlag('gated', false);
    this.post({ t: 'ungate' });
  }

  /** Reshard, running set: report each handled dispatch's key and fingerprint (a respawned thread too). */
  record(on: boolean): Promise<void> {
    this.setHandlerFlag('record', on);
    return this.exited ? Promise.resolve() : this.call('record', [on]).then(() => undefined);
  }

  /** Reshard, running set: stop handling (resolves once every fingerprint of what was handled has arrived), or go on. */
  freeze(on: boolean): Promise<void> {
    return this.exited ? Promise.resolve() : this.call('freeze', [on]).then(() => undefined);
  }

  private setHandlerFlag(flag: 'gated' | 'record', on: boolean): void {
    const h = this.#spec.handler;
    if (h) this.#spec = { ...this.#spec, handler: { ...h, [flag]: on } };
  }

  setDebug(enabled: boolean): void {
    this.debugging = enabled;
    this.post({ t: 'debug', enabled });
  }

  /**
   * End the worker thread abruptly, as a crash would: its sockets die with it, and the exit is handled as an
   * unexpected one (respawn, or stop the shards, per the restart policy). For tests and failure drills.
   * @internal
   */
  async terminate(): Promise<void> {
    if (this.exited || this.closing) return;
    await this.worker.terminate();
  }

  private spawn(spec: WorkerSpec): Worker {
    if (spec.handler) {
      // A fresh buffer per thread: epochs count from 0 on both sides again.
      this.marks = new HandledMarks(spec.ids);
      this.epochs.clear();
      spec = { ...spec, handler: { ...spec.handler, marks: this.marks.buffer } };
    }
    const worker = spawnWorker(spec);
    worker.on('message', (msg: FromWorker) => {
      if (this.worker === worker) this.onMessage(msg);
    });
    worker.on('error', (err: Error) => {
      if (this.worker === worker) this.crash = this.redact(err.message);
    });
    worker.on('exit', (code: number) => {
      if (this.worker === worker) this.onExit(code);
    });
    return worker;
  }

  private call(method: CallMethod, args: unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const p: Pending = { method, args, resolve, reject };
      if (!this.exited) {
        if (isStart(method)) this.frozen.delete(args[0] as number);
        const id = this.nextCall++;
        this.calls.set(id, p);
        this.post({ t: 'call', id, method, args });
      } else if (this.respawnTimer !== undefined && !this.closing) {
        this.hold(p);
      } else {
        reject(new GatewayError('WORKER_EXITED', `worker ${this.index} is not running${this.crash ? ` (${this.crash})` : ''}`));
      }
    });
  }

  /** A call made (or in flight) while the thread is down and will be respawned. */
  private hold(p: Pending): void {
    const shardId = p.args[0] as number;
    if (isStart(p.method)) {
      // Settled by the new thread's connect of this shard.
      this.relaunch.add(shardId);
      this.frozen.delete(shardId);
      if (p.method === 'restart' && p.args[1] === false) this.delivered.set(shardId, null);
      this.backlog.push(p);
    } else if (p.method === 'barrier') {
      p.reject(new ShardlineError('NOT_READY', `shard ${shardId} is reconnecting (worker ${this.index} is being respawned)`));
    } else if (p.method === 'send' && this.frozen.has(shardId)) {
      p.reject(new SendError('SHARD_CLOSED', `shard ${shardId} is ${this.mirror.get(shardId)?.state ?? 'closed'}; connect() it again before sending`));
    } else {
      // A command waits while its shard reconnects, as it does within a thread, and as boundedly.
      const held = this.heldSends.get(shardId) ?? 0;
      const limit = this.#spec.shardOptions[shardId]?.maxQueuedCommands ?? 1000;
      if (held >= limit) {
        p.reject(new SendError('QUEUE_FULL', `${held} commands are already waiting for shard ${shardId} (its worker is being respawned); slow down or raise maxQueuedCommands`));
        return;
      }
      this.heldSends.set(shardId, held + 1);
      this.backlog.push(p);
    }
  }

  private takeBacklog(): Pending[] {
    this.heldSends.clear();
    return this.backlog.splice(0);
  }

  private post(msg: ToWorker): void {
    if (!this.exited) this.worker.postMessage(msg);
  }

  private redact(text: string): string {
    for (const t of this.#tokens) text = redact(text, t);
    return text;
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
        // Request ids restart at 1 in a respawned thread: only settle the request this controller belongs to.
        const mine = () => this.acquires.get(msg.id) === ac && this.acquires.delete(msg.id);
        this.queue.acquire(msg.shardId, ac.signal).then(
          () => {
            if (mine()) this.post({ t: 'grant', id: msg.id });
          },
          (err: unknown) => {
            if (mine()) this.post({ t: 'deny', id: msg.id, error: toWire(err) });
          },
        );
        return;
      }
      case 'loadFailed':
        this.loadFailed = true;
        this.crash = this.redact(`${msg.error.code ?? msg.error.name}: ${msg.error.message}`);
        return;
      case 'route': {
        const id = msg.id;
        const worker = this.worker;
        const answer = (m: ToWorker) => {
          if (this.worker === worker) this.post(m);
        };
        const run = this.link ? this.link.route(msg.method, msg.args) : Promise.reject(new ShardlineError('NOT_SUPPORTED', 'no handler link'));
        run.then(
          (value) => answer({ t: 'routed', id, ok: true, value: value ?? undefined }),
          (err: unknown) => answer({ t: 'routed', id, ok: false, error: toWire(err) }),
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
      else if (kind === ACK_LINE) this.onAck(data, start + 1, end);
      else if (kind === COUNT_LINE) this.onCount(data.slice(start + 1, end));
      else if (kind === HELD_LINE || kind === RECORD_LINE) this.onReshardLine(kind, data.slice(start + 1, end));
      else this.onItem(JSON.parse(data.slice(start + 1, end)) as BatchItem, sink);
      start = end + 1;
    }
  }

  /**
   * Whether a dispatch is new to the main thread, and if so record it as the last one delivered of its session.
   * A respawned thread resumes from the last delivered sequence; whatever its replay repeats is dropped here.
   */
  private fresh(shardId: number, sequence: number): boolean {
    const d = this.delivered.get(shardId);
    if (!d) return true;
    if (sequence <= d.sequence) return false;
    d.sequence = sequence;
    return true;
  }

  /**
   * Handler mode: the worker's handler finished the shard's dispatches up to `sequence` (a line sent with posts
   * or before a session mark; the other positions are in the shared marks, read in {@link onExit}). The session a
   * respawned worker resumes starts after it: what the handler had not finished is replayed and handled again.
   */
  private onAck(data: string, from: number, to: number): void {
    const t1 = data.indexOf('\t', from);
    this.fresh(Number(data.slice(from, t1)), Number(data.slice(t1 + 1, to)));
  }

  /** Handler mode: `shardId \t type \t n …`, dispatches handled since the last count line (one `dispatchHandled` each). */
  private onCount(line: string): void {
    const link = this.link;
    if (!link) return;
    const f = line.split('\t');
    const shardId = Number(f[0]);
    for (let i = 1; i + 1 < f.length; i += 2) for (let n = Number(f[i + 1]); n > 0; n--) link.handled(shardId, f[i]!);
  }

  /** Reshard lines: a running-set fingerprint (`k`), or a new-set dispatch waiting for its verdict (`g`). */
  private onReshardLine(kind: string, line: string): void {
    const f = line.split('\t');
    if (kind === RECORD_LINE) this.link?.recorded?.(f.slice(2).join('\t'), Number(f[1]));
    else this.link?.held?.(Number(f[0]), Number(f[1]), f[4]!, f.slice(5).join('\t'), Number(f[3]), f[2] === '1');
  }

  /**
   * Handler mode, the thread has exited: move each shard's resume point to the last dispatch its handler finished,
   * when the shared mark belongs to the session this host knows (same count of session marks).
   */
  private settleMarks(): void {
    const marks = this.marks;
    if (!marks) return;
    for (const id of this.#spec.ids) {
      const { epoch, sequence } = marks.read(id);
      if (epoch === (this.epochs.get(id) ?? 0) && sequence > 0) this.fresh(id, sequence);
    }
  }

  /** A dispatch forwarded unparsed: `shardId \t sequence \t type \t payload`. */
  private onRaw(data: string, from: number, to: number): void {
    const t1 = data.indexOf('\t', from);
    const t2 = data.indexOf('\t', t1 + 1);
    const t3 = data.indexOf('\t', t2 + 1);
    const shardId = Number(data.slice(from, t1));
    const sequence = Number(data.slice(t1 + 1, t2));
    if (!this.fresh(shardId, sequence)) return;
    const type = data.slice(t2 + 1, t3);
    let payload: { d: unknown };
    try {
      payload = JSON.parse(data.slice(t3 + 1, to)) as { d: unknown };
    } catch (err) {
      this.sink.event({ kind: 'error', shardId, error: new DecodeError(`shard ${shardId}: dispatch ${type} seq ${sequence} is not valid JSON; dropped`, { cause: err }) });
      return;
    }
    const m = this.mirror.get(shardId);
    if (m && sequence > m.sequence) m.sequence = sequence;
    const e: ShardEvent = { kind: 'dispatch', shardId, event: { shardId, type, sequence, data: payload.d } as DispatchEvent };
    if (type === 'GUILD_CREATE' || type === 'GUILD_DELETE') this.guilds.set(shardId, trackGuilds(this.guilds.get(shardId) ?? null, e));
    this.sink.event(e);
  }

  private onItem(item: BatchItem, sink: ShardSink): void {
    if (item[0] === 's') {
      this.applyStatus(item[1]);
      return;
    }
    if (item[0] === 'm') {
      const chunk = item[1];
      if (chunk.nonce) this.members.get(chunk.nonce)?.push(chunk);
      return;
    }
    if (item[0] === 'p') {
      this.link?.message(item[1], this.index, item[2]);
      return;
    }
    if (item[0] === 'l') {
      this.link?.log(item[1], item[2], this.index, this.redact(item[3]));
      return;
    }
    const e = eventFromWire(item[1]);
    const id = e.shardId;
    if (this.marks && sessionMark(e)) this.epochs.set(id, (this.epochs.get(id) ?? 0) + 1);
    switch (e.kind) {
      case 'dispatch': {
        if (!this.fresh(id, e.event.sequence)) return;
        const m = this.mirror.get(id);
        if (m && e.event.sequence > m.sequence) m.sequence = e.event.sequence;
        break;
      }
      case 'ready':
        // A new session: its dispatches (READY itself first) start again from sequence 1.
        this.delivered.set(id, { sessionId: e.data.session_id, resumeUrl: e.data.resume_gateway_url, sequence: 0 });
        break;
      case 'resumed': {
        const d = this.delivered.get(id);
        if (!d || d.sessionId !== e.session.sessionId) this.delivered.set(id, { sessionId: e.session.sessionId, resumeUrl: e.session.resumeUrl, sequence: e.session.sequence });
        break;
      }
      case 'state': {
        // IDENTIFY starts a new session (sequences restart); a fatal shard has none left.
        if (e.to === 'identifying' || e.to === 'fatal') this.delivered.set(id, null);
        const m = this.mirror.get(id);
        if (m) m.state = e.to;
        break;
      }
      default:
        break;
    }
    // Handler mode: the worker sees every dispatch and counts the guilds itself (its status rows).
    if (!this.#spec.handler && (e.kind === 'dispatch' || e.kind === 'ready')) this.guilds.set(id, trackGuilds(this.guilds.get(id) ?? null, e));
    sink.event(e);
  }

  private applyStatus(row: StatusRow): void {
    const [id, state, latency, sessionId, sequence, reconnects, identifies, resumes, lastCloseCode, guilds, error, io] = row;
    if (this.frozen.has(id)) return;
    const s: ShardStatus = { id, state, latency, sessionId, sequence, reconnects, identifies, resumes, lastCloseCode, worker: this.index };
    const known = this.guilds.get(id);
    if (known) s.guilds = known.size;
    else if (guilds !== null) s.guilds = guilds;
    if (error !== null) s.error = error;
    if (io !== null) s.io = io;
    const c = this.carried.get(id);
    if (c) {
      s.reconnects += c.reconnects;
      s.identifies += c.identifies;
      s.resumes += c.resumes;
      if (s.io) {
        const sent = { ...s.io.payloadsSent };
        for (const [op, n] of Object.entries(c.payloadsSent)) sent[Number(op)] = (sent[Number(op)] ?? 0) + n;
        s.io = {
          ...s.io,
          filtered: s.io.filtered + c.filtered,
          payloadsSent: sent,
          heartbeatAcks: s.io.heartbeatAcks + c.heartbeatAcks,
          inflate: { ...s.io.inflate, bytesIn: s.io.inflate.bytesIn + c.bytesIn, bytesOut: s.io.inflate.bytesOut + c.bytesOut },
        };
      }
    }
    this.mirror.set(id, s);
  }

  /** Remember a shard's counters so far: the next thread's rows start from zero. */
  private carry(m: ShardStatus): void {
    const io = m.io;
    this.carried.set(m.id, {
      reconnects: m.reconnects,
      identifies: m.identifies,
      resumes: m.resumes,
      filtered: io?.filtered ?? 0,
      payloadsSent: { ...(io?.payloadsSent ?? {}) },
      heartbeatAcks: io?.heartbeatAcks ?? 0,
      bytesIn: io?.inflate.bytesIn ?? 0,
      bytesOut: io?.inflate.bytesOut ?? 0,
    });
  }

  private onExit(code: number): void {
    this.exited = true;
    this.worker.removeAllListeners();
    this.settleMarks();
    const why = `worker ${this.index} exited (code ${code})${this.crash ? `: ${this.crash}` : ''}`;
    for (const ac of this.acquires.values()) ac.abort(new ShardlineError('ABORTED', why));
    this.acquires.clear();
    const inFlight = [...this.calls.values()];
    this.calls.clear();
    const policy = this.closing ? null : this.policy;
    if (policy) {
      const now = this.clock.now();
      this.exits.push(now);
      while (this.exits.length > 0 && this.exits[0]! <= now - policy.windowMs) this.exits.shift();
    }
    const restarting = policy !== null && this.exits.length <= policy.maxRestarts && !this.loadFailed;
    for (const p of inFlight) {
      if (restarting && isStart(p.method)) this.hold(p);
      else p.reject(new GatewayError('WORKER_EXITED', p.method === 'send' ? `${why}; the command may not have been sent` : why));
    }
    if (this.closing) return;
    if (!restarting) {
      this.stop(why, code);
      return;
    }
    this.restarts++;
    const delay = Math.min(policy.maxDelay, policy.initialDelay * 2 ** (this.exits.length - 1));
    for (const m of this.mirror.values()) {
      if (this.relaunch.has(m.id) || m.state === 'idle') continue;
      if (m.state === 'fatal' || m.state === 'closed') this.frozen.add(m.id);
      else this.relaunch.add(m.id);
    }
    const shards = [...this.relaunch].sort((a, b) => a - b);
    for (const id of shards) {
      const m = this.mirror.get(id)!;
      const action = this.delivered.get(id) ? 'resume' : 'identify';
      if (m.state !== 'idle' && m.state !== 'fatal' && m.state !== 'closed') {
        // The connection died with the thread: one more reconnect, reported like any other lost connection.
        m.reconnects++;
        this.sink.event({ kind: 'disconnected', shardId: id, code: null, cause: 'worker-exit', label: why, action });
        if (m.state !== 'reconnecting') {
          const from = m.state;
          m.state = 'reconnecting';
          const reason = `${why}; ${action} in a new worker in ${delay} ms`;
          this.sink.event({ kind: 'state', shardId: id, from, to: 'reconnecting', cause: { kind: 'worker-exit', resumable: action === 'resume', reason } });
        }
      }
    }
    for (const m of this.mirror.values()) this.carry(m);
    this.respawnTimer = this.clock.setTimeout(() => this.respawn(), delay);
    this.reportExit({ worker: this.index, code, reason: why, restarting: true, restarts: this.restarts, recentExits: this.exits.length, delay, shards });
  }

  /** Start a new thread with the same shards; the ones that were running resume what the main thread was given. */
  private respawn(): void {
    this.respawnTimer = undefined;
    if (this.closing) return;
    const shardOptions: Record<number, Partial<ShardOptions>> = {};
    for (const id of this.#spec.ids) {
      const d = this.delivered.get(id);
      shardOptions[id] = { ...this.#spec.shardOptions[id], session: d ? { sessionId: d.sessionId, sequence: d.sequence, resumeUrl: d.resumeUrl } : null };
    }
    this.#spec = { ...this.#spec, shardOptions };
    this.exited = false;
    this.crash = null;
    this.worker = this.spawn(this.#spec);
    if (this.paused) this.post({ t: 'pause', paused: true });
    if (this.debugging) this.post({ t: 'debug', enabled: true });
    const ids = [...this.relaunch].sort((a, b) => a - b);
    this.relaunch.clear();
    const waiting = this.takeBacklog();
    for (const id of ids) {
      const chained = waiting.filter((p) => isStart(p.method) && p.args[0] === id);
      this.call('connect', [id]).then(
        () => {
          for (const p of chained) p.resolve(undefined);
        },
        (err: Error) => {
          // The shard reports its own failure (state `fatal`, `shardError`); a caller waiting for it is told too.
          for (const p of chained) p.reject(err);
        },
      );
    }
    for (const p of waiting) if (!isStart(p.method)) this.call(p.method, p.args).then(p.resolve, p.reject);
    const resuming = ids.filter((id) => this.delivered.get(id)).length;
    this.debugLine(`worker ${this.index} respawned (restart ${this.restarts}): ${ids.length} shards reconnecting, ${resuming} of them resuming`);
  }

  /** The thread is gone for good (restarts off, or too many exits): its shards stop, as fatal. */
  private stop(why: string, code: number): void {
    const policy = this.policy;
    const reason = this.loadFailed
      ? `${why}; its shards are stopped (a new worker would fail to load the handler alike: fix the module, then connect() them again)`
      : policy
        ? `${why}; worker ${this.index} kept crashing (${this.exits.length} exits within ${policy.windowMs / 1000} s, more than workerRestart.maxRestarts = ${policy.maxRestarts}): its shards are stopped`
        : why;
    for (const p of this.takeBacklog()) p.reject(new GatewayError('WORKER_EXITED', reason));
    this.relaunch.clear();
    const stopped: number[] = [];
    for (const m of this.mirror.values()) {
      if (m.state === 'closed' || m.state === 'fatal') continue;
      const from = m.state;
      m.state = 'fatal';
      m.error = reason;
      if (from !== 'idle') this.sink.event({ kind: 'disconnected', shardId: m.id, code: null, cause: 'worker-exit', label: why, action: 'fatal' });
      this.sink.event({ kind: 'state', shardId: m.id, from, to: 'fatal', cause: { kind: 'worker-exit', resumable: false, reason } });
      this.sink.event({ kind: 'error', shardId: m.id, error: new GatewayError('WORKER_EXITED', `shard ${m.id}: ${reason}`, { shardId: m.id }) });
      stopped.push(m.id);
    }
    this.reportExit({ worker: this.index, code, reason, restarting: false, restarts: this.restarts, recentExits: this.exits.length, delay: null, shards: stopped });
  }
}
