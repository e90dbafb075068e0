/** A shard's replay ring, cache and client sessions without sockets, as the proxy drives them (test/proxy-ring*.ts). */
import assert from 'node:assert/strict';
import { Intents } from '../../src/intents.js';
import { GuildCache } from '../../src/proxy/cache.js';
import { ClientSession, type ClientEffect } from '../../src/proxy/client-session.js';
import { resumePos } from '../../src/proxy/resume-map.js';
import { ShardStream } from '../../src/proxy/stream.js';
import { expandRef } from '../../src/proxy/synth.js';
import { buildGuildCreate } from '../../src/simulator/fixtures.js';

const UPSTREAM = Intents.Guilds | Intents.GuildMessages | Intents.GuildPresences;
export const gid = (i: number) => String(200000000000000000n + BigInt(i));

export function session(cache: GuildCache): ClientSession {
  return new ClientSession({
    heartbeatInterval: 40_000,
    heartbeatSlack: 5000,
    checkToken: (t) => t === 'tok',
    total: 1,
    hasShard: (id) => id === 0,
    upstreamIntents: UPSTREAM,
    now: () => 0,
    expand: (type, ref, intents) => expandRef(cache, type, ref, intents),
  });
}

export const sent = (effects: ClientEffect[]) =>
  effects.filter((e): e is { type: 'send'; data: string } => e.type === 'send').map((e) => JSON.parse(e.data) as { t: string; s: number; d: Record<string, unknown> });

/** What the proxy does with one upstream dispatch: cache first, then the ring (and the live clients). */
export function dispatch(st: ShardStream, cache: GuildCache, clients: ClientSession[], type: string, data: Record<string, unknown>): void {
  const d = JSON.stringify(data);
  cache.apply(type, data, d);
  const pos = st.record(type, d, data, cache);
  for (const c of clients) c.deliver(type, d, pos);
}

/** A shard that started with `n` guilds (presences and 40 members each), with a client that was live through it. */
export function started(n: number, intents: number) {
  const cache = new GuildCache();
  const st = new ShardStream(0, 10_000);
  const c = session(cache);
  c.open();
  c.message(JSON.stringify({ op: 2, d: { token: 'tok', intents, properties: {}, shard: [0, 1] } }));
  c.start('sess', '{"session_id":"sess"}', [], st.ring.newest, st.ring);
  c.pull(0);
  let raw = 0;
  for (let i = 0; i < n; i++) {
    const g = buildGuildCreate(gid(i), i, { memberCount: 40, presences: true }) as Record<string, unknown>;
    raw += JSON.stringify(g).length;
    dispatch(st, cache, [c], 'GUILD_CREATE', g);
  }
  const live = sent(c.effects.splice(0));
  return { cache, st, c, raw, live };
}

/** RESUME `state` from `seq` on a new connection: what it is sent. */
export function resume(cache: GuildCache, st: ShardStream, state: NonNullable<ClientSession['session']>, seq: number) {
  const r = session(cache);
  r.open();
  r.message(JSON.stringify({ op: 6, d: { token: 'tok', session_id: state.id, seq } }));
  const pos = resumePos(state, seq, st.ring);
  assert.notEqual(pos, null, `seq ${seq} maps to a ring position`);
  r.resume(state, pos!, st.ring.after(pos!)!);
  return sent(r.effects.splice(0)).filter((p) => p.t !== null);
}
