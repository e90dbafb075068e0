/**
 * The protocol of one downstream client connection, as a sans-IO machine: inputs are method calls (`message`,
 * `timer`, `deliver`, ...), outputs are {@link ClientEffect}s in `effects` that the driver applies (write, close,
 * arm the heartbeat deadline) or the proxy acts on (identify, resume, forward a command). Time is passed in.
 * @packageDocumentation
 */
import { AllIntents, PrivilegedIntents } from '../intents.js';
import { carriesContent, stripsContent, wants } from './filter.js';

/** Largest payload a client may send, bytes (Discord's). */
export const CLIENT_MAX_PAYLOAD = 4096;

/** What the machine asks its driver / the proxy to do. */
export type ClientEffect =
  | { type: 'send'; data: string }
  | { type: 'close'; code: number; reason: string }
  /** Arm (or clear, `at: null`) the one deadline: the next heartbeat (or IDENTIFY) must arrive by `at`. */
  | { type: 'deadline'; at: number | null }
  /** A valid IDENTIFY: the proxy answers with {@link ClientSession.start} (READY and GUILD_CREATEs). */
  | { type: 'identify'; shardId: number; intents: number }
  /** A RESUME: the proxy answers with {@link ClientSession.resume} or {@link ClientSession.invalidate}. */
  | { type: 'resume'; sessionId: string; seq: number }
  /** A command for the upstream shard (op 3, 4, 8, 31, 43), its `d` validated as an object. */
  | { type: 'command'; op: number; d: Record<string, unknown> };

/** One client session's state, kept by the proxy after the connection ends so that a RESUME can continue it. */
export interface SessionState {
  readonly id: string;
  readonly shardId: number;
  readonly intents: number;
  /** The client lacks MessageContent and the upstream has it: message content is stripped for it. */
  readonly stripContent: boolean;
  /** Last sequence number written to the client. */
  seq: number;
  /** Stream position `seq` accounts for: every ring entry up to it was offered to the client (written or filtered). */
  pos: number;
  /** Sequence numbers up to this one were the synthesized READY / GUILD_CREATEs (not replayable). */
  synthEnd: number;
  /**
   * Dispatches not from the ring (RESUMED, answers to its op 8) as `[seq, pos]` pairs, oldest first: the other
   * sequence numbers map to ring entries, found by walking the ring (see `resumePos`). At most
   * {@link MAX_PRIVATE} pairs.
   */
  readonly privates: number[];
  /** Lowest sequence a RESUME may name (older private pairs were dropped). */
  floor: number;
  /**
   * Restored from Redis while it was attached: the client may have received ring entries after `pos` before the
   * proxy died, so a RESUME with a higher sequence walks forward through the ring. Cleared by a RESUME and by an
   * upstream re-identify (the ring after `pos` is then not what the client was sent).
   */
  ahead: boolean;
}

/** Private `[seq, pos]` pairs kept per session (a RESUME older than the oldest one is refused). */
export const MAX_PRIVATE = 256;

/** Options of a {@link ClientSession}. */
export interface ClientSessionOptions {
  /** HELLO's heartbeat interval, ms. */
  heartbeatInterval: number;
  /** Extra time after the interval before a missing heartbeat closes the connection (4009). */
  heartbeatSlack: number;
  /** True when `token` (without `Bot `) is the bot's. */
  checkToken: (token: string) => boolean;
  /** Shard count of the proxy and the shard ids it serves. */
  total: number;
  hasShard: (id: number) => boolean;
  /** Intents the upstream shards run with (a client asking for a privileged one outside them gets 4014). */
  upstreamIntents: number;
  /** Payloads per window before 4008. Default 120 per 60 000 ms. */
  rateLimit?: { limit: number; window: number };
  now: () => number;
  /**
   * `d` without message content for a client lacking MessageContent (see `ContentStripper`), called only for such
   * clients and only for the dispatches `carriesContent` names. Default: none (nothing stripped).
   */
  stripContent?: (type: string, d: string) => string;
}

const COMMAND_OPS = new Set([3, 4, 8, 31, 43]);

type Phase = 'hello' | 'identifying' | 'resuming' | 'ready' | 'closed';

/**
 * One downstream connection's protocol: HELLO, heartbeats and their deadline, IDENTIFY / RESUME validation
 * with Discord's close codes, the 120 / 60 s send limit, commands, and the dispatch stream with the client's own
 * sequence numbers, filtered by its intents.
 *
 * @example
 * ```ts
 * const c = new ClientSession({ heartbeatInterval: 41250, heartbeatSlack: 5000, checkToken, total: 1, hasShard: () => true, upstreamIntents, now: Date.now });
 * c.open();            // HELLO
 * c.message(text);     // IDENTIFY → effect { type: 'identify', ... }
 * for (const e of c.effects.splice(0)) apply(e);
 * ```
 */
