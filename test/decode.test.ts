import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { scanHeader, parsePayload, type FrameHeader } from '../src/decode.js';
import { DecodeError } from '../src/errors.js';
import { CONTROL_FIXTURES, DISPATCH_FIXTURES, SEND_FIXTURES, type FixtureEnvelope } from '../src/simulator/fixtures-data.js';

const fixtures: [string, FixtureEnvelope][] = [
  ...Object.entries(CONTROL_FIXTURES).map(([k, v]): [string, FixtureEnvelope] => [`control.${k}`, v]),
  ...Object.entries(DISPATCH_FIXTURES).map(([k, v]): [string, FixtureEnvelope] => [`dispatch.${k}`, v]),
  ...Object.entries(SEND_FIXTURES).map(([k, v]): [string, FixtureEnvelope] => [`send.${k}`, v]),
];

/** The header JSON.parse sees (absent s/t count as null). */
function expected(text: string): FrameHeader {
  const p = JSON.parse(text) as { op: number; s?: number | null; t?: string | null };
  return { op: p.op, s: p.s ?? null, t: p.t ?? null };
}

/** Serialise with the given key order. */
function withOrder(p: Record<string, unknown>, order: string[], space?: number): string {
  const o: Record<string, unknown> = {};
  for (const k of order) if (k in p) o[k] = p[k];
  return JSON.stringify(o, null, space);
}

/** Both input kinds give the same answer. */
function scanBoth(text: string): FrameHeader | null {
  const fromString = scanHeader(text);
  const fromBytes = scanHeader(Buffer.from(text));
  assert.deepEqual(fromBytes, fromString, `bytes and string scans differ for ${text.slice(0, 80)}`);
  const plain = new Uint8Array(Buffer.from(text)); // not a Buffer
  assert.deepEqual(scanHeader(plain), fromString);
  return fromString;
}

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((rest) => [x, ...rest]));
}

