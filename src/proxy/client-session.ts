/**
 * The protocol of one downstream client connection, as a sans-IO machine: inputs are method calls (`message`,
 * `timer`, `deliver`, ...), outputs are {@link ClientEffect}s in `effects` that the driver applies (write, close,
 * arm the heartbeat deadline) or the proxy acts on (identify, resume, forward a command). Time is passed in.
 * @packageDocumentation
 */
import { AllIntents, PrivilegedIntents } from '../intents.js';
import { carriesContent, stripsContent, wants } from './filter.js';
import type { RingEntry } from './replay.js';

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

/**
 * Bytes a client's socket may hold queued while its READY burst (GUILD_CREATEs, then the catch-up from the ring)
 * is written: the next one is written only below this (see {@link ClientSession.pull}).
 */
export const BURST_BUFFER = 1024 * 1024;

/** The part of a shard's replay ring a session reads to catch up after its GUILD_CREATEs. */
export interface RingView {
  /** Position of the oldest entry held. */
  readonly oldest: number;
  /** Position of the newest entry. */
  readonly newest: number;
  /** The entry at `pos`, or null when it is not held. */
  at(pos: number): RingEntry | null;
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
  /** Bytes queued on the socket below which the READY burst writes its next payload. Default {@link BURST_BUFFER}. */
  burstBuffer?: number;
  /**
   * The `d` a replayed reference entry (see {@link RingEntry.ref}) stands for, built now for a client with
   * `intents`, or null when what it names is gone (the entry is then skipped: its sequence number is used and
   * nothing written, so the numbering stays one per wanted ring entry). Default: none (such entries are skipped).
   */
  expand?: (type: string, ref: string, intents: number) => string | null;
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
  private readonly burstBuffer: number;
  /** GUILD_CREATEs not written yet (pulled one at a time), null once they all were. */
  private burst: Iterator<string> | null = null;
  /** Set while the session is behind the live stream (burst, then catch-up): it reads the ring, not `deliver`. */
  private behind: RingView | null = null;
  private overflow = false;

  constructor(private readonly o: ClientSessionOptions) {
    this.limit = o.rateLimit?.limit ?? 120;
    this.window = o.rateLimit?.window ?? 60_000;
    this.burstBuffer = o.burstBuffer ?? BURST_BUFFER;
  }

  /**
   * True while the READY burst is being written: the driver calls {@link pull} whenever the socket has written
   * something out (and the session then writes more only below {@link BURST_BUFFER}).
   */
  get pulling(): boolean {
    return this.behind !== null;
  }

  /** The connection was closed because the replay ring moved past it during its READY burst (too slow). */
  get overflowed(): boolean {
    return this.overflow;
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

  /** The connection ended (no effects; the proxy keeps `session` for a RESUME). Releases a pending burst. */
  ended(): void {
    this.phase = 'closed';
    this.release();
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
   * The proxy accepted the IDENTIFY: write READY, then — as the driver {@link pull}s — the GUILD_CREATEs (`d`
   * texts, taken from `guildCreates` one at a time), then every entry of `ring` after stream position `pos` (the
   * newest position already covered by the cache when the burst started) that the client wants, then live
   * dispatches. While behind, {@link deliver} writes nothing: what arrives is in the ring and caught up from there,
   * so it reaches the client after its GUILD_CREATEs, in order. When the ring no longer holds the position the
   * client has reached, it is closed with 4000 (its RESUME is then refused with op 9 and it identifies again).
   */
  start(id: string, readyD: string, guildCreates: Iterable<string>, pos: number, ring: RingView): void {
    if (this.phase !== 'identifying') return;
    const { shardId, intents } = this.pendingIdentify!;
    const state = newSessionState(id, shardId, intents, this.o.upstreamIntents, pos);
    this.state = state;
    this.phase = 'ready';
    this.write(state, 'READY', readyD);
    // no RESUME into the synthesized start until all of it is written
    state.synthEnd = Number.MAX_SAFE_INTEGER;
    this.burst = guildCreates[Symbol.iterator]();
    this.behind = ring;
  }

  /**
   * The socket holds `buffered` bytes not yet written out: while behind (see {@link pulling}), write the next
   * GUILD_CREATEs, then ring entries, until `buffered` plus what this call wrote reaches the bound.
   */
  pull(buffered: number): void {
    const state = this.state;
    const ring = this.behind;
    if (this.phase !== 'ready' || state === null || ring === null) return;
    let room = this.burstBuffer - buffered;
    while (room > 0) {
      if (this.burst !== null) {
        const g = this.burst.next();
        if (g.done !== true) {
          room -= this.write(state, 'GUILD_CREATE', g.value);
          continue;
        }
        this.burst = null;
        state.synthEnd = state.seq;
      }
      const p = state.pos + 1;
      if (p > ring.newest) {
        this.behind = null; // caught up: live from here
        return;
      }
      const e = ring.at(p);
      if (e === null) return this.tooSlow();
      state.pos = p;
      room -= this.replay(state, e);
    }
  }

  /**
   * The proxy found the session of a RESUME, the stream position its sequence maps to (`resumePos`) and the ring
   * entries after it: replay those the client wants, then RESUMED. The state continues on this connection.
   */
  resume(state: SessionState, pos: number, replay: Iterable<RingEntry>): void {
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
      this.replay(state, e);
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
    if (this.behind !== null) {
      // caught up from the ring later; if the ring already lost the next entry, finishing the burst is pointless
      if (this.behind.oldest > state.pos + 1) this.tooSlow();
      return;
    }
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
    this.release();
    this.effects.push({ type: 'deadline', at: null }, { type: 'close', code, reason });
  }

  /** The ring moved past what the client has reached during its burst. */
  private tooSlow(): void {
    this.overflow = true;
    this.close(4000, 'Client too slow for its READY.');
  }

  /** Drop a pending burst (the iterator is returned: the cache's generator lets go of what it holds). */
  private release(): void {
    const burst = this.burst;
    this.burst = null;
    this.behind = null;
    burst?.return?.();
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

  /**
   * Write one ring entry if the client wants it, a reference built now (see {@link ClientSessionOptions.expand});
   * returns the length written.
   */
  private replay(state: SessionState, e: RingEntry): number {
    if (!wants(state.intents, e.type, e.d)) return 0;
    if (e.ref !== true) return this.write(state, e.type, e.d);
    const d = this.o.expand?.(e.type, e.d, state.intents) ?? null;
    if (d !== null) return this.write(state, e.type, d);
    state.seq++; // gone since: skipped, its number used (what follows maps as before)
    return 0;
  }

  /** Write one dispatch; returns its length. */
  private write(state: SessionState, type: string, d: string): number {
    if (state.stripContent && carriesContent(type) && this.o.stripContent) d = this.o.stripContent(type, d);
    const data = `{"t":"${type}","s":${++state.seq},"op":0,"d":${d}}`;
    this.out(data);
    return data.length;
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
