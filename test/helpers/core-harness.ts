/**
 * A tiny virtual world around one {@link ShardCore}: a virtual clock, a seeded random, a timer table fed by the
 * core's `timer` effects, an identify queue, and a model of one gateway server that owns the sockets the core
 * opens, records every payload written to them and can be told to act (HELLO, READY, dispatches, ACKs, op 1 / 7 / 9,
 * closes, refused connects, garbage). No sockets, no real timers: every test runs in virtual time.
 *
 * The server notices protocol violations that are visible on the wire and records them in `violations`
 * (tests assert it stays empty): a second socket opened while one is open, a write to a socket that is not open,
 * IDENTIFY/RESUME before HELLO, IDENTIFY without an identify turn, more than 120 payloads in a sliding 60 s window.
 */
import { ShardCore, type Effect, type ShardCoreOptions, type TimerName } from '../../src/shard-core.js';
import type { ShardEvent } from '../../src/events.js';
import { prng } from '../../src/simulator/traffic.js';

export const GATEWAY_URL = 'wss://gateway.test';
export const RESUME_URL = 'wss://resume.test';

/** mulberry32: a small seeded random in [0, 1) (the simulator's own). */
export const seeded = prng;

export interface Written {
  at: number;
  conn: number;
  op: number;
  // biome-ignore lint/suspicious/noExplicitAny: payloads of every op, read freely by the assertions
  d: any;
  /** `auth` (IDENTIFY / RESUME, the driver adds the token) or a plain `send`. */
  kind: 'send' | 'auth';
}

export interface Socket {
  id: number;
  url: string;
  openedAt: number;
  open: boolean;
  /** The server sent HELLO on it. */
  hello: boolean;
  /** IDENTIFY (2) or RESUME (6) received on it. */
  auth: 2 | 6 | null;
  /** READY / RESUMED sent on it. */
  answered: boolean;
  /** Close code the core used (null: dropped without handshake); undefined while open or closed by the server. */
  closedWith?: number | null;
  times: number[];
}

export interface WorldOptions {
  seed?: number;
  /** The identify queue grants every turn at once (default) or only on `grant()`. */
  autoGrant?: boolean;
  /** The server ACKs every heartbeat at once. Default false. */
  autoAck?: boolean;
  core?: Partial<ShardCoreOptions>;
}

export class World {
  now = 0;
  readonly core: ShardCore;
  readonly options: ShardCoreOptions;
  /** Armed timers: name → absolute virtual time. */
  readonly timers = new Map<TimerName, number>();
  readonly sockets = new Map<number, Socket>();
  readonly written: Written[] = [];
  /** Every effect applied, in order. */
  readonly log: Effect[] = [];
  readonly events: ShardEvent[] = [];
  /** Command id → null (written) or the error. */
  readonly settled = new Map<number, Error | null>();
  readonly violations: string[] = [];
  /** Timers fired, with the effects each one produced. */
  readonly fired: { timer: TimerName; at: number; effects: Effect[] }[] = [];
  /** Connections waiting for an identify turn. */
  readonly turns: number[] = [];
  /** The core stopped reading: frames the server sends meanwhile wait in `held` (per connection). */
  readPaused = false;
  readonly held: { conn: number; bytes: Uint8Array }[] = [];
  /** Frames the core read (op -1: not JSON). */
  readonly received: { at: number; conn: number; op: number; d: unknown }[] = [];
  /** The server's sequence for the current session. */
  serverSeq = 0;
  autoGrant: boolean;
  autoAck: boolean;
  private readonly granted = new Set<number>();
  private acks: number[] = [];
  private commandIds = 0;

  constructor(o: WorldOptions = {}) {
    this.autoGrant = o.autoGrant ?? true;
    this.autoAck = o.autoAck ?? false;
    this.options = {
      id: 0,
      total: 1,
      intents: 513,
      gatewayUrl: GATEWAY_URL,
      compression: false,
      events: null,
      raw: false,
      session: null,
      presence: undefined,
      largeThreshold: 50,
      properties: { os: 'linux', browser: 'shardline', device: 'shardline' },
      tokenLength: 72,
      now: () => this.now,
      random: seeded(o.seed ?? 1),
      helloTimeout: 20_000,
      readyTimeout: 120_000,
      maxResumeAttempts: 3,
      backoff: { base: 1000, max: 60_000 },
      maxQueuedCommands: 1000,
      resumeOnSessionTimeout: false,
      rateLimit: {},
      ...o.core,
    };
    this.core = new ShardCore(this.options);
  }

  // ---- driving the core ------------------------------------------------------------------------------------

