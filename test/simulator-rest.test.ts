import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { BOT_USER_ID, buildMember, memberUserId } from '../src/simulator/fixtures.js';
import { GatewaySimulator } from '../src/simulator/index.js';
import { RestRateLimiter } from '../src/simulator/rest-limits.js';
import { guildChannels } from '../src/simulator/rest-objects.js';
import { matchRoute, normalizeRestPath } from '../src/simulator/rest-router.js';
import { type RestHost, SimRest } from '../src/simulator/rest.js';
import { ManualClock } from './helpers/manual-clock.js';

// ------------------------------------------------------------------ router (pure)

const route = (method: string, url: string) => {
  const n = normalizeRestPath(url);
  assert.ok(n, url);
  const m = matchRoute(method, n.segments);
  return m.ok ? { name: m.match.name, params: m.match.params, major: m.match.major, version: n.version } : { status: m.status, version: n.version };
};

test('router: the /api and /api/v{n} prefixes are optional, segments are percent-decoded, a trailing slash is ignored', () => {
  for (const url of ['/api/v10/users/@me', '/api/v9/users/@me', '/api/users/@me', '/users/@me', '/api/v10/users/%40me', '/users/%40me/', '//api/v10//users/@me']) {
    assert.equal(route('GET', url).name, 'currentUser', url);
  }
  assert.equal(route('GET', '/api/v10/users/@me').version, 10);
  assert.equal(route('GET', '/api/users/@me').version, null);
  assert.deepEqual(route('GET', '/api/v10/users/80351110224678912'), { name: 'user', params: { user_id: '80351110224678912' }, major: '', version: 10 });
  assert.equal(route('GET', '/api/v10/gateway/bot?v=10').name, 'gatewayBot');
  assert.equal(normalizeRestPath('/api/v10/guilds/1?with_counts=true')!.query.with_counts, 'true');
  assert.equal(normalizeRestPath('/users/%E0%A4%A'), null, 'bad percent-encoding');
});

test('router: major parameters, a literal @me never matches a parameter, 404 for unknown paths and 405 for a known path with another method', () => {
  assert.deepEqual(route('POST', '/api/v10/channels/123/messages'), { name: 'createMessage', params: { channel_id: '123' }, major: '123', version: 10 });
  assert.equal(route('GET', '/guilds/55/members/66').major, '55');
  assert.equal(route('PUT', '/applications/1/guilds/2/commands').name, 'putGuildCommands');
  assert.equal(route('POST', '/interactions/9/tok-en/callback').name, 'interactionCallback');
  assert.equal(route('PATCH', '/api/v10/webhooks/1/tok/messages/%40original').name, 'editOriginal');
  assert.equal(route('POST', '/webhooks/1/tok').major, 'tok');
  assert.equal(route('GET', '/users/@me/guilds').status, 404);
  assert.equal(route('GET', '/channels/@me').status, 404);
  assert.equal(route('GET', '/api/v10/nothing/here').status, 404);
  assert.equal(route('DELETE', '/api/v10/users/@me').status, 405);
  assert.equal(route('GET', '/api/v10/channels/1/messages').status, 405);
});

// ------------------------------------------------------------------ rate limits (virtual clock)

