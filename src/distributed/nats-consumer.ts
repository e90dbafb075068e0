/**
 * The worker side of {@link NatsBroker} (`nats-broker.ts`): a durable JetStream consumer with explicit acks, and
 * the {@link EventConsumer} that runs a handler over it.
 * @packageDocumentation
 */
import type { ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import { ShardlineError } from '../errors.js';
import { dec, ms, NAME, type NatsModules, typeToken } from './nats-connection.js';
import type { BrokerEvent, ConsumeOptions, DeliveryInfo, PoisonEvent } from './nats-types.js';

/**
 * Create (or update the limits of) the durable consumer `options.name` on `stream`, filtered as `options.filter`
 * says, and start fetching from it. A consumer of that name with another filter is refused (`CONSUMER_MISMATCH`).
 */
export async function openDurable(
  nats: { js: JetStreamClient; jsm: JetStreamManager; mods: NatsModules },
  stream: string,
  subjectPrefix: string,
  options: ConsumeOptions,
): Promise<{ messages: ConsumerMessages; maxDeliveries: number }> {
  if (!NAME.test(options.name ?? '')) {
    throw new ShardlineError('INVALID_OPTION', `consumer name must be 1–64 characters of A–Z, a–z, 0–9, _ or - (and stable across restarts), got ${JSON.stringify(options.name)}`);
  }
  const { js, jsm, mods } = nats;
  const f = options.filter ?? {};
  const filter = f.shardId === undefined && f.type === undefined ? `${subjectPrefix}.events.>` : `${subjectPrefix}.events.${f.shardId ?? '*'}.${f.type === undefined ? '*' : typeToken(f.type)}`;
  const maxDeliveries = Math.max(1, options.maxDeliveries ?? 5);
  const config = {
    durable_name: options.name,
    ack_policy: mods.js.AckPolicy.Explicit,
    deliver_policy: mods.js.DeliverPolicy.All,
    filter_subject: filter,
    max_deliver: maxDeliveries,
    ack_wait: ms(options.ackWait ?? 30_000),
    max_ack_pending: options.maxAckPending ?? 1000,
  };
  try {
    await jsm.consumers.add(stream, config);
  } catch (err) {
    const info = await jsm.consumers.info(stream, options.name).catch(() => null);
    if (!info) throw err;
    if (info.config.filter_subject !== filter) {
      throw new ShardlineError('CONSUMER_MISMATCH', `durable consumer ${options.name} exists with filter ${info.config.filter_subject ?? '(none)'}, not ${filter}: use another name or delete it`, {
        cause: err,
      });
    }
    await jsm.consumers.update(stream, options.name, { max_deliver: config.max_deliver, ack_wait: config.ack_wait, max_ack_pending: config.max_ack_pending });
  }
  const consumer = await js.consumers.get(stream, options.name);
  const messages = await consumer.consume({ max_messages: options.prefetch ?? 100 });
  return { messages, maxDeliveries };
}

/** A running durable consumer (made by {@link NatsBroker.consume}). */
export class EventConsumer {
  /** Counters: events acknowledged, handler failures (nak'ed), events terminated as poison. */
  readonly stats = { handled: 0, failed: 0, poisoned: 0 };
  readonly name: string;
  /** Settles when the consumer has stopped. */
  readonly done: Promise<void>;
  private stopping = false;

  /** @internal */
  constructor(
    private readonly options: ConsumeOptions,
    private readonly maxDeliveries: number,
    private readonly messages: ConsumerMessages,
    private readonly poison: (p: PoisonEvent) => void,
  ) {
    this.name = options.name;
    this.done = this.run();
  }

  /**
   * Stop fetching; the event being handled finishes (and is acknowledged) first, waiting at most `timeout` ms for it.
   * Un-acked events (prefetched, or a handler that did not finish) are redelivered to the next consumer of this name
   * after `ackWait`.
   */
  async stop(timeout = 10_000): Promise<void> {
    this.stopping = true;
    await this.messages.close().catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.done, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeout)))]);
    clearTimeout(timer);
  }

  private async run(): Promise<void> {
    try {
      for await (const m of this.messages) {
        await this.handle(m);
        if (this.stopping) break;
      }
    } catch {
      // the iterator ends with an error when the connection closes: the consumer stops
    }
  }

  private async handle(m: JsMsg): Promise<void> {
    const info: DeliveryInfo = { deliveryCount: m.info.deliveryCount, redelivered: m.redelivered, subject: m.subject, streamSequence: m.info.streamSequence };
    let event: BrokerEvent | null = null;
    try {
      event = JSON.parse(dec.decode(m.data)) as BrokerEvent;
      if (typeof event !== 'object' || event === null || typeof event.type !== 'string') throw new TypeError('not a shardline event');
    } catch (err) {
      m.term('undecodable');
      this.stats.poisoned++;
      this.poison({ consumer: this.name, subject: m.subject, streamSequence: info.streamSequence, deliveryCount: info.deliveryCount, event: null, error: err as Error });
      return;
    }
    try {
      await this.options.handler(event, info);
      m.ack();
      this.stats.handled++;
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      if (info.deliveryCount >= this.maxDeliveries) {
        m.term(`failed ${info.deliveryCount} times: ${error.message}`.slice(0, 200));
        this.stats.poisoned++;
        this.poison({ consumer: this.name, subject: m.subject, streamSequence: info.streamSequence, deliveryCount: info.deliveryCount, event, error });
        return;
      }
      const d = this.options.nakDelay;
      const delay = typeof d === 'function' ? d(info.deliveryCount) : (d ?? Math.min(1000 * 2 ** (info.deliveryCount - 1), 30_000));
      m.nak(Math.max(0, delay));
      this.stats.failed++;
    }
  }
}
