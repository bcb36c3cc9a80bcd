/**
 * The HTTP ways a cluster sends: undici `request()` (a body stream to read) and WHATWG `fetch()`
 * (`stream()`, the proxy's path, has StreamCall.ts). Each makes the call's attempt function: every
 * try is an {@link Attempt} from `source.begin()` that enters the endpoint's pool, records the
 * answer or the failure, and ends when the endpoint is done with it.
 */
import { Readable } from 'node:stream';
import { type Dispatcher, fetch as undiciFetch } from 'undici';
import { isReplayableStream, isWholeBody, keptCopyOf } from '../core/body.js';
import type { DeadlineItem, DeadlineQueue } from '../core/DeadlineQueue.js';
import type { Endpoint } from '../core/endpoint.js';
import { McgravityError } from '../core/errors.js';
import { headerOf } from '../core/failures.js';
import { neverAborted } from '../core/signals.js';
import { describeValue } from '../core/validate.js';
import { isIdempotentMethod } from '../retry/RetryPolicy.js';
import type { AttemptSource } from './AttemptSource.js';
import type { ClusterFetchInit, ClusterRequestOptions, ClusterResponse } from './options.js';
import { ResponseRelay } from './ResponseRelay.js';
import { type Idempotence, idempotenceOf, type RetryingCall } from './retrying.js';

/** Stands for "no signal": passing none to undici saves it an abort listener per request. */
export const NO_SIGNAL = neverAborted;

function ignoreError(): void {}

/**
 * The body for attempt `n` (1 for the first): the body itself, or for a later attempt of a streamed
 * body its copy (a stream cannot be read twice). A retry only comes when idempotence allowed it,
 * which for such a stream means the copy is whole; a requeue (never sent) may come anyway, and then
 * waits for a stream still arriving to end within its copy's bound. A stream already partly read
 * that cannot be replayed is not sent again: the call fails instead of sending half a body.
 */
export async function bodyOf(
  body: string | Uint8Array | Readable | null,
  n: number,
): Promise<string | Uint8Array | Readable | null> {
  if (n === 1 || !(body instanceof Readable)) return body;
  const copy = keptCopyOf(body) ?? (isReplayableStream(body) ? await body.replayWhenEnded?.() : undefined);
  if (copy !== undefined) return copy;
  if (!body.readableDidRead) return body;
  // No phase: final, neither retried nor requeued.
  throw new McgravityError('EUPSTREAM', 'the request body was partly sent and cannot be sent again');
}

/** Method, body and idempotency of a request() or stream() call, or the TypeError its options earn. */
export function requestShape(
  options: ClusterRequestOptions,
  caller: string,
): { method: string; body: string | Uint8Array | Readable | null; idempotent: Idempotence } | TypeError {
  if (
    options === null ||
    typeof options !== 'object' ||
    typeof options.path !== 'string' ||
    !options.path.startsWith('/')
  ) {
    return new TypeError(`${caller}() needs a path starting with "/"`);
  }
  const method = (options.method ?? 'GET').toUpperCase();
  const body = options.body ?? null;
  const wanted = options.idempotent ?? isIdempotentMethod(method);
  if (wanted && isReplayableStream(body))
    return { method, body, idempotent: () => body.replay() !== undefined };
  return { method, body, idempotent: isWholeBody(body) && wanted };
}

/** `request()`: resolves at the answer's head; the endpoint counts it in flight until the body closes. */
export function requestCall(
  source: AttemptSource,
  options: ClusterRequestOptions,
): RetryingCall<ClusterResponse> | TypeError {
  const shape = requestShape(options, 'request');
  if (shape instanceof TypeError) return shape;
  const { method, body, idempotent } = shape;
  const tried = new Set<string>(options.exclude);
  const timeoutMs = options.headersTimeoutMs;
  const deadlines = timeoutMs === undefined || timeoutMs <= 0 ? undefined : source.deadlines(timeoutMs);
  let attempts = 0;
  const attempt = async (signal: AbortSignal): Promise<ClusterResponse> => {
    attempts++;
    const sentBody = attempts === 1 ? body : await bodyOf(body, attempts);
    const current = source.begin(options.key, tried, options.prefer, options.pin);
    current.enterPool();
    const endpoint = current.endpoint;
    // The first-byte timeout is ours, to the millisecond (undici's timers tick every half second),
    // and runs from the dispatch: request() does not say when the request is written.
    const timeout = deadlines === undefined ? undefined : new AttemptTimeout(deadlines);
    const callSignal =
      timeout === undefined
        ? signal
        : signal === NO_SIGNAL
          ? timeout.signal
          : AbortSignal.any([signal, timeout.signal]);
    let response: Dispatcher.ResponseData;
    try {
      response = await endpoint.pool.dispatcher.request({
        method: method as Dispatcher.HttpMethod,
        path: endpoint.pathPrefix === '' ? options.path : endpoint.pathPrefix + options.path,
        headers: options.headers ?? {},
        body: sentBody,
        ...(callSignal === NO_SIGNAL ? {} : { signal: callSignal }),
      });
    } catch (error) {
      timeout?.stop();
      const failure = timeout?.error ?? error;
      current.failed(failure, signal);
      throw failure;
    }
    timeout?.stop();
    current.answered(response.statusCode, headerOf(response, 'retry-after'));
    // In flight until the body is done with, whichever way it ends (undici's body emits 'close'
    // after its end, an error or a destroy). The error listener keeps an upstream that breaks
    // mid-body, or a body destroyed unread, from crashing the process; whoever reads the body
    // still sees the error.
    const responseBody = response.body;
    responseBody.once('close', () => current.end());
    responseBody.on('error', ignoreError);
    return { statusCode: response.statusCode, headers: response.headers, body: response.body, endpoint };
  };
  return retryingCall(attempt, idempotent, options, tried);
}

