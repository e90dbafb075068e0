/** A gateway simulator and the clusters connected to it, for the cluster tests. */
import { scaledClock, type Clock } from '../../src/clock.js';
import { Cluster, type ClusterOptions } from '../../src/cluster.js';
import { GatewaySimulator } from '../../src/simulator/index.js';
import type { GatewaySimulatorOptions } from '../../src/simulator/types.js';
import { TOKEN, SCALE } from './setup.js';

/** Guilds | GuildMessages | DirectMessages. */
export const INTENTS = 1 | 512 | 4096;

export interface Rig {
  sim: GatewaySimulator;
  clock: Clock;
  clusters: Cluster[];
  cluster(opts?: Partial<ClusterOptions>): Cluster;
  stop(): Promise<void>;
}

export async function rig(simOpts: GatewaySimulatorOptions = {}, scale = SCALE): Promise<Rig> {
  const clock = scaledClock(scale);
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
