/**
 * The shard's websocket and its inflater, below the driver (`src/shard.ts`): opening both for one connection,
 * releasing them (a graceful close that a dead peer cannot hang: terminated after 1 s), and the transport
 * decompression totals kept across connections. No protocol here; the driver feeds what arrives to the core.
 *
 * @packageDocumentation
 */
import WebSocket from 'ws';
import { createInflater, type Inflater, type TransportCompression } from './inflate.js';

/** One connection's socket as the driver holds it. */
export interface Socket {
  readonly conn: number;
  readonly ws: WebSocket;
  readonly inflater: Inflater | null;
  /** Created when the connection asks for an identify turn (a resuming connection never does). */
  identifyAbort: AbortController | null;
}

/** Decompression totals of the connections already closed (created at the first close). */
export interface InflateTotals {
  bytesIn: number;
  bytesOut: number;
  messages: number;
}

/** A socket to `url` and its inflater (none without compression). Throws when either cannot be created (nothing is left open). */
export function openSocket(url: string, compression: TransportCompression | false, maxMessageSize: number): { ws: WebSocket; inflater: Inflater | null } {
  let inflater: Inflater | null = null;
  try {
    inflater = compression ? createInflater(compression, { maxMessageSize }) : null;
    return { ws: new WebSocket(url, { perMessageDeflate: false, maxPayload: maxMessageSize }), inflater };
  } catch (err) {
    inflater?.close();
    throw err;
  }
}

/** Close `inflater`, adding its counters to `past` (created when null); returns the totals. */
export function closeInflater(inflater: Inflater, past: InflateTotals | null): InflateTotals {
  const st = inflater.stats;
  const totals = past ?? { bytesIn: 0, bytesOut: 0, messages: 0 };
  totals.bytesIn += st.bytesIn;
  totals.bytesOut += st.bytesOut;
  totals.messages += st.messages;
  inflater.close();
  return totals;
}

/** The totals of the closed connections plus the live inflater's (null: none), its buffered bytes and its backend. */
export function inflateStats(past: InflateTotals | null, live: Inflater | null): { bytesIn: number; bytesOut: number; messages: number; bufferSize: number; backend: string | null } {
  const cur = live?.stats ?? null;
  return {
    bytesIn: (past?.bytesIn ?? 0) + (cur?.bytesIn ?? 0),
    bytesOut: (past?.bytesOut ?? 0) + (cur?.bytesOut ?? 0),
    messages: (past?.messages ?? 0) + (cur?.messages ?? 0),
    bufferSize: cur?.bufferSize ?? 0,
    backend: live?.backend ?? null,
  };
}

/**
 * Close `ws` (listeners already removed) with `code`, or at once (`code` null, or still connecting); resolves when
 * it is closed, terminating it after 1 s. Null when it is closed already.
 */
export function closeSocket(ws: WebSocket, code: number | null): Promise<void> | null {
  ws.on('error', () => {}); // late socket errors of a discarded connection must not crash the process
  if (ws.readyState === WebSocket.CLOSED) return null;
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, 1000);
    timer.unref();
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    if (code === null || ws.readyState === WebSocket.CONNECTING) ws.terminate();
    else ws.close(code);
  });
}
