/**
 * Property-based and fuzz tests of everything that reads bytes from the network: the header scan and full parse
 * (mutated and huge frames), the inflaters (random split points over whole streams, truncation, interleaved
 * streams sharing the process-wide output buffers, the size bound, a zip bomb), and a real Shard fed garbage
 * over a socket by the simulator. Complements the properties in decode.test.ts and inflate.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parsePayload, scanHeader } from '../src/decode.js';
import { DecodeError, InflateError } from '../src/errors.js';
import { createInflater, inflateBackends, type Inflater } from '../src/inflate.js';
import type { TransportCompression } from '../src/inflate.js';
import { DeliveryLedger } from '../src/simulator/chaos.js';
import { CONTROL_FIXTURES, DISPATCH_FIXTURES } from '../src/simulator/fixtures-data.js';
import { zstdAvailable } from '../src/simulator/index.js';
import { delay, harness, until, waitState, type Harness, failOnUnhandledRejections } from './helpers/setup.js';
import { deflateStream, zstdBinding, zstdStream } from './helpers/streams.js';

failOnUnhandledRejections();

/** Fixed seed so a failure is reproducible; fast-check prints the seed and path of any counterexample. */
const FC = { seed: 8_2025, verbose: 1 } as const;

const discordJson = (p: { op: number; s?: number | null; t?: string | null; d: unknown }): Buffer => Buffer.from(JSON.stringify({ t: p.t ?? null, s: p.s ?? null, op: p.op, d: p.d }));
const fixtureFrames: Buffer[] = [...Object.values(CONTROL_FIXTURES).map(discordJson), ...Object.values(DISPATCH_FIXTURES).map(discordJson)];

// ------------------------------------------------------------------------------------------------ decoder

/** `agree`: when both scanHeader and parsePayload accept, they report the same header (not so for duplicate keys:
 *  the scan keeps the first complete set, JSON.parse the last — documented on scanHeader). */
function decodeNeverCrashes(input: Buffer, agree = true): void {
  let header: ReturnType<typeof scanHeader>;
  try {
    header = scanHeader(input);
  } catch (err) {
    assert.fail(`scanHeader threw ${String(err)} for ${input.toString('latin1').slice(0, 120)}`);
  }
  const text = input.toString('latin1');
  const fromText = scanHeader(text);
  let parsed: ReturnType<typeof parsePayload> | null = null;
  try {
    parsed = parsePayload(input);
  } catch (err) {
    assert.ok(err instanceof DecodeError, `parsePayload threw ${String(err)}`);
    assert.ok(err.message.length < 260, 'error messages stay short');
  }
  if (agree && parsed !== null && header !== null) assert.deepEqual(header, { op: parsed.op, s: parsed.s, t: parsed.t }, text.slice(0, 200));
  if (fromText !== null && header === null) assert.ok(/[\x80-\xff]/.test(text), 'string and byte scans agree on ASCII input');
}

