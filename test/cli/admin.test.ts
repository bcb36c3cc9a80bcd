/**
 * The command's admin API changes: traffic split, rate limits and circuit breaker of a running
 * proxy, checked like the file, applied like a reload, written to the audit log; and the file
 * winning at the next reload.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/cli/config/load.js';
import { Runtime } from '../../src/cli/Runtime.js';
import { within } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { startUpstream, type Upstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();
const TOKEN = 'admin-token-0123456789';

async function backend(name: string): Promise<Upstream> {
  const server = await startUpstream((_req, res) => res.end(name));
  defer(() => server.close());
  return server;
}

async function call(url: string, method = 'GET', body?: unknown, token: string | null = TOKEN) {
  const response = await request(url, {
    method: method as 'GET',
    headers: {
      'content-type': 'application/json',
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.statusCode, body: (await response.body.json()) as Record<string, unknown> };
}

describe('admin API changes in the command', () => {
  it('changes the traffic split, rate limits and circuit breaker, audits each change, and yields to the file on reload', async () => {
    const [stable, canary] = [await backend('stable'), await backend('canary')];
    const dir = mkdtempSync(join(tmpdir(), 'mcgravity-admin-'));
    const file = join(dir, 'proxy.yaml');
    writeFileSync(
      file,
      `global: { metrics_port: 0, admin_token: ${TOKEN} }
clusters:
  claims:
    backends: [{ address: "127.0.0.1:${stable.port}" }]
  claims_canary:
    backends: [{ address: "127.0.0.1:${canary.port}" }]
listeners:
  - { name: web, address: "127.0.0.1:0", cluster: claims }
audit_log: { path: audit.log, compliance_mode: SOC2 }
`,
    );
    const runtime = await Runtime.start(file, loadConfig(file), pino({ level: 'silent' }));
    defer(() => runtime.close(0));
    const { web, admin } = runtime.addresses() as { web: string; admin: string };
    const api = `${admin}/api/v1/clusters/claims`;
    const from = async (headers: Record<string, string> = {}) =>
      (await request(`${web}/x`, { headers })).body.text();

    expect(await call(`${api}/traffic-split`)).toEqual({ status: 200, body: null });
    // The product's own request body.
    const split = {
      splits: [
        {
          backend_group: 'claims_canary',
          percentage: 0,
          match_criteria: { headers: { 'X-Claims-Priority': 'test' } },
        },
      ],
      fallback_group: 'claims',
    };
    expect(await call(`${api}/traffic-split`, 'POST', split, null)).toMatchObject({ status: 401 });
    const set = await call(`${api}/traffic-split`, 'POST', split);
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({
      fallback_group: 'claims',
      splits: [{ backend_group: 'claims_canary' }],
    });
    expect(await from({ 'x-claims-priority': 'test' })).toBe('canary');
    expect(await from()).toBe('stable');

    const refused = await call(`${api}/traffic-split`, 'POST', {
      splits: [{ backend_group: 'nowhere', percentage: 'ten' }],
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: 'EBADREQUEST' });
    expect(String((refused.body.error as { message: string }).message)).toContain(
      'clusters.claims.traffic_split.splits[0].percentage: expected a number',
    );

    const limits = await call(`${api}/rate-limits`, 'POST', {
      rules: [{ client_type: 'everyone', limit: 2, window: '1m' }],
      overflow_action: 'reject',
    });
    expect(limits.status).toBe(200);
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await request(`${web}/x`)).statusCode);
    expect(statuses).toEqual([200, 200, 429]);

    const breaker = await call(`${api}/circuit-breaker`, 'POST', {
      failure_threshold: 3,
      recovery_timeout: '20s',
    });
    expect(breaker.body).toMatchObject({
      failure_threshold: 3,
      recovery_timeout: '20s',
      success_threshold: 1,
    });
    expect((await call(`${api}/circuit-breaker`)).body).toEqual(breaker.body);

    const audit = join(dir, 'audit.log');
    await within(() => readFileSync(audit, 'utf8').split('\n').length > 3, 5_000, 'three audit lines');
    const lines = readFileSync(audit, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.action)).toEqual([
      'POST /api/v1/clusters/claims/traffic-split',
      'POST /api/v1/clusters/claims/rate-limits',
      'POST /api/v1/clusters/claims/circuit-breaker',
    ]);
    expect(lines[0]).toMatchObject({
      compliance_mode: 'SOC2',
      actor: expect.stringMatching(/^token:[0-9a-f]{8}$/),
      client: '127.0.0.1',
      cluster: 'claims',
      before: null,
      after: { fallback_group: 'claims' },
    });

    // The file wins: a reload brings back what it says.
    await runtime.reload(loadConfig(file));
    expect(await from({ 'x-claims-priority': 'test' })).toBe('stable');
    expect((await call(`${api}/rate-limits`)).body).toBeNull();
  });
});
