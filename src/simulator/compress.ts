/**
 * Server-side transport compression.
 *
 * - `zlib-stream`: one `zlib.createDeflate()` per connection; each gateway message is written then flushed with
 *   `Z_SYNC_FLUSH`, so every message ends in `00 00 FF FF` and the first begins with the zlib header.
 * - `zstd-stream`: one zstd-napi `CompressStream` per connection, flushed (`ZSTD_e_flush`) after each message;
 *   the frame is never ended. Needs the optional `zstd-napi` package.
 *
 * Callers must not start a `compress()` before the previous one resolved (the connection serialises them).
 * @packageDocumentation
 */
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import type { Transform } from 'node:stream';
import type { SimCompression } from './types.js';

/** Compresses the messages of one connection, in order, through one shared context. */
export interface MessageCompressor {
  readonly kind: SimCompression;
  /** Compress one gateway message and flush; resolves with exactly the bytes for this message. */
  compress(data: Buffer): Promise<Buffer>;
  /** Release the context. */
  close(): void;
}

interface ZstdCompressStream extends Transform {
  flush(callback?: (error?: Error | null) => void): void;
}
interface ZstdModule {
  CompressStream: new (params?: { compressionLevel?: number }) => ZstdCompressStream;
}

let zstdModule: ZstdModule | null | undefined;
function loadZstd(): ZstdModule | null {
  if (zstdModule === undefined) {
    try {
      const mod = createRequire(import.meta.url)('zstd-napi') as Partial<ZstdModule>;
      zstdModule = typeof mod.CompressStream === 'function' ? (mod as ZstdModule) : null;
    } catch {
      zstdModule = null;
    }
  }
  return zstdModule;
}

/** True when the optional `zstd-napi` package can be loaded (zstd-stream is then supported). */
export function zstdAvailable(): boolean {
  return loadZstd() !== null;
}

class StreamCompressor implements MessageCompressor {
  private chunks: Buffer[] = [];
  private error: Error | null = null;
  private closed = false;

  constructor(
    readonly kind: SimCompression,
    private readonly stream: Transform,
    private readonly flushStream: (cb: (err?: Error | null) => void) => void,
  ) {
    stream.on('data', (c: Buffer) => this.chunks.push(c));
    stream.on('error', (e: Error) => {
      this.error = e;
    });
  }

  compress(data: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error('compressor closed'));
      if (this.error) return reject(this.error);
      this.stream.write(data);
      this.flushStream((err) => {
        // Let any output buffered during the flush reach the 'data' listener first.
        process.nextTick(() => {
          const e = err ?? this.error;
          if (e) return reject(e);
          const out = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
          this.chunks = [];
          resolve(out);
        });
      });
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.chunks = [];
    this.stream.removeAllListeners('data');
    this.stream.on('error', () => {});
    this.stream.destroy();
  }
}

/**
 * Create the compressor of one connection.
 * @throws Error when `kind` is `zstd-stream` and `zstd-napi` is not installed.
 */
export function createCompressor(kind: SimCompression): MessageCompressor {
  if (kind === 'zlib-stream') {
    const deflate = zlib.createDeflate({ chunkSize: 64 * 1024 });
    return new StreamCompressor(kind, deflate, (cb) => deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => cb()));
  }
  const mod = loadZstd();
  if (!mod) throw new Error('zstd-stream needs the optional "zstd-napi" package, which is not installed');
  const stream = new mod.CompressStream({ compressionLevel: 3 });
  return new StreamCompressor(kind, stream, (cb) => stream.flush(cb));
}

/** Split `buf` into pieces of at most `max` bytes (views, no copy). */
export function splitFrames(buf: Buffer, max: number): Buffer[] {
  if (!(max > 0) || buf.length <= max) return [buf];
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += max) parts.push(buf.subarray(i, i + max));
  return parts;
}

/** Bytes that no inflater accepts, shaped like a complete message of `kind` (zlib: ends in `00 00 FF FF`). */
export function garbageFrame(kind: SimCompression | null): Buffer | string {
  if (kind === null) return '{"op":0,"t":"MESSAGE_CREATE","s":';
  if (kind === 'zlib-stream') return Buffer.from([0xff, 0xff, 0xff, 0xff, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0xff, 0xff]);
  return Buffer.from([0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0xff, 0x13, 0x37]);
}
