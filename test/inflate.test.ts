import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createInflater, inflateBackends, type Inflater } from '../src/inflate.js';
import { InflateError } from '../src/errors.js';
import { CONTROL_FIXTURES, DISPATCH_FIXTURES } from '../src/simulator/fixtures-data.js';
import { deflateStream, zstdBinding, zstdStream } from './helpers/streams.js';


/** Serialise like Discord: keys t, s, op, d. */
function discordJson(p: { op: number; s?: number | null; t?: string | null; d: unknown }): Buffer {
  return Buffer.from(JSON.stringify({ t: p.t ?? null, s: p.s ?? null, op: p.op, d: p.d }));
}

/** A GUILD_CREATE-like message of at least `bytes` bytes (well beyond 64 KiB). */
function bigGuildCreate(bytes: number, seq = 2): Buffer {
  const members: unknown[] = [];
  for (let i = 0, size = 0; size < bytes; i++) {
    const m = { user: { id: String(552067714252931000n + BigInt(i) * 7919n), username: `member_${i}`, global_name: `Member ${i} ✨`, avatar: (i * 2654435761).toString(16).padStart(32, 'a') }, roles: [String(i % 97), String(i % 13)], joined_at: '2025-01-01T00:00:00.000000+00:00', deaf: false, mute: i % 7 === 0 };
    members.push(m);
    size += Buffer.byteLength(JSON.stringify(m)) + 1;
  }
  return discordJson({ op: 0, s: seq, t: 'GUILD_CREATE', d: { id: '552067714252931072', member_count: members.length, members } });
}


const ZSTD_SKIP = zstdBinding === null ? 'zstd-napi cannot be loaded here, so no zstd stream can be produced (npm install --save-optional zstd-napi)' : false;


const fixtureMessages: Buffer[] = [
  ...Object.values(CONTROL_FIXTURES).map(discordJson),
  ...Object.values(DISPATCH_FIXTURES).map(discordJson),
];

function expectInflateError(fn: () => unknown, code?: string): InflateError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof InflateError, `expected InflateError, got ${String(caught)}`);
  if (code !== undefined) assert.equal(caught.code, code);
  return caught;
}

