/**
 * The status page: one self-contained HTML document (inline CSS and script, no external assets) that polls
 * `status.json` next to its own URL once a second. Kept as a string so the build ships it inside `dist/`.
 * @packageDocumentation
 */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__ · shard status</title>
<link rel="icon" href="data:,">
<style>
  :root {
    --bg: #0d1117; --panel: #161b22; --panel2: #1c2129; --border: #30363d; --text: #e6edf3; --muted: #8b949e;
    --ready: #3fb950; --connecting: #d29922; --identifying: #d29922; --resuming: #58a6ff; --reconnecting: #f0883e;
    --fatal: #f85149; --closed: #6e7681; --idle: #6e7681;
  }
  * { box-sizing: border-box; }
  body { margin: 0; background: var(--bg); color: var(--text); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
  main { max-width: 1400px; margin: 0 auto; padding: 20px 24px 40px; }
  .num { font-variant-numeric: tabular-nums; }
  header { display: flex; align-items: center; justify-content: space-between; gap: 16px; flex-wrap: wrap; margin-bottom: 18px; }
  h1 { margin: 0; font-size: 22px; font-weight: 650; letter-spacing: .2px; }
  h1 small { color: var(--muted); font-weight: 400; font-size: 14px; margin-left: 10px; }
  .live { display: flex; align-items: center; gap: 8px; color: var(--muted); font-size: 13px; }
  .dot { width: 9px; height: 9px; border-radius: 50%; background: var(--ready); box-shadow: 0 0 0 0 rgba(63,185,80,.6); animation: pulse 2s infinite; }
  .live.down .dot { background: var(--fatal); animation: none; }
  .live.down { color: var(--fatal); }
  @keyframes pulse { 0% { box-shadow: 0 0 0 0 rgba(63,185,80,.55); } 70% { box-shadow: 0 0 0 8px rgba(63,185,80,0); } 100% { box-shadow: 0 0 0 0 rgba(63,185,80,0); } }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr)); gap: 12px; margin-bottom: 16px; }
  .card { background: var(--panel); border: 1px solid var(--border); border-radius: 10px; padding: 12px 14px; }
  .card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .6px; }
  .card .value { font-size: 26px; font-weight: 650; margin-top: 2px; }
  .card .value small { font-size: 15px; color: var(--muted); font-weight: 500; }
  .card .sub { color: var(--muted); font-size: 12px; margin-top: 2px; min-height: 17px; }
  .bar { height: 6px; background: var(--panel2); border-radius: 3px; overflow: hidden; margin-top: 8px; }
  .bar > i { display: block; height: 100%; width: 0; background: var(--ready); transition: width .4s; }
  .legend { display: flex; flex-wrap: wrap; gap: 8px; margin: 4px 0 12px; }
  .chip { display: inline-flex; align-items: center; gap: 6px; padding: 3px 10px; border-radius: 999px; background: var(--panel); border: 1px solid var(--border); font-size: 12px; color: var(--muted); }
  .chip b { color: var(--text); font-weight: 600; }
  .chip i { width: 8px; height: 8px; border-radius: 50%; background: var(--c); }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(168px, 1fr)); gap: 10px; }
  .tile { --c: var(--idle); background: var(--panel); border: 1px solid var(--border); border-left: 4px solid var(--c); border-radius: 8px; padding: 9px 11px 8px; transition: border-color .3s, background .3s; }
  .tile .top { display: flex; align-items: center; justify-content: space-between; margin-bottom: 5px; }
  .tile .id { font-size: 16px; font-weight: 650; }
  .badge { font-size: 11px; font-weight: 650; letter-spacing: .5px; text-transform: uppercase; color: var(--c); border: 1px solid var(--c); border-radius: 4px; padding: 0 6px; }
  .tile dl { display: grid; grid-template-columns: auto 1fr; gap: 1px 10px; margin: 0; font-size: 12.5px; }
  .tile dt { color: var(--muted); }
  .tile dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  .tile .why { margin-top: 6px; color: var(--fatal); font-size: 11.5px; line-height: 1.3; display: -webkit-box; -webkit-line-clamp: 3; -webkit-box-orient: vertical; overflow: hidden; }
  .tile[data-state="fatal"] { background: linear-gradient(0deg, rgba(248,81,73,.08), rgba(248,81,73,.08)), var(--panel); }
  .tile[data-state="reconnecting"], .tile[data-state="resuming"], .tile[data-state="connecting"], .tile[data-state="identifying"] { background: linear-gradient(0deg, rgba(210,153,34,.06), rgba(210,153,34,.06)), var(--panel); }
  .grid.compact { grid-template-columns: repeat(auto-fill, minmax(50px, 1fr)); gap: 5px; }
  .grid.compact .tile { padding: 5px 0; border-left-width: 1px; border-color: var(--c); background: color-mix(in srgb, var(--c) 22%, var(--panel)); text-align: center; }
  .grid.compact .tile .top { justify-content: center; margin: 0; }
  .grid.compact .tile .id { font-size: 12px; }
  .grid.compact .badge, .grid.compact dl, .grid.compact .why { display: none; }
  .s-ready { --c: var(--ready); } .s-connecting { --c: var(--connecting); } .s-identifying { --c: var(--identifying); }
  .s-resuming { --c: var(--resuming); } .s-reconnecting { --c: var(--reconnecting); } .s-fatal { --c: var(--fatal); }
  .s-closed { --c: var(--closed); } .s-idle { --c: var(--idle); }
  h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .7px; color: var(--muted); font-weight: 600; margin: 22px 0 10px; }
  .panels { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 12px; }
  table { width: 100%; border-collapse: collapse; font-size: 13px; }
  td, th { padding: 5px 8px; border-bottom: 1px solid var(--border); text-align: left; }
  th { color: var(--muted); font-weight: 500; font-size: 12px; }
  td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
  tr:last-child td { border-bottom: 0; }
  .empty { color: var(--muted); font-size: 13px; padding: 6px 8px; }
  .problems { list-style: none; padding: 0; margin: 0; }
  .problems li { background: var(--panel); border: 1px solid var(--border); border-left: 4px solid var(--fatal); border-radius: 8px; padding: 8px 12px; margin-bottom: 8px; font-size: 13px; }
  .problems b { color: var(--fatal); }
  .extra .cards { margin-bottom: 10px; }
  .extra .card .value { font-size: 22px; }
  .extra .scroll { max-height: 420px; overflow: auto; }
  footer { color: var(--muted); font-size: 12px; margin-top: 28px; }
