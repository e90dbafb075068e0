/**
 * The bench gateway: a tiny `ws` server on 127.0.0.1, run as its own process (forked by `run.ts`, controlled over
 * IPC) so its CPU never mixes with the measured client's.
 *
 * It speaks just enough of the gateway: HELLO on connect, READY (s=1, session_id, resume_gateway_url pointing
 * here) in answer to IDENTIFY, heartbeat ACKs; then, on the orchestrator's `start`, it replays a prepared
 * dispatch stream. Every stream is serialized and compressed once per transport format when the workload is
 * prepared (one deflate / zstd context for HELLO + READY + all dispatches, flushed after each message), and
 * the same bytes are replayed to every connection of that format, so no compression happens while a client is
 * measured.
 *
 * A heartbeat ACK can't be spliced into a pre-compressed stream (it would shift the decoder's history), so
 * ACKs that arrive before the replay has finished are held and sent right after it, compressed by a context
 * rebuilt from the same messages (deflate/zstd are deterministic, so its state equals the client's). The
 * heartbeat interval is 41.25 s and a replay lasts a few seconds, so a held ACK never looks like a zombie.
 *
 * In `idle` mode (the memory benchmark) every connection gets its own live context instead.
 *
 * @module
 */
import { WebSocketServer, type WebSocket } from 'ws';
import type { IncomingMessage } from 'node:http';
import {
  buildWorkload,
  createEncoder,
  envelope,
  helloJson,
  loadZstd,
  readyJson,
  warmJsons,
  type Format,
  type ServerCommand,
  type ServerReport,
  type StreamEncoder,
  type Workload,
  type WorkloadInfo,
} from './common.js';

interface Prepared {
  workload: Workload;
  /** Pre-encoded websocket messages per format: [HELLO, READY, ...dispatches]. */
  encoded: Map<Format, Buffer[]>;
}

interface Conn {
  ws: WebSocket;
  format: Format;
  mode: 'replay' | 'idle';
  phase: 'hello' | 'waiting' | 'replaying' | 'done';
  /** Live encoder whose state matches what the client has received (idle mode, or after a replay). */
  live: StreamEncoder | null;
  pendingAcks: number;
  prepared: Prepared | null;
}

const zstdAvailable = loadZstd() !== null;
let mode: 'replay' | 'idle' = 'replay';
let prepared: Prepared | null = null;
const conns = new Set<Conn>();
const stats = { connections: 0, identifies: 0, heartbeats: 0, acks: 0, lateAcks: 0 };
let sessionCounter = 0;
/** Idle mode: dispatches sent to every connection right after its READY (the warm memory variant). */
let warm: string[] = [];

function report(msg: ServerReport): void {
  process.send?.(msg);
}

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, backlog: 4096, perMessageDeflate: false, clientTracking: false, maxPayload: 1 << 20 });
const port = (): number => (wss.address() as { port: number }).port;

wss.on('listening', () => report({ type: 'listening', port: port(), zstd: zstdAvailable }));
wss.on('error', (err) => report({ type: 'error', message: `server: ${err.message}` }));

function formatOf(req: IncomingMessage): Format {
  const q = new URL(req.url ?? '/', 'http://127.0.0.1').searchParams.get('compress');
  return q === 'zlib-stream' || q === 'zstd-stream' ? q : 'none';
}

function sendRaw(conn: Conn, data: Buffer, cb?: (err?: Error) => void): void {
  conn.ws.send(data, { binary: conn.format !== 'none' }, cb);
}

/** Send one message through the connection's live context (idle mode, ACKs after a replay). */
function sendLive(conn: Conn, text: string): void {
  if (conn.format === 'none') {
    sendRaw(conn, Buffer.from(text));
    return;
  }
  conn.live ??= createEncoder(conn.format);
  sendRaw(conn, conn.live!.encode(text));
}

