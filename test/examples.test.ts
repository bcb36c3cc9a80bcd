/**
 * Every file in examples/ runs here, as a user would run it, and its output is checked, so the
 * docs' examples never rot. An example without an entry below fails the suite.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));

const expectations: Record<string, (stdout: string) => void> = {
  'circuit-breaker.ts': (out) => {
    expect(out).toMatch(/call 3: 503 overloaded/);
    expect(out).toContain('call 4: refused by the breaker (ECIRCUITOPEN)');
    expect(out).toContain('the service saw 3 requests for 5 calls');
    expect(out).toMatch(/open -> half-open[\s\S]*half-open -> closed[\s\S]*probe: 200 fresh data/);
    expect(out).toContain('state: closed');
  },
  'express.ts': (out) => {
    expect(out).toContain('GET /hello -> {"from":"express"}');
    const served = [
      ...out.matchAll(/"served":"(users-\d)","path":"\/users\?page=2","forwardedFor":"127\.0\.0\.1"/g),
    ].map((m) => m[1]);
    expect(served).toEqual(['users-1', 'users-2', 'users-1', 'users-2']);
    expect(out).toMatch(
      /POST \/api\/users -> \{"served":"users-\d","path":"\/users",.*"body":"\{\\"name\\":\\"ada\\"\}"\}/,
    );
    expect(out).toMatch(/WebSocket -> users-\d echoes hello/);
    expect(out).toContain('GET /admin/api/v1/health/clusters -> {"eligible":2');
  },
  'mcp-client.ts': (out) => {
    for (const [i, replica] of ['a', 'b', 'c'].entries()) {
      expect(out).toContain(`session ${i + 1}: ${Array(4).fill(`replica-${replica}`).join(' ')}`);
    }
    expect(out).toContain('stopped replica-a');
    expect(out).toContain('event: a session of replica-a was lost (refused); the client was told 404');
    expect(out).toMatch(/session 1 again: replica-[bc]/);
    expect(out).toContain('session 2: replica-b');
    expect(out).toMatch(/whoami: 16 calls, 1 failed/);
    expect(out).toContain('done');
  },
  'mcp-proxy.ts': (out) => {
    expect(out).toMatch(/first session: token [A-Za-z0-9_-]{16} \+ the server's id \(36 chars\)/);
    expect(out).toContain('first: replica-a replica-a replica-a replica-a (through both proxies)');
    expect(out).toContain('second: replica-b replica-b replica-b replica-b (through both proxies)');
    expect(out).toMatch(/forged session: 404 \{"jsonrpc":"2.0","id":null,"error":\{"code":-32001/);
    expect(out).toContain('sessions seen by proxy 1: {"tools":{"replica-a":1,"replica-b":1}}');
    expect(out).toContain('done');
  },
  'relay.ts': (out) => {
    for (let i = 1; i <= 4; i++) {
      expect(out).toContain(`request ${i}: 200 from steady: report /reports/${i}: part 1, part 2, part 3`);
    }
    expect(out).toMatch(/the busy backend refused ([1-4]) of them; the cluster retried \1 times/);
  },
  'opentelemetry.ts': (out) => {
    // One span per proxied request, with the endpoint that answered and its status…
    const spans = [...out.matchAll(/^span GET proxy \/orders\/(\d) -> 200 from (blue|green)$/gm)];
    expect(spans.map((m) => m[1])).toEqual(['0', '1', '2', '3']);
    expect(spans.map((m) => m[2])).toEqual(['blue', 'green', 'blue', 'green']);
    // …and attempt durations per endpoint.
    expect(out).toContain('histogram mcgravity.attempt.duration endpoint=blue count=2');
    expect(out).toContain('histogram mcgravity.attempt.duration endpoint=green count=2');
  },
  'rate-limit.ts': (out) => {
    for (let i = 1; i <= 5; i++) expect(out).toContain(`request ${i}: 200 remaining=${5 - i} hello`);
    expect(out).toContain('request 6: 429 remaining=0 retry-after=12s {"error":{"code":"ERATELIMITED"');
    expect(out).toContain('limiter: {"allowed":5,"limited":2,"queued":0,"storeErrors":0}');
  },
  'balancers.ts': (out) => {
    expect(out).toMatch(
      /weighted-round-robin, 60 requests \(weights 3:2:1\)\s+alpha 30 {2}beta 20 {2}gamma 10/,
    );
    expect(out).toMatch(/least-request \(P2C\), 120 requests.*alpha \d+ {2}beta \d+ {2}gamma \d+/);
    expect(out).toMatch(/\d+ of 12 users moved, all of them beta's/);
    expect(out).toContain('retry after alpha failed goes to beta');
    expect(out).toContain('done: all servers closed');
  },
  'dns-discovery.ts': (out) => {
    expect(out).toContain('update: added [blue] removed []');
    expect(out).toContain('first answers: blue blue blue blue');
    expect(out).toContain('update: added [green] removed [blue]');
    expect(out).toContain('after the deploy: green green green green');
    expect(out).toContain('DNS failed (dns SRV _http._tcp.api.example: ETIMEOUT): kept 1 backend(s)');
    expect(out).toContain('while DNS is down: green green green green');
    expect(out).toContain('"source":"dns SRV _http._tcp.api.example","updates":2,"errors":1,"stale":true');
  },
  'grpc-proxy.ts': (out) => {
    expect(out).toContain('unary calls answered by: a b c a b c');
    expect(out).toContain('server stream: 1000 messages, status 0, x-sent 1000');
    expect(out).toMatch(/health check: b is down \(connect-failure\)/);
    expect(out).toMatch(/after b stopped: (?:a c a c|c a c a)\n/);
    expect(out).toContain('done');
  },
  'workers.ts': (out) => {
    expect(out).toMatch(/2 workers listen on port \d+/);
    expect(out).toContain('requests were served by 2 different workers');
    expect(out).toContain('done');
  },
  'custom-balancer.ts': (out) => {
    expect(out).toContain('embeddings: gpu-1=30');
    expect(out).toContain('search:     gpu-1 search-1 search-2');
    expect(out).toContain('translate:  none=3');
    expect(out).toContain('retry:      none left');
  },
};

describe('examples', () => {
  const files = readdirSync(new URL('../examples', import.meta.url)).filter((f) => f.endsWith('.ts'));

  it('has an expectation for every example', () => {
    expect(files.sort()).toEqual(Object.keys(expectations).sort());
  });

  it.each(files)('%s runs and prints what it promises', async (file) => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', `examples/${file}`], {
      cwd: root,
      timeout: 30_000,
    });
    expectations[file]?.(stdout);
  });
});
