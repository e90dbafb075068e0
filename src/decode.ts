/**
 * Gateway payload decoding: a header scan that reads the top-level `op`, `s` and `t` of an envelope straight
 * from the raw bytes (or text) without parsing `d`, so unwanted dispatches can be dropped before any parse;
 * and the full parse.
 *
 * @module
 */
import { DecodeError } from './errors.js';

/** The routing fields of a gateway envelope. */
export interface FrameHeader {
  op: number;
  s: number | null;
  t: string | null;
}

/** A fully parsed gateway envelope. */
export interface GatewayPayload {
  op: number;
  d: unknown;
  s: number | null;
  t: string | null;
}

const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;
const DOT = 0x2e;
const LOWER_E = 0x65;
const UPPER_E = 0x45;

const KEY_OTHER = 0;
const KEY_OP = 1;
const KEY_S = 2;
const KEY_T = 4;
const ALL_KEYS = KEY_OP | KEY_S | KEY_T;

const NUMBER_RE = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
const utf8 = new TextDecoder('utf-8', { fatal: false });
const NO_BYTES = new Uint8Array(0);
/** Direct-mapped cache of short ASCII strings (event names), indexed by hash. */
const INTERN_SLOTS = 512;
const internTable: string[] = new Array<string>(INTERN_SLOTS).fill('\u0000');

/**
 * A read position over the input. The hot loops (whitespace, strings, bracket skipping) are written once per
 * input kind so each stays monomorphic; the rest of the scanner is shared. Out-of-range reads give
 * NaN/undefined, which compare unequal to every character.
 */
abstract class Cursor {
  n = 0;
  /** Value of the last number read. */
  num = 0;
  /** Value of the last string read. */
  str: string | null = null;
  /** Code unit / byte at `i`. */
  abstract at(i: number): number;
  /** Index of the first non-whitespace at or after `i`. */
  abstract skipWs(i: number): number;
  /** Index just past the closing quote of a string whose body starts at `i`, or -1. */
  abstract skipString(i: number): number;
  /** Index just past the object/array opening at `i` (string-aware bracket counter, inside not validated), or -1. */
  abstract skipComposite(i: number): number;
  /** Text of `[a, b)`. */
  abstract text(a: number, b: number): string;
  /** Text of `[a, b)` known to be printable ASCII. */
  abstract ascii(a: number, b: number): string;
  /** Drop the reference to the input. */
  abstract release(): void;
}

class ByteCursor extends Cursor {
  src: Uint8Array = NO_BYTES;
  at(i: number): number {
    return this.src[i]!;
  }
  skipWs(i: number): number {
    const src = this.src;
    const n = this.n;
    while (i < n) {
      const c = src[i]!;
      if (c !== SPACE && c !== LF && c !== CR && c !== TAB) break;
      i++;
    }
    return i;
  }
  skipString(i: number): number {
    const src = this.src;
    const n = this.n;
    while (i < n) {
      const c = src[i]!;
      if (c === QUOTE) return i + 1;
      i += c === BACKSLASH ? 2 : 1;
    }
    return -1;
  }
  skipComposite(i: number): number {
    const src = this.src;
    const n = this.n;
    let depth = 0;
    while (i < n) {
      const c = src[i++]!;
      if (c === QUOTE) {
        while (i < n) {
          const d = src[i]!;
          if (d === QUOTE) break;
          i += d === BACKSLASH ? 2 : 1;
        }
        i++;
      } else if (c === LBRACE || c === LBRACKET) depth++;
      else if ((c === RBRACE || c === RBRACKET) && --depth === 0) return i;
    }
    return -1;
  }
  text(a: number, b: number): string {
    return utf8.decode(this.src.subarray(a, b));
  }
  ascii(a: number, b: number): string {
    return internAscii(this.src, a, b);
  }
  release(): void {
    this.src = NO_BYTES;
  }
}

class StringCursor extends Cursor {
  src = '';
  at(i: number): number {
    return this.src.charCodeAt(i);
  }
  skipWs(i: number): number {
    const src = this.src;
    const n = this.n;
    while (i < n) {
      const c = src.charCodeAt(i);
      if (c !== SPACE && c !== LF && c !== CR && c !== TAB) break;
      i++;
    }
    return i;
  }
  skipString(i: number): number {
    const src = this.src;
    const n = this.n;
    while (i < n) {
      const c = src.charCodeAt(i);
      if (c === QUOTE) return i + 1;
      i += c === BACKSLASH ? 2 : 1;
    }
    return -1;
  }
  skipComposite(i: number): number {
    const src = this.src;
    const n = this.n;
    let depth = 0;
    while (i < n) {
      const c = src.charCodeAt(i++);
      if (c === QUOTE) {
        while (i < n) {
          const d = src.charCodeAt(i);
          if (d === QUOTE) break;
          i += d === BACKSLASH ? 2 : 1;
        }
        i++;
      } else if (c === LBRACE || c === LBRACKET) depth++;
      else if ((c === RBRACE || c === RBRACKET) && --depth === 0) return i;
    }
    return -1;
  }
  text(a: number, b: number): string {
    return this.src.slice(a, b);
  }
  ascii(a: number, b: number): string {
    return this.src.slice(a, b);
  }
  release(): void {
    this.src = '';
  }
}

