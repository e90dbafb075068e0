/**
 * Transport decompression for the gateway: `zlib-stream` (one inflate context per connection, messages end
 * with a `Z_SYNC_FLUSH` marker) and `zstd-stream` (one never-closed zstd frame per connection, one gateway
 * message per websocket message). Everything here is synchronous so frames stay in order and no thread-pool
 * round trip is paid per message.
 *
 * Backends, in preference order:
 * - zlib: `node:zlib-sync` (the synchronous path inside `node:zlib`, capability-checked at load),
 *   `zlib-sync` (optional native addon), `fflate` (pure JS).
 * - zstd: `zstd-napi` (optional native addon, low-level `DCtx.decompressStream`), `fzstd` (pure JS).
 *
 * @module
 */
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import { Unzlib } from 'fflate';
import { Decompress as FzstdDecompress } from 'fzstd';
import { InflateError } from './errors.js';

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
  /** Name of the backend in use: `node:zlib-sync`, `zlib-sync`, `fflate`, `zstd-napi` or `fzstd`. */
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

/** Synchronous decompression of one complete unit of input through a long-lived context. */
interface Engine {
  /** Decompress `input` completely; throws InflateError. `transient`: the result may live in the shared scratch. */
  run(input: Buffer, transient: boolean): Buffer;
  /** Free native resources. */
  free(): void;
}

type EngineFactory = (max: number) => Engine;

const require = createRequire(import.meta.url);

function corrupt(backend: string, cause: unknown): InflateError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new InflateError('INFLATE_CORRUPT', `${backend}: corrupt compressed data (${why.slice(0, 120)}); the stream context is unusable, reconnect`, { cause });
}

function tooLarge(what: string, max: number): InflateError {
  return new InflateError('INFLATE_TOO_LARGE', `${what} exceeds maxMessageSize (${max} bytes)`);
}

// ---------------------------------------------------------------------------------------------------------
// Output buffers shared by every inflater of the process
// ---------------------------------------------------------------------------------------------------------

/** Size of one output slab (owned results). */
const SLAB = 32 * 1024;
/** When less than this is left in the output slab, start a new one (a tiny tail only forces extra loop rounds). */
const SLAB_MIN_FREE = 2 * 1024;
/** Size of the transient scratch buffer (like the floor's 64 KiB output buffer). */
const SCRATCH = 64 * 1024;
const noop = (): void => {};
const EMPTY = Buffer.alloc(0);

/**
 * The output slab of owned results, shared by every inflater in the process. Every push is synchronous on this
 * one thread, so advancing one module-level offset keeps the contract that a returned buffer is never
 * overwritten: results are consecutive slices of the slab, and when it runs out a new slab is allocated (the
 * old one is freed by the GC once callers drop their slices). No inflater keeps a slab of its own, so an idle
 * connection pins no output memory; this is what keeps the per-connection footprint at the native context.
 */
let slab: Buffer = EMPTY;
let slabOff = 0;

/** The current shared slab with at least SLAB_MIN_FREE bytes free from `slabOff`. */
function freeSlab(): Buffer {
  if (slab.length - slabOff < SLAB_MIN_FREE) {
    slab = Buffer.allocUnsafe(SLAB);
    slabOff = 0;
  }
  return slab;
}

/** Scratch buffer of transient results, reused at offset 0 by every transient push (allocated on first use). */
let scratch: Buffer = EMPTY;

function scratchBuffer(): Buffer {
  if (scratch.length === 0) scratch = Buffer.allocUnsafe(SCRATCH);
  return scratch;
}

// ---------------------------------------------------------------------------------------------------------
// zlib: node:zlib synchronous internal path
// ---------------------------------------------------------------------------------------------------------

/** The undocumented parts of a `zlib.Inflate` this backend relies on. */
interface NodeZlibInternals extends zlib.Inflate {
  _processChunk(chunk: Buffer, flushFlag: number): Buffer;
  _handle: { close(): void } | null;
  _outBuffer: Buffer;
  _outOffset: number;
  _chunkSize: number;
}

