/**
 * A reshard 2 → 4 whose shards lose their sessions in the middle of the overlap: one running-set (old) shard or
 * one new-set shard RESUMEs after a dropped connection, or IDENTIFYs again after an invalid session (op 9 d:false)
 * or an expired one (4009),
 * in dispatch mode (the dedupe on `cluster.on('dispatch')`) and in handler mode (this thread). Every marker must be
 * delivered (handled) exactly once, and a re-IDENTIFY's READY / GUILD_CREATE burst is delivered only when the
 * running set's shard made it (as without a reshard); the new set's is suppressed.
 *
 * Deterministic: one {@link ManualClock} drives the cluster and the simulator, and only the test moves it.
 * Heartbeats and session timeouts are out of reach, so the faults are the test's. The switch is held back by the
 * new set's initial GUILD_CREATE bursts, which the simulator spreads over virtual time (the reshard waits for
 * them), so the fault, the events sent while the shard has no connection, and its recovery all happen in the
 * overlap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from '../src/cluster.js';
import type { DispatchEvent } from '../src/events.js';
import type { ReshardResult } from '../src/reshard.js';
import { GatewaySimulator, generateGuildIds, shardForGuild } from '../src/simulator/index.js';
import type { SimConnection } from '../src/simulator/connection.js';
import { ManualClock } from './helpers/manual-clock.js';
import { TOKEN, until, delay, failOnUnhandledRejections } from './helpers/setup.js';

failOnUnhandledRejections();

const HANDLER = new URL('./helpers/test-handler.ts', import.meta.url);
/** Guilds | GuildMessages | DirectMessages | MessageContent. */
const INTENTS = 1 | 512 | 4096 | 32768;
const FROM = 2;
const TO = 4;
/** Real ms a step may take on a loaded machine (a bound for a hang, not a timing assertion). */
const LOADED = 60_000;
/** Virtual ms between the new set's GUILD_CREATEs: its bursts (and so the overlap) last at least this long. */
const HOLD = 100_000;
/** Out of reach: no heartbeat, hello, READY or session deadline passes while the test moves the clock. */
const FAR = 3_600_000_000;

/**
 * Move the virtual clock `step` ms at a time, with a real turn (socket I/O) between steps, until `done()`;
 * at most `limit` virtual ms (the test fails past it: something did not happen).
 */
async function drive(clock: ManualClock, done: () => boolean, what: string, limit: number, step = 100): Promise<void> {
  const end = clock.now() + limit;
  const realEnd = Date.now() + LOADED;
  while (!done()) {
    if (clock.now() >= end || Date.now() > realEnd) throw new Error(`${what}: not done after ${clock.now() - end + limit} virtual ms`);
    await delay(1);
    clock.advance(Math.min(step, end - clock.now()));
  }
}

/**
 * The simulator's live connection of shard `shardId` of the set with `total` shards. (Its fault methods pick the
 * newest connection of a shard id, which in the overlap is the new set's for ids both sets have.)
 */
function connectionOf(sim: GatewaySimulator, shardId: number, total: number): SimConnection {
  const core = (sim as unknown as { core: { connections: Map<number, SimConnection> } }).core;
  const c = [...core.connections.values()].find((x) => x.open && x.shardId === shardId && x.total === total && x.session !== null);
  assert.ok(c, `a live connection of shard ${shardId}/${total}`);
  return c;
}

/** op 9 d:false on one connection, as `GatewaySimulator.invalidateSession(id, false)` does on the newest one. */
function invalidate(sim: GatewaySimulator, c: SimConnection): void {
  const core = (sim as unknown as { core: { invalidSession(c: SimConnection, resumable: boolean): void; expireSession(s: NonNullable<SimConnection['session']>): void } }).core;
  core.invalidSession(c, false);
  if (c.session) core.expireSession(c.session);
  c.identified = false;
  c.resumed = false;
}

/** `expire`: the simulator's session times out (close 4009), as when heartbeats come too late under load. */
type Fault = 'resume' | 'reidentify' | 'expire';
type Mode = 'dispatch' | 'handler';

