/**
 * Discord's answer shapes for the simulator's REST API: JSON errors (`{ message, code[, errors] }`), success answers,
 * and the message-body checks shared by every route that creates a message.
 * @packageDocumentation
 */
import type { RestHttpResponse } from './rest.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A Discord JSON error answer. */
export function error(status: number, message: string, code = 0, errors?: Obj): RestHttpResponse {
  return { status, headers: {}, body: errors ? { message, code, errors } : { message, code } };
}

/** A JSON answer (200 unless told). */
export function ok(body: unknown, status = 200): RestHttpResponse {
  return { status, headers: {}, body };
}

/** 204 No Content. */
export function noContent(): RestHttpResponse {
  return { status: 204, headers: {}, body: undefined };
}

/** `400 Invalid Form Body` (code 50035) naming one field. */
export function formError(field: string, code: string, message: string): RestHttpResponse {
  return error(400, 'Invalid Form Body', 50035, { [field]: { _errors: [{ code, message }] } });
}

/** Why a message body would be refused (50006 empty, 50035 bad content), or null when it is fine. */
export function messageBodyError(body: unknown): RestHttpResponse | null {
  if (!isObj(body)) return error(400, 'Cannot send an empty message', 50006);
  if (body.content !== undefined && typeof body.content !== 'string') return formError('content', 'STRING_TYPE_CONVERT', 'Could not interpret "content" as string.');
  const content = typeof body.content === 'string' ? body.content : '';
  if (content.length > 2000) return formError('content', 'BASE_TYPE_MAX_LENGTH', 'Must be 2000 or fewer in length.');
  const nonEmpty = (k: string): boolean => Array.isArray(body[k]) && (body[k] as unknown[]).length > 0;
  if (content === '' && !nonEmpty('embeds') && !nonEmpty('sticker_ids') && !nonEmpty('components') && !nonEmpty('attachments') && body.poll === undefined) {
    return error(400, 'Cannot send an empty message', 50006);
  }
  return null;
}
