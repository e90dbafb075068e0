/** A gateway simulator and a GatewayProxy in front of it, for the proxy tests. */
import { scaledClock, type Clock } from '../../src/clock.js';
import { GatewayProxy, type GatewayProxyOptions } from '../../src/proxy/index.js';
import { GatewaySimulator } from '../../src/simulator/index.js';
import type { GatewaySimulatorOptions } from '../../src/simulator/types.js';
import { SCALE, TOKEN } from './setup.js';
import { ManualClock, drive, simActivity } from './manual-clock.js';

/** Guilds | GuildMembers | GuildPresences | GuildMessages | DirectMessages | MessageContent. */
export const PROXY_INTENTS = 1 | 2 | 256 | 512 | 4096 | 32768;

export interface ProxyRig {
  sim: GatewaySimulator;
  clock: Clock;
  proxy: GatewayProxy;
  stop(): Promise<void>;
}

/** Generous handshake timeouts (virtual ms): at 0.01 the defaults are fractions of a real second. */
export const SHARD_TIMEOUTS = { helloTimeout: 600_000, readyTimeout: 600_000 };

/**
 * `prepare`: see `GatewayProxy.start` (listeners from before the upstream connects). `scale`: a scaled clock's scale,
 * or a clock to share; on a {@link ManualClock} the start (the upstream shards connecting) is driven like `drive`.
 */
export async function proxyRig(
  simOpts: GatewaySimulatorOptions = {},
  proxyOpts: Partial<GatewayProxyOptions> = {},
  scale: number | Clock = SCALE,
  prepare?: (proxy: GatewayProxy) => void,
): Promise<ProxyRig> {
  const clock = typeof scale === 'number' ? scaledClock(scale) : scale;
  const sim = await GatewaySimulator.start({ tokens: [TOKEN], clock, heartbeatInterval: 150_000, guildMemberCount: 5, ...simOpts });
  let proxy: GatewayProxy;
  try {
    const starting = GatewayProxy.start({ token: TOKEN, intents: PROXY_INTENTS, apiUrl: sim.apiUrl, clock, shardOptions: () => SHARD_TIMEOUTS, ...proxyOpts }, prepare);
    proxy = await (clock instanceof ManualClock ? drive(clock, starting, { what: 'the proxy started', activity: simActivity(sim) }) : starting);
  } catch (err) {
    await sim.stop();
    throw err;
  }
  return {
    sim,
    clock,
    proxy,
    async stop() {
      await proxy.close().catch(() => undefined);
      await sim.stop();
    },
  };
}
