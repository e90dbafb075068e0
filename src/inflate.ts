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
const NO_CHUNKS: readonly Buffer[] = [];

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
// zlib: node:zlib synchronous internal path (only ever used behind probeZlibInternals)
// ---------------------------------------------------------------------------------------------------------

/**
 * The part of `node:zlib` the internal fast path is built on. {@link probeZlibInternals} takes one as a parameter
 * so a test can hand it a Node without the internals; everywhere else it is `node:zlib` itself.
 */
export interface ZlibLike {
  Inflate: new (opts?: zlib.ZlibOptions) => zlib.Inflate;
  constants: { readonly Z_SYNC_FLUSH: number };
}

/** The undocumented parts of a `zlib.Inflate` this backend relies on (all checked by the probe). */
interface NodeZlibInternals extends zlib.Inflate {
  _processChunk(chunk: Buffer, flushFlag: number): Buffer;
  _handle: { close(): void } | null;
  _outBuffer: Buffer;
  _outOffset: number;
  _chunkSize: number;
}

const maxOutputLength = (max: number): number => Math.max(1, Math.min(Math.floor(max), 2 ** 31 - 1));

/**
 * `zlib.Inflate#_processChunk(chunk, flag)` without a callback runs synchronously (the same `processChunkSync`
 * that `inflateSync` runs) but was written for one-shot use: it closes the native handle when done, adds an
 * 'error' listener per call, and writes into the stream's own output buffer `_outBuffer` from `_outOffset` (up
 * to `_chunkSize`).
 *
 * - The handle is kept open: its `close` is shadowed and `_handle` restored after every call.
 * - The instance gets its own `on` that swallows 'error' registrations, and one permanent 'error' listener is
 *   registered at construction, so there is no listener churn per message. Errors still throw synchronously:
 *   the handle's onerror stores the error on the stream (`kError`) before `writeSync` returns, and
 *   `processChunkSync` throws it; the deferred 'error' emit of `destroy()` reaches the permanent listener.
 * - Output goes to the process-wide slab (or the transient scratch): `_outBuffer`/`_outOffset`/`_chunkSize`
 *   are pointed at it before each call and `_outBuffer` is dropped right after, so an idle instance holds no
 *   output buffer. `processChunkSync` never writes them back; a result that fits is one slice of the buffer
 *   we gave it, and a result that overflows it is a fresh concatenation (the tail we gave stays unused).
 *
 * Used for `node:zlib` only once {@link probeZlibInternals} has passed (the probe drives this same function
 * with the `z` it checks). Returns the instance too, for the probe's listener check.
 */
function internalZlibEngine(z: ZlibLike, max: number): [Engine, zlib.Inflate] {
  // The smallest chunkSize (64 B, from the shared 8 KiB pool) so construction allocates no slab of its own.
  return internalEngine('node:zlib-sync', new z.Inflate({ chunkSize: 64, maxOutputLength: maxOutputLength(max) }), z.constants.Z_SYNC_FLUSH, max, 'inflated message');
}

/** The same synchronous path on any `node:zlib` stream class (`Inflate`, `ZstdDecompress`), flushed with `flag`. */
function internalEngine(name: string, stream: zlib.Inflate, flag: number, max: number, what: string): [Engine, zlib.Inflate] {
  const engine = new InternalZlibEngine(name, stream, flag, max, what);
  return [engine, engine.inst];
}

/**
 * `_processChunk` registers a throw-away 'error' listener on every call (its errors actually arrive synchronously
 * through the handle's onerror, see above): an instance's own `on` swallows those registrations. One function
 * for every instance (no per-connection closure).
 */
function onIgnoringErrors(this: zlib.Inflate, event: string | symbol, listener: (...args: unknown[]) => void): zlib.Inflate {
  return event === 'error' ? this : (Object.getPrototypeOf(this) as zlib.Inflate).on.call(this, event, listener);
}

/** Where the permanent 'error' listener keeps the first stream error (a symbol-keyed field of the instance). */
const kStreamError = Symbol('shardline.streamError');