/** Let any deferred 'error' events fire (they would crash the test process if unhandled). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const backends = inflateBackends();

describe('inflateBackends', () => {
  it('lists node:zlib-sync first and always has the pure-JS fallbacks', () => {
    assert.equal(backends.zlib[0], 'node:zlib-sync', 'the synchronous node:zlib path passed its capability check');
    assert.ok(backends.zlib.includes('fflate'));
    assert.ok(backends.zstd.includes('fzstd'));
  });

  it('auto picks the first backend; an unavailable forced backend is INFLATE_UNAVAILABLE', () => {
    assert.equal(createInflater('zlib-stream').backend, backends.zlib[0]);
    assert.equal(createInflater('zstd-stream').backend, backends.zstd[0]);
    expectInflateError(() => createInflater('zlib-stream', { backend: 'fzstd' }), 'INFLATE_UNAVAILABLE');
    expectInflateError(() => createInflater('brotli' as 'zlib-stream'), 'INFLATE_UNAVAILABLE');
  });
});

for (const backend of backends.zlib) {
  describe(`zlib-stream via ${backend}`, () => {
    const big = bigGuildCreate(5 * 1024 * 1024);
    const messages = [...fixtureMessages.slice(0, 8), big, ...fixtureMessages.slice(8)];
    let frames: Buffer[] = [];
    before(async () => {
      frames = await deflateStream(messages);
    });
    const make = (max?: number): Inflater => createInflater('zlib-stream', { backend, ...(max === undefined ? {} : { maxMessageSize: max }) });

    it('inflates many messages (incl. a 5 MiB GUILD_CREATE) through one context', () => {
      const inf = make();
      assert.equal(inf.backend, backend);
      const outs = frames.map((f) => inf.push(f));
      outs.forEach((o, i) => assert.ok(o !== null && o.equals(messages[i]!), `message ${i} differs`));
      assert.ok(big.length > 5 * 1024 * 1024);
      JSON.parse(outs[8]!.toString()); // the big one is complete JSON (the peers truncated at 64 KiB)
      assert.deepEqual(inf.stats, {
        bytesIn: frames.reduce((n, f) => n + f.length, 0),
        bytesOut: messages.reduce((n, m) => n + m.length, 0),
        bufferSize: 0,
        messages: messages.length,
      });
      inf.close();
    });

    it('returned buffers are never overwritten by later pushes', () => {
      const inf = make();
      const outs = frames.map((f) => inf.push(f)!);
      outs.forEach((o, i) => assert.ok(o.equals(messages[i]!), `message ${i} was overwritten`));
      inf.close();
    });

    it('collects a message split across 3 websocket messages at random points', () => {
      const target = 6; // a MESSAGE_CREATE-sized frame
      fc.assert(
        fc.property(fc.integer({ min: 0, max: frames[target]!.length }), fc.integer({ min: 0, max: frames[target]!.length }), (x, y) => {
          const [a, b] = x <= y ? [x, y] : [y, x];
          const f = frames[target]!;
          const inf = make();
          for (let i = 0; i < target; i++) assert.ok(inf.push(frames[i]!)!.equals(messages[i]!));
          const outs = [f.subarray(0, a), f.subarray(a, b), f.subarray(b)].map((p) => inf.push(p)).filter((o) => o !== null);
          assert.equal(outs.length, 1, 'exactly one complete message');
          assert.ok(outs[0]!.equals(messages[target]!));
          assert.ok(inf.push(frames[target + 1]!)!.equals(messages[target + 1]!), 'context still in sync afterwards');
          assert.equal(inf.stats.bufferSize, 0);
          inf.close();
        }),
        { numRuns: 150 },
      );
    });

    it('handles 00 00 FF FF split across websocket messages', () => {
      const f = frames[3]!;
      const n = f.length;
      for (const cuts of [[n - 1], [n - 2], [n - 3], [n - 3, n - 1], [n - 4, n - 2, n - 1], [1, n - 2]]) {
        const inf = make();
        for (let i = 0; i < 3; i++) inf.push(frames[i]!);
        const bounds = [0, ...cuts, n];
        const results: (Buffer | null)[] = [];
        for (let k = 0; k + 1 < bounds.length; k++) results.push(inf.push(f.subarray(bounds[k], bounds[k + 1])));
        assert.ok(results.slice(0, -1).every((r) => r === null), `early output for cuts ${cuts.join(',')}`);
        assert.ok(results.at(-1)!.equals(messages[3]!), `cuts ${cuts.join(',')}`);
        assert.ok(inf.push(frames[4]!)!.equals(messages[4]!));
        inf.close();
      }
    });

    it('splits the 5 MiB message into many chunks and tracks bufferSize', () => {
      const inf = make();
      for (let i = 0; i < 8; i++) inf.push(frames[i]!);
      const f = frames[8]!;
      const step = 16 * 1024;
      let out: Buffer | null = null;
      for (let off = 0; off < f.length; off += step) {
        out = inf.push(f.subarray(off, off + step));
        if (off + step < f.length) {
          assert.equal(out, null);
          assert.equal(inf.stats.bufferSize, Math.min(off + step, f.length));
        }
      }
      assert.ok(out !== null && out.equals(big));
      assert.equal(inf.stats.bufferSize, 0, 'nothing retained after the message');
      assert.ok(inf.push(frames[9]!)!.equals(messages[9]!));
      inf.close();
    });

    it('corrupt data is INFLATE_CORRUPT, the inflater stays failed, nothing is unhandled', async () => {
      const inf = make();
      assert.ok(inf.push(frames[0]!)!.equals(messages[0]!));
      // After a sync flush the next block starts on a byte boundary: 0x06 = block type 3 (reserved).
      const err = expectInflateError(() => inf.push(Buffer.from([0x06, 0x00, 0x00, 0xff, 0xff])), 'INFLATE_CORRUPT');
      assert.match(err.message, /corrupt/);
      const again = expectInflateError(() => inf.push(frames[1]!), 'INFLATE_CORRUPT');
      assert.match(again.message, /unusable/);
      await settle();
      inf.close();
    });

    it('overwritten bytes never raise anything but InflateError', async () => {
      const inf = make(64 * 1024);
      inf.push(frames[0]!);
      const bad = Buffer.from(frames[1]!);
      bad.fill(0xaa, 0, Math.max(1, bad.length - 4));
      try {
        const out = inf.push(bad);
        // A pure-JS inflater without checksums may not notice; the bytes are then simply not the message.
        assert.ok(out === null || !out.equals(messages[1]!));
      } catch (err) {
        assert.ok(err instanceof InflateError, String(err));
      }
      await settle();
    });

    it('a bad header on the first message is INFLATE_CORRUPT', async () => {
      const inf = make();
      expectInflateError(() => inf.push(Buffer.from('not zlib at all\x00\x00\xff\xff', 'latin1')), 'INFLATE_CORRUPT');
      await settle();
    });

    it('a fresh inflater fails cleanly on the 2nd message of a stream (no shared context)', async () => {
      const inf = make();
      expectInflateError(() => inf.push(frames[1]!), 'INFLATE_CORRUPT');
      await settle();
      const other = make();
      assert.ok(other.push(frames[0]!)!.equals(messages[0]!), 'an unrelated inflater is unaffected');
    });

    it('output larger than maxMessageSize is INFLATE_TOO_LARGE', async () => {
      const inf = make(1024 * 1024);
      for (let i = 0; i < 8; i++) assert.ok(inf.push(frames[i]!)!.equals(messages[i]!));
      expectInflateError(() => inf.push(frames[8]!), 'INFLATE_TOO_LARGE');
      expectInflateError(() => inf.push(frames[9]!)); // failed for good
      await settle();
    });

    it('buffered compressed input larger than maxMessageSize is INFLATE_TOO_LARGE', () => {
      const inf = make(4096);
      const junk = Buffer.alloc(1500, 1);
      assert.equal(inf.push(junk), null);
      assert.equal(inf.push(junk), null);
      assert.equal(inf.stats.bufferSize, 3000);
      expectInflateError(() => inf.push(junk), 'INFLATE_TOO_LARGE');
      assert.equal(inf.stats.bufferSize, 0, 'pending input dropped');
    });

    it('push after close throws; close is idempotent', () => {
      const inf = make();
      inf.push(frames[0]!);
      inf.close();
      inf.close();
      expectInflateError(() => inf.push(frames[1]!));
    });

    it('random garbage only ever raises InflateError', async () => {
      fc.assert(
        fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 6 }), fc.boolean(), fc.boolean(), (chunks, header, marker) => {
          const inf = make(64 * 1024);
          const seq: Buffer[] = chunks.map((c) => Buffer.from(c));
          if (header) seq.unshift(frames[0]!);
          if (marker) seq.push(Buffer.from([0x00, 0x00, 0xff, 0xff]));
          try {
            for (const c of seq) {
              const out = inf.push(c);
              assert.ok(out === null || Buffer.isBuffer(out));
            }
          } catch (err) {
            if (!(err instanceof InflateError)) throw err;
          } finally {
            inf.close();
          }
        }),
        { numRuns: 300 },
      );
      await settle();
    });
  });
}

describe('zlib-stream backends agree', () => {
  it('every backend yields identical bytes, incl. outputs at multiples of the internal chunk size', async () => {
    // Highly repetitive text ends in long back-references; sizes around 16/32/64 KiB multiples exercise
    // "output buffer exactly full but more output pending" in every backend.
    const messages: Buffer[] = [];
    for (const k of [16384, 32768, 65536, 131072]) {
      for (const delta of [-300, -258, -1, 0, 1, 3, 257]) {
        const n = k + delta;
        const body = 'abcabcabc'.repeat(Math.ceil(n / 9)).slice(0, n - 30);
        messages.push(Buffer.from(`{"t":"X","s":1,"op":0,"d":"${body}"}`.padEnd(n, ' ')));
      }
    }
    messages.push(...fixtureMessages);
    const frames = await deflateStream(messages);
    const results = backends.zlib.map((backend) => {
      const inf = createInflater('zlib-stream', { backend });
      return frames.map((f) => inf.push(f)!);
    });
    for (const [b, outs] of results.entries()) {
      outs.forEach((o, i) => assert.ok(o.equals(messages[i]!), `${backends.zlib[b]} message ${i} (${messages[i]!.length} bytes) differs`));
    }
  });
});

for (const backend of backends.zstd) {
  describe(`zstd-stream via ${backend}`, { skip: ZSTD_SKIP }, () => {
    const big = bigGuildCreate(5 * 1024 * 1024);
    const messages = [...fixtureMessages.slice(0, 8), big, ...fixtureMessages.slice(8)];
    let frames: Buffer[] = [];
    before(() => {
      frames = zstdStream(messages);
    });
    const make = (max?: number): Inflater => createInflater('zstd-stream', { backend, ...(max === undefined ? {} : { maxMessageSize: max }) });

    it('decompresses each flushed message without the frame ever ending', () => {
      assert.deepEqual([...frames[0]!.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd], 'first message starts the frame');
      const inf = make();
      assert.equal(inf.backend, backend);
      const outs = frames.map((f) => inf.push(f));
      outs.forEach((o, i) => assert.ok(o !== null && o.equals(messages[i]!), `message ${i} differs`));
      assert.equal(inf.stats.messages, messages.length);
      assert.equal(inf.stats.bufferSize, 0);
      inf.close();
    });

    it('returned buffers are never overwritten by later pushes', () => {
      const inf = make();
      const outs = frames.map((f) => inf.push(f)!);
      outs.forEach((o, i) => assert.ok(o.equals(messages[i]!), `message ${i} was overwritten`));
    });

    it('corrupt data is INFLATE_CORRUPT and the inflater stays failed', () => {
      const inf = make();
      inf.push(frames[0]!);
      // Every flushed message starts a new block: 06 00 00 is a block header of reserved type 3.
      expectInflateError(() => inf.push(Buffer.from([0x06, 0x00, 0x00, 0x01, 0x02, 0x03])), 'INFLATE_CORRUPT');
      expectInflateError(() => inf.push(frames[1]!), 'INFLATE_CORRUPT');
    });

    it('overwritten bytes never raise anything but InflateError', () => {
      const inf = make(1024 * 1024);
      inf.push(frames[0]!);
      try {
        const out = inf.push(Buffer.alloc(frames[1]!.length, 0x5a));
        // fzstd does not validate everything (no checksum while the frame is open); then it is just not the message.
        assert.ok(out === null || !out.equals(messages[1]!));
      } catch (err) {
        assert.ok(err instanceof InflateError, String(err));
      }
    });

    it('a fresh inflater fails cleanly on the 2nd message of a stream', () => {
      const inf = make();
      expectInflateError(() => inf.push(frames[1]!), 'INFLATE_CORRUPT');
    });

    it('output larger than maxMessageSize is INFLATE_TOO_LARGE', () => {
      const inf = make(1024 * 1024);
      for (let i = 0; i < 8; i++) inf.push(frames[i]!);
      expectInflateError(() => inf.push(frames[8]!), 'INFLATE_TOO_LARGE');
      expectInflateError(() => inf.push(frames[9]!));
    });

    it('random garbage only ever raises InflateError', () => {
      fc.assert(
        fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 5 }), fc.boolean(), (chunks, header) => {
          const inf = make(64 * 1024);
          const seq: Buffer[] = chunks.map((c) => Buffer.from(c));
          if (header) seq.unshift(frames[0]!);
          try {
            for (const c of seq) inf.push(c);
          } catch (err) {
            if (!(err instanceof InflateError)) throw err;
          } finally {
            inf.close();
          }
        }),
        { numRuns: 300 },
      );
    });
  });
}

describe('zstd-stream backends agree', { skip: ZSTD_SKIP }, () => {
  it('every backend yields identical bytes', () => {
    const messages = [...fixtureMessages, bigGuildCreate(300 * 1024), ...fixtureMessages];
    const frames = zstdStream(messages);
    for (const backend of backends.zstd) {
      const inf = createInflater('zstd-stream', { backend });
      frames.forEach((f, i) => assert.ok(inf.push(f)!.equals(messages[i]!), `${backend} message ${i}`));
    }
  });
});

describe('output buffers: shared slab (owned) and transient scratch', () => {
  // Messages of all sizes: tiny control frames, payload-sized fixtures, and ones around and beyond the 32 KiB slab
  // and 64 KiB scratch (the overflow paths).
  const sized = [bigGuildCreate(20 * 1024, 3), bigGuildCreate(33 * 1024, 4), bigGuildCreate(70 * 1024, 5), bigGuildCreate(200 * 1024, 6)];
  const messages = [...fixtureMessages, ...sized, ...fixtureMessages, sized[2]!, ...fixtureMessages];

  const kinds: Array<{ kind: 'zlib-stream' | 'zstd-stream'; backend: string; skip: string | boolean }> = [
    ...backends.zlib.map((backend) => ({ kind: 'zlib-stream' as const, backend, skip: false as const })),
    ...backends.zstd.map((backend) => ({ kind: 'zstd-stream' as const, backend, skip: ZSTD_SKIP })),
  ];

  for (const { kind, backend, skip } of kinds) {
    describe(`${kind} via ${backend}`, { skip }, () => {
      const frames = async (): Promise<Buffer[]> => (kind === 'zlib-stream' ? deflateStream(messages) : zstdStream(messages));

      it('owned results of many interleaved inflaters are never overwritten, by owned or transient pushes', async () => {
        const streams = await Promise.all([frames(), frames(), frames()]);
        const owned = [0, 1].map(() => createInflater(kind, { backend }));
        const transient = createInflater(kind, { backend });
        const kept: Array<[Buffer, Buffer]> = [];
        for (let i = 0; i < messages.length; i++) {
          for (const [k, inf] of owned.entries()) kept.push([inf.push(streams[k]![i]!)!, messages[i]!]);
          const t = transient.push(streams[2]![i]!, true)!;
          assert.ok(t.equals(messages[i]!), `transient message ${i} differs`);
        }
        kept.forEach(([got, want], i) => assert.ok(got.equals(want), `owned result ${i} was overwritten`));
        for (const inf of [...owned, transient]) inf.close();
      });

      it('transient results are correct even when a message is split across websocket messages', async () => {
        const [f] = await Promise.all([frames()]);
        const inf = createInflater(kind, { backend });
        for (let i = 0; i < messages.length; i++) {
          let out: Buffer | null = null;
          if (kind === 'zlib-stream' && f![i]!.length > 8) {
            const cut = f![i]!.length >> 1;
            assert.equal(inf.push(f![i]!.subarray(0, cut), true), null);
            out = inf.push(f![i]!.subarray(cut), true);
          } else out = inf.push(f![i]!, true);
          assert.ok(out !== null && out.equals(messages[i]!), `message ${i} differs`);
        }
        assert.equal(inf.stats.messages, messages.length);
        inf.close();
      });

      it('transient mode keeps the error contract: corrupt data throws InflateError synchronously, then stays failed', async () => {
        const f = await frames();
        const inf = createInflater(kind, { backend });
        assert.ok(inf.push(f[0]!, true)!.equals(messages[0]!));
        // zlib: after a sync flush the next block starts on a byte boundary, 0x06 = block type 3 (reserved).
        const bad = kind === 'zlib-stream' ? Buffer.from([0x06, 0x00, 0x00, 0xff, 0xff]) : Buffer.from(f[1]!).fill(0xa5, 0, Math.min(f[1]!.length, 12));
        let threw = false;
        try {
          inf.push(bad, true);
        } catch (err) {
          threw = true;
          assert.ok(err instanceof InflateError, String(err));
        }
        // zstd without a checksum may take the garbage for data; zlib never does.
        if (kind === 'zlib-stream') assert.ok(threw, 'corrupt zlib data threw');
        if (threw) expectInflateError(() => inf.push(f[2]!, true));
        await settle();
        inf.close();
      });
    });
  }

  it('node:zlib-sync: small owned results of different inflaters share one slab; no listener churn per push', async () => {
    if (backends.zlib[0] !== 'node:zlib-sync') return;
    const [fa, fb] = await Promise.all([deflateStream(fixtureMessages), deflateStream(fixtureMessages)]);
    const a = createInflater('zlib-stream');
    const b = createInflater('zlib-stream');
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const oa = a.push(fa[0]!)!;
      const ob = b.push(fb[0]!)!;
      assert.equal(oa.buffer, ob.buffer, 'one process-wide slab');
      assert.ok(ob.byteOffset >= oa.byteOffset + oa.length, 'the second result starts after the first');
      // Thousands of pushes through one context: no MaxListenersExceededWarning (no listener added per call).
      for (let round = 0; round < 200; round++) {
        const frames = await deflateStream(fixtureMessages.slice(0, 3));
        const c = createInflater('zlib-stream');
        for (const f of frames) c.push(f, round % 2 === 0);
        c.close();
      }
      const many = createInflater('zlib-stream');
      const stream = await deflateStream(Array.from({ length: 2000 }, (_, i) => discordJson({ op: 0, s: i + 1, t: 'TYPING_START', d: { i } })));
      for (const f of stream) many.push(f, true);
      many.close();
      await settle();
      assert.deepEqual(warnings, []);
    } finally {
      process.off('warning', onWarning);
      a.close();
      b.close();
    }
  });
});
