/**
 * Interactions the simulator dispatched (INTERACTION_CREATE through `sim.dispatch`), so their REST side behaves as on
 * Discord: a callback that answers with a message (type 4) or defers (type 5) creates the response message in the
 * interaction's channel and dispatches it as MESSAGE_CREATE; the interaction token then works as a webhook for the
 * original response (`/webhooks/{app}/{token}/messages/@original`) and follow-ups (`POST /webhooks/{app}/{token}`).
 * @packageDocumentation
 */
import { BOT_USER_ID, isSnowflake } from './fixtures.js';
import type { RestHttpResponse } from './rest.js';
import { error, formError, messageBodyError, noContent, ok } from './rest-answers.js';
import { buildMessage, messageCreateEvent } from './rest-objects.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** An interaction the simulator dispatched. */
export interface KnownInteraction {
  id: string;
  token: string;
  type: number;
  channelId: string | null;
  guildId: string | null;
  /** The invoking user (partial user object), if the payload had one. */
  user: Obj | null;
  /** Command name (application commands). */
  name: string | null;
  acknowledged: boolean;
  /** The original response message, once created. */
  original: Obj | null;
}

/** Message flag: only the invoking user sees the message (never dispatched to the bot). */
export const EPHEMERAL = 1 << 6;
/** Message flag: a deferred response's "thinking" placeholder. */
export const LOADING = 1 << 7;
const KEEP = 5000;
const CALLBACK_TYPES = new Set([1, 4, 5, 6, 7, 8, 9, 10, 12]);
const CHANNEL_MESSAGE_WITH_SOURCE = 4;
const DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5;

/** Interactions by id and by token (the most recent {@link KEEP}). */
export class InteractionStore {
  private readonly byId = new Map<string, KnownInteraction>();
  private readonly byToken = new Map<string, KnownInteraction>();

  /** Remember an INTERACTION_CREATE `d` (ignored when it has no id and token). */
  note(d: unknown): void {
    if (!isObj(d) || typeof d.id !== 'string' || typeof d.token !== 'string') return;
    const member = isObj(d.member) ? d.member : null;
    const user = isObj(member?.user) ? (member.user as Obj) : isObj(d.user) ? d.user : null;
    const channelId = typeof d.channel_id === 'string' ? d.channel_id : isObj(d.channel) && typeof d.channel.id === 'string' ? d.channel.id : null;
    const i: KnownInteraction = {
      id: d.id,
      token: d.token,
      type: typeof d.type === 'number' ? d.type : 2,
      channelId,
      guildId: typeof d.guild_id === 'string' ? d.guild_id : null,
      user,
      name: isObj(d.data) && typeof d.data.name === 'string' ? d.data.name : null,
      acknowledged: false,
      original: null,
    };
    this.byId.set(i.id, i);
    this.byToken.set(i.token, i);
    if (this.byId.size > KEEP) {
      const oldest = this.byId.values().next().value as KnownInteraction;
      this.byId.delete(oldest.id);
      this.byToken.delete(oldest.token);
    }
  }

  get(id: string): KnownInteraction | undefined {
    return this.byId.get(id);
  }

  withToken(token: string): KnownInteraction | undefined {
    return this.byToken.get(token);
  }
}

/** The message an interaction response or follow-up creates (author = the bot, with `interaction_metadata`). */
export function interactionMessage(i: KnownInteraction, data: Obj, followUp: boolean): Obj {
  const msg = buildMessage(i.channelId ?? '0', data);
  msg.type = followUp ? 0 : i.type === 3 ? 0 : 20;
  msg.webhook_id = BOT_USER_ID;
  msg.application_id = BOT_USER_ID;
  msg.interaction_metadata = {
    id: i.id,
    type: i.type,
    ...(i.name !== null ? { name: i.name } : {}),
    ...(i.user ? { user: i.user } : {}),
    authorizing_integration_owners: i.guildId ? { '0': i.guildId } : { '1': (i.user?.id as string | undefined) ?? '0' },
  };
  return msg;
}

/** Interaction callbacks and the interaction-token webhook routes. */
export class InteractionRoutes {
  readonly store = new InteractionStore();
  /** Acknowledged interaction ids (known or not), the most recent {@link KEEP} * 2. */
  private readonly acked = new Set<string>();

  constructor(private readonly dispatchToGuild: (guildId: string, t: string, d: unknown) => void) {}

