/**
 * The gateway side of {@link NatsBroker} (`nats-broker.ts`): the {@link EventPublisher} that queues every dispatch
 * of a shard or cluster and publishes it to JetStream in order per shard, with the session id of each event's
 * session (its message id `{sessionId}:{sequence}`), and holds the source back when JetStream falls behind.
 * @packageDocumentation
 */
import { Cluster } from '../cluster.js';
import { ShardlineError } from '../errors.js';
import type { DispatchEvent, ShardEvent } from '../events.js';
import type { Session } from '../session.js';
import { Shard } from '../shard.js';
import type { NatsBroker } from './nats-broker.js';
import { enc } from './nats-connection.js';
import type { BrokerEvent, PublisherOptions } from './nats-types.js';

interface Pending {
  subject: string;
  msgId: string;
  body: Uint8Array;
  sessionId: string;
  sequence: number;
  state: 'queued' | 'sending' | 'done';
  duplicate: boolean;
}

interface Lane {
  items: Pending[];
  inFlight: number;
  retryTimer: NodeJS.Timeout | null;
  failures: number;
}

/**
 * Publishes a shard's or cluster's dispatches to JetStream (made by {@link NatsBroker.publisher}). Its one listener
 * on the source's event stream (`event` / `shardEvent`: dispatches, READY and RESUMED for the session ids) only
 * encodes and queues; publishes run in the background, in order per shard, at most
 * `maxInFlightPerShard` at a time, and are retried until stored. When more than `highWaterMark` events wait, the
 * source stops reading its sockets (heartbeats too, like any slow consumer) until half of them are stored.
 */
export class EventPublisher {
  /**
   * Counters: events stored, dropped by the server as duplicates, publish attempts that failed, and times the source
   * was held back because more than `highWaterMark` events were waiting.
   */
  readonly stats = { published: 0, duplicates: 0, failures: 0, pauses: 0 };
  /** @internal */
  onClosed: (() => void) | null = null;
  private readonly lanes = new Map<number, Lane>();
  private readonly sessions = new Map<number, string>();
  private readonly unknownReported = new Set<number>();
  private readonly highWater: number;
  private readonly perShard: number;
  private readonly timeout: number;
  private readonly detach: () => void;
  private gate: AsyncIterator<DispatchEvent> | null = null;
  private _pending = 0;
  private idle: (() => void)[] = [];
  private closed: Promise<void> | null = null;

  /** @internal */
  constructor(
    private readonly broker: NatsBroker,
    private readonly source: Shard | Cluster,
    private readonly options: PublisherOptions,
    private readonly report: (err: Error) => void,
  ) {
    this.highWater = Math.max(1, options.highWaterMark ?? 5000);
    this.perShard = Math.max(1, options.maxInFlightPerShard ?? 1);
    this.timeout = options.publishTimeout ?? 5000;
    for (const [id, s] of Object.entries(options.initialSessions ?? {})) this.sessions.set(Number(id), s.sessionId);
    // One listener on the source's event stream (`event` on a Shard, `shardEvent` on a Cluster).
    const onEvent = (e: ShardEvent) => {
      switch (e.kind) {
        case 'dispatch':
          this.enqueue(e.event);
          return;
        case 'ready':
          this.sessions.set(e.shardId, e.data.session_id);
          return;
        case 'resumed':
          this.sessions.set(e.shardId, e.session.sessionId);
          return;
        default:
          return;
      }
    };
    if (source instanceof Shard) this.detach = source.listen('event', onEvent);
    else if (source instanceof Cluster) this.detach = source.listen('shardEvent', onEvent);
    else throw new ShardlineError('INVALID_OPTION', 'publisher() takes a Shard or a Cluster');
  }

  /** Events queued or being published. */
  get pending(): number {
    return this._pending;
  }

  /** Whether the source is currently held back because JetStream is behind. */
  get paused(): boolean {
    return this.gate !== null;
  }