  /** Run one input, then apply its effects (and the identify grants / ACKs the world answers with at once). */
  step(input: (core: ShardCore) => void): void {
    input(this.core);
    for (;;) {
      const batch = this.core.effects.splice(0);
      for (const e of batch) this.apply(e);
      if (batch.length !== 0) continue;
      if (!this.readPaused && this.held.length !== 0) {
        const { conn, bytes } = this.held.shift()!;
        if (conn === this.conn) this.deliver(conn, bytes);
        continue;
      }
      const ack = this.acks.shift();
      if (ack !== undefined) {
        if (ack === this.conn) this.message({ op: 11 });
        continue;
      }
      if (this.autoGrant && this.turns.length !== 0) this.grant();
      else return;
    }
  }

  /** Move virtual time forward by `ms`, firing due timers in time order. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let next: [TimerName, number] | null = null;
      for (const [name, at] of this.timers) if (at <= end && (next === null || at < next[1])) next = [name, at];
      if (next === null) break;
      const [name, at] = next;
      this.timers.delete(name);
      this.now = Math.max(this.now, at);
      const from = this.log.length;
      this.step((c) => c.timer(name));
      this.fired.push({ timer: name, at: this.now, effects: this.log.slice(from) });
    }
    this.now = end;
  }

  /** A stalled event loop: time jumps by `ms`, then every timer that came due fires late, in order. */
  stall(ms: number): void {
    this.now += ms;
    this.advance(0);
  }

  /** Advance to the pending reconnect (end of the back-off), which opens the next socket. */
  retry(): void {
    const at = this.timers.get('reconnect');
    if (at === undefined) throw new Error('no reconnect pending');
    this.advance(at - this.now);
  }

  private apply(e: Effect): void {
    this.log.push(e);
    switch (e.type) {
      case 'open':
        if (this.conn !== null) this.violations.push(`open ${e.conn} while ${this.conn} is open`);
        this.sockets.set(e.conn, { id: e.conn, url: e.url, openedAt: this.now, open: true, hello: false, auth: null, answered: false, times: [] });
        return;
      case 'close': {
        const s = this.sockets.get(e.conn);
        if (s?.open) Object.assign(s, { open: false, closedWith: e.code });
        return;
      }
      case 'send':
      case 'auth': {
        const s = this.sockets.get(e.conn);
        const { op, d } = e.type === 'send' ? JSON.parse(e.data) : e;
        if (!s?.open) this.violations.push(`op ${op} written to connection ${e.conn}, which is not open`);
        if (s && e.type === 'send' && op !== 1 && s.auth === null) this.violations.push(`op ${op} before IDENTIFY/RESUME on connection ${e.conn} (4003)`);
        if (s && e.type === 'auth') {
          if (!s.hello) this.violations.push(`op ${op} before HELLO on connection ${e.conn}`);
          if (op === 2 && !this.granted.delete(e.conn)) this.violations.push(`IDENTIFY without an identify turn on ${e.conn}`);
          s.auth = e.op;
        }
        if (s) {
          s.times.push(this.now);
          const t = s.times;
          if (t.length > 120 && t[t.length - 121]! > this.now - 60_000) this.violations.push(`over 120 payloads within 60 s on connection ${e.conn} at ${this.now}`);
        }
        this.written.push({ at: this.now, conn: e.conn, op, d, kind: e.type });
        if (this.autoAck && op === 1) this.acks.push(e.conn);
        return;
      }
      case 'timer':
        if (e.at === null) this.timers.delete(e.timer);
        else {
          if (e.at < this.now) this.violations.push(`timer ${e.timer} armed in the past (${e.at} < ${this.now})`);
          this.timers.set(e.timer, e.at);
        }
        return;
      case 'identify':
        this.turns.push(e.conn);
        return;
      case 'cancelIdentify': {
        const i = this.turns.indexOf(e.conn);
        if (i >= 0) this.turns.splice(i, 1);
        return;
      }
      case 'read':
        this.readPaused = e.paused;
        return;
      case 'command':
        this.settled.set(e.id, e.error);
        return;
      case 'event':
        this.events.push(e.event);
        return;
      default: // dispatch, raw, chunk, fatal: kept in `log`
        return;
    }
  }

  // ---- the user ------------------------------------------------------------------------------------------

  connect = (): void => this.step((c) => c.connect());
  pause = (paused: boolean): void => this.step((c) => c.pause(paused));

  close(resumable: boolean, code?: number): ReturnType<ShardCore['close']> {
    let session: ReturnType<ShardCore['close']> = null;
    this.step((c) => (session = c.close(resumable, code)));
    return session;
  }

  /** Queue a command; returns its id (see `settled`). */
  command(op: number, d: unknown): number {
    const id = ++this.commandIds;
    this.step((c) => c.command(id, op, d));
    return id;
  }

