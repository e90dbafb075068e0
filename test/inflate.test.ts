import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { createInflater, inflateBackends, INFLATE_FALLBACK_ENV, probeZlibInternals, probeZlibZstd, zstdBackendOrder, type Inflater, type ZlibLike, type ZstdZlibLike } from '../src/inflate.js';
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
    const m = {
      user: { id: String(552067714252931000n + BigInt(i) * 7919n), username: `member_${i}`, global_name: `Member ${i} ✨`, avatar: (i * 2654435761).toString(16).padStart(32, 'a') },
      roles: [String(i % 97), String(i % 13)],
      joined_at: '2025-01-01T00:00:00.000000+00:00',
      deaf: false,
      mute: i % 7 === 0,
    };
    members.push(m);
    size += Buffer.byteLength(JSON.stringify(m)) + 1;
  }
  return discordJson({ op: 0, s: seq, t: 'GUILD_CREATE', d: { id: '552067714252931072', member_count: members.length, members } });
}

const ZSTD_SKIP = zstdBinding === null ? 'zstd-napi cannot be loaded here, so no zstd stream can be produced (npm install --save-optional zstd-napi)' : false;

const fixtureMessages: Buffer[] = [...Object.values(CONTROL_FIXTURES).map(discordJson), ...Object.values(DISPATCH_FIXTURES).map(discordJson)];

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

/** CI runs this file twice: as is, and with SHARDLINE_INFLATE_FALLBACK=1 (the node:zlib internals turned off). */
const FALLBACK_FORCED = ((v) => v !== undefined && v !== '' && v !== '0')(process.env[INFLATE_FALLBACK_ENV]);

describe('inflateBackends', () => {
  it('always has the public node:zlib path and the pure-JS fallbacks', () => {
    assert.ok(backends.zlib.includes('node:zlib-public'), 'documented node:zlib calls only: must work on every Node');
    assert.ok(backends.zlib.includes('fflate'));
    assert.ok(backends.zstd.includes('fzstd'));
    assert.equal(backends.zlib[0], probeZlibInternals().ok ? 'node:zlib-sync' : backends.zlib.includes('zlib-sync') ? 'zlib-sync' : 'node:zlib-public');
  });

  it('auto picks the first backend; an unavailable forced backend is INFLATE_UNAVAILABLE', () => {
    assert.equal(createInflater('zlib-stream').backend, backends.zlib[0]);
    assert.equal(createInflater('zstd-stream').backend, backends.zstd[0]);
    expectInflateError(() => createInflater('zlib-stream', { backend: 'fzstd' }), 'INFLATE_UNAVAILABLE');
    expectInflateError(() => createInflater('brotli' as 'zlib-stream'), 'INFLATE_UNAVAILABLE');
  });
});

describe("zstd-stream backend selection: node:zlib's own zstd where Node has it (22.15+), else zstd-napi, else fzstd", () => {
  const yes = { ok: true } as const;
  const no = { ok: false, reason: 'Node 20' } as const;

  it('picks by capability (injected)', () => {
    assert.deepEqual(zstdBackendOrder({ nodeZstd: yes, zstdNapi: true }), ['node:zlib-zstd', 'zstd-napi', 'fzstd']);
    assert.deepEqual(zstdBackendOrder({ nodeZstd: yes, zstdNapi: false }), ['node:zlib-zstd', 'fzstd']);
    assert.deepEqual(zstdBackendOrder({ nodeZstd: no, zstdNapi: true }), ['zstd-napi', 'fzstd']);
    assert.deepEqual(zstdBackendOrder({ nodeZstd: no, zstdNapi: false }), ['fzstd']);
  });

  it("this process: node:zlib-zstd exactly when the probe passes, and 'auto' uses the first", () => {
    const probe = probeZlibZstd();
    const hasZstd = typeof (zlib as unknown as ZstdZlibLike).ZstdDecompress === 'function';
    if (!FALLBACK_FORCED) assert.equal(probe.ok, hasZstd, `probe ${JSON.stringify(probe)} on Node ${process.versions.node}`);
    assert.deepEqual(backends.zstd, zstdBackendOrder());
    assert.equal(backends.zstd[0] === 'node:zlib-zstd', probe.ok);
    assert.equal(createInflater('zstd-stream').backend, backends.zstd[0]);
  });

  it('the probe refuses a zlib without zstd or with changed internals, saying why', () => {
    const cases: Array<[string, ZstdZlibLike, RegExp]> = [
      ['Node 20: no ZstdDecompress', { constants: {} }, /ZstdDecompress is not a constructor/],
      ['no ZSTD_e_continue', { ZstdDecompress: zlib.Inflate, constants: {} }, /ZSTD_e_continue/],
      ['no _processChunk', { ZstdDecompress: class extends zlib.Inflate {}, constants: { ZSTD_e_continue: 0 } } as unknown as ZstdZlibLike, /./],
    ];
    // the third: an Inflate is no zstd decoder, so at the latest the self-test refuses it
    for (const [what, z, why] of cases) {
      const probe = probeZlibZstd(z);
      assert.equal(probe.ok, false, `${what}: the probe must refuse`);
      assert.match(probe.ok ? '' : probe.reason, why, what);
    }
  });
});

