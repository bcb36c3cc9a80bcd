import net from 'node:net';

/** Sends raw bytes to 127.0.0.1:`port` and resolves with everything the server wrote before closing. */
export function rawRequest(port: number, ...parts: (string | Buffer)[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('connect', () => {
      for (const part of parts) socket.write(part);
    });
  });
}

/** The status code of a raw HTTP response text. */
export function statusOfRaw(response: string): number {
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1] ?? 0);
}
