/**
 * What a shard writes, checked against the gateway's rules before it is queued: the API version and compression in
 * the connect URL, a command's serialisation and its 4096-byte limit, and IDENTIFY's data and size (the token
 * counted by its length only; the driver adds it). Pure functions, no state.
 *
 * @packageDocumentation
 */
import { SendError, ShardlineError } from './errors.js';
import type { PresenceData } from './events.js';
import type { ShardCoreOptions } from './shard-core-io.js';

/** Gateway API version spoken by shardline. */
export const API_VERSION = 10;
/** Largest payload the gateway accepts from a client, in bytes. */
export const MAX_PAYLOAD_BYTES = 4096;

/**
 * The URL to connect to: `resumeUrl` when given and valid, else the base `gatewayUrl` (a `resume_gateway_url` that
 * is not a URL resumes through the base URL), with the version, encoding and compression set. Null when the base
 * URL is not a URL either.
 */
export function connectUrl(resumeUrl: string | null, gatewayUrl: string, compression: ShardCoreOptions['compression']): URL | null {
  let url: URL;
  try {
    url = new URL(resumeUrl ?? gatewayUrl);
  } catch {
    try {
      url = new URL(gatewayUrl);
    } catch {
      return null;
    }
  }
  url.searchParams.set('v', String(API_VERSION));
  url.searchParams.set('encoding', 'json');
  if (compression) url.searchParams.set('compress', compression);
  else url.searchParams.delete('compress');
  return url;
}

/** Command `{ op, d }` serialised, or the error that rejects it (not serialisable, or over {@link MAX_PAYLOAD_BYTES}). */
export function encodeCommand(op: number, d: unknown): string | Error {
  let data: string;
  try {
    data = JSON.stringify({ op, d });
  } catch (err) {
    return new ShardlineError('INVALID_PAYLOAD', `op ${op} payload cannot be serialised: ${(err as Error).message}`);
  }
  const bytes = Buffer.byteLength(data);
  if (bytes > MAX_PAYLOAD_BYTES) return new SendError('PAYLOAD_TOO_LARGE', `op ${op} payload is ${bytes} bytes; the gateway accepts at most ${MAX_PAYLOAD_BYTES}`);
  return data;
}

/** IDENTIFY's `d` without the token (the driver adds it). */
export function identifyData(o: ShardCoreOptions, presence: PresenceData | undefined): Record<string, unknown> {
  const d: Record<string, unknown> = {
    intents: o.intents,
    shard: [o.id, o.total],
    properties: o.properties,
    large_threshold: o.largeThreshold,
    compress: false,
  };
  if (presence) d.presence = presence;
  return d;
}

/** Bytes of the IDENTIFY this presence would produce (token included by length). */
export function identifySize(o: ShardCoreOptions, presence: PresenceData | undefined): number {
  return Buffer.byteLength(JSON.stringify({ op: 2, d: { token: '', ...identifyData(o, presence) } })) + o.tokenLength;
}
