/**
 * Three real HTTP servers on 127.0.0.1, and mcgravity's balancers choosing between
 * them for real requests. Prints what each algorithm did, then exits.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Balancer, createBalancer, type Endpoint } from 'mcgravity';

interface Backend extends Endpoint {
  inflight: number;
  server: http.Server;
}

async function startBackend(name: string, weight: number, delayMs: number): Promise<Backend> {
  const server = http.createServer((_req, res) => {
    setTimeout(() => res.end(name), delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { id: name, url: `http://127.0.0.1:${port}`, weight, inflight: 0, server };
}

/** Sends `count` requests, `concurrency` at a time, each to the endpoint the balancer picks. */
async function drive(
  balancer: Balancer<Backend>,
  count: number,
  concurrency: number,
  key?: (i: number) => string,
) {
  const served = new Map<string, number>();
  let next = 0;
  async function worker(): Promise<void> {
    while (next < count) {
      const i = next++;
      const backend = balancer.pick(key ? { key: key(i) } : undefined);
      if (backend === undefined) throw new Error('no backend left');
      backend.inflight++;
      try {
        const answer = await (await fetch(backend.url)).text();
        served.set(answer, (served.get(answer) ?? 0) + 1);
      } finally {
        backend.inflight--;
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return served;
}

function show(title: string, served: Map<string, number>): void {
  const parts = [...served].sort(([a], [b]) => a.localeCompare(b)).map(([name, n]) => `${name} ${n}`);
  console.log(`${title.padEnd(58)} ${parts.join('  ')}`);
}

const backends = await Promise.all([
  startBackend('alpha', 3, 5),
  startBackend('beta', 2, 5),
  startBackend('gamma', 1, 40), // slow
]);
console.log(
  `3 backends on 127.0.0.1: ${backends.map((b) => `${b.id} (weight ${b.weight}) ${b.url}`).join(', ')}\n`,
);

const wrr = createBalancer<Backend>('weighted-round-robin');
wrr.update(backends);
show('weighted-round-robin, 60 requests (weights 3:2:1)', await drive(wrr, 60, 1));

const p2c = createBalancer<Backend>('least-request');
p2c.update(backends);
show('least-request (P2C), 120 requests, 8 at a time, gamma slow', await drive(p2c, 120, 8));

// Consistent hashing: each user sticks to one backend; when one leaves, only its users move.
const hash = createBalancer<Backend>('consistent-hash');
hash.update(backends);
const users = Array.from({ length: 12 }, (_, i) => `user-${i}`);
const home = new Map(users.map((user) => [user, hash.pick({ key: user })?.id]));
show('consistent-hash, 48 requests from 12 users', await drive(hash, 48, 4, (i) => users[i % 12] as string));
const [alpha, beta, gamma] = backends as [Backend, Backend, Backend];
hash.update([alpha, gamma]);
const moved = users.filter((user) => hash.pick({ key: user })?.id !== home.get(user));
const movedFromBeta = moved.every((user) => home.get(user) === 'beta');
show('consistent-hash after beta leaves', await drive(hash, 48, 4, (i) => users[i % 12] as string));
console.log(
  `${moved.length} of 12 users moved, ${movedFromBeta ? 'all of them' : 'not only'} beta's; the others kept their backend`,
);

const rr = createBalancer<Backend>('round-robin');
rr.update([alpha, beta, gamma]);
const first = rr.pick() as Backend;
const retry = rr.pick({ exclude: new Set([first.id]) }) as Backend;
console.log(
  `\nretry after ${first.id} failed goes to ${retry.id}: exclude never returns an endpoint already tried`,
);

await Promise.all(backends.map((b) => new Promise((resolve) => b.server.close(resolve))));
console.log('done: all servers closed');
