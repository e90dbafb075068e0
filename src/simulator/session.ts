/**
 * Gateway sessions: sequence numbers, the bounded replay buffer, and the resumable-after-disconnect window.
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import type { Clock, TimerHandle } from '../clock.js';
import type { SimSessionInfo } from './types.js';

/** What a session needs from the connection it is attached to. */
export interface SessionSink {
  /** Send one serialized dispatch envelope. */
  sendJson(json: string): void;
  readonly open: boolean;
}

/** Serialize a dispatch envelope with Discord's key order `t, s, op, d`. `dJson` is the JSON text of `d`. */
export function dispatchEnvelope(t: string, s: number, dJson: string): string {
  return `{"t":${JSON.stringify(t)},"s":${s},"op":0,"d":${dJson}}`;
}

/** Serialize a non-dispatch envelope `{"t":null,"s":null,"op":op,"d":d}`. */
export function controlEnvelope(op: number, d: unknown): string {
  return `{"t":null,"s":null,"op":${op},"d":${JSON.stringify(d ?? null)}}`;
}

/** One gateway session (created by IDENTIFY, continued by RESUME). */
export class SimSession {
  readonly id = randomBytes(16).toString('hex');
  seq = 0;
  expired = false;
  /** Live connection, or null while the socket is lost (resumable until expiry). */
  sink: SessionSink | null = null;
  private readonly buffer: (string | undefined)[];
  private head = 0; // index of the oldest entry
  private size = 0;
  private firstSeq = 1; // seq of the oldest buffered entry
  private expiryTimer: TimerHandle | undefined;
  private readonly timers = new Set<TimerHandle>();

  constructor(
    private readonly clock: Clock,
    readonly shardId: number,
    readonly total: number,
    readonly intents: number,
    readonly token: string,
    readonly capacity: number,
    /** IDENTIFY's `d` without the token. */
    readonly identify: Record<string, unknown>,
  ) {
    this.buffer = new Array<string | undefined>(Math.max(1, capacity));
  }

  /** Assign the next seq to a dispatch, buffer it, and forward it to the live connection. Returns the seq. */
  push(t: string, dJson: string): number {
    const s = ++this.seq;
    const json = dispatchEnvelope(t, s, dJson);
    const cap = this.buffer.length;
    if (this.size === cap) {
      this.buffer[this.head] = undefined;
      this.head = (this.head + 1) % cap;
      this.size--;
      this.firstSeq++;
    }
    if (this.size === 0) this.firstSeq = s;
    this.buffer[(this.head + this.size) % cap] = json;
    this.size++;
    if (this.sink?.open) this.sink.sendJson(json);
    return s;
  }

  /** Buffered envelopes with `s > seq` in order; null when some of them already fell out of the buffer. */
  replayAfter(seq: number): string[] | null {
    if (seq >= this.seq) return [];
    if (seq + 1 < this.firstSeq || this.size === 0) return null;
    const out: string[] = [];
    for (let i = seq + 1 - this.firstSeq; i < this.size; i++) out.push(this.buffer[(this.head + i) % this.buffer.length]!);
    return out;
  }

  /** Number of buffered dispatches. */
  get buffered(): number {
    return this.size;
  }

  /** Attach a connection; cancels the expiry countdown. */
  attach(sink: SessionSink): void {
    this.sink = sink;
    this.clock.clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
  }

  /** The socket was lost: keep the session resumable for `timeout` virtual ms. */
  detach(sink: SessionSink, timeout: number, onExpire: () => void): void {
    if (this.sink !== sink) return;
    this.sink = null;
    if (this.expired) return;
    this.clock.clearTimeout(this.expiryTimer);
    this.expiryTimer = this.clock.setTimeout(() => {
      this.expiryTimer = undefined;
      onExpire();
    }, timeout);
  }

  /** Run `fn` after `ms` on the session's clock; cancelled when the session expires. */
  later(ms: number, fn: () => void): void {
    const h = this.clock.setTimeout(() => {
      this.timers.delete(h);
      if (!this.expired) fn();
    }, ms);
    this.timers.add(h);
  }

  /** End the session for good (invalidated, expired, or the simulator stopped). */
  expire(): void {
    this.expired = true;
    this.clock.clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    for (const h of this.timers) this.clock.clearTimeout(h);
    this.timers.clear();
    this.buffer.fill(undefined);
    this.size = 0;
  }

  info(): SimSessionInfo {
    return {
      sessionId: this.id,
      shardId: this.shardId,
      total: this.total,
      seq: this.seq,
      connected: this.sink !== null && this.sink.open,
      expired: this.expired,
      intents: this.intents,
      buffered: this.size,
    };
  }
}

/** All sessions of the simulator. Expired sessions are kept (bounded) for inspection. */
export class SessionStore {
  private readonly map = new Map<string, SimSession>();

  add(s: SimSession): void {
    this.map.set(s.id, s);
    if (this.map.size > 2000) {
      for (const [id, old] of this.map) {
        if (this.map.size <= 1500) break;
        if (old.expired) this.map.delete(id);
      }
    }
  }

  get(id: string): SimSession | undefined {
    return this.map.get(id);
  }

  /** Every session (expired ones included). */
  all(): SimSession[] {
    return [...this.map.values()];
  }

  /** Sessions that are not expired, optionally of one shard. */
  live(shardId?: number): SimSession[] {
    const out: SimSession[] = [];
    for (const s of this.map.values()) if (!s.expired && (shardId === undefined || s.shardId === shardId)) out.push(s);
    return out;
  }

  /** Expire every session (simulator stop). */
  clear(): void {
    for (const s of this.map.values()) s.expire();
  }
}
