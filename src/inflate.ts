/**
 * Transport decompression for the gateway: `zlib-stream` (one inflate context per connection, messages end
 * with a `Z_SYNC_FLUSH` marker) and `zstd-stream` (one never-closed zstd frame per connection, one gateway
 * message per websocket message). Everything here is synchronous so frames stay in order and no thread-pool
 * round trip is paid per message.
 *
 * Backends, in preference order:
 * - zlib: `node:zlib-sync` (the synchronous path inside `node:zlib`, through private members: only used when
 *   {@link probeZlibInternals} passes, checked lazily once; `SHARDLINE_INFLATE_FALLBACK=1` turns it off),
 *   `zlib-sync` (optional native addon), `node:zlib-public` (documented `node:zlib` calls only, native),
 *   `fflate` (pure JS).
 * - zstd: `node:zlib-zstd` (Node's own zstd, 22.15+, through the same synchronous internal path: only used when
 *   {@link probeZlibZstd} passes), `zstd-napi` (optional native addon, low-level `DCtx.decompressStream`),
 *   `fzstd` (pure JS).
 *
 * The backends live in `inflate-zlib.ts` (the `node:zlib` internal path and its probe), `inflate-zstd.ts` and
 * `inflate-fallback.ts`, on the shared engine contract and output buffers of `inflate-engine.ts`; this file is the
 * public face: the types, the backend lists and their selection, and the per-connection {@link Inflater}.
 *
 * @module
 */
import { InflateError } from './errors.js';
import { corrupt, type Engine, type EngineFactory, NO_CHUNKS, type ZlibProbe, tooLarge } from './inflate-engine.js';
import { fflateEngine, fzstdEngine, nodeZlibPublicEngine, nodeZlibPublicProblem, zlibSync, zlibSyncEngine } from './inflate-fallback.js';
import { nodeZlibEngine, probeZlibInternals } from './inflate-zlib.js';
import { nodeZstdEngine, probeZlibZstd, zstdBinding, zstdNapiEngine } from './inflate-zstd.js';

export { INFLATE_FALLBACK_ENV, type ZlibProbe } from './inflate-engine.js';
export { probeZlibInternals, type ZlibLike } from './inflate-zlib.js';
export { probeZlibZstd, type ZstdZlibLike } from './inflate-zstd.js';

/** Transport compression negotiated with the `compress=` query parameter. */
export type TransportCompression = 'zlib-stream' | 'zstd-stream';

/** Counters of one {@link Inflater}. */
export interface InflaterStats {
  /** Compressed bytes received. */
  bytesIn: number;
  /** Decompressed bytes produced. */
  bytesOut: number;
  /** Compressed bytes currently buffered (a message split across websocket messages); 0 between messages. */
  bufferSize: number;
  /** Complete gateway messages produced. */
  messages: number;
}

/** One connection's decompression context. Create a fresh one for every connection; never reuse it. */
export interface Inflater {
  /**
   * Feed one websocket message. Returns one complete decompressed gateway message, or null when more data is
   * needed. Synchronous. Throws {@link InflateError} `INFLATE_CORRUPT` on corrupt data and `INFLATE_TOO_LARGE`
   * when a message would exceed `maxMessageSize`; after either error the context can't be trusted and every
   * later push throws again (drop the connection and create a new inflater).
   *
   * By default the returned buffer is owned by the caller and is never overwritten by later pushes.
   *
   * With `transient` true the result may instead be a view of one process-wide scratch buffer that the next
   * transient push of *any* inflater in the process overwrites: use it only when the bytes are consumed
   * synchronously before anything else can push (the Shard scans and parses each message in the same tick and
   * keeps no reference). It saves the output-slab bookkeeping and allocations, like a floor decoder.
   */
  push(chunk: Buffer, transient?: boolean): Buffer | null;
  /** Release native resources. Idempotent; `push` after `close` throws. */
  close(): void;
  /** Live counters (the same object, updated in place). */
  readonly stats: Readonly<InflaterStats>;
  /** Name of the backend in use: `node:zlib-sync`, `zlib-sync`, `node:zlib-public`, `fflate`, `zstd-napi` or `fzstd`. */
  readonly backend: string;
}

/** Options of {@link createInflater}. */
export interface InflaterOptions {
  /** Largest decompressed message (and largest buffered compressed input) accepted, in bytes. Default 64 MiB. */
  maxMessageSize?: number;
  /** `'auto'` (default) picks the first available backend; a backend name forces it (or throws INFLATE_UNAVAILABLE). */
  backend?: 'auto' | string;
}