/**
 * `zlib.Inflate#_processChunk(chunk, flag)` without a callback runs synchronously (it is what `inflateSync`
 * uses) but was written for one-shot use: it closes the native handle when done, adds an 'error' listener per
 * call, and writes into the stream's own output buffer `_outBuffer` from `_outOffset` (up to `_chunkSize`).
 *
 * - The handle is kept open: its `close` is shadowed and `_handle` restored after every call.
 * - The instance gets its own `on` that swallows 'error' registrations, and one permanent 'error' listener is
 *   registered at construction, so there is no listener churn per message. Errors still throw synchronously:
 *   the handle's onerror stores the error on the stream (`kError`) before `writeSync` returns, and
 *   `processChunkSync` throws it; the deferred 'error' emit of `destroy()` reaches the permanent listener.
 *   (The capability probe checks both.)
 * - Output goes to the process-wide slab (or the transient scratch): `_outBuffer`/`_outOffset`/`_chunkSize`
 *   are pointed at it before each call and `_outBuffer` is dropped right after, so an idle instance holds no
 *   output buffer. `processChunkSync` never writes them back; a result that fits is one slice of the buffer
 *   we gave it, and a result that overflows it is a fresh concatenation (the tail we gave stays unused).
 */
const nodeZlibEngine: EngineFactory = (max) => {
  // The smallest chunkSize (64 B, from the shared 8 KiB pool) so construction allocates no slab of its own.
  const inst = new zlib.Inflate({ chunkSize: 64, maxOutputLength: Math.max(1, Math.min(Math.floor(max), 2 ** 31 - 1)) }) as NodeZlibInternals;
  inst._outBuffer = EMPTY;
  const handle = inst._handle!;
  const realClose = handle.close;
  handle.close = noop;
  let streamError: unknown = null;
  const onError = (err: unknown): void => {
    streamError ??= err;
  };
  inst.on('error', onError);
  // `_processChunk` registers a throw-away 'error' listener on every call (its errors actually arrive
  // synchronously through the handle's onerror, see above): swallow those registrations.
  const ownOn = inst.on;
  inst.on = function (this: zlib.Inflate, event: string | symbol, listener: (...args: unknown[]) => void) {
    return event === 'error' ? this : ownOn.call(this, event, listener);
  } as typeof inst.on;
  const SYNC = zlib.constants.Z_SYNC_FLUSH;
  return {
    run(input, transient) {
      if (streamError !== null) throw corrupt('node:zlib-sync', streamError);
      const buf = transient ? scratchBuffer() : freeSlab();
      inst._outBuffer = buf;
      inst._outOffset = transient ? 0 : slabOff;
      inst._chunkSize = buf.length;
      let out: Buffer;
      try {
        out = inst._processChunk(input, SYNC);
      } catch (err) {
        if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge('inflated message', max);
        throw corrupt('node:zlib-sync', err);
      } finally {
        inst._handle = handle;
        inst._outBuffer = EMPTY;
      }
      // Owned result inside the slab: keep those bytes, the next result starts after them.
      if (!transient && out.buffer === buf.buffer && out.length > 0) slabOff = out.byteOffset - buf.byteOffset + out.length;
      return out;
    },
    free() {
      inst._handle = null;
      try {
        realClose.call(handle);
      } catch {
        /* already closed */
      }
    },
  };
};

/** Known two-message zlib stream (second message back-references the first). */
const PROBE_IN = ['eJyqVipRslIKCPJ3clXSUSpWsjLUUcovULIy0FFKUbKqViooyk9KVbJSKs5ILErJycxLVaqtBQAAAP//', 'qkbXY0RYDwAAAP//'];
const PROBE_OUT = ['{"t":"PROBE","s":1,"op":0,"d":{"probe":"shardline"}}', '{"t":"PROBE","s":2,"op":0,"d":{"probe":"shardline"}}'];

