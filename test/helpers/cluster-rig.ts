/** A gateway simulator and the clusters connected to it, for the cluster tests. */
import { scaledClock, type Clock } from '../../src/clock.js';
import { Cluster, type ClusterOptions } from '../../src/cluster.js';
import { GatewaySimulator } from '../../src/simulator/index.js';
import type { GatewaySimulatorOptions } from '../../src/simulator/types.js';
import { TOKEN, SCALE } from './setup.js';
import { ManualClock, driver } from './manual-clock.js';

/** Guilds | GuildMessages | DirectMessages. */
export const INTENTS = 1 | 512 | 4096;

export interface Rig {
  sim: GatewaySimulator;
  clock: Clock;
  clusters: Cluster[];
  cluster(opts?: Partial<ClusterOptions>): Cluster;
  stop(): Promise<void>;
}

/** A rig on a {@link ManualClock}: time moves only in `run` / `until`, with I/O turns between steps. */
export interface ManualRig extends Rig {
  clock: ManualClock;
  /** Await `p` while the clock runs (see drive in manual-clock.ts). */
  run<T>(p: PromiseLike<T>, what?: string): Promise<T>;
  /** Run the clock until `done()` holds (see driveUntil in manual-clock.ts). */
  until(done: () => boolean, what?: string): Promise<void>;
}

/** A simulator and clusters sharing one {@link ManualClock}; sockets are real, time moves when the test says so. */
export async function manualRig(simOpts: GatewaySimulatorOptions = {}): Promise<ManualRig> {
  const clock = new ManualClock();
  // Discord's heartbeat interval: on this clock no heartbeat is late, however loaded the machine.
  const r = await rig({ clock, heartbeatInterval: 41_250, ...simOpts }, clock);
  return { ...r, clock, ...driver(clock, r.sim) };
}

export async function rig(simOpts: GatewaySimulatorOptions = {}, scale: number | Clock = SCALE): Promise<Rig> {
  const clock = typeof scale === 'number' ? scaledClock(scale) : scale;
  // Heartbeats every 1.5 real s (at 0.01) unless a test asks otherwise: a loaded machine that starves the in-process
  // gateway for a second must not make a shard see a zombie where the test expects none.
  const sim = await GatewaySimulator.start({ tokens: [TOKEN], clock, heartbeatInterval: 150_000, ...simOpts });
  const clusters: Cluster[] = [];
  return {
    sim,
    clock,
    clusters,
    cluster(opts = {}) {
      // Handshake timeouts are not what these tests are about: at this clock speed the defaults (20 s / 120 s virtual)
      // are 0.2 s / 1.2 s of real time, which a loaded machine can miss (a starved process, an in-process gateway
      // that needs its own turn to answer). A test that is about them sets its own.
      const user = opts.shardOptions;
      const shardOptions = (id: number) => ({ helloTimeout: 600_000, readyTimeout: 600_000, ...user?.(id) });
      const c = new Cluster({ token: TOKEN, intents: INTENTS, apiUrl: sim.apiUrl, clock, ...opts, shardOptions });
      clusters.push(c);
      return c;
    },
    async stop() {
      await Promise.all(clusters.map((c) => c.close().catch(() => undefined)));
      await sim.stop();
    },
  };
}