test('rate limits: headers on every answer, per route and major parameter, a 429 with retry_after, reset on the clock', () => {
  const clock = new ManualClock();
  const rl = new RestRateLimiter(clock, { default: { limit: 2, window: 1000 }, routes: { 'POST /channels/:channel_id/messages': { limit: 1, window: 5000 } }, global: false });
  const a = rl.take('GET', '/users/:user_id', '', 't');
  assert.equal(a.allowed, true);
  assert.equal(a.headers['X-RateLimit-Limit'], '2');
  assert.equal(a.headers['X-RateLimit-Remaining'], '1');
  assert.equal(a.headers['X-RateLimit-Reset-After'], '1.000');
  assert.match(a.headers['X-RateLimit-Bucket']!, /^[0-9a-f]{32}$/);
  assert.ok(Math.abs(Number(a.headers['X-RateLimit-Reset']) - (Date.now() + 1000) / 1000) < 1);
  clock.advance(400);
  assert.equal(rl.take('GET', '/users/:user_id', '', 't').headers['X-RateLimit-Remaining'], '0');
  const refused = rl.take('GET', '/users/:user_id', '', 't');
  assert.equal(refused.allowed, false);
  assert.equal(refused.global, false);
  assert.equal(refused.retryAfter, 0.6);
  assert.equal(refused.headers['X-RateLimit-Scope'], 'user');
  assert.equal(refused.headers['Retry-After'], '1');
  clock.advance(600);
  assert.equal(rl.take('GET', '/users/:user_id', '', 't').allowed, true, 'the window reset');

  // per channel: another channel has its own bucket, the same bucket hash
  const c1 = rl.take('POST', '/channels/:channel_id/messages', '1', 't');
  assert.equal(c1.headers['X-RateLimit-Limit'], '1');
  assert.equal(rl.take('POST', '/channels/:channel_id/messages', '1', 't').allowed, false);
  const c2 = rl.take('POST', '/channels/:channel_id/messages', '2', 't');
  assert.equal(c2.allowed, true);
  assert.equal(c2.headers['X-RateLimit-Bucket'], c1.headers['X-RateLimit-Bucket']);
  assert.throws(() => rl.configure({ default: { limit: 0, window: 1 } }), /limit must be a positive integer/);
});

test('rate limits: the global limit answers 429 with global: true', () => {
  const clock = new ManualClock();
  const rl = new RestRateLimiter(clock, { global: { limit: 3, window: 1000 } });
  for (let i = 0; i < 3; i++) assert.equal(rl.take('GET', `/r${i}`, '', 't').allowed, true);
  const g = rl.take('GET', '/r4', '', 't');
  assert.equal(g.allowed, false);
  assert.equal(g.global, true);
  assert.equal(g.headers['X-RateLimit-Global'], 'true');
  assert.equal(g.headers['X-RateLimit-Scope'], 'global');
  assert.equal(rl.take('GET', '/r4', '', 'other-token').allowed, true, 'global is per token');
});

// ------------------------------------------------------------------ SimRest (transport-free)

const GUILD = '529448671641731072';
function rest(opts: ConstructorParameters<typeof SimRest>[1] = {}) {
  const clock = new ManualClock();
  const dispatched: { guildId: string; t: string; d: Record<string, unknown> }[] = [];
  const host: RestHost = {
    clock,
    guildIds: [GUILD],
    tokenValid: (t) => t === 'tok',
    gatewayUrl: () => 'ws://127.0.0.1:1',
    gatewayBot: () => ({ url: 'ws://127.0.0.1:1', shards: 1 }),
    applicationIntents: () => 1 << 15,
    memberCount: () => 50,
    dispatchToGuild: (guildId, t, d) => void dispatched.push({ guildId, t, d: d as Record<string, unknown> }),
  };
  const r = new SimRest(host, opts);
  const call = (method: string, url: string, body?: unknown, headers: Record<string, string> = { authorization: 'Bot tok' }) => {
    const res = r.handle({ method, url, headers: { 'content-type': 'application/json', ...headers }, body: body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body)) });
    res.after?.();
    return res as typeof res & { body: Record<string, unknown> };
  };
  return { r, call, dispatched, clock };
}
const textChannel = guildChannels(GUILD).find((c) => c.type === 0)!.id as string;
const category = guildChannels(GUILD).find((c) => c.type === 4)!.id as string;

