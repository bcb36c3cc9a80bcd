/**
 * Every core: the proxy in several processes sharing one port, with `node:cluster`. Each worker
 * runs its own `createProxy` (its own pools, health checks and counters); the operating system
 * spreads incoming connections over them. The `mcgravity` command does this with `--workers N`; this
 * is the same for a program that embeds the library.
 *
 * What to share between workers: an `affinitySecret` (so that cookie and MCP-session tokens one
 * worker issues, another accepts), and a Redis store for rate limits (in memory, each worker
 * counts its own). Metrics are per worker: sum them, or scrape each.
 */
import cluster from 'node:cluster';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createProxy } from 'mcgravity';

const WORKERS = 2;

if (cluster.isPrimary) {
  // A stand-in backend, in the primary, that says which worker's request it got.
  const backend = http.createServer((req, res) => res.end(String(req.headers['x-worker'])));
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const backendUrl = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;

  // Port 0 would give each worker its own port: the primary picks one and hands it to all.
  const probe = http.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));

  const workers = Array.from({ length: WORKERS }, () =>
    cluster.fork({ BACKEND: backendUrl, PORT: String(port) }),
  );
  await Promise.all(workers.map((worker) => new Promise((resolve) => worker.once('message', resolve))));
  console.log(`${WORKERS} workers listen on port ${port}`);

  // New connections each time (no keep-alive), so the kernel spreads them over the workers.
  const seen = new Set<string>();
  for (let i = 0; i < 40 && seen.size < WORKERS; i++) {
    const body = await new Promise<string>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
          let text = '';
          res.on('data', (chunk) => {
            text += chunk;
          });
          res.on('end', () => resolve(text));
        })
        .on('error', reject);
    });
    seen.add(body);
  }
  console.log(`requests were served by ${seen.size} different workers`);
  for (const worker of workers) worker.kill('SIGTERM');
  await Promise.all(workers.map((worker) => new Promise((resolve) => worker.once('exit', resolve))));
  backend.close();
  console.log('done');
} else {
  const proxy = createProxy({
    cluster: { backends: [process.env.BACKEND as string] },
    affinitySecret: 'the-same-secret-in-every-worker',
    onRequest: (_req, upstream) => {
      upstream.headers['x-worker'] = String(process.pid);
    },
  });
  const server = http.createServer(proxy.handler);
  server.listen(Number(process.env.PORT), '127.0.0.1', () => process.send?.('ready'));
  process.on('SIGTERM', () => {
    // Graceful: stop accepting, finish what is in flight, then exit.
    void proxy.close({ timeoutMs: 5000 }).then(() => server.close(() => process.exit(0)));
  });
}
