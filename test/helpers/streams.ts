/**
 * Gateway-like compressed streams for the inflater tests: one context per stream, a flush after every message,
 * the frame or stream never closed — as Discord's zlib-stream and zstd-stream do.
 */
import { createRequire } from 'node:module';
import zlib from 'node:zlib';

const require = createRequire(import.meta.url);

/** Compress messages through one deflate stream with a Z_SYNC_FLUSH after each, like the gateway. */
export async function deflateStream(messages: Buffer[]): Promise<Buffer[]> {
  const deflate = zlib.createDeflate();
  const parts: Buffer[] = [];
  deflate.on('data', (c: Buffer) => parts.push(c));
  const frames: Buffer[] = [];
  for (const m of messages) {
    deflate.write(m);
    await new Promise<void>((resolve) => deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve()));
    frames.push(Buffer.concat(parts.splice(0)));
  }
  deflate.close();
  return frames;
}

interface ZstdBinding {
  CCtx: new () => { compressStream2(dst: Uint8Array, src: Uint8Array, end: number): [number, number, number] };
  EndDirective: { flush: number };
}

/** zstd-napi's low-level binding, or null where the optional package cannot be loaded. */
export const zstdBinding: ZstdBinding | null = (() => {
  try {
    return require('zstd-napi/binding') as ZstdBinding;
  } catch {
    return null;
  }
})();

/** Compress messages through one zstd context with ZSTD_e_flush after each (frame never closed), like the gateway. */
export function zstdStream(messages: Buffer[]): Buffer[] {
  const b = zstdBinding!;
  const cctx = new b.CCtx();
  const out = Buffer.allocUnsafe(1 << 20);
  return messages.map((m) => {
    const pieces: Buffer[] = [];
    let src: Buffer = m;
    for (;;) {
      const [remaining, produced, consumed] = cctx.compressStream2(out, src, b.EndDirective.flush);
      pieces.push(Buffer.from(out.subarray(0, produced)));
      src = src.subarray(consumed);
      if (remaining === 0 && src.length === 0) break;
    }
    return Buffer.concat(pieces);
  });
}