describe('decoder fuzz', () => {
  it('property: real frames with random byte mutations: scanHeader never throws, parsePayload only DecodeError, agreement when both accept', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), byte: fc.constantFrom(0x22, 0x5c, 0x2c, 0x3a, 0x7b, 0x7d, 0x5b, 0x5d, 0x20, 0x30, 0x31, 0x2d, 0x65, 0xff) }),
      fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), byte: fc.constant(0) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: fixtureFrames.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), (i, muts) => {
        const bytes = [...fixtureFrames[i]!];
        for (const m of muts) {
          const at = m.at % (bytes.length + 1);
          if (m.kind === 'flip' && at < bytes.length) bytes[at] = m.byte;
          else if (m.kind === 'insert') bytes.splice(at, 0, m.byte);
          else if (m.kind === 'delete' && at < bytes.length) bytes.splice(at, 1);
        }
        decodeNeverCrashes(Buffer.from(bytes));
      }),
      { ...FC, numRuns: 3000 },
    );
  });

  it('property: a frame cut at any point and glued to another frame never crashes the decoder', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: fixtureFrames.length - 1 }), fc.integer({ min: 0, max: fixtureFrames.length - 1 }), fc.nat(), fc.nat(), (a, b, x, y) => {
        const fa = fixtureFrames[a]!;
        const fb = fixtureFrames[b]!;
        decodeNeverCrashes(Buffer.concat([fa.subarray(0, x % (fa.length + 1)), fb.subarray(y % (fb.length + 1))]), false);
      }),
      { ...FC, numRuns: 1500 },
    );
  });

  it('huge and pathological frames: deep nesting, long strings, many keys, long whitespace', () => {
    const deep = '['.repeat(1_000_000) + ']'.repeat(1_000_000);
    const cases: [string, { op: number; s: number | null; t: string | null } | null][] = [
      [`{"t":"X","s":1,"op":0,"d":${deep}}`, { op: 0, s: 1, t: 'X' }],
      [`{"d":${deep},"t":"X","s":1,"op":0}`, { op: 0, s: 1, t: 'X' }],
      [`{"d":${'['.repeat(1_000_000)},"op":0}`, null],
      [`{"d":"${'x'.repeat(20_000_000)}","op":1}`, { op: 1, s: null, t: null }],
      [`{"d":"${'\\"'.repeat(2_000_000)}","op":1}`, { op: 1, s: null, t: null }],
      [`{"d":"${'x'.repeat(8_000_000)}`, null],
      [`{${Array.from({ length: 100_000 }, (_, i) => `"k${i}":${i}`).join(',')},"op":11}`, { op: 11, s: null, t: null }],
      [`${' '.repeat(16_000_000)}{"op":7}`, { op: 7, s: null, t: null }],
      [`{"t":"${'A'.repeat(1_000)}","s":1,"op":0,"d":null}`, { op: 0, s: 1, t: 'A'.repeat(1_000) }],
      [`{"t":"${'É'.repeat(1_000_000)}","s":1,"op":0,"d":null}`, { op: 0, s: 1, t: 'É'.repeat(1_000_000) }],
      [`{"t":"X","s":${'9'.repeat(30)},"op":0}`, { op: 0, s: Number('9'.repeat(30)), t: 'X' }],
      [`{"t":"X","s":${'9'.repeat(400)},"op":0}`, null], // Infinity is not an integer
      [`{"t":"X","s":1e400,"op":0}`, null],
    ];
    for (const [text, want] of cases) {
      const label = `${text.slice(0, 40)}… (${text.length} chars)`;
      assert.deepEqual(scanHeader(text), want, label);
      assert.deepEqual(scanHeader(Buffer.from(text)), want, label);
      try {
        const p = parsePayload(Buffer.from(text));
        if (want) assert.equal(p.op, want.op, label);
      } catch (err) {
        assert.ok(err instanceof DecodeError, `${label}: ${String(err)}`);
        assert.ok(err.message.length < 260, `${label}: message of ${err.message.length} chars`);
      }
    }
  });
});

describe('decoder fuzz: regressions', () => {
  const longT = (n: number) => `{"t":"${'A'.repeat(n)}","s":null,"op":0,"d":{}}`;
  it('scanHeader on bytes with a very long ASCII t returns a header instead of throwing RangeError', () => {
    assert.deepEqual(scanHeader(Buffer.from(longT(1_000_000))), { op: 0, s: null, t: 'A'.repeat(1_000_000) });
    assert.deepEqual(scanHeader(Buffer.from(`{"d":{},"op":0,"t":"${'A'.repeat(1_000_000)}"}`)), { op: 0, s: null, t: 'A'.repeat(1_000_000) });
  });

  it('a Shard sent a frame with a 1 MB event name does not throw out of the socket handler (process crash)', async () => {
    const h = await harness({ guilds: 1 });
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => uncaught.push(e);
    const listeners = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    process.on('uncaughtException', onUncaught);
    try {
      const shard = h.shard({ compression: 'zlib-stream' });
      shard.on('error', () => {});
      await shard.connect();
      h.sim.sendRaw(0, longT(1_000_000));
      await delay(300);
      await waitState(shard, 'ready');
      assert.deepEqual(uncaught.map(String), []);
    } finally {
      process.off('uncaughtException', onUncaught);
      for (const l of listeners) process.on('uncaughtException', l);
      await h.stop();
    }
  });
});

// ------------------------------------------------------------------------------------------------ inflater

function bigMessage(bytes: number, seed: number): Buffer {
  const parts: string[] = [];
  let x = seed;
  for (let size = 0; size < bytes; ) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const s = `{"id":"${x}","name":"member_${x % 9973}","roles":[${x % 97},${x % 13}]}`;
    parts.push(s);
    size += s.length + 1;
  }
  return discordJson({ op: 0, s: seed, t: 'GUILD_CREATE', d: { members: parts.map((p) => JSON.parse(p) as unknown) } });
}

