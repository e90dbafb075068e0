/**
 * zstd-stream backends: `node:zlib-zstd` (Node's own zstd, 22.15+, on the synchronous internal path of
 * `inflate-zlib.ts`, behind its capability check {@link probeZlibZstd}) and the optional `zstd-napi` addon (its
 * low-level `DCtx.decompressStream`). The pure-JS `fzstd` is in `inflate-fallback.ts`.
 *
 * @module
 */
import zlib from 'node:zlib';
import {
  cachedProbe,
  corrupt,
  type Engine,
  type EngineFactory,
  freeSlab,
  loadOptional,
  maxOutputLength,
  noop,
  SLAB,
  SLAB_MIN_FREE,
  scratchBuffer,
  slab,
  tooLarge,
  type ZlibProbe,
} from './inflate-engine.js';
import { checkInternalPath, freshProbeStream, internalEngine } from './inflate-zlib.js';

// ---------------------------------------------------------------------------------------------------------
// zstd: zstd-napi low-level binding
// ---------------------------------------------------------------------------------------------------------

interface ZstdBinding {
  DCtx: new () => { decompressStream(dst: Uint8Array, src: Uint8Array): [number, number, number] };
}

export const zstdBinding = loadOptional<ZstdBinding>('zstd-napi/binding');

export const zstdNapiEngine: EngineFactory = (max) => {
  const dctx = new zstdBinding!.DCtx();
  return {
    run(input, transient) {
      let src: Buffer = input;
      let first: Buffer | null = null;
      let parts: Buffer[] | null = null;
      let total = 0;
      // Output target: the process-wide slab from its free offset (owned) or the scratch at 0 (transient).
      let buf = transient ? scratchBuffer() : freeSlab();
      let off = transient ? 0 : slab.off;
      for (;;) {
        if (buf.length - off < SLAB_MIN_FREE) {
          // Out of room. Owned: continue in a new shared slab. Transient: in a private buffer (the pieces
          // already written to the scratch stay valid until they are concatenated below).
          buf = Buffer.allocUnsafe(SLAB);
          off = 0;
          if (!transient) {
            slab.buf = buf;
            slab.off = 0;
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
          if (!transient) slab.off = off; // returned (or about to be copied) bytes are never handed out again
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

export const nodeZstdEngine: EngineFactory = (max) => internalZstdEngine(nodeZlibZstd, max)[0];

/** One zstd frame over three messages, each flushed (`ZSTD_e_flush`), made by Node 24's `ZstdCompress`; the third is 80 KB. */
const ZSTD_PROBE_IN = [
  'KLUv/QBYJAMAwsYWG4C5GQP9NrNmxbjHOQZKUlNzibB07vYntjAzRs+zWiwxbQUMI3ebc/YWtEiNKgmBVLGsvnE9uJcAtC2mXkrsuVqoubWrOx5IzuzkajzyxI1IvuOGgYBQOFd2AgEA4WUzCg==',
  'VAEA0E1FU1NBR0VfQ1JFQVRFMmNvbnRlbnQiOn19BQACow8PDYC8/sBqDwEI',
  'RAMAEsUSGYCpOhJSmsD3KMSZpV0UGxFirF05nTmYlRHdqrGX22J6thZxVEnP2xTv2OtWAp+IFBPIk0ZBCEDynB/6t7z4kfT89uDWGUGBYBgECABUPdrgGXg6zEcCzazoMWnTMsgXjaPqEII=',
];

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
  return zstdProbe(z);
}

const zstdProbe = cachedProbe<ZstdZlibLike>(nodeZlibZstd, (z) => {
  if (typeof z.ZstdDecompress !== 'function') return `zlib.ZstdDecompress is not a constructor (Node ${process.versions.node}; it has zstd from 22.15)`;
  if (typeof z.constants?.ZSTD_e_continue !== 'number') return 'zlib.constants.ZSTD_e_continue is not a number';
  return checkInternalPath('node:zlib-zstd', 'zlib.ZstdDecompress', z.ZstdDecompress, (max) => internalZstdEngine(z, max), {
    streams: [{ label: 'sample', frames: ZSTD_PROBE_IN.map((b) => Buffer.from(b, 'base64')), messages: freshProbeStream().messages }],
    corrupt: { input: Buffer.from('28b52ffd00580000ffffffffffffffff', 'hex'), fresh: true },
  });
});
