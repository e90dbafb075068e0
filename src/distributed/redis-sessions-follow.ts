/**
 * How a {@link RedisSessionStore} follows a shard's or a cluster's sessions: one listener on the source's event
 * stream (`event` / `shardEvent`) turns READY (a new session), RESUMED (a confirmed one) and — with
 * `sequence: 'dispatch'` — every dispatch (a higher sequence) into {@link SessionUpdate}s. It only touches memory;
 * the store writes on its flush interval.
 * @packageDocumentation
 */
import { Cluster } from '../cluster.js';
import { ShardlineError } from '../errors.js';
import type { DispatchEvent, ReadyData, ShardEvent } from '../events.js';
import type { Session } from '../session.js';
import { Shard } from '../shard.js';

/** A partial session update: a full new session (sessionId + resumeUrl + total) or a sequence of the known one. */
export interface SessionUpdate {
  sessionId: string;
  sequence?: number;
  resumeUrl?: string;
  total?: number;
  startedAt?: number;
}

/** Options of {@link RedisSessionStore.attach}. */
export interface AttachOptions {
  /**
   * Where stored sequences come from. `'dispatch'` (default): every delivered dispatch. `'manual'`: only
   * {@link RedisSessionStore.update} calls — e.g. from `NatsBroker` once an event is safely published, so a crash
   * never stores a sequence whose events were not handed on.
   */
  sequence?: 'dispatch' | 'manual';
  /** Sessions the source resumes (e.g. from {@link RedisSessionStore.load}; loaded ones are known already). */
  sessions?: Record<number, Session>;
}

/** Where the followed sessions go: the store's in-memory state. */
export interface SessionSink {
  /** The session the store knows for a shard (undefined: none). */
  known(shardId: number): { readonly sessionId: string; readonly total: number } | undefined;
  /** A session the source resumes, identified with `total` shards (kept unless one is known already). */
  seed(shardId: number, session: Session, total: number): void;
  update(shardId: number, patch: SessionUpdate): void;
}

/** Follow `source`'s sessions into `sink`; returns the function that removes the listener. */
export function followSessions(source: Shard | Cluster, options: AttachOptions, sink: SessionSink): () => void {
  const byDispatch = (options.sequence ?? 'dispatch') === 'dispatch';
  const totalOf = (shardId: number): number | undefined => (source instanceof Shard ? source.total : (source.total ?? undefined)) ?? sink.known(shardId)?.total;
  for (const [id, s] of Object.entries(options.sessions ?? {})) {
    const t = totalOf(Number(id));
    if (t !== undefined) sink.seed(Number(id), s, t);
  }
  const onReady = (shardId: number, data: ReadyData, session: Session) => {
    const total = totalOf(shardId);
    if (total === undefined) return;
    const seq = byDispatch ? session.sequence : 0;
    sink.update(shardId, { sessionId: data.session_id, resumeUrl: data.resume_gateway_url, total, sequence: seq, startedAt: Date.now() });
  };
  const onResumed = (shardId: number, session: Session) => {
    const total = totalOf(shardId);
    const known = sink.known(shardId);
    if (known?.sessionId === session.sessionId) {
      if (byDispatch) sink.update(shardId, { sessionId: session.sessionId, sequence: session.sequence });
    } else if (total !== undefined) {
      sink.update(shardId, { ...session, sequence: byDispatch ? session.sequence : 0, total, startedAt: Date.now() });
    }
  };
  const onDispatch = (event: DispatchEvent) => {
    const known = sink.known(event.shardId);
    const sessionId = known?.sessionId ?? currentSession(source, event.shardId)?.sessionId;
    if (sessionId) sink.update(event.shardId, { sessionId, sequence: event.sequence });
  };
  // One listener on the source's event stream (`event` on a Shard, `shardEvent` on a Cluster).
  const onEvent = (e: ShardEvent) => {
    switch (e.kind) {
      case 'ready':
        onReady(e.shardId, e.data, e.session);
        return;
      case 'resumed':
        onResumed(e.shardId, e.session);
        return;
      case 'dispatch':
        if (byDispatch) onDispatch(e.event);
        return;
      default:
        return;
    }
  };
  if (source instanceof Shard) return source.listen('event', onEvent);
  if (source instanceof Cluster) return source.listen('shardEvent', onEvent);
  throw new ShardlineError('INVALID_OPTION', 'attach() takes a Shard or a Cluster');
}

/** The session a shard of `source` has right now, when it runs in this thread. */
function currentSession(source: Shard | Cluster, shardId: number): Session | null {
  if (source instanceof Shard) return source.id === shardId ? source.session : null;
  try {
    return source.shard(shardId).shard?.session ?? null;
  } catch {
    return null;
  }
}
