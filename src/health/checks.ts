/**
 * The checks a {@link HealthMonitor} runs: an HTTP request whose status, headers and body must match
 * what is expected (nginx's `match` block), or a TCP connect. Each is a {@link HealthCheckFunction}:
 * it resolves when the endpoint is healthy and rejects with the reason when it is not. The scheduler
 * (intervals, timeouts, rise and fall) lives in HealthMonitor.ts.
 */
import net from 'node:net';
import { request } from 'undici';
import { httpOrigin, socketAddress } from '../core/endpoint.js';
import { failureKind } from '../core/failures.js';
import { firstMismatch, headerMatchers, textMatcher } from '../core/match.js';
import { describeValue } from '../core/validate.js';
import type { HealthCheckFunction, HealthCheckOptions } from './HealthMonitor.js';

/** An accepted status: a code, a class such as `'2xx'`, or a range such as `'200-399'`. */
export type StatusMatcher = number | string;

const MAX_BODY_BYTES = 64 * 1024;

/** A failed check's reason, as the monitor reports it. */
class HealthCheckFailure extends Error {}

/**
 * The HTTP check of `options`: `method` on the endpoint's origin + `path`, passing when the status is
 * one of `expectStatus` and the headers and the first 64 KiB of the body match.
 * @throws TypeError or RangeError naming the option that is wrong
 */
export function httpCheck(options: HealthCheckOptions): HealthCheckFunction {
  const path = options.path ?? '/health';
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new TypeError(`path must be a string starting with "/", got ${describeValue(options.path)}`);
  }
  const method = options.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') {
    throw new TypeError(`method must be 'GET' or 'HEAD', got ${describeValue(options.method)}`);
  }
  const headers = { ...(options.headers ?? {}) };
  const statuses = parseStatusMatchers(options.expectStatus ?? '2xx');
  const expectBody =
    options.expectBody === undefined ? undefined : textMatcher(options.expectBody, 'expectBody', 'contains');
  const expectHeaders = headerMatchers(options.expectHeaders ?? {}, 'expectHeaders');
  const dispatcher = options.dispatcher;
  return async (target, signal) => {
    const origin = httpOrigin(target.url);
    const response = await request(origin + path, {
      method,
      headers,
      signal,
      ...(dispatcher === undefined ? {} : { dispatcher }),
    });
    const status = response.statusCode;
    const statusOk = statuses.some(([low, high]) => status >= low && status <= high);
    if (!statusOk || expectBody === undefined) await response.body.dump();
    if (!statusOk) throw new HealthCheckFailure(`status ${status}`);
    const mismatch = firstMismatch(expectHeaders, response.headers);
    if (mismatch !== undefined) {
      if (expectBody !== undefined) await response.body.dump();
      throw new HealthCheckFailure(`header ${mismatch} mismatch`);
    }
    if (expectBody === undefined) return true;
    const body = await readUpTo(response.body, MAX_BODY_BYTES);
    if (!expectBody(body)) throw new HealthCheckFailure('body mismatch');
    return true;
  };
}

/**
 * A check that passes when a TCP connection to the endpoint's host and port opens.
 * @example new HealthMonitor({ check: tcpCheck() })
 */
export function tcpCheck(): HealthCheckFunction {
  return (endpoint, signal) =>
    new Promise<boolean>((resolve, reject) => {
      const socket = net.connect({ ...socketAddress(endpoint.url), signal });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', reject);
    });
}

function parseStatusMatchers(value: StatusMatcher | readonly StatusMatcher[]): [number, number][] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) throw new RangeError('expectStatus must name at least one status');
  return list.map((matcher: StatusMatcher): [number, number] => {
    if (typeof matcher === 'number' && Number.isInteger(matcher) && matcher >= 100 && matcher <= 599) {
      return [matcher, matcher];
    }
    if (typeof matcher === 'string') {
      const text = matcher.trim();
      const klass = /^([1-5])xx$/i.exec(text);
      if (klass) return [Number(klass[1]) * 100, Number(klass[1]) * 100 + 99];
      const range = /^(\d{3})\s*-\s*(\d{3})$/.exec(text);
      if (range && Number(range[1]) <= Number(range[2])) return [Number(range[1]), Number(range[2])];
      if (/^\d{3}$/.test(text)) return [Number(text), Number(text)];
    }
    throw new RangeError(
      `expectStatus entries must be a status (200), a class ('2xx') or a range ('200-399'), got ${describeValue(matcher)}`,
    );
  });
}

/** A check's failure in the words of a check result: its own reason, a failure kind, or the message. */
export function describeFailure(error: unknown): string {
  if (error instanceof HealthCheckFailure) return error.message;
  const kind = failureKind(error);
  if (kind !== undefined) return kind;
  return error instanceof Error ? error.message : String(error);
}

async function readUpTo(
  body: AsyncIterable<Buffer> & { destroy(): unknown },
  limit: number,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= limit) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}
