/**
 * Runs a {@link Handler} on the event streams of some shards (in a worker thread, or in this thread): each shard's
 * items are processed one at a time, in order — a dispatch waits for the handler's promise of the previous one, and
 * a shard's other events (state changes, READY / RESUMED session info, errors, ...) are passed on only after every
 * dispatch before them was handled. So whoever records "handled up to sequence n" from `done()` and sessions from
 * the passed events sees them in the shard's own order. Bounded: past `maxQueued` items waiting, `pause(true)`
 * asks for the sockets to stop being read until half of them are handled.
 * @packageDocumentation
 */
import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HandlerError, ShardlineError } from '../errors.js';
import type { DispatchEvent, GuildMembersChunk, PresenceData, ShardEvent } from '../events.js';
import type { GatewayCommand } from '../cluster-status.js';
import type { GuildMembersQuery, VoiceStateOptions } from '../cluster-commands.js';
import { fingerprint, routingKey } from '../reshard-dedupe.js';
import type { Handler, HandlerContext, HandlerLogEvent, HandlerScope } from './define.js';

/** Commands a handler sends beyond its shard, carried out where the cluster lives (the main thread). */
export type RouteMethod = 'members' | 'voice' | 'soundboard' | 'sendTo';

/** How the runner reports and acts (worker entry or cluster). */
export interface RunnerHooks {
  worker: number | null;
  /** `'exit'`: a throwing handler ends the thread (worker mode), the event unacknowledged. */
  handlerErrors: 'report' | 'exit';
  /** A shard's non-dispatch event, in order. */
  pass(event: ShardEvent): void;
  /** A dispatch was handled (or failed and was reported); `posts` are the values posted while handling it. */
  done(shardId: number, sequence: number, type: string, posts: unknown[]): void;
  /** A value posted outside of an event's handling. */
  post(shardId: number | null, value: unknown): void;
  log(level: HandlerLogEvent['level'], shardId: number | null, message: string): void;
  /** `handlerErrors: 'exit'` and the handler threw. */
  exit(error: HandlerError): void;
  /** Send on a shard this runner's thread runs (rejects for other shards). */
  send(shardId: number, payload: GatewayCommand): Promise<void>;
  /** Whether this thread runs the shard. */
  owns(shardId: number): boolean;
  route(method: RouteMethod, args: unknown[]): Promise<unknown>;
  /** Flow control: too many items wait (true), or caught up (false). */
  pause(paused: boolean): void;
  /**
   * Removes the bot token from a text: a handler's log line or error (message, stack, causes) may quote what it was
   * given, and nothing reported may carry the token. Default: no change.
   */
  redact?(text: string): string;
  /**
   * The module could not be loaded, or its `init` failed: called once, before any {@link HandlerRunner.gate} settles.
   * Nothing is handled afterwards (the lanes drop their dispatches).
   */
  failed(error: HandlerError): void;
  /**
   * Reshard, new set ({@link HandlerRunner.gated}): a dispatch waits for its verdict ({@link HandlerRunner.decide});
   * here is its routing key and fingerprint for the main thread's overlap dedupe. `ticket` names the waiting
   * dispatch (not its sequence: a shard that IDENTIFYs again mid-overlap starts its sequences over while dispatches
   * of its previous session still wait). `burst`: a GUILD_CREATE (or
   * unavailable GUILD_DELETE) of a guild the shard's READY listed, not seen since: its initial burst.
   */
  held?(shardId: number, ticket: number, type: string, key: string, fp: number, burst: boolean): void;
  /** Reshard, running set ({@link HandlerRunner.record}): the handler finished a dispatch of `key` / `fp` (before `done`). */
  recorded?(shardId: number, sequence: number, key: string, fp: number): void;
  /** Reshard, new set: a dispatch was dropped by its verdict (the running set handled it); its position moves on. */
  skipped?(shardId: number, sequence: number): void;
}

type DispatchItem = { k: 'dispatch'; event: DispatchEvent; verdict?: boolean; uncounted?: true; ticket?: number };
type Item = DispatchItem | { k: 'event'; event: ShardEvent } | { k: 'mark'; resolve: () => void };

interface Lane {
  items: Item[];
  head: number;
  running: boolean;
  ctx: HandlerContext;
  /** Gated dispatches without a verdict yet, by ticket. */
  held: Map<number, DispatchItem>;
  /** The handler call in progress, if any. */
  current: Promise<void> | null;
  /** Gated: guilds of the shard's last READY whose GUILD_CREATE has not come yet. */
  burst: Set<string> | null;
}