/** The permanent 'error' listener, shared by every instance: remembers the first error on the instance. */
function rememberStreamError(this: zlib.Inflate & { [kStreamError]?: unknown }, err: unknown): void {
  this[kStreamError] ??= err;
}

/**
 * The fast-path engine as a class (methods on the prototype): an idle connection holds this object, the
 * `zlib.Inflate` and its native handle, and no closures.
 */
class InternalZlibEngine implements Engine {
  readonly inst: NodeZlibInternals & { [kStreamError]?: unknown };
  private readonly handle: { close(): void };
  private readonly realClose: () => void;
  private readonly max: number;
  private readonly sync: number;
  private readonly name: string;
  private readonly what: string;

  constructor(name: string, stream: zlib.Inflate, flag: number, max: number, what: string) {
    const inst = stream as NodeZlibInternals & { [kStreamError]?: unknown };
    inst._outBuffer = EMPTY;
    this.inst = inst;
    this.max = max;
    this.sync = flag;
    this.name = name;
    this.what = what;
    const handle = inst._handle!;
    this.handle = handle;
    this.realClose = handle.close;
    handle.close = noop;
    inst[kStreamError] = null;
    inst.on('error', rememberStreamError);
    inst.on = onIgnoringErrors as typeof inst.on;
  }

  run(input: Buffer, transient: boolean): Buffer {
    const inst = this.inst;
    const streamError = inst[kStreamError];
    if (streamError != null) throw corrupt(this.name, streamError);
    const buf = transient ? scratchBuffer() : freeSlab();
    inst._outBuffer = buf;
    inst._outOffset = transient ? 0 : slabOff;
    inst._chunkSize = buf.length;
    let out: Buffer;
    try {
      out = inst._processChunk(input, this.sync);
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(this.what, this.max);
      throw corrupt(this.name, err);
    } finally {
      inst._handle = this.handle;
      inst._outBuffer = EMPTY;
    }
    // Owned result inside the slab: keep those bytes, the next result starts after them.
    if (!transient && out.buffer === buf.buffer && out.length > 0) slabOff = out.byteOffset - buf.byteOffset + out.length;
    return out;
  }

  free(): void {
    this.inst._handle = null;
    try {
      this.realClose.call(this.handle);
    } catch {
      /* already closed */
    }
  }
}

const nodeZlibEngine: EngineFactory = (max) => internalZlibEngine(zlib, max)[0];

/** What {@link probeZlibInternals} found: usable, or why not. */
export type ZlibProbe = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Set to `1` to make {@link probeZlibInternals} report "unavailable": every zlib-stream inflater then uses the fallback. */
export const INFLATE_FALLBACK_ENV = 'SHARDLINE_INFLATE_FALLBACK';

let zlibProbe: ZlibProbe | null = null;

/**
 * The one capability check in front of every use of `node:zlib` private members (the `node:zlib-sync`
 * backend). It checks that each member the fast path touches exists with the expected type
 * (`Inflate.prototype._processChunk`, and on an instance `_handle` with `close()`, `_outBuffer`, `_outOffset`,
 * `_chunkSize`), then drives the real fast-path engine through a self-test: a known two-message zlib-stream
 * sample and one compressed right now with public APIs (`deflateSync` + `deflateRawSync` with the first
 * message as dictionary, both flushed with `Z_SYNC_FLUSH`; later messages back-reference earlier ones, so the
 * context must survive between calls), owned and transient output (including a result larger than the
 * scratch), corrupt data (must throw `INFLATE_CORRUPT` synchronously), the output bound (`INFLATE_TOO_LARGE`),
 * and no 'error' listener added per call. Any failure means the fast path is never used and `'auto'` falls
 * through to the next backend (`zlib-sync` if installed, else `node:zlib-public`, public APIs only).
 *
 * Without an argument: `node:zlib` itself, evaluated lazily once per process and cached; when the environment
 * variable `SHARDLINE_INFLATE_FALLBACK` is set (to anything but empty or `0`) it reports unavailable without
 * probing. With an argument (tests: a zlib whose internals are missing or changed): probes that object, uncached.
 */