  /** `POST /interactions/{id}/{token}/callback`. */
  callback(interactionId: string, query: Record<string, string>, body: unknown): RestHttpResponse {
    if (!isSnowflake(interactionId)) return error(404, 'Unknown interaction', 10062);
    if (!isObj(body) || typeof body.type !== 'number' || !CALLBACK_TYPES.has(body.type)) return formError('type', 'BASE_TYPE_CHOICES', 'Value must be one of {1, 4, 5, 6, 7, 8, 9, 10, 12}.');
    if (this.acked.has(interactionId)) return error(400, 'Interaction has already been acknowledged.', 40060);
    const known = this.store.get(interactionId);
    const data = isObj(body.data) ? body.data : {};
    let message: Obj | null = null;
    if (known && known.channelId !== null && (body.type === CHANNEL_MESSAGE_WITH_SOURCE || body.type === DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE)) {
      if (body.type === CHANNEL_MESSAGE_WITH_SOURCE) {
        const bad = messageBodyError(data);
        if (bad) return bad;
        message = interactionMessage(known, data, false);
      } else {
        const flags = typeof data.flags === 'number' ? data.flags & EPHEMERAL : 0;
        message = interactionMessage(known, { content: '', flags: flags | LOADING }, false);
      }
      known.original = message;
    }
    this.acked.add(interactionId);
    if (this.acked.size > KEEP * 2) this.acked.delete(this.acked.values().next().value as string);
    if (known) known.acknowledged = true;
    const after = message && known ? () => this.publish(known, 'MESSAGE_CREATE', message) : undefined;
    if (query.with_response !== 'true') return { ...noContent(), ...(after ? { after } : {}) };
    const answer = ok({
      interaction: {
        id: interactionId,
        type: known?.type ?? 2,
        activity_instance_id: null,
        response_message_id: (message?.id as string | undefined) ?? null,
        response_message_loading: body.type === DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
        response_message_ephemeral: message !== null && ((message.flags as number) & EPHEMERAL) !== 0,
      },
      resource: { type: body.type, ...(message ? { message } : {}) },
    });
    return after ? { ...answer, after } : answer;
  }

  /** `POST /webhooks/{app}/{token}`: a follow-up message (answered with the message when `?wait=true`, else 204, as on Discord). */
  followUp(webhookId: string, token: string, query: Record<string, string>, body: unknown): RestHttpResponse {
    const i = this.interaction(webhookId, token);
    if (!i) return error(404, 'Unknown Webhook', 10015);
    const bad = messageBodyError(body);
    if (bad) return bad;
    const message = interactionMessage(i, body as Obj, true);
    const after = () => this.publish(i, 'MESSAGE_CREATE', message);
    return query.wait === 'true' ? { ...ok(message), after } : { ...noContent(), after };
  }

  /** `GET` / `PATCH` / `DELETE /webhooks/{app}/{token}/messages/@original`. */
  original(route: 'getOriginal' | 'editOriginal' | 'deleteOriginal', webhookId: string, token: string, body: unknown): RestHttpResponse {
    const i = this.interaction(webhookId, token);
    if (!i) return error(404, 'Unknown Webhook', 10015);
    const msg = i.original;
    if (!msg) return error(404, 'Unknown Message', 10008);
    if (route === 'getOriginal') return ok(msg);
    if (route === 'deleteOriginal') {
      i.original = null;
      return { ...noContent(), after: () => this.publish(i, 'MESSAGE_DELETE', { id: msg.id, channel_id: msg.channel_id }, msg) };
    }
    if (!isObj(body)) return formError('_errors', 'DICT_TYPE_CONVERT', 'Expected an object.');
    const edited: Obj = { ...msg, edited_timestamp: new Date().toISOString().replace('Z', '000+00:00'), flags: (msg.flags as number) & ~LOADING };
    for (const k of ['content', 'embeds', 'components', 'attachments', 'poll'] as const) if (body[k] !== undefined) edited[k] = body[k];
    const bad = messageBodyError(edited);
    if (bad) return bad;
    i.original = edited;
    return { ...ok(edited), after: () => this.publish(i, 'MESSAGE_UPDATE', edited) };
  }

  private interaction(webhookId: string, token: string): KnownInteraction | null {
    const i = this.store.withToken(token);
    return i && webhookId === BOT_USER_ID && i.acknowledged ? i : null;
  }

  /** Dispatch a message event of an interaction's guild channel (ephemeral messages reach only the user, never the bot). */
  private publish(i: KnownInteraction, t: string, d: Obj, message: Obj = d): void {
    if (i.guildId === null || ((message.flags as number) & EPHEMERAL) !== 0) return;
    this.dispatchToGuild(i.guildId, t, t === 'MESSAGE_DELETE' ? { ...d, guild_id: i.guildId } : messageCreateEvent(d, i.guildId));
  }
}