  /** Grant the oldest waiting identify turn. */
  grant(): void {
    const conn = this.turns.shift();
    if (conn === undefined) return;
    this.granted.add(conn);
    this.step((c) => c.identifyGranted(conn));
  }

  // ---- the server ----------------------------------------------------------------------------------------

  /** The open socket, or null. */
  get conn(): number | null {
    for (const s of this.sockets.values()) if (s.open) return s.id;
    return null;
  }

  get socket(): Socket | undefined {
    const c = this.conn;
    return c === null ? undefined : this.sockets.get(c);
  }

  /** Send raw bytes on the open socket (false when none is open); held while the core does not read. */
  frame(bytes: Uint8Array): boolean {
    const conn = this.conn;
    if (conn === null) return false;
    if (this.readPaused || this.held.length !== 0) this.held.push({ conn, bytes });
    else this.deliver(conn, bytes);
    return true;
  }

  private deliver(conn: number, bytes: Uint8Array): void {
    let p: { op?: number; d?: unknown } = {};
    try {
      p = JSON.parse(Buffer.from(bytes).toString('utf8'));
    } catch {
      // garbage: recorded as op -1
    }
    this.received.push({ at: this.now, conn, op: p.op ?? -1, d: p.d });
    this.step((c) => c.message(conn, bytes));
  }

  message(p: { op: number; d?: unknown; s?: number | null; t?: string | null }): boolean {
    return this.frame(Buffer.from(JSON.stringify({ op: p.op, d: p.d ?? null, s: p.s ?? null, t: p.t ?? null })));
  }

  hello(interval = 41_250): boolean {
    const s = this.socket;
    if (!s) return false;
    s.hello = true;
    this.step((c) => c.opened(s.id));
    return this.message({ op: 10, d: { heartbeat_interval: interval } });
  }

  ready(sessionId = 'session-1', resumeUrl = RESUME_URL, guilds: string[] = []): boolean {
    if (this.socket) this.socket.answered = true;
    this.serverSeq = 0;
    const d = {
      v: 10,
      user: { id: '1', username: 'bot', discriminator: '0', global_name: null, avatar: null, bot: true },
      guilds: guilds.map((id) => ({ id, unavailable: true })),
      session_id: sessionId,
      resume_gateway_url: resumeUrl,
      shard: [0, 1],
      application: { id: '1', flags: 0 },
    };
    return this.dispatch('READY', d);
  }

  resumed(): boolean {
    if (this.socket) this.socket.answered = true;
    return this.dispatch('RESUMED', {});
  }

  /** A dispatch with the server's next sequence (or `s`). */
  dispatch(t: string, d: unknown, s = ++this.serverSeq): boolean {
    return this.message({ op: 0, t, s, d });
  }

  ack = (): boolean => this.message({ op: 11 });
  requestHeartbeat = (): boolean => this.message({ op: 1 });
  reconnect = (): boolean => this.message({ op: 7 });
  invalidSession = (resumable: boolean): boolean => this.message({ op: 9, d: resumable });
  garbage = (): boolean => this.frame(Buffer.from('\u0000 not a gateway payload'));

  /** The server closes the open socket with `code` (1006: the connection was lost). */
  closeSocket = (code: number): boolean => this.end((c, id) => c.closed(id, code));
  /** The open socket never got through (connection refused). */
  refuse = (): boolean => this.end((c, id) => c.openFailed(id, new Error('connect ECONNREFUSED')));

  private end(input: (core: ShardCore, conn: number) => void): boolean {
    const s = this.socket;
    if (!s) return false;
    s.open = false;
    this.step((c) => input(c, s.id));
    return true;
  }

  // ---- looking at what happened --------------------------------------------------------------------------

  /** Payloads written, optionally only those of `op`. */
  sent(op?: number): Written[] {
    return op === undefined ? this.written : this.written.filter((w) => w.op === op);
  }

  /** `open` effects so far. */
  opens = () => this.effectsOf('open');

  openSockets(): number[] {
    return [...this.sockets.values()].filter((s) => s.open).map((s) => s.id);
  }

  eventsOf<K extends ShardEvent['kind']>(kind: K): Extract<ShardEvent, { kind: K }>[] {
    return this.events.filter((e): e is Extract<ShardEvent, { kind: K }> => e.kind === kind);
  }

  effectsOf<T extends Effect['type']>(type: T): Extract<Effect, { type: T }>[] {
    return this.log.filter((e): e is Extract<Effect, { type: T }> => e.type === type);
  }

  /** connect, HELLO, IDENTIFY (turn granted), READY. */
  static ready(o: WorldOptions & { interval?: number } = {}): World {
    const w = new World(o);
    w.connect();
    w.hello(o.interval ?? 41_250);
    if (!w.autoGrant) w.grant();
    w.ready();
    return w;
  }
}