/** Printable-ASCII bytes `[a, b)` as a string. Event names repeat endlessly: intern them so the hot path allocates nothing. */
function internAscii(src: Uint8Array, a: number, b: number): string {
  const len = b - a;
  if (len === 0) return '';
  // Cheap hash of length and a few sampled bytes; the full compare below makes collisions harmless.
  const h = Math.imul(len, 0x9e3779b1) ^ Math.imul(src[a]! ^ (src[b - 1]! << 8) ^ (src[a + (len >> 1)]! << 16) ^ (src[Math.max(b - 2, a)]! << 24), 0x85ebca6b);
  const slot = (h ^ (h >>> 15)) & (INTERN_SLOTS - 1);
  const hit = internTable[slot]!;
  if (hit.length === len) {
    let k = 0;
    while (k < hit.length && hit.charCodeAt(k) === src[a + k]) k++;
    if (k === hit.length) return hit;
  }
  if (len > 64) return utf8.decode(src.subarray(a, b)); // not interned; `apply` would overflow the stack on ~100k+ args
  const str = String.fromCharCode.apply(null, src.subarray(a, b) as unknown as number[]);
  internTable[slot] = str;
  return str;
}

/** Non-negative integer of plain digits at `i` (≤ 15 digits, no leading zero); sets `fastNum`; index past it or -1. */
let fastNum = 0;
function fastDigits(src: Uint8Array, i: number): number {
  const first = i;
  let v = 0;
  for (let c = src[i]!; c >= ZERO && c <= NINE; c = src[++i]!) v = v * 10 + (c - ZERO);
  const len = i - first;
  if (len === 0 || len > 15 || (len > 1 && src[first] === ZERO)) return -1;
  fastNum = v;
  return i;
}

/**
 * Exactly Discord's layout, no whitespace: `{"t":<null|"ASCII">,"s":<null|digits>,"op":<digits>` followed by
 * `,` or `}`. Returns undefined for anything else (the general scanner then decides).
 */
function scanDiscordLayout(src: Uint8Array): FrameHeader | undefined {
  const n = src.length;
  if (src[0] !== LBRACE || src[1] !== QUOTE || src[2] !== 0x74 || src[3] !== QUOTE || src[4] !== COLON) return undefined;
  let i = 5;
  let t: string | null = null;
  if (src[i] === QUOTE) {
    let j = i + 1;
    for (; j < n; j++) {
      const c = src[j]!;
      if (c === QUOTE) break;
      if (c < SPACE || c > 0x7e || c === BACKSLASH) return undefined;
    }
    if (j >= n) return undefined;
    t = internAscii(src, i + 1, j);
    i = j + 1;
  } else if (src[i] === 0x6e && src[i + 1] === 0x75 && src[i + 2] === 0x6c && src[i + 3] === 0x6c) {
    i += 4;
  } else return undefined;
  if (src[i] !== COMMA || src[i + 1] !== QUOTE || src[i + 2] !== 0x73 || src[i + 3] !== QUOTE || src[i + 4] !== COLON) return undefined;
  i += 5;
  let s: number | null = null;
  if (src[i] === 0x6e) {
    if (src[i + 1] !== 0x75 || src[i + 2] !== 0x6c || src[i + 3] !== 0x6c) return undefined;
    i += 4;
  } else {
    i = fastDigits(src, i);
    if (i < 0) return undefined;
    s = fastNum;
  }
  if (src[i] !== COMMA || src[i + 1] !== QUOTE || src[i + 2] !== 0x6f || src[i + 3] !== 0x70 || src[i + 4] !== QUOTE || src[i + 5] !== COLON) return undefined;
  i = fastDigits(src, i + 6);
  if (i < 0 || (src[i] !== COMMA && src[i] !== RBRACE)) return undefined;
  return { op: fastNum, s, t };
}