const messages: Buffer[] = [...fixtureFrames, bigMessage(300 * 1024, 7), ...fixtureFrames.slice(0, 10), bigMessage(70 * 1024, 9)];
const zlibFrames = await deflateStream(messages);
const zstdFrames = zstdBinding ? zstdStream(messages) : [];
const backends = inflateBackends();
const bombFrame = (await deflateStream([Buffer.alloc(64 * 1024 * 1024)]))[0]!;
const ZSTD_SKIP = zstdBinding === null ? 'zstd-napi not loadable: no zstd stream can be produced' : false;

/** Cut `buf` into pieces at the given fractions (empty pieces allowed). */
function cut(buf: Buffer, fractions: number[]): Buffer[] {
  const points = fractions.map((f) => Math.floor(f * (buf.length + 1))).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, Math.min(p, buf.length)));
    prev = Math.min(p, buf.length);
  }
  out.push(buf.subarray(prev));
  return out;
}

function expectOnlyInflateError(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof InflateError, `expected InflateError, got ${String(err)}`);
  }
}

describe('inflater fuzz', () => {
  for (const backend of backends.zlib) {
    it(`property (${backend}): a whole stream, every message split at random points (empty pieces too), inflates exactly`, () => {
      fc.assert(
        fc.property(fc.array(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 5 }), { minLength: messages.length, maxLength: messages.length }), (cutsPer) => {
          const inf = createInflater('zlib-stream', { backend });
          zlibFrames.forEach((frame, i) => {
            const outs = cut(frame, cutsPer[i]!)
              .map((p) => inf.push(p))
              .filter((o) => o !== null);
            assert.equal(outs.length, 1, `message ${i}: one output`);
            assert.ok(outs[0]!.equals(messages[i]!), `message ${i} intact`);
          });
          assert.equal(inf.stats.bufferSize, 0);
          inf.close();
        }),
        { ...FC, numRuns: 40 },
      );
    });

    it(`property (${backend}): a truncated or spliced stream raises only InflateError, and a fresh inflater is unaffected`, () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: messages.length - 1 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.boolean(), (k, frac, marker) => {
          const inf = createInflater('zlib-stream', { backend, maxMessageSize: 1 << 20 });
          expectOnlyInflateError(() => {
            zlibFrames.forEach((frame, i) => {
              if (i < k) assert.ok(inf.push(frame)!.equals(messages[i]!));
              else if (i === k) {
                const head = frame.subarray(0, Math.floor(frac * frame.length));
                inf.push(marker ? Buffer.concat([head, Buffer.from([0, 0, 0xff, 0xff])]) : head);
              } else inf.push(frame);
            });
          });
          inf.close();
          const fresh = createInflater('zlib-stream', { backend });
          zlibFrames.slice(0, 3).forEach((f, i) => assert.ok(fresh.push(f)!.equals(messages[i]!)));
          fresh.close();
        }),
        { ...FC, numRuns: 150 },
      );
    });

    it(`${backend}: a message of exactly maxMessageSize passes, one byte more is INFLATE_TOO_LARGE; a zip bomb stops at the bound`, () => {
      const big = messages.find((m) => m.length > 200 * 1024)!;
      const idx = messages.indexOf(big);
      const feed = (max: number): Buffer | null => {
        const inf = createInflater('zlib-stream', { backend, maxMessageSize: max });
        try {
          let out: Buffer | null = null;
          for (let i = 0; i <= idx; i++) out = inf.push(zlibFrames[i]!);
          return out;
        } finally {
          inf.close();
        }
      };
      assert.ok(feed(big.length)!.equals(big));
      assert.throws(
        () => feed(big.length - 1),
        (e: unknown) => e instanceof InflateError && e.code === 'INFLATE_TOO_LARGE',
      );
      const bomb = bombFrame;
      assert.ok(bomb.length < 200 * 1024, 'the bomb is small');
      const inf = createInflater('zlib-stream', { backend, maxMessageSize: 1 << 20 });
      assert.throws(
        () => inf.push(bomb),
        (e: unknown) => e instanceof InflateError && e.code === 'INFLATE_TOO_LARGE',
      );
      inf.close();
    });
  }

  it('property: interleaved inflaters of every backend, owned and transient pushes, one of them fed garbage: outputs exact and never overwritten', { skip: ZSTD_SKIP }, () => {
    const streams = [
      ...backends.zlib.map((b) => ({ kind: 'zlib-stream' as const, backend: b, frames: zlibFrames })),
      ...backends.zstd.map((b) => ({ kind: 'zstd-stream' as const, backend: b, frames: zstdFrames })),
    ];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.boolean()), { minLength: 20, maxLength: 120 }),
        fc.integer({ min: 0, max: streams.length - 1 }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        (steps, victim, junk) => {
          const infs: Inflater[] = streams.map((s) => createInflater(s.kind, { backend: s.backend }));
          const pos = streams.map(() => 0);
          const kept: { out: Buffer; want: Buffer }[] = [];
          let poisoned = false;
          for (const [pick, transient] of steps) {
            const k = pick % streams.length;
            const s = streams[k]!;
            if (k === victim && !poisoned && pos[k]! > 2) {
              poisoned = true;
              expectOnlyInflateError(() => infs[k]!.push(Buffer.from(junk)));
              expectOnlyInflateError(() => infs[k]!.push(s.frames[pos[k]!]!));
              continue;
            }
            if (k === victim && poisoned) continue;
            const i = pos[k]!++ % messages.length;
            if (i === 0 && pos[k]! > 1) continue; // each stream is played once
            const out = infs[k]!.push(s.frames[i]!, transient);
            assert.ok(out !== null && out.equals(messages[i]!), `${s.backend} message ${i}`);
            if (!transient) kept.push({ out, want: messages[i]! });
          }
          kept.forEach(({ out, want }, n) => assert.ok(out.equals(want), `owned result ${n} was overwritten`));
          infs.forEach((inf) => inf.close());
        },
      ),
      { ...FC, numRuns: 60 },
    );
  });

  for (const backend of backends.zstd) {
    it(`property (${backend}): random garbage after a valid start, and truncated messages, raise only InflateError`, { skip: ZSTD_SKIP }, () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: messages.length - 1 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.uint8Array({ maxLength: 200 }), (k, frac, junk) => {
          const inf = createInflater('zstd-stream', { backend, maxMessageSize: 1 << 20 });
          expectOnlyInflateError(() => {
            for (let i = 0; i < k; i++) assert.ok(inf.push(zstdFrames[i]!)!.equals(messages[i]!));
            inf.push(zstdFrames[k]!.subarray(0, Math.floor(frac * zstdFrames[k]!.length)));
            inf.push(Buffer.from(junk));
            for (let i = k + 1; i < messages.length; i++) inf.push(zstdFrames[i]!);
          });
          inf.close();
        }),
        { ...FC, numRuns: 150 },
      );
    });
  }
});