/** One attempt's first-byte timeout for `request()`: an abort signal fired by a {@link DeadlineQueue}. */
class AttemptTimeout implements DeadlineItem {
  deadlineAt = 0;
  deadlinePrev: DeadlineItem | undefined;
  deadlineNext: DeadlineItem | undefined;
  readonly #queue: DeadlineQueue;
  readonly #controller = new AbortController();
  /** Set when the timeout fired. */
  error: McgravityError | undefined;

  constructor(queue: DeadlineQueue) {
    this.#queue = queue;
    queue.add(this);
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  expire(): void {
    this.error = new McgravityError(
      'EUPSTREAMTIMEOUT',
      `upstream sent no response headers within ${this.#queue.ms} ms`,
    );
    this.#controller.abort(this.error);
  }

  stop(): void {
    this.#queue.remove(this);
  }
}

const served = new WeakMap<Response, Endpoint>();

/** The endpoint that served a response of {@link Cluster.fetch}, if it came from one. */
export function servedBy(response: Response): Endpoint | undefined {
  return served.get(response);
}

/** `fetch()`: the endpoint counts the request in flight until the answer's head, not its body. */
export function fetchCall(
  source: AttemptSource,
  input: string | URL | Request,
  init: ClusterFetchInit,
): RetryingCall<Response> | TypeError {
  let path: string;
  let request: Request | undefined;
  try {
    const url =
      input instanceof Request ? new URL(input.url) : new URL(String(input), 'http://cluster.invalid');
    path = url.pathname + url.search;
    request = input instanceof Request ? input : undefined;
  } catch {
    return new TypeError(`fetch() needs a URL or a path, got ${describeValue(input)}`);
  }
  const method = (init.method ?? request?.method ?? 'GET').toUpperCase();
  const body = init.body ?? request?.body ?? null;
  const replayable =
    body === null ||
    typeof body === 'string' ||
    body instanceof Uint8Array ||
    body instanceof ArrayBuffer ||
    body instanceof URLSearchParams;
  const idempotent = replayable && (init.idempotent ?? isIdempotentMethod(method));
  const tried = new Set<string>(init.exclude);
  const { key, prefer, pin, exclude: _exclude, idempotent: _idempotent, ...fetchInit } = init;
  const attempt = async (signal: AbortSignal): Promise<Response> => {
    const current = source.begin(key, tried, prefer, pin);
    const requestInit = {
      ...(request === undefined ? {} : { headers: request.headers, method: request.method }),
      ...fetchInit,
      method,
      body,
      signal,
      dispatcher: current.endpoint.pool.dispatcher,
      ...(body !== null && !replayable ? { duplex: 'half' } : {}),
    };
    current.enterPool();
    let response: Response;
    try {
      response = (await undiciFetch(
        current.endpoint.origin + current.endpoint.pathPrefix + path,
        requestInit as never,
      )) as unknown as Response;
    } catch (error) {
      current.failed(error, signal);
      throw error;
    }
    current.answered(response.status, response.headers.get('retry-after') ?? undefined);
    current.end(); // counted until the headers, not the body (see above)
    served.set(response, current.endpoint);
    return response;
  };
  return {
    attempt,
    idempotent,
    signal: init.signal ?? request?.signal ?? undefined,
    tried,
    excluded: init.exclude?.size ?? 0,
    pinned: pin !== undefined,
  };
}

/** Releases a response dropped for a retry: drains an undici body or cancels a fetch body. */
export function discardBody(value: unknown): void {
  if (value instanceof ResponseRelay) {
    value.discard();
    return;
  }
  const body = (value as { body?: unknown })?.body;
  if (body === null || typeof body !== 'object') return;
  if (typeof (body as { dump?: unknown }).dump === 'function') {
    void (body as { dump(): Promise<void> }).dump().catch(() => {});
  } else if (typeof (body as { cancel?: unknown }).cancel === 'function') {
    void (body as { cancel(): Promise<void> }).cancel().catch(() => {});
  }
}

/** A request-shaped call's {@link RetryingCall}: `tried` starts as the caller's `exclude`. */
function retryingCall<T>(
  attempt: (signal: AbortSignal) => Promise<T>,
  idempotent: Idempotence,
  options: ClusterRequestOptions,
  tried: Set<string>,
): RetryingCall<T> {
  return new Call(
    attempt,
    idempotent,
    options.signal,
    tried,
    options.exclude?.size ?? 0,
    options.pin !== undefined,
  );
}

/**
 * A call as the retry machinery sees it. A class, so that every call has one shape and its
 * `idempotent` getter lives on the prototype (an object literal with a getter is slow to make).
 */
class Call<T> implements RetryingCall<T> {
  readonly attempt: (signal: AbortSignal) => Promise<T>;
  readonly #idempotent: Idempotence;
  readonly signal: AbortSignal | undefined;
  readonly tried: ReadonlySet<string>;
  readonly excluded: number;
  readonly pinned: boolean;

  constructor(
    attempt: (signal: AbortSignal) => Promise<T>,
    idempotent: Idempotence,
    signal: AbortSignal | undefined,
    tried: ReadonlySet<string>,
    excluded: number,
    pinned: boolean,
  ) {
    this.attempt = attempt;
    this.#idempotent = idempotent;
    this.signal = signal;
    this.tried = tried;
    this.excluded = excluded;
    this.pinned = pinned;
  }

  get idempotent(): boolean {
    return idempotenceOf(this.#idempotent);
  }
}
