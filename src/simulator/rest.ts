/**
 * The simulator's REST API: the routes a simple bot uses (gateway info, users, the application, guilds, members,
 * channels, messages, application commands, interaction callbacks), Discord's auth, error and rate-limit shapes,
 * and a record of every call so tests can assert what a bot sent. Transport-free: the HTTP server hands each request
 * to {@link SimRest.handle} and writes the answer.
 * @packageDocumentation
 */
import type { Clock } from '../clock.js';
import { BOT_USER_ID, isSnowflake, snowflake } from './fixtures.js';
import { RestRateLimiter, type RestRateLimitOptions } from './rest-limits.js';
import { acceptsMessages, application, buildMessage, currentUser, guildChannels, memberIndex, messageCreateEvent, publicBotUser, restGuild, restMember } from './rest-objects.js';
import { error, formError, messageBodyError, ok } from './rest-answers.js';
import { InteractionRoutes } from './rest-interactions.js';
import { matchRoute, normalizeRestPath, type RouteMatch } from './rest-router.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** REST options of the simulator (`GatewaySimulatorOptions.rest`). */
export interface SimRestOptions {
  /** Serve the REST API (default true); false answers only `GET /gateway` and `GET /gateway/bot`. */
  enabled?: boolean;
  /** Rate limits per route and global (virtual time). */
  rateLimits?: RestRateLimitOptions;
}

/** One REST call, as recorded by `sim.restRequests()`. The bot token never appears in it. */
export interface SimRestRequest {
  /** HTTP method, upper case. */
  method: string;
  /** Normalised path: no `/api[/v{n}]` prefix, percent-decoded, e.g. `/channels/123/messages`. */
  path: string;
  /** Route template that matched, e.g. `/channels/:channel_id/messages`; null for a 404 / 405. */
  route: string | null;
  /** API version of the prefix (`/api/v10` → 10), null without one. */
  version: number | null;
  /** Query parameters. */
  query: Record<string, string>;
  /** Status code of the answer. */
  status: number;
  /** Parsed JSON body (`payload_json` of a multipart body), or the text when it is not JSON. */
  body?: unknown;
  /** Request headers, lower-case names; `authorization` reduced to its scheme (`'Bot [redacted]'`). */
  headers: Record<string, string>;
  /** Simulator clock time. */
  at: number;
}

/** An HTTP request as the server read it. */
export interface RestHttpRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** An answer to write; `after` runs once it was handed to the socket (the gateway side effects of a call). */
export interface RestHttpResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  after?: () => void;
}

/** What the REST API needs from the simulator. */
export interface RestHost {
  readonly clock: Clock;
  readonly guildIds: readonly string[];
  tokenValid(token: string): boolean;
  gatewayUrl(): string;
  gatewayBot(): Obj;
  applicationIntents(): number;
  memberCount(): number;
  /** Deliver a dispatch to every live session that holds `guildId`. */
  dispatchToGuild(guildId: string, t: string, d: unknown): void;
}

const LOG_SIZE = 10_000;
const NO_BOT_AUTH: ReadonlySet<string> = new Set(['gateway', 'interactionCallback', 'executeWebhook', 'getOriginal', 'editOriginal', 'deleteOriginal']);

/** The REST API of one simulator. */
export class SimRest {
  private readonly limiter: RestRateLimiter;
  private readonly log: SimRestRequest[] = [];
  private logHead = 0;
  private readonly commands = new Map<string, Obj[]>();
  private readonly interactions: InteractionRoutes;
  private readonly guildIndex: Map<string, number>;
  private idCounter = 0;
  private enabled = true;

  constructor(
    private readonly host: RestHost,
    options: SimRestOptions = {},
    private readonly onRequest?: (r: SimRestRequest) => void,
  ) {
    this.limiter = new RestRateLimiter(host.clock, options.rateLimits);
    this.enabled = options.enabled ?? true;
    this.guildIndex = new Map(host.guildIds.map((g, i) => [g, i]));
    this.interactions = new InteractionRoutes(host.dispatchToGuild);
  }