/** Rebuild the context of a finished replay: feed the same messages to a fresh encoder. */
function rebuildLive(conn: Conn): void {
  if (conn.live || conn.format === 'none' || !conn.prepared) return;
  const enc = createEncoder(conn.format)!;
  const msgs = conn.prepared.workload.messages;
  const ref = conn.prepared.encoded.get(conn.format)!;
  for (let i = 0; i < msgs.length; i++) {
    const out = enc.encode(msgs[i]!);
    if (i < 2 && !out.equals(ref[i]!)) report({ type: 'error', message: `server: ${conn.format} encoder is not deterministic; late ACKs would corrupt the stream` });
  }
  conn.live = enc;
}

const ACK = envelope(11, null, null, null);

function ack(conn: Conn): void {
  if (conn.mode === 'replay' && conn.format !== 'none' && conn.phase !== 'done') {
    conn.pendingAcks++;
    return;
  }
  if (conn.mode === 'replay' && conn.format !== 'none') {
    if (!conn.live) stats.lateAcks++;
    rebuildLive(conn);
  }
  stats.acks++;
  sendLive(conn, ACK);
}

function flushAcks(conn: Conn): void {
  const n = conn.pendingAcks;
  conn.pendingAcks = 0;
  for (let i = 0; i < n; i++) ack(conn);
}

/** A websocket frame (server → client, so unmasked) around one message. */
function frame(payload: Buffer, binary: boolean): Buffer {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + n);
  out[0] = 0x80 | (binary ? 0x02 : 0x01); // FIN + opcode
  if (n < 126) out[1] = n;
  else if (n < 65536) {
    out[1] = 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 127;
    out.writeBigUInt64BE(BigInt(n), 2);
  }
  payload.copy(out, head);
  return out;
}

/** Frames of the prepared dispatches (index 2 on), cut into ~1 MiB blocks. Built once per workload and format. */
const replayBlocks = new WeakMap<Buffer[], Buffer[]>();
function blocksOf(chunks: Buffer[], binary: boolean): Buffer[] {
  let blocks = replayBlocks.get(chunks);
  if (blocks) return blocks;
  blocks = [];
  let parts: Buffer[] = [];
  let size = 0;
  for (let i = 2; i < chunks.length; i++) {
    const f = frame(chunks[i]!, binary);
    parts.push(f);
    size += f.length;
    if (size >= 1 << 20) {
      blocks.push(Buffer.concat(parts, size));
      parts = [];
      size = 0;
    }
  }
  if (size > 0) blocks.push(Buffer.concat(parts, size));
  replayBlocks.set(chunks, blocks);
  return blocks;
}

/**
 * Replay the prepared dispatches: pre-built frames written straight to the TCP socket in ~1 MiB blocks, so the
 * server pushes bytes far faster than any client consumes them and every client is measured saturated (the
 * same delivery pattern for all; a client that starves would pay extra wake-ups per dispatch).
 */
async function replay(conn: Conn): Promise<void> {
  const blocks = blocksOf(conn.prepared!.encoded.get(conn.format)!, conn.format !== 'none');
  conn.phase = 'replaying';
  const socket = (conn.ws as unknown as { _socket: import('node:net').Socket })._socket;
  for (const block of blocks) {
    if (conn.ws.readyState !== conn.ws.OPEN || socket.destroyed) return;
    if (!socket.write(block)) {
      await new Promise<void>((r) => {
        const done = (): void => {
          socket.off('drain', done);
          socket.off('close', done);
          r();
        };
        socket.on('drain', done);
        socket.on('close', done);
      });
    }
  }
  conn.phase = 'done';
  flushAcks(conn);
}

wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
  stats.connections++;
  const format = formatOf(req);
  const conn: Conn = { ws, format, mode, phase: 'hello', live: null, pendingAcks: 0, prepared: mode === 'replay' ? prepared : null };
  conns.add(conn);
  ws.on('close', () => {
    conns.delete(conn);
    conn.live?.close();
    conn.live = null;
  });
  ws.on('error', () => {});
  if (format === 'zstd-stream' && !zstdAvailable) {
    ws.close(4000, 'zstd-stream unavailable on the bench server');
    return;
  }
  if (conn.mode === 'replay' && !conn.prepared) {
    ws.close(4000, 'no workload prepared');
    return;
  }
  if (conn.mode === 'replay') sendRaw(conn, conn.prepared!.encoded.get(format)![0]!);
  else sendLive(conn, helloJson());

  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) return; // no client here uses ETF or payload compression
    let p: { op?: unknown; d?: unknown };
    try {
      p = JSON.parse(data.toString('utf8')) as { op?: unknown; d?: unknown };
    } catch {
      return;
    }
    if (p.op === 1) {
      stats.heartbeats++;
      ack(conn);
    } else if (p.op === 2) {
      stats.identifies++;
      // discordeno identifies before HELLO arrives; HELLO was already written on connect, so READY follows it.
      if (conn.phase !== 'hello') return;
      conn.phase = 'waiting';
      if (conn.mode === 'replay') sendRaw(conn, conn.prepared!.encoded.get(format)![1]!);
      else {
        const shard = (p.d as { shard?: [number, number] } | null)?.shard ?? [0, 1];
        sendLive(conn, readyJson(port(), `bench-session-${(++sessionCounter).toString(16).padStart(16, '0')}`, shard));
        for (const m of warm) sendLive(conn, m);
      }
    }
    // RESUME (op 6) and everything else: not needed by the bench; ignored.
  });
});

function prepare(spec: Extract<ServerCommand, { cmd: 'prepare' }>['spec']): WorkloadInfo {
  const workload = buildWorkload(spec, port());
  const encoded = new Map<Format, Buffer[]>();
  const bytes: Record<Format, number> = { none: 0, 'zlib-stream': 0, 'zstd-stream': 0 };
  const formats: Format[] = zstdAvailable ? ['none', 'zlib-stream', 'zstd-stream'] : ['none', 'zlib-stream'];
  for (const f of formats) {
    const enc = createEncoder(f);
    const list = workload.messages.map((m) => (enc ? enc.encode(m) : Buffer.from(m)));
    enc?.close();
    encoded.set(f, list);
    bytes[f] = list.reduce((a, b) => a + b.length, 0);
  }
  prepared = { workload, encoded };
  return { ...workload.info, bytes };
}

process.on('message', (raw: unknown) => {
  const msg = raw as ServerCommand;
  try {
    switch (msg.cmd) {
      case 'prepare':
        mode = 'replay';
        report({ type: 'prepared', info: prepare(msg.spec) });
        break;
      case 'idle':
        mode = 'idle';
        prepared = null;
        warm = msg.warmBytes ? warmJsons(msg.warmBytes) : [];
        report({
          type: 'prepared',
          info: {
            warmupSeq: 0,
            lastSeq: warm.length + 1,
            countsAll: warm.length ? { GUILD_CREATE: warm.length } : {},
            countsWindow: {},
            bytes: { none: 0, 'zlib-stream': 0, 'zstd-stream': 0 },
            jsonBytes: warm.reduce((a, m) => a + m.length, 0),
          },
        });
        break;
      case 'start': {
        let n = 0;
        for (const c of conns) {
          if (c.mode === 'replay' && c.phase === 'waiting') {
            n++;
            void replay(c).catch((err: Error) => report({ type: 'error', message: `server replay: ${err.message}` }));
          }
        }
        report({ type: 'started', connections: n });
        break;
      }
      case 'stats': {
        let open = 0;
        for (const c of conns) if (c.ws.readyState === c.ws.OPEN) open++;
        report({ type: 'stats', open, ...stats });
        break;
      }
      case 'close-all':
        for (const c of conns) c.ws.terminate();
        conns.clear();
        report({ type: 'stats', open: 0, ...stats });
        break;
    }
  } catch (err) {
    report({ type: 'error', message: `server: ${(err as Error).message}` });
  }
});

// The orchestrator owns this process: when it goes away, so do we.
process.on('disconnect', () => {
  for (const c of conns) c.ws.terminate();
  wss.close();
  process.exit(0);
});
