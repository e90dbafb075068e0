/**
 * The main thread's picture of one worker thread's shards, kept from the thread's batches so `cluster.status()`
 * stays synchronous: each shard's status row, its session as the main thread was given it (where a respawned
 * thread resumes), its guilds, and the counters of the threads before. Reading a batch turns its lines into the
 * cluster's shard events; dispatches a respawned thread's replay repeats are dropped here.
 * @packageDocumentation
 */
import { trackGuilds } from '../cluster-group.js';
import type { ShardSink, ShardStatus } from '../cluster-status.js';
import { DecodeError } from '../errors.js';
import type { DispatchEvent, ShardEvent } from '../events.js';
import type { MemberRequest } from '../members.js';
import type { Session } from '../session.js';
import type { HostHandlerLink } from './host-options.js';
import { HandledMarks, sessionMark } from './marks.js';
import { ACK_LINE, COUNT_LINE, HELD_LINE, RECORD_LINE, RAW_LINE, eventFromWire, type BatchItem, type StatusRow, type WorkerSpec } from './protocol.js';

/** What the mirror reports to, and knows of, its host. */
export interface MirrorHooks {
  readonly index: number;
  readonly sink: ShardSink;
  /** Handler mode: where posts, log lines and reshard lines go (null without a handler). */
  readonly link: HostHandlerLink | null;
  /** The thread runs a handler. */
  readonly handler: boolean;
  /** Member requests made through the host, by nonce: their chunks arrive in the batches. */
  readonly members: Map<string, MemberRequest>;
}

/** The session of a shard as the main thread knows it: from READY / RESUMED and the dispatches it was given. */
export interface Delivered {
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

/** The shards of one worker thread, as the main thread knows them. */
export class ShardMirror {
  /** Each shard's status row (what `status()` returns). */
  readonly rows = new Map<number, ShardStatus>();
  /** Each shard's session as the main thread was given it (null: none, the next start IDENTIFYs). */
  readonly delivered = new Map<number, Delivered | null>();
  /** Shards that were fatal or closed when their thread died: the new thread's idle rows do not replace them. */
  readonly frozen = new Set<number>();
  /** Guilds of each shard, from the events this thread parses (READY, GUILD_CREATE, GUILD_DELETE). */
  private readonly guilds = new Map<number, Set<string> | null>();
  private readonly carried = new Map<number, Carried>();
  /** Handler mode: the current thread's shared handled marks, and the session marks seen from it, by shard. */
  private marks: HandledMarks | null = null;
  private readonly epochs = new Map<number, number>();
  private readonly ids: readonly number[];

  constructor(
    spec: WorkerSpec,
    private readonly h: MirrorHooks,
  ) {
    this.ids = spec.ids;
    for (const id of spec.ids) {
      const s = spec.shardOptions[id]?.session;
      this.delivered.set(id, s ? { sessionId: s.sessionId, resumeUrl: s.resumeUrl, sequence: s.sequence } : null);
      this.rows.set(id, { id, state: 'idle', latency: null, sessionId: null, sequence: 0, reconnects: 0, identifies: 0, resumes: 0, lastCloseCode: null, worker: spec.index });
    }
  }

  /** Handler mode, a new thread: a fresh buffer of handled marks for it (epochs count from 0 on both sides again). */
  resetMarks(): SharedArrayBuffer {
    this.marks = new HandledMarks(this.ids);
    this.epochs.clear();
    return this.marks.buffer;
  }

  /**
   * The host closes while its thread is down: every shard that was running is `closed`; returns the sessions of
   * `running` the main thread was given (when `resumable`).
   */
  closeDown(running: Iterable<number>, resumable: boolean): Record<number, Session> {
    const sessions: Record<number, Session> = {};
    for (const id of running) {
      const d = this.delivered.get(id);
      if (resumable && d) sessions[id] = { sessionId: d.sessionId, sequence: d.sequence, resumeUrl: d.resumeUrl };
    }
    for (const m of this.rows.values()) {
      if (m.state === 'closed' || m.state === 'fatal') continue;
      const from = m.state;
      m.state = 'closed';
      const reason = resumable ? 'closed by user (resumable)' : 'closed by user';
      this.h.sink.event({ kind: 'state', shardId: m.id, from, to: 'closed', cause: { kind: 'close', resumable, reason } });
    }
    return sessions;
  }

  /** The thread exited: remember every shard's counters so far (the next thread's rows start from zero). */
  carryAll(): void {
    for (const m of this.rows.values()) this.carry(m);
  }

