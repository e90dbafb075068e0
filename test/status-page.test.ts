import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { Cluster } from '../src/cluster.js';
import { serveStatus, statusHandler } from '../src/status-page/server.js';
import { STATUS_PAGE_HTML } from '../src/status-page/page.js';
import { GatewaySimulator } from '../src/simulator/index.js';
import { createServer } from 'node:http';
import { once } from 'node:events';
import WebSocket from 'ws';
import { TOKEN } from './helpers/setup.js';
import { proxyRig } from './helpers/proxy-rig.js';
import { ManualClock, drive, driveUntil, simActivity } from './helpers/manual-clock.js';
import { chromiumLaunch } from '../scripts/test-deps.mjs';

export const SCREENSHOT = '/tmp/shardline-status-page.png';

let browser: BrowserContext | undefined;
let profile: string | undefined;

before(async () => {
  // A system chromium, or the one the devDependency @sparticuz/chromium ships (scripts/test-deps.mjs)
  const launch = await chromiumLaunch();
  if ('missing' in launch) throw new Error(launch.missing);
  profile = mkdtempSync(join(tmpdir(), 'shardline-chromium-'));
  // A fresh profile directory (launchPersistentContext passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: launch.executablePath,
    env: { ...process.env, ...launch.env } as Record<string, string>,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  });
});

after(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

/** Poll `read()` until `ok(value)`; fail with the last value. */
async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: T;
  for (;;) {
    last = await read();
    if (ok(last)) return last;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const tileStates = (page: Page) => page.locator('.tile').evaluateAll((els) => els.map((e) => [Number(e.getAttribute('data-shard')), e.getAttribute('data-state')] as const));
const field = (page: Page, shard: number, name: string) => page.locator(`[data-shard="${shard}"] [data-field="${name}"]`).textContent();

test('the status page in chromium shows every shard in the right state after faults, live, without reloading', async () => {
  // The gateway side runs on a manual clock: it moves only while the test drives it (with I/O turns between steps),
  // so every state the page is checked against is reached deterministically and then holds still while the page
  // (real time: it polls status.json) catches up.
  const clock = new ManualClock();
  const sim = await GatewaySimulator.start({ tokens: [TOKEN], clock, shards: 6, maxConcurrency: 6, guilds: 15, identifyWindow: 2500, heartbeatInterval: 41_250 });
  const activity = simActivity(sim);
  const cluster = new Cluster({ token: TOKEN, intents: 1 | 512 | 4096, apiUrl: sim.apiUrl, clock });
  const status = await serveStatus(cluster, { port: 0, title: 'shardline demo bot' });
  const page = await browser!.newPage();
  const foreign: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(status.url.replace(/\/$/, ''))) foreign.push(r.url());
  });
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  try {
    await page.goto(status.url);
    await page.evaluate('window.__notReloaded = true');
    // before connect(): shards are not known yet (shards: 'auto'), then they appear as the cluster starts
    const connecting = cluster.connect();
    await driveUntil(clock, () => cluster.status().length === 6, { what: 'six shards known', activity });
    await eventually(
      () => tileStates(page),
      (s) => s.length === 6,
      'six tiles',
    );
    await drive(clock, connecting, { what: 'connect', activity });
    await eventually(
      () => tileStates(page),
      (s) => s.every(([, st]) => st === 'ready'),
      'every shard ready on the page',
    );
    assert.equal(await page.locator('#ready').textContent(), '6 / 6');

    // faults: a fatal 4014 on shard 1; shard 2 becomes a zombie and then cannot get back (the gateway answers
    // every new connection with op 7), so it keeps reconnecting; the rest stay ready
    sim.closeConnection(1, 4014);
    sim.setOptions({ helloOp7: true });
    sim.setAcks(2, false);
    await driveUntil(clock, () => cluster.shard(1).state === 'fatal', { what: 'shard 1 fatal', activity });
    await driveUntil(clock, () => cluster.shard(2).status().reconnects > 0, { what: 'shard 2 reconnecting', activity });
    // a heartbeat ACK on shard 0 for its latency field (shard 2's zombie took a missed one, so it has had one)
    await driveUntil(clock, () => cluster.shard(0).status().latency !== null, { what: 'latency of shard 0', activity });
    const states = await eventually(
      () => tileStates(page),
      (s) => s.find(([id]) => id === 1)?.[1] === 'fatal' && !['ready', 'fatal', 'idle'].includes(s.find(([id]) => id === 2)?.[1] ?? 'ready'),
      'shard 1 fatal and shard 2 reconnecting on the page',
    );
    assert.deepEqual(
      states.filter(([id]) => id !== 1 && id !== 2).map(([, s]) => s),
      ['ready', 'ready', 'ready', 'ready'],
    );
    assert.equal(await field(page, 1, 'close'), '4014');
    assert.match((await page.locator('[data-shard="1"] .why').textContent()) ?? '', /4014 Disallowed intent/);
    assert.match((await page.locator('#problems').textContent()) ?? '', /shard 1: .*Privileged Gateway Intents/);
    assert.equal(await page.locator('#problems-section').isVisible(), true);
    assert.ok(Number(await field(page, 2, 'reconnects')) >= 1, 'shard 2 reconnects shown');
    assert.match((await page.locator('[data-shard="2"] .why').textContent()) ?? '', /zombie|op7/);
    // the other fields of a healthy shard
    await eventually(
      () => field(page, 0, 'latency'),
      (t) => /^\d[\d,]* ms$/.test(t ?? ''),
      'latency of shard 0',
    );
    assert.equal(await field(page, 0, 'guilds'), String(cluster.shard(0).status().guilds));
    assert.ok(Number((await field(page, 0, 'sequence'))?.replace(/,/g, '')) >= 3);
    // summary: states, identify budget and queue, disconnects by cause
    await eventually(
      () => page.locator('.legend .chip[data-state="fatal"] b').textContent(),
      (t) => t === '1',
      'fatal chip',
    );
    assert.equal(await page.locator('.legend .chip[data-state="ready"] b').textContent(), '4');
    assert.match((await page.locator('#budget').textContent()) ?? '', /^\d+ \/ 1,000$/);
    assert.match((await page.locator('#budget-sub').textContent()) ?? '', /refills in \d+ h/);
    assert.match((await page.locator('#queue-sub').textContent()) ?? '', /6 lanes/);
    const causes = await page.locator('#disconnects tr').allTextContents();
    assert.ok(
      causes.some((r) => r.startsWith('close_4014fatal')),
      causes.join(' | '),
    );
    assert.ok(
      causes.some((r) => r.startsWith('zombieresume')),
      causes.join(' | '),
    );

    assert.equal(await page.evaluate('window.__notReloaded'), true, 'updated in place, never reloaded');
    assert.deepEqual(foreign, [], 'no request leaves the status server (self-contained page)');
    assert.deepEqual(pageErrors, []);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    // the JSON behind it never carries the token or a full session id
    const json = await (await fetch(`${status.url}status.json`)).text();
    assert.ok(!json.includes(TOKEN));
    const snap = JSON.parse(json) as { shards: { session: string | null }[] };
    assert.ok(snap.shards.every((s) => s.session === null || s.session.length === 8));
  } finally {
    await page.close();
    await status.close();
    await cluster.close();
    await sim.stop();
  }
});

