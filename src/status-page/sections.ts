/**
 * Extra sections of the status page: figures that code beside the cluster (a gateway proxy, a cache, a queue)
 * adds to the snapshot and the page draws under the shard tiles, as summary cards and a per-shard table.
 * @packageDocumentation
 */

/** A value shown on the status page: a number (drawn with thousands separators), a short text, or `null` (drawn as `–`). */
export type StatusValue = number | string | null;

/**
 * One extra section of the status page, returned by {@link StatusPageOptions.sections} at every snapshot.
 *
 * @example
 * ```ts
 * const status = await serveStatus(cluster, {
 *   port: 8080,
 *   sections: () => [{
 *     title: 'Job queue',
 *     summary: [{ label: 'waiting', value: queue.size }],
 *     columns: ['jobs run'],
 *     shards: cluster.status().map((s) => ({ id: s.id, values: [jobsRun[s.id] ?? 0] })),
 *   }],
 * });
 * ```
 */
export interface StatusSection {
  /** Heading of the section, e.g. `'Gateway proxy'`. */
  title: string;
  /** Figures for the whole section, drawn as cards in this order. */
  summary?: { label: string; value: StatusValue }[];
  /** Headings of the per-shard table after the shard id (one per entry of each row's `values`). */
  columns?: string[];
  /** One row per shard: `values` in the order of `columns`. */
  shards?: { id: number; values: StatusValue[] }[];
}

/** Call `sections` and keep only well-formed values, so one bad extension cannot break the page (a throw becomes an `error` card). */
export function collectSections(sections: (() => StatusSection[]) | undefined): StatusSection[] {
  if (!sections) return [];
  const value = (v: unknown): StatusValue => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' ? v : null);
  let list: StatusSection[];
  try {
    list = sections();
  } catch (err) {
    return [{ title: 'sections', summary: [{ label: 'error', value: err instanceof Error ? err.message : String(err) }], columns: [], shards: [] }];
  }
  return list.map((s) => ({
    title: String(s.title),
    summary: (s.summary ?? []).map((e) => ({ label: String(e.label), value: value(e.value) })),
    columns: (s.columns ?? []).map(String),
    shards: (s.shards ?? []).map((r) => ({ id: r.id, values: r.values.map(value) })),
  }));
}
