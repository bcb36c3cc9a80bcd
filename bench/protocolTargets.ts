/**
 * The processes of the protocol benchmark, one per role, each printing `PORT <n>` (or `PORTS …`)
 * when ready. Run only by bench/protocols.ts.
 *
 * - `upstream-h1`: two HTTP/1.1 keep-alive servers; `upstream-h2c`: two cleartext HTTP/2 servers.
 * - `mcgravity <h1|h2c> <ports…>`: one cluster (HTTP/1.1 or h2c to the upstreams, built package)
 *   behind two createProxy listeners, HTTP/1.1 and cleartext HTTP/2: `PORTS <http1> <h2c>`.
 * - `source <bytes>`: a TCP server that sends that many bytes to each connection, then ends it.
 * - `tcp <port>`: createTcpProxy in front of a `source`.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';

const [role, ...rest] = process.argv.slice(2);
const BODY = Buffer.from('{"hello":"world","items":[1,2,3,4,5,6,7,8,9,10]}');

process.on('SIGTERM', () => process.exit(0));

const portOf = (server: net.Server) => (server.address() as AddressInfo).port;
const listen = (server: net.Server) =>
  new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve(portOf(server))));

switch (role) {
  case 'upstream-h1':
  case 'upstream-h2c': {
    const ports: number[] = [];
    for (let i = 0; i < 2; i++) {
      const answer = (_req: unknown, res: http.ServerResponse | http2.Http2ServerResponse) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
        res.end(BODY);
      };
      const server =
        role === 'upstream-h1'
          ? http.createServer({ keepAliveTimeout: 60_000 }, answer)
          : http2.createServer({ settings: { maxConcurrentStreams: 1000 } }, answer);
      ports.push(await listen(server as net.Server));
    }
    process.stdout.write(`PORTS ${ports.join(' ')}\n`);
    break;
  }
  case 'mcgravity': {
    const [backendProtocol, ...ports] = rest;
    const { createProxy, createCluster } = (await import(
      new URL('../dist/index.js', import.meta.url).href
    )) as typeof import('../src/index.js');
    const cluster = createCluster({
      backends: ports.map((port) => `http://127.0.0.1:${port}`),
      balancer: 'round-robin',
      pool: backendProtocol === 'h2c' ? { protocol: 'h2c' } : { connections: 64 },
    });
    // The same cluster behind two listeners: HTTP/1.1, and cleartext HTTP/2.
    const h1 = createProxy({ cluster, requestId: false });
    const h2 = createProxy({
      cluster,
      requestId: false,
      http2: { cleartext: true, maxConcurrentStreams: 1000 },
    });
    const [a, b] = [await h1.listen(0), await h2.listen(0)];
    process.stdout.write(`PORTS ${portOf(a as net.Server)} ${portOf(b as net.Server)}\n`);
    break;
  }
  case 'source': {
    const total = Number(rest[0]);
    const chunk = Buffer.alloc(64 * 1024, 120);
    const server = net.createServer((socket) => {
      socket.on('error', () => {});
      let sent = 0;
      const write = () => {
        while (sent < total) {
          sent += chunk.length;
          if (!socket.write(chunk)) {
            socket.once('drain', write);
            return;
          }
        }
        socket.end();
      };
      write();
    });
    process.stdout.write(`PORT ${await listen(server)}\n`);
    break;
  }
  case 'tcp': {
    const { createTcpProxy } = (await import(
      new URL('../dist/index.js', import.meta.url).href
    )) as typeof import('../src/index.js');
    const proxy = createTcpProxy({ cluster: { backends: [`tcp://127.0.0.1:${rest[0]}`], retry: false } });
    const server = await proxy.listen(0);
    process.stdout.write(`PORT ${portOf(server)}\n`);
    break;
  }
  default:
    throw new Error(`unknown role ${role}`);
}