test('SimRest: users, application, guild, member, channel objects agree with the gateway fixtures; Discord errors for unknown ids', () => {
  const { call } = rest();
  const me = call('GET', '/api/v10/users/%40me');
  assert.equal(me.status, 200);
  assert.equal(me.body.id, BOT_USER_ID);
  assert.equal(me.body.bot, true);
  assert.equal('email' in call('GET', `/api/v10/users/${BOT_USER_ID}`).body, false, 'public user has no private fields');
  const member3 = memberUserId(GUILD, 3);
  assert.deepEqual(call('GET', `/users/${member3}`).body, buildMember(GUILD, 3).user);
  assert.deepEqual(call('GET', '/users/80351110224678912').body, { message: 'Unknown User', code: 10013 });

  const app = call('GET', '/api/v10/applications/@me').body;
  assert.equal(app.id, BOT_USER_ID);
  assert.equal((app.flags as number) & ((1 << 12) | (1 << 14) | (1 << 18)), 1 << 18, 'only the MESSAGE_CONTENT gateway flag (applicationIntents)');
  assert.deepEqual(call('GET', '/api/v10/oauth2/applications/@me').body, app);

  const guild = call('GET', `/api/v10/guilds/${GUILD}?with_counts=true`).body;
  assert.equal(guild.id, GUILD);
  assert.equal(guild.approximate_member_count, 50);
  assert.equal('channels' in guild || 'members' in guild, false, 'no gateway-only fields');
  assert.equal(call('GET', '/guilds/1234567890123456789').status, 404);
  assert.deepEqual(call('GET', `/guilds/${GUILD}/members/${member3}`).body, buildMember(GUILD, 3));
  assert.deepEqual(call('GET', `/guilds/${GUILD}/members/${memberUserId(GUILD, 60)}`).body, { message: 'Unknown Member', code: 10007 });

  const channel = call('GET', `/channels/${textChannel}`).body;
  assert.equal(channel.guild_id, GUILD);
  assert.equal(channel.type, 0);
  assert.deepEqual(call('GET', '/channels/42').body, { message: 'Unknown Channel', code: 10003 });
});

test('SimRest: auth (401 JSON without a valid Bot token), 404 / 405 JSON for anything else, GET /gateway without auth', () => {
  const { call } = rest();
  assert.deepEqual(call('GET', '/api/v10/users/@me', undefined, {}).body, { message: '401: Unauthorized', code: 0 });
  assert.equal(call('GET', '/api/v10/users/@me', undefined, { authorization: 'tok' }).status, 401, 'the Bot prefix is required');
  assert.equal(call('GET', '/api/v10/users/@me', undefined, { authorization: 'Bot wrong' }).status, 401);
  assert.deepEqual(call('GET', '/api/v10/gateway', undefined, {}).body, { url: 'ws://127.0.0.1:1' });
  const nf = call('GET', '/api/v10/guilds/1/bans');
  assert.deepEqual(nf.body, { message: '404: Not Found', code: 0 });
  assert.ok(nf.headers['X-RateLimit-Bucket'], 'rate-limit headers on a 404 too');
  assert.deepEqual(call('PATCH', '/api/v10/users/@me').body, { message: '405: Method Not Allowed', code: 0 });
  const { call: off } = rest({ enabled: false });
  assert.equal(off('GET', '/api/v10/users/@me').status, 404, 'REST off: only the gateway routes');
  assert.equal(off('GET', '/api/v10/gateway/bot').status, 200);
});

test('SimRest: POST /channels/{id}/messages answers a Discord-shaped message, then dispatches MESSAGE_CREATE from the bot to the guild', () => {
  const { call, dispatched, r } = rest();
  const res = call('POST', `/api/v10/channels/${textChannel}/messages`, { content: 'pong', nonce: 'n1', message_reference: { message_id: '111' } });
  assert.equal(res.status, 200);
  assert.equal(res.body.content, 'pong');
  assert.equal(res.body.channel_id, textChannel);
  assert.equal((res.body.author as { id: string }).id, BOT_USER_ID);
  assert.equal(res.body.nonce, 'n1');
  assert.equal(res.body.type, 19, 'a reply');
  assert.match(res.body.timestamp as string, /^\d{4}-\d\d-\d\dT/);
  assert.equal(dispatched.length, 1);
  assert.equal(dispatched[0]!.t, 'MESSAGE_CREATE');
  assert.equal(dispatched[0]!.guildId, GUILD);
  assert.equal(dispatched[0]!.d.id, res.body.id);
  assert.equal(dispatched[0]!.d.guild_id, GUILD);
  assert.ok(dispatched[0]!.d.member, 'the gateway event carries the bot member');

  assert.deepEqual(call('POST', `/channels/${textChannel}/messages`, {}).body, { message: 'Cannot send an empty message', code: 50006 });
  assert.equal(call('POST', `/channels/${textChannel}/messages`, { content: 'x'.repeat(2001) }).body.code, 50035);
  assert.equal(call('POST', `/channels/${category}/messages`, { content: 'x' }).body.code, 50008);
  assert.equal(call('POST', '/channels/42/messages', { content: 'x' }).status, 404);
  assert.equal(dispatched.length, 1, 'failed posts dispatch nothing');

  // multipart (files): payload_json is the body
  const boundary = 'XyZ';
  const multipart = `--${boundary}\r\nContent-Disposition: form-data; name="files[0]"; filename="a.txt"\r\n\r\nhello\r\n--${boundary}\r\nContent-Disposition: form-data; name="payload_json"\r\nContent-Type: application/json\r\n\r\n{"content":"with file"}\r\n--${boundary}--\r\n`;
  const mp = r.handle({
    method: 'POST',
    url: `/api/v10/channels/${textChannel}/messages`,
    headers: { authorization: 'Bot tok', 'content-type': `multipart/form-data; boundary=${boundary}` },
    body: Buffer.from(multipart),
  });
  assert.equal(mp.status, 200);
  assert.equal((mp.body as { content: string }).content, 'with file');
  assert.deepEqual(r.requests().at(-1)!.body, { content: 'with file', files: ['a.txt'] });
});