// ------------------------------------------------------------------------------------------------ a real Shard

/** Garbage a gateway must never send. Valid dispatches (op 0 with an integer s and string t), s-less dispatches and
 *  op 10 are left out: the first two are trusted data, not garbage, and op 10 is the duplicate-HELLO test below. */
const garbageArb = fc.oneof(
  fc.uint8Array({ maxLength: 400 }).map((b) => ({ data: Buffer.from(b) as string | Buffer, what: 'bytes' })),
  fc.string({ unit: 'binary', maxLength: 300 }).map((s) => ({ data: s as string | Buffer, what: 'text' })),
  fc.jsonValue({ maxDepth: 4 }).map((v) => ({ data: JSON.stringify(v) ?? 'null', what: 'json' })),
  fc
    .record({
      t: fc.option(fc.oneof(fc.constant('MESSAGE_CREATE'), fc.string({ maxLength: 20 })), { nil: null }),
      s: fc.option(fc.oneof(fc.integer(), fc.double()), { nil: null }),
      op: fc.oneof(fc.constantFrom(1, 7, 9, 11, 2, 6, 99, -1), fc.integer({ min: 12, max: 1_000_000 })),
      d: fc.jsonValue({ maxDepth: 3 }),
    })
    .map((e) => ({ data: JSON.stringify(e), what: `op ${e.op}` })),
  fc.tuple(fc.integer({ min: 0, max: fixtureFrames.length - 1 }), fc.double({ min: 0, max: 0.999, noNaN: true }), fc.integer({ min: 1_000_000, max: 2 ** 40 })).map(([i, f, s]) => {
    const text = fixtureFrames[i]!.toString().replace(/"s":\d+/, `"s":${s}`);
    return { data: text.slice(0, Math.floor(f * text.length)), what: 'truncated' };
  }),
);

