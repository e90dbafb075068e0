import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after } from 'node:test';
import { scaledClock, type Clock } from '../../src/clock.js';
import { Shard, type ShardOptions } from '../../src/shard.js';
import { GatewaySimulator } from '../../src/simulator/index.js';
import type { GatewaySimulatorOptions } from '../../src/simulator/types.js';

export const TOKEN = 'sim-token-abcdefghijklmnop.ZZZZ.secret';
/** 1 virtual second = 10 real ms. */
export const SCALE = 0.01;

export interface Harness {
  sim: GatewaySimulator;
  clock: Clock;
  shards: Shard[];
  shard(opts?: Partial<ShardOptions>): Shard;
  /** Every debug line and error message seen, to check that the token never leaks. */
  logs: string[];
  stop(): Promise<void>;
}

/** `scale`: a scaled clock's scale, or a clock to share (a ManualClock, for tests that drive time themselves). */
export async function harness(simOpts: GatewaySimulatorOptions = {}, scale: number | Clock = SCALE): Promise<Harness> {
  const clock = typeof scale === 'number' ? scaledClock(scale) : scale;
  const sim = await GatewaySimulator.start({ tokens: [TOKEN], heartbeatInterval: 41_250, clock, ...simOpts });
  const shards: Shard[] = [];
  const logs: string[] = [];
  return {
    sim,
    clock,
    shards,
    logs,
    shard(opts = {}) {
      // Generous handshake timeouts (virtual ms): at this clock speed the defaults are fractions of a real second,
      // which a loaded machine can miss; a test about them sets its own.
      const s = new Shard({ token: TOKEN, intents: 1 | 512 | 32768, gatewayUrl: sim.url, clock, helloTimeout: 600_000, readyTimeout: 600_000, ...opts });
      s.on('debug', (e) => logs.push(e.message));
      s.on('error', (e) => logs.push(`${e.name}: ${e.message}`));
      shards.push(s);
      return s;
    },
    async stop() {
      await Promise.all(shards.map((s) => s.close().catch(() => undefined)));
      await sim.stop();
    },
  };
}

/** Resolve when `shard` reaches `state` (or at once if it is there). */
export async function waitState(shard: Shard, state: Shard['state'], timeoutMs = 5000): Promise<void> {
  if (shard.state === state) return;
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(new Error(`timed out waiting for state ${state}; at ${shard.state}`)), timeoutMs);
  try {
    for (;;) {
      const [change] = (await once(shard, 'stateChange', { signal: ac.signal })) as [{ to: string }];
      if (change.to === state) return;
    }
  } finally {
    clearTimeout(t);
  }
}

/** Wait until `pred()` holds, polling every 5 ms. */
export async function until(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolve with the arguments of the next `event` (unlike events.once, an 'error' event does not reject it). */
// biome-ignore lint/suspicious/noExplicitAny: must accept every emitter's typed (generic) once()
export function next(emitter: { once(event: string, l: (...args: any[]) => void): unknown }, event: string): Promise<unknown[]> {
  return new Promise((resolve) => emitter.once(event, (...args: unknown[]) => resolve(args)));
}

/** Collect unhandled rejections during this test file and fail it (in an `after` hook) if there were any. */
export function failOnUnhandledRejections(): void {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  after(() => {
    process.off('unhandledRejection', onUnhandled);
    assert.deepEqual(unhandled, [], 'no unhandled rejections');
  });
}