export function probeZlibInternals(z?: ZlibLike): ZlibProbe {
  if (z !== undefined) return runZlibProbe(z);
  if (zlibProbe === null) {
    const forced = process.env[INFLATE_FALLBACK_ENV];
    zlibProbe = forced !== undefined && forced !== '' && forced !== '0' ? { ok: false, reason: `${INFLATE_FALLBACK_ENV}=${forced.slice(0, 20)} forces the fallback` } : runZlibProbe(zlib);
  }
  return zlibProbe;
}

function runZlibProbe(z: ZlibLike): ZlibProbe {
  const no = (reason: string): ZlibProbe => ({ ok: false, reason });
  try {
    if (typeof z.Inflate !== 'function') return no('zlib.Inflate is not a constructor');
    if (typeof z.constants?.Z_SYNC_FLUSH !== 'number') return no('zlib.constants.Z_SYNC_FLUSH is not a number');
    const proto = z.Inflate.prototype as Partial<NodeZlibInternals>;
    if (typeof proto._processChunk !== 'function') return no('zlib.Inflate.prototype._processChunk is not a function');
    const inst = new z.Inflate() as Partial<NodeZlibInternals> & zlib.Inflate;
    const handle: unknown = inst._handle;
    const missing =
      typeof handle !== 'object' || handle === null || typeof (handle as { close?: unknown }).close !== 'function'
        ? '_handle (an object with close())'
        : !Buffer.isBuffer(inst._outBuffer)
          ? '_outBuffer (a Buffer)'
          : typeof inst._outOffset !== 'number'
            ? '_outOffset (a number)'
            : typeof inst._chunkSize !== 'number'
              ? '_chunkSize (a number)'
              : null;
    inst.on('error', noop);
    inst.close();
    if (missing !== null) return no(`a zlib.Inflate has no ${missing}`);
    let listeners = -1;
    const failed = selfTest('node:zlib-sync', (max) => {
      const [engine, raw] = internalZlibEngine(z, max);
      return {
        run(input, transient) {
          const out = engine.run(input, transient);
          listeners = Math.max(listeners, raw.listenerCount('error'));
          return out;
        },
        free: () => engine.free(),
      };
    });
    if (failed !== null) return no(failed);
    if (listeners !== 1) return no(`an inflate call left ${listeners} 'error' listeners (expected the 1 permanent one)`);
    return { ok: true };
  } catch (err) {
    return no(`the probe threw: ${err instanceof Error ? err.message : String(err)}`.slice(0, 200));
  }
}

/** Known two-message zlib stream (second message back-references the first). */
const PROBE_IN = ['eJyqVipRslIKCPJ3clXSUSpWsjLUUcovULIy0FFKUbKqViooyk9KVbJSKs5ILErJycxLVaqtBQAAAP//', 'qkbXY0RYDwAAAP//'];
const PROBE_OUT = ['{"t":"PROBE","s":1,"op":0,"d":{"probe":"shardline"}}', '{"t":"PROBE","s":2,"op":0,"d":{"probe":"shardline"}}'];

/**
 * A gateway-like zlib stream made right now with public APIs only: `deflateSync` (with `Z_SYNC_FLUSH`: zlib
 * header, no final block, ends in 00 00 FF FF), then each later message with `deflateRawSync` and the output
 * so far as dictionary, which is exactly how the continuation of one deflate context after a sync flush looks
 * (byte-aligned fresh blocks whose back-references reach into the earlier messages). The third message is
 * larger than the transient scratch.
 */
let probeStream: { frames: Buffer[]; messages: Buffer[] } | null = null;

