/**
 * The processes of the proxy benchmark, one per role, each printing `PORT <n>` when ready:
 * `upstream` (two plain keep-alive servers), and one proxy per implementation in front of them.
 * Run only by bench/proxy.ts.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [role, ...ports] = process.argv.slice(2);
const upstreams = ports.map((port) => `http://127.0.0.1:${port}`);
const BODY = Buffer.from('{"hello":"world","items":[1,2,3,4,5,6,7,8,9,10]}');

// Exit cleanly on SIGTERM, so that --cpu-prof can write its profile when the bench stops a target.
if (!/^(nginx|mcgravity-cli|mcgravity-w)/.test(process.argv[2] ?? ''))
  process.on('SIGTERM', () => process.exit(0));

function ready(port: number): void {
  process.stdout.write(`PORT ${port}\n`);
}

/** Polls `port` every 50 ms, at most `tries` times, until an HTTP GET is answered. */
async function answering(port: number, tries: number): Promise<void> {
  for (let i = 0; i < tries; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      http
        .get({ port, host: '127.0.0.1', path: '/' }, (res) => {
          res.resume();
          resolve(true);
        })
        .on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

switch (role) {
  case 'upstream': {
    const made: number[] = [];
    for (let i = 0; i < 2; i++) {
      const server = http.createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
        res.end(BODY);
      });
      server.keepAliveTimeout = 60_000;
      made.push(await listen(server));
    }
    process.stdout.write(`PORTS ${made.join(' ')}\n`);
    break;
  }
  case 'mcgravity':
  case 'mcgravity-lean':
  case 'mcgravity-baseline': {
    // The built package, as users run it (npm run bench builds first), not the TypeScript source;
    // the baseline is another build, named by MCGRAVITY_BASELINE.
    const dist =
      role === 'mcgravity-baseline'
        ? pathToFileURL(process.env.MCGRAVITY_BASELINE ?? '').href
        : new URL('../dist/index.js', import.meta.url).href;
    const { createProxy } = (await import(dist)) as typeof import('../src/index.js');
    // Every default on (outlier detection, retries and their budget, request ids, X-Forwarded-*,
    // latency windows, metrics); only the balancer and the pool size are chosen, as every row's are.
    // The lean row turns off what can be turned off (request ids, timeouts, retries, breakers,
    // outlier detection), leaving what every request pays: X-Forwarded-*, ordering, latency, metrics.
    const lean = role === 'mcgravity-lean';
    const proxy = createProxy({
      ...(lean ? { requestId: false, timeouts: { firstByteMs: 0, idleMs: 0 } } : {}),
      cluster: {
        backends: upstreams,
        balancer: 'round-robin',
        pool: { connections: 64 },
        ...(lean ? { retry: false, circuitBreaker: false, outlierDetection: false } : {}),
      },
    });
    const server = await proxy.listen(0);
    ready((server.address() as AddressInfo).port);
    break;
  }
  case 'mcgravity-cli':
  case 'mcgravity-w1':
  case 'mcgravity-w2': {
    // The command as an operator runs it (the built dist/cli.js). `mcgravity-cli` writes a JSON access
    // log to a file and otherwise has the options of the `mcgravity` row, so that the difference
    // between the two rows is the command and its access log; `mcgravity-w1` and `-w2` run without a
    // log, with 1 and 2 worker processes (as nginx's rows, access_log off).
    const port = Number(ports.pop());
    const workers = role === 'mcgravity-w2' ? 2 : 1;
    const dir = mkdtempSync(join(tmpdir(), 'mcgravity-cli-bench-'));
    writeFileSync(
      join(dir, 'proxy.yaml'),
      `global: { log_level: warn, metrics_port: 0, affinity_secret: bench-affinity-secret-0123 }
clusters:
  bench:
    load_balancing: round_robin
    connection_pool: { max_connections: 64 }
    backends: [${ports.map((p) => `{ address: "127.0.0.1:${p}" }`).join(', ')}]
listeners: [{ name: web, address: "127.0.0.1:${port}", cluster: bench }]
${role === 'mcgravity-cli' ? `access_log: { path: ${join(dir, 'access.log')} }` : ''}
`,
    );
    const child = spawn(
      process.execPath,
      [
        new URL('../dist/cli.js', import.meta.url).pathname,
        '--config',
        join(dir, 'proxy.yaml'),
        '--workers',
        String(workers),
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    process.on('SIGTERM', () => {
      child.kill('SIGTERM');
      process.exit(0);
    });
    await answering(port, 200);
    ready(port);
    break;
  }
  case 'undici':
  case 'undici-headers': {
    // The baseline a careful engineer writes in 30 lines: node:http in front, undici's Pool.stream()
    // behind, round robin, hop-by-hop headers out, 502 on failure, and nothing else. `undici-headers`
    // is the same proxy putting on the wire what mcgravity's defaults put there, written plainly:
    // X-Forwarded-For, -Proto and -Host and a request id upstream, the request id in the answer.
    const { Pool } = await import('undici');
    const { randomUUID } = await import('node:crypto');
    const withHeaders = role === 'undici-headers';
    const pools = upstreams.map((origin) => new Pool(origin, { connections: 64 }));
    const hopByHop = new Set([
      'connection',
      'keep-alive',
      'transfer-encoding',
      'upgrade',
      'proxy-connection',
      'te',
      'trailer',
    ]);
    const endToEnd = (headers: Record<string, string | string[] | undefined>) => {
      const out: Record<string, string | string[]> = {};
      for (const name in headers) {
        const value = headers[name];
        if (value !== undefined && !hopByHop.has(name)) out[name] = value;
      }
      return out;
    };
    let next = 0;
    const server = http.createServer((req, res) => {
      const pool = pools[next++ % pools.length] as InstanceType<typeof Pool>;
      const hasBody =
        req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
      const headers = endToEnd(req.headers);
      let id: string | undefined;
      if (withHeaders) {
        const incoming = req.headers['x-request-id'];
        id = typeof incoming === 'string' ? incoming : randomUUID();
        headers['x-forwarded-for'] = req.socket.remoteAddress ?? '';
        headers['x-forwarded-proto'] = 'http';
        headers['x-forwarded-host'] = req.headers.host ?? '';
        headers['x-request-id'] = id;
      }
      pool.stream(
        { method: req.method as 'GET', path: req.url ?? '/', headers, body: hasBody ? req : null },
        ({ statusCode, headers }) => {
          const out = endToEnd(headers);
          if (id !== undefined) out['x-request-id'] = id;
          res.writeHead(statusCode, out);
          return res;
        },
        (error) => {
          if (error !== null && !res.headersSent) res.writeHead(502).end();
        },
      );
    });
    ready(await listen(server));
    break;
  }
  case 'http-proxy-3':
  case 'http-proxy': {
    // The same server for both: http-proxy-3 is the rewrite of http-proxy, with its API.
    type WebProxy = {
      web(
        req: http.IncomingMessage,
        res: http.ServerResponse,
        options: { target: string },
        onError: () => void,
      ): void;
    };
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const proxy: WebProxy =
      role === 'http-proxy'
        ? (await import('http-proxy')).default.createProxyServer({ agent, xfwd: true })
        : (await import('http-proxy-3')).createProxyServer({ agent, xfwd: true });
    let next = 0;
    const server = http.createServer((req, res) => {
      const target = upstreams[next++ % upstreams.length] as string;
      proxy.web(req, res, { target }, () => {
        res.writeHead(502).end();
      });
    });
    ready(await listen(server));
    break;
  }
  case 'reply-from': {
    const { default: Fastify } = await import('fastify');
    const { default: replyFrom } = await import('@fastify/reply-from');
    const app = Fastify();
    await app.register(replyFrom, { undici: { connections: 64, pipelining: 1 } });
    let next = 0;
    app.all('/*', (request, reply) => {
      const target = upstreams[next++ % upstreams.length] as string;
      return reply.from(`${target}${request.url}`);
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    ready((app.server.address() as AddressInfo).port);
    break;
  }
  case 'nginx':
  case 'nginx-w2': {
    const dir = mkdtempSync(join(tmpdir(), 'mcgravity-nginx-'));
    const port = Number(ports.pop());
    const conf = `
worker_processes ${role === 'nginx-w2' ? 2 : 1};
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream backends {
    ${ports.map((p) => `server 127.0.0.1:${p};`).join('\n    ')}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}`;
    writeFileSync(join(dir, 'nginx.conf'), conf);
    const child = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    process.on('SIGTERM', () => {
      child.kill('SIGQUIT');
      process.exit(0);
    });
    // nginx prints nothing when ready: poll its port.
    await answering(port, 100);
    ready(port);
    break;
  }
  default:
    throw new Error(`unknown role ${role}`);
}
