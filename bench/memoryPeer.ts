/**
 * The other end of the memory benchmark's connection cases, in its own process so that none of its
 * memory is counted: an upstream (`http`: a plain keep-alive server; `ws`: a WebSocket echo server),
 * whose port it prints as `PORT <n>`, and the clients. Told `CONNECT <proxy port> <count>` on stdin,
 * it opens that many connections to the proxy, 500 at a time: `http` sends one GET on each and keeps
 * it open and idle; `ws` opens a WebSocket through the proxy, exchanges one message and keeps it
 * open. Then it prints `OPEN <count>` and waits to be killed. Run only by bench/memory.ts.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { WebSocket, WebSocketServer } from 'ws';

const kind = process.argv[2];
const held: unknown[] = [];

/** One idle keep-alive connection that has carried one request. */
function idleConnection(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('latin1');
    socket.on('error', reject);
    socket.on('connect', () => socket.write('GET / HTTP/1.1\r\nHost: bench\r\n\r\n'));
    socket.on('data', (chunk: string) => {
      answer += chunk;
      if (answer.endsWith('ok')) {
        held.push(socket);
        resolve();
      }
    });
  });
}

/** One WebSocket through the proxy that has echoed one message. */
function tunnel(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/`);
    socket.on('error', reject);
    socket.on('open', () => socket.send('hello'));
    socket.on('message', () => {
      held.push(socket);
      resolve();
    });
  });
}

async function connect(port: number, count: number): Promise<void> {
  const open = kind === 'ws' ? tunnel : idleConnection;
  for (let done = 0; done < count; done += 500) {
    await Promise.all(Array.from({ length: Math.min(500, count - done) }, () => open(port)));
  }
  process.stdout.write(`OPEN ${held.length}\n`);
}

let server: http.Server;
if (kind === 'ws') {
  server = http.createServer();
  const wss = new WebSocketServer({ server });
  wss.on('connection', (socket) => socket.on('message', (data) => socket.send(data)));
} else {
  server = http.createServer((_req, res) => res.end('ok'));
  server.keepAliveTimeout = 600_000;
}
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`);
});
const commands = createInterface({ input: process.stdin });
commands.on('close', () => process.exit(0)); // the benchmark's case process is gone
commands.on('line', (line) => {
  const [word, port, count] = line.split(' ');
  if (word === 'CONNECT') {
    connect(Number(port), Number(count)).catch((error: unknown) => {
      process.stderr.write(`${String(error)}\n`);
      process.exit(1);
    });
  }
});
