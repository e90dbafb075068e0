/**
 * `shardline/simulator` — a faithful offline Discord gateway for testing bots.
 *
 * A real `ws` WebSocket server on loopback that speaks the gateway protocol (HELLO, heartbeats, IDENTIFY,
 * READY, GUILD_CREATE streaming, RESUME with replay, op 7 / op 9, every documented close code, the 120/60 s send
 * limit, identify buckets, the session-start budget, zlib-stream and zstd-stream transport compression) plus
 * a REST API on the same port (gateway/bot, users, the application, guilds, members, channels, messages, application
 * commands, interaction callbacks, Discord's rate-limit headers and 429s) that bots of any library can use offline. Faults can be injected at any moment and every timer runs on an
 * injectable clock, so a 41 s heartbeat interval can pass in 400 ms.
 *
 * @example Run it against a raw `ws` client
 * ```ts
 * import WebSocket from 'ws';
 * import { GatewaySimulator } from 'shardline/simulator';
 *
 * const sim = await GatewaySimulator.start({ guilds: 4, timeScale: 0.01 });
 * const ws = new WebSocket(`${sim.url}/?v=10&encoding=json`);
 * ws.on('message', (data) => {
 *   const msg = JSON.parse(String(data));
 *   if (msg.op === 10) {
 *     // intents 33281 = GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT
 *     ws.send(JSON.stringify({ op: 2, d: { token: 'sim-token', intents: 33281, properties: { os: 'linux', browser: 'x', device: 'x' } } }));
 *   } else if (msg.t === 'READY') {
 *     console.log('session', msg.d.session_id, 'guilds', msg.d.guilds.length);
 *   } else if (msg.t === 'GUILD_CREATE') {
 *     console.log('guild', msg.d.id, msg.d.name);
 *   }
 * });
 * sim.on('ready', () => {
 *   sim.dispatch(0, 'MESSAGE_CREATE', { id: '1', channel_id: '2', guild_id: sim.guildIds[0], content: 'hello' });
 * });
 * // later
 * await sim.stop();
 * ```
 *
 * @example Fault injection with a client under test
 * ```ts
 * const sim = await GatewaySimulator.start({ timeScale: 0.01, shards: 2, guilds: 10 });
 * const gw = await (await fetch(`${sim.apiUrl}/gateway/bot`, { headers: { Authorization: 'Bot sim-token' } })).json();
 * // start your shards against gw.url ...
 * sim.setAcks(0, false);          // zombie connection: the client should close and RESUME
 * sim.sendReconnect(1);           // op 7
 * sim.invalidateSession(1, false); // op 9 false: the client must IDENTIFY again
 * sim.closeConnection(0, 4004);   // fatal close
 * console.log(sim.stats.closesByCode, sim.connections());
 * await sim.stop();
 * ```
 * @packageDocumentation
 */
export { GatewaySimulator, type DispatchTarget } from './server.js';
export type {
  GatewaySimulatorOptions,
  SimRuntimeOptions,
  SimCompression,
  SimConnectionInfo,
  SimSessionInfo,
  SimStats,
  ReceivedPayload,
  SimulatorEvents,
  TrafficMix,
  TrafficOptions,
} from './types.js';
export type { SimRestOptions, SimRestRequest } from './rest.js';
export type { RestLimit, RestRateLimitOptions } from './rest-limits.js';
export { zstdAvailable } from './compress.js';
export { I as SimIntents, PRIVILEGED_INTENTS, dispatchAllowed } from './events.js';
export {
  BOT_USER_ID,
  buildGuildCreate,
  generateGuildIds,
  shardForGuild,
  snowflake,
  snowflakeTime,
  fixtureEventJson,
  TRAFFIC_EVENTS,
} from './fixtures.js';
export { CONTROL_FIXTURES, DISPATCH_FIXTURES, SEND_FIXTURES, SUGGESTED_MIX, type FixtureEnvelope } from './fixtures-data.js';
export {
  ChaosMonkey,
  DeliveryLedger,
  garbage as chaosGarbage,
  DEFAULT_FAULT_WEIGHTS,
  FATAL_CLOSE_CODES,
  NEW_SESSION_CLOSE_CODES,
  RESUMABLE_CHAOS_CLOSE_CODES,
  type ChaosOptions,
  type FaultExpectation,
  type FaultKind,
  type InjectedFault,
  type LedgerViolation,
} from './chaos.js';