test('the status handler mounts under a path, answers HEAD/JSON, and the page has no external assets', async () => {
  assert.doesNotMatch(STATUS_PAGE_HTML, /(src|href)=["']?(https?:)?\/\//, 'no external asset URL');
  assert.doesNotMatch(STATUS_PAGE_HTML, /<script[^>]+src=/);
  const cluster = new Cluster({ token: TOKEN, intents: 1, shards: 3 });
  const page = statusHandler(cluster, { title: '<b>x</b>' });
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/ops/status')) page.handler(req, res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    const html = await fetch(`${base}/ops/status`);
    assert.equal(html.status, 200);
    assert.match(html.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    const body = await html.text();
    assert.match(body, /&#60;b&#62;x&#60;\/b&#62;/, 'the title is escaped');
    const json = (await (await fetch(`${base}/ops/status/status.json`)).json()) as { shards: { id: number; state: string }[]; cluster: { shards: number } };
    assert.equal(json.cluster.shards, 3);
    assert.deepEqual(
      json.shards.map((s) => s.state),
      ['idle', 'idle', 'idle'],
    );
    assert.equal((await fetch(`${base}/ops/status`, { method: 'POST' })).status, 405);
  } finally {
    server.close();
    await page.close();
    await cluster.close();
  }
});

test('a gateway proxy adds its section: per-shard clients, replay ring, forwarded commands and cache figures, on the page and in status.json', async () => {
  // upstream (simulator and the proxy's shards) on a manual clock; the proxy's client side and the page run on real time
  const clock = new ManualClock();
  const r = await proxyRig({ guilds: 2, heartbeatInterval: 41_250 }, { shards: 2 }, clock);
  const got: { t: string | null }[] = []; // what the proxy's client received
  const activity = (): number => simActivity(r.sim)() + got.length;
  const status = await serveStatus(r.proxy.cluster, { port: 0, title: 'proxy', sections: () => [r.proxy.statusSection()] });
  const page = await browser!.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.setDefaultTimeout(5_000);
  let ws: WebSocket | undefined;
  try {
    await page.goto(status.url);
    const cell = async (row: number, col: string) => {
      const loc = page.locator(`#sections [data-row="${row}"] [data-col="${col}"]`);
      return (await loc.count()) ? loc.textContent() : null;
    };
    const card = (label: string) => page.locator(`#sections .card[data-label="${label}"] .value`).textContent();
    await eventually(
      () => cell(0, 'clients'),
      (t) => t === '0',
      'the proxy row of shard 0 with no client',
    );
    assert.equal(await page.locator('#sections h2').textContent(), 'Gateway proxy');
    // a client on shard 0 identifies and sends one command upstream (op 3, a presence update)
    ws = new WebSocket(`${r.proxy.url}/?v=10&encoding=json`);
    ws.on('message', (d) => got.push(JSON.parse(d.toString())));
    await once(ws, 'open');
    ws.send(JSON.stringify({ op: 2, d: { token: TOKEN, intents: 1 | 2, properties: {}, shard: [0, 2] } }));
    await driveUntil(clock, () => got.some((p) => p.t === 'READY'), { what: 'the client READY', activity });
    const guildOn0 = r.proxy.stats().shards[0]!.guilds;
    ws.send(JSON.stringify({ op: 3, d: { since: null, activities: [], status: 'idle', afk: false } }));
    await driveUntil(clock, () => r.proxy.stats().forwardedCommands === 1 && r.sim.received(0).some((p) => p.op === 3), { what: 'the command forwarded upstream', activity });
    const stats = r.proxy.stats();
    assert.equal(stats.identifies, 1, 'the identify counted');
    await eventually(
      () => cell(0, 'clients'),
      (t) => t === '1',
      'one client on shard 0 on the page',
    );
    assert.equal(await cell(1, 'clients'), '0');
    assert.equal(await cell(0, 'forwarded commands'), '1');
    assert.equal(await cell(0, 'guilds'), String(guildOn0));
    const ring = stats.shards[0]!;
    assert.ok(ring.ringDepth > 0 && ring.ringBytes > 0, 'the replay ring holds the guild dispatches');
    assert.match((await cell(0, 'replay bytes')) ?? '', /^\d[\d,]*$/);
    assert.equal(await card('cache guilds'), '2');
    assert.equal(await card('cache bytes'), stats.cacheBytes.toLocaleString('en-US'));
    assert.equal(await card('client identifies'), '1');
    assert.equal(await card('detached sessions'), '0');
    // the same figures in the JSON
    const snap = (await (await fetch(`${status.url}status.json`)).json()) as { sections: { title: string; columns: string[]; shards: { id: number; values: unknown[] }[] }[] };
    assert.equal(snap.sections.length, 1);
    assert.deepEqual(snap.sections[0]!.columns, ['clients', 'replay depth', 'replay bytes', 'guilds', 'forwarded commands']);
    assert.deepEqual(
      snap.sections[0]!.shards.map((x) => [x.id, x.values[0]]),
      [
        [0, 1],
        [1, 0],
      ],
    );
    assert.deepEqual(pageErrors, []);
  } finally {
    ws?.terminate();
    await page.close();
    await status.close();
    await r.stop();
  }
});

test('extra sections: bad values become null, a throwing section becomes an error card, none gives an empty list', async () => {
  const cluster = new Cluster({ token: TOKEN, intents: 1, shards: 2 });
  let fail = false;
  const page = statusHandler(cluster, {
    sections: () => {
      if (fail) throw new Error('boom');
      return [{ title: 'x', summary: [{ label: 'nan', value: Number.NaN }], columns: ['a'], shards: [{ id: 0, values: [{} as never] }] }];
    },
  });
  const plain = statusHandler(cluster);
  try {
    assert.deepEqual(page.snapshot().sections, [{ title: 'x', summary: [{ label: 'nan', value: null }], columns: ['a'], shards: [{ id: 0, values: [null] }] }]);
    fail = true;
    assert.deepEqual(page.snapshot().sections, [{ title: 'sections', summary: [{ label: 'error', value: 'boom' }], columns: [], shards: [] }]);
    assert.deepEqual(plain.snapshot().sections, []);
  } finally {
    await page.close();
    await plain.close();
    await cluster.close();
  }
});