function freshProbeStream(): { frames: Buffer[]; messages: Buffer[] } {
  if (probeStream !== null) return probeStream;
  const SYNC = zlib.constants.Z_SYNC_FLUSH;
  const member = '{"user":{"id":"552067714252931072","username":"shardline-probe"},"roles":[],"deaf":false},';
  const messages = [
    Buffer.from('{"t":"READY","s":1,"op":0,"d":{"v":10,"session_id":"shardline-probe","resume_gateway_url":"wss://gateway.invalid"}}'),
    Buffer.from('{"t":"MESSAGE_CREATE","s":2,"op":0,"d":{"session_id":"shardline-probe","content":"resume_gateway_url"}}'),
    Buffer.from(`{"t":"GUILD_CREATE","s":3,"op":0,"d":{"members":[${member.repeat(900)}{}],"session_id":"shardline-probe"}}`),
  ];
  const frames = [zlib.deflateSync(messages[0]!, { finishFlush: SYNC })];
  for (let i = 1; i < messages.length; i++) frames.push(zlib.deflateRawSync(messages[i]!, { dictionary: Buffer.concat(messages.slice(0, i)), finishFlush: SYNC }));
  return (probeStream = { frames, messages });
}

/**
 * Drive an engine factory through the probe samples; null when everything came out right, else what failed.
 * Shared by the internal-path probe and the public backend's check.
 */
function selfTest(name: string, make: EngineFactory): string | null {
  const fresh = freshProbeStream();
  const owned: Array<[Buffer, string]> = [];
  const check = (engine: Engine, input: Buffer, want: Buffer | string, transient: boolean, what: string): string | null => {
    let out: Buffer;
    try {
      out = engine.run(input, transient);
    } catch (err) {
      return `${name}: ${what} threw ${err instanceof Error ? err.message : String(err)}`.slice(0, 200);
    }
    const ok = typeof want === 'string' ? out.toString('latin1') === want : out.equals(want);
    if (!ok) return `${name}: ${what} inflated to the wrong bytes`;
    if (!transient) owned.push([out, out.toString('latin1')]);
    return null;
  };
  const engines: Engine[] = [];
  const open = (max: number): Engine => {
    const e = make(max);
    engines.push(e);
    return e;
  };
  try {
    // One context through both samples' streams, owned results, context kept between calls.
    const a = open(1 << 20);
    for (const [i, b64] of PROBE_IN.entries()) {
      const failed = check(a, Buffer.from(b64, 'base64'), PROBE_OUT[i]!, false, `known sample message ${i + 1}`);
      if (failed !== null) return failed;
    }
    const b = open(1 << 20);
    for (const [i, frame] of fresh.frames.entries()) {
      const failed = check(b, frame, fresh.messages[i]!, false, `fresh sample message ${i + 1}`);
      if (failed !== null) return failed;
    }
    // Transient output (message 3 overflows the scratch) on a fresh context; owned results stay intact.
    const t = open(1 << 20);
    for (const [i, frame] of fresh.frames.entries()) {
      const failed = check(t, frame, fresh.messages[i]!, true, `fresh sample message ${i + 1} (transient)`);
      if (failed !== null) return failed;
    }
    if (!owned.every(([buf, text]) => buf.toString('latin1') === text)) return `${name}: an owned result was overwritten by a later call`;
    // Errors surface synchronously: after a sync flush a block of reserved type 3 must throw INFLATE_CORRUPT.
    const errCode = (engine: Engine, input: Buffer): string => {
      try {
        engine.run(input, false);
        return 'no error';
      } catch (err) {
        return err instanceof InflateError ? err.code : `a non-InflateError (${String(err).slice(0, 80)})`;
      }
    };
    const corruptGot = errCode(a, Buffer.from([0x06, 0x00, 0x00, 0xff, 0xff]));
    if (corruptGot !== 'INFLATE_CORRUPT') return `${name}: corrupt data gave ${corruptGot} instead of INFLATE_CORRUPT`;
    // The output bound holds.
    const small = open(64);
    const tooLargeGot = errCode(small, fresh.frames[0]!);
    if (tooLargeGot !== 'INFLATE_TOO_LARGE') return `${name}: output over maxMessageSize gave ${tooLargeGot} instead of INFLATE_TOO_LARGE`;
    return null;
  } catch (err) {
    return `${name}: self-test threw ${err instanceof Error ? err.message : String(err)}`.slice(0, 200);
  } finally {
    for (const e of engines) e.free();
  }
}

