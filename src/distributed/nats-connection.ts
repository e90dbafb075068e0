/**
 * The NATS side of {@link NatsBroker} (`nats-broker.ts`): loading the optional peer dependencies, and creating or
 * updating the JetStream stream of events; the codec and names every part of the broker shares.
 * @packageDocumentation
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import { ShardlineError } from '../errors.js';
import type { NatsBrokerOptions } from './nats-types.js';

/** The optional peer dependencies, loaded by {@link NatsBroker.connect}. */
export type NatsModules = { nats: typeof import('@nats-io/transport-node'); js: typeof import('@nats-io/jetstream') };

/** A bot or consumer name (it names subjects, streams and durable consumers). */
export const NAME = /^[A-Za-z0-9_-]{1,64}$/;
export const enc = new TextEncoder();
export const dec = new TextDecoder();
/** Milliseconds → the nanoseconds of a JetStream duration. */
export const ms = (n: number): number => Math.round(n * 1_000_000);

/** The event subject's last token: a dispatch type with anything but A–Z, a–z, 0–9, _ and - replaced. */
export const typeToken = (type: string): string => type.replace(/[^A-Za-z0-9_-]/g, '_');

export async function loadNats(): Promise<NatsModules> {
  try {
    const [nats, js] = await Promise.all([import('@nats-io/transport-node'), import('@nats-io/jetstream')]);
    return { nats, js };
  } catch (err) {
    throw new ShardlineError(
      'MISSING_PEER_DEPENDENCY',
      'NatsBroker needs the optional peer dependencies "@nats-io/transport-node" and "@nats-io/jetstream": run `npm install @nats-io/transport-node @nats-io/jetstream`.',
      { cause: err },
    );
  }
}

/** Create the event stream `name` over `{subjectPrefix}.events.>`, or update its limits and add the subjects. */
export async function ensureStream(jsm: JetStreamManager, mods: NatsModules, name: string, subjectPrefix: string, options: NatsBrokerOptions['stream'] = {}): Promise<void> {
  const s = options;
  const subjects = [`${subjectPrefix}.events.>`];
  const limits = {
    max_age: ms(s.maxAge ?? 86_400_000),
    max_bytes: s.maxBytes ?? 1024 ** 3,
    duplicate_window: ms(s.duplicateWindow ?? 120_000),
  };
  const info = await jsm.streams.info(name).catch(() => null);
  if (!info) {
    await jsm.streams.add({
      name,
      subjects,
      ...limits,
      storage: s.storage === 'memory' ? mods.js.StorageType.Memory : mods.js.StorageType.File,
      num_replicas: s.replicas ?? 1,
      discard: mods.js.DiscardPolicy.Old,
    });
    return;
  }
  const merged = [...new Set([...(info.config.subjects ?? []), ...subjects])];
  await jsm.streams.update(name, { ...info.config, subjects: merged, ...limits });
}