/** A cluster of 2 shards on a simulator, both on one manual clock; markers delivered (handled) are recorded. */
async function rig(mode: Mode) {
  const clock = new ManualClock();
  // on consecutive shards of 4: new shard 0 has three guilds (its burst ends last), the others two
  const guilds = generateGuildIds(9, TO);
  const sim = await GatewaySimulator.start({ tokens: [TOKEN], clock, shards: FROM, maxConcurrency: TO, guilds, heartbeatInterval: FAR, sessionTimeout: FAR });
  const cluster = new Cluster({
    token: TOKEN,
    intents: INTENTS,
    apiUrl: sim.apiUrl,
    clock,
    shards: FROM,
    shardOptions: () => ({ helloTimeout: FAR, readyTimeout: FAR }),
    ...(mode === 'handler' ? { handler: HANDLER, workers: 0 } : {}),
  });
  const got: string[] = [];
  /** GUILD_CREATEs delivered, by guild (dispatch mode), or handled, under `*` (handler mode). */
  const creates = new Map<string, number>();
  const count = (k: string) => creates.set(k, (creates.get(k) ?? 0) + 1);
  if (mode === 'dispatch') {
    cluster.on('dispatch', (e: DispatchEvent) => {
      if (e.type === 'GUILD_CREATE') count(e.data.id);
      if (e.type === 'MESSAGE_CREATE') got.push(e.data.content);
    });
  } else {
    cluster.on('handlerMessage', (m) => {
      const marker = (m.value as { marker?: string }).marker;
      if (marker !== undefined) got.push(marker);
    });
    cluster.on('dispatchHandled', (_shardId, type) => type === 'GUILD_CREATE' && count('*'));
  }
  const debug: string[] = [];
  cluster.on('debug', (e) => debug.push(e.message));
  const sent: string[] = [];
  let n = 0;
  const message = (g: string, m: string) => {
    sent.push(m);
    sim.dispatch({ guildId: g }, 'MESSAGE_CREATE', { id: String(++n), channel_id: '10', guild_id: g, content: m, author: { id: '2' } });
  };
  /** One marker to every guild and a DM (shard 0 of each set); returns them. */
  const round = (tag: string): string[] => {
    guilds.forEach((g, gi) => message(g, `${tag}:g${gi}`));
    const dm = `${tag}:dm`;
    sent.push(dm);
    sim.dispatch(0, 'MESSAGE_CREATE', { id: String(++n), channel_id: '11', content: dm, author: { id: '3' } });
    return [...guilds.map((_, gi) => `${tag}:g${gi}`), dm];
  };
  const delivered = (ms: string[]) => ms.every((m) => got.includes(m));
  const state = { switched: false, reshard: null as Promise<ReshardResult> | null, overlapStart: 0 };
  return {
    clock,
    sim,
    cluster,
    guilds,
    got,
    sent,
    creates,
    debug,
    state,
    message,
    round,
    delivered,
    /** Connect, deliver a round, start the reshard and wait until every new shard is READY (the overlap). */
    async overlap(onSwitch?: () => void): Promise<void> {
      let connected = false;
      void cluster.connect().then(() => (connected = true));
      await drive(clock, () => connected, 'connect', 120_000);
      const first = round('before');
      await until(() => delivered(first), 'markers before the reshard', LOADED);
      // The new set's bursts: a GUILD_CREATE every HOLD virtual ms (sessions started later get theirs at once).
      sim.setOptions({ guildCreateDelay: HOLD });
      state.reshard = cluster.reshard(TO, { guildTimeout: FAR, timeout: FAR, catchUpTimeout: FAR });
      state.reshard.then(
        () => {
          state.switched = true;
          onSwitch?.();
        },
        () => undefined,
      );
      await drive(clock, () => debug.some((m) => m.includes('every new shard is ready')), 'the new set comes up', 60_000);
      sim.setOptions({ guildCreateDelay: 0 });
      state.overlapStart = clock.now();
      const overlap = round('overlap');
      await until(() => delivered(overlap), 'markers in the overlap', LOADED);
    },
    /** Shard `shardId` of the set of `total` has a live session again: the same one (RESUME) or a new one. */
    recovered(shardId: number, total: number, fault: Fault, before: string): () => boolean {
      return () => sim.sessions().some((x) => x.shardId === shardId && x.total === total && x.connected && !x.expired && (fault === 'resume' ? x.sessionId === before : x.sessionId !== before));
    },
    /** Let the switch happen (the bursts end), then deliver a last round through the new set. */
    async finish(): Promise<ReshardResult> {
      await drive(clock, () => state.switched, 'the switch', 4 * HOLD, 1000);
      const result = await state.reshard!;
      assert.equal(cluster.total, TO);
      const fences = round('fence');
      await until(() => delivered(fences), 'the fence markers (delivered by the new set)', LOADED).catch(() => undefined);
      return result;
    },
    /** Every marker sent was delivered (handled) exactly once. */
    check(t: { diagnostic(m: string): void }, what: string, result: ReshardResult): void {
      const counts = new Map<string, number>();
      for (const m of got) counts.set(m, (counts.get(m) ?? 0) + 1);
      const twice = [...counts].filter(([, c]) => c > 1).map(([m]) => m);
      const lost = sent.filter((m) => !counts.has(m));
      t.diagnostic(`${what}: ${sent.length} markers, twice [${twice.join(', ')}], lost [${lost.join(', ')}]; result ${JSON.stringify(result)}`);
      assert.deepEqual(twice, [], 'no marker delivered twice');
      assert.deepEqual(lost, [], 'no marker lost');
    },
    async stop(): Promise<void> {
      let closed = false;
      const closing = cluster.close().catch(() => undefined);
      void closing.then(() => (closed = true));
      await drive(clock, () => closed, 'close', 60_000).catch(() => undefined);
      await closing;
      await state.reshard?.catch(() => undefined);
      await sim.stop();
    },
  };
}

