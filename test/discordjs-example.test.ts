/**
 * `npm run example` (examples/discordjs/bot.ts): the discord.js bot on ShardlineStrategy logs in to the simulator,
 * prints its guilds, a message and a resume, and exits by itself. It imports the package by name, so it needs dist/
 * (`npm test` builds first; run `npm run build` before running this file alone).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

test('the discord.js example runs against the simulator and exits cleanly', async () => {
  assert.ok(existsSync(`${ROOT}dist/discordjs/index.js`), 'dist/discordjs exists (npm run build)');
  const { DISCORD_TOKEN: _drop, ...env } = process.env;
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/discordjs/bot.ts'], { cwd: ROOT, env });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const kill = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(kill);
  assert.equal(code, 0, `exit code 0; stderr: ${err.slice(-1000)}`);
  assert.match(out, /logged in as .+: 5 guilds on 2 shards/);
  assert.match(out, /#\S+ nelly: hello from the simulator/);
  assert.match(out, /shard 0 resumed/);
  assert.match(out, /gateway ping \d+ ms/);
  assert.match(out, /stopped\n?$/);
});
