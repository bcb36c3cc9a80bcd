/**
 * `mcgravity --demo`: the proxy in front of three local backends (fast, slow, failing on a
 * schedule), with traffic of its own, so that a first look shows what the proxy does: balancing,
 * health checks and outlier ejection taking the failing one out and back, retries keeping every GET
 * answered, MCP sessions kept on their replica, and the status page live. Every few seconds a
 * summary line; Ctrl-C (or `--duration`) stops it, and it exits 0.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import { parseConfig } from '../config/load.js';
import { Runtime } from '../Runtime.js';
import { type BackendBehaviour, type DemoBackend, startDemoBackend } from './backends.js';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Stop by itself after this long; without it, run until SIGINT or SIGTERM. */
  readonly durationMs?: number;
  /** Where the summary lines go. */
  readonly out: (line: string) => void;
  readonly log: Logger;
}

const BEHAVIOURS: readonly (BackendBehaviour & { readonly about: string })[] = [
  { name: 'alpha', delayMs: 5, about: 'fast' },
  { name: 'beta', delayMs: 60, about: 'slow (60 ms an answer)' },
  {
    name: 'gamma',
    delayMs: 5,
    failing: { healthyMs: 4_000, failMs: 6_000 },
    about: 'fails (503) 6 s of every 10 s',
  },
];

function configText(
  backends: readonly DemoBackend[],
  ports: { proxy: number; admin: number },
  token: string,
) {
  const list = backends.map((b) => `{ id: ${b.name}, address: "127.0.0.1:${b.port}" }`).join(', ');
  return `
global: { log_level: warn, metrics_port: ${ports.admin}, admin_token: ${token}, affinity_secret: ${token} }
clusters:
  web:
    load_balancing: least_request
    health_check: { path: /health, interval: 1s, timeout: 500ms, healthy_threshold: 2, unhealthy_threshold: 2 }
    outlier_detection: { consecutive_5xx: 3, interval: 1s, base_ejection_time: 3s, max_ejection_percent: 50 }
    retry_policy: { attempts: 3, retry_on: "5xx,reset,connect-failure" }
    backends: [${list}]
  mcp:
    session_affinity: mcp
    health_check: { path: /health, interval: 1s, timeout: 500ms, healthy_threshold: 2, unhealthy_threshold: 2 }
    backends: [${list}]
listeners:
  - name: web
    address: "127.0.0.1:${ports.proxy}"
    routes:
      - { match: { path_prefix: /mcp }, cluster: mcp }
      - { cluster: web }
`;
}

/** Starts the proxy on 8080 and 9090, or on ports of the system's choosing when those are taken. */
async function startProxy(backends: readonly DemoBackend[], token: string, log: Logger): Promise<Runtime> {
  try {
    return await Runtime.start(
      'demo.yaml',
      parseConfig(configText(backends, { proxy: 8080, admin: 9090 }, token), 'demo.yaml'),
      log,
    );
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    return Runtime.start(
      'demo.yaml',
      parseConfig(configText(backends, { proxy: 0, admin: 0 }, token), 'demo.yaml'),
      log,
    );
  }
}

/** What the traffic saw. */
interface Tally {
  ok: number;
  failed: number;
  byBackend: Map<string, number>;
  sessions: number;
  calls: number;
  /** Calls answered by another replica than the session's first one (should stay 0). */
  strays: number;
  /** Sessions the proxy ended with 404 because their replica went away (the client starts again). */
  lost: number;
}

/** Clients sending GETs, a few at a time and paced, until `running()` is false. */
async function webTraffic(
  url: string,
  dispatcher: Agent,
  tally: Tally,
  running: () => boolean,
): Promise<void> {
  let n = 0;
  const client = async () => {
    while (running()) {
      try {
        const response = await request(`${url}/orders/${n++}`, { dispatcher });
        const body = (await response.body.json().catch(() => ({}))) as { served?: string };
        if (response.statusCode === 200 && body.served !== undefined) {
          tally.ok++;
          tally.byBackend.set(body.served, (tally.byBackend.get(body.served) ?? 0) + 1);
        } else tally.failed++;
      } catch {
        tally.failed++;
      }
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
  };
  await Promise.all(Array.from({ length: 4 }, client));
}

/** One MCP session through the proxy: initialize, three `whoami` calls, close. */
async function mcpSession(url: string, dispatcher: Agent, tally: Tally): Promise<void> {
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  const post = async (session: string | undefined, body: unknown) =>
    request(`${url}/mcp`, {
      method: 'POST',
      dispatcher,
      headers: session === undefined ? headers : { ...headers, 'mcp-session-id': session },
      body: JSON.stringify(body),
    });
  const init = await post(undefined, {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'demo', version: '1' } },
  });
  const session = init.headers['mcp-session-id'];
  await init.body.dump();
  if (init.statusCode !== 200 || typeof session !== 'string') return;
  tally.sessions++;
  await (await post(session, { jsonrpc: '2.0', method: 'notifications/initialized' })).body.dump();
  let replica: string | undefined;
  for (let id = 2; id <= 4; id++) {
    const call = await post(session, {
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: { name: 'whoami', arguments: {} },
    });
    if (call.statusCode === 404) {
      tally.lost++;
      await call.body.dump();
      return;
    }
    const answer = (await call.body.json().catch(() => ({}))) as {
      result?: { content?: { text?: string }[] };
    };
    const name = answer.result?.content?.[0]?.text;
    if (name === undefined) continue;
    tally.calls++;
    replica ??= name;
    if (name !== replica) tally.strays++;
  }
  await (
    await request(`${url}/mcp`, { method: 'DELETE', dispatcher, headers: { 'mcp-session-id': session } })
  ).body.dump();
}