test('SimRest: application commands GET / PUT / POST, global and per guild', () => {
  const { call } = rest();
  assert.deepEqual(call('GET', `/applications/${BOT_USER_ID}/commands`).body, []);
  const put = call('PUT', `/applications/${BOT_USER_ID}/commands`, [
    { name: 'ping', description: 'Ping!' },
    { name: 'User info', type: 2 },
  ]).body as unknown as Record<string, unknown>[];
  assert.equal(put.length, 2);
  assert.equal(put[0]!.application_id, BOT_USER_ID);
  assert.equal(put[0]!.type, 1);
  const again = call('PUT', `/applications/${BOT_USER_ID}/commands`, [{ name: 'ping', description: 'Ping again' }]).body as unknown as Record<string, unknown>[];
  assert.equal(again[0]!.id, put[0]!.id, 'same name keeps its id');
  assert.equal((call('GET', `/applications/${BOT_USER_ID}/commands`).body as unknown as unknown[]).length, 1);
  assert.equal(call('PUT', `/applications/${BOT_USER_ID}/commands`, [{ name: 'nodesc' }]).body.code, 50035);
  const created = call('POST', `/applications/${BOT_USER_ID}/guilds/${GUILD}/commands`, { name: 'hello', description: 'Hi' });
  assert.equal(created.status, 201);
  assert.equal(created.body.guild_id, GUILD);
  assert.equal(call('POST', `/applications/${BOT_USER_ID}/guilds/${GUILD}/commands`, { name: 'hello', description: 'Hi 2' }).status, 200, 'upsert');
  assert.equal((call('GET', `/applications/${BOT_USER_ID}/guilds/${GUILD}/commands`).body as unknown as unknown[]).length, 1);
  assert.equal(call('GET', '/applications/1/commands').body.code, 10002);
  assert.equal(call('GET', `/applications/${BOT_USER_ID}/guilds/1/commands`).body.code, 50001);
});

test('SimRest: interaction callbacks: 204 (200 with_response), 40060 when acknowledged twice, no bot token needed', () => {
  const { call } = rest();
  const url = (id: string, q = '') => `/api/v10/interactions/${id}/aW50ZXJhY3Rpb24tdG9rZW4/callback${q}`;
  const first = call('POST', url('1100000000000000001'), { type: 4, data: { content: 'hi' } }, {});
  assert.equal(first.status, 204);
  assert.equal(first.body, undefined);
  assert.deepEqual(call('POST', url('1100000000000000001'), { type: 4, data: { content: 'again' } }, {}).body, { message: 'Interaction has already been acknowledged.', code: 40060 });
  const withResponse = call('POST', url('1100000000000000002', '?with_response=true'), { type: 5 }, {});
  assert.equal(withResponse.status, 200);
  assert.equal((withResponse.body.interaction as { id: string }).id, '1100000000000000002');
  assert.equal(call('POST', url('1100000000000000003'), { type: 99 }, {}).body.code, 50035);
});

