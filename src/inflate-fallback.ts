/**
 * The fallback backends, used where a faster one is unavailable: `node:zlib-public` (zlib-stream through
 * documented `node:zlib` calls only), the optional `zlib-sync` addon, and the pure-JS decoders `fflate` (zlib)
 * and `fzstd` (zstd).
 *
 * @module
 */
import zlib from 'node:zlib';
import { Unzlib } from 'fflate';
import { Decompress as FzstdDecompress } from 'fzstd';
import { InflateError } from './errors.js';
import { corrupt, EMPTY, type EngineFactory, loadOptional, maxOutputLength, noop, SLAB, tooLarge } from './inflate-engine.js';
import { selfTest } from './inflate-zlib.js';

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
export const nodeZlibPublicEngine: EngineFactory = (max) => {
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
export function nodeZlibPublicProblem(): string | null {
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

export const zlibSync = loadOptional<ZlibSyncModule>('zlib-sync');

export const zlibSyncEngine: EngineFactory = (max) => {
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
export function streamingEngine(name: string, what: string, make: (ondata: (data: Uint8Array) => void) => StreamingDecoder): EngineFactory {
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

export const fflateEngine: EngineFactory = streamingEngine('fflate', 'inflated message', (ondata) => new Unzlib(ondata));

// ---------------------------------------------------------------------------------------------------------
// zstd: fzstd (pure JS)
// ---------------------------------------------------------------------------------------------------------

export const fzstdEngine: EngineFactory = streamingEngine('fzstd', 'decompressed message', (ondata) => new FzstdDecompress(ondata));
