/**
 * The caller side of {@link NatsBroker}'s commands (`nats-broker.ts`): a command as a NATS request to the shard's
 * owner with its errors made plain (`NO_SHARD_OWNER`, the owner's own error), and a member request whose chunks
 * the owner streams back to a private inbox.
 * @packageDocumentation
 */
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { systemClock } from '../clock.js';
import type { NoncedMemberRequest } from '../cluster-commands.js';
import { ShardlineError } from '../errors.js';
import type { GuildMembersChunk } from '../events.js';
import { MemberRequest } from '../members.js';
import { dec, enc } from './nats-connection.js';
import type { CommandReply, ShardCommand } from './nats-types.js';

/**
 * Send `command` on `subject` (shard `shardId`'s command subject) and wait for its owner's answer. Rejects with
 * `NO_SHARD_OWNER` when nobody answers within `timeout`, `BAD_REPLY` for an unreadable answer, or the owner's error.
 */
export async function requestCommand(nc: NatsConnection, subject: string, shardId: number, command: ShardCommand, timeout: number): Promise<CommandReply> {
  let msg: Msg;
  try {
    msg = await nc.request(subject, enc.encode(JSON.stringify(command)), { timeout });
  } catch (err) {
    const e = err as Error & { isNoResponders?: () => boolean; cause?: unknown };
    const noResponders = e.name === 'NoRespondersError' || e.isNoResponders?.() === true || (e.cause as Error | undefined)?.name === 'NoRespondersError';
    const timedOut = e.name === 'TimeoutError' || (e.cause as Error | undefined)?.name === 'TimeoutError';
    if (noResponders || timedOut) {
      throw new ShardlineError(
        'NO_SHARD_OWNER',
        noResponders
          ? `no process owns shard ${shardId}: nothing answers on ${subject} (is its gateway process running and serving commands?)`
          : `no process answered for shard ${shardId} on ${subject} within ${timeout} ms (its owner may be gone or overloaded; the command may still run)`,
        { cause: err },
      );
    }
    throw err;
  }
  let reply: { ok: boolean; shardId?: number; nonce?: string; code?: string; message?: string };
  try {
    reply = JSON.parse(dec.decode(msg.data)) as typeof reply;
  } catch (err) {
    throw new ShardlineError('BAD_REPLY', `the owner of shard ${shardId} sent an unreadable reply`, { cause: err });
  }
  if (!reply.ok) throw new ShardlineError(reply.code ?? 'COMMAND_FAILED', reply.message ?? `command failed on shard ${shardId}`);
  return reply.nonce === undefined ? { shardId } : { shardId, nonce: reply.nonce };
}

/** What a remote member request needs of its broker. */
export interface RemoteLink {
  readonly nc: NatsConnection;
  createInbox(): string;
  /** Throws `BROKER_CLOSED` once the broker is closing. */
  assertOpen(): void;
  /** Run `closer` when the broker closes; returns what unregisters it. */
  onClose(closer: () => Promise<void>): () => void;
  command(shardId: number, command: ShardCommand): Promise<CommandReply>;
}

/**
 * A member request run by the owner of `shardId` (a `members` command with a `chunks` inbox), its chunks and its
 * failure streamed back here: awaitable and iterable as on a local shard, bounded by `timeout` (real ms).
 */
export function remoteMemberRequest(link: RemoteLink, shardId: number, request: NoncedMemberRequest, timeout: number): MemberRequest {
  let sub: { unsubscribe(): void } | null = null;
  let unregister: () => void = () => {};
  const req = new MemberRequest(request.nonce, systemClock, timeout, () => {
    unregister();
    try {
      sub?.unsubscribe();
    } catch {
      // the connection is already closed: so is the subscription
    }
  });
  // Closing the broker ends the request at once (its timer and subscription must not outlive the broker).
  unregister = link.onClose(async () => req.fail(new ShardlineError('BROKER_CLOSED', `the broker was closed before member request ${request.nonce} was answered`)));
  try {
    link.assertOpen();
    const inbox = link.createInbox();
    sub = link.nc.subscribe(inbox, {
      callback: (err, msg) => {
        if (err) return req.fail(err);
        let m: { chunk?: GuildMembersChunk; error?: { code?: string; message?: string } };
        try {
          m = JSON.parse(dec.decode(msg.data)) as typeof m;
        } catch (e) {
          return req.fail(new ShardlineError('BAD_REPLY', `the owner of shard ${shardId} sent an unreadable member chunk`, { cause: e }));
        }
        if (m.chunk) req.push(m.chunk);
        else req.fail(new ShardlineError(m.error?.code ?? 'COMMAND_FAILED', m.error?.message ?? `member request failed on shard ${shardId}`));
      },
    });
    // The subscription is registered before the command is published (one connection, in order).
    link.command(shardId, { kind: 'members', request, chunks: inbox }).catch((err: Error) => req.fail(err));
  } catch (err) {
    req.fail(err as Error);
  }
  return req;
}