test('SimRest: a route over its limit gets 429 with retry_after; the record has method, path, route, status, body and no token', () => {
  const { call, r, clock } = rest({ rateLimits: { routes: { '/users/@me': { limit: 1, window: 2000 } } } });
  assert.equal(call('GET', '/api/v10/users/@me').status, 200);
  const limited = call('GET', '/api/v10/users/@me');
  assert.equal(limited.status, 429);
  assert.deepEqual(limited.body, { message: 'You are being rate limited.', retry_after: 2, global: false, code: 0 });
  assert.equal(limited.headers['Retry-After'], '2');
  clock.advance(2000);
  assert.equal(call('GET', '/api/v10/users/@me').status, 200);
  r.configure({ rateLimits: { routes: {} } });
  assert.equal(call('GET', '/api/v10/users/@me').status, 200, 'reconfigured at run time');
  call('POST', `/api/v9/channels/${textChannel}/messages?x=1`, { content: 'logged' });
  const rec = r.requests().at(-1)!;
  assert.equal(rec.method, 'POST');
  assert.equal(rec.path, `/channels/${textChannel}/messages`);
  assert.equal(rec.route, '/channels/:channel_id/messages');
  assert.equal(rec.version, 9);
  assert.deepEqual(rec.query, { x: '1' });
  assert.equal(rec.status, 200);
  assert.deepEqual(rec.body, { content: 'logged' });
  assert.equal(rec.headers.authorization, 'Bot [redacted]');
  assert.ok(!JSON.stringify(r.requests()).includes('tok"'), 'no token anywhere in the record');
});

// ------------------------------------------------------------------ over HTTP, with the gateway

test('simulator: REST over HTTP; a created message reaches the session holding the guild as MESSAGE_CREATE', async () => {
  const sim = await GatewaySimulator.start({ guilds: 2, shards: 2 });
  const ws = new WebSocket(`${sim.url}/?v=10&encoding=json`);
  const inbox: { t: string | null; d: Record<string, unknown> }[] = [];
  ws.on('message', (data) => {
    const m = JSON.parse(String(data));
    inbox.push(m);
    if (m.op === 10) ws.send(JSON.stringify({ op: 2, d: { token: 'sim-token', intents: 1 | 512 | 32768, shard: [0, 2], properties: { os: 'linux', browser: 't', device: 't' } } }));
  });
  const seen: string[] = [];
  sim.on('rest', (r) => seen.push(`${r.method} ${r.route}`));
  try {
    await waitFor(() => inbox.some((m) => m.t === 'GUILD_CREATE'), 'GUILD_CREATE');
    const guildId = sim.guildsForShard(0, 2)[0]!;
    const channelId = guildChannels(guildId).find((c) => c.type === 0)!.id as string;
    const res = await fetch(`${sim.apiBaseUrl}/v10/channels/${channelId}/messages`, {
      method: 'POST',
      headers: { authorization: 'Bot sim-token', 'content-type': 'application/json' },
      body: JSON.stringify({ content: 'pong' }),
    });
    assert.equal(res.status, 200);
    assert.ok(res.headers.get('x-ratelimit-remaining'));
    const msg = (await res.json()) as { id: string };
    await waitFor(() => inbox.some((m) => m.t === 'MESSAGE_CREATE'), 'MESSAGE_CREATE');
    const ev = inbox.find((m) => m.t === 'MESSAGE_CREATE')!;
    assert.equal(ev.d.id, msg.id);
    assert.equal((ev.d.author as { id: string }).id, BOT_USER_ID);
    assert.equal(ev.d.content, 'pong');
    assert.deepEqual(seen, ['POST /channels/:channel_id/messages']);
    assert.equal(sim.restRequests().length, 1);
    const big = await fetch(`${sim.apiUrl}/channels/${channelId}/messages`, { method: 'POST', headers: { authorization: 'Bot sim-token' }, body: Buffer.alloc((8 << 20) + 1) });
    assert.equal(big.status, 413);
  } finally {
    ws.close();
    await sim.stop();
  }
});

