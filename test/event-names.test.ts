/**
 * The `events` option's names: the known set, the check at construction (Shard, Cluster, worker options), the
 * suggestion, the `extraEvents` escape hatch, and the typing of the dispatch union (known types narrow to typed
 * data; unknown ones are an explicit variant). Pure: no socket, no clock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayDispatchEvents } from 'discord-api-types/v10';
import { Cluster } from '../src/cluster.js';
import { ShardlineError, UnknownEventError } from '../src/errors.js';
import { closestEventName, editDistance, EXTRA_DISPATCH_TYPES, isKnownDispatch, isKnownEventName, KNOWN_EVENT_NAMES, resolveEvents, TYPED_AT_RELEASE, type EventName } from '../src/event-names.js';
import type { DispatchEvent, UnknownDispatchEvent } from '../src/events.js';
import { Shard, type ShardOptions } from '../src/shard.js';
import { cloneableShardOptions } from '../src/worker/host.js';
import { World } from './helpers/core-harness.js';
import { TOKEN } from './helpers/setup.js';

const unknownEvent = (name: string, suggestion: string | null) => (err: unknown) => {
  assert.ok(err instanceof UnknownEventError, String(err));
  assert.ok(err instanceof TypeError);
  assert.equal(err.code, 'UNKNOWN_EVENT');
  assert.equal(err.name, 'UnknownEventError');
  assert.equal(err.event, name);
  assert.equal(err.suggestion, suggestion);
  assert.ok(err.message.includes(name), err.message);
  if (suggestion) assert.ok(err.message.includes(`did you mean ${suggestion}?`), err.message);
  return true;
};

test('the known set: every dispatch type discord-api-types knows, plus the ones the gateway sends that it may lack', () => {
  for (const t of Object.values(GatewayDispatchEvents)) assert.ok(KNOWN_EVENT_NAMES.has(t), t);
  // the list kept in the source (so discord-api-types is not loaded at run time) covers the installed version:
  // when this fails after an upgrade, add the new names to TYPED_AT_RELEASE (they are accepted meanwhile anyway)
  assert.deepEqual(
    Object.values(GatewayDispatchEvents).filter((t) => !TYPED_AT_RELEASE.includes(t)),
    [],
  );
  for (const t of ['READY_SUPPLEMENTAL', 'RATE_LIMITED', ...EXTRA_DISPATCH_TYPES]) assert.ok(isKnownEventName(t), t);
  assert.equal(isKnownEventName('MESSAGE_CRAETE'), false);
  assert.equal(isKnownEventName('message_create'), false);
});

test('a typo throws at construction, a TypeError with the code, naming the nearest valid name', () => {
  assert.throws(() => new Shard({ token: TOKEN, intents: 1, events: ['MESSAGE_CRAETE' as EventName] }), unknownEvent('MESSAGE_CRAETE', 'MESSAGE_CREATE'));
  assert.throws(() => new Cluster({ token: TOKEN, intents: 1, events: ['GUILD_CREATE', 'GUILD_MEMBER_ADDD' as EventName] }), unknownEvent('GUILD_MEMBER_ADDD', 'GUILD_MEMBER_ADD'));
  assert.throws(() => resolveEvents(['message_create']), unknownEvent('message_create', 'MESSAGE_CREATE'));
  assert.throws(() => resolveEvents(['TOTALLY_UNRELATED_THING_XYZ']), unknownEvent('TOTALLY_UNRELATED_THING_XYZ', null));
  // the wrong shape is refused too, not iterated character by character
  assert.throws(
    () => resolveEvents('MESSAGE_CREATE' as unknown as string[]),
    (e: unknown) => e instanceof UnknownEventError && /array/.test(e.message),
  );
  // the error is not a ShardlineError (it is a TypeError) but carries the same kind of stable code
  assert.ok(!(new UnknownEventError('X', null, 'x') instanceof ShardlineError));
});

test('closestEventName / editDistance: swaps count one; far names get no guess', () => {
  assert.equal(editDistance('MESSAGE_CRAETE', 'MESSAGE_CREATE'), 1);
  assert.equal(editDistance('abc', 'abc'), 0);
  assert.equal(editDistance('kitten', 'sitting'), 3);
  assert.equal(editDistance('abc', 'abcdefgh', 2), Infinity);
  assert.equal(closestEventName('MESAGE_CREATE'), 'MESSAGE_CREATE');
  assert.equal(closestEventName('guild-create'), 'GUILD_CREATE');
  assert.equal(closestEventName('READY_SUPLEMENTAL'), 'READY_SUPPLEMENTAL');
  assert.equal(closestEventName('XYZ'), null);
});

test('extraEvents: a name Discord adds later is accepted when marked, checked only for its form', () => {
  const set = resolveEvents(['MESSAGE_CREATE'], ['GUILD_SOMETHING_NEW']);
  assert.deepEqual([...(set ?? [])].sort(), ['GUILD_SOMETHING_NEW', 'MESSAGE_CREATE']);
  // listed in both: fine
  assert.ok(resolveEvents(['MESSAGE_CREATE', 'GUILD_SOMETHING_NEW' as EventName], ['GUILD_SOMETHING_NEW'])?.has('GUILD_SOMETHING_NEW'));
  assert.throws(() => resolveEvents(['MESSAGE_CREATE'], ['not a name']), unknownEvent('not a name', null));
  assert.equal(resolveEvents(undefined, ['GUILD_SOMETHING_NEW']), null); // no filter: every type is delivered anyway
  assert.doesNotThrow(() => new Shard({ token: TOKEN, intents: 1, events: ['MESSAGE_CREATE'], extraEvents: ['GUILD_SOMETHING_NEW'] }));
  assert.doesNotThrow(() => new Cluster({ token: TOKEN, intents: 1, events: ['MESSAGE_CREATE'], extraEvents: ['GUILD_SOMETHING_NEW'] }));
});

test('a checked filter is shared, not copied; worker options carry events and extraEvents as plain arrays that pass the check again', () => {
  const set = resolveEvents(['MESSAGE_CREATE'], ['GUILD_SOMETHING_NEW'])!;
  assert.equal(resolveEvents(set as ReadonlySet<EventName>), set);
  const cloned = cloneableShardOptions({ token: TOKEN, intents: 1, events: set as ReadonlySet<EventName>, extraEvents: new Set(['GUILD_SOMETHING_NEW']) });
  assert.deepEqual(cloned.events, ['MESSAGE_CREATE', 'GUILD_SOMETHING_NEW']);
  assert.deepEqual(cloned.extraEvents, ['GUILD_SOMETHING_NEW']);
  assert.doesNotThrow(() => new Shard(cloned as ShardOptions));
  // an unchecked Set of the same names (no extraEvents) is checked, and refused
  assert.throws(() => new Shard({ token: TOKEN, intents: 1, events: new Set(['MESSAGE_CREATE', 'GUILD_SOMETHING_NEW']) as Set<EventName> }), unknownEvent('GUILD_SOMETHING_NEW', null));
});

test('types: events takes only known names; narrowing on a known type keeps typed data; unknown types are their own variant', () => {
  // Compile-time checks (tsc runs over the tests); the body never needs to run.
  const typed = (e: DispatchEvent): string => {
    if (e.type === 'MESSAGE_CREATE') return e.data.content; // typed: APIMessage
    if (e.type === 'GUILD_CREATE') return e.data.id;
    if (!isKnownDispatch(e)) {
      const unknown: UnknownDispatchEvent = e; // READY_SUPPLEMENTAL, or a type Discord adds later
      return `${unknown.type}:${typeof unknown.data}`;
    }
    return e.type;
  };
  assert.equal(typed({ shardId: 0, type: 'READY_SUPPLEMENTAL', sequence: 1, data: {} as never }), 'READY_SUPPLEMENTAL:object');
  assert.equal(isKnownDispatch({ shardId: 0, type: 'MESSAGE_CREATE', sequence: 1, data: {} } as DispatchEvent), true);
  const ok: ShardOptions['events'] = ['MESSAGE_CREATE', 'READY_SUPPLEMENTAL', 'RATE_LIMITED'];
  // @ts-expect-error a typo is a type error
  const typo: ShardOptions['events'] = ['MESSAGE_CRAETE'];
  assert.ok(ok && typo);
});

test('a bad per-shard events override (shardOptions) is refused on the main thread in worker mode too, before any thread starts', async () => {
  for (const workers of [0, 1]) {
    const cluster = new Cluster({
      token: TOKEN,
      intents: 1,
      shards: 1,
      gatewayUrl: 'ws://127.0.0.1:9',
      workers,
      shardOptions: () => ({ events: ['GUILD_CRATE' as EventName] }),
    });
    await assert.rejects(cluster.connect(), unknownEvent('GUILD_CRATE', 'GUILD_CREATE'));
    await cluster.close();
  }
});

test('core, virtual time: an unknown dispatch type is delivered as { type, data } (no filter, or listed in extraEvents), never an error', () => {
  const all = World.ready();
  all.dispatch('READY_SUPPLEMENTAL', { guilds: [], merged_members: [] });
  all.dispatch('SOMETHING_DISCORD_ADDS_NEXT_YEAR', { x: 1 });
  assert.deepEqual(
    all.effectsOf('dispatch').map((e) => [e.event.type, e.event.data as unknown]),
    [
      ['READY', all.effectsOf('dispatch')[0]!.event.data],
      ['READY_SUPPLEMENTAL', { guilds: [], merged_members: [] }],
      ['SOMETHING_DISCORD_ADDS_NEXT_YEAR', { x: 1 }],
    ],
  );
  assert.deepEqual(
    all.events.filter((e) => e.kind === 'error' || e.kind === 'disconnected'),
    [],
  );

  // with a filter: the listed new type is delivered, another unknown one skipped unparsed like any unwanted type
  const filtered = World.ready({ core: { events: resolveEvents(['MESSAGE_CREATE'], ['SOMETHING_NEW']) } });
  filtered.dispatch('SOMETHING_NEW', { y: 2 });
  filtered.dispatch('SOMETHING_ELSE_NEW', { z: 3 });
  assert.deepEqual(
    filtered.effectsOf('dispatch').map((e) => e.event.type),
    ['SOMETHING_NEW'],
  );
  assert.equal(filtered.core.counters.filtered, 1); // SOMETHING_ELSE_NEW, skipped unparsed (READY is parsed anyway)
  assert.deepEqual(filtered.violations, []);
});