  /** Resolve when every event queued so far is stored (or reject after `timeout` ms). */
  flush(timeout = 10_000): Promise<void> {
    if (this._pending === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.idle = this.idle.filter((f) => f !== done);
        reject(new ShardlineError('PUBLISH_PENDING', `${this._pending} event(s) still not stored by JetStream after ${timeout} ms`));
      }, timeout);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.idle.push(done);
    });
  }

  /**
   * Stop listening, wait (up to `timeout`) for queued events to be stored, then give up on the rest (their
   * sequences were never recorded as published, so a resume replays them).
   */
  close(timeout = 10_000): Promise<void> {
    this.closed ??= (async () => {
      this.detach();
      this.release();
      try {
        await this.flush(timeout);
      } catch (err) {
        this.report(err as Error);
      }
      for (const lane of this.lanes.values()) {
        if (lane.retryTimer) clearTimeout(lane.retryTimer);
        lane.retryTimer = null;
        lane.items.length = 0;
      }
      this.lanes.clear();
      this._pending = 0;
      this.onClosed?.();
    })();
    return this.closed;
  }

  private sessionOf(shardId: number): string | undefined {
    let local: Session | null | undefined;
    if (this.source instanceof Shard) local = this.source.session;
    else {
      try {
        local = this.source.shard(shardId).shard?.session;
      } catch {
        local = undefined;
      }
    }
    return local?.sessionId ?? this.sessions.get(shardId);
  }

  /** Hot path: encode and queue (synchronous, never waits on the network). */
  private enqueue(event: DispatchEvent): void {
    if (this.closed) return;
    const sessionId = this.sessionOf(event.shardId);
    if (!sessionId && !this.unknownReported.has(event.shardId)) {
      this.unknownReported.add(event.shardId);
      this.report(new ShardlineError('NO_SESSION', `shard ${event.shardId}: ${event.type} seq ${event.sequence} has no known session; published without duplicate detection`));
    }
    const sid = sessionId ?? 'unknown';
    const body: BrokerEvent = { shardId: event.shardId, type: event.type, sequence: event.sequence, sessionId: sid, data: event.data };
    let lane = this.lanes.get(event.shardId);
    if (!lane) this.lanes.set(event.shardId, (lane = { items: [], inFlight: 0, retryTimer: null, failures: 0 }));
    lane.items.push({
      subject: this.broker.eventSubject(event.shardId, event.type),
      msgId: `${sid}:${event.sequence}`,
      body: enc.encode(JSON.stringify(body)),
      sessionId: sid,
      sequence: event.sequence,
      state: 'queued',
      duplicate: false,
    });
    this._pending++;
    if (this._pending >= this.highWater && !this.gate) this.hold();
    this.pump(event.shardId, lane);
  }

  private pump(shardId: number, lane: Lane): void {
    if (lane.retryTimer) return;
    for (const item of lane.items) {
      if (lane.inFlight >= this.perShard) break;
      if (item.state !== 'queued') continue;
      item.state = 'sending';
      lane.inFlight++;
      this.broker.js.publish(item.subject, item.body, { msgID: item.msgId, timeout: this.timeout }).then(
        (ack) => {
          lane.inFlight--;
          item.state = 'done';
          item.duplicate = ack.duplicate;
          lane.failures = 0;
          this.settle(shardId, lane);
        },
        (err: Error) => {
          lane.inFlight--;
          item.state = 'queued';
          this.stats.failures++;
          lane.failures++;
          if (this.closed && this.lanes.size === 0) return;
          const wait = Math.min(100 * 2 ** Math.min(lane.failures - 1, 6), 5000);
          this.report(new ShardlineError('PUBLISH_FAILED', `shard ${shardId}: publishing ${item.msgId} to ${item.subject} failed (${err.message}); retrying in ${wait} ms`, { cause: err }));
          if (!lane.retryTimer) {
            lane.retryTimer = setTimeout(() => {
              lane.retryTimer = null;
              if (this.lanes.get(shardId) === lane) this.pump(shardId, lane);
            }, wait);
          }
        },
      );
    }
  }

  /** Pop stored events off the head of a shard's queue, in order, and report them. */
  private settle(shardId: number, lane: Lane): void {
    let n = 0;
    while (n < lane.items.length && lane.items[n]!.state === 'done') n++;
    if (n > 0) {
      const done = lane.items.splice(0, n);
      this._pending -= n;
      for (const item of done) {
        if (item.duplicate) this.stats.duplicates++;
        else this.stats.published++;
        if (item.sessionId !== 'unknown') {
          this.options.sessions?.update(shardId, { sessionId: item.sessionId, sequence: item.sequence });
          try {
            this.options.onPublished?.({ shardId, sessionId: item.sessionId, sequence: item.sequence, duplicate: item.duplicate });
          } catch (err) {
            this.report(err as Error);
          }
        }
      }
      if (this.gate && this._pending <= this.highWater >> 1) this.release();
      if (this._pending === 0) {
        const waiters = this.idle;
        this.idle = [];
        for (const w of waiters) w();
      }
    }
    this.pump(shardId, lane);
  }

  /** Stop the source reading its sockets: an events() iterator nobody reads fills up and applies back-pressure. */
  private hold(): void {
    this.stats.pauses++;
    try {
      this.gate = this.source.events();
    } catch {
      this.gate = null;
    }
  }

  private release(): void {
    const g = this.gate;
    this.gate = null;
    void g?.return?.();
  }
}
