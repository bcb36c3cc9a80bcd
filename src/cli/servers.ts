/**
 * The command's servers: a listener's server (HTTP, or HTTPS with its certificate files), listening
 * on a configured address, and the URL it ended up on. Shared by a single process, its workers and
 * their primary.
 */
import { readFileSync } from 'node:fs';
import http, { type Server } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { fileFrom, listenAddress } from './config/addresses.js';
import type { ListenerConfig } from './config/schema.js';

/** Settings of every listener's server; the proxy sets its client timeouts when it attaches. */
const serverOptions = { connectionsCheckingInterval: 1_000, maxHeaderSize: 16 * 1024 } as const;

/** A listener's address and scheme: a server is handed over only to a listener with the same. */
export function listenerKey(listener: ListenerConfig): string {
  const { host, port } = listenAddress(listener.address);
  return `${isTls(listener) ? 'https' : 'http'}://${host}:${port}`;
}

/** Whether a listener speaks HTTPS. */
export function isTls(listener: ListenerConfig): boolean {
  return listener.protocol === 'https' || listener.ssl?.enabled === true;
}

/** A listener's certificate and key, read from their files; undefined for plain HTTP. */
export function tlsOf(listener: ListenerConfig, file: string): { cert: Buffer; key: Buffer } | undefined {
  const ssl = listener.ssl;
  if (ssl === undefined || !isTls(listener)) return undefined;
  return {
    cert: readFileSync(fileFrom(file, ssl.cert_file)),
    key: readFileSync(fileFrom(file, ssl.key_file)),
  };
}

/** A server for a listener: https with its certificate files, or http. */
export function serverFor(listener: ListenerConfig, file: string): Server {
  const tls = tlsOf(listener, file);
  return tls === undefined
    ? http.createServer(serverOptions)
    : https.createServer({ ...serverOptions, ...tls });
}

/** Listens on `address` (`host:port`); rejects if it cannot (a port taken). */
export async function listenOn(server: Server, address: string): Promise<void> {
  const { host, port } = listenAddress(address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Where `server` listens, as a URL. */
export function urlOf(server: Server, tls: boolean): string {
  const { address, port, family } = server.address() as AddressInfo;
  const host = family === 'IPv6' ? `[${address}]` : address;
  return `${tls ? 'https' : 'http'}://${host}:${port}`;
}

/** Stops accepting and cuts every connection, resolving once `server` is closed. */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
