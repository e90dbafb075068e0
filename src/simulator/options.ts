/**
 * Defaults and run-time updates of simulator options.
 * @packageDocumentation
 */
import { PRIVILEGED_INTENTS } from './events.js';
import type { GatewaySimulatorOptions, ResolvedOptions, SimRuntimeOptions } from './types.js';

const positive = (name: string, v: number | undefined, fallback: number): number => {
  if (v === undefined) return fallback;
  if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`${name} must be a positive number, got ${v}`);
  return v;
};
const nonNegative = (name: string, v: number | undefined, fallback: number): number => {
  if (v === undefined) return fallback;
  if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`${name} must be a non-negative number, got ${v}`);
  return v;
};

/** Fill in defaults. */
export function resolveOptions(o: GatewaySimulatorOptions): ResolvedOptions {
  const r: ResolvedOptions = {
    tokens: ['sim-token'],
    applicationIntents: PRIVILEGED_INTENTS,
    heartbeatInterval: 41_250,
    shards: 1,
    maxConcurrency: 1,
    sessionStartLimit: { total: 1000, remaining: 1000, resetAfter: 86_400_000 },
    onSessionStartExhausted: 'invalid-session',
    guildMemberCount: 1200,
    replayBufferSize: 10_000,
    sessionTimeout: 180_000,
    rateLimit: { limit: 120, window: 60_000, mode: 'fixed' },
    presenceLimit: { limit: 5, window: 20_000 },
    identifyWindow: 5000,
    frameSplit: false,
    missedHeartbeatClose: 4009,
    heartbeatSlack: 1000,
    largeBotShardMultiple: undefined,
    maxGuildsPerShard: 2500,
    guildCreateDelay: 0,
    memberRequestWindow: 30_000,
    unavailableGuilds: [],
    readyDelay: 0,
    helloOp7: false,
    reconnectCloseDelay: 5000,
    reconnectCloseCode: 4000,
    filterIntents: true,
    ackHeartbeats: true,
    versions: [9, 10],
    seed: 1,
  };
  applyOptions(r, o);
  return r;
}

/** Merge `o` into `r` in place (validated). */
export function applyOptions(r: ResolvedOptions, o: SimRuntimeOptions): void {
  if (o.tokens !== undefined) r.tokens = o.tokens.map((t) => (t.startsWith('Bot ') ? t.slice(4) : t));
  if (o.applicationIntents !== undefined) r.applicationIntents = o.applicationIntents;
  r.heartbeatInterval = positive('heartbeatInterval', o.heartbeatInterval, r.heartbeatInterval);
  r.shards = Math.floor(positive('shards', o.shards, r.shards));
  r.maxConcurrency = Math.floor(positive('maxConcurrency', o.maxConcurrency, r.maxConcurrency));
  if (o.sessionStartLimit) {
    const l = o.sessionStartLimit;
    const total = nonNegative('sessionStartLimit.total', l.total, r.sessionStartLimit.total);
    r.sessionStartLimit = {
      total,
      remaining: nonNegative('sessionStartLimit.remaining', l.remaining, l.total ?? r.sessionStartLimit.remaining),
      resetAfter: nonNegative('sessionStartLimit.resetAfter', l.resetAfter, r.sessionStartLimit.resetAfter),
    };
  }
  if (o.onSessionStartExhausted !== undefined) r.onSessionStartExhausted = o.onSessionStartExhausted;
  r.guildMemberCount = Math.floor(nonNegative('guildMemberCount', o.guildMemberCount, r.guildMemberCount));
  r.replayBufferSize = Math.floor(positive('replayBufferSize', o.replayBufferSize, r.replayBufferSize));
  r.sessionTimeout = nonNegative('sessionTimeout', o.sessionTimeout, r.sessionTimeout);
  if (o.rateLimit) {
    r.rateLimit = {
      limit: Math.floor(positive('rateLimit.limit', o.rateLimit.limit, r.rateLimit.limit)),
      window: positive('rateLimit.window', o.rateLimit.window, r.rateLimit.window),
      mode: o.rateLimit.mode ?? r.rateLimit.mode,
    };
  }
  if (o.presenceLimit !== undefined) {
    const p = o.presenceLimit;
    r.presenceLimit = p === false ? false : { limit: Math.floor(positive('presenceLimit.limit', p.limit, 5)), window: positive('presenceLimit.window', p.window, 20_000) };
  }
  r.identifyWindow = nonNegative('identifyWindow', o.identifyWindow, r.identifyWindow);
  if (o.frameSplit !== undefined) r.frameSplit = o.frameSplit === false ? false : Math.floor(positive('frameSplit', o.frameSplit, 1));
  if (o.missedHeartbeatClose !== undefined) r.missedHeartbeatClose = o.missedHeartbeatClose;
  r.heartbeatSlack = nonNegative('heartbeatSlack', o.heartbeatSlack, r.heartbeatSlack);
  if (o.largeBotShardMultiple !== undefined) r.largeBotShardMultiple = o.largeBotShardMultiple;
  r.maxGuildsPerShard = nonNegative('maxGuildsPerShard', o.maxGuildsPerShard, r.maxGuildsPerShard);
  r.guildCreateDelay = nonNegative('guildCreateDelay', o.guildCreateDelay, r.guildCreateDelay);
  r.memberRequestWindow = nonNegative('memberRequestWindow', o.memberRequestWindow, r.memberRequestWindow);
  if (o.unavailableGuilds !== undefined) r.unavailableGuilds = [...o.unavailableGuilds];
  r.readyDelay = nonNegative('readyDelay', o.readyDelay, r.readyDelay);
  if (o.helloOp7 !== undefined) r.helloOp7 = o.helloOp7;
  if (o.reconnectCloseDelay !== undefined) r.reconnectCloseDelay = o.reconnectCloseDelay === false ? false : nonNegative('reconnectCloseDelay', o.reconnectCloseDelay, 5000);
  if (o.reconnectCloseCode !== undefined) r.reconnectCloseCode = o.reconnectCloseCode;
  if (o.filterIntents !== undefined) r.filterIntents = o.filterIntents;
  if (o.ackHeartbeats !== undefined) r.ackHeartbeats = o.ackHeartbeats;
  if (o.versions !== undefined) r.versions = [...o.versions];
  if (o.seed !== undefined) r.seed = o.seed;
}