type InflateWithInternals = zlib.Inflate & { _processChunk(chunk: Buffer, flush: number): Buffer; _handle: { close(): void } | null };
const InternalInflate = zlib.Inflate as unknown as new (opts?: zlib.ZlibOptions) => InflateWithInternals;

describe('node:zlib internals capability check (probeZlibInternals)', () => {
  it(`the fast path is chosen on this Node, unless ${INFLATE_FALLBACK_ENV}=1 forces the fallback`, () => {
    const probe = probeZlibInternals();
    const auto = createInflater('zlib-stream');
    auto.close();
    if (FALLBACK_FORCED) {
      assert.equal(probe.ok, false);
      assert.match(probe.ok ? '' : probe.reason, new RegExp(INFLATE_FALLBACK_ENV));
      assert.ok(!backends.zlib.includes('node:zlib-sync'), 'forced fallback: the internal path is not offered');
      // zlib-sync (optional addon) when it is installed, else the public node:zlib path.
      assert.equal(auto.backend, backends.zlib.includes('zlib-sync') ? 'zlib-sync' : 'node:zlib-public');
      const err = expectInflateError(() => createInflater('zlib-stream', { backend: 'node:zlib-sync' }), 'INFLATE_UNAVAILABLE');
      assert.match(err.message, new RegExp(INFLATE_FALLBACK_ENV));
    } else {
      assert.ok(
        probe.ok,
        `The node:zlib internals capability probe FAILED on Node ${process.version}: ${probe.ok ? '' : probe.reason}. ` +
          'Every zlib-stream connection silently lost the fast inflate path (it now uses a slower fallback). ' +
          "Check probeZlibInternals() in src/inflate-zlib.ts against this Node release's lib/zlib.js (_processChunk, _handle, _outBuffer, ...).",
      );
      assert.equal(backends.zlib[0], 'node:zlib-sync');
      assert.equal(auto.backend, 'node:zlib-sync', 'auto picks the fast path');
    }
  });

  it('probing a zlib handed in explicitly ignores the environment: the real node:zlib passes', () => {
    assert.deepEqual(probeZlibInternals(zlib), { ok: true });
  });

  it('a Node release without a private member (or with changed behaviour) is detected: the fast path is refused, with the reason', async () => {
    // _processChunk removed.
    class NoProcessChunk extends zlib.Inflate {}
    Object.defineProperty(NoProcessChunk.prototype, '_processChunk', { value: undefined });
    // _handle moved out of reach (e.g. into a #private field).
    class HiddenHandle extends InternalInflate {
      constructor(opts?: zlib.ZlibOptions) {
        super(opts);
        this._handle!.close();
        delete (this as { _handle?: unknown })._handle;
      }
    }
    // Every member there with the right type, but the synchronous call no longer keeps the stream context.
    class ForgetfulProcessChunk extends InternalInflate {
      override _processChunk(chunk: Buffer, flush: number): Buffer {
        this.reset();
        return super._processChunk(chunk, flush);
      }
    }
    // The synchronous call now registers its throw-away 'error' listener with addListener (not the `on` we shadow).
    class LeakyListeners extends InternalInflate {
      override _processChunk(chunk: Buffer, flush: number): Buffer {
        this.addListener('error', () => {});
        return super._processChunk(chunk, flush);
      }
    }
    const cases: Array<[string, ZlibLike, RegExp]> = [
      ['no _processChunk', { Inflate: NoProcessChunk, constants: zlib.constants }, /_processChunk is not a function/],
      ['no _handle', { Inflate: HiddenHandle, constants: zlib.constants }, /_handle/],
      ['context lost between calls', { Inflate: ForgetfulProcessChunk, constants: zlib.constants }, /sample message 2/],
      ['an error listener added per call', { Inflate: LeakyListeners, constants: zlib.constants }, /'error' listeners/],
      ['no constants', { Inflate: zlib.Inflate } as unknown as ZlibLike, /Z_SYNC_FLUSH/],
    ];
    for (const [what, z, why] of cases) {
      const probe = probeZlibInternals(z);
      assert.equal(probe.ok, false, `${what}: the probe must refuse`);
      assert.match(probe.ok ? '' : probe.reason, why, what);
    }
    await settle(); // no deferred 'error' event of the failed probes may go unhandled
  });

  it('a Node without zlib.Inflate#_processChunk (and without the zlib-sync addon): the public fallback is chosen and inflates a gateway stream exactly', async () => {
    // A separate process, since the real probe runs once per process: there the private member is deleted from
    // node:zlib before shardline is imported, and the optional addon made unloadable. Nothing of ours is mocked.
    const messages = [...fixtureMessages, bigGuildCreate(200 * 1024, 90), ...fixtureMessages];
    const frames = await deflateStream(messages);
    // The websocket messages: the big message arrives in three pieces.
    const big = fixtureMessages.length;
    const f = frames[big]!;
    const chunks = [...frames.slice(0, big), f.subarray(0, 1000), f.subarray(1000, f.length - 2), f.subarray(f.length - 2), ...frames.slice(big + 1)];
    const dir = await mkdtemp(join(tmpdir(), 'shardline-inflate-'));
    try {
      const input = join(dir, 'chunks.json');
      await writeFile(input, JSON.stringify(chunks.map((c) => c.toString('base64'))));
      const src = new URL('../src/inflate.ts', import.meta.url).href;
      const child = `
        import zlib from 'node:zlib';
        import Module from 'node:module';
        import { readFileSync } from 'node:fs';
        for (let p = zlib.Inflate.prototype; p !== null; p = Object.getPrototypeOf(p)) delete p._processChunk;
        const load = Module._load;
        Module._load = function (id, ...rest) {
          if (id === 'zlib-sync') throw Object.assign(new Error("Cannot find module 'zlib-sync'"), { code: 'MODULE_NOT_FOUND' });
          return load.call(this, id, ...rest);
        };
        const { createInflater, inflateBackends, probeZlibInternals } = await import(${JSON.stringify(src)});
        const inf = createInflater('zlib-stream');
        const outs = [];
        for (const b64 of JSON.parse(readFileSync(${JSON.stringify(input)}, 'utf8'))) {
          const out = inf.push(Buffer.from(b64, 'base64'));
          if (out !== null) outs.push(out.toString('base64'));
        }
        process.stdout.write(JSON.stringify({ probe: probeZlibInternals(), backends: inflateBackends().zlib, backend: inf.backend, stats: inf.stats, outs }));
      `;
      const env = { ...process.env };
      delete env[INFLATE_FALLBACK_ENV];
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        env,
        maxBuffer: 64 * 1024 * 1024,
      });
      const r = JSON.parse(stdout) as { probe: { ok: boolean; reason?: string }; backends: string[]; backend: string; stats: { messages: number; bufferSize: number }; outs: string[] };
      assert.equal(r.probe.ok, false);
      assert.match(r.probe.reason!, /_processChunk/);
      assert.deepEqual(r.backends, ['node:zlib-public', 'fflate']);
      assert.equal(r.backend, 'node:zlib-public');
      assert.equal(r.outs.length, messages.length);
      r.outs.forEach((o, i) => assert.ok(Buffer.from(o, 'base64').equals(messages[i]!), `message ${i} differs`));
      assert.equal(r.stats.messages, messages.length);
      assert.equal(r.stats.bufferSize, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
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
        assert.ok(
          results.slice(0, -1).every((r) => r === null),
          `early output for cuts ${cuts.join(',')}`,
        );
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

  it('every backend follows back-references 16-32 KiB into earlier messages, across many window slides', async () => {
    // Incompressible hex with copies of stream content from 20-32 KiB earlier: deflate encodes those as matches at
    // nearly the full window distance, often reaching into earlier messages (the public backend's dictionary).
    let x = 0x2545f491;
    const rnd = (): number => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 2 ** 32;
    };
    const hex = (n: number): string => Array.from({ length: n }, () => '0123456789abcdef'[Math.floor(rnd() * 16)]).join('');
    let text = '';
    const messages: Buffer[] = [];
    for (let i = 0; i < 90; i++) {
      const back = 20_000 + Math.floor(rnd() * 12_000);
      const start = Math.max(0, text.length - back);
      const copy = text.slice(start, start + 200 + Math.floor(rnd() * 800));
      const msg = `{"t":"X","s":${i + 1},"op":0,"d":"${copy}${hex(i % 15 === 7 ? 40_000 : 300 + Math.floor(rnd() * 6000))}"}`;
      text += msg;
      messages.push(Buffer.from(msg));
    }
    const frames = await deflateStream(messages);
    // The stream really needs more than 16 KiB of history: some message fails to inflate with only that much.
    const SYNC = zlib.constants.Z_SYNC_FLUSH;
    let history = messages[0]!;
    let needsFar = 0;
    for (let i = 1; i < messages.length; i++) {
      try {
        if (!zlib.inflateRawSync(frames[i]!, { dictionary: history.subarray(-16 * 1024), finishFlush: SYNC }).equals(messages[i]!)) needsFar++;
      } catch {
        needsFar++;
      }
      history = Buffer.concat([history, messages[i]!]).subarray(-64 * 1024);
    }
    assert.ok(needsFar > 10, `only ${needsFar} messages reach beyond 16 KiB`);
    for (const backend of backends.zlib) {
      const inf = createInflater('zlib-stream', { backend });
      frames.forEach((f, i) => assert.ok(inf.push(f, i % 2 === 0)!.equals(messages[i]!), `${backend} message ${i}`));
      inf.close();
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

  const NO_FAST_PATH = backends.zlib[0] === 'node:zlib-sync' ? false : 'node:zlib-sync is not in use here (see the capability check test)';
  it('node:zlib-sync: small owned results of different inflaters share one slab; no listener churn per push', { skip: NO_FAST_PATH }, async () => {
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