/** Default bound of one decompressed message. */
export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------------------
// Backend registry
// ---------------------------------------------------------------------------------------------------------

/** One backend: its name (the inflater's `backend`), its engine, and why it can't be used here (null: usable). */
interface Backend {
  readonly name: string;
  readonly make: EngineFactory;
  /** Evaluated lazily (a cached probe), not at import. */
  readonly unavailable: () => string | null;
}

const ZLIB_BACKENDS: readonly Backend[] = [
  {
    name: 'node:zlib-sync',
    make: nodeZlibEngine,
    unavailable: () => {
      const probe = probeZlibInternals();
      return probe.ok ? null : `capability probe of the node:zlib internals: ${probe.reason}`;
    },
  },
  { name: 'zlib-sync', make: zlibSyncEngine, unavailable: () => (zlibSync !== null && typeof zlibSync.Inflate === 'function' ? null : 'the optional zlib-sync addon is not installed') },
  { name: 'node:zlib-public', make: nodeZlibPublicEngine, unavailable: nodeZlibPublicProblem },
  { name: 'fflate', make: fflateEngine, unavailable: () => null },
];

/**
 * What the zstd backends depend on: Node's own zstd (its probe) and the zstd-napi addon.
 * @internal Tests pass their own to check the selection.
 */
export interface ZstdCapabilities {
  readonly nodeZstd: ZlibProbe;
  readonly zstdNapi: boolean;
}

/** This process' zstd capabilities (the probe runs lazily, once). */
function zstdCapabilities(): ZstdCapabilities {
  return { nodeZstd: probeZlibZstd(), zstdNapi: zstdBinding !== null && typeof zstdBinding.DCtx === 'function' };
}

/** The zstd-stream backends in preference order, each unavailable or not according to `caps()`. */
function zstdBackendList(caps: () => ZstdCapabilities): readonly Backend[] {
  return [
    {
      name: 'node:zlib-zstd',
      make: nodeZstdEngine,
      unavailable: () => {
        const probe = caps().nodeZstd;
        return probe.ok ? null : `capability probe of node:zlib's zstd: ${probe.reason}`;
      },
    },
    { name: 'zstd-napi', make: zstdNapiEngine, unavailable: () => (caps().zstdNapi ? null : 'the optional zstd-napi addon is not installed') },
    { name: 'fzstd', make: fzstdEngine, unavailable: () => null },
  ];
}

const ZSTD_BACKENDS = zstdBackendList(zstdCapabilities);

/**
 * The zstd-stream backends usable with `caps` (default: this process'), in preference order: the first is what
 * `'auto'` picks — Node's own zstd where it has one (22.15+), else `zstd-napi` if installed, else `fzstd`.
 * @internal
 */
export function zstdBackendOrder(caps: ZstdCapabilities = zstdCapabilities()): string[] {
  return zstdBackendList(() => caps)
    .filter((b) => b.unavailable() === null)
    .map((b) => b.name);
}

/** Backends usable in this process, in preference order (the first one is what `'auto'` picks). */
export function inflateBackends(): { zlib: string[]; zstd: string[] } {
  const names = (list: readonly Backend[]): string[] => list.filter((b) => b.unavailable() === null).map((b) => b.name);
  return { zlib: names(ZLIB_BACKENDS), zstd: names(ZSTD_BACKENDS) };
}

// ---------------------------------------------------------------------------------------------------------
// Inflater
// ---------------------------------------------------------------------------------------------------------

/** True when the bytes of `pending` followed by `last` end with the zlib sync-flush marker `00 00 FF FF`. */
function endsWithSyncFlush(pending: readonly Buffer[], last: Buffer): boolean {
  const n = last.length;
  if (n >= 4) return last[n - 4] === 0x00 && last[n - 3] === 0x00 && last[n - 2] === 0xff && last[n - 1] === 0xff;
  // Marker split across websocket messages: walk back through the buffered chunks.
  const want = [0xff, 0xff, 0x00, 0x00];
  let k = 0;
  for (let c = pending.length; c >= 0 && k < 4; c--) {
    const buf = c === pending.length ? last : pending[c]!;
    for (let i = buf.length - 1; i >= 0 && k < 4; i--, k++) if (buf[i] !== want[k]) return false;
  }
  return k === 4;
}

function startsWithZstdMagic(b: Buffer): boolean {
  // Frame magic 28 B5 2F FD, or a skippable frame 5? 2A 4D 18.
  return b.length >= 4 && ((b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) || ((b[0]! & 0xf0) === 0x50 && b[1] === 0x2a && b[2] === 0x4d && b[3] === 0x18));
}

