/**
 * shardline — a Discord gateway client for Node.js.
 *
 * @example
 * ```ts
 * import { Shard, Intents } from 'shardline';
 * const shard = new Shard({ token: process.env.DISCORD_TOKEN!, intents: Intents.Guilds | Intents.GuildMessages });
 * shard.on('dispatch', (e) => console.log(e.type));
 * await shard.connect();
 * ```
 * @packageDocumentation
 */
export { Shard, API_VERSION, DEFAULT_GATEWAY_URL, MAX_PAYLOAD_BYTES, type ShardOptions, type ShardConnectOptions, type MemberRequestOptions } from './shard.js';
export { Intents, PrivilegedIntents, AllIntents, AllNonPrivilegedIntents, intentsForEvent, intentsForEvents, intentNames, type IntentName } from './intents.js';
export { ShardlineError, GatewayError, HandlerError, DecodeError, InflateError, SendError, RateLimitedError, GatewayUnreachableError, UnknownEventError } from './errors.js';
export { EXTRA_DISPATCH_TYPES, KNOWN_EVENT_NAMES, isKnownDispatch, isKnownEventName, type EventName } from './event-names.js';
export { CLOSE_CODES, isSession, RESUMABLE_CLOSE_CODE, type Session, type ReconnectAction, type DisconnectCause, type CloseCodeRow } from './session.js';
export { TRANSITIONS, type ShardState } from './state.js';
export { LocalIdentifyQueue, type IdentifyQueue, type LocalIdentifyQueueOptions } from './queue.js';
export { scaledClock, systemClock, sleep, type Clock, type TimerHandle } from './clock.js';
export type { BackoffOptions } from './backoff.js';
export { MemberRequest } from './members.js';
export { createInflater, type Inflater, type InflaterOptions, type InflaterStats, type TransportCompression } from './inflate.js';
export { scanHeader, parsePayload, type FrameHeader, type GatewayPayload } from './decode.js';
export type { TypedEmitter, Listener } from './emitter.js';
export type {
  DispatchEvent,
  KnownDispatchEvent,
  DispatchType,
  UnknownDispatchEvent,
  GuildMembersChunk,
  ReadyData,
  DebugEvent,
  StateChange,
  DisconnectedEvent,
  ShardEventMap,
  PresenceData,
  ShardEvent,
  StateCause,
  DisconnectKind,
  RateLimitedEvent,
  GuildsReadyEvent,
  SilentEvent,
} from './events.js';
export type { ShardCounters } from './shard-core.js';
export { Cluster, ClusterConnectError, CLUSTER_IDENTIFY_WINDOW, DEFAULT_API_URL, type ClusterOptions, type WorkerRestartOptions } from './cluster.js';
export type { GuildMembersQuery, NoncedMemberRequest, RemoteCommands, VoiceStateOptions } from './cluster-commands.js';
export type { ShardStatus, ShardIo, ClusterProgress, ClusterReadyEvent, ClusterEventMap, ClusterShard, GatewayCommand, ClusterConnectOptions } from './cluster-status.js';
export type { SessionStartBudget, ApiSessionStartLimit, IdentifyBudgetEvent } from './queue.js';
export type { IdentifyStatus, IdentifyTurnEvent, WorkerExitEvent } from './cluster-status.js';
export { attachMetrics, type MetricsOptions, type MetricsRegistry, type ClusterMetrics } from './metrics.js';
export { disconnectCause, type LastDisconnect } from './cluster-tracker.js';
export {
  serveStatus,
  statusHandler,
  type StatusPage,
  type StatusServer,
  type StatusPageOptions,
  type StatusSnapshot,
  type StatusShard,
} from './status-page/server.js';
export type { StatusSection, StatusValue } from './status-page/sections.js';
export type { HttpEndpoint, ListenOptions, RequestHandler } from './status-page/http.js';
export type { Readiness, ReadinessMode } from './status-page/probes.js';
export { defineHandler, type Handler, type HandlerContext, type HandlerScope, type HandlerLogger, type HandlerSource, type HandlerMessageEvent, type HandlerLogEvent } from './handler/define.js';
export { routeLogs, type Logger, type LogLevel, type RouteLogsOptions } from './logging.js';
export type { ReshardOptions, ReshardResult, ReshardEvent, AutoReshardOptions } from './reshard.js';