// ---------------------------------------------------------------------------------------------------------
// zlib: node:zlib public API only (the fallback of the internal path)
// ---------------------------------------------------------------------------------------------------------

/** The deflate window: how far back a back-reference can reach. */
const WINDOW = 32 * 1024;
/** The public backend's window buffer: the window plus room to append before sliding (so a slide is rare). */
const WINDOW_BUF = 48 * 1024;

/** Why `b` does not start a zlib stream the gateway could send, or null. */
function zlibHeaderProblem(b: Buffer): string | null {
  if (b.length < 2) return 'shorter than the 2-byte zlib header';
  const cmf = b[0]!;
  const flg = b[1]!;
  if ((cmf & 0x0f) !== 8 || cmf >> 4 > 7) return 'incorrect header (not a deflate zlib stream)';
  if (((cmf << 8) | flg) % 31 !== 0) return 'incorrect header check';
  if ((flg & 0x20) !== 0) return 'the stream asks for a preset dictionary';
  return null;
}

/**
 * zlib-stream through documented `node:zlib` calls only, still synchronous and native: every unit is inflated
 * by `zlib.inflateRawSync(unit, { dictionary: last 32 KiB of output, finishFlush: Z_SYNC_FLUSH })`. That is
 * exact, not an approximation: a sync flush ends the current block and byte-aligns the stream, so what follows
 * is a fresh raw deflate sequence whose only link to the past is the 32 KiB window, which a preset dictionary
 * restores. The 2-byte zlib header of the first unit is checked and stripped (the Adler-32 trailer only follows
 * a final block, which the gateway never sends). Costs per message: a zlib context set up and the window copied
 * in, a few microseconds; per connection a 48 KiB window buffer. Results are always owned (fresh buffers).
 */
const nodeZlibPublicEngine: EngineFactory = (max) => {
  const SYNC = zlib.constants.Z_SYNC_FLUSH;
  const limit = maxOutputLength(max);
  let started = false;
  let win: Buffer = EMPTY;
  let winLen = 0;
  return {
    run(input) {
      let raw = input;
      if (!started) {
        const problem = zlibHeaderProblem(input);
        if (problem !== null) throw corrupt('node:zlib-public', new Error(problem));
        raw = input.subarray(2);
        started = true;
      }
      let out: Buffer;
      try {
        out = zlib.inflateRawSync(raw, {
          finishFlush: SYNC,
          maxOutputLength: limit,
          // Gateway messages inflate ~10-30x: one output chunk for most, not a 16 KiB default for a 40-byte frame.
          chunkSize: Math.min(64 * 1024, Math.max(4096, raw.length * 16)),
          ...(winLen === 0 ? {} : { dictionary: win.subarray(winLen > WINDOW ? winLen - WINDOW : 0, winLen) }),
        });
      } catch (err) {
        if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge('inflated message', max);
        throw corrupt('node:zlib-public', err);
      }
      // Keep the last WINDOW bytes of output, contiguous, for the next unit's dictionary.
      const n = out.length;
      if (n > 0) {
        if (win.length === 0) win = Buffer.allocUnsafe(WINDOW_BUF);
        if (n >= WINDOW) {
          out.copy(win, 0, n - WINDOW);
          winLen = WINDOW;
        } else {
          if (winLen + n > WINDOW_BUF) {
            const keep = Math.min(winLen, WINDOW - n);
            win.copyWithin(0, winLen - keep, winLen);
            winLen = keep;
          }
          out.copy(win, winLen);
          winLen += n;
        }
      }
      return out;
    },
    free() {
      win = EMPTY;
      winLen = 0;
    },
  };
};

