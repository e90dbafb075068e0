/**
 * Sessions and the protocol's reconnect decisions.
 *
 * A {@link Session} is plain data that can be saved (to disk, Redis, ...) and handed back to a new shard to
 * resume instead of identifying. {@link decide} is the one table-driven place where every close code and
 * reconnect trigger is turned into an action: resume, identify anew, or stop for good.
 */
import { GatewayError } from './errors.js';

/** What is needed to resume a gateway session. Plain, serialisable data. */
export interface Session {
  /** `session_id` from READY. */
  sessionId: string;
  /** Last dispatch sequence number received. */
  sequence: number;
  /** `resume_gateway_url` from READY (without query string). */
  resumeUrl: string;
}

/** What the shard does after a connection ends. */
export type ReconnectAction = 'resume' | 'identify' | 'fatal';

/** Why a connection ended. */
export type DisconnectCause =
  | { kind: 'close'; code: number; reason?: string }
  | { kind: 'reconnect-request' } // op 7
  | { kind: 'invalid-session'; resumable: boolean } // op 9
  | { kind: 'zombie' }
  | { kind: 'hello-timeout' }
  | { kind: 'ready-timeout' }
  | { kind: 'malformed' }
  /** No dispatch for `silentTimeout` ms although heartbeats were ACKed (`silentAction: 'resume'`). */
  | { kind: 'silent' };

/** One row of {@link CLOSE_CODES}. */
export interface CloseCodeRow {
  name: string;
  action: ReconnectAction;
  /** For fatal codes: what the user has to fix. */
  fix?: string;
}

/**
 * Gateway close codes (spec §3.2). "resume" rows fall back to IDENTIFY when no session exists or the
 * resume is rejected; 4001/4007/4009 start a new session; the rest are fatal and never retried.
 */
export const CLOSE_CODES: Readonly<Record<number, CloseCodeRow>> = {
  4000: { name: 'Unknown error', action: 'resume' },
  4001: { name: 'Unknown opcode', action: 'identify' },
  4002: { name: 'Decode error', action: 'resume' },
  4003: { name: 'Not authenticated', action: 'resume' },
  4004: {
    name: 'Authentication failed',
    action: 'fatal',
    fix: 'the token was rejected: check that DISCORD_TOKEN is the bot token from the Developer Portal (Bot tab) and has not been reset',
  },
  4005: { name: 'Already authenticated', action: 'resume' },
  4007: { name: 'Invalid seq', action: 'identify' },
  4008: { name: 'Rate limited', action: 'resume' },
  4009: { name: 'Session timed out', action: 'identify' },
  4010: {
    name: 'Invalid shard',
    action: 'fatal',
    fix: 'the shard id must be below the shard count, and the count must be valid for this bot (use the count GET /gateway/bot recommends; large bots need a multiple of their shard multiple)',
  },
  4011: {
    name: 'Sharding required',
    action: 'fatal',
    fix: 'this shard would hold more than 2500 guilds: raise the shard count (e.g. shards: "auto")',
  },
  4012: { name: 'Invalid API version', action: 'fatal', fix: 'use gateway API version 10' },
  4013: { name: 'Invalid intent(s)', action: 'fatal', fix: 'the intents value is not a valid bitfield: build it from the Intents constants' },
  4014: {
    name: 'Disallowed intent(s)',
    action: 'fatal',
    fix: 'a privileged intent (GuildMembers, GuildPresences or MessageContent) is not enabled for this application: enable it in the Developer Portal (Bot → Privileged Gateway Intents) or remove it from intents',
  },
};

/** Options that change a decision where the spec leaves a point open. */
export interface DecisionOptions {
  /** Try RESUME after close 4009 (the undocumented missed-heartbeat close) instead of IDENTIFY. Default false. */
  resumeOnSessionTimeout?: boolean;
}

/** The decision for one disconnect. */
export interface Decision {
  action: ReconnectAction;
  /** Wait a random 1–5 s before identifying (op 9 d:false). */
  identifyDelay: boolean;
  /** Close code to use when the client ends the socket itself (never 1000/1001 when the session should survive). */
  label: string;
  fix?: string;
}

/**
 * Turn a disconnect cause into an action. Pure: no I/O, no state, so every row is unit-tested.
 * The shard downgrades `resume` to `identify` when it has no session.
 */
export function decide(cause: DisconnectCause, opts: DecisionOptions = {}): Decision {
  switch (cause.kind) {
    case 'reconnect-request':
      return { action: 'resume', identifyDelay: false, label: 'op 7 reconnect' };
    case 'zombie':
      return { action: 'resume', identifyDelay: false, label: 'zombie connection (no heartbeat ACK)' };
    case 'hello-timeout':
      return { action: 'resume', identifyDelay: false, label: 'no HELLO in time' };
    case 'ready-timeout':
      return { action: 'resume', identifyDelay: false, label: 'no READY/RESUMED in time' };
    case 'malformed':
      return { action: 'resume', identifyDelay: false, label: 'malformed data from the gateway' };
    case 'silent':
      return { action: 'resume', identifyDelay: false, label: 'silent connection (heartbeats ACKed, no dispatch)' };
    case 'invalid-session':
      return cause.resumable
        ? { action: 'resume', identifyDelay: false, label: 'op 9 invalid session (resumable)' }
        : { action: 'identify', identifyDelay: true, label: 'op 9 invalid session (not resumable)' };
    case 'close': {
      const row = CLOSE_CODES[cause.code];
      const label = row ? `close ${cause.code} ${row.name}` : `close ${cause.code}`;
      if (!row) return { action: 'resume', identifyDelay: false, label }; // 1000/1001 from the server, 1006, others
      if (cause.code === 4009 && opts.resumeOnSessionTimeout) return { action: 'resume', identifyDelay: false, label };
      return { action: row.action, identifyDelay: false, label, ...(row.fix ? { fix: row.fix } : {}) };
    }
  }
}

/** The error a `fatal` decision stops shard `shardId` with: the close code, its name, and what to fix. */
export function fatalCloseError(shardId: number, cause: DisconnectCause, decision: Decision): GatewayError {
  const closeCode = cause.kind === 'close' ? cause.code : null;
  const name = closeCode !== null ? (CLOSE_CODES[closeCode]?.name ?? '') : '';
  return new GatewayError(`CLOSE_${closeCode}`, `shard ${shardId}: gateway closed the session with ${closeCode} ${name}: ${decision.fix ?? 'not retried'}`, {
    closeCode,
    shardId,
  });
}

/** Close code the client uses to end a socket while keeping its session resumable. */
export const RESUMABLE_CLOSE_CODE = 4000;

/** True for a plain object with the three session fields of the right types. */
export function isSession(value: unknown): value is Session {
  if (typeof value !== 'object' || value === null) return false;
  const s = value as Record<string, unknown>;
  return typeof s.sessionId === 'string' && Number.isInteger(s.sequence) && (s.sequence as number) >= 0 && typeof s.resumeUrl === 'string';
}
