/**
 * The shard's lifecycle as an explicit state machine. Every transition is checked against
 * {@link TRANSITIONS} (an illegal one is a bug and throws) and reported as a `state` event.
 *
 * ```
 * idle ─connect→ connecting ─HELLO→ identifying ─READY→ ready
 *                      │        └──→ resuming ──RESUMED→ ready
 *                      └─(drop)→ reconnecting ─→ connecting …
 * any ─close()→ closed          any ─fatal close code→ fatal
 * ```
 */
export type ShardState = 'idle' | 'connecting' | 'identifying' | 'resuming' | 'ready' | 'reconnecting' | 'closed' | 'fatal';

/** Allowed transitions. */
export const TRANSITIONS: Readonly<Record<ShardState, readonly ShardState[]>> = {
  idle: ['connecting', 'closed', 'fatal'],
  connecting: ['identifying', 'resuming', 'reconnecting', 'closed', 'fatal'],
  identifying: ['ready', 'reconnecting', 'closed', 'fatal'],
  resuming: ['ready', 'reconnecting', 'closed', 'fatal'],
  ready: ['reconnecting', 'closed', 'fatal'],
  reconnecting: ['connecting', 'closed', 'fatal'],
  closed: ['connecting', 'fatal'],
  fatal: ['connecting', 'closed'],
};

/** True when the state machine allows `from → to`. */
export function canTransition(from: ShardState, to: ShardState): boolean {
  return TRANSITIONS[from].includes(to);
}
