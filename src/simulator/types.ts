/**
 * Public option, inspection and event types of the gateway simulator.
 * @packageDocumentation
 */
import type { Clock } from '../clock.js';
import type { SimRestOptions, SimRestRequest } from './rest.js';

/** Transport compression a client asked for with `compress=`. */
export type SimCompression = 'zlib-stream' | 'zstd-stream';

/** Options of {@link GatewaySimulator.start}. Durations are virtual milliseconds on the simulator's clock. */
export interface GatewaySimulatorOptions {
  /** Interface to listen on. Default `'127.0.0.1'`. */
  host?: string;
  /** TCP port; 0 (default) picks a free one. */
  port?: number;
  /** Accepted bot tokens. Default `['sim-token']`. A leading `Bot ` in IDENTIFY/RESUME is accepted. */
  tokens?: string[];
  /** The REST API (users, guilds, channels, messages, commands, interaction callbacks, rate limits): on by default;
   *  false serves only `GET /gateway` and `/gateway/bot`. See {@link SimRestOptions}. */
  rest?: boolean | SimRestOptions;
  /** Privileged intents the application has enabled (bit mask). Default: all three. Requesting others → 4014. */
  applicationIntents?: number;
  /** `heartbeat_interval` sent in HELLO. Default 41 250. */
  heartbeatInterval?: number;
  /** Clock for every simulator timer. Overrides `timeScale`. */
  clock?: Clock;
  /** Shorthand for `clock: scaledClock(timeScale)`. */
  timeScale?: number;
  /** Recommended shard count reported by `/gateway/bot`; also how generated guilds are spread. Default 1. */
  shards?: number;
  /** `max_concurrency`: number of identify buckets. Default 1. */
  maxConcurrency?: number;
  /** Session start budget. Default 1000 / 1000 / 86 400 000 ms. */
  sessionStartLimit?: { total?: number; remaining?: number; resetAfter?: number };
  /** What happens when the session start budget is exhausted: op 9 `false` (default) or the [SIM] "token reset"
   *  (every session closed with 4004, the token rejected from then on). */
  onSessionStartExhausted?: 'invalid-session' | 'reset-token';
  /** Guilds of the bot: a count to generate (spread over `shards`) or explicit ids. Default 4. */
  guilds?: number | string[];
  /** `member_count` of every guild (and size of the op 8 member list). Default 1200. */
  guildMemberCount?: number;
  /** Dispatches kept per session for RESUME replay. Default 10 000. */
  replayBufferSize?: number;
  /** How long a session stays resumable after its socket is lost. Default 180 000. */
  sessionTimeout?: number;
  /** Inbound payload limit per connection (every payload counts, heartbeats too). Default 120 / 60 000 / 'fixed'. */
  rateLimit?: { limit?: number; window?: number; mode?: 'fixed' | 'sliding' };
  /** Presence update (op 3) limit per connection; exceeding it closes with 4008. Default 5 / 20 000. */
  presenceLimit?: { limit?: number; window?: number } | false;
  /** Identify bucket window: one IDENTIFY per `shard_id % maxConcurrency` per window. Default 5000. */
  identifyWindow?: number;
  /** Split every zlib-stream message into websocket messages of at most N bytes (zstd-stream is never split). Default false. */
  frameSplit?: number | false;
  /** Close code when a client misses heartbeats (deadline = interval × 1.5 + slack). Default 4009; false disables. */
  missedHeartbeatClose?: number | false;
  /** Extra virtual ms added to the heartbeat deadline. Default 1000. */
  heartbeatSlack?: number;
  /** Large-bot sharding: `num_shards % multiple != 0` → 4010. */
  largeBotShardMultiple?: number;
  /** Guilds per shard above which IDENTIFY closes with 4011. Default 2500. */
  maxGuildsPerShard?: number;
  /** Virtual ms between GUILD_CREATEs after READY. Default 0. */
  guildCreateDelay?: number;
  /** Guild ids sent as GUILD_DELETE `{unavailable:true}` instead of GUILD_CREATE. */
  unavailableGuilds?: string[];
  /** Delay READY by this many virtual ms (outage simulation). Default 0. */
  readyDelay?: number;
  /** Send op 7 RECONNECT instead of HELLO to new connections. Default false. */
  helloOp7?: boolean;
  /** After op 7 the server closes the socket itself after this many virtual ms unless the client did. Default 5000; false = never. */
  reconnectCloseDelay?: number | false;
  /** Code for that close. Default 4000. */
  reconnectCloseCode?: number;
  /** Filter dispatches by the session's intents (§5.1) and strip message content (§5.2). Default true. */
  filterIntents?: boolean;
  /** Whether new connections ACK heartbeats. Default true. */
  ackHeartbeats?: boolean;
  /** Accepted `v` query values; anything else (or none) → 4012. Default [9, 10]. */
  versions?: number[];
  /** Seed of the traffic generator's PRNG. Default 1. */
  seed?: number;
}

/** Options that may be changed at run time with `setOptions`. */
export type SimRuntimeOptions = Omit<GatewaySimulatorOptions, 'host' | 'port' | 'clock' | 'timeScale' | 'guilds'>;

