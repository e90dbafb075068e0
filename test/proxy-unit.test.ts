/**
 * The pure parts of the proxy, without sockets: the replay ring, the guild cache, intents filtering, the client
 * session machine (identify/resume/heartbeat/limits/close codes) and the dispatch splice.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createInflater } from '../src/inflate.js';
import { Intents } from '../src/intents.js';
import { GuildCache } from '../src/proxy/cache.js';
import { createCompressor, zstdSupported } from '../src/proxy/compress.js';
import { ClientSession, newSessionState, type ClientEffect, type ClientSessionOptions } from '../src/proxy/client-session.js';
import { ContentStripper, stripsContent, wants } from '../src/proxy/filter.js';
import { proxySettings } from '../src/proxy/options.js';
import { spliceD } from '../src/proxy/gateway-proxy.js';
import { ReplayRing } from '../src/proxy/replay.js';
import { resumePos } from '../src/proxy/resume-map.js';
import { guildCreates, readyData } from '../src/proxy/synth.js';
import { buildGuildCreate } from '../src/simulator/fixtures.js';

test('ReplayRing: entries after a position, and null once they have been overwritten', () => {
  const ring = new ReplayRing(3);
  assert.deepEqual(ring.after(0), []);
  for (const t of ['A', 'B', 'C', 'D']) ring.push(t, `{"x":"${t}"}`);
  assert.equal(ring.newest, 4);
  assert.equal(ring.oldest, 2);
  assert.equal(ring.size, 3);
  assert.deepEqual(
    ring.after(2)!.map((e) => [e.pos, e.type]),
    [
      [3, 'C'],
      [4, 'D'],
    ],
  );
  assert.deepEqual(ring.after(1)!.length, 3);
  assert.equal(ring.after(0), null, 'position 1 is gone');
  assert.deepEqual(ring.after(4), []);
  assert.equal(ring.after(5), null, 'beyond the newest');
});

test('GuildCache: GUILD_CREATE round-trips and follows channel, role, member, presence and voice updates', () => {
  const cache = new GuildCache();
  const g = buildGuildCreate('100000000000000001', 0, { memberCount: 3, presences: true }) as Record<string, unknown>;
  cache.apply('GUILD_CREATE', g);
  const back = JSON.parse(cache.build('100000000000000001')!) as Record<string, unknown>;
  for (const k of ['id', 'name', 'roles', 'channels', 'members', 'presences', 'emojis']) assert.deepEqual(back[k], g[k], k);
  assert.equal(back.member_count, g.member_count);
  cache.apply('CHANNEL_CREATE', { id: '5', type: 0, name: 'new', guild_id: '100000000000000001' });
  cache.apply('GUILD_ROLE_DELETE', { guild_id: '100000000000000001', role_id: (g.roles as { id: string }[])[0]!.id });
  cache.apply('GUILD_MEMBER_ADD', { guild_id: '100000000000000001', user: { id: '77', username: 'x' }, roles: [], joined_at: 'now' });
  cache.apply('GUILD_MEMBER_UPDATE', { guild_id: '100000000000000001', user: { id: '77', username: 'y' }, roles: ['1'] });
  cache.apply('VOICE_STATE_UPDATE', { guild_id: '100000000000000001', user_id: '77', channel_id: '5', session_id: 's' });
  cache.apply('GUILD_UPDATE', { id: '100000000000000001', name: 'renamed' });
  const after = JSON.parse(cache.build('100000000000000001', { presences: false })!) as Record<string, unknown>;
  assert.equal(after.name, 'renamed');
  assert.ok((after.channels as { name: string }[]).some((c) => c.name === 'new'));
  assert.equal((after.roles as unknown[]).length, (g.roles as unknown[]).length - 1);
  const m = (after.members as { user: { id: string; username: string }; roles: string[]; joined_at: string }[]).find((x) => x.user.id === '77')!;
  assert.deepEqual([m.user.username, m.roles, m.joined_at], ['y', ['1'], 'now'], 'an update merges into the member');
  assert.equal(after.member_count, (g.member_count as number) + 1);
  assert.deepEqual(after.presences, [], 'no presences without asking');
  const voice = ((g.voice_states as unknown[] | undefined) ?? []).length;
  assert.equal((after.voice_states as unknown[]).length, voice + 1);
  cache.apply('VOICE_STATE_UPDATE', { guild_id: '100000000000000001', user_id: '77', channel_id: null });
  cache.apply('GUILD_MEMBER_REMOVE', { guild_id: '100000000000000001', user: { id: '77' } });
  const last = JSON.parse(cache.build('100000000000000001')!) as Record<string, unknown>;
  assert.equal((last.voice_states as unknown[]).length, voice);
  assert.equal(last.member_count, g.member_count);
  assert.ok(cache.bytes() > 0 && cache.bytes() < JSON.stringify(g).length * 2);
  const copy = new GuildCache();
  copy.restore('100000000000000001', JSON.parse(JSON.stringify(cache.snapshotGuild('100000000000000001'))));
  assert.equal(copy.build('100000000000000001'), cache.build('100000000000000001'), 'a snapshot restores the same guild');
  cache.apply('GUILD_DELETE', { id: '100000000000000001', unavailable: true });
  assert.ok(cache.has('100000000000000001') && cache.isUnavailable('100000000000000001'));
  cache.apply('GUILD_DELETE', { id: '100000000000000001' });
  assert.equal(cache.build('100000000000000001'), null);
});

test('wants(): intent gating, and the guild / DM forms of message events', () => {
  assert.equal(wants(0, 'INTERACTION_CREATE', '{}'), true);
  assert.equal(wants(Intents.Guilds, 'MESSAGE_CREATE', '{"guild_id":"1"}'), false);
  assert.equal(wants(Intents.GuildMessages, 'MESSAGE_CREATE', '{"guild_id":"1"}'), true);
  assert.equal(wants(Intents.GuildMessages, 'MESSAGE_CREATE', '{"channel_id":"1"}'), false, 'a DM needs DirectMessages');
  assert.equal(wants(Intents.DirectMessages, 'MESSAGE_CREATE', '{"channel_id":"1"}'), true);
  assert.equal(wants(Intents.DirectMessages, 'MESSAGE_CREATE', '{"guild_id":"1"}'), false);
  assert.equal(wants(Intents.GuildPresences, 'PRESENCE_UPDATE', '{}'), true);
  assert.equal(wants(Intents.Guilds, 'PRESENCE_UPDATE', '{}'), false);
});

test('spliceD(): d cut out of Discord-layout payloads, null for anything else', () => {
  assert.equal(spliceD('{"t":"MESSAGE_CREATE","s":12,"op":0,"d":{"a":[1,{"b":"}"}]}}'), '{"a":[1,{"b":"}"}]}');
  assert.equal(spliceD('{"op":0,"d":{},"s":1,"t":"X"}'), null);
  assert.equal(spliceD('{"t":"X","s":1,"op":0,"x":{},"d":{}}'), null);
});

function machine(over: Partial<ClientSessionOptions> = {}): { c: ClientSession; now: { t: number }; take: () => ClientEffect[] } {
  const now = { t: 1000 };
  const c = new ClientSession({
    heartbeatInterval: 40_000,
    heartbeatSlack: 5000,
    checkToken: (t) => t === 'tok',
    total: 2,
    hasShard: (id) => id === 0 || id === 1,
    upstreamIntents: Intents.Guilds | Intents.GuildMessages,
    now: () => now.t,
    ...over,
  });
  return { c, now, take: () => c.effects.splice(0) };
}
const closeOf = (effects: ClientEffect[]) => effects.find((e) => e.type === 'close') as { code: number } | undefined;
const identify = (d: Record<string, unknown>) => JSON.stringify({ op: 2, d: { token: 'tok', intents: 513, properties: {}, shard: [0, 2], ...d } });

test('ClientSession: HELLO, heartbeat ACK and deadline, and Discord close codes for bad input', () => {
  const { c, now, take } = machine();
  c.open();
  const hello = take();
  assert.match((hello[0] as { data: string }).data, /"op":10,"d":\{"heartbeat_interval":40000\}/);
  assert.deepEqual(hello[1], { type: 'deadline', at: 46_000 });
  now.t = 2000;
  c.message('{"op":1,"d":null}');
  assert.deepEqual(take(), [
    { type: 'send', data: '{"t":null,"s":null,"op":11,"d":null}' },
    { type: 'deadline', at: 47_000 },
  ]);
  const cases: [string, number][] = [
    ['not json', 4002],
    ['{"op":3,"d":{}}', 4003],
    ['{"op":99,"d":{}}', 4001],
    [`{"op":1,"d":"${'x'.repeat(5000)}"}`, 4002],
    [identify({ token: 'other' }), 4004],
    [identify({ shard: [2, 2] }), 4010],
    [identify({ shard: [0, 3] }), 4010],
    [identify({ shard: [0, 1] }), 4011],
    [identify({ shard: undefined }), 4011],
    [identify({ intents: 1 << 29 }), 4013],
    [identify({ intents: Intents.GuildPresences }), 4014],
  ];
  for (const [text, code] of cases) {
    const m = machine();
    m.c.open();
    m.take();
    m.c.message(text);
    assert.equal(closeOf(m.take())?.code, code, text.slice(0, 60));
  }
  const m = machine();
  m.c.timer();
  assert.equal(closeOf(m.take())?.code, 4009, 'a missed heartbeat');
});

test('ClientSession: 120 payloads per 60 s, the 121st closes with 4008', () => {
  const { c, now, take } = machine();
  c.open();
  for (let i = 0; i < 120; i++) c.message('{"op":1,"d":null}');
  assert.equal(closeOf(take()), undefined);
  now.t += 59_999;
  c.message('{"op":1,"d":null}');
  assert.equal(closeOf(take())?.code, 4008);
  const m = machine();
  m.c.open();
  for (let i = 0; i < 120; i++) m.c.message('{"op":1,"d":null}');
  m.now.t += 60_000;
  m.c.message('{"op":1,"d":null}');
  assert.equal(closeOf(m.take()), undefined, 'the window slides');
});

test('ClientSession: IDENTIFY → READY + GUILD_CREATEs, live dispatches numbered and filtered, RESUME replays after the seq', () => {
  const { c, take } = machine();
  c.open();
  take();
  c.message(identify({}));
  assert.deepEqual(take(), [{ type: 'identify', shardId: 0, intents: 513 }]);
  const ring = new ReplayRing(100, 11);
  c.start('sess', '{"session_id":"sess"}', ['{"id":"1"}', '{"id":"2"}'], 10, ring);
  assert.equal(c.pulling, true);
  c.pull(0);
  assert.equal(c.pulling, false, 'caught up: nothing in the ring after position 10');
  const synth = take().map((e) => (e as { data: string }).data);
  assert.deepEqual(synth, ['{"t":"READY","s":1,"op":0,"d":{"session_id":"sess"}}', '{"t":"GUILD_CREATE","s":2,"op":0,"d":{"id":"1"}}', '{"t":"GUILD_CREATE","s":3,"op":0,"d":{"id":"2"}}']);
  const live = (type: string, d: string) => c.deliver(type, d, ring.push(type, d));
  live('MESSAGE_CREATE', '{"guild_id":"1","n":1}');
  live('PRESENCE_UPDATE', '{}');
  live('MESSAGE_CREATE', '{"guild_id":"1","n":2}');
  assert.deepEqual(
    take().map((e) => (e as { data: string }).data),
    ['{"t":"MESSAGE_CREATE","s":4,"op":0,"d":{"guild_id":"1","n":1}}', '{"t":"MESSAGE_CREATE","s":5,"op":0,"d":{"guild_id":"1","n":2}}'],
    'PRESENCE_UPDATE is not for this client',
  );
  c.message('{"op":8,"d":{"guild_id":"1","query":"","limit":0}}');
  assert.deepEqual(take(), [{ type: 'command', op: 8, d: { guild_id: '1', query: '', limit: 0 } }]);
  const state = c.session!;
  c.ended();
  assert.equal(resumePos(state, 4, ring), 12, 'seq 4 (pos 11) and the filtered pos 12 were offered');
  assert.equal(resumePos(state, 5, ring), 13);
  assert.equal(resumePos(state, 3, ring), 10, 'right after the synthesized start');
  assert.equal(resumePos(state, 2, ring), null, 'inside the synthesized start');
  assert.equal(resumePos(state, 6, ring), null, 'beyond what was sent');
  ring.push('MESSAGE_CREATE', '{"guild_id":"1","n":3}');

  const r = machine();
  r.c.open();
  r.take();
  r.c.message(JSON.stringify({ op: 6, d: { token: 'tok', session_id: 'sess', seq: 4 } }));
  assert.deepEqual(r.take(), [{ type: 'resume', sessionId: 'sess', seq: 4 }]);
  r.c.resume(state, resumePos(state, 4, ring)!, ring.after(resumePos(state, 4, ring)!)!);
  assert.deepEqual(
    r.take().map((e) => (e as { data: string }).data),
    ['{"t":"MESSAGE_CREATE","s":5,"op":0,"d":{"guild_id":"1","n":2}}', '{"t":"MESSAGE_CREATE","s":6,"op":0,"d":{"guild_id":"1","n":3}}', '{"t":"RESUMED","s":7,"op":0,"d":{}}'],
  );
  const x = machine();
  x.c.open();
  x.take();
  x.c.message(JSON.stringify({ op: 6, d: { token: 'tok', session_id: 'nope', seq: 1 } }));
  x.take();
  x.c.invalidate();
  assert.deepEqual(x.take(), [{ type: 'send', data: '{"t":null,"s":null,"op":9,"d":false}' }]);
});

test('resumePos(): private dispatches in the numbering, the private floor, and an `ahead` session walking forward', () => {
  const ring = new ReplayRing(10);
  const state = newSessionState('s', 0, Intents.GuildMessages, Intents.GuildMessages, 0);
  state.seq = state.synthEnd = 1; // READY
  const m = (n: number) => `{"guild_id":"1","n":${n}}`;
  // what the live session did: entries 1..4 (2 not wanted), a private answer after pos 3, then entry 5
  const push = (type: string, d: string) => {
    const pos = ring.push(type, d);
    state.pos = pos;
    if (type === 'MESSAGE_CREATE') state.seq++;
    return pos;
  };
  push('MESSAGE_CREATE', m(1)); // seq 2
  push('TYPING_START', '{"guild_id":"1"}');
  push('MESSAGE_CREATE', m(3)); // seq 3
  state.privates.push(++state.seq, state.pos); // seq 4: a member chunk at pos 3
  push('MESSAGE_CREATE', m(4)); // seq 5
  push('MESSAGE_CREATE', m(5)); // seq 6
  assert.deepEqual(
    [6, 5, 4, 3, 2, 1].map((seq) => resumePos(state, seq, ring)),
    [5, 4, 3, 3, 2, 0],
  );
  state.floor = 4;
  assert.equal(resumePos(state, 3, ring), null, 'below the oldest private pair kept');
  state.floor = 0;
  assert.equal(resumePos(state, 7, ring), null, 'beyond what was sent');
  // restored from Redis while attached: the client may be ahead of the stored anchor
  const restored = { ...newSessionState('s', 0, Intents.GuildMessages, Intents.GuildMessages, 0), seq: 6, pos: 5, synthEnd: 1, ahead: true };
  ring.push('TYPING_START', '{"guild_id":"1"}');
  ring.push('MESSAGE_CREATE', m(7));
  assert.equal(resumePos(restored, 7, ring), 7);
  assert.equal(resumePos(restored, 8, ring), null, 'not received yet');
  for (let i = 0; i < 10; i++) ring.push('MESSAGE_CREATE', m(10 + i));
  assert.equal(resumePos(state, 6, ring), null, 'older than the ring');
});

test('ContentStripper: guild messages lose content, embeds, attachments, components and poll; DMs, the bot’s own and mentions keep them', () => {
  const strip = new ContentStripper();
  strip.botId = '99';
  const full = {
    guild_id: '1',
    author: { id: '5' },
    mentions: [],
    content: 'secret',
    embeds: [{ title: 'x' }],
    attachments: [{ id: '3' }],
    components: [{ type: 1 }],
    poll: { question: {} },
    id: '7',
  };
  const out = JSON.parse(strip.d('MESSAGE_CREATE', JSON.stringify(full))) as Record<string, unknown>;
  assert.deepEqual(out, { guild_id: '1', author: { id: '5' }, mentions: [], content: '', embeds: [], attachments: [], components: [], id: '7' });
  for (const kept of [
    { ...full, guild_id: undefined },
    { ...full, author: { id: '99' } },
    { ...full, mentions: [{ id: '99' }] },
  ]) {
    const text = JSON.stringify(kept);
    assert.equal(strip.d('MESSAGE_UPDATE', text), text);
  }
  const plain = '{"guild_id":"1","content":"","embeds":[]}';
  assert.equal(strip.d('MESSAGE_CREATE', plain), plain, 'nothing to strip: the same text');
  const reply = JSON.parse(strip.d('MESSAGE_CREATE', JSON.stringify({ ...full, referenced_message: { author: { id: '6' }, content: 'quoted' } }))) as { referenced_message: { content: string } };
  assert.equal(reply.referenced_message.content, '');
  const automod = JSON.parse(strip.d('AUTO_MODERATION_ACTION_EXECUTION', '{"guild_id":"1","content":"bad word","matched_content":"bad"}')) as Record<string, unknown>;
  assert.deepEqual([automod.content, automod.matched_content], ['', '']);
  assert.equal(stripsContent(Intents.GuildMessages, Intents.GuildMessages | Intents.MessageContent), true);
  assert.equal(stripsContent(Intents.GuildMessages, Intents.GuildMessages), false, 'the upstream has no content to strip');
  assert.equal(stripsContent(Intents.GuildMessages | Intents.MessageContent, Intents.GuildMessages | Intents.MessageContent), false);
});

test('synth: READY lists the shard guilds as unavailable; GUILD_CREATE needs the Guilds intent', () => {
  const cache = new GuildCache();
  cache.apply('GUILD_CREATE', { id: '1', name: 'a', channels: [] });
  const ready = JSON.parse(readyData({ user: '{"id":"9"}', application: '{"id":"8"}', sessionId: 's', resumeUrl: 'ws://x', shard: [0, 1] }, ['1', '2'])) as Record<string, unknown>;
  assert.deepEqual(ready.guilds, [
    { id: '1', unavailable: true },
    { id: '2', unavailable: true },
  ]);
  assert.equal(ready.resume_gateway_url, 'ws://x');
  assert.equal([...guildCreates(cache, ['1', '2'], Intents.Guilds)].length, 1);
  assert.equal([...guildCreates(cache, ['1'], Intents.GuildMessages)].length, 0);
});

test('downstream compressors: every message inflates on its own, in order, through one client inflater', () => {
  for (const kind of ['zlib-stream', 'zstd-stream'] as const) {
    if (kind === 'zstd-stream' && !zstdSupported()) continue;
    const c = createCompressor(kind);
    const inflater = createInflater(kind);
    const messages = Array.from({ length: 50 }, (_, i) => JSON.stringify({ t: 'MESSAGE_CREATE', s: i + 1, op: 0, d: { content: 'x'.repeat(i * 97), i } }));
    const frames = messages.map((m) => c.compress(Buffer.from(m)));
    const back = frames.map((f) => inflater.push(f)?.toString());
    assert.deepEqual(back, messages, kind);
    c.close();
    inflater.close();
  }
});

test("proxySettings: a handler module is taken as a file URL; handlerErrors 'exit' is refused (no worker to end)", () => {
  assert.equal(proxySettings({ token: 't', intents: 1 }).handler, null);
  assert.match(proxySettings({ token: 't', intents: 1, handler: './handler.js' }).handler!, /^file:\/\/.*\/handler\.js$/);
  assert.equal(proxySettings({ token: 't', intents: 1, handler: './handler.js', handlerErrors: 'report' }).handler?.startsWith('file:'), true);
  assert.throws(() => proxySettings({ token: 't', intents: 1, handler: './handler.js', handlerErrors: 'exit' as 'report' }), {
    code: 'INVALID_OPTION',
    message: /handlerErrors 'exit' is not supported by the gateway proxy/,
  });
  assert.throws(() => proxySettings({ token: 't', intents: 1, handler: '' }), { code: 'INVALID_OPTION', message: /handler must be a file URL or a path/ });
});