describe('scanHeader', () => {
  it('equals JSON.parse op/s/t for every fixture (control, dispatch, send) in every key order', () => {
    for (const [name, payload] of fixtures) {
      for (const order of permutations(['t', 's', 'op', 'd'])) {
        const text = withOrder(payload as unknown as Record<string, unknown>, order);
        assert.deepEqual(scanBoth(text), expected(text), `${name} order ${order.join(',')}`);
      }
    }
  });

  it('handles Discord layout {"t","s","op","d"} on the fast path and the general path alike', () => {
    const text = '{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"op":7,"s":1,"t":"NOPE"}}';
    assert.deepEqual(scanBoth(text), { op: 0, s: 42, t: 'MESSAGE_CREATE' });
    assert.deepEqual(scanBoth('{"t":null,"s":null,"op":11,"d":null}'), { op: 11, s: null, t: null });
    assert.deepEqual(scanBoth('{"t":null,"s":null,"op":11}'), { op: 11, s: null, t: null });
  });

  it('accepts any JSON whitespace', () => {
    for (const [name, payload] of fixtures.slice(0, 10)) {
      for (const order of [
        ['t', 's', 'op', 'd'],
        ['d', 'op', 's', 't'],
      ]) {
        const text = withOrder(payload as unknown as Record<string, unknown>, order, 2).replace(/\n/g, '\r\n\t');
        assert.deepEqual(scanBoth(` \n${text}\t `), expected(text), name);
      }
    }
    assert.deepEqual(scanBoth('{ "t" : "READY" , "s" : 1 , "op" : 0 , "d" : { } }'), { op: 0, s: 1, t: 'READY' });
  });

  it('never picks up "op"/"s"/"t" inside d, strings with "op": or escaped quotes', () => {
    const d = { note: 'he said \\"op\\": 9, "s":5 and "t":"X"', op: 9, nested: { op: 8, list: [{ op: 7 }, '"op":6', '}]{['], s: 99, t: 'INNER' }, quote: '\\', tail: '\\\\"' };
    for (const order of permutations(['t', 's', 'op', 'd'])) {
      const text = withOrder({ t: 'GUILD_CREATE', s: 5, op: 0, d }, order);
      assert.deepEqual(scanBoth(text), { op: 0, s: 5, t: 'GUILD_CREATE' }, order.join(','));
    }
  });

  it('skips d and unknown keys placed before the fields it needs', () => {
    const text = '{"x":[1,{"op":2},"]"],"d":{"a":"}","b":[[[]]]},"y":-1.5e3,"z":true,"w":false,"v":null,"op":10,"t":null}';
    assert.deepEqual(scanBoth(text), { op: 10, s: null, t: null });
  });

  it('s and t may be absent or null', () => {
    assert.deepEqual(scanBoth('{"op":1}'), { op: 1, s: null, t: null });
    assert.deepEqual(scanBoth('{"op":1,"d":251}'), { op: 1, s: null, t: null });
    assert.deepEqual(scanBoth('{"d":{},"op":9}'), { op: 9, s: null, t: null });
    assert.deepEqual(scanBoth('{"s":null,"op":0,"t":"A"}'), { op: 0, s: null, t: 'A' });
  });

  it('numbers: negative, exponent and fraction forms follow JSON.parse', () => {
    assert.deepEqual(scanBoth('{"op":-1}'), { op: -1, s: null, t: null });
    assert.deepEqual(scanBoth('{"op":1e1,"s":2.0}'), { op: 10, s: 2, t: null });
    assert.deepEqual(scanBoth('{"t":"A","s":9007199254740991,"op":0}'), { op: 0, s: 9007199254740991, t: 'A' });
    assert.equal(scanBoth('{"op":1.5}'), null);
    assert.equal(scanBoth('{"op":01}'), null);
    assert.equal(scanBoth('{"op":-}'), null);
    assert.equal(scanBoth('{"op":1,"s":2.5}'), null);
  });

  it('unicode and escapes in t and in d', () => {
    assert.deepEqual(scanBoth('{"t":"CAF\\u00c9","s":1,"op":0}'), { op: 0, s: 1, t: 'CAFÉ' });
    assert.deepEqual(scanBoth('{"t":"ÉVÉNEMENT_😀","s":1,"op":0}'), { op: 0, s: 1, t: 'ÉVÉNEMENT_😀' });
    assert.deepEqual(scanBoth('{"d":{"emoji":"😀\\"}","name":"Ünïcødé ≜ ✨"},"t":"X","s":3,"op":0}'), { op: 0, s: 3, t: 'X' });
    assert.deepEqual(scanBoth('{"\\u006fp":4,"t":null}'), { op: 4, s: null, t: null });
  });

  it('returns null for anything that is not an envelope with an integer op', () => {
    for (const text of [
      '',
      ' ',
      'null',
      '[]',
      '[{"op":1}]',
      '"op"',
      '42',
      '{}',
      '{"d":{"op":1}}',
      '{"op":"1"}',
      '{"op":null}',
      '{"op":true}',
      '{"op":1,"t":5}',
      '{"op":1,"s":"5"}',
      '{"op":1,"t":{}}',
      '{"op"1}',
      '{op:1}',
      "{'op':1}",
      '{"op":1 "s":2}',
      '{"d":[1,2',
      '{"d":"abc',
      '{"t":"AB',
      '{"t":"A\u0001B","op":0}',
      '{"op":1,}x',
      '{"op"',
      '{"op":',
      '{"op":1,"d":tru}',
      '{"op":1,"d":nul}',
    ]) {
      assert.equal(scanBoth(text), null, JSON.stringify(text));
    }
  });

  it('truncated fixtures give null or the same header JSON.parse would (prefix containing t,s,op)', () => {
    for (const [name, payload] of fixtures) {
      for (const order of [
        ['t', 's', 'op', 'd'],
        ['d', 't', 's', 'op'],
      ]) {
        const text = withOrder(payload as unknown as Record<string, unknown>, order);
        const full = expected(text);
        for (let cut = 0; cut < text.length; cut += Math.max(1, Math.floor(text.length / 97))) {
          const got = scanBoth(text.slice(0, cut));
          if (got !== null) assert.deepEqual(got, full, `${name} cut at ${cut}`);
        }
      }
    }
  });

  it('property: random d and key order -> same header as JSON.parse', () => {
    const header = fc.record(
      {
        op: fc.integer({ min: -5, max: 1_000_000 }),
        s: fc.option(fc.nat(), { nil: null }),
        t: fc.option(fc.oneof(fc.stringMatching(/^[A-Z_]{1,30}$/), fc.string({ unit: 'grapheme' })), { nil: null }),
      },
      { requiredKeys: ['op'] },
    );
    fc.assert(
      fc.property(header, fc.jsonValue(), fc.array(fc.tuple(fc.string(), fc.jsonValue()), { maxLength: 3 }), fc.nat(), fc.boolean(), (h, d, extra, seed, pretty) => {
        const entries: [string, unknown][] = [...Object.entries(h), ['d', d], ...extra.filter(([k]) => !['op', 's', 't', 'd'].includes(k))];
        const seen = new Set<string>();
        const unique = entries.filter(([k]) => !seen.has(k) && seen.add(k));
        // Deterministic shuffle from the seed.
        for (let i = unique.length - 1, x = seed; i > 0; i--, x = Math.floor(x / (i + 1))) {
          const j = x % (i + 1);
          [unique[i], unique[j]] = [unique[j]!, unique[i]!];
        }
        const text = JSON.stringify(Object.fromEntries(unique), null, pretty ? 1 : undefined);
        assert.deepEqual(scanBoth(text), expected(text));
      }),
      { numRuns: 500 },
    );
  });

  it('property: random garbage never throws and what it accepts JSON.parse agrees with', () => {
    const check = (input: string | Uint8Array): void => {
      const h = scanHeader(input);
      if (h === null) return;
      // A header means the prefix up to the fields is well-formed; if the whole text parses, it must agree.
      let parsed: unknown;
      try {
        parsed = JSON.parse(typeof input === 'string' ? input : Buffer.from(input).toString());
      } catch {
        return;
      }
      const p = parsed as { op: number; s?: number | null; t?: string | null };
      assert.deepEqual(h, { op: p.op, s: p.s ?? null, t: p.t ?? null });
    };
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => check(s)),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => check(b)),
      { numRuns: 500 },
    );
    // Garbage that looks like JSON: structural characters and the interesting keys.
    const token = fc.constantFrom('{', '}', '[', ']', '"', '\\', ':', ',', ' ', '"op"', '"s"', '"t"', '"d"', '1', '-', 'null', 'true', '"X"', '0', '.', 'e');
    fc.assert(
      fc.property(fc.array(token, { maxLength: 30 }), (ts) => check(ts.join(''))),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 30 }), (ts) => check('{' + ts.join(''))),
      { numRuns: 2000 },
    );
  });

  it('does not keep a reference to the scanned buffer', () => {
    // Indirect: scanning a new buffer after a big one works and gives its own header.
    scanHeader(Buffer.alloc(1 << 20, 0x20));
    assert.deepEqual(scanHeader(Buffer.from('{"op":7}')), { op: 7, s: null, t: null });
  });
});