/** The public backend's own check (lazy, once): the same self-test, in case a runtime lacks raw-inflate dictionaries. */
let publicProblem: string | null | undefined;
function nodeZlibPublicProblem(): string | null {
  if (publicProblem === undefined) publicProblem = selfTest('node:zlib-public', nodeZlibPublicEngine);
  return publicProblem;
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
        else if (off < buf.length)
          break; // input consumed and output not full: nothing pending
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
// zstd: node:zlib's own zstd (Node 22.15+), synchronous internal path (only ever used behind probeZlibZstd)
// ---------------------------------------------------------------------------------------------------------

/** The part of `node:zlib` the zstd backend needs; {@link probeZlibZstd} takes one so a test can hand it another Node's. */
export interface ZstdZlibLike {
  ZstdDecompress?: new (opts?: zlib.ZlibOptions) => zlib.Inflate;
  constants: { readonly ZSTD_e_continue?: number };
}

const nodeZlibZstd = zlib as unknown as ZstdZlibLike;

function internalZstdEngine(z: ZstdZlibLike, max: number): [Engine, zlib.Inflate] {
  const inst = new z.ZstdDecompress!({ chunkSize: 64, maxOutputLength: maxOutputLength(max) });
  return internalEngine('node:zlib-zstd', inst, z.constants.ZSTD_e_continue!, max, 'decompressed message');
}

const nodeZstdEngine: EngineFactory = (max) => internalZstdEngine(nodeZlibZstd, max)[0];

/** One zstd frame over three messages, each flushed (`ZSTD_e_flush`), made by Node 24's `ZstdCompress`; the third is 80 KB. */
const ZSTD_PROBE_IN = [
  'KLUv/QBYJAMAwsYWG4C5GQP9NrNmxbjHOQZKUlNzibB07vYntjAzRs+zWiwxbQUMI3ebc/YWtEiNKgmBVLGsvnE9uJcAtC2mXkrsuVqoubWrOx5IzuzkajzyxI1IvuOGgYBQOFd2AgEA4WUzCg==',
  'VAEA0E1FU1NBR0VfQ1JFQVRFMmNvbnRlbnQiOn19BQACow8PDYC8/sBqDwEI',
  'RAMAEsUSGYCpOhJSmsD3KMSZpV0UGxFirF05nTmYlRHdqrGX22J6thZxVEnP2xTv2OtWAp+IFBPIk0ZBCEDynB/6t7z4kfT89uDWGUGBYBgECABUPdrgGXg6zEcCzazoMWnTMsgXjaPqEII=',
];

let zstdProbe: ZlibProbe | null = null;

/**
 * The capability check in front of the `node:zlib-zstd` backend, in the style of {@link probeZlibInternals}: Node
 * has zstd in `node:zlib` from 22.15 (`ZstdDecompress`, `constants.ZSTD_e_continue`), and the backend drives it
 * through the same private members as the zlib fast path (checked), then a self-test on a known zstd-stream sample
 * (context kept between messages, owned and transient output, a result larger than the scratch), corrupt data
 * (`INFLATE_CORRUPT`, synchronously), the output bound (`INFLATE_TOO_LARGE`) and no 'error' listener per call.
 * Without an argument: `node:zlib`, once per process (`SHARDLINE_INFLATE_FALLBACK` set turns it off too); with one
 * (tests): that object, uncached.
 */
export function probeZlibZstd(z?: ZstdZlibLike): ZlibProbe {
  if (z !== undefined) return runZstdProbe(z);
  if (zstdProbe === null) {
    const forced = process.env[INFLATE_FALLBACK_ENV];
    zstdProbe = forced !== undefined && forced !== '' && forced !== '0' ? { ok: false, reason: `${INFLATE_FALLBACK_ENV}=${forced.slice(0, 20)} forces the fallback` } : runZstdProbe(nodeZlibZstd);
  }
  return zstdProbe;
}

function runZstdProbe(z: ZstdZlibLike): ZlibProbe {
  const no = (reason: string): ZlibProbe => ({ ok: false, reason });
  try {
    if (typeof z.ZstdDecompress !== 'function') return no(`zlib.ZstdDecompress is not a constructor (Node ${process.versions.node}; it has zstd from 22.15)`);
    if (typeof z.constants?.ZSTD_e_continue !== 'number') return no('zlib.constants.ZSTD_e_continue is not a number');
    const proto = z.ZstdDecompress.prototype as Partial<NodeZlibInternals>;
    if (typeof proto._processChunk !== 'function') return no('zlib.ZstdDecompress.prototype._processChunk is not a function');
    const inst = new z.ZstdDecompress() as Partial<NodeZlibInternals> & zlib.Inflate;
    const handle: unknown = inst._handle;
    const ok =
      typeof handle === 'object' &&
      handle !== null &&
      typeof (handle as { close?: unknown }).close === 'function' &&
      Buffer.isBuffer(inst._outBuffer) &&
      typeof inst._outOffset === 'number' &&
      typeof inst._chunkSize === 'number';
    inst.on('error', noop);
    inst.close();
    if (!ok) return no('a zlib.ZstdDecompress lacks _handle.close(), _outBuffer, _outOffset or _chunkSize');
    const frames = ZSTD_PROBE_IN.map((b) => Buffer.from(b, 'base64'));
    const messages = freshProbeStream().messages;
    let listeners = -1;
    const engines: Engine[] = [];
    const open = (max: number): Engine => {
      const [engine, raw] = internalZstdEngine(z, max);
      const e: Engine = {
        run(input, transient) {
          const out = engine.run(input, transient);
          listeners = Math.max(listeners, raw.listenerCount('error'));
          return out;
        },
        free: () => engine.free(),
      };
      engines.push(e);
      return e;
    };
    try {
      for (const transient of [false, true]) {
        const e = open(1 << 20);
        const owned: Array<[Buffer, string]> = [];
        for (const [i, frame] of frames.entries()) {
          const out = e.run(frame, transient);
          if (!out.equals(messages[i]!)) return no(`node:zlib-zstd: sample message ${i + 1}${transient ? ' (transient)' : ''} decompressed to the wrong bytes`);
          if (!transient) owned.push([out, out.toString('latin1')]);
        }
        if (!owned.every(([buf, text]) => buf.toString('latin1') === text)) return no('node:zlib-zstd: an owned result was overwritten by a later call');
      }
      const errCode = (engine: Engine, input: Buffer): string => {
        try {
          engine.run(input, false);
          return 'no error';
        } catch (err) {
          return err instanceof InflateError ? err.code : `a non-InflateError (${String(err).slice(0, 80)})`;
        }
      };
      const corruptGot = errCode(open(1 << 20), Buffer.from('28b52ffd00580000ffffffffffffffff', 'hex'));
      if (corruptGot !== 'INFLATE_CORRUPT') return no(`node:zlib-zstd: corrupt data gave ${corruptGot} instead of INFLATE_CORRUPT`);
      const tooLargeGot = errCode(open(64), frames[0]!);
      if (tooLargeGot !== 'INFLATE_TOO_LARGE') return no(`node:zlib-zstd: output over maxMessageSize gave ${tooLargeGot} instead of INFLATE_TOO_LARGE`);
    } finally {
      for (const e of engines) e.free();
    }
    if (listeners !== 1) return no(`a zstd call left ${listeners} 'error' listeners (expected the 1 permanent one)`);
    return { ok: true };
  } catch (err) {
    return no(`the probe threw: ${err instanceof Error ? err.message : String(err)}`.slice(0, 200));
  }
}

// ---------------------------------------------------------------------------------------------------------
// zstd: fzstd (pure JS)
// ---------------------------------------------------------------------------------------------------------

const fzstdEngine: EngineFactory = streamingEngine('fzstd', 'decompressed message', (ondata) => new FzstdDecompress(ondata));

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