export class ClientSession {
  readonly effects: ClientEffect[] = [];
  private phase: Phase = 'hello';
  private state: SessionState | null = null;
  private readonly sent: number[] = [];
  private sentHead = 0;
  private readonly limit: number;
  private readonly window: number;

  constructor(private readonly o: ClientSessionOptions) {
    this.limit = o.rateLimit?.limit ?? 120;
    this.window = o.rateLimit?.window ?? 60_000;
  }

  /** The session, once identified or resumed. */
  get session(): SessionState | null {
    return this.state;
  }

  get ready(): boolean {
    return this.phase === 'ready';
  }

  get closed(): boolean {
    return this.phase === 'closed';
  }

  /** The connection opened: HELLO, and the deadline for the first payload. */
  open(): void {
    this.out(`{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":${this.o.heartbeatInterval}}}`);
    this.arm();
  }

  /** The heartbeat deadline passed. */
  timer(): void {
    if (this.phase !== 'closed') this.close(4009, 'Session timed out.');
  }

  /** The connection ended (no effects; the proxy keeps `session` for a RESUME). */
  ended(): void {
    this.phase = 'closed';
  }

  /** One text message from the client. */
  message(text: string, bytes = Buffer.byteLength(text)): void {
    if (this.phase === 'closed') return;
    if (!this.count()) return this.close(4008, 'Rate limited.');
    if (bytes > CLIENT_MAX_PAYLOAD) return this.close(4002, 'Error while decoding payload.');
    let p: unknown;
    try {
      p = JSON.parse(text);
    } catch {
      return this.close(4002, 'Error while decoding payload.');
    }
    if (typeof p !== 'object' || p === null || Array.isArray(p) || !Number.isInteger((p as { op?: unknown }).op)) return this.close(4002, 'Error while decoding payload.');
    const { op, d } = p as { op: number; d?: unknown };
    if (op === 1) {
      this.out('{"t":null,"s":null,"op":11,"d":null}');
      this.arm();
      return;
    }
    if (op === 2) return this.identify(d);
    if (op === 6) return this.onResume(d);
    if (!COMMAND_OPS.has(op)) return this.close(4001, 'Unknown opcode.');
    if (this.phase !== 'ready') return this.close(4003, 'Not authenticated.');
    if (typeof d !== 'object' || d === null || Array.isArray(d)) return this.close(4001, 'Invalid payload.');
    this.effects.push({ type: 'command', op, d: d as Record<string, unknown> });
  }

  /**
   * The proxy accepted the IDENTIFY: write READY and the GUILD_CREATEs (`d` texts), and start the live stream at
   * stream position `pos` (the newest position already covered by the cache).
   */
  start(id: string, readyD: string, guildCreates: Iterable<string>, pos: number): void {
    if (this.phase !== 'identifying') return;
    const { shardId, intents } = this.pendingIdentify!;
    const state = newSessionState(id, shardId, intents, this.o.upstreamIntents, pos);
    this.state = state;
    this.phase = 'ready';
    this.write(state, 'READY', readyD);
    for (const g of guildCreates) this.write(state, 'GUILD_CREATE', g);
    state.synthEnd = state.seq;
  }

  /**
   * The proxy found the session of a RESUME, the stream position its sequence maps to (`resumePos`) and the ring
   * entries after it: replay those the client wants, then RESUMED. The state continues on this connection.
   */
  resume(state: SessionState, pos: number, replay: Iterable<{ pos: number; type: string; d: string }>): void {
    if (this.phase !== 'resuming') return;
    this.state = state;
    this.phase = 'ready';
    const seq = this.pendingResume!;
    state.seq = seq;
    state.pos = pos;
    state.ahead = false;
    const p = state.privates;
    let keep = p.length;
    while (keep > 0 && p[keep - 2]! > seq) keep -= 2;
    p.length = keep; // what was sent after `seq` and is not in the ring is not sent again
    for (const e of replay) {
      state.pos = e.pos;
      if (wants(state.intents, e.type, e.d)) this.write(state, e.type, e.d);
    }
    this.private('RESUMED', '{}');
  }

  /** The RESUME cannot continue (unknown session, too old): op 9 `false`; the client identifies anew. */
  invalidate(): void {
    if (this.phase !== 'resuming') return;
    this.phase = 'hello';
    this.out('{"t":null,"s":null,"op":9,"d":false}');
  }

  /** A live dispatch of the client's shard (`d` as JSON text, shared by every client), at stream position `pos`. */
  deliver(type: string, d: string, pos: number): void {
    const state = this.state;
    if (this.phase !== 'ready' || state === null) return;
    state.pos = pos;
    if (wants(state.intents, type, d)) this.write(state, type, d);
  }

