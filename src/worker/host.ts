/**
 * Main-thread side of one shard worker: spawns it (`spawn.ts`), routes commands and calls to it, and is its
 * supervisor. What the thread sends back is read by its {@link ShardMirror} (`shard-mirror.ts`: batches into
 * cluster events, the shards' status so `cluster.status()` stays synchronous); what it asks for (identify turns
 * from the cluster's single queue, handler routes) is answered by {@link ThreadRequests} (`requests.ts`).
 *
 * Supervision: when the thread exits without being asked to, a new one is started with
 * the same shards after a back-off, and each shard resumes the session the main thread knows, from the last
 * dispatch the main thread was given (what the dead worker had read but not posted is replayed by the gateway;
 * what the replay repeats is dropped here). Too many exits within the policy's window stop the shards instead.
 * @packageDocumentation
 */
import type { Worker } from 'node:worker_threads';
import { scaledClock, type Clock, type TimerHandle } from '../clock.js';
import { GatewayError, SendError, ShardlineError, redact } from '../errors.js';
import type { NoncedMemberRequest } from '../cluster-commands.js';
import { MemberRequest } from '../members.js';
import type { IdentifyQueue } from '../queue.js';
import type { Session } from '../session.js';
import type { Shard, ShardOptions } from '../shard.js';
import type { ShardState } from '../state.js';
import type { GatewayCommand, ShardBackend, ShardSink, ShardStatus, WorkerExitEvent } from '../cluster-status.js';
import type { HostHandlerLink, WorkerHostOptions, WorkerRestartPolicy } from './host-options.js';
import { fromWire, type CallMethod, type FromWorker, type ToWorker, type WorkerSpec } from './protocol.js';
import { ThreadRequests } from './requests.js';
import { type Delivered, ShardMirror } from './shard-mirror.js';
import { spawnWorker } from './spawn.js';

export { cloneableShardOptions } from './spawn.js';
export type { HostHandlerLink, WorkerHostOptions, WorkerRestartPolicy } from './host-options.js';

/** How long `close()` waits for a worker to close its shards before terminating it, real ms. */
const CLOSE_TIMEOUT = 10_000;
/** Virtual ms a member request waits here beyond the worker shard's own `memberRequestTimeout`. */
const MEMBER_TIMEOUT_MARGIN = 5_000;

interface Pending {
  method: CallMethod;
  args: unknown[];
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

const isStart = (m: CallMethod) => m === 'connect' || m === 'restart';

/** One worker thread running some of the cluster's shards. Implements the cluster's {@link ShardBackend}. */
export class WorkerHost implements ShardBackend {
  readonly index: number;
  /** Holds the shards' options, token included: private, so it never shows in `util.inspect` / JSON. */
  #spec: WorkerSpec;
  private worker: Worker;
  /** The shards as the main thread knows them (fed by the batches); `mirror`, `delivered`, `frozen` are its maps. */
  private readonly view: ShardMirror;
  private readonly mirror: Map<number, ShardStatus>;
  private readonly calls = new Map<number, Pending>();
  /** Identify turns and handler routes the thread asks for. */
  private readonly requests: ThreadRequests;
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
  private readonly delivered: Map<number, Delivered | null>;
  /** While the thread is down and a respawn is scheduled: calls waiting for the new thread. */
  private readonly backlog: Pending[] = [];
  /** Commands in `backlog`, by shard (bounded like a shard's own queue: `maxQueuedCommands`). */
  private readonly heldSends = new Map<number, number>();
  /** Shards the new thread connects: they were running, or a connect / restart waits for them. */
  private readonly relaunch = new Set<number>();
  /** Shards that were fatal or closed when their thread died: the new thread's idle rows do not replace them. */
  private readonly frozen: Set<number>;
  private respawnTimer: TimerHandle | undefined;
  /** `clock.now()` of the unexpected exits within the policy's window. */
  private readonly exits: number[] = [];
  private restarts = 0;
  private paused = false;
  private debugging = false;
  private readonly link: HostHandlerLink | null;
  /** Reshard, new set: verdicts not posted yet (flat triples), and the turn that posts them. */
  private verdicts: number[] = [];
  private verdictTurn: NodeJS.Immediate | null = null;

  constructor(
    spec: WorkerSpec,
    private readonly sink: ShardSink,
    queue: IdentifyQueue,
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
    }
    this.#tokens = [...tokens];
    this.view = new ShardMirror(spec, {
      index: spec.index,
      sink,
      link: this.link,
      handler: spec.handler !== undefined,
      members: this.members,
    });
    this.requests = new ThreadRequests(
      queue,
      this.link,
      (m) => this.post(m),
      () => this.worker,
    );
    this.mirror = this.view.rows;
    this.delivered = this.view.delivered;
    this.frozen = this.view.frozen;
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
      sessions = this.view.closeDown(this.relaunch, resumable);
      this.relaunch.clear();
    }
    this.requests.cancelAll('cluster closed');
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
      spec = { ...spec, handler: { ...spec.handler, marks: this.view.resetMarks() } };
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
        this.view.read(msg.data);
        this.post({ t: 'ack' });
        return;
      case 'result': {
        const p = this.calls.get(msg.id);
        this.calls.delete(msg.id);
        if (msg.ok) p?.resolve(msg.value);
        else p?.reject(fromWire(msg.error));
        return;
      }
      case 'acquire':
        this.requests.acquire(msg.id, msg.shardId);
        return;
      case 'loadFailed':
        this.loadFailed = true;
        this.crash = this.redact(`${msg.error.code ?? msg.error.name}: ${msg.error.message}`);
        return;
      case 'route':
        this.requests.route(msg.id, msg.method, msg.args);
        return;
      case 'abort':
        this.requests.abort(msg.id);
        return;
    }
  }

  private onExit(code: number): void {
    this.exited = true;
    this.worker.removeAllListeners();
    this.view.settle();
    const why = `worker ${this.index} exited (code ${code})${this.crash ? `: ${this.crash}` : ''}`;
    this.requests.cancelAll(why);
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
    this.view.carryAll();
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
