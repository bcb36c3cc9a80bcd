/**
 * The status page the admin listener serves at `/`: every cluster and endpoint with its state,
 * weight, load, latency and errors, charts of the last five minutes, and (with an admin token)
 * drain, undrain and weight controls. Self-contained: one HTML document, one stylesheet and one
 * script, all served by the admin listener (no CDN, no framework), under a Content-Security-Policy
 * that allows nothing else. The script polls `GET /api/v1/status` every two seconds, keeps the
 * history in the page, and draws the charts as SVG; every value is set as text, never as HTML.
 */
import type { ServerResponse } from 'node:http';

/** The page. */
export const STATUS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mcgravity status</title>
<link rel="icon" href="favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="status.css">
<script src="status.js" defer></script>
</head>
<body>
<header>
  <h1>mcgravity</h1>
  <span id="summary" class="muted">connecting…</span>
  <div id="auth" hidden>
    <label>Admin token <input id="token" type="password" autocomplete="off" size="24"></label>
  </div>
</header>
<p id="message" role="status"></p>
<main id="clusters"></main>
</body>
</html>
`;

/** Its icon: a small filled circle. */
export const STATUS_ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="8" r="6" fill="#0a66c2"/></svg>`;

/** Its stylesheet. */
export const STATUS_CSS = `
:root { color-scheme: light dark; --bg: #fff; --fg: #1b1f24; --muted: #667; --line: #d7dbe0;
  --ok: #1a7f37; --warn: #b35900; --bad: #cf222e; --accent: #0a66c2; --card: #f6f8fa; }
@media (prefers-color-scheme: dark) { :root { --bg: #0d1117; --fg: #e6edf3; --muted: #8b949e;
  --line: #30363d; --card: #161b22; --accent: #58a6ff; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; gap: 1rem; align-items: baseline; padding: .75rem 1.25rem;
  border-bottom: 1px solid var(--line); flex-wrap: wrap; }
h1 { font-size: 1.1rem; margin: 0; }
h2 { font-size: 1rem; margin: 0 0 .5rem; }
.muted { color: var(--muted); }
#auth { margin-left: auto; }
#message { margin: .5rem 1.25rem; min-height: 1.2em; color: var(--bad); }
main { padding: 0 1.25rem 1.25rem; display: grid; gap: 1rem; }
section.cluster { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem; }
.figures { display: flex; gap: 1.5rem; flex-wrap: wrap; margin-bottom: .5rem; }
.figure b { display: block; font-size: 1.1rem; font-variant-numeric: tabular-nums; }
.charts { display: flex; gap: 1rem; flex-wrap: wrap; margin-bottom: .75rem; }
.chart { font-size: 12px; }
.chart svg { display: block; width: 240px; height: 48px; border: 1px solid var(--line); background: var(--bg); }
.chart polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .3rem .5rem; border-top: 1px solid var(--line); white-space: nowrap; }
th { font-weight: 600; color: var(--muted); }
td.num, th.num { text-align: right; }
.state { font-weight: 600; }
.state-healthy { color: var(--ok); } .state-draining, .state-half-open { color: var(--warn); }
.state-down, .state-ejected, .state-open { color: var(--bad); }
.badge { padding: 0 .4rem; border-radius: 3px; background: var(--bad); color: #fff; font-size: 12px; }
button, input { font: inherit; }
div.controls { display: flex; gap: .4rem; }
div.controls input { width: 4.5rem; }
`;