async function waitFor(cond: () => boolean, what: string, timeout = 5000): Promise<void> {
  const end = Date.now() + timeout;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('simulator: a token reset by the session-start budget is refused by REST too (401)', async () => {
  const sim = await GatewaySimulator.start({ sessionStartLimit: { total: 0 }, onSessionStartExhausted: 'reset-token' });
  const me = () => fetch(`${sim.apiUrl}/users/@me`, { headers: { authorization: 'Bot sim-token' } }).then((r) => r.status);
  try {
    assert.equal(await me(), 200);
    const ws = new WebSocket(`${sim.url}/?v=10&encoding=json`);
    ws.on('message', (data) => {
      if (JSON.parse(String(data)).op === 10) ws.send(JSON.stringify({ op: 2, d: { token: 'sim-token', intents: 1, properties: { os: 'l', browser: 't', device: 't' } } }));
    });
    const code = await new Promise<number>((resolve) => ws.on('close', (c) => resolve(c)));
    assert.equal(code, 4004);
    assert.equal(await me(), 401);
  } finally {
    await sim.stop();
  }
});

test('SimRest: a dispatched interaction: the type 4 callback creates the response message (MESSAGE_CREATE), the token works for follow-ups and @original', () => {
  const { call, dispatched, r } = rest();
  const user = buildMember(GUILD, 2).user as Record<string, unknown>;
  r.noteInteraction({ id: '1200000000000000001', token: 'itok-1', type: 2, application_id: BOT_USER_ID, guild_id: GUILD, channel_id: textChannel, member: { user }, data: { name: 'ping' } });
  assert.equal(call('POST', `/webhooks/${BOT_USER_ID}/itok-1`, { content: 'too early' }, {}).body.code, 10015, 'no follow-up before the callback');
  const cb = call('POST', '/api/v10/interactions/1200000000000000001/itok-1/callback?with_response=true', { type: 4, data: { content: 'pong' } }, {});
  assert.equal(cb.status, 200);
  const message = (cb.body.resource as { message: Record<string, unknown> }).message;
  assert.equal(message.content, 'pong');
  assert.equal(message.type, 20);
  assert.equal(message.channel_id, textChannel);
  assert.deepEqual((message.interaction_metadata as { name: string; user: unknown }).user, user);
  assert.deepEqual(
    dispatched.map((e) => [e.t, e.d.id, e.d.guild_id]),
    [['MESSAGE_CREATE', message.id, GUILD]],
  );

  assert.deepEqual(call('GET', `/webhooks/${BOT_USER_ID}/itok-1/messages/@original`, undefined, {}).body, message);
  const edited = call('PATCH', `/webhooks/${BOT_USER_ID}/itok-1/messages/@original`, { content: 'pong (edited)' }, {});
  assert.equal(edited.body.content, 'pong (edited)');
  assert.ok(edited.body.edited_timestamp);
  assert.equal(dispatched.at(-1)!.t, 'MESSAGE_UPDATE');
  assert.equal(call('POST', `/webhooks/${BOT_USER_ID}/itok-1`, { content: 'more' }, {}).status, 204, 'no wait: 204');
  const follow = call('POST', `/webhooks/${BOT_USER_ID}/itok-1?wait=true`, { content: 'and more' }, {});
  assert.equal(follow.body.content, 'and more');
  assert.equal(follow.body.type, 0);
  assert.equal(call('POST', `/webhooks/${BOT_USER_ID}/itok-1?wait=true`, { content: 'secret', flags: 64 }, {}).status, 200);
  assert.equal(call('DELETE', `/webhooks/${BOT_USER_ID}/itok-1/messages/@original`, undefined, {}).status, 204);
  assert.equal(call('GET', `/webhooks/${BOT_USER_ID}/itok-1/messages/@original`, undefined, {}).body.code, 10008);
  assert.deepEqual(
    dispatched.map((e) => [e.t, e.d.content ?? null]),
    [
      ['MESSAGE_CREATE', 'pong'],
      ['MESSAGE_UPDATE', 'pong (edited)'],
      ['MESSAGE_CREATE', 'more'],
      ['MESSAGE_CREATE', 'and more'],
      ['MESSAGE_DELETE', null],
    ],
    'the ephemeral follow-up is never dispatched',
  );

  // deferred: a loading placeholder, then the edit
  r.noteInteraction({ id: '1200000000000000002', token: 'itok-2', type: 2, guild_id: GUILD, channel_id: textChannel, member: { user } });
  assert.equal(call('POST', '/interactions/1200000000000000002/itok-2/callback', { type: 5 }, {}).status, 204);
  assert.equal((dispatched.at(-1)!.d.flags as number) & 128, 128, 'LOADING');
  const done = call('PATCH', `/webhooks/${BOT_USER_ID}/itok-2/messages/@original`, { content: 'done' }, {});
  assert.equal((done.body.flags as number) & 128, 0);
  assert.equal(call('GET', `/webhooks/1/itok-2/messages/@original`, undefined, {}).body.code, 10015, 'another application');
});
