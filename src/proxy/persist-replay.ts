/**
 * {@link ReplayPersister}: the replay rings and the client sessions in Redis, written in the same `MULTI` as the
 * upstream sessions (see persist.ts), so a restarted proxy holds the ring up to exactly the upstream sequence it
 * RESUMEs from: the gateway's replay then gives the ring the same entries, at the same positions, that the old
 * process had, and a client RESUMEs as if the proxy had never gone.
 *
 * Each write appends only the ring entries pushed since the last one (`RPUSH`, then `LTRIM` to the ring's size) and
 * rewrites only the sessions that changed (a session is a few numbers: see resume-map.ts).
 * @packageDocumentation
 */
import type { ChainableCommander, Redis } from 'ioredis';
import { ShardlineError } from '../errors.js';
import type { SessionState } from './client-session.js';
import type { ReplayRing, RingEntry } from './replay.js';

/** What the proxy hands over at each write. */
export interface ReplaySource {
  /** Each upstream shard's ring, by shard id. */
  rings: Iterable<readonly [number, ReplayRing]>;
  /** Every client session kept for RESUME, and whether a client is attached to it now. */
  sessions: Iterable<{ state: SessionState; attached: boolean }>;
}

/** A session as stored (its `stripContent` is recomputed from the intents at restore). */
export type StoredSession = Omit<SessionState, 'stripContent'>;

/** What a starting proxy reads back. */
export interface LoadedReplay {
  /** Per shard id: the position of the newest entry, and the entries held, oldest first. */
  rings: Map<number, { newest: number; entries: { type: string; d: string; ref?: true }[] }>;
  sessions: StoredSession[];
}

/** Marks a stored ring entry that is a reference (`@GUILD_CREATE {"id":"…"}`); a type never starts with it. */
const REF = '@';

/** A ring entry as stored: `<type> <d>`, a reference with {@link REF} before its type. */
const entryText = (e: RingEntry): string => `${e.ref === true ? REF : ''}${e.type} ${e.d}`;

const isInt = (v: unknown): v is number => Number.isInteger(v);

function encode(s: SessionState, attached: boolean): string {
  // attached now, or restored attached and not resumed since: a RESUME may be ahead of `seq`
  return JSON.stringify([s.id, s.shardId, s.intents, s.seq, s.pos, s.synthEnd, s.floor, attached || s.ahead ? 1 : 0, s.privates]);
}

function decode(text: string): StoredSession | null {
  const a = JSON.parse(text) as unknown;
  if (!Array.isArray(a) || a.length !== 9 || typeof a[0] !== 'string' || !a.slice(1, 8).every(isInt)) return null;
  const privates = a[8] as unknown;
  if (!Array.isArray(privates) || privates.length % 2 !== 0 || !privates.every(isInt)) return null;
  const [id, shardId, intents, seq, pos, synthEnd, floor, ahead] = a as [string, number, number, number, number, number, number, number];
  return { id, shardId, intents, seq, pos, synthEnd, floor, ahead: ahead === 1, privates: privates as number[] };
}

/** Redis persistence of the proxy's rings and client sessions (one per {@link ProxyStore}). */
export class ReplayPersister {
  /** Per shard: the newest ring position stored. */
  private readonly stored = new Map<number, number>();
  /** Per session id: the text stored. */
  private readonly written = new Map<string, string>();

  constructor(private readonly prefix: string) {}

  /**
   * Queue this write's commands on `m`: ring entries after the stored position (the whole ring when more than its
   * size were pushed meanwhile), the ring positions, the changed sessions, the removal of the gone ones. Returns
   * what to call once `m` succeeded.
   */
  write(m: ChainableCommander, src: ReplaySource): () => void {
    const positions: Record<number, number> = {};
    const marks: [number, number][] = [];
    for (const [id, ring] of src.rings) {
      positions[id] = ring.newest;
      const from = this.stored.get(id) ?? 0;
      if (ring.newest === from) continue;
      const key = `${this.prefix}ring:${id}`;
      // a ring this store has not written (or not since a restart) is written whole, over whatever the key held
      let entries = this.stored.has(id) && from >= ring.oldest - 1 && from < ring.newest ? ring.after(from) : null;
      if (entries === null) {
        m.del(key);
        entries = ring.after(ring.oldest - 1) ?? [];
      }
      if (entries.length !== 0) m.rpush(key, ...entries.map(entryText));
      m.ltrim(key, -ring.capacity, -1);
      marks.push([id, ring.newest]);
    }
    m.hset(`${this.prefix}meta`, 'rings', JSON.stringify(positions));
    const seen = new Set<string>();
    const changed: [string, string][] = [];
    for (const { state, attached } of src.sessions) {
      seen.add(state.id);
      const text = encode(state, attached);
      if (this.written.get(state.id) !== text) changed.push([state.id, text]);
    }
    if (changed.length !== 0) m.hset(`${this.prefix}clients`, Object.fromEntries(changed));
    const gone = [...this.written.keys()].filter((id) => !seen.has(id));
    if (gone.length !== 0) m.hdel(`${this.prefix}clients`, ...gone);
    return () => {
      for (const [id, pos] of marks) this.stored.set(id, pos);
      for (const [id, text] of changed) this.written.set(id, text);
      for (const id of gone) this.written.delete(id);
    };
  }

  /** Read the rings and sessions stored (and remember them as written). */
  async load(redis: Redis): Promise<LoadedReplay> {
    const [positionsText, clients] = await Promise.all([redis.hget(`${this.prefix}meta`, 'rings'), redis.hgetall(`${this.prefix}clients`)]);
    const out: LoadedReplay = { rings: new Map(), sessions: [] };
    try {
      const positions = positionsText ? (JSON.parse(positionsText) as Record<string, unknown>) : {};
      const ids = Object.keys(positions).filter((id) => isInt(Number(id)) && isInt(positions[id]));
      const lists = await Promise.all(ids.map((id) => redis.lrange(`${this.prefix}ring:${id}`, 0, -1)));
      ids.forEach((id, i) => {
        const entries = lists[i]!.map((text) => {
          const at = text.indexOf(' ');
          const ref = text.startsWith(REF);
          if (at < (ref ? 2 : 1)) throw new Error(`ring ${id}: an entry without a type`);
          return ref ? { type: text.slice(1, at), d: text.slice(at + 1), ref: true as const } : { type: text.slice(0, at), d: text.slice(at + 1) };
        });
        out.rings.set(Number(id), { newest: positions[id] as number, entries });
        this.stored.set(Number(id), positions[id] as number);
      });
      for (const [id, text] of Object.entries(clients)) {
        const s = decode(text);
        if (s === null || s.id !== id) throw new Error(`client session ${id} is malformed`);
        out.sessions.push(s);
        this.written.set(id, text);
      }
    } catch (err) {
      throw new ShardlineError('PROXY_STORE_CORRUPT', `the proxy's replay rings or client sessions in Redis (${this.prefix}*) are not readable: delete those keys: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return out;
  }
}
