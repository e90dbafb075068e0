// Shared by the compatibility-matrix child processes (one per client library, see test/compat.test.ts).
// Import it FIRST: it installs a guard that refuses every TCP connection outside loopback (and reports it), so a
// library that ignores our URLs fails loudly instead of reaching discord.com.
//
// Protocol: the runner passes SIM_WS (gateway URL), SIM_API (API root, `http://127.0.0.1:port/api`), SIM_PORT and
// SIM_TOKEN in the environment; the child writes one JSON object per line on stdout:
//   {"e":"ready","guilds":N}                 logged in, guild cache filled
//   {"e":"own","content":"pong 1"}           the bot saw its own reply (the MESSAGE_CREATE the simulator dispatched)
//   {"e":"violation","host":"..."}           the library tried to leave loopback (the connection was refused)
//   {"e":"error","message":"..."}            anything that went wrong (fails the case)
//   {"e":"warn","message":"..."}             something the library reports and recovers from (logged only)
// It replies `pong N` over REST to every `!ping N` it receives, answers a `/ping` slash command with `pong /ping`
// through the interaction callback, and exits on SIGTERM or when stdin closes.
import net from 'node:net';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '::ffff:127.0.0.1']);

/** Write one protocol line. */
export function emit(e, data = {}) {
  process.stdout.write(`${JSON.stringify({ e, ...data })}\n`);
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(...args) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  const opts = typeof first === 'object' && first !== null ? first : { port: first, host: typeof args[1] === 'string' ? args[1] : undefined };
  if (opts.path === undefined) {
    const host = opts.host ?? 'localhost';
    if (!LOOPBACK.has(host)) {
      emit('violation', { host: String(host), port: opts.port });
      process.nextTick(() => this.destroy(new Error(`compat guard: connection to ${host} refused (loopback only)`)));
      return this;
    }
  }
  return connect.apply(this, args);
};

export const env = {
  ws: required('SIM_WS'),
  api: required('SIM_API'),
  port: Number(required('SIM_PORT')),
  token: required('SIM_TOKEN'),
};

/** GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT */
export const INTENTS = 1 | 512 | 32768;

function required(name) {
  const v = process.env[name];
  if (!v) {
    process.stderr.write(`${name} is not set: run this through test/compat.test.ts\n`);
    process.exit(2);
  }
  return v;
}

/** The reply to a ping, or null when `content` is not one. */
export function replyTo(content) {
  return typeof content === 'string' && content.startsWith('!ping') ? content.replace('!ping', 'pong') : null;
}

/**
 * The bot of a library that hands over raw gateway dispatches (`@discordjs/ws`, discordeno's gateway manager):
 * returns `(t, d)` to call with each dispatch. It reports `ready` once the GUILD_CREATE of every guild READY
 * listed has arrived, answers the `/ping` slash command through `respond(interaction, body)` and every `!ping N`
 * through `send(message, body)`, and reports the bot's own messages.
 */
export function rawDispatchBot({ respond, send }) {
  const expected = new Set();
  const guilds = new Set();
  let userId = null;
  let ready = false;
  return (t, d) => {
    if (t === 'READY') {
      userId = d.user.id;
      for (const g of d.guilds) expected.add(g.id);
    } else if (t === 'GUILD_CREATE') {
      guilds.add(d.id);
      if (!ready && [...expected].every((id) => guilds.has(id))) {
        ready = true;
        emit('ready', { guilds: guilds.size });
      }
    } else if (t === 'INTERACTION_CREATE' && d.data?.name === 'ping') {
      respond(d, { type: 4, data: { content: 'pong /ping' } }).catch(report);
    } else if (t === 'MESSAGE_CREATE') {
      const reply = replyTo(d.content);
      if (reply) send(d, { content: reply }).catch(report);
      else if (d.author.id === userId) emit('own', { content: d.content });
    }
  };
}

/** Report an error without crashing the child (the runner sees it and fails the case). */
export function report(err) {
  emit('error', { message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
}

/** Call `stop` (async) on SIGTERM or when stdin closes, then exit. */
export function onStop(stop) {
  let stopping = false;
  const run = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await stop();
    } catch (err) {
      report(err);
    }
    process.exit(0);
  };
  process.on('SIGTERM', run);
  process.stdin.on('end', run);
  process.stdin.resume();
  process.on('unhandledRejection', report);
  process.on('uncaughtException', report);
}
