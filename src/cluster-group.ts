/**
 * The shards of a cluster that run in one thread (the main thread with `workers: 0`, or one worker thread):
 * creates them, forwards their events synchronously (so per-shard order is the socket's order), tracks
 * guild counts for status, and applies event back-pressure to their sockets (`Shard.pause()`/`resume()`).
 * @packageDocumentation
 */
import type { NoncedMemberRequest } from './cluster-commands.js';
import { ShardlineError } from './errors.js';
import type { MemberRequest } from './members.js';
import type { ShardEvent } from './events.js';
import type { Session } from './session.js';
import { Shard, type ShardOptions } from './shard.js';
import type { ShardState } from './state.js';
import type { GatewayCommand, ShardBackend, ShardSink, ShardStatus } from './cluster-status.js';

/** Real ms a {@link ShardGroup.barrier} waits for its heartbeat ACK. */
const BARRIER_TIMEOUT = 30_000;

interface Entry {
  shard: Shard;
  guilds: Set<string> | null;
  fatal: string | undefined;
  /** A no-op `debug` listener: while one is attached the shard produces debug lines (on its event stream). */
  debugListener: (() => void) | null;
}

/**
 * The guilds of one shard, kept from its event stream: READY lists them, GUILD_CREATE adds one, GUILD_DELETE
 * (not an outage) removes one. Returns the set to keep (a new one after READY).
 */
export function trackGuilds(guilds: Set<string> | null, e: ShardEvent): Set<string> | null {
  if (e.kind === 'ready') return new Set(e.data.guilds.map((g) => g.id));
  if (e.kind !== 'dispatch') return guilds;
  const d = e.event;
  if (d.type === 'GUILD_CREATE') (guilds ??= new Set()).add(d.data.id);
  else if (d.type === 'GUILD_DELETE' && !d.data.unavailable) guilds?.delete(d.data.id);
  return guilds;
}

/** Shards of one thread. Implements the cluster's {@link ShardBackend}. */
export class ShardGroup implements ShardBackend {
  private readonly entries = new Map<number, Entry>();
  private paused = false;
  private debugging = false;

  constructor(
    ids: Iterable<number>,
    makeOptions: (id: number) => ShardOptions,
    private readonly sink: ShardSink,
  ) {
    for (const id of ids) this.add(id, makeOptions(id));
  }

  get ids(): number[] {
    return [...this.entries.keys()];
  }

  local(shardId: number): Shard | undefined {
    return this.entries.get(shardId)?.shard;
  }

  connect(shardId: number): Promise<void> {
    return this.entry(shardId).shard.connect();
  }

  send(shardId: number, payload: GatewayCommand): Promise<void> {
    return this.entry(shardId).shard.send(payload);
  }

  requestGuildMembers(shardId: number, request: NoncedMemberRequest): MemberRequest {
    return this.entry(shardId).shard.requestGuildMembers(request);
  }

  async restart(shardId: number, resume: boolean): Promise<void> {
    const e = this.entry(shardId);
    await e.shard.close({ resumable: resume });
    e.fatal = undefined;
    const connecting = e.shard.connect();
    if (this.paused) e.shard.pause();
    await connecting;
  }

  async barrier(shardId: number): Promise<void> {
    const shard = this.entry(shardId).shard;
    if (shard.state !== 'ready') throw new ShardlineError('NOT_READY', `shard ${shardId} is ${shard.state}`);
    // Two beats: an ACK of a beat already in flight may come first; the second ACK after now is one of ours.
    const target = shard.heartbeatAcks + 2;
    const beat = () => shard.send({ op: 1, d: shard.session?.sequence ?? null });
    await Promise.all([beat(), beat()]);
    const deadline = Date.now() + BARRIER_TIMEOUT;
    while (shard.heartbeatAcks < target) {
      if (shard.state !== 'ready') throw new ShardlineError('NOT_READY', `shard ${shardId} is ${shard.state}`);
      if (Date.now() > deadline) throw new ShardlineError('TIMEOUT', `shard ${shardId}: no heartbeat ACK within ${BARRIER_TIMEOUT / 1000} s`);
      await new Promise<void>((resolve) => setTimeout(resolve, 2).unref());
    }
  }

  state(shardId: number): ShardState {
    return this.entry(shardId).shard.state;
  }

  status(shardId: number): ShardStatus {
    const e = this.entry(shardId);
    const s = e.shard;
    const session = s.session;
    const status: ShardStatus = {
      id: s.id,
      state: s.state,
      latency: s.latency.average,
      sessionId: session?.sessionId ?? null,
      sequence: session?.sequence ?? 0,
      reconnects: s.counters.reconnects,
      identifies: s.counters.identifies,
      resumes: s.counters.resumes,
      lastCloseCode: s.lastCloseCode,
    };
    if (e.guilds) status.guilds = e.guilds.size;
    if (e.fatal !== undefined && s.state === 'fatal') status.error = e.fatal;
    const inflate = s.inflateStats;
    status.io = {
      filtered: s.counters.filtered,
      queuedCommands: s.queuedCommands,
      payloadsSent: Object.fromEntries(s.payloadsSent),
      heartbeatAcks: s.heartbeatAcks,
      recentLatency: s.latency.recent,
      inflate: { bytesIn: inflate.bytesIn, bytesOut: inflate.bytesOut, bufferSize: inflate.bufferSize },
    };
    return status;
  }

  async close(resumable: boolean): Promise<Record<number, Session>> {
    const sessions: Record<number, Session> = {};
    await Promise.all(
      [...this.entries.values()].map(async (e) => {
        const session = await e.shard.close({ resumable }).catch(() => null);
        if (session) sessions[e.shard.id] = session;
      }),
    );
    for (const e of this.entries.values()) e.shard.removeAllListeners();
    return sessions;
  }

  setPaused(paused: boolean): void {
    if (paused === this.paused) return;
    this.paused = paused;
    for (const e of this.entries.values()) {
      if (paused) e.shard.pause();
      else e.shard.resume();
    }
  }

  setDebug(enabled: boolean): void {
    if (enabled === this.debugging) return;
    this.debugging = enabled;
    for (const e of this.entries.values()) {
      if (enabled && !e.debugListener) {
        e.debugListener = () => undefined;
        e.shard.on('debug', e.debugListener);
      } else if (!enabled && e.debugListener) {
        e.shard.off('debug', e.debugListener);
        e.debugListener = null;
      }
    }
  }

  private entry(shardId: number): Entry {
    const e = this.entries.get(shardId);
    if (!e) throw new ShardlineError('UNKNOWN_SHARD', `shard ${shardId} is not part of this cluster`);
    return e;
  }

  private add(id: number, options: ShardOptions): void {
    const shard = new Shard({ ...options, id });
    const e: Entry = { shard, guilds: null, fatal: undefined, debugListener: null };
    this.entries.set(id, e);
    const sink = this.sink;
    // The one stream: guild counts and pause bookkeeping read it, then it goes on to the cluster unchanged.
    shard.on('event', (ev: ShardEvent) => {
      if (ev.kind === 'dispatch' || ev.kind === 'ready') e.guilds = trackGuilds(e.guilds, ev);
      else if (ev.kind === 'state') {
        if (ev.to === 'connecting' && this.paused) e.shard.pause(); // close()/fatal cleared the pause
        if (ev.to === 'fatal') e.fatal = ev.cause.reason;
      }
      sink.event(ev);
    });
    if (this.debugging) {
      e.debugListener = () => undefined;
      shard.on('debug', e.debugListener);
    }
  }
}
