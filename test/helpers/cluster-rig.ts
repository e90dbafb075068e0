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
  const sim = await GatewaySimulator.start({ tokens: [TOKEN], clock, ...simOpts });
  const clusters: Cluster[] = [];
  return {
    sim,
    clock,
    clusters,
    cluster(opts = {}) {
      const c = new Cluster({ token: TOKEN, intents: INTENTS, apiUrl: sim.apiUrl, clock, ...opts });
      clusters.push(c);
      return c;
    },
    async stop() {
      await Promise.all(clusters.map((c) => c.close().catch(() => undefined)));
      await sim.stop();
    },
  };
}
