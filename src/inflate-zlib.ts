/**
 * zlib-stream through the synchronous path inside `node:zlib` (the `node:zlib-sync` backend, through private
 * members), and the one capability check in front of it ({@link probeZlibInternals}, with the self-test and
 * samples every zlib backend check shares). The engine class is shared with Node's own zstd
 * (`inflate-zstd.ts`), which runs on the same path.
 *
 * @module
 */
import zlib from 'node:zlib';
import { InflateError } from './errors.js';
import { cachedProbe, corrupt, EMPTY, type Engine, type EngineFactory, freeSlab, maxOutputLength, noop, scratchBuffer, slab, tooLarge, type ZlibProbe } from './inflate-engine.js';

/**
 * The part of `node:zlib` the internal fast path is built on. {@link probeZlibInternals} takes one as a parameter
 * so a test can hand it a Node without the internals; everywhere else it is `node:zlib` itself.
 */
export interface ZlibLike {
  Inflate: new (opts?: zlib.ZlibOptions) => zlib.Inflate;
  constants: { readonly Z_SYNC_FLUSH: number };
}

/** The undocumented parts of a `zlib.Inflate` this backend relies on (all checked by the probe). */
export interface NodeZlibInternals extends zlib.Inflate {
  _processChunk(chunk: Buffer, flushFlag: number): Buffer;
  _handle: { close(): void } | null;
  _outBuffer: Buffer;
  _outOffset: number;
  _chunkSize: number;
}

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
export function internalEngine(name: string, stream: zlib.Inflate, flag: number, max: number, what: string): [Engine, zlib.Inflate] {
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
    inst._outOffset = transient ? 0 : slab.off;
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
    if (!transient && out.buffer === buf.buffer && out.length > 0) slab.off = out.byteOffset - buf.byteOffset + out.length;
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

export const nodeZlibEngine: EngineFactory = (max) => internalZlibEngine(zlib, max)[0];

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
  return zlibProbe(z);
}

const zlibProbe = cachedProbe<ZlibLike>(zlib, (z) => {
  if (typeof z.Inflate !== 'function') return 'zlib.Inflate is not a constructor';
  if (typeof z.constants?.Z_SYNC_FLUSH !== 'number') return 'zlib.constants.Z_SYNC_FLUSH is not a number';
  return checkInternalPath('node:zlib-sync', 'zlib.Inflate', z.Inflate, (max) => internalZlibEngine(z, max), zlibSamples());
});

/**
 * The checks of an internal-path backend after its own constants (shared by the zlib and zstd probes): the
 * stream class' `_processChunk`, an instance's private members, then the self-test through the real engine
 * (made by `make`, which returns the raw stream too), counting the 'error' listeners a call leaves (only the
 * one permanent listener may be there). Null when everything passed, else what failed.
 */
export function checkInternalPath(name: string, label: string, Stream: new () => zlib.Inflate, make: (max: number) => [Engine, zlib.Inflate], samples: SelfTestSamples): string | null {
  if (typeof (Stream.prototype as Partial<NodeZlibInternals>)._processChunk !== 'function') return `${label}.prototype._processChunk is not a function`;
  const inst = new Stream() as Partial<NodeZlibInternals> & zlib.Inflate;
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
  if (missing !== null) return `a ${label} has no ${missing}`;
  let listeners = -1;
  const failed = selfTest(
    name,
    (max) => {
      const [engine, raw] = make(max);
      return {
        run(input, transient) {
          const out = engine.run(input, transient);
          listeners = Math.max(listeners, raw.listenerCount('error'));
          return out;
        },
        free: () => engine.free(),
      };
    },
    samples,
  );
  if (failed !== null) return failed;
  if (listeners !== 1) return `a ${name} call left ${listeners} 'error' listeners (expected the 1 permanent one)`;
  return null;
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

export function freshProbeStream(): { frames: Buffer[]; messages: Buffer[] } {
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

/** What a self-test drives an engine through. */
export interface SelfTestSamples {
  /** Streams, each through a context of its own with owned results; the last one again with transient results. */
  readonly streams: ReadonlyArray<{ readonly label: string; readonly frames: readonly Buffer[]; readonly messages: ReadonlyArray<Buffer | string> }>;
  /** Data that must throw `INFLATE_CORRUPT`: fed to the first stream's context after its messages, or to a fresh context. */
  readonly corrupt: { readonly input: Buffer; readonly fresh: boolean };
}

/** The zlib-stream samples: the known stream and the fresh one; after a sync flush a block of reserved type 3. */
function zlibSamples(): SelfTestSamples {
  const fresh = freshProbeStream();
  return {
    streams: [
      { label: 'known sample', frames: PROBE_IN.map((b) => Buffer.from(b, 'base64')), messages: PROBE_OUT },
      { label: 'fresh sample', frames: fresh.frames, messages: fresh.messages },
    ],
    corrupt: { input: Buffer.from([0x06, 0x00, 0x00, 0xff, 0xff]), fresh: false },
  };
}

/**
 * Drive an engine factory through the probe samples (default: zlib-stream's); null when everything came out
 * right, else what failed. Shared by the internal-path probes and the public backend's check. The output bound is
 * checked with the last stream's first message (it must inflate to more than 64 bytes).
 */
export function selfTest(name: string, make: EngineFactory, samples: SelfTestSamples = zlibSamples()): string | null {
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
  const { streams } = samples;
  const last = streams[streams.length - 1]!;
  try {
    // Each stream through one context, owned results, context kept between calls; then the last one with
    // transient output (a message larger than the scratch) on a fresh context: owned results must stay intact.
    const runs = [...streams.map((st) => ({ st, transient: false })), { st: last, transient: true }];
    let first: Engine | null = null;
    for (const { st, transient } of runs) {
      const e = open(1 << 20);
      first ??= e;
      for (const [i, frame] of st.frames.entries()) {
        const failed = check(e, frame, st.messages[i]!, transient, `${st.label} message ${i + 1}${transient ? ' (transient)' : ''}`);
        if (failed !== null) return failed;
      }
    }
    if (!owned.every(([buf, text]) => buf.toString('latin1') === text)) return `${name}: an owned result was overwritten by a later call`;
    // Errors surface synchronously.
    const errCode = (engine: Engine, input: Buffer): string => {
      try {
        engine.run(input, false);
        return 'no error';
      } catch (err) {
        return err instanceof InflateError ? err.code : `a non-InflateError (${String(err).slice(0, 80)})`;
      }
    };
    const corruptGot = errCode(samples.corrupt.fresh ? open(1 << 20) : first!, samples.corrupt.input);
    if (corruptGot !== 'INFLATE_CORRUPT') return `${name}: corrupt data gave ${corruptGot} instead of INFLATE_CORRUPT`;
    // The output bound holds.
    const tooLargeGot = errCode(open(64), last.frames[0]!);
    if (tooLargeGot !== 'INFLATE_TOO_LARGE') return `${name}: output over maxMessageSize gave ${tooLargeGot} instead of INFLATE_TOO_LARGE`;
    return null;
  } catch (err) {
    return `${name}: self-test threw ${err instanceof Error ? err.message : String(err)}`.slice(0, 200);
  } finally {
    for (const e of engines) e.free();
  }
}