/** Fully-resolved options (internal). */
export interface ResolvedOptions {
  tokens: string[];
  applicationIntents: number;
  heartbeatInterval: number;
  shards: number;
  maxConcurrency: number;
  sessionStartLimit: { total: number; remaining: number; resetAfter: number };
  onSessionStartExhausted: 'invalid-session' | 'reset-token';
  guildMemberCount: number;
  replayBufferSize: number;
  sessionTimeout: number;
  rateLimit: { limit: number; window: number; mode: 'fixed' | 'sliding' };
  presenceLimit: { limit: number; window: number } | false;
  identifyWindow: number;
  frameSplit: number | false;
  missedHeartbeatClose: number | false;
  heartbeatSlack: number;
  largeBotShardMultiple: number | undefined;
  maxGuildsPerShard: number;
  guildCreateDelay: number;
  unavailableGuilds: string[];
  readyDelay: number;
  helloOp7: boolean;
  reconnectCloseDelay: number | false;
  reconnectCloseCode: number;
  filterIntents: boolean;
  ackHeartbeats: boolean;
  versions: number[];
  seed: number;
}

/** A live connection, as returned by `sim.connections()`. */
export interface SimConnectionInfo {
  /** Connection id (increasing from 1). */
  id: number;
  /** Shard from IDENTIFY (`[0, 1]` when none was sent) or from the resumed session; null before. */
  shardId: number | null;
  total: number | null;
  sessionId: string | null;
  compression: SimCompression | null;
  encoding: string;
  version: number | null;
  /** Request path, e.g. `/` or `/resume`. */
  path: string;
  /** The client connected through READY's `resume_gateway_url`. */
  resumeUrlUsed: boolean;
  /** Heartbeats are being ACKed. */
  acking: boolean;
  identified: boolean;
  resumed: boolean;
  /** Parsed query string. */
  query: Record<string, string>;
  /** Clock time the socket opened. */
  openedAt: number;
}

/** A session, as returned by `sim.sessions()`. */
export interface SimSessionInfo {
  sessionId: string;
  shardId: number;
  total: number;
  /** Latest sequence number assigned. */
  seq: number;
  connected: boolean;
  expired: boolean;
  intents: number;
  /** Dispatches currently held for replay. */
  buffered: number;
}

/** Counters, as returned by `sim.stats`. */
export interface SimStats {
  /** Websocket connections accepted. */
  connections: number;
  /** IDENTIFYs that started a session (bucket / budget refusals are not counted). */
  identifies: number;
  /** Successful RESUMEs. */
  resumes: number;
  /** RESUMEs answered with op 9 or 4007. */
  resumeFailures: number;
  /** op 9 payloads sent (any reason, fault API included). */
  invalidSessions: number;
  /** Closed connections by final close code (the server's code when the server closed; 1006 for terminate). */
  closesByCode: Record<string, number>;
  /** Dispatches assigned a sequence number (READY, RESUMED, replays not counted twice). */
  dispatches: number;
  /** Client websocket messages received (valid or not). */
  payloadsReceived: number;
  /** `session_start_limit.remaining` now. */
  sessionStartRemaining: number;
  /** Heartbeats received. */
  heartbeats: number;
  /** Bytes written to sockets (after compression). */
  bytesSent: number;
  /** Gateway messages written (a split message counts once). */
  messagesSent: number;
}

/** One client payload, as logged by `sim.received()`. Tokens are redacted. */
export interface ReceivedPayload {
  op: number;
  d: unknown;
  /** Clock time. */
  at: number;
  connectionId: number;
  shardId: number | null;
}

/** Event map of the simulator's EventEmitter. */
export interface SimulatorEvents {
  connection: [info: SimConnectionInfo];
  /** Every IDENTIFY that passed validation; `accepted` false when the identify bucket or session budget refused it (op 9). */
  identify: [ev: { shardId: number; total: number; intents: number; connectionId: number; payload: Record<string, unknown>; accepted: boolean; reason?: string }];
  resume: [ev: { sessionId: string; seq: number; shardId: number | null; ok: boolean; connectionId: number; reason?: string }];
  payload: [ev: { connectionId: number; shardId: number | null; op: number; d: unknown }];
  close: [ev: { connectionId: number; shardId: number | null; code: number; byClient: boolean; reason: string }];
  ready: [ev: { shardId: number; sessionId: string; connectionId: number }];
  heartbeat: [ev: { shardId: number | null; d: unknown; connectionId: number }];
  /** A REST call was answered (the same record as `sim.restRequests()`). */
  rest: [req: SimRestRequest];
  error: [err: Error];
}

/** Event weights for {@link GatewaySimulator.startTraffic}. */
export type TrafficMix = 'presences_on' | 'presences_off' | Record<string, number>;

/** Options of {@link GatewaySimulator.startTraffic}. */
export interface TrafficOptions {
  /** Shards to send to (default 'all'). Only shards with a live session receive events. */
  shards?: number[] | 'all';
  /** Events per virtual second, over all selected shards. */
  eventsPerSecond: number;
  /** Event mix; default 'presences_off'. Names without a fixture (and `other`) are spread over the fixtures. */
  mix?: TrafficMix;
}
