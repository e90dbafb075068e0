/**
 * The owner side of {@link NatsBroker}'s commands (`nats-broker.ts`): the {@link CommandServer} that answers, on
 * each shard's command subject, the commands other processes send to the shards this process runs.
 * @packageDocumentation
 */
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import type { Cluster } from '../cluster.js';
import type { NoncedMemberRequest } from '../cluster-commands.js';
import { ShardlineError } from '../errors.js';
import type { MemberRequest } from '../members.js';
import { Shard } from '../shard.js';
import type { NatsBroker } from './nats-broker.js';
import { dec, enc } from './nats-connection.js';
import type { ShardCommand } from './nats-types.js';

/** Ops a remote command may not send: they belong to the shard's own session handling. */
const FORBIDDEN_OPS = new Set([1, 2, 6]);

/** Answers commands for the shards a process runs (made by {@link NatsBroker.serveCommands}). */
export class CommandServer {
  readonly shardIds: readonly number[];
  /** @internal */
  onClosed: (() => void) | null = null;
  private readonly subs: { unsubscribe(): void; drain(): Promise<void> }[] = [];
  private closed = false;
  private nonces = 0;

  private readonly nc: NatsConnection;

  /** @internal */
  constructor(
    broker: NatsBroker,
    private readonly source: Shard | Cluster,
    ids: number[],
    private readonly report: (err: Error) => void,
  ) {
    this.shardIds = ids;
    this.nc = broker.nc;
    for (const id of ids) {
      // A queue group: even if two processes briefly served one shard, a command runs once.
      const sub = broker.nc.subscribe(broker.commandSubject(id), {
        queue: 'owner',
        callback: (err, msg) => {
          if (err) return this.report(err);
          void this.answer(id, msg);
        },
      });
      this.subs.push(sub);
    }
  }

  /** Stop answering (in-flight commands finish). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.subs.map((s) => s.drain().catch(() => s.unsubscribe())));
    this.onClosed?.();
  }

  private async answer(shardId: number, msg: Msg): Promise<void> {
    let reply: Record<string, unknown>;
    try {
      const cmd = JSON.parse(dec.decode(msg.data)) as ShardCommand;
      reply = { ok: true, shardId, ...(await this.run(shardId, cmd)) };
    } catch (err) {
      const e = err as Error & { code?: string };
      reply = { ok: false, shardId, code: typeof e.code === 'string' ? e.code : 'COMMAND_FAILED', message: e.message ?? String(err) };
    }
    try {
      msg.respond(enc.encode(JSON.stringify(reply)));
    } catch (err) {
      this.report(err as Error);
    }
  }

  private localMembers(shardId: number, request: NoncedMemberRequest): MemberRequest {
    const source = this.source;
    if (source instanceof Shard) {
      if (source.id !== shardId) throw new ShardlineError('UNKNOWN_SHARD', `this process runs shard ${source.id}, not ${shardId}`);
      return source.requestGuildMembers(request);
    }
    const owner = source.shardIdFor(request.guild_id);
    if (owner !== shardId) throw new ShardlineError('WRONG_SHARD', `guild ${request.guild_id} belongs to shard ${owner}, not ${shardId} (do both sides use the same shard count?)`);
    return source.requestGuildMembers(request);
  }

  private async streamMembers(req: MemberRequest, subject: string): Promise<void> {
    try {
      for await (const chunk of req) this.nc.publish(subject, enc.encode(JSON.stringify({ chunk })));
    } catch (err) {
      const e = err as Error & { code?: string };
      try {
        this.nc.publish(subject, enc.encode(JSON.stringify({ error: { code: typeof e.code === 'string' ? e.code : 'COMMAND_FAILED', message: e.message ?? String(err) } })));
      } catch (publishError) {
        this.report(publishError as Error);
      }
    }
  }

  private async run(shardId: number, cmd: ShardCommand): Promise<{ nonce?: string }> {
    const send = (payload: { op: number; d: unknown }): Promise<void> => {
      if (this.source instanceof Shard) {
        if (this.source.id !== shardId) throw new ShardlineError('UNKNOWN_SHARD', `this process runs shard ${this.source.id}, not ${shardId}`);
        return this.source.send(payload);
      }
      return this.source.send(shardId, payload);
    };
    switch (cmd?.kind) {
      case 'presence':
        await send({ op: 3, d: cmd.presence });
        return {};
      case 'voice':
        await send({ op: 4, d: cmd.state });
        return {};
      case 'members': {
        const nonce = cmd.request.nonce ?? `slr${shardId.toString(36)}-${(this.nonces++).toString(36)}-${Date.now().toString(36)}`;
        if (typeof cmd.chunks === 'string') {
          // The caller wants the chunks back: run the request here and publish each chunk to its inbox.
          void this.streamMembers(this.localMembers(shardId, { ...cmd.request, nonce }), cmd.chunks);
          return { nonce };
        }
        await send({ op: 8, d: { ...cmd.request, nonce } });
        return { nonce };
      }
      case 'send':
        if (!Number.isInteger(cmd.op) || FORBIDDEN_OPS.has(cmd.op)) {
          throw new ShardlineError('FORBIDDEN_OP', `op ${String(cmd.op)} cannot be sent remotely (heartbeat, identify and resume belong to the shard)`);
        }
        await send({ op: cmd.op, d: cmd.d });
        return {};
      default:
        throw new ShardlineError('UNKNOWN_COMMAND', `unknown command kind ${JSON.stringify((cmd as { kind?: unknown })?.kind)}`);
    }
  }
}