/** Reads a JSON string whose opening quote is at `i`; sets `cur.str`; returns the index past it, or -1. */
function readString(cur: Cursor, i: number): number {
  const n = cur.n;
  const start = i + 1;
  let j = start;
  let plain = true;
  while (j < n) {
    const c = cur.at(j);
    if (c === QUOTE) break;
    if (c < SPACE) return -1; // raw control characters are not valid JSON
    if (c === BACKSLASH || c > 0x7e) {
      plain = false;
      if (c === BACKSLASH) j++;
    }
    j++;
  }
  if (j >= n) return -1;
  if (plain) {
    cur.str = cur.ascii(start, j);
  } else {
    try {
      cur.str = JSON.parse(cur.text(i, j + 1)) as string;
    } catch {
      return -1;
    }
  }
  return j + 1;
}

/** Reads a JSON number at `i`; sets `cur.num`; returns the index past it, or -1. */
function readNumber(cur: Cursor, i: number): number {
  const n = cur.n;
  const start = i;
  const neg = cur.at(i) === MINUS;
  if (neg) i++;
  const first = i;
  let v = 0;
  while (i < n) {
    const c = cur.at(i);
    if (c < ZERO || c > NINE) break;
    v = v * 10 + (c - ZERO);
    i++;
  }
  const digits = i - first;
  if (digits === 0 || (digits > 1 && cur.at(first) === ZERO)) return -1;
  const c = cur.at(i);
  if (c === DOT || c === LOWER_E || c === UPPER_E || digits > 15) {
    // Rare: fractions, exponents, very long integers. Take the token and let the engine convert it.
    while (i < n) {
      const d = cur.at(i);
      if (!((d >= ZERO && d <= NINE) || d === DOT || d === LOWER_E || d === UPPER_E || d === MINUS || d === 0x2b)) break;
      i++;
    }
    const text = cur.text(start, i);
    if (!NUMBER_RE.test(text)) return -1;
    cur.num = Number(text);
    return i;
  }
  cur.num = neg ? -v : v;
  return i;
}

/** True when `word` (ASCII) is at `i`. */
function matchWord(cur: Cursor, i: number, word: string): boolean {
  if (i + word.length > cur.n) return false;
  for (let k = 0; k < word.length; k++) if (cur.at(i + k) !== word.charCodeAt(k)) return false;
  return true;
}

/** Index just past the JSON value at `i`, or -1. Scalars are checked; objects/arrays only bracket-matched. */
function skipValue(cur: Cursor, i: number): number {
  const c = cur.at(i);
  if (c === QUOTE) return cur.skipString(i + 1);
  if (c === LBRACE || c === LBRACKET) return cur.skipComposite(i);
  if (c === 0x74) return matchWord(cur, i, 'true') ? i + 4 : -1;
  if (c === 0x66) return matchWord(cur, i, 'false') ? i + 5 : -1;
  if (c === 0x6e) return matchWord(cur, i, 'null') ? i + 4 : -1;
  return readNumber(cur, i);
}

/** Reads the key whose opening quote is at `i`: sets `cur.num` to its kind (or -1); returns the index past it. */
function readKey(cur: Cursor, i: number): number {
  const a = i + 1;
  const n = cur.n;
  let j = a;
  let escaped = false;
  while (j < n) {
    const c = cur.at(j);
    if (c === QUOTE) break;
    if (c === BACKSLASH) {
      escaped = true;
      j++;
    }
    j++;
  }
  if (j >= n) return -1;
  const len = j - a;
  let kind = KEY_OTHER;
  if (escaped) {
    let key: unknown;
    try {
      key = JSON.parse(cur.text(i, j + 1));
    } catch {
      return -1;
    }
    kind = key === 'op' ? KEY_OP : key === 's' ? KEY_S : key === 't' ? KEY_T : KEY_OTHER;
  } else if (len === 1) {
    const c = cur.at(a);
    kind = c === 0x73 ? KEY_S : c === 0x74 ? KEY_T : KEY_OTHER;
  } else if (len === 2 && cur.at(a) === 0x6f && cur.at(a + 1) === 0x70) {
    kind = KEY_OP;
  }
  cur.num = kind;
  return j + 1;
}

