/**
 * Which stream position a client's RESUME sequence stands for. A session keeps no table of its sequence numbers:
 * after its synthesized start each one is either a ring entry its intents let through (in stream order) or one of
 * its few private dispatches (RESUMED, op 8 answers, kept as `[seq, pos]` pairs), so the ring and the session's
 * anchor (`seq` ↔ `pos`) give every mapping by walking the ring. That costs a RESUME one intent check per ring
 * entry walked (the replay that follows touches the same entries), keeps a session at a few numbers, and is what
 * Redis stores of it.
 * @packageDocumentation
 */
import type { SessionState } from './client-session.js';
import { wants } from './filter.js';
import type { ReplayRing } from './replay.js';

/**
 * The stream position the client had reached when it was sent sequence `seq`: every ring entry up to it was
 * offered to it, none after. Null when the RESUME cannot continue: inside the synthesized start, older than the
 * session's oldest private pair, beyond what was sent (unless the session is `ahead`), or needing ring entries no
 * longer held.
 */
export function resumePos(state: SessionState, seq: number, ring: ReplayRing): number | null {
  if (!Number.isInteger(seq) || seq < state.synthEnd || seq < state.floor) return null;
  if (seq > state.seq) return state.ahead ? forward(state, seq, ring) : null;
  let s = state.seq;
  let p = state.pos;
  const privates = state.privates;
  let k = privates.length - 2;
  while (s > seq) {
    if (k >= 0 && privates[k] === s) {
      // a private dispatch: written when the client had reached privates[k + 1]
      p = privates[k + 1]!;
      k -= 2;
      s--;
      continue;
    }
    // the newest entry at or before p that the client wanted carries sequence s
    for (;;) {
      const e = ring.at(p);
      if (e === null) return null;
      if (wants(state.intents, e.type, e.d)) break;
      p--;
    }
    p--;
    s--;
  }
  return p >= ring.oldest - 1 ? p : null;
}

/** Walk forward from the anchor: the client of an `ahead` session got the wanted entries after `pos` in order. */
function forward(state: SessionState, seq: number, ring: ReplayRing): number | null {
  let s = state.seq;
  let p = state.pos;
  if (p < ring.oldest - 1) return null;
  while (s < seq) {
    const e = ring.at(++p);
    if (e === null) return null;
    if (wants(state.intents, e.type, e.d)) s++;
  }
  return p;
}