async function overlapFault(set: 'old' | 'new', fault: Fault, mode: Mode, t: { diagnostic(m: string): void }) {
  const r = await rig(mode);
  const { clock, sim, cluster, guilds, state } = r;
  try {
    await r.overlap();
    // The fault, on old shard 1 (its guilds move to new shards 1 and 3) or new shard 2 (its guilds come from old 0).
    const [target, total] = set === 'old' ? [1, FROM] : [2, TO];
    const conn = connectionOf(sim, target, total);
    const before = conn.session!.id;
    if (fault === 'resume') conn.terminate();
    else if (fault === 'expire') sim.expireSession(before);
    else invalidate(sim, conn);
    // While it has no connection: the gateway sends these to the other set's shard only (re-IDENTIFY), or buffers
    // them for the replay (RESUME).
    const gap = r.round('gap');
    await drive(clock, r.recovered(target, total, fault, before), `shard ${target}/${total} ${fault === 'resume' ? 'resumes' : 'identifies again'}`, 60_000);
    if (set === 'old') await drive(clock, () => cluster.status()[target]!.state === 'ready', 'the running shard is ready again', 60_000);
    const after = r.round('after');
    if (set === 'new' || fault === 'resume') await until(() => r.delivered(gap), 'the gap markers (delivered by the running set)', LOADED);
    await until(() => r.delivered(after), 'markers after the recovery', LOADED);
    assert.ok(!state.switched && clock.now() - state.overlapStart < HOLD, `all of it happened in the overlap (${clock.now() - state.overlapStart} virtual ms)`);
    if (set === 'old' && fault !== 'resume') assert.ok(r.debug.some((m) => m.includes(`running shard ${target} identifies again during the overlap`)));

    const result = await r.finish();
    r.check(t, `${set} shard ${fault}, ${mode}`, result);
    // GUILD_CREATEs: the initial burst of the running set, and again for the old shard's guilds when it made a new
    // session (delivered, as without a reshard); never the new set's bursts (its first one nor a re-IDENTIFY's).
    const again = (g: string) => set === 'old' && fault !== 'resume' && shardForGuild(g, FROM) === target;
    if (mode === 'dispatch') {
      assert.deepEqual(r.creates, new Map(guilds.map((g) => [g, again(g) ? 2 : 1])), 'GUILD_CREATEs delivered per guild');
    } else {
      assert.equal(r.creates.get('*'), guilds.length + guilds.filter(again).length, 'GUILD_CREATEs handled');
    }
  } finally {
    await r.stop();
  }
}

for (const mode of ['dispatch', 'handler'] as const) {
  for (const set of ['old', 'new'] as const) {
    for (const fault of ['resume', 'reidentify', 'expire'] as const) {
      const what = { resume: 'RESUMEs after a dropped connection', reidentify: 'IDENTIFYs again after op 9 d:false', expire: 'IDENTIFYs again after its session expired (4009)' }[fault];
      test(`${mode} mode: a${set === 'old' ? ' running-set' : ' new-set'} shard ${what} mid-overlap: every event exactly once`, (t) => overlapFault(set, fault, mode, t));
    }
  }
}