function scan(cur: Cursor): FrameHeader | null {
  let i = cur.skipWs(0);
  if (cur.at(i) !== LBRACE) return null;
  i = cur.skipWs(i + 1);
  let seen = 0;
  let op = 0;
  let s: number | null = null;
  let t: string | null = null;
  if (cur.at(i) === RBRACE) return null;
  for (;;) {
    if (cur.at(i) !== QUOTE) return null;
    i = readKey(cur, i);
    if (i < 0) return null;
    const kind = cur.num;
    i = cur.skipWs(i);
    if (cur.at(i) !== COLON) return null;
    i = cur.skipWs(i + 1);
    const c = cur.at(i);
    if (kind === KEY_OTHER) {
      i = skipValue(cur, i);
    } else if (c === 0x6e && kind !== KEY_OP) {
      i = matchWord(cur, i, 'null') ? i + 4 : -1;
      if (kind === KEY_S) s = null;
      else t = null;
    } else if (kind === KEY_T) {
      if (c !== QUOTE) return null;
      i = readString(cur, i);
      t = cur.str;
    } else {
      if (c !== MINUS && !(c >= ZERO && c <= NINE)) return null;
      i = readNumber(cur, i);
      if (i < 0 || !Number.isInteger(cur.num)) return null;
      if (kind === KEY_OP) op = cur.num;
      else s = cur.num;
    }
    if (i < 0) return null;
    seen |= kind;
    // The value must be terminated (a number cut off by the end of the input is not a number yet).
    i = cur.skipWs(i);
    const sep = cur.at(i);
    if (sep !== COMMA && sep !== RBRACE) return null;
    if (seen === ALL_KEYS || sep === RBRACE) break;
    i = cur.skipWs(i + 1);
  }
  return (seen & KEY_OP) === 0 ? null : { op, s, t };
}

const bytesCursor = new ByteCursor();
const stringCursor = new StringCursor();

/**
 * Read `op`, `s` and `t` of a top-level gateway envelope without parsing `d` and, for bytes, without decoding
 * the buffer to a string. Keys may come in any order with any JSON whitespace; values of `d` and unknown keys
 * met before the three fields are skipped with a string-aware bracket matcher (never parsed), and the scan
 * stops as soon as all three are known (Discord writes `t, s, op, d`, so `d` is normally never touched).
 *
 * Returns null when the input is not an object envelope with an integer `op`, or when `s` is not an integer
 * or null, or `t` not a string or null. `s`/`t` absent are reported as null. This is a routing scan, not a
 * validator: the inside of skipped values is not checked, so a frame that scans can still fail
 * {@link parsePayload}. For duplicate keys the first complete set wins (JSON.parse keeps the last).
 */
export function scanHeader(input: string | Uint8Array): FrameHeader | null {
  if (typeof input === 'string') {
    const cur = stringCursor;
    cur.src = input;
    cur.n = input.length;
    try {
      return scan(cur);
    } finally {
      cur.release();
    }
  }
  const fast = scanDiscordLayout(input);
  if (fast !== undefined) return fast;
  const cur = bytesCursor;
  cur.src = input;
  cur.n = input.length;
  try {
    return scan(cur);
  } finally {
    cur.release();
  }
}

/** Decode bytes to text once (Buffer#toString is the fastest path on Node for payload-sized input). */
function toText(input: Uint8Array): string {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  return buf.toString('utf8');
}

/** At most ~100 characters of the input, quoted and escaped (escapes capped too), for error messages. */
function preview(text: string): string {
  const quoted = JSON.stringify(text.slice(0, 100));
  const shown = quoted.length <= 160 ? quoted : `${quoted.slice(0, 159)}"`;
  return text.length <= 100 && quoted.length <= 160 ? shown : `${shown}… (${text.length} chars)`;
}

function isEnvelope(v: unknown): v is { op: number; d?: unknown; s?: unknown; t?: unknown } {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const e = v as { op?: unknown; s?: unknown; t?: unknown };
  return Number.isInteger(e.op) && (e.s === undefined || e.s === null || Number.isInteger(e.s)) && (e.t === undefined || e.t === null || typeof e.t === 'string');
}

/**
 * Full parse of one gateway payload (UTF-8 bytes or text). The result is the parsed object itself with `s`,
 * `t` and `d` normalised to null when absent.
 *
 * @throws DecodeError for invalid JSON or a value that is not an envelope (object, integer `op`, integer or
 *   null `s`, string or null `t`). Never a SyntaxError; messages quote at most ~100 characters of the input.
 */
export function parsePayload(input: string | Uint8Array): GatewayPayload {
  const text = typeof input === 'string' ? input : toText(input);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    const pos = /position (\d+)/.exec(err instanceof Error ? err.message : '');
    throw new DecodeError(`invalid JSON${pos ? ` at position ${pos[1]}` : ''}: ${preview(text)}`, { cause: err });
  }
  if (!isEnvelope(v)) throw new DecodeError(`not a gateway envelope (need an object with an integer "op"): ${preview(text)}`);
  const p = v as GatewayPayload;
  if (p.s === undefined) p.s = null;
  if (p.t === undefined) p.t = null;
  if (p.d === undefined) p.d = null;
  return p;
}