/**
 * Real ms a runner in the closing thread itself (a cluster's `workers: 0`, the gateway proxy) waits for its handler
 * to finish what was read; a worker's close is bounded by its host instead.
 */
export const LOCAL_CLOSE_TIMEOUT = 10_000;

/** Items waiting over all shards before the sockets are paused. */
export const MAX_QUEUED = 2048;

export class HandlerRunner {
  readonly #lanes = new Map<number, Lane>();
  #queued = 0;
  #paused = false;
  #ready: Promise<Handler | null>;
  #handler: Handler | null = null;
  /** Set once the module failed to load (the one error every gate rejects with). */
  #loadError: HandlerError | null = null;
  #closed = false;
  /** Reshard, new set: every dispatch waits for a verdict (until {@link ungate}). */
  #gated = false;
  /**
   * The last ticket given to a held dispatch. Starts at a random point, so a verdict meant for a dispatch of a
   * replaced thread (whose tickets are gone with it) does not name one of this thread's.
   */
  #ticket = Math.floor(Math.random() * 2 ** 40) * 1024;
  /** Reshard, running set: report what the handler finished ({@link RunnerHooks.recorded}). */
  #recording = false;
  /** Reshard, running set at the switch: nothing more is handled (held; dropped on close). */
  #frozen = false;
  readonly scope: HandlerScope;

