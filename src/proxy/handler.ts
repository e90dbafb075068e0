/**
 * The bot's handler module in the gateway proxy (`GatewayProxyOptions.handler`): run in the proxy's own thread on
 * every upstream dispatch, after the proxy has cached it and queued it for its clients. The same
 * {@link HandlerRunner} as a cluster's `workers: 0` handler mode: each shard's dispatches one at a time, in order;
 * past its bound the upstream shards stop reading their sockets until half of the backlog is handled.
 * @packageDocumentation
 */
import { type Cluster, holdDelivery } from '../cluster.js';
import type { HandlerLogEvent, HandlerMessageEvent } from '../handler/define.js';
import { handlerLink, localRunner } from '../handler/cluster-link.js';
import type { HandlerRunner } from '../handler/runner.js';
import { ShardlineError } from '../errors.js';
import type { DispatchEvent } from '../events.js';

/** What the handler needs of the proxy. */
export interface ProxyHandlerSide {
  /** The upstream cluster (commands go there). */
  cluster(): Cluster;
  message(event: HandlerMessageEvent): void;
  log(event: HandlerLogEvent): void;
  /** A handler that threw (`HandlerError` HANDLER_FAILED), or a dispatch that could not be given to it. */
  report(error: Error): void;
  /** Removes the token from a text (a handler's error may quote it). */
  redact(text: string): string;
}

/** The last dispatch the handler finished on a shard: its upstream session and sequence (0: none yet). */
export interface HandledPosition {
  sessionId: string;
  sequence: number;
}

/** The proxy's handler: a {@link HandlerRunner} fed the upstream dispatches, its commands sent by the upstream cluster. */
export class ProxyHandler {
  /**
   * Per shard, what was fed and not finished yet, oldest first: `[sequence, upstream session id]` (the runner
   * finishes a shard's dispatches in the order they were fed). Bounded by the runner's back-pressure.
   */
  readonly #fed = new Map<number, { items: [number, string][]; head: number }>();
  /** Per shard, the newest upstream session fed: only its dispatches move the position. */
  readonly #session = new Map<number, string>();
  readonly #position = new Map<number, HandledPosition>();
  readonly #runner: HandlerRunner;
  readonly #side: ProxyHandlerSide;
  /** Whether the runner asked for the upstream sockets to pause (it is behind by its bound). */
  #held = false;
  /** Dispatches the handler finished (or failed and was reported). */
  handled = 0;

  constructor(url: string, side: ProxyHandlerSide) {
    this.#side = side;
    const cluster = () => side.cluster();
    const link = handlerLink({
      requestGuildMembers: (guildId, options) => cluster().requestGuildMembers(guildId, options),
      updateVoiceState: (guildId, state) => cluster().updateVoiceState(guildId, state),
      requestSoundboardSounds: (ids) => cluster().requestSoundboardSounds(ids),
      send: (shardId, payload) => cluster().send(shardId, payload),
      message: (e) => side.message(e),
      log: (e) => side.log(e),
      handled: () => void this.handled++,
      recorded: () => undefined, // no reshard overlap dedupe here: the proxy's upstream is not resharded with a handler
      held: () => undefined,
    });
    this.#runner = localRunner(url, link, {
      // Only dispatches are fed in: what comes back is a handler's failure, reported; the next event follows.
      pass: (e) => {
        if (e.kind === 'error') side.report(e.error);
      },
      // async: a command from init(), before the upstream cluster exists, rejects (PROXY_NOT_STARTED) instead of throwing
      send: async (shardId, payload) => cluster().send(shardId, payload),
      owns: () => true, // every upstream shard's commands are sent by the one cluster
      pause: (paused) => this.#hold(paused),
      redact: (text) => side.redact(text),
      finished: (shardId, sequence) => this.#finished(shardId, sequence),
      // start() rejects with this error (ready()); nothing else reports it, so it is said once.
      failed: () => undefined,
    });
  }

  /** Resolves once the module is loaded and its `init` ran; rejects with `HANDLER_LOAD_FAILED` otherwise. */
  ready(): Promise<void> {
    return this.#runner.gate(() => undefined);
  }

  /**
   * One upstream dispatch, in its shard's order. `data` is the parsed `d` when the proxy has it; else `d` (JSON
   * text) is parsed here, once, only because a handler is set.
   */
  dispatch(shardId: number, type: string, sequence: number, d: string, data: unknown, sessionId: string | null): void {
    if (data === undefined) {
      try {
        data = JSON.parse(d);
      } catch (err) {
        this.#side.report(
          new ShardlineError('PROXY_DISPATCH_FAILED', `shard ${shardId}: dispatch ${type} seq ${sequence} does not parse and was not handled: ${(err as Error).message}`, { cause: err }),
        );
        return;
      }
    }
    // READY starts a session: nothing of it is handled yet (a restart resumes it from 0, replaying it all)
    const sid = type === 'READY' ? (((data as { session_id?: unknown } | null)?.session_id as string | undefined) ?? sessionId) : sessionId;
    if (sid && sid !== this.#session.get(shardId)) {
      this.#session.set(shardId, sid);
      if (type === 'READY') this.#position.set(shardId, { sessionId: sid, sequence: 0 });
    }
    let q = this.#fed.get(shardId);
    if (!q) this.#fed.set(shardId, (q = { items: [], head: 0 }));
    q.items.push([sequence, sid ?? '']);
    this.#runner.event({ kind: 'dispatch', shardId, event: { shardId, type, sequence, data } as DispatchEvent });
  }

  #finished(shardId: number, sequence: number): void {
    const q = this.#fed.get(shardId);
    if (!q || q.head >= q.items.length) return;
    const [seq, sid] = q.items[q.head++]!;
    if (q.head === q.items.length) {
      q.items.length = 0;
      q.head = 0;
    } else if (q.head >= 1024) {
      q.items.splice(0, q.head);
      q.head = 0;
    }
    // a dispatch of an older session (superseded by a READY): where that session stopped no longer matters
    if (seq === sequence && sid !== '' && sid === this.#session.get(shardId)) this.#position.set(shardId, { sessionId: sid, sequence: seq });
  }

  /**
   * Per shard, the last dispatch finished of its newest upstream session: what a restarted proxy (with Redis)
   * resumes its upstream from, so that what was received but not handled before a kill is replayed to the handler.
   */
  positions(): Record<number, HandledPosition> {
    const out: Record<number, HandledPosition> = {};
    for (const [id, p] of this.#position) out[id] = { ...p };
    return out;
  }

  /** Handle everything fed so far, then the handler's `close()`: at most `LOCAL_CLOSE_TIMEOUT` (10 s) real ms, like a cluster's. */
  close(): Promise<void> {
    return this.#runner.closeWithin();
  }

  /**
   * Back-pressure: every upstream shard stops (true) or resumes (false) reading its socket. Through the cluster's
   * delivery pipeline, the one place that pauses its running shards (wherever they run, a reshard's new set too),
   * so the proxy's hold and a slow `cluster.events()` consumer combine instead of undoing each other.
   */
  #hold(paused: boolean): void {
    if (paused === this.#held) return;
    this.#held = paused;
    holdDelivery(this.#side.cluster(), paused);
  }
}
