/**
 * The command's servers: a listener's server (HTTP, or HTTPS with its certificate files), listening
 * on a configured address, and the URL it ended up on. Shared by a single process, its workers and
 * their primary.
 */
import { readFileSync } from 'node:fs';
import http, { type Server } from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { fileFrom, listenAddress, sizeBytes } from './config/addresses.js';
import type { ListenerConfig } from './config/schema.js';

/** Settings of every listener's server; the proxy sets its client timeouts when it attaches. */
const serverOptions = { connectionsCheckingInterval: 1_000, maxHeaderSize: 16 * 1024 } as const;

/** How a listener's server speaks: a server is handed over only to a listener that speaks the same. */
function kindOf(listener: ListenerConfig): string {
  if (listener.protocol === 'tcp') return 'tcp';
  const http2 = listener.protocol === 'h2' || listener.protocol === 'grpc';
  return `${isTls(listener) ? 'https' : 'http'}${http2 ? '+h2' : ''}`;
}

/** A listener's address and kind: a server is handed over only to a listener with the same. */
export function listenerKey(listener: ListenerConfig): string {
  const { host, port } = listenAddress(listener.address);
  return `${kindOf(listener)}://${host}:${port}`;
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

/**
 * A server for a listener: http, https with its certificate files, HTTP/2 (beside HTTP/1.1 by ALPN
 * over TLS, cleartext h2c without), or a plain TCP server.
 */
export function serverFor(listener: ListenerConfig, file: string): Server {
  if (listener.protocol === 'tcp')
    return net.createServer({ allowHalfOpen: true, noDelay: true }) as unknown as Server;
  const tls = tlsOf(listener, file);
  if (listener.protocol === 'h2' || listener.protocol === 'grpc') {
    const settings = {
      maxConcurrentStreams: listener.http2.max_concurrent_streams,
      maxHeaderListSize: sizeBytes(listener.http2.max_header_list_size),
    };
    const server =
      tls === undefined
        ? http2.createServer({ settings })
        : http2.createSecureServer({
            ...tls,
            allowHTTP1: true,
            settings,
            maxHeaderSize: serverOptions.maxHeaderSize,
          } as http2.SecureServerOptions);
    return server as unknown as Server;
  }
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

/** Where `server` listens, as a URL (`tcp://` for a TCP listener). */
export function urlOf(server: Server, scheme: 'http' | 'https' | 'tcp' | boolean): string {
  const { address, port, family } = server.address() as AddressInfo;
  const host = family === 'IPv6' ? `[${address}]` : address;
  const name = typeof scheme === 'string' ? scheme : scheme ? 'https' : 'http';
  return `${name}://${host}:${port}`;
}

/** The URL scheme of a listener. */
export function schemeOf(listener: ListenerConfig): 'http' | 'https' | 'tcp' {
  return listener.protocol === 'tcp' ? 'tcp' : isTls(listener) ? 'https' : 'http';
}

/** Stops accepting and cuts every connection, resolving once `server` is closed. */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}
