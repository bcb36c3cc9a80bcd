/**
 * What a request's end reports (the access log, the diagnostics end message): a record the proxy
 * fills in as the request goes, made only when someone will read it, and the access-log entry made
 * from it when the response closes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../core/clock.js';
import type { ErrorCode } from '../core/errors.js';
import type { LimitedBody } from './body.js';
import type { AccessLogEntry, ProxySettings } from './options.js';

/** What a request's end reports (access log, diagnostics), filled in as the request goes. */
export interface RequestRecord {
  requestId: string | undefined;
  client: string | undefined;
  /** The request body: its size, or the stream that counts it. */
  body: number | LimitedBody;
  cluster: string | undefined;
  endpoint: string | undefined;
  attempts: number;
  error: ErrorCode | undefined;
}

let isoMs = -1;
let isoText = '';

/** The time now as ISO 8601 text, made once per millisecond however many requests share it. */
function isoNow(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    isoText = new Date(ms).toISOString();
  }
  return isoText;
}

export function newRecord(): RequestRecord {
  return {
    requestId: undefined,
    client: undefined,
    body: 0,
    cluster: undefined,
    endpoint: undefined,
    attempts: 0,
    error: undefined,
  };
}

/** Hands `log` the request's entry once its response is closed (sent, or its client gone). */
export function logWhenClosed(
  req: IncomingMessage,
  res: ServerResponse,
  record: RequestRecord,
  log: (entry: AccessLogEntry) => void,
  clock: Clock,
  logger: ProxySettings['logger'],
): void {
  const started = clock.now();
  const time = isoNow();
  const socket = req.socket;
  const writtenBefore = socket.bytesWritten;
  // 'close' comes once per response: `on` spares the wrapper `once` would allocate.
  res.on('close', () => {
    const entry: AccessLogEntry = {
      time,
      requestId: record.requestId,
      client: record.client ?? socket.remoteAddress ?? '',
      method: req.method ?? '',
      path: req.url ?? '',
      status: res.headersSent ? res.statusCode : 0,
      cluster: record.cluster,
      endpoint: record.endpoint,
      attempts: record.attempts,
      durationMs: clock.now() - started,
      bytesIn: typeof record.body === 'number' ? record.body : record.body.received,
      bytesOut: socket.bytesWritten - writtenBefore,
      userAgent: req.headers['user-agent'],
      error: record.error ?? (res.writableFinished ? undefined : 'EABORTED'),
    };
    try {
      log(entry);
    } catch (error) {
      logger?.error({ err: error }, 'accessLog threw');
    }
  });
}