  /** Remember an INTERACTION_CREATE the simulator dispatched, so its callback and webhook routes act on it. */
  noteInteraction(d: unknown): void {
    this.interactions.store.note(d);
  }

  /** Change the rate limits at run time. */
  configure(options: SimRestOptions | boolean): void {
    if (typeof options === 'boolean') return void (this.enabled = options);
    if (options.enabled !== undefined) this.enabled = options.enabled;
    if (options.rateLimits) this.limiter.configure(options.rateLimits);
  }

  /** Recorded calls, oldest first (the last 10 000). */
  requests(): SimRestRequest[] {
    return this.log.slice(this.logHead).concat(this.log.slice(0, this.logHead));
  }

  /** Answer one request and record it. */
  handle(req: RestHttpRequest): RestHttpResponse {
    const method = req.method.toUpperCase();
    const norm = normalizeRestPath(req.url);
    const body = parseBody(req);
    const path = norm?.path ?? req.url;
    let route: string | null = null;
    let limitHeaders: Record<string, string> = {};
    /** Take a rate-limit slot (its headers go on the answer either way); the 429 when there is none. */
    const limited = (routeKey: string, major: string, token: string): RestHttpResponse | null => {
      const v = this.limiter.take(method, routeKey, major, token);
      limitHeaders = v.headers;
      if (v.allowed) return null;
      return ok({ message: 'You are being rate limited.', retry_after: v.retryAfter ?? 0, global: v.global === true, code: 0 }, 429);
    };
    const res = ((): RestHttpResponse => {
      if (!norm) return error(400, '400: Bad Request');
      let m = matchRoute(method, norm.segments);
      if (m.ok && !this.enabled && m.match.name !== 'gateway' && m.match.name !== 'gatewayBot') m = { ok: false, status: 404 };
      const auth = header(req.headers, 'authorization');
      const token = auth?.startsWith('Bot ') ? auth.slice(4) : null;
      if (!m.ok) return limited(`unknown:${path}`, '', token ?? '') ?? (m.status === 405 ? error(405, '405: Method Not Allowed') : error(404, '404: Not Found'));
      route = m.match.route;
      const refused = limited(m.match.route, m.match.major, token ?? m.match.params.interaction_token ?? '');
      if (refused) return refused;
      // Interaction callbacks and interaction webhooks are authorised by the interaction token in the path.
      const needsAuth = !NO_BOT_AUTH.has(m.match.name);
      if (needsAuth && (token === null || !this.host.tokenValid(token))) return error(401, '401: Unauthorized');
      return this.route(m.match, norm.query, body);
    })();
    res.headers = { ...limitHeaders, ...res.headers };
    this.record({
      method,
      path,
      route,
      version: norm?.version ?? null,
      query: norm?.query ?? {},
      status: res.status,
      ...(body !== undefined ? { body } : {}),
      headers: safeHeaders(req.headers),
      at: this.host.clock.now(),
    });
    return res;
  }

  private record(r: SimRestRequest): void {
    if (this.log.length < LOG_SIZE) this.log.push(r);
    else {
      this.log[this.logHead] = r;
      this.logHead = (this.logHead + 1) % LOG_SIZE;
    }
    this.onRequest?.(r);
  }

