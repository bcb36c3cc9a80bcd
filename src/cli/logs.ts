/**
 * The CLI's three logs, all JSON lines through pino, written asynchronously so that a slow disk
 * cannot stall the proxy: the process log (stderr), the access log (a line per request) and the
 * audit log (a line per admin change). Files rotate by size through pino-roll, which keeps
 * `max_files` rotated files: `access.log` is written as `access.1.log`, `access.2.log`…
 */
import pino, { type Logger } from 'pino';
import type { AdminChange } from '../admin/createAdmin.js';
import type { AccessLogEntry } from '../proxy/createProxy.js';
import { fileFrom, sizeBytes } from './config/addresses.js';
import type { ProxyConfig } from './config/schema.js';

/** The process log: `level` and above, to stderr. */
export function processLog(level: string): Logger {
  return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: false }));
}

/** Where plain JSON lines go: pino's asynchronous destination, or its rotating transport. */
interface LineSink {
  write(line: string): unknown;
  flush(callback: (error?: Error) => void): void;
  end(): void;
}

/** A log of JSON lines: call it with an entry; `close()` writes what is pending and lets go of the file. */
export type LineLog<T> = ((entry: T) => void) & { flush(): Promise<void>; close(): Promise<void> };

/** A sink of plain JSON lines (no level, no pid): each entry as it is. */
function linesTo(
  path: string,
  configFile: string,
  rotation?: { max_size: string | number; max_files: number },
): LineSink {
  if (path === 'stdout' || path === 'stderr')
    return pino.destination({ dest: path === 'stdout' ? 1 : 2, sync: false });
  const file = fileFrom(configFile, path);
  if (rotation === undefined) return pino.destination({ dest: file, sync: false, mkdir: true });
  return pino.transport({
    target: 'pino-roll',
    options: {
      file,
      size: `${Math.max(1, Math.ceil(sizeBytes(rotation.max_size) / 1024))}k`,
      limit: { count: rotation.max_files },
      mkdir: true,
    },
  }) as unknown as LineSink;
}

/** The access log of a configuration, or undefined when it is off. */
export function accessLog(
  config: ProxyConfig,
  configFile: string,
  worker?: number,
): LineLog<AccessLogEntry> | undefined {
  const settings = config.access_log;
  if (settings === undefined || !settings.enabled) return undefined;
  // Rotation is done by the process that writes: each worker rotates files of its own
  // (access.w1.log…), so that two never rotate one file under each other.
  const path =
    worker === undefined || settings.rotation === undefined
      ? settings.path
      : settings.path.replace(/(\.[^./]*)?$/, (ext) => `.w${worker}${ext}`);
  const sink = linesTo(path, configFile, settings.rotation);
  // Every field on every line (null when absent), so that log pipelines see one schema.
  const write = (entry: AccessLogEntry) => sink.write(`${JSON.stringify(entry, nullForUndefined)}\n`);
  return lineLog(write, sink, path);
}

function nullForUndefined(_key: string, value: unknown): unknown {
  return value === undefined ? null : value;
}

/** The audit log of a configuration, or undefined when it is off. */
export function auditLog(config: ProxyConfig, configFile: string): LineLog<AdminChange> | undefined {
  const settings = config.audit_log;
  if (settings === undefined || !settings.enabled) return undefined;
  const sink = linesTo(settings.path, configFile);
  const label = settings.compliance_mode;
  const write = (entry: AdminChange) =>
    sink.write(
      `${JSON.stringify({ time: new Date().toISOString(), ...(label === undefined ? {} : { compliance_mode: label }), ...entry }, nullForUndefined)}\n`,
    );
  return lineLog(write, sink, settings.path);
}

function lineLog<T>(write: (entry: T) => void, sink: LineSink, path: string): LineLog<T> {
  return Object.assign(write, {
    flush: () => flushed(sink),
    // stdout and stderr stay open: the process log and others write there too.
    close: async () => {
      await flushed(sink);
      if (path !== 'stdout' && path !== 'stderr') sink.end();
    },
  });
}

/** Resolves once what `sink` was given is written. */
function flushed(sink: LineSink): Promise<void> {
  return new Promise((resolve) => sink.flush(() => resolve()));
}
