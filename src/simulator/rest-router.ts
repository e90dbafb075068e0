/**
 * The simulator's REST router: path normalisation and route matching, the way Discord's API front end does it
 * (optional `/api` and `/api/v{n}` prefix, percent-decoded segments so `/users/%40me` is `/users/@me`, a trailing
 * slash ignored). Pure: no I/O, no state.
 * @packageDocumentation
 */

/** HTTP methods the simulator's routes use. */
export type RestMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Names of the routes the simulator answers. */
export type RestRouteName =
  | 'gateway'
  | 'gatewayBot'
  | 'currentUser'
  | 'user'
  | 'currentApplication'
  | 'oauth2Application'
  | 'guild'
  | 'guildMember'
  | 'channel'
  | 'createMessage'
  | 'globalCommands'
  | 'putGlobalCommands'
  | 'createGlobalCommand'
  | 'guildCommands'
  | 'putGuildCommands'
  | 'createGuildCommand'
  | 'interactionCallback'
  | 'executeWebhook'
  | 'getOriginal'
  | 'editOriginal'
  | 'deleteOriginal';

interface RouteDef {
  method: RestMethod;
  /** Template with `:param` segments; literal segments are compared exactly. */
  template: string;
  name: RestRouteName;
  /** Discord's "major parameter" of the route (rate-limit buckets are per route and major parameter). */
  major?: string;
}

/** The route table. Order matters only where a literal and a parameter compete (`@me` before `:user_id`). */
export const REST_ROUTES: readonly RouteDef[] = [
  { method: 'GET', template: '/gateway', name: 'gateway' },
  { method: 'GET', template: '/gateway/bot', name: 'gatewayBot' },
  { method: 'GET', template: '/users/@me', name: 'currentUser' },
  { method: 'GET', template: '/users/:user_id', name: 'user' },
  { method: 'GET', template: '/applications/@me', name: 'currentApplication' },
  { method: 'GET', template: '/oauth2/applications/@me', name: 'oauth2Application' },
  { method: 'GET', template: '/guilds/:guild_id', name: 'guild', major: 'guild_id' },
  { method: 'GET', template: '/guilds/:guild_id/members/:user_id', name: 'guildMember', major: 'guild_id' },
  { method: 'GET', template: '/channels/:channel_id', name: 'channel', major: 'channel_id' },
  { method: 'POST', template: '/channels/:channel_id/messages', name: 'createMessage', major: 'channel_id' },
  { method: 'GET', template: '/applications/:application_id/commands', name: 'globalCommands' },
  { method: 'PUT', template: '/applications/:application_id/commands', name: 'putGlobalCommands' },
  { method: 'POST', template: '/applications/:application_id/commands', name: 'createGlobalCommand' },
  { method: 'GET', template: '/applications/:application_id/guilds/:guild_id/commands', name: 'guildCommands', major: 'guild_id' },
  { method: 'PUT', template: '/applications/:application_id/guilds/:guild_id/commands', name: 'putGuildCommands', major: 'guild_id' },
  { method: 'POST', template: '/applications/:application_id/guilds/:guild_id/commands', name: 'createGuildCommand', major: 'guild_id' },
  {
    method: 'POST',
    template: '/interactions/:interaction_id/:interaction_token/callback',
    name: 'interactionCallback',
    major: 'interaction_id',
  },
  { method: 'POST', template: '/webhooks/:webhook_id/:webhook_token', name: 'executeWebhook', major: 'webhook_token' },
  { method: 'GET', template: '/webhooks/:webhook_id/:webhook_token/messages/@original', name: 'getOriginal', major: 'webhook_token' },
  { method: 'PATCH', template: '/webhooks/:webhook_id/:webhook_token/messages/@original', name: 'editOriginal', major: 'webhook_token' },
  { method: 'DELETE', template: '/webhooks/:webhook_id/:webhook_token/messages/@original', name: 'deleteOriginal', major: 'webhook_token' },
];

/** A request path after normalisation. */
export interface NormalizedPath {
  /** Decoded path without the `/api[/v{n}]` prefix and without a trailing slash, e.g. `/users/@me`. */
  path: string;
  /** Decoded segments of `path`. */
  segments: string[];
  /** API version from the prefix, or null when the path had none (Discord then uses its default). */
  version: number | null;
  /** Query parameters. */
  query: Record<string, string>;
}

/**
 * Normalise a request URL (`/api/v10/users/%40me?x=1`) the way Discord's API does: the `/api` prefix and the
 * version segment are optional, segments are percent-decoded, empty segments and a trailing slash are ignored.
 * Returns null when a segment is not valid percent-encoding.
 */
export function normalizeRestPath(rawUrl: string): NormalizedPath | null {
  const q = rawUrl.indexOf('?');
  const pathname = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const raw = pathname.split('/').filter((s) => s.length > 0);
  const segments: string[] = [];
  for (const s of raw) {
    try {
      segments.push(decodeURIComponent(s));
    } catch {
      return null;
    }
  }
  let version: number | null = null;
  if (segments[0] === 'api') {
    segments.shift();
    const m = /^v(\d{1,3})$/.exec(segments[0] ?? '');
    if (m) {
      version = Number(m[1]);
      segments.shift();
    }
  }
  const query: Record<string, string> = {};
  if (q >= 0) for (const [k, v] of new URLSearchParams(rawUrl.slice(q + 1))) query[k] = v;
  return { path: `/${segments.join('/')}`, segments, version, query };
}

/** A matched route. */
export interface RouteMatch {
  name: RestRouteName;
  /** The route template, e.g. `/channels/:channel_id/messages` (what `sim.restRequests()` reports as `route`). */
  route: string;
  params: Record<string, string>;
  /** Value of the route's major parameter ('' when it has none). */
  major: string;
}

/** Result of {@link matchRoute}: a route, or why none matched. */
export type RouteResult = { ok: true; match: RouteMatch } | { ok: false; status: 404 | 405 };

/** Match a normalised path against {@link REST_ROUTES}. A known path with another method is a 405, as on Discord. */
export function matchRoute(method: string, segments: readonly string[]): RouteResult {
  let pathMatched = false;
  for (const def of REST_ROUTES) {
    const params = matchTemplate(def.template, segments);
    if (!params) continue;
    if (def.method !== method.toUpperCase()) {
      pathMatched = true;
      continue;
    }
    return { ok: true, match: { name: def.name, route: def.template, params, major: def.major ? (params[def.major] ?? '') : '' } };
  }
  return { ok: false, status: pathMatched ? 405 : 404 };
}

const templateCache = new Map<string, string[]>();

function matchTemplate(template: string, segments: readonly string[]): Record<string, string> | null {
  let parts = templateCache.get(template);
  if (!parts) {
    parts = template.split('/').filter((s) => s.length > 0);
    templateCache.set(template, parts);
  }
  if (parts.length !== segments.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    const s = segments[i]!;
    if (p.startsWith(':')) {
      // `@me` is a literal of its own routes, never a parameter value of another.
      if (s === '@me') return null;
      params[p.slice(1)] = s;
    } else if (p !== s) return null;
  }
  return params;
}