async function garbageOverSocket(compression: TransportCompression | false, runs: number): Promise<void> {
  // Slow heartbeats: this is about garbage, and a starved in-process gateway must not add zombies of its own.
  const h: Harness = await harness({ guilds: 1, heartbeatInterval: 150_000 });
  try {
    const shard = h.shard({ compression });
    shard.on('error', () => {});
    const ledger = new DeliveryLedger();
    shard.on('dispatch', (e) => ledger.onDispatch(0, shard.session?.sessionId ?? null, e.sequence, e.type, e.data));
    await shard.connect();
    const guild = h.sim.guildIds[0]!;
    let n = 0;
    const marker = (): void => {
      const live = h.sim.sessions().filter((s) => !s.expired && s.shardId === 0);
      const content = `mk:0:${++n}`;
      const seqs = h.sim.dispatch(0, 'MESSAGE_CREATE', { id: String(n), channel_id: '1', guild_id: guild, content, author: { id: '2' } });
      if (seqs.length === live.length) seqs.forEach((seq, i) => ledger.expectMarker(0, live[i]!.sessionId, seq, content));
    };
    await fc.assert(
      fc.asyncProperty(garbageArb, fc.boolean(), async (g, compress) => {
        const text = typeof g.data === 'string' ? g.data : '';
        let forced = false;
        try {
          const p = JSON.parse(text) as { op?: unknown; d?: unknown };
          forced = p !== null && typeof p === 'object' && p.op === 9 && p.d !== true;
        } catch {
          /* not JSON */
        }
        if (forced) ledger.allowNewSession(0, 'op 9 garbage');
        const before = ledger.markersDelivered;
        const lostBefore = ledger.markersLostToNewSession;
        assert.ok(h.sim.sendRaw(0, g.data, { compress }));
        marker();
        await delay(15);
        // Recovered: ready again and the marker sent behind the garbage arrives (unless the garbage was an op 9
        // that ended the session: then a marker sent now must arrive).
        await waitState(shard, 'ready', 5000);
        await until(() => ledger.markersDelivered > before || ledger.markersLostToNewSession > lostBefore, `marker after ${g.what}`, 5000);
        if (ledger.markersDelivered === before) {
          await waitState(shard, 'ready', 5000);
          marker();
          await until(() => ledger.markersDelivered > before, `marker after ${g.what} (second try)`, 5000);
        }
        await waitState(shard, 'ready', 5000); // back to ready (a loaded machine may still be finishing a resume)
        assert.deepEqual(ledger.violations, [], `after ${g.what}: ${JSON.stringify(ledger.violations.slice(0, 3))}`);
      }),
      { ...FC, numRuns: runs },
    );
    const final = (id: string) => h.sim.sessions().find((s) => s.sessionId === id)?.seq ?? null;
    await until(() => ledger.position(0).last === final(ledger.position(0).sessionId!), 'caught up');
    ledger.finish(final);
    assert.deepEqual(ledger.violations, []);
    assert.ok(ledger.markersDelivered >= runs);
    assert.ok(shard.counters.reconnects >= runs / 4, `garbage made the shard reconnect (${shard.counters.reconnects} times in ${runs} runs)`);
  } finally {
    await h.stop();
  }
}

describe('Shard fed garbage over a real socket', () => {
  it('zlib-stream: never crashes, always back to ready, nothing lost or repeated', { timeout: 60_000 }, () => garbageOverSocket('zlib-stream', 40));
  it('zstd-stream: never crashes, always back to ready, nothing lost or repeated', { timeout: 60_000, skip: zstdAvailable() ? false : 'zstd-napi missing' }, () =>
    garbageOverSocket('zstd-stream', 30),
  );
  it('uncompressed: never crashes, always back to ready, nothing lost or repeated', { timeout: 60_000 }, () => garbageOverSocket(false, 30));

  it('a second HELLO on a live connection must not replay the session (duplicates)', async () => {
    const h = await harness({ guilds: 1 });
    try {
      const shard = h.shard({ compression: 'zlib-stream' });
      shard.on('error', () => {});
      const ledger = new DeliveryLedger();
      shard.on('dispatch', (e) => ledger.onDispatch(0, shard.session?.sessionId ?? null, e.sequence, e.type, e.data));
      await shard.connect();
      const guild = h.sim.guildIds[0]!;
      for (let i = 0; i < 3; i++) h.sim.dispatch(0, 'MESSAGE_CREATE', { id: String(i), channel_id: '1', guild_id: guild, content: `m${i}`, author: { id: '2' } });
      await until(() => ledger.events >= 5, 'first events');
      h.sim.sendRaw(0, '{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}');
      await delay(300);
      await waitState(shard, 'ready');
      h.sim.dispatch(0, 'MESSAGE_CREATE', { id: '9', channel_id: '1', guild_id: guild, content: 'after', author: { id: '2' } });
      await delay(200);
      assert.deepEqual(ledger.violations, [], JSON.stringify(ledger.violations.slice(0, 3)));
    } finally {
      await h.stop();
    }
  });
});
