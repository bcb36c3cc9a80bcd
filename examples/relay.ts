/**
 * Relaying a cluster's answers straight into your own HTTP responses with `cluster.stream()`: the
 * body is written into the response as it arrives (with backpressure, and no body stream in
 * between), and an answer the retry policy retries, a 503 here, never reaches the client.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCluster } from 'mcgravity';

async function listen(handler: http.RequestListener): Promise<http.Server> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}
const urlOf = (server: http.Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

// Two backends: one overloaded (it answers 503 to everything), one that answers in three parts.
let refused = 0;
const busy = await listen((_req, res) => {
  refused++;
  res.writeHead(503, { 'content-type': 'text/plain' });
  res.end('overloaded');
});
const steady = await listen((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.write(`report ${req.url}: part 1`);
  setTimeout(() => {
    res.write(', part 2');
    res.end(', part 3');
  }, 10);
});

const cluster = createCluster({
  backends: [
    { url: urlOf(busy), id: 'busy' },
    { url: urlOf(steady), id: 'steady' },
  ],
  balancer: 'round-robin',
  outlierDetection: false, // keep the busy backend in rotation, to show the retries
});

// A gateway of our own: each answer goes from the cluster straight into the client's response.
const gateway = await listen((req, res) => {
  cluster
    .stream({ method: req.method ?? 'GET', path: req.url ?? '/' }, ({ statusCode, headers, endpoint }) => {
      res.writeHead(statusCode, {
        'content-type': headers['content-type'] ?? 'application/octet-stream',
        'x-served-by': endpoint.id,
      });
      return res;
    })
    .catch((error: { code?: string }) => {
      // No answer at all (or the answer broke mid-way, and the response is already cut).
      if (!res.headersSent) res.writeHead(502).end(error.code ?? 'upstream failed');
    });
});

for (let i = 1; i <= 4; i++) {
  const response = await fetch(`${urlOf(gateway)}/reports/${i}`);
  console.log(
    `request ${i}: ${response.status} from ${response.headers.get('x-served-by')}: ${await response.text()}`,
  );
}
console.log(
  `the busy backend refused ${refused} of them; the cluster retried ${cluster.stats().retries} times`,
);

await cluster.close();
for (const server of [gateway, busy, steady]) server.close();