/** Runs the demo; resolves with the exit code. */
export async function runDemo(options: DemoOptions): Promise<number> {
  const { out, log } = options;
  const started = Date.now();
  const seconds = () => ((Date.now() - started) / 1000).toFixed(1).padStart(5);
  const backends = await Promise.all(BEHAVIOURS.map((b) => startDemoBackend(b, Date.now)));
  const token = randomBytes(18).toString('base64url');
  const runtime = await startProxy(backends, token, log);
  const { web: url, admin } = runtime.addresses() as { web: string; admin: string };
  out('mcgravity demo: the proxy in front of three local backends');
  for (const [i, b] of backends.entries())
    out(`  ${b.name.padEnd(6)} 127.0.0.1:${b.port}  ${BEHAVIOURS[i]?.about}`);
  out(`proxy:        ${url}/  (try: curl ${url}/hello)`);
  out(`MCP endpoint: ${url}/mcp`);
  out(`status page:  ${admin}/  (admin token: ${token})`);
  out('Traffic: 4 clients sending GETs, and an MCP session every 2 s. Ctrl-C stops.\n');

  const web = runtime.clusters.web;
  for (const [event, what] of [
    ['endpoint:down', 'down (health check)'],
    ['endpoint:up', 'up again (health check)'],
    ['endpoint:ejected', 'ejected (outlier detection: 5xx in a row)'],
    ['endpoint:restored', 'back from ejection'],
  ] as const)
    web?.on(event, ({ id }: { id: string }) => out(`[${seconds()}s] web: ${id} ${what}`));

  const tally: Tally = { ok: 0, failed: 0, byBackend: new Map(), sessions: 0, calls: 0, strays: 0, lost: 0 };
  const dispatcher = new Agent({ connections: 8 });
  let running = true;
  const traffic = webTraffic(url, dispatcher, tally, () => running);
  const mcpTimer = setInterval(() => void mcpSession(url, dispatcher, tally).catch(() => {}), 2_000);
  const summary = () => {
    const stats = web?.stats();
    const states = (stats?.endpoints ?? [])
      .map(
        (e) => `${e.id} ${e.draining ? 'draining' : e.ejected ? 'ejected' : e.healthy ? 'healthy' : 'down'}`,
      )
      .join(', ');
    const served = [...tally.byBackend].sort(([a], [b]) => a.localeCompare(b)).map(([n, c]) => `${n} ${c}`);
    out(
      `[${seconds()}s] web: ${tally.ok + tally.failed} GETs, ${tally.ok} ok, ${tally.failed} failed · ${served.join('  ')} · p99 ${(stats?.latency.p99 ?? 0).toFixed(0)} ms · ${states}`,
    );
    out(
      `${' '.repeat(9)}mcp: ${tally.sessions} sessions, ${tally.calls} tool calls, ${tally.strays === 0 ? 'each on its session’s replica' : `${tally.strays} on another replica`}${tally.lost > 0 ? `, ${tally.lost} ended by their replica failing (404: the client starts again)` : ''}`,
    );
  };
  const summaries = setInterval(summary, 5_000);

  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      clearTimeout(deadline);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    const deadline = options.durationMs === undefined ? undefined : setTimeout(stop, options.durationMs);
  });
  running = false;
  clearInterval(summaries);
  clearInterval(mcpTimer);
  await traffic;
  summary();
  await runtime.close(2_000);
  await dispatcher.close();
  await Promise.all(backends.map((b) => b.close()));
  out('demo stopped: proxy drained, backends closed');
  return 0;
}
