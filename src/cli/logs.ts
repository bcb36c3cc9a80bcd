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

/** Characters of log lines gathered before they go to the sink at once. */
const BATCH_CHARS = 16 * 1024;
/** Longest a line waits in the batch. */
const FLUSH_EVERY_MS = 200;

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
  return lineLog(accessLine, sink, path);
}

/** A JSON text, or `null` for undefined. */
function text(value: string | undefined): string {
  return value === undefined ? 'null' : JSON.stringify(value);
}

/**
 * One access-log line: every field on every line (`null` when absent), so that log pipelines see
 * one schema. Written field by field, which is about three times as fast as `JSON.stringify` with a
 * replacer on this hot path.
 */
export function accessLine(e: AccessLogEntry): string {
  return `{"time":"${e.time}","requestId":${text(e.requestId)},"client":${text(e.client)},"method":${text(e.method)},"path":${text(e.path)},"status":${e.status},"cluster":${text(e.cluster)},"endpoint":${text(e.endpoint)},"attempts":${e.attempts},"durationMs":${e.durationMs},"bytesIn":${e.bytesIn},"bytesOut":${e.bytesOut},"userAgent":${text(e.userAgent)},"error":${text(e.error)}}\n`;
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
  const line = (entry: AdminChange) =>
    `${JSON.stringify({ time: new Date().toISOString(), ...(label === undefined ? {} : { compliance_mode: label }), ...entry }, nullForUndefined)}\n`;
  return lineLog(line, sink, settings.path);
}

/**
 * A log of `format`ted lines into `sink`. Lines gather in a batch that goes to the sink as one
 * string when it reaches BATCH_CHARS, and at least every FLUSH_EVERY_MS: one write, and one system
 * call, for dozens of requests instead of one each (nginx's `access_log … buffer= flush=`). The
 * sink writes asynchronously; flush() and close() write what is pending at once, so nothing is lost
 * at a stop or a reload.
 */
function lineLog<T>(format: (entry: T) => string, sink: LineSink, path: string): LineLog<T> {
  let batch: string[] = [];
  let chars = 0;
  const drain = () => {
    if (batch.length === 0) return;
    sink.write(batch.length === 1 ? (batch[0] as string) : batch.join(''));
    batch = [];
    chars = 0;
  };
  const timer = setInterval(drain, FLUSH_EVERY_MS);
  timer.unref();
  const log = (entry: T) => {
    const line = format(entry);
    batch.push(line);
    chars += line.length;
    if (chars >= BATCH_CHARS) drain();
  };
  return Object.assign(log, {
    flush: () => {
      drain();
      return flushed(sink);
    },
    // stdout and stderr stay open: the process log and others write there too.
    close: async () => {
      clearInterval(timer);
      drain();
      await flushed(sink);
      if (path !== 'stdout' && path !== 'stderr') sink.end();
    },
  });
}

/** Resolves once what `sink` was given is written. */
function flushed(sink: LineSink): Promise<void> {
  return new Promise((resolve) => sink.flush(() => resolve()));
}