  /** One batch of the thread: its lines, in order. */
  read(data: string): void {
    const sink = this.h.sink;
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
  fresh(shardId: number, sequence: number): boolean {
    const d = this.delivered.get(shardId);
    if (!d) return true;
    if (sequence <= d.sequence) return false;
    d.sequence = sequence;
    return true;
  }

  /**
   * Handler mode: the worker's handler finished the shard's dispatches up to `sequence` (a line sent with posts
   * or before a session mark; the other positions are in the shared marks, read in the host's exit handling). The session a
   * respawned worker resumes starts after it: what the handler had not finished is replayed and handled again.
   */
  private onAck(data: string, from: number, to: number): void {
    const t1 = data.indexOf('\t', from);
    this.fresh(Number(data.slice(from, t1)), Number(data.slice(t1 + 1, to)));
  }

  /** Handler mode: `shardId \t type \t n …`, dispatches handled since the last count line (one `dispatchHandled` each). */
  private onCount(line: string): void {
    const link = this.h.link;
    if (!link) return;
    const f = line.split('\t');
    const shardId = Number(f[0]);
    for (let i = 1; i + 1 < f.length; i += 2) for (let n = Number(f[i + 1]); n > 0; n--) link.handled(shardId, f[i]!);
  }

  /** Reshard lines: a running-set fingerprint (`k`), or a new-set dispatch waiting for its verdict (`g`). */
  private onReshardLine(kind: string, line: string): void {
    const f = line.split('\t');
    if (kind === RECORD_LINE) this.h.link?.recorded?.(f.slice(2).join('\t'), Number(f[1]));
    else this.h.link?.held?.(Number(f[0]), Number(f[1]), f[4]!, f.slice(5).join('\t'), Number(f[3]), f[2] === '1');
  }

  /**
   * Handler mode, the thread has exited: move each shard's resume point to the last dispatch its handler finished,
   * when the shared mark belongs to the session this host knows (same count of session marks).
   */
  settle(): void {
    const marks = this.marks;
    if (!marks) return;
    for (const id of this.ids) {
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
      this.h.sink.event({ kind: 'error', shardId, error: new DecodeError(`shard ${shardId}: dispatch ${type} seq ${sequence} is not valid JSON; dropped`, { cause: err }) });
      return;
    }
    const m = this.rows.get(shardId);
    if (m && sequence > m.sequence) m.sequence = sequence;
    const e: ShardEvent = { kind: 'dispatch', shardId, event: { shardId, type, sequence, data: payload.d } as DispatchEvent };
    if (type === 'GUILD_CREATE' || type === 'GUILD_DELETE') this.guilds.set(shardId, trackGuilds(this.guilds.get(shardId) ?? null, e));
    this.h.sink.event(e);
  }

  private onItem(item: BatchItem, sink: ShardSink): void {
    if (item[0] === 's') {
      this.applyStatus(item[1]);
      return;
    }
    if (item[0] === 'm') {
      const chunk = item[1];
      if (chunk.nonce) this.h.members.get(chunk.nonce)?.push(chunk);
      return;
    }
    if (item[0] === 'p') {
      this.h.link?.message(item[1], this.h.index, item[2]);
      return;
    }
    if (item[0] === 'l') {
      this.h.link?.log(item[1], item[2], this.h.index, item[3]); // the thread's runner removed the token
      return;
    }
    const e = eventFromWire(item[1]);
    const id = e.shardId;
    if (this.marks && sessionMark(e)) this.epochs.set(id, (this.epochs.get(id) ?? 0) + 1);
    switch (e.kind) {
      case 'dispatch': {
        if (!this.fresh(id, e.event.sequence)) return;
        const m = this.rows.get(id);
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
        const m = this.rows.get(id);
        if (m) m.state = e.to;
        break;
      }
      default:
        break;
    }
    // Handler mode: the worker sees every dispatch and counts the guilds itself (its status rows).
    if (!this.h.handler && (e.kind === 'dispatch' || e.kind === 'ready')) this.guilds.set(id, trackGuilds(this.guilds.get(id) ?? null, e));
    sink.event(e);
  }

  private applyStatus(row: StatusRow): void {
    const [id, state, latency, sessionId, sequence, reconnects, identifies, resumes, lastCloseCode, guilds, error, io] = row;
    if (this.frozen.has(id)) return;
    const s: ShardStatus = { id, state, latency, sessionId, sequence, reconnects, identifies, resumes, lastCloseCode, worker: this.h.index };
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
    this.rows.set(id, s);
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
}
