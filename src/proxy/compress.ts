/**
 * Downstream transport compression, synchronous: each gateway message becomes exactly the bytes of one websocket
 * message, in order, with no thread-pool hop per message.
 *
 * - `zlib-stream`: one deflate context per connection, each message flushed with `Z_SYNC_FLUSH` (ends in
 *   `00 00 FF FF`). `zlib.Deflate#_processChunk` without a callback is Node's own synchronous path (the one
 *   `deflateSync` runs); it closes the native handle when done, so the handle's `close` is shadowed and `_handle`
 *   restored after each call — the same technique, and the same kind of capability check, as the client's inflater
 *   (`src/inflate-zlib.ts`). If the check fails, a public-API fallback is used: `deflateRawSync` with the last 32 KiB of
 *   input as the preset dictionary (a sync flush byte-aligns the stream, so the concatenation is one valid stream).
 * - `zstd-stream`: one `zstd-napi` `CCtx` per connection, `compressStream2(…, flush)` per message (synchronous).
 * @packageDocumentation
 */
import { createRequire } from 'node:module';
import zlib from 'node:zlib';

/** Transport compression a client may ask for (`compress=` query parameter). */
export type ClientCompression = 'zlib-stream' | 'zstd-stream';

/** Compresses the messages of one connection through one context. */
export interface SyncCompressor {
  compress(data: Buffer): Buffer;
  close(): void;
}

interface DeflateInternals {
  _processChunk(chunk: Buffer, flag: number): Buffer;
  _handle: { close(): void } | null;
}

const SYNC = zlib.constants.Z_SYNC_FLUSH;
let internalsOk: boolean | null = null;

function internalDeflater(): SyncCompressor {
  const inst = zlib.createDeflate({ chunkSize: 16 * 1024, level: 3 }) as unknown as zlib.Deflate & DeflateInternals;
  const handle = inst._handle!;
  const realClose = handle.close;
  handle.close = () => {};
  inst.on('error', () => {});
  const ownOn = inst.on;
  inst.on = function (this: zlib.Deflate, event: string | symbol, listener: (...args: unknown[]) => void) {
    return event === 'error' ? this : ownOn.call(this, event, listener);
  } as typeof inst.on;
  return {
    compress(data) {
      try {
        // The result is a view of the stream's output buffer, which the next call overwrites: copy it.
        return Buffer.from(inst._processChunk(data, SYNC));
      } finally {
        inst._handle = handle;
      }
    },
    close() {
      inst._handle = null;
      try {
        realClose.call(handle);
      } catch {
        /* already closed */
      }
    },
  };
}

/** Public APIs only: raw deflate per message with the previous 32 KiB of input as dictionary. */
function publicDeflater(): SyncCompressor {
  let history = Buffer.alloc(0);
  let first = true;
  return {
    compress(data) {
      const body = zlib.deflateRawSync(data, { finishFlush: SYNC, ...(history.length > 0 ? { dictionary: history } : {}) });
      const joined = Buffer.concat([history, data]);
      history = joined.subarray(Math.max(0, joined.length - 32 * 1024));
      if (!first) return body;
      first = false;
      return Buffer.concat([Buffer.from([0x78, 0x9c]), body]);
    },
    close() {
      history = Buffer.alloc(0);
    },
  };
}

/** True when Node's synchronous deflate path works as expected here (checked once, by a round trip). */
function checkInternals(): boolean {
  if (internalsOk !== null) return internalsOk;
  try {
    const d = internalDeflater();
    const a = Buffer.from('{"op":10,"d":{"heartbeat_interval":41250}}');
    const b = Buffer.from('{"op":11,"d":null}{"op":11,"d":null}');
    const out = Buffer.concat([d.compress(a), d.compress(b)]);
    d.close();
    const back = zlib.inflateSync(out, { finishFlush: SYNC }).toString();
    internalsOk = back === a.toString() + b.toString() && out.subarray(-4).equals(Buffer.from([0, 0, 0xff, 0xff]));
  } catch {
    internalsOk = false;
  }
  return internalsOk;
}

interface ZstdBinding {
  CCtx: new () => { setParameter(p: number, v: number): void; compressStream2(dst: Uint8Array, src: Uint8Array, end: number): [number, number, number] };
  CParameter: { compressionLevel: number };
  EndDirective: { flush: number };
}
let zstd: ZstdBinding | null | undefined;

function loadZstd(): ZstdBinding | null {
  if (zstd === undefined) {
    try {
      zstd = createRequire(import.meta.url)('zstd-napi/binding') as ZstdBinding;
    } catch {
      zstd = null;
    }
  }
  return zstd;
}

/** True when `zstd-stream` can be served (the optional `zstd-napi` package loads). */
export function zstdSupported(): boolean {
  return loadZstd() !== null;
}

function zstdCompressor(z: ZstdBinding): SyncCompressor {
  const ctx = new z.CCtx();
  ctx.setParameter(z.CParameter.compressionLevel, 3);
  let dst = Buffer.allocUnsafe(64 * 1024);
  return {
    compress(data) {
      const parts: Buffer[] = [];
      let src: Buffer = data;
      for (;;) {
        const [remaining, produced, consumed] = ctx.compressStream2(dst, src, z.EndDirective.flush);
        if (produced > 0) parts.push(Buffer.from(dst.subarray(0, produced)));
        src = src.subarray(consumed);
        if (remaining === 0 && src.length === 0) break;
        if (produced === dst.length) dst = Buffer.allocUnsafe(dst.length * 2);
      }
      return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    },
    close() {
      dst = Buffer.alloc(0);
    },
  };
}

/**
 * The compressor of one downstream connection.
 * @throws Error when `kind` is `zstd-stream` and `zstd-napi` is not installed (check {@link zstdSupported} first).
 */
export function createCompressor(kind: ClientCompression): SyncCompressor {
  if (kind === 'zlib-stream') return checkInternals() ? internalDeflater() : publicDeflater();
  const z = loadZstd();
  if (z === null) throw new Error('zstd-stream needs the optional "zstd-napi" package');
  return zstdCompressor(z);
}