describe('parsePayload', () => {
  it('parses every fixture from bytes and from text', () => {
    for (const [name, payload] of fixtures) {
      const text = JSON.stringify(payload);
      const fromText = parsePayload(text);
      const fromBytes = parsePayload(Buffer.from(text));
      const fromU8 = parsePayload(new Uint8Array(Buffer.from(text)));
      const want = { ...payload, s: payload.s ?? null, t: payload.t ?? null };
      for (const got of [fromText, fromBytes, fromU8]) assert.deepEqual(got, want, name);
    }
  });

  it('normalises absent s, t and d to null', () => {
    assert.deepEqual(parsePayload('{"op":11}'), { op: 11, s: null, t: null, d: null });
  });

  it('decodes UTF-8 (multi-byte) correctly', () => {
    const text = '{"t":"MESSAGE_CREATE","s":1,"op":0,"d":{"content":"héllo 😀 ≜ 世界"}}';
    assert.deepEqual((parsePayload(Buffer.from(text)).d as { content: string }).content, 'héllo 😀 ≜ 世界');
  });

  it('bad JSON and non-envelopes are DecodeError with a short message', () => {
    const long = '{"op":0,"d":"' + 'x'.repeat(100_000) + '"';
    for (const input of [
      '',
      '{',
      '{"op":1,}',
      'null',
      '[]',
      '"x"',
      '{"d":1}',
      '{"op":"1"}',
      '{"op":1.5}',
      '{"op":1,"s":"2"}',
      '{"op":1,"t":3}',
      long,
      Buffer.from(long),
      Buffer.from([0xff, 0xfe, 0x00]),
      '\u0001'.repeat(5000),
    ]) {
      let caught: unknown;
      try {
        parsePayload(input);
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof DecodeError, `expected DecodeError for ${String(input).slice(0, 40)}, got ${String(caught)}`);
      assert.equal(caught.code, 'DECODE_ERROR');
      assert.ok(caught.message.length < 260, `message too long (${caught.message.length})`);
    }
  });

  it('truncated input is DecodeError', () => {
    const text = JSON.stringify(DISPATCH_FIXTURES.MESSAGE_CREATE);
    for (let cut = 0; cut < text.length; cut += 37) assert.throws(() => parsePayload(Buffer.from(text.slice(0, cut))), DecodeError);
  });

  it('property: random input only ever throws DecodeError; accepted input agrees with scanHeader', () => {
    const check = (input: string | Uint8Array): void => {
      let p: ReturnType<typeof parsePayload>;
      try {
        p = parsePayload(input);
      } catch (err) {
        assert.ok(err instanceof DecodeError, String(err));
        return;
      }
      assert.deepEqual(scanHeader(input), { op: p.op, s: p.s, t: p.t });
    };
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => check(s)),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => check(b)),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.jsonValue(), (v) => check(JSON.stringify(v) ?? '')),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.integer(), fc.option(fc.nat()), fc.option(fc.string()), fc.jsonValue(), (op, s, t, d) => check(Buffer.from(JSON.stringify({ t, s, op, d })))),
      { numRuns: 300 },
    );
  });
});

it('scanHeader: a very long ASCII t (1 MB) is returned, not a RangeError from the interning path', () => {
  const t = 'X'.repeat(1024 * 1024);
  for (const input of [Buffer.from(`{"t":"${t}","s":1,"op":0,"d":{}}`), Buffer.from(`{"op":0, "t":"${t}", "s":1,"d":{}}`)]) {
    const h = scanHeader(input);
    assert.ok(h !== null);
    assert.equal(h.t, t);
    assert.equal(h.s, 1);
  }
  // Short names still come back interned and equal.
  assert.equal(scanHeader(Buffer.from('{"t":"MESSAGE_CREATE","s":2,"op":0,"d":{}}'))!.t, 'MESSAGE_CREATE');
});
