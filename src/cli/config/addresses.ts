/**
 * Addresses as a configuration file writes them: backends as `host:port` or URLs, listeners as
 * `host:port`, files relative to the configuration file.
 */
import { dirname, isAbsolute, resolve } from 'node:path';

/**
 * A backend's URL: `claims-01:3000` is `http://claims-01:3000` (`tcp://claims-01:3000` in a TCP
 * cluster); a URL is kept as it is.
 */
export function backendUrl(address: string, tcp = false): string {
  if (tcp) {
    if (!/^(?:tcp:\/\/)?(?:\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):\d{1,5}$/.test(address))
      throw new Error(`expected host:port for a tcp backend, got ${JSON.stringify(address)}`);
    return address.startsWith('tcp://') ? address : `tcp://${address}`;
  }
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(address) ? address : `http://${address}`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`expected host:port or an http(s) URL, got ${JSON.stringify(address)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new Error(`expected an http: or https: URL, got ${JSON.stringify(address)}`);
  if (parsed.port === '' && !/^https?:\/\//i.test(address))
    throw new Error(`expected host:port (a port is needed), got ${JSON.stringify(address)}`);
  return url;
}

/** A listener's `host:port` (`[::]:8080`, `:8080` for every address). */
export function listenAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  const port = Number(address.slice(at + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new Error(`expected a port from 0 to 65535, got ${JSON.stringify(address.slice(at + 1))}`);
  return { host: host === '' ? '0.0.0.0' : host, port };
}

/** A path from the configuration file, relative to the file's directory. */
export function fileFrom(configFile: string, path: string): string {
  return isAbsolute(path) ? path : resolve(dirname(configFile), path);
}

/** Bytes of a size: `512KB`, `100MB`, `1GiB`, or a number. Units are powers of 1024. */
export function sizeBytes(size: string | number): number {
  if (typeof size === 'number') return size;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([KMG]?)(?:I?B)?\s*$/i.exec(size);
  if (match === null) throw new Error(`expected a size such as "100MB", got ${JSON.stringify(size)}`);
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[
    (match[2] ?? '').toUpperCase() as '' | 'K' | 'M' | 'G'
  ];
  return Math.round(Number(match[1]) * unit);
}