test('handler mode: a new-set shard IDENTIFYs again while its dispatches wait for verdicts (the running handler is behind): the verdicts reach the right dispatches', async (t) => {
  const r = await rig('handler');
  const { clock, sim, guilds } = r;
  const g = globalThis as { shardlineTestGate?: Promise<void> };
  let open!: () => void;
  g.shardlineTestGate = new Promise<void>((resolve) => (open = resolve));
  try {
    await r.overlap();
    // Guild 2 is on old shard 0 and new shard 2. The running handler stops at a `gate:` marker, so everything after
    // it on old shard 0 waits; new shard 2's copies wait for their verdicts meanwhile.
    const gi = guilds.findIndex((x) => shardForGuild(x, TO) === 2);
    /** Markers the running set's shard 1 handles (not behind the gate). */
    const ofOld1 = (ms: string[]) => ms.filter((m) => !m.endsWith(':dm') && shardForGuild(guilds[Number(m.split(':g')[1])]!, FROM) === 1);
    r.message(guilds[gi]!, 'gate:1');
    const waiting = r.round('waiting');
    await until(() => r.delivered(ofOld1(waiting)), 'the markers of old shard 1', LOADED);
    // New shard 2 gets a new session: its sequences start over while its previous session's dispatches still wait.
    const conn = connectionOf(sim, 2, TO);
    const before = conn.session!.id;
    invalidate(sim, conn);
    await drive(clock, r.recovered(2, TO, 'reidentify', before), 'new shard 2 identifies again', 60_000);
    const after = [...r.round('after1'), ...r.round('after2')];
    await until(() => r.delivered(ofOld1(after)), 'the markers of old shard 1', LOADED);
    // The running handler catches up: its fingerprints decide the waiting dispatches of both sessions.
    open();
    await until(() => r.delivered([...waiting, ...after, 'gate:1']), 'everything, handled by the running set', LOADED);
    assert.ok(!r.state.switched, 'all of it happened in the overlap');
    r.check(t, 'new shard re-identify behind verdicts', await r.finish());
  } finally {
    open();
    delete g.shardlineTestGate;
    await r.stop();
  }
});

for (const mode of ['dispatch', 'handler'] as const) {
  test(`${mode} mode: the switch waits for a new-set shard that lost its session (no new shard misses what the running set still had)`, async (t) => {
    const r = await rig(mode);
    const { clock, sim, state } = r;
    // Sent in the same turn as the switch: with a new shard without a session, only the retired running set gets these.
    let atSwitch: string[] = [];
    try {
      await r.overlap(() => (atSwitch = r.round('at-switch')));
      // New shard 2's burst (two guilds) is over; new shard 0's (three) is not: the switch comes at its end.
      await drive(clock, () => clock.now() - state.overlapStart >= 2 * HOLD + 1000, "the end of new shard 2's burst", 3 * HOLD, 1000);
      assert.equal(state.switched, false);
      const conn = connectionOf(sim, 2, TO);
      const before = conn.session!.id;
      // New shard 2 loses its session and cannot connect again for a while; the end of the bursts passes.
      sim.refuseConnections(FAR);
      invalidate(sim, conn);
      const down = r.round('down');
      await until(() => r.delivered(down), 'markers while new shard 2 is down (the running set delivers them)', LOADED);
      await drive(clock, () => state.switched, 'a switch (there should be none)', 2 * HOLD, 1000).catch(() => undefined);
      await drive(clock, () => state.switched, 'a switch (there should be none)', 60_000).catch(() => undefined);
      assert.equal(state.switched, false, 'no switch while a new shard has no session');
      sim.refuseConnections(0);
      await drive(clock, r.recovered(2, TO, 'reidentify', before), 'new shard 2 identifies again', 120_000);
      const result = await r.finish();
      await until(() => r.delivered(atSwitch), 'the markers sent at the switch', LOADED).catch(() => undefined);
      r.check(t, `${mode}: new shard without a session at the switch`, result);
    } finally {
      sim.refuseConnections(0);
      await r.stop();
    }
  });
}
