/**
 * The dispatch names shardline knows, and the validation of the `events` / `extraEvents` options: a typo
 * (`MESSAGE_CRAETE`) throws an {@link UnknownEventError} at construction instead of silently delivering nothing.
 * @packageDocumentation
 */
import { createRequire } from 'node:module';
import type { GatewayDispatchEvents } from 'discord-api-types/v10';
import { UnknownEventError } from './errors.js';
import type { DispatchEvent, KnownDispatchEvent, UnknownDispatchEvent } from './events.js';

/**
 * Dispatch types the gateway sends that `discord-api-types` may not list (yet, or ever): accepted in `events`
 * like the ones it lists. `RATE_LIMITED` is in recent versions; kept here for older ones.
 */
export const EXTRA_DISPATCH_TYPES = [
  'READY_SUPPLEMENTAL',
  'RATE_LIMITED',
  'GUILD_APPLICATION_COMMAND_INDEX_UPDATE',
  'GUILD_JOIN_REQUEST_CREATE',
  'GUILD_JOIN_REQUEST_UPDATE',
  'GUILD_JOIN_REQUEST_DELETE',
] as const;

/**
 * A dispatch name the `events` option accepts: every type `discord-api-types` knows (as a plain string, e.g.
 * `'MESSAGE_CREATE'`) plus {@link EXTRA_DISPATCH_TYPES}. A type Discord adds after this release goes in
 * `extraEvents` instead.
 */
export type EventName = `${GatewayDispatchEvents}` | (typeof EXTRA_DISPATCH_TYPES)[number];

/**
 * `GatewayDispatchEvents` of `discord-api-types` 0.38.57, as plain strings: loading that package at run time costs
 * more than the rest of shardline, so it is loaded only when a name is missing here (a newer version may know more;
 * see `typedNames`). test/event-names.test.ts fails when the installed version adds a name, to update this list.
 */
export const TYPED_AT_RELEASE: readonly string[] = [
  'APPLICATION_COMMAND_PERMISSIONS_UPDATE',
  'AUTO_MODERATION_ACTION_EXECUTION',
  'AUTO_MODERATION_RULE_CREATE',
  'AUTO_MODERATION_RULE_DELETE',
  'AUTO_MODERATION_RULE_UPDATE',
  'CHANNEL_CREATE',
  'CHANNEL_DELETE',
  'CHANNEL_INFO',
  'CHANNEL_PINS_UPDATE',
  'CHANNEL_UPDATE',
  'ENTITLEMENT_CREATE',
  'ENTITLEMENT_DELETE',
  'ENTITLEMENT_UPDATE',
  'GUILD_AUDIT_LOG_ENTRY_CREATE',
  'GUILD_BAN_ADD',
  'GUILD_BAN_REMOVE',
  'GUILD_CREATE',
  'GUILD_DELETE',
  'GUILD_EMOJIS_UPDATE',
  'GUILD_INTEGRATIONS_UPDATE',
  'GUILD_MEMBER_ADD',
  'GUILD_MEMBER_REMOVE',
  'GUILD_MEMBERS_CHUNK',
  'GUILD_MEMBER_UPDATE',
  'GUILD_ROLE_CREATE',
  'GUILD_ROLE_DELETE',
  'GUILD_ROLE_UPDATE',
  'GUILD_SCHEDULED_EVENT_CREATE',
  'GUILD_SCHEDULED_EVENT_DELETE',
  'GUILD_SCHEDULED_EVENT_UPDATE',
  'GUILD_SCHEDULED_EVENT_USER_ADD',
  'GUILD_SCHEDULED_EVENT_USER_REMOVE',
  'GUILD_SOUNDBOARD_SOUND_CREATE',
  'GUILD_SOUNDBOARD_SOUND_DELETE',
  'GUILD_SOUNDBOARD_SOUNDS_UPDATE',
  'GUILD_SOUNDBOARD_SOUND_UPDATE',
  'SOUNDBOARD_SOUNDS',
  'GUILD_STICKERS_UPDATE',
  'GUILD_UPDATE',
  'INTEGRATION_CREATE',
  'INTEGRATION_DELETE',
  'INTEGRATION_UPDATE',
  'INTERACTION_CREATE',
  'INVITE_CREATE',
  'INVITE_DELETE',
  'MESSAGE_CREATE',
  'MESSAGE_DELETE',
  'MESSAGE_DELETE_BULK',
  'MESSAGE_POLL_VOTE_ADD',
  'MESSAGE_POLL_VOTE_REMOVE',
  'MESSAGE_REACTION_ADD',
  'MESSAGE_REACTION_REMOVE',
  'MESSAGE_REACTION_REMOVE_ALL',
  'MESSAGE_REACTION_REMOVE_EMOJI',
  'MESSAGE_UPDATE',
  'PRESENCE_UPDATE',
  'RATE_LIMITED',
  'READY',
  'RESUMED',
  'STAGE_INSTANCE_CREATE',
  'STAGE_INSTANCE_DELETE',
  'STAGE_INSTANCE_UPDATE',
  'SUBSCRIPTION_CREATE',
  'SUBSCRIPTION_DELETE',
  'SUBSCRIPTION_UPDATE',
  'THREAD_CREATE',
  'THREAD_DELETE',
  'THREAD_LIST_SYNC',
  'THREAD_MEMBERS_UPDATE',
  'THREAD_MEMBER_UPDATE',
  'THREAD_UPDATE',
  'TYPING_START',
  'USER_UPDATE',
  'VOICE_CHANNEL_EFFECT_SEND',
  'VOICE_CHANNEL_START_TIME_UPDATE',
  'VOICE_CHANNEL_STATUS_UPDATE',
  'VOICE_SERVER_UPDATE',
  'VOICE_STATE_UPDATE',
  'WEBHOOKS_UPDATE',
];

