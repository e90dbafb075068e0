/**
 * What every transport-decompression backend is built on: the {@link Engine} contract (one long-lived context,
 * one complete unit of input in, its output out, synchronously), the typed errors they throw, optional-addon
 * loading, and the output buffers shared by every inflater of the process (the owned-results slab and the
 * transient scratch). The backends are in `inflate-zlib.ts`, `inflate-zstd.ts` and `inflate-fallback.ts`; the
 * public `createInflater` and the backend selection in `inflate.ts`.
 *
 * @module
 */
import { createRequire } from 'node:module';
import { InflateError } from './errors.js';

/** Synchronous decompression of one complete unit of input through a long-lived context. */
export interface Engine {
  /** Decompress `input` completely; throws InflateError. `transient`: the result may live in the shared scratch. */
  run(input: Buffer, transient: boolean): Buffer;
  /** Free native resources. */
  free(): void;
}

export type EngineFactory = (max: number) => Engine;

/** What a capability probe found: usable, or why not. */
export type ZlibProbe = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Set to `1` to make the capability probes report "unavailable": every inflater then uses a fallback backend. */
export const INFLATE_FALLBACK_ENV = 'SHARDLINE_INFLATE_FALLBACK';

/** Why {@link INFLATE_FALLBACK_ENV} turns the internal paths off, or null when it does not. */
export function forcedFallback(): string | null {
  const forced = process.env[INFLATE_FALLBACK_ENV];
  return forced !== undefined && forced !== '' && forced !== '0' ? `${INFLATE_FALLBACK_ENV}=${forced.slice(0, 20)} forces the fallback` : null;
}

/**
 * A capability probe with its per-process cache. `check(z)` returns null when the capability is usable, else why
 * not (a throw is a refusal too, with what it threw). The returned probe, called without an argument, checks
 * `target` once, lazily, and caches the answer (reporting unavailable without checking when
 * {@link INFLATE_FALLBACK_ENV} forces the fallback); with an argument (tests: another Node's zlib), it checks that
 * object, uncached.
 */
export function cachedProbe<Z>(target: Z, check: (z: Z) => string | null): (z?: Z) => ZlibProbe {
  const run = (z: Z): ZlibProbe => {
    let reason: string | null;
    try {
      reason = check(z);
    } catch (err) {
      reason = `the probe threw: ${err instanceof Error ? err.message : String(err)}`.slice(0, 200);
    }
    return reason === null ? { ok: true } : { ok: false, reason };
  };
  let cached: ZlibProbe | null = null;
  return (z) => {
    if (z !== undefined) return run(z);
    if (cached === null) {
      const forced = forcedFallback();
      cached = forced !== null ? { ok: false, reason: forced } : run(target);
    }
    return cached;
  };
}

const require = createRequire(import.meta.url);

/** An optional addon, or null when it is not installed (or fails to load). */
export function loadOptional<T>(id: string): T | null {
  try {
    return require(id) as T;
  } catch {
    return null;
  }
}

export function corrupt(backend: string, cause: unknown): InflateError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new InflateError('INFLATE_CORRUPT', `${backend}: corrupt compressed data (${why.slice(0, 120)}); the stream context is unusable, reconnect`, { cause });
}

export function tooLarge(what: string, max: number): InflateError {
  return new InflateError('INFLATE_TOO_LARGE', `${what} exceeds maxMessageSize (${max} bytes)`);
}

/** `maxOutputLength` of a `node:zlib` call for the bound `max`. */
export const maxOutputLength = (max: number): number => Math.max(1, Math.min(Math.floor(max), 2 ** 31 - 1));

// ---------------------------------------------------------------------------------------------------------
// Output buffers shared by every inflater of the process
// ---------------------------------------------------------------------------------------------------------

/** Size of one output slab (owned results). */
export const SLAB = 32 * 1024;
/** When less than this is left in the output slab, start a new one (a tiny tail only forces extra loop rounds). */
export const SLAB_MIN_FREE = 2 * 1024;
/** Size of the transient scratch buffer (like the floor's 64 KiB output buffer). */
const SCRATCH = 64 * 1024;
export const noop = (): void => {};
export const EMPTY = Buffer.alloc(0);
export const NO_CHUNKS: readonly Buffer[] = [];

/**
 * The output slab of owned results, shared by every inflater in the process. Every push is synchronous on this
 * one thread, so advancing one shared offset (`slab.off`) keeps the contract that a returned buffer is never
 * overwritten: results are consecutive slices of the slab, and when it runs out a new slab is allocated (the
 * old one is freed by the GC once callers drop their slices). No inflater keeps a slab of its own, so an idle
 * connection pins no output memory; this is what keeps the per-connection footprint at the native context.
 * An object, not two `let`s: the engines in the backend files advance it (an imported binding can't be assigned).
 */
export const slab: { buf: Buffer; off: number } = { buf: EMPTY, off: 0 };

/** The current shared slab with at least SLAB_MIN_FREE bytes free from `slab.off`. */
export function freeSlab(): Buffer {
  if (slab.buf.length - slab.off < SLAB_MIN_FREE) {
    slab.buf = Buffer.allocUnsafe(SLAB);
    slab.off = 0;
  }
  return slab.buf;
}

/** Scratch buffer of transient results, reused at offset 0 by every transient push (allocated on first use). */
let scratch: Buffer = EMPTY;

export function scratchBuffer(): Buffer {
  if (scratch.length === 0) scratch = Buffer.allocUnsafe(SCRATCH);
  return scratch;
}