/** Its script. */
export const STATUS_JS = `'use strict';
(() => {
  const POLL_MS = 2000;
  const HISTORY = 150; // five minutes of polls
  const history = new Map(); // cluster name -> [{ rps, p99, errorRate }]
  let previous = new Map(); // "cluster/endpoint" -> { requests, errors }
  let changesEnabled = false;
  const $ = (id) => document.getElementById(id);
  const tokenInput = $('token');
  tokenInput.value = sessionStorage.getItem('mcgravity-token') || '';
  tokenInput.addEventListener('change', () => sessionStorage.setItem('mcgravity-token', tokenInput.value));

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === 'class') node.className = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child instanceof Node ? child : String(child));
    return node;
  }
  const ms = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(1)) + ' ms';
  const pct = (v) => (v * 100).toFixed(v >= 0.1 ? 0 : 1) + ' %';
  const num = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));

  function stateOf(e) {
    if (e.draining) return 'draining';
    if (e.ejected) return 'ejected';
    if (!e.healthy) return 'down';
    return 'healthy';
  }

  // Errors out of requests since the last poll (or since start, the first time).
  function errorRate(key, requests, errors) {
    const before = previous.get(key) || { requests: 0, errors: 0 };
    const sent = requests - before.requests;
    return sent > 0 ? Math.max(0, errors - before.errors) / sent : 0;
  }

  function chart(label, points, format) {
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('viewBox', '0 0 240 48');
    svg.setAttribute('preserveAspectRatio', 'none');
    const highest = Math.max(...points, 0);
    const top = highest || 1;
    const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
    const step = 240 / Math.max(HISTORY - 1, 1);
    const offset = HISTORY - points.length;
    line.setAttribute('points', points.map((v, i) => ((offset + i) * step).toFixed(1) + ',' + (46 - (v / top) * 44).toFixed(1)).join(' '));
    svg.append(line);
    const last = points.length > 0 ? points[points.length - 1] : 0;
    return el('div', { class: 'chart' }, label + ': ' + format(last) + ' (max ' + format(highest) + ')', svg);
  }

  async function change(cluster, id, body) {
    const response = await fetch('api/v1/clusters/' + encodeURIComponent(cluster) + '/backends/' + encodeURIComponent(id), {
      method: 'PATCH',
      headers: { 'content-type': 'application/json', authorization: 'Bearer ' + tokenInput.value },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    $('message').textContent = response.ok ? '' : (answer.error ? answer.error.message : 'change failed: ' + response.status);
    await poll();
  }

  function controls(cluster, e) {
    const weight = el('input', { type: 'number', min: '0', step: '1', value: String(e.weight), 'aria-label': 'weight of ' + e.id });
    return el('td', {}, el('div', { class: 'controls' },
      el('button', { type: 'button', onclick: () => change(cluster, e.id, { drain: !e.draining }) }, e.draining ? 'Undrain' : 'Drain'),
      weight,
      el('button', { type: 'button', onclick: () => change(cluster, e.id, { weight: Number(weight.value) }) }, 'Set weight')));
  }

  function render(status) {
    changesEnabled = status.changesEnabled;
    $('auth').hidden = !changesEnabled;
    const names = Object.keys(status.clusters);
    $('summary').textContent = names.length + ' cluster' + (names.length === 1 ? '' : 's') +
      ' · ' + status.proxy.inflight + ' in flight · updated ' + new Date(status.time).toLocaleTimeString();
    const seen = new Map();
    const sections = names.map((name) => {
      const c = status.clusters[name];
      const clusterErrors = errorRate(name, c.requests, c.errors);
      seen.set(name, { requests: c.requests, errors: c.errors });
      const points = history.get(name) || [];
      points.push({ rps: c.latency.rps, p99: c.latency.p99, errorRate: clusterErrors });
      while (points.length > HISTORY) points.shift();
      history.set(name, points);
      const sessions = (status.proxy.mcpSessions || {})[name] || {};
      const hasSessions = Object.keys(sessions).length > 0;
      const head = ['endpoint', 'state', 'breaker', 'weight', 'in flight', 'req/s', 'p50', 'p95', 'p99', 'errors'];
      if (hasSessions) head.push('MCP sessions');
      if (changesEnabled) head.push('');
      const rows = c.endpoints.map((e) => {
        const key = name + '/' + e.id;
        const rate = errorRate(key, e.requests, e.errors);
        seen.set(key, { requests: e.requests, errors: e.errors });
        const state = stateOf(e);
        const cells = [
          el('td', {}, e.id),
          el('td', { class: 'state state-' + state }, state),
          el('td', { class: 'state state-' + e.circuit }, e.circuit),
          el('td', { class: 'num' }, e.weight === e.effectiveWeight ? String(e.weight) : e.effectiveWeight.toFixed(1) + ' / ' + e.weight),
          el('td', { class: 'num' }, String(e.inflight)),
          el('td', { class: 'num' }, num(e.latency.rps)),
          el('td', { class: 'num' }, ms(e.latency.p50)),
          el('td', { class: 'num' }, ms(e.latency.p95)),
          el('td', { class: 'num' }, ms(e.latency.p99)),
          el('td', { class: 'num' }, pct(rate)),
        ];
        if (hasSessions) cells.push(el('td', { class: 'num' }, String(sessions[e.id] || 0)));
        if (changesEnabled) cells.push(controls(name, e));
        return el('tr', { 'data-endpoint': e.id }, ...cells);
      });
      return el('section', { class: 'cluster', 'data-cluster': name },
        el('h2', {}, name, ' ', c.panic ? el('span', { class: 'badge' }, 'panic') : ''),
        el('div', { class: 'figures' },
          el('div', { class: 'figure' }, 'eligible', el('b', {}, c.eligible + ' / ' + c.endpoints.length)),
          el('div', { class: 'figure' }, 'req/s', el('b', {}, num(c.latency.rps))),
          el('div', { class: 'figure' }, 'p50 / p95 / p99', el('b', {}, ms(c.latency.p50) + ' / ' + ms(c.latency.p95) + ' / ' + ms(c.latency.p99))),
          el('div', { class: 'figure' }, 'errors', el('b', {}, pct(clusterErrors))),
          el('div', { class: 'figure' }, 'in flight', el('b', {}, String(c.inflight)))),
        el('div', { class: 'charts' },
          chart('req/s', points.map((p) => p.rps), num),
          chart('p99', points.map((p) => p.p99), ms),
          chart('errors', points.map((p) => p.errorRate), pct)),
        el('table', {}, el('thead', {}, el('tr', {}, ...head.map((h, i) => el('th', { class: i >= 3 && h !== '' ? 'num' : '' }, h)))),
          el('tbody', {}, ...rows)));
    });
    previous = seen;
    // A weight being typed survives the refresh.
    const focused = document.activeElement;
    const typing = focused && focused.tagName === 'INPUT' && $('clusters').contains(focused)
      ? { label: focused.getAttribute('aria-label'), value: focused.value } : undefined;
    $('clusters').replaceChildren(...sections);
    if (typing) {
      const again = [...$('clusters').querySelectorAll('input')].find((i) => i.getAttribute('aria-label') === typing.label);
      if (again) { again.value = typing.value; again.focus(); }
    }
  }

  async function poll() {
    try {
      const response = await fetch('api/v1/status', { cache: 'no-store' });
      if (!response.ok) throw new Error('status ' + response.status);
      render(await response.json());
      document.body.dataset.updated = String(Date.now());
    } catch (error) {
      $('summary').textContent = 'cannot reach the admin API: ' + error.message;
    }
  }
  poll();
  setInterval(poll, POLL_MS);
})();
`;

/** A file of the status page. */
interface Asset {
  readonly type: string;
  readonly body: string;
}

const STATUS_ASSETS: Readonly<Record<string, Asset>> = {
  '/': { type: 'text/html; charset=utf-8', body: STATUS_HTML },
  '/status.css': { type: 'text/css; charset=utf-8', body: STATUS_CSS },
  '/status.js': { type: 'text/javascript; charset=utf-8', body: STATUS_JS },
  '/favicon.svg': { type: 'image/svg+xml', body: STATUS_ICON },
};

function sendAsset(res: ServerResponse, asset: Asset): void {
  res.writeHead(200, {
    'content-type': asset.type,
    'content-length': Buffer.byteLength(asset.body),
    'cache-control': 'no-cache',
    // Only the page's own files and API; no framing (its buttons change the proxy).
    'content-security-policy':
      "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
  });
  res.end(asset.body);
}

/** Answers a request for one of the page's files; false when `path` is not one of them. */
export function serveStatusFile(path: string, res: ServerResponse): boolean {
  const asset = Object.hasOwn(STATUS_ASSETS, path) ? STATUS_ASSETS[path] : undefined;
  if (asset === undefined) return false;
  sendAsset(res, asset);
  return true;
}