const typed = new Set<string>(TYPED_AT_RELEASE);
const known = new Set<string>([...TYPED_AT_RELEASE, ...EXTRA_DISPATCH_TYPES]);
let typedLoaded = false;

/** Every dispatch type `discord-api-types` knows: the list above, completed once from the installed package on a miss. */
function typedNames(name: string): ReadonlySet<string> {
  if (!typedLoaded && !typed.has(name)) {
    typedLoaded = true;
    try {
      const gateway = createRequire(import.meta.url)('discord-api-types/gateway/v10') as { GatewayDispatchEvents: Record<string, string> };
      for (const t of Object.values(gateway.GatewayDispatchEvents)) {
        typed.add(t);
        known.add(t);
      }
    } catch {
      // not resolvable (e.g. bundled without it): the list above is what this release knows
    }
  }
  return typed;
}

/** Every name {@link EventName} admits, at run time (completed from the installed `discord-api-types` once a name is missing). */
export const KNOWN_EVENT_NAMES: ReadonlySet<string> = known;

/** Whether `type` is a dispatch name this version knows (see {@link EventName}). */
export function isKnownEventName(type: string): type is EventName {
  if (!known.has(type)) typedNames(type);
  return known.has(type);
}

/**
 * Whether a dispatch is of a type `discord-api-types` knows (its `data` is typed by `type`); false for the
 * {@link UnknownDispatchEvent} variant (`READY_SUPPLEMENTAL`, a type Discord added after this release).
 *
 * @example
 * ```ts
 * shard.on('dispatch', (e) => {
 *   if (!isKnownDispatch(e)) {
 *     const unknown: UnknownDispatchEvent = e;
 *     console.log('untyped dispatch', unknown.type, unknown.data);
 *   }
 * });
 * ```
 */
export function isKnownDispatch(e: DispatchEvent): e is KnownDispatchEvent {
  return typedNames(e.type).has(e.type);
}

/** The form of a dispatch name: what `extraEvents` accepts without knowing the name. */
const DISPATCH_NAME = /^[A-Z][A-Z0-9_]*$/;

/** Filters built here, already checked: a shard given one of them (by its cluster) shares it instead of checking again. */
const checked = new WeakSet<ReadonlySet<string>>();

/**
 * Check the `events` and `extraEvents` options and build the filter the shards share (null: every type).
 * Throws an {@link UnknownEventError} for a name of `events` this version does not know (naming the closest known
 * one) and for a name of `extraEvents` that is not UPPER_SNAKE_CASE.
 */
export function resolveEvents(events: Iterable<string> | null | undefined, extraEvents?: Iterable<string> | null): ReadonlySet<string> | null {
  if (events == null) {
    if (extraEvents != null) for (const name of iterate(extraEvents, 'extraEvents')) checkForm(name);
    return null;
  }
  if (events instanceof Set && checked.has(events)) return events;
  const extra = new Set<string>();
  if (extraEvents != null) {
    for (const name of iterate(extraEvents, 'extraEvents')) extra.add(checkForm(name));
  }
  const out = new Set<string>();
  for (const name of iterate(events, 'events')) {
    if (typeof name !== 'string') throw new UnknownEventError(String(name), null, `events must hold dispatch names (strings), got ${typeof name}`);
    if (!isKnownEventName(name) && !extra.has(name)) {
      const suggestion = closestEventName(name);
      throw new UnknownEventError(
        name,
        suggestion,
        `events: ${JSON.stringify(name)} is not a dispatch type${suggestion ? `; did you mean ${suggestion}?` : ''} (a type Discord added after this release can be listed in extraEvents)`,
      );
    }
    out.add(name);
  }
  for (const name of extra) out.add(name);
  checked.add(out);
  return out;
}

function checkForm(name: unknown): string {
  if (typeof name !== 'string' || !DISPATCH_NAME.test(name)) {
    throw new UnknownEventError(String(name), null, `extraEvents: ${JSON.stringify(name)} is not a dispatch name (UPPER_SNAKE_CASE, e.g. GUILD_SOMETHING_NEW)`);
  }
  return name;
}

function iterate(value: Iterable<string>, option: string): Iterable<string> {
  if (typeof value === 'string' || typeof (value as { [Symbol.iterator]?: unknown })?.[Symbol.iterator] !== 'function') {
    throw new UnknownEventError(String(value), null, `${option} must be an array (or other iterable) of dispatch names, e.g. ['MESSAGE_CREATE'], got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The known dispatch name closest to `name` (edit distance, adjacent swaps counting one), or null when none is near. */
export function closestEventName(name: string): string | null {
  const wanted = name.toUpperCase().replace(/[\s-]/g, '_');
  if (isKnownEventName(wanted)) return wanted;
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(wanted, candidate, bestDistance);
    if (d < bestDistance || (d === bestDistance && best !== null && candidate < best)) {
      best = candidate;
      bestDistance = d;
    }
  }
  // Far from everything (more than a third of the name differs): a guess would mislead.
  return best !== null && bestDistance <= Math.max(2, Math.ceil(wanted.length / 3)) ? best : null;
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions); stops early past `limit`. */
export function editDistance(a: string, b: string, limit = Infinity): number {
  if (Math.abs(a.length - b.length) > limit) return Infinity;
  let prev2: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, prev2[j - 2]! + 1);
      cur.push(v);
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > limit) return Infinity;
    prev2 = prev;
    prev = cur;
  }
  return prev[b.length]!;
}