</style>
</head>
<body>
<main>
  <header>
    <h1>__TITLE__<small id="subtitle">connecting…</small></h1>
    <div class="live" id="live"><span class="dot"></span><span id="updated">waiting for data</span></div>
  </header>

  <section class="cards">
    <div class="card"><div class="label">Shards ready</div><div class="value num" id="ready">–</div><div class="bar"><i id="ready-bar"></i></div><div class="sub num" id="guilds-sub"></div></div>
    <div class="card"><div class="label">Events / s</div><div class="value num" id="rate">–</div><div class="sub num" id="events-total"></div></div>
    <div class="card"><div class="label">Heartbeat latency</div><div class="value num" id="latency">–</div><div class="sub num" id="latency-sub"></div></div>
    <div class="card"><div class="label">Reconnects</div><div class="value num" id="reconnects">–</div><div class="sub num" id="reconnects-sub"></div></div>
    <div class="card"><div class="label">Identify budget</div><div class="value num" id="budget">–</div><div class="bar"><i id="budget-bar"></i></div><div class="sub num" id="budget-sub"></div></div>
    <div class="card"><div class="label">Identify queue</div><div class="value num" id="queue">–</div><div class="sub num" id="queue-sub"></div></div>
  </section>

  <div class="legend" id="legend"></div>
  <div class="grid" id="grid"></div>

  <div id="problems-section" hidden>
    <h2>Stopped shards</h2>
    <ul class="problems" id="problems"></ul>
  </div>

  <div id="sections"></div>

  <div class="panels">
    <div><h2>Disconnects by cause</h2><div class="card"><table><thead><tr><th>cause</th><th>then</th><th class="n">count</th></tr></thead><tbody id="disconnects"></tbody></table></div></div>
    <div><h2>Events by type</h2><div class="card"><table><thead><tr><th>type</th><th class="n">count</th></tr></thead><tbody id="types"></tbody></table></div></div>
  </div>
  <footer>Updates every second from <code id="source"></code>. Colours: <span id="legend-help"></span></footer>