  /** A dispatch meant for this client only (an answer to its op 8, RESUMED), not part of the replayable stream. */
  private(type: string, d: string): void {
    const state = this.state;
    if (this.phase !== 'ready' || state === null) return;
    this.write(state, type, d);
    const p = state.privates;
    p.push(state.seq, state.pos);
    if (p.length > 2 * MAX_PRIVATE) state.floor = p.splice(0, 2)[0]!;
  }

  /** Close the connection with `code` (the session survives for a RESUME unless the code ends it). */
  close(code: number, reason: string): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.effects.push({ type: 'deadline', at: null }, { type: 'close', code, reason });
  }

  private pendingIdentify: { shardId: number; intents: number } | null = null;
  private pendingResume: number | null = null;

  private identify(d: unknown): void {
    if (this.phase === 'ready' || this.phase === 'identifying' || this.phase === 'resuming') return this.close(4005, 'Already authenticated.');
    if (typeof d !== 'object' || d === null) return this.close(4001, 'Invalid IDENTIFY payload.');
    const id = d as { token?: unknown; intents?: unknown; shard?: unknown };
    if (typeof id.token !== 'string' || !this.o.checkToken(id.token.replace(/^Bot\s+/i, ''))) return this.close(4004, 'Authentication failed.');
    let shardId = 0;
    if (id.shard === undefined || id.shard === null) {
      if (this.o.total !== 1) return this.close(4011, 'Sharding required.');
    } else {
      const s = id.shard;
      if (!Array.isArray(s) || s.length !== 2 || !Number.isInteger(s[0]) || !Number.isInteger(s[1]) || s[0] < 0 || s[0] >= s[1]) return this.close(4010, 'Invalid shard.');
      if (s[1] !== this.o.total) return this.close(s[1] < this.o.total ? 4011 : 4010, s[1] < this.o.total ? 'Sharding required.' : 'Invalid shard.');
      if (!this.o.hasShard(s[0])) return this.close(4010, 'Invalid shard.');
      shardId = s[0];
    }
    const intents = id.intents;
    if (!Number.isInteger(intents) || (intents as number) < 0 || ((intents as number) & ~AllIntents) !== 0) return this.close(4013, 'Invalid intent(s).');
    if (((intents as number) & PrivilegedIntents & ~this.o.upstreamIntents) !== 0) return this.close(4014, 'Disallowed intent(s).');
    this.phase = 'identifying';
    this.pendingIdentify = { shardId, intents: intents as number };
    this.effects.push({ type: 'identify', shardId, intents: intents as number });
  }

  private onResume(d: unknown): void {
    if (this.phase !== 'hello') return this.close(4005, 'Already authenticated.');
    const r = d as { token?: unknown; session_id?: unknown; seq?: unknown } | null;
    if (typeof r !== 'object' || r === null || typeof r.session_id !== 'string' || !(r.seq === null || Number.isInteger(r.seq))) return this.close(4001, 'Invalid RESUME payload.');
    if (typeof r.token !== 'string' || !this.o.checkToken(r.token.replace(/^Bot\s+/i, ''))) return this.close(4004, 'Authentication failed.');
    this.phase = 'resuming';
    this.pendingResume = (r.seq as number | null) ?? 0;
    this.effects.push({ type: 'resume', sessionId: r.session_id, seq: this.pendingResume });
  }

  private write(state: SessionState, type: string, d: string): void {
    if (state.stripContent && carriesContent(type) && this.o.stripContent) d = this.o.stripContent(type, d);
    this.out(`{"t":"${type}","s":${++state.seq},"op":0,"d":${d}}`);
  }

  private out(data: string): void {
    this.effects.push({ type: 'send', data });
  }

  private arm(): void {
    this.effects.push({ type: 'deadline', at: this.o.now() + this.o.heartbeatInterval + this.o.heartbeatSlack });
  }

  /** Record one inbound payload; false when it is over the limit. */
  private count(): boolean {
    const now = this.o.now();
    const sent = this.sent;
    while (this.sentHead < sent.length && sent[this.sentHead]! <= now - this.window) this.sentHead++;
    if (this.sentHead > 256) {
      sent.splice(0, this.sentHead);
      this.sentHead = 0;
    }
    if (sent.length - this.sentHead >= this.limit) return false;
    sent.push(now);
    return true;
  }
}

/** A new session's state: nothing written yet, the live stream starting after stream position `pos`. */
export function newSessionState(id: string, shardId: number, intents: number, upstreamIntents: number, pos: number): SessionState {
  return { id, shardId, intents, stripContent: stripsContent(intents, upstreamIntents), seq: 0, pos, synthEnd: 0, privates: [], floor: 0, ahead: false };
}