  private route(m: RouteMatch, query: Record<string, string>, body: unknown): RestHttpResponse {
    const p = m.params;
    const host = this.host;
    switch (m.name) {
      case 'gateway':
        return ok({ url: host.gatewayUrl() });
      case 'gatewayBot':
        return ok(host.gatewayBot());
      case 'currentUser':
        return ok(currentUser());
      case 'user':
        return this.user(p.user_id!);
      case 'currentApplication':
      case 'oauth2Application':
        return ok(application(host.applicationIntents(), host.guildIds.length));
      case 'guild': {
        const index = this.guildIndex.get(p.guild_id!);
        if (index === undefined) return error(404, 'Unknown Guild', 10004);
        return ok(restGuild(p.guild_id!, index, host.memberCount(), query.with_counts === 'true'));
      }
      case 'guildMember': {
        if (!this.guildIndex.has(p.guild_id!)) return error(404, 'Unknown Guild', 10004);
        const idx = isSnowflake(p.user_id) ? memberIndex(p.guild_id!, p.user_id, Math.max(1, host.memberCount())) : -1;
        return idx < 0 ? error(404, 'Unknown Member', 10007) : ok(restMember(p.guild_id!, idx));
      }
      case 'channel': {
        const c = this.channel(p.channel_id!);
        return c ? ok(c) : error(404, 'Unknown Channel', 10003);
      }
      case 'createMessage':
        return this.createMessage(p.channel_id!, body);
      case 'globalCommands':
      case 'guildCommands':
      case 'putGlobalCommands':
      case 'putGuildCommands':
      case 'createGlobalCommand':
      case 'createGuildCommand':
        return this.applicationCommands(m, body);
      case 'interactionCallback':
        return this.interactions.callback(p.interaction_id!, query, body);
      case 'executeWebhook':
        return this.interactions.followUp(p.webhook_id!, p.webhook_token!, query, body);
      case 'getOriginal':
      case 'editOriginal':
      case 'deleteOriginal':
        return this.interactions.original(m.name, p.webhook_id!, p.webhook_token!, body);
    }
  }

  private user(id: string): RestHttpResponse {
    if (id === BOT_USER_ID) return ok(publicBotUser());
    if (isSnowflake(id)) {
      const count = Math.max(1, this.host.memberCount());
      for (const g of this.host.guildIds) {
        const idx = memberIndex(g, id, count);
        if (idx > 0) return ok(restMember(g, idx).user);
      }
    }
    return error(404, 'Unknown User', 10013);
  }

  /** A channel of one of the bot's guilds (channel ids are the guild id plus a small offset). */
  private channel(id: string): Obj | null {
    if (!isSnowflake(id)) return null;
    const n = BigInt(id);
    for (let k = 1n; k <= 64n; k++) {
      const g = (n - k).toString();
      if (!this.guildIndex.has(g)) continue;
      const c = guildChannels(g).find((ch) => ch.id === id);
      if (c) return { ...c };
    }
    return null;
  }

  private createMessage(channelId: string, body: unknown): RestHttpResponse {
    const channel = this.channel(channelId);
    if (!channel) return error(404, 'Unknown Channel', 10003);
    if (!acceptsMessages(channel)) return error(400, 'Cannot send messages in a non-text channel', 50008);
    const bad = messageBodyError(body);
    if (bad) return bad;
    const message = buildMessage(channelId, body as Obj);
    const guildId = channel.guild_id as string;
    return { ...ok(message), after: () => this.host.dispatchToGuild(guildId, 'MESSAGE_CREATE', messageCreateEvent(message, guildId)) };
  }

  private applicationCommands(m: RouteMatch, body: unknown): RestHttpResponse {
    const p = m.params;
    if (p.application_id !== BOT_USER_ID) return error(404, 'Unknown Application', 10002);
    const guildId = p.guild_id;
    if (guildId !== undefined && !this.guildIndex.has(guildId)) return error(403, 'Missing Access', 50001);
    const key = guildId ?? 'global';
    const list = this.commands.get(key) ?? [];
    if (m.name === 'globalCommands' || m.name === 'guildCommands') return ok(list);
    if (m.name === 'putGlobalCommands' || m.name === 'putGuildCommands') {
      if (!Array.isArray(body)) return formError('_errors', 'ARRAY_TYPE_CONVERT', 'Expected an array of application commands.');
      if (body.length > 100) return formError('_errors', 'BASE_TYPE_MAX_LENGTH', 'Must be 100 or fewer in length.');
      const out: Obj[] = [];
      for (let i = 0; i < body.length; i++) {
        const bad = checkCommand(body[i]);
        if (bad) return formError(String(i), 'BASE_TYPE_REQUIRED', bad);
        out.push(this.command(body[i] as Obj, list, guildId));
      }
      this.commands.set(key, out);
      return ok(out);
    }
    const bad = checkCommand(body);
    if (bad) return formError('name', 'BASE_TYPE_REQUIRED', bad);
    const cmd = this.command(body as Obj, list, guildId);
    const existing = list.findIndex((c) => c.id === cmd.id);
    if (existing >= 0) list[existing] = cmd;
    else list.push(cmd);
    this.commands.set(key, list);
    return ok(cmd, existing >= 0 ? 200 : 201);
  }