function nodeZlibUsable(): boolean {
  try {
    const proto = zlib.Inflate.prototype as unknown as Partial<NodeZlibInternals>;
    if (typeof proto._processChunk !== 'function') return false;
    const probe = new zlib.Inflate() as NodeZlibInternals;
    const ok =
      probe._handle !== null &&
      typeof probe._handle?.close === 'function' &&
      Buffer.isBuffer(probe._outBuffer) &&
      typeof probe._outOffset === 'number' &&
      typeof probe._chunkSize === 'number';
    probe.on('error', noop);
    probe.close();
    if (!ok) return false;
    const engine = nodeZlibEngine(1024);
    try {
      const outs = PROBE_IN.map((b64) => engine.run(Buffer.from(b64, 'base64'), false));
      // Both outputs intact after the second call (context kept, first result not overwritten).
      if (!outs.every((o, i) => o.toString('latin1') === PROBE_OUT[i])) return false;
      // The transient path writes where it is told to (a fresh context: the stream starts with a header).
      const engine2 = nodeZlibEngine(1024);
      try {
        const t = engine2.run(Buffer.from(PROBE_IN[0]!, 'base64'), true);
        if (t.toString('latin1') !== PROBE_OUT[0] || outs[0]!.toString('latin1') !== PROBE_OUT[0]) return false;
      } finally {
        engine2.free();
      }
      // Errors still surface synchronously: a block of reserved type 3 must throw INFLATE_CORRUPT.
      try {
        engine.run(Buffer.from([0x06, 0x00, 0x00, 0xff, 0xff]), false);
        return false;
      } catch (err) {
        return err instanceof InflateError && err.code === 'INFLATE_CORRUPT';
      }
    } finally {
      engine.free();
    }
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------
// zlib: zlib-sync addon
// ---------------------------------------------------------------------------------------------------------

interface ZlibSyncModule {
  Inflate: new (opts?: { chunkSize?: number }) => { push(b: Buffer, flush: number): void; readonly result: Buffer | string | null; readonly err: number; readonly msg: string | null };
  Z_SYNC_FLUSH: number;
}

function loadOptional<T>(id: string): T | null {
  try {
    return require(id) as T;
  } catch {
    return null;
  }
}

const zlibSync = loadOptional<ZlibSyncModule>('zlib-sync');

const zlibSyncEngine: EngineFactory = (max) => {
  const Z = zlibSync!;
  const inf = new Z.Inflate({ chunkSize: SLAB });
  return {
    run(input) {
      inf.push(input, Z.Z_SYNC_FLUSH);
      // Negative: zlib error; 2 (Z_NEED_DICT): the stream asks for a preset dictionary, which the gateway never uses.
      if (inf.err < 0 || inf.err === 2) throw corrupt('zlib-sync', new Error(inf.msg ?? `zlib error ${inf.err}`));
      // zlib-sync stops once its input is consumed; output can't stay pending because every message ends with
      // the 00 00 FF FF empty stored block, which zlib only consumes after emitting everything before it.
      const out = inf.result as Buffer;
      if (out.length > max) throw tooLarge('inflated message', max);
      return out;
    },
    free: noop,
  };
};

// ---------------------------------------------------------------------------------------------------------
// zlib: fflate (pure JS)
// ---------------------------------------------------------------------------------------------------------

/** A pure-JS streaming decoder (fflate's `Unzlib`, fzstd's `Decompress`): output arrives through a callback. */
interface StreamingDecoder {
  push(chunk: Uint8Array, final?: boolean): void;
}

/** An engine around a pure-JS streaming decoder: collect what one push produces, bounded by `max`. */
function streamingEngine(name: string, what: string, make: (ondata: (data: Uint8Array) => void) => StreamingDecoder): EngineFactory {
  return (max) => {
    let parts: Uint8Array[] = [];
    let total = 0;
    const decoder = make((data) => {
      total += data.length;
      if (total > max) throw tooLarge(what, max);
      if (data.length > 0) parts.push(data);
    });
    return {
      run(input) {
        parts = [];
        total = 0;
        try {
          decoder.push(input, false);
        } catch (err) {
          if (err instanceof InflateError) throw err;
          throw corrupt(name, err);
        }
        const got = parts;
        parts = [];
        if (got.length === 1) return Buffer.from(got[0]!.buffer, got[0]!.byteOffset, got[0]!.length);
        return Buffer.concat(got, total);
      },
      free() {
        parts = [];
      },
    };
  };
}

const fflateEngine: EngineFactory = streamingEngine('fflate', 'inflated message', (ondata) => new Unzlib(ondata));

// ---------------------------------------------------------------------------------------------------------
// zstd: zstd-napi low-level binding
// ---------------------------------------------------------------------------------------------------------

interface ZstdBinding {
  DCtx: new () => { decompressStream(dst: Uint8Array, src: Uint8Array): [number, number, number] };
}

const zstdBinding = loadOptional<ZstdBinding>('zstd-napi/binding');

const zstdNapiEngine: EngineFactory = (max) => {
  const dctx = new zstdBinding!.DCtx();
  return {
    run(input, transient) {
      let src: Buffer = input;
      let first: Buffer | null = null;
      let parts: Buffer[] | null = null;
      let total = 0;
      // Output target: the process-wide slab from its free offset (owned) or the scratch at 0 (transient).
      let buf = transient ? scratchBuffer() : freeSlab();
      let off = transient ? 0 : slabOff;
      for (;;) {
        if (buf.length - off < SLAB_MIN_FREE) {
          // Out of room. Owned: continue in a new shared slab. Transient: in a private buffer (the pieces
          // already written to the scratch stay valid until they are concatenated below).
          buf = Buffer.allocUnsafe(SLAB);
          off = 0;
          if (!transient) {
            slab = buf;
            slabOff = 0;
          }
        }
        let r: [number, number, number];
        try {
          r = dctx.decompressStream(off === 0 ? buf : buf.subarray(off), src);
        } catch (err) {
          throw corrupt('zstd-napi', err);
        }
        const produced = r[1];
        const consumed = r[2];
        if (produced > 0) {
          const piece = buf.subarray(off, off + produced);
          off += produced;
          if (!transient) slabOff = off; // returned (or about to be copied) bytes are never handed out again
          total += produced;
          if (total > max) throw tooLarge('decompressed message', max);
          if (first === null) first = piece;
          else (parts ??= [first]).push(piece);
        }
        if (produced === 0 && consumed === 0) break; // no progress possible (never seen; guards against a spin)
        if (consumed < src.length) src = src.subarray(consumed);
        else if (off < buf.length) break; // input consumed and output not full: nothing pending
        else src = src.subarray(src.length);
      }
      if (first === null) return Buffer.alloc(0);
      if (parts === null) return first;
      return Buffer.concat(parts, total);
    },
    free: noop,
  };
};

// ---------------------------------------------------------------------------------------------------------
// zstd: fzstd (pure JS)
// ---------------------------------------------------------------------------------------------------------

const fzstdEngine: EngineFactory = streamingEngine('fzstd', 'decompressed message', (ondata) => new FzstdDecompress(ondata));

// ---------------------------------------------------------------------------------------------------------
// Backend registry
// ---------------------------------------------------------------------------------------------------------

const ZLIB_BACKENDS: ReadonlyArray<readonly [string, EngineFactory, boolean]> = [
  ['node:zlib-sync', nodeZlibEngine, nodeZlibUsable()],
  ['zlib-sync', zlibSyncEngine, zlibSync !== null && typeof zlibSync.Inflate === 'function'],
  ['fflate', fflateEngine, true],
];

const ZSTD_BACKENDS: ReadonlyArray<readonly [string, EngineFactory, boolean]> = [
  ['zstd-napi', zstdNapiEngine, zstdBinding !== null && typeof zstdBinding.DCtx === 'function'],
  ['fzstd', fzstdEngine, true],
];

/** Backends usable in this process, in preference order (the first one is what `'auto'` picks). */
export function inflateBackends(): { zlib: string[]; zstd: string[] } {
  const names = (list: typeof ZLIB_BACKENDS): string[] => list.filter((b) => b[2]).map((b) => b[0]);
  return { zlib: names(ZLIB_BACKENDS), zstd: names(ZSTD_BACKENDS) };
}

// ---------------------------------------------------------------------------------------------------------
// Inflater
// ---------------------------------------------------------------------------------------------------------

/** True when the bytes of `pending` followed by `last` end with the zlib sync-flush marker `00 00 FF FF`. */
function endsWithSyncFlush(pending: Buffer[], last: Buffer): boolean {
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
  private pending: Buffer[] = [];
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
    if (this.failure !== null) throw new InflateError(this.failure.code as 'INFLATE_CORRUPT', `${this.backend}: inflater unusable after an earlier error (${this.failure.message.slice(0, 160)})`, { cause: this.failure });
    const stats = this.stats;
    stats.bytesIn += chunk.length;
    let input = chunk;
    if (this.framed) {
      const buffered = stats.bufferSize + chunk.length;
      if (buffered > this.max) return this.fail(tooLarge('buffered compressed input', this.max));
      if (!endsWithSyncFlush(this.pending, chunk)) {
        if (chunk.length > 0) this.pending.push(chunk);
        stats.bufferSize = buffered;
        return null;
      }
      if (this.pending.length > 0) {
        this.pending.push(chunk);
        input = Buffer.concat(this.pending, buffered);
        this.pending = [];
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
    this.pending = [];
    this.stats.bufferSize = 0;
    this.engine.free();
  }

  private fail(err: InflateError): never {
    this.failure = err;
    this.pending = [];
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
  let list: typeof ZLIB_BACKENDS;
  if (kind === 'zlib-stream') list = ZLIB_BACKENDS;
  else if (kind === 'zstd-stream') list = ZSTD_BACKENDS;
  else throw new InflateError('INFLATE_UNAVAILABLE', `unknown transport compression ${JSON.stringify(String(kind)).slice(0, 40)}`);
  const want = opts.backend ?? 'auto';
  const entry = list.find((b) => b[2] && (want === 'auto' || b[0] === want));
  if (entry === undefined) {
    const have = list.filter((b) => b[2]).map((b) => b[0]);
    throw new InflateError('INFLATE_UNAVAILABLE', `${kind} backend ${JSON.stringify(want).slice(0, 40)} is not available here (available: ${have.join(', ')})`);
  }
  return new StreamInflater(entry[0], entry[1](max), max, kind === 'zlib-stream');
}
