/**
 * Background traffic: fixture events with ids routed to the receiving shard, picked by a weighted mix.
 * @packageDocumentation
 */
import type { TimerHandle } from '../clock.js';
import type { SimulatorCore } from './core.js';
import { SUGGESTED_MIX } from './fixtures-data.js';
import { fixtureEventJson, shardForGuild, snowflake, TRAFFIC_EVENTS } from './fixtures.js';
import type { SimSession } from './session.js';
import type { TrafficOptions } from './types.js';

/** Small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Events traffic may send. GUILD_CREATE is not one of them: traffic goes to guilds a session already has available,
 * and Discord sends GUILD_CREATE only when a guild becomes available or the bot joins one, never again for an
 * available guild (its weight in a mix is spread like `other`).
 */
const TRAFFIC_NAMES: readonly string[] = TRAFFIC_EVENTS.filter((t) => t !== 'GUILD_CREATE');

/** Normalised cumulative weights over events that have a fixture; `other` and unknown names are spread evenly. */
export function resolveMix(mix: TrafficOptions['mix']): { names: string[]; cumulative: number[] } {
  const weights = typeof mix === 'object' ? mix : SUGGESTED_MIX[mix ?? 'presences_off'];
  const acc = new Map<string, number>();
  let spread = 0;
  for (const [name, w] of Object.entries(weights)) {
    if (!(w > 0)) continue;
    if (TRAFFIC_NAMES.includes(name)) acc.set(name, (acc.get(name) ?? 0) + w);
    else spread += w;
  }
  if (spread > 0) for (const name of TRAFFIC_NAMES) acc.set(name, (acc.get(name) ?? 0) + spread / TRAFFIC_NAMES.length);
  const names = [...acc.keys()];
  const total = [...acc.values()].reduce((a, b) => a + b, 0);
  if (names.length === 0 || !(total > 0)) throw new RangeError('traffic mix has no usable events');
  let run = 0;
  const cumulative = names.map((n) => (run += acc.get(n)! / total));
  return { names, cumulative };
}

/** The sessions among `sessions` that hold a guild, by guild id (shard routing computed once per shard count). */
function holdersOf(sessions: readonly SimSession[]): (guildId: string) => SimSession[] {
  const byTotal = new Map<number, Map<number, SimSession[]>>();
  for (const s of sessions) {
    let shards = byTotal.get(s.total);
    if (!shards) byTotal.set(s.total, (shards = new Map()));
    const list = shards.get(s.shardId);
    if (list) list.push(s);
    else shards.set(s.shardId, [s]);
  }
  return (guildId) => {
    const out: SimSession[] = [];
    for (const [total, shards] of byTotal) {
      const list = shards.get(shardForGuild(guildId, total));
      if (list) out.push(...list);
    }
    return out;
  };
}

/** Start a traffic generator; returns its stop function. */
export function startTraffic(core: SimulatorCore, opts: TrafficOptions, random: () => number, onStop: (stop: () => void) => void): () => void {
  const eps = opts.eventsPerSecond;
  if (!(eps > 0) || !Number.isFinite(eps)) throw new RangeError('eventsPerSecond must be a positive number');
  const { names, cumulative } = resolveMix(opts.mix);
  const clock = core.clock;
  // Tick at least every 5 real ms worth of virtual time, at most once per event.
  const tick = Math.max(1000 / eps, 5 / clock.scale);
  let last = clock.now();
  let carry = 0;
  let timer: TimerHandle | undefined;
  let stopped = false;
  let nextId = 0;

  const pickName = (): string => {
    const r = random();
    const i = cumulative.findIndex((c) => r < c);
    return names[i < 0 ? names.length - 1 : i]!;
  };
  const targets = (): SimSession[] => {
    const live = core.sessions.live().filter((s) => core.guildsForShard(s.shardId, s.total).length > 0);
    return opts.shards === undefined || opts.shards === 'all' ? live : live.filter((s) => (opts.shards as number[]).includes(s.shardId));
  };

  const run = (): void => {
    timer = undefined;
    if (stopped) return;
    const now = clock.now();
    carry += ((now - last) * eps) / 1000;
    last = now;
    const n = Math.floor(carry);
    carry -= n;
    const sessions = n > 0 ? targets() : [];
    if (sessions.length > 0) {
      const holders = sessions.length > 1 ? holdersOf(sessions) : null;
      for (let k = 0; k < n; k++) {
        const session = sessions[Math.floor(random() * sessions.length)]!;
        const guilds = core.guildsForShard(session.shardId, session.total);
        const guildId = guilds[Math.floor(random() * guilds.length)]!;
        const t = pickName();
        const json = fixtureEventJson(t, guildId, snowflake(Date.now(), nextId++ & 4095, 3, 1));
        if (json === null) continue;
        // The same event reaches every session that holds the guild (both shard sets during a reshard's overlap).
        if (holders) for (const s of holders(guildId)) core.deliverJson(s, t, json);
        else core.deliverJson(session, t, json);
      }
    }
    timer = clock.setTimeout(run, tick);
  };
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    clock.clearTimeout(timer);
    timer = undefined;
  };
  onStop(stop);
  timer = clock.setTimeout(run, tick);
  return stop;
}