  private command(input: Obj, existing: readonly Obj[], guildId: string | undefined): Obj {
    const type = typeof input.type === 'number' ? input.type : 1;
    const prev = existing.find((c) => c.name === input.name && c.type === type);
    return {
      id: (prev?.id as string | undefined) ?? this.newId(),
      application_id: BOT_USER_ID,
      version: this.newId(),
      default_member_permissions: input.default_member_permissions ?? null,
      type,
      name: input.name,
      name_localizations: input.name_localizations ?? null,
      description: typeof input.description === 'string' ? input.description : '',
      description_localizations: input.description_localizations ?? null,
      ...(guildId !== undefined ? { guild_id: guildId } : { dm_permission: input.dm_permission ?? true }),
      nsfw: input.nsfw === true,
      integration_types: Array.isArray(input.integration_types) ? input.integration_types : [0],
      contexts: input.contexts ?? null,
      ...(Array.isArray(input.options) ? { options: input.options } : {}),
    };
  }

  private newId(): string {
    return snowflake(Date.now(), this.idCounter++ & 4095, 5);
  }
}

function checkCommand(c: unknown): string | null {
  if (!isObj(c)) return 'Expected an application command object.';
  if (typeof c.name !== 'string' || c.name.length < 1 || c.name.length > 32) return 'name: must be 1 to 32 characters.';
  const type = c.type ?? 1;
  if (type === 1 && (typeof c.description !== 'string' || c.description.length < 1 || c.description.length > 100)) return 'description: must be 1 to 100 characters.';
  return null;
}

function header(headers: RestHttpRequest['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Request headers without the token. */
function safeHeaders(headers: RestHttpRequest['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    const value = Array.isArray(v) ? v.join(', ') : v;
    out[k.toLowerCase()] = k.toLowerCase() === 'authorization' ? `${value.split(' ')[0] ?? ''} [redacted]`.trim() : value;
  }
  return out;
}

/** JSON body, `payload_json` of a multipart body, the text of anything else, undefined when empty. */
function parseBody(req: RestHttpRequest): unknown {
  if (req.body.length === 0) return undefined;
  const type = header(req.headers, 'content-type') ?? '';
  const boundary = /^multipart\/form-data;.*boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (boundary) return parseMultipart(req.body, boundary);
  const text = req.body.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** The `payload_json` part of a multipart body (plus the names of file parts as `files`). */
function parseMultipart(body: Buffer, boundary: string): unknown {
  const text = body.toString('latin1');
  const out: Obj = {};
  const files: string[] = [];
  for (const part of text.split(`--${boundary}`)) {
    const end = part.indexOf('\r\n\r\n');
    if (end < 0) continue;
    const head = part.slice(0, end);
    const name = /name="([^"]*)"/i.exec(head)?.[1];
    const value = part.slice(end + 4).replace(/\r\n$/, '');
    if (name === 'payload_json') {
      try {
        Object.assign(out, JSON.parse(Buffer.from(value, 'latin1').toString('utf8')) as Obj);
      } catch {
        out.payload_json = value;
      }
    } else if (name) files.push(/filename="([^"]*)"/i.exec(head)?.[1] ?? name);
  }
  if (files.length > 0) out.files = files;
  return out;
}