</main>
<script>
(() => {
  'use strict';
  const STATES = ['ready', 'connecting', 'identifying', 'resuming', 'reconnecting', 'fatal', 'closed', 'idle'];
  const $ = (id) => document.getElementById(id);
  const url = location.pathname.replace(/\\/?$/, '/') + 'status.json';
  $('source').textContent = url;
  $('legend-help').textContent = 'green ready · amber connecting/identifying · blue resuming · orange reconnecting · red stopped · grey idle/closed';
  const fmt = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'));
  const dur = (ms) => {
    if (ms === null || ms === undefined) return '';
    const s = Math.round(ms / 1000);
    if (s < 90) return s + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    return Math.floor(s / 3600) + ' h ' + Math.round((s % 3600) / 60) + ' min';
  };
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
  const tiles = new Map();
  let prev = null;
  let lastOk = 0;

  function tile(id) {
    let t = tiles.get(id);
    if (t) return t;
    const root = el('div', 'tile');
    root.dataset.shard = String(id);
    const top = el('div', 'top');
    top.append(el('span', 'id', '#' + id), el('span', 'badge'));
    const dl = el('dl');
    const fields = {};
    for (const [k, label] of [['latency', 'latency'], ['guilds', 'guilds'], ['sequence', 'seq'], ['reconnects', 'reconnects'], ['close', 'last close']]) {
      const dd = el('dd');
      dd.dataset.field = k;
      dl.append(el('dt', '', label), dd);
      fields[k] = dd;
    }
    const why = el('div', 'why');
    root.append(top, dl, why);
    t = { root, badge: top.lastChild, fields, why };
    tiles.set(id, t);
    return t;
  }

  function set(e, text) { if (e.textContent !== text) e.textContent = text; }

  function render(s) {
    const now = Date.now();
    const n = s.shards.length;
    const ready = s.cluster.states.ready || 0;
    set($('subtitle'), (s.cluster.gateway ? s.cluster.gateway + ' · ' : '') + n + (s.cluster.total && s.cluster.total !== n ? ' of ' + s.cluster.total : '') + ' shards · up ' + dur(s.uptime * 1000));
    $('ready').innerHTML = ready + ' <small>/ ' + n + '</small>';
    $('ready-bar').style.width = (n ? (ready / n) * 100 : 0) + '%';
    $('ready-bar').style.background = ready === n ? 'var(--ready)' : (s.cluster.states.fatal ? 'var(--fatal)' : 'var(--connecting)');
    set($('guilds-sub'), 'guilds loaded on ' + s.cluster.guildsReady + ' / ' + n + (s.cluster.guildsUnavailable ? ' · ' + fmt(s.cluster.guildsUnavailable) + ' unavailable' : ''));

    if (prev && s.at > prev.at) {
      const rate = Math.max(0, (s.events.total - prev.events.total) / ((s.at - prev.at) / 1000));
      set($('rate'), rate >= 100 ? fmt(Math.round(rate)) : rate.toFixed(1));
    }
    set($('events-total'), fmt(s.events.total) + ' dispatches delivered');

    const lat = s.shards.filter((x) => x.latency !== null && x.state === 'ready').map((x) => x.latency);
    if (lat.length) {
      const avg = Math.round(lat.reduce((a, b) => a + b, 0) / lat.length);
      $('latency').innerHTML = fmt(avg) + ' <small>ms</small>';
      set($('latency-sub'), 'max ' + fmt(Math.max(...lat)) + ' ms over ' + lat.length + ' ready shards');
    }
    const rec = s.shards.reduce((a, x) => a + x.reconnects, 0);
    const res = s.shards.reduce((a, x) => a + x.resumes, 0);
    set($('reconnects'), fmt(rec));
    set($('reconnects-sub'), fmt(res) + ' resumes · ' + fmt(s.shards.reduce((a, x) => a + x.identifies, 0)) + ' identifies');

    const id = s.identify;
    if (id.remaining !== null) {
      $('budget').innerHTML = fmt(id.remaining) + (id.total !== null ? ' <small>/ ' + fmt(id.total) + '</small>' : '');
      const frac = id.total ? id.remaining / id.total : 1;
      $('budget-bar').style.width = frac * 100 + '%';
      $('budget-bar').style.background = frac < 0.1 ? 'var(--fatal)' : frac < 0.3 ? 'var(--connecting)' : 'var(--ready)';
      set($('budget-sub'), id.resetIn !== null ? 'refills in ' + dur(id.resetIn) : '');
    } else {
      set($('budget'), 'n/a');
      set($('budget-sub'), 'custom identify queue');
    }
    $('queue').innerHTML = fmt(id.waiting) + ' <small>waiting</small>';
    set($('queue-sub'), id.maxConcurrency + ' lane' + (id.maxConcurrency === 1 ? '' : 's') + ' (max_concurrency)');

    const legend = $('legend');
    legend.replaceChildren(...STATES.filter((st) => s.cluster.states[st]).map((st) => {
      const c = el('span', 'chip s-' + st);
      c.dataset.state = st;
      c.append(el('i'), el('b', '', String(s.cluster.states[st])), document.createTextNode(st));
      return c;
    }));

    const grid = $('grid');
    grid.classList.toggle('compact', n > 96);
    const seen = new Set();
    s.shards.forEach((x, i) => {
      const t = tile(x.id);
      seen.add(x.id);
      if (grid.children[i] !== t.root) grid.insertBefore(t.root, grid.children[i] || null);
      if (t.root.dataset.state !== x.state) {
        t.root.dataset.state = x.state;
        t.root.className = 'tile s-' + x.state;
      }
      set(t.badge, x.state);
      set(t.fields.latency, x.latency === null ? '–' : fmt(x.latency) + ' ms');
      set(t.fields.guilds, fmt(x.guilds));
      set(t.fields.sequence, fmt(x.sequence));
      set(t.fields.reconnects, fmt(x.reconnects));
      const last = x.lastDisconnect;
      set(t.fields.close, x.lastCloseCode !== null ? String(x.lastCloseCode) : last ? last.cause : '–');
      set(t.why, x.state === 'fatal' && x.error ? x.error.replace(/^shard \\d+: /, '') : x.state !== 'ready' && last ? 'after ' + last.cause + ' → ' + last.action : '');
      t.root.title = '#' + x.id + ' ' + x.state + (x.session ? ' · session ' + x.session + '…' : '') + (x.worker !== null ? ' · worker ' + x.worker : '') + ' · ' + fmt(x.dispatches) + ' events' + (x.error ? '\\n' + x.error : '');
    });
    for (const [k, t] of tiles) if (!seen.has(k)) { t.root.remove(); tiles.delete(k); }

    const fatal = s.shards.filter((x) => x.state === 'fatal');
    $('problems-section').hidden = fatal.length === 0;
    $('problems').replaceChildren(...fatal.map((x) => {
      const li = el('li');
      li.append(el('b', '', 'shard ' + x.id + ': '), document.createTextNode((x.error || 'stopped').replace(/^shard \\d+: /, '')));
      return li;
    }));

    const rows = (tbody, list, cells) => {
      if (!list.length) {
        const td = el('td', 'empty', 'none yet');
        td.colSpan = 3;
        const tr = el('tr');
        tr.append(td);
        tbody.replaceChildren(tr);
        return;
      }
      tbody.replaceChildren(...list.map((r) => { const tr = el('tr'); tr.append(...cells(r)); return tr; }));
    };
    const val = (v) => (typeof v === 'number' ? fmt(v) : v === null || v === undefined ? '–' : String(v));
    $('sections').replaceChildren(...(s.sections || []).map((sec) => {
      const box = el('section', 'extra');
      box.dataset.section = sec.title;
      box.append(el('h2', '', sec.title));
      if (sec.summary.length) {
        const cards = el('div', 'cards');
        cards.append(...sec.summary.map((e) => {
          const c = el('div', 'card');
          c.dataset.label = e.label;
          c.append(el('div', 'label', e.label), el('div', 'value num', val(e.value)));
          return c;
        }));
        box.append(cards);
      }
      if (sec.shards.length) {
        const head = el('tr');
        head.append(el('th', '', 'shard'), ...sec.columns.map((c) => el('th', 'n', c)));
        const body = el('tbody');
        body.append(...sec.shards.map((r) => {
          const tr = el('tr');
          tr.dataset.row = String(r.id);
          tr.append(el('td', '', '#' + r.id), ...r.values.map((v, i) => {
            const td = el('td', 'n', val(v));
            td.dataset.col = sec.columns[i] || String(i);
            return td;
          }));
          return tr;
        }));
        const thead = el('thead');
        thead.append(head);
        const table = el('table');
        table.append(thead, body);
        const card = el('div', 'card scroll');
        card.append(table);
        box.append(card);
      }
      return box;
    }));

    rows($('disconnects'), s.disconnects, (d) => [el('td', '', d.cause), el('td', '', d.action), el('td', 'n', fmt(d.count))]);
    rows($('types'), s.events.byType, (d) => [el('td', '', d.type), el('td', 'n', fmt(d.count))]);
    prev = s;
    lastOk = now;
  }

  async function poll() {
    try {
      const r = await fetch(url, { cache: 'no-store' });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      render(await r.json());
      $('live').classList.remove('down');
      set($('updated'), 'live · ' + new Date().toLocaleTimeString());
    } catch (err) {
      $('live').classList.add('down');
      set($('updated'), 'connection lost' + (lastOk ? ' · last update ' + Math.round((Date.now() - lastOk) / 1000) + ' s ago' : '') + ' · retrying');
    } finally {
      setTimeout(poll, 1000);
    }
  }
  poll();
})();
</script>
</body>
</html>
`;