  constructor(
    load: Promise<Handler>,
    private readonly hooks: RunnerHooks,
  ) {
    const h = hooks;
    const log = (level: HandlerLogEvent['level'], shardId: number | null) => (message: string) => h.log(level, shardId, this.#clean(String(message)));
    this.scope = {
      worker: h.worker,
      log: { debug: log('debug', null), info: log('info', null), warn: log('warn', null), error: log('error', null) },
      post: (value) => h.post(null, value),
      requestGuildMembers: (guildId: string, options?: GuildMembersQuery) => h.route('members', [guildId, options]) as Promise<GuildMembersChunk[]>,
      updateVoiceState: (guildId: string, state: VoiceStateOptions) => h.route('voice', [guildId, state]).then(() => undefined),
      requestSoundboardSounds: (guildIds: Iterable<string>) => h.route('soundboard', [[...guildIds]]).then(() => undefined),
      sendTo: (shardId: number, payload: GatewayCommand) => (h.owns(shardId) ? h.send(shardId, payload) : h.route('sendTo', [shardId, { op: payload.op, d: payload.d }]).then(() => undefined)),
    };
    this.#ready = load.then(async (handler) => {
      if (!handler || typeof handler.dispatch !== 'function') {
        throw new TypeError('the module has no default export with a dispatch(event, ctx) function (export default defineHandler({ dispatch ... }))');
      }
      await handler.init?.(this.scope);
      this.#handler = handler;
      return handler;
    });
    // The one place a load failure is reported: once, before any gate settles (this handler is registered first).
    this.#ready.catch((err: unknown) => {
      if (h.redact) scrub(err, h.redact);
      this.#loadError = new HandlerError('HANDLER_LOAD_FAILED', `the handler module could not be loaded: ${this.#describe(err)}`, { shardId: -1, eventType: null, cause: err });
      h.failed(this.#loadError);
    });
  }

  /**
   * Run `start` once the module is loaded and `init` ran (a worker's shards connect through this, so no shard
   * reaches READY before a load failure is known). Rejects with the `HANDLER_LOAD_FAILED` error that `failed()` was
   * given, after it was given; never hangs.
   */
  gate<T>(start: () => T | Promise<T>): Promise<T> {
    return this.#ready.then(
      () => start(),
      () => {
        throw this.#loadError!;
      },
    );
  }

  /** A shard's event (dispatches are handled, the rest passed on in order). */
  event(e: ShardEvent): void {
    this.#push(e.shardId, e.kind === 'dispatch' ? { k: 'dispatch', event: e.event } : { k: 'event', event: e });
  }

  /** Resolves once everything queued for the shard so far was handled. */
  drained(shardId: number): Promise<void> {
    return new Promise((resolve) => this.#push(shardId, { k: 'mark', resolve }));
  }

  /**
   * Reshard, new set: from now on every dispatch waits in its lane for {@link decide} (its key and fingerprint go
   * out through `held`); `false` lets every waiting dispatch through and ends that.
   */
  gated(on: boolean): void {
    this.#gated = on;
    if (on) return;
    for (const [shardId, lane] of this.#lanes) {
      for (const item of lane.held.values()) item.verdict ??= true;
      lane.held.clear();
      this.#wake(lane, shardId);
    }
  }

  /** Reshard, new set: the verdict on a held dispatch, by its ticket (true: handle it; false: the running set did). */
  decide(shardId: number, ticket: number, handle: boolean): void {
    const lane = this.#lanes.get(shardId);
    const item = lane?.held.get(ticket);
    if (!lane || !item) return; // a stale verdict (the item was decided, or its thread was replaced)
    lane.held.delete(ticket);
    item.verdict = handle;
    this.#wake(lane, shardId);
  }

  /** Reshard, running set: report (or stop reporting) each finished dispatch's key and fingerprint. */
  record(on: boolean): void {
    this.#recording = on;
  }

  /**
   * Reshard, running set: stop handling (true; resolves once no handler call is in progress, so every recorded
   * fingerprint has been reported) or go on (false: the reshard was aborted).
   */
  async freeze(on: boolean): Promise<void> {
    this.#frozen = on;
    if (!on) {
      for (const [shardId, lane] of this.#lanes) this.#wake(lane, shardId);
      return;
    }
    await Promise.all([...this.#lanes.values()].map((lane) => lane.current));
  }

  /** Frozen at a reshard's switch (what it reads is not handled). */
  get frozen(): boolean {
    return this.#frozen;
  }

  /**
   * {@link close}, waiting at most `ms` real ms (a handler stuck on an event must not hold up its owner's close; what
   * it had not reached is then not handled). Used where the runner lives in the closing thread itself.
   */
  async closeWithin(ms = LOCAL_CLOSE_TIMEOUT): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref();
    });
    await Promise.race([this.close(), late]);
    clearTimeout(timer);
  }

  /** Handle everything queued (a frozen runner drops it), then call the handler's `close()`. */
  async close(): Promise<void> {
    if (this.#frozen) {
      this.#discard = true;
      for (const [shardId, lane] of this.#lanes) this.#wake(lane, shardId);
    }
    await Promise.all([...this.#lanes.keys()].map((id) => this.drained(id)));
    if (this.#closed) return;
    this.#closed = true;
    const handler = await this.#ready.catch(() => null);
    try {
      await handler?.close?.();
    } catch (err) {
      this.hooks.log('error', null, `handler close() failed: ${this.#describe(err)}`);
    }
  }

  #lane(shardId: number): Lane {
    let lane = this.#lanes.get(shardId);
    if (!lane) {
      const h = this.hooks;
      const log = (level: HandlerLogEvent['level']) => (message: string) => h.log(level, shardId, this.#clean(String(message)));
      const ctx: HandlerContext = {
        ...this.scope,
        shardId,
        log: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
        post: (value) => h.post(shardId, value),
        send: (payload) => h.send(shardId, { op: payload.op, d: payload.d }),
        updatePresence: (presence: PresenceData) => h.send(shardId, { op: 3, d: presence }),
      };
      lane = { items: [], head: 0, running: false, ctx, held: new Map(), current: null, burst: null };
      this.#lanes.set(shardId, lane);
    }
    return lane;
  }

  #discard = false;

  #push(shardId: number, item: Item): void {
    const lane = this.#lane(shardId);
    lane.items.push(item);
    if (item.k === 'dispatch' && this.#frozen) {
      // Frozen at a reshard's switch: the set is closed next (its sockets must read the close handshake).
      item.uncounted = true;
    } else if (item.k === 'dispatch' && this.#gated) {
      // Held dispatches are bounded by the reshard (maxBufferedEvents), not here: a lane waiting for a verdict
      // must not pause the thread's other shards (some may not be READY yet).
      item.uncounted = true;
      const ticket = (item.ticket = ++this.#ticket);
      lane.held.set(ticket, item);
      const e = item.event;
      const d = e.data as { id?: string; unavailable?: boolean; guilds?: { id: string }[] } | null;
      if (e.type === 'READY') lane.burst = new Set((d?.guilds ?? []).map((g) => g.id));
      const burst = (e.type === 'GUILD_CREATE' || (e.type === 'GUILD_DELETE' && d?.unavailable === true)) && lane.burst?.delete(String(d?.id)) === true;
      this.hooks.held?.(shardId, ticket, e.type, routingKey(e), fingerprint(e), burst);
    } else if (++this.#queued >= MAX_QUEUED && !this.#paused) {
      this.#paused = true;
      this.hooks.pause(true);
    }
    this.#wake(lane, shardId);
  }

  #wake(lane: Lane, shardId: number): void {
    if (!lane.running && lane.head < lane.items.length) {
      lane.running = true;
      queueMicrotask(() => void this.#drain(lane, shardId));
    }
  }

  async #drain(lane: Lane, shardId: number): Promise<void> {
    const h = this.hooks;
    let handler = this.#handler;
    if (handler === null) handler = await this.#ready.catch(() => null);
    while (lane.head < lane.items.length) {
      const item = lane.items[lane.head]!;
      // A dispatch waiting for its verdict, or a frozen runner: the lane waits (decide / gated / freeze wake it).
      if (item.k === 'dispatch' && !this.#discard && (this.#frozen || (item.verdict === undefined && item.ticket !== undefined && lane.held.has(item.ticket)))) {
        lane.running = false;
        return;
      }
      lane.items[lane.head++] = undefined as unknown as Item;
      if (lane.head >= 1024 && lane.head * 2 >= lane.items.length) {
        lane.items = lane.items.slice(lane.head);
        lane.head = 0;
      }
      if (!(item.k === 'dispatch' && item.uncounted) && --this.#queued <= MAX_QUEUED / 2 && this.#paused) {
        this.#paused = false;
        h.pause(false);
      }
      if (item.k === 'event') h.pass(item.event);
      else if (item.k === 'mark') item.resolve();
      else if (handler === null || this.#discard) {
        // The module failed to load (reported once, through failed()), or a frozen runner closes: not handled.
      } else if (item.verdict === false) h.skipped?.(shardId, item.event.sequence);
      else {
        const run = this.#handle(handler, lane, shardId, item);
        lane.current = run;
        await run;
        lane.current = null;
      }
    }
    lane.items = [];
    lane.head = 0;
    lane.running = false;
  }

  /** A text the handler gave or caused (a log line, an error), the token removed. */
  #clean(text: string): string {
    return this.hooks.redact ? this.hooks.redact(text) : text;
  }

  /** An error as text, the token removed. */
  #describe(err: unknown): string {
    return this.#clean(describe(err));
  }

  async #handle(handler: Handler, lane: Lane, shardId: number, item: Item & { k: 'dispatch' }): Promise<void> {
    const h = this.hooks;
    const event = item.event;
    const posts: unknown[] = [];
    let open = true;
    const ctx: HandlerContext = Object.create(lane.ctx) as HandlerContext;
    (ctx as { post: HandlerContext['post'] }).post = (value) => {
      if (open) posts.push(value);
      else h.post(shardId, value);
    };
    try {
      const r = handler.dispatch(event, ctx);
      if (r !== undefined && typeof (r as Promise<void>).then === 'function') await r;
    } catch (err) {
      if (h.redact) scrub(err, h.redact);
      const error = new HandlerError('HANDLER_FAILED', `shard ${shardId}: the handler failed on ${event.type} (seq ${event.sequence}): ${this.#describe(err)}`, {
        shardId,
        eventType: event.type,
        cause: err,
      });
      if (h.handlerErrors === 'exit') {
        open = false;
        h.exit(error);
        await new Promise<never>(() => undefined); // the thread ends; nothing after this event is handled here
      }
      h.pass({ kind: 'error', shardId, error });
    }
    open = false;
    if (this.#recording) h.recorded?.(shardId, event.sequence, routingKey(event), fingerprint(event));
    h.done(shardId, event.sequence, event.type, posts);
  }
}

/** Redact an error's message and stack, and its causes' (at most 8 deep), in place: the handler gave it up to us. */
function scrub(err: unknown, redact: (text: string) => string): void {
  let e: unknown = err;
  for (let depth = 0; depth < 8 && e instanceof Error; depth++) {
    const x = e as { message: string; stack?: string };
    try {
      x.message = redact(x.message);
      if (typeof x.stack === 'string') x.stack = redact(x.stack);
    } catch {
      // a frozen error: its text stays, but the HandlerError's own message is built from the redacted description
    }
    e = (e as { cause?: unknown }).cause;
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** The file URL of a handler module: a URL, a file URL string, or a path resolved against the working directory. */
export function handlerUrl(source: URL | string): string {
  if (source instanceof URL) return source.href;
  if (typeof source !== 'string' || source === '') {
    throw new ShardlineError('INVALID_OPTION', `handler must be a file URL or a path to the handler module, got ${String(source)}`);
  }
  return source.startsWith('file:') ? new URL(source).href : pathToFileURL(resolvePath(source)).href;
}

/** Import a handler module and take its default export. */
export async function loadHandler(url: string): Promise<Handler> {
  const mod = (await import(url)) as { default?: Handler };
  return mod.default as Handler;
}