class StreamInflater implements Inflater {
  readonly backend: string;
  readonly stats: InflaterStats = { bytesIn: 0, bytesOut: 0, bufferSize: 0, messages: 0 };
  private readonly engine: Engine;
  private readonly max: number;
  /** zlib-stream only: chunks of a message split across websocket messages. */
  private readonly framed: boolean;
  /** Created for the first message split across websocket messages (rare): an idle connection holds none. */
  private pending: Buffer[] | null = null;
  private failure: InflateError | null = null;
  private closed = false;

  constructor(backend: string, engine: Engine, max: number, framed: boolean) {
    this.backend = backend;
    this.engine = engine;
    this.max = max;
    this.framed = framed;
  }

  push(chunk: Buffer, transient = false): Buffer | null {
    if (this.closed) throw new InflateError('INFLATE_CORRUPT', `${this.backend}: push after close`);
    if (this.failure !== null)
      throw new InflateError(this.failure.code as 'INFLATE_CORRUPT', `${this.backend}: inflater unusable after an earlier error (${this.failure.message.slice(0, 160)})`, { cause: this.failure });
    const stats = this.stats;
    stats.bytesIn += chunk.length;
    let input = chunk;
    if (this.framed) {
      const buffered = stats.bufferSize + chunk.length;
      if (buffered > this.max) return this.fail(tooLarge('buffered compressed input', this.max));
      const pending = this.pending;
      if (!endsWithSyncFlush(pending ?? NO_CHUNKS, chunk)) {
        if (chunk.length > 0) (this.pending ??= []).push(chunk);
        stats.bufferSize = buffered;
        return null;
      }
      if (pending !== null && pending.length > 0) {
        pending.push(chunk);
        input = Buffer.concat(pending, buffered);
        this.pending = null;
        stats.bufferSize = 0;
      }
    } else {
      if (chunk.length > this.max) return this.fail(tooLarge('compressed message', this.max));
      if (stats.bytesIn === chunk.length && !startsWithZstdMagic(chunk)) {
        return this.fail(corrupt(this.backend, new Error('the first message does not start a zstd frame (magic 28 B5 2F FD)')));
      }
    }
    let out: Buffer;
    try {
      out = this.engine.run(input, transient);
    } catch (err) {
      return this.fail(err instanceof InflateError ? err : corrupt(this.backend, err));
    }
    // zstd has no end-of-message marker: no output at all means the block is incomplete (more data needed).
    if (out.length === 0 && !this.framed) return null;
    stats.bytesOut += out.length;
    stats.messages++;
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = null;
    this.stats.bufferSize = 0;
    this.engine.free();
  }

  private fail(err: InflateError): never {
    this.failure = err;
    this.pending = null;
    this.stats.bufferSize = 0;
    throw err;
  }
}

/**
 * Create the decompression context of one connection.
 *
 * @example
 * ```ts
 * const inflater = createInflater('zlib-stream');
 * ws.on('message', (data: Buffer) => {
 *   const text = inflater.push(data);
 *   if (text !== null) handle(text);
 * });
 * ws.on('close', () => inflater.close());
 * ```
 * @throws InflateError `INFLATE_UNAVAILABLE` when a forced backend is not available here.
 */
export function createInflater(kind: TransportCompression, opts: InflaterOptions = {}): Inflater {
  const max = opts.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
  if (!(max > 0)) throw new RangeError('maxMessageSize must be a positive number');
  let list: readonly Backend[];
  if (kind === 'zlib-stream') list = ZLIB_BACKENDS;
  else if (kind === 'zstd-stream') list = ZSTD_BACKENDS;
  else throw new InflateError('INFLATE_UNAVAILABLE', `unknown transport compression ${JSON.stringify(String(kind)).slice(0, 40)}`);
  const want = opts.backend ?? 'auto';
  const entry = list.find((b) => (want === 'auto' || b.name === want) && b.unavailable() === null);
  if (entry === undefined) {
    const have = list.filter((b) => b.unavailable() === null).map((b) => b.name);
    const why = list.find((b) => b.name === want)?.unavailable();
    throw new InflateError('INFLATE_UNAVAILABLE', `${kind} backend ${JSON.stringify(want).slice(0, 40)} is not available here${why ? ` (${why})` : ''} (available: ${have.join(', ')})`);
  }
  return new StreamInflater(entry.name, entry.make(max), max, kind === 'zlib-stream');
}
