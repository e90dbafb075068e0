/** A gateway simulator and a GatewayProxy in front of it, for the proxy tests. */
import { scaledClock, type Clock } from '../../src/clock.js';
import { GatewayProxy, type GatewayProxyOptions } from '../../src/proxy/index.js';
import { GatewaySimulator } from '../../src/simulator/index.js';
import type { GatewaySimulatorOptions } from '../../src/simulator/types.js';
import { SCALE, TOKEN } from './setup.js';

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

/** `prepare`: see `GatewayProxy.start` (listeners from before the upstream connects). */
export async function proxyRig(simOpts: GatewaySimulatorOptions = {}, proxyOpts: Partial<GatewayProxyOptions> = {}, scale = SCALE, prepare?: (proxy: GatewayProxy) => void): Promise<ProxyRig> {
  const clock = scaledClock(scale);
  const sim = await GatewaySimulator.start({ tokens: [TOKEN], clock, heartbeatInterval: 150_000, guildMemberCount: 5, ...simOpts });
  let proxy: GatewayProxy;
  try {
    proxy = await GatewayProxy.start({ token: TOKEN, intents: PROXY_INTENTS, apiUrl: sim.apiUrl, clock, shardOptions: () => SHARD_TIMEOUTS, ...proxyOpts }, prepare);
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
