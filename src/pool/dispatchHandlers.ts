/**
 * What the HTTP/2 pool needs of undici's dispatch interface, kept apart from the pool's connection
 * work: a controller (pause, resume, abort) bound to the stream a request has now, and the handler
 * of either of undici's interfaces turned into the newer one (`request()` and `fetch()` still hand
 * over the older `onConnect`/`onHeaders`/`onData`/`onComplete`/`onError`).
 */
import http2 from 'node:http2';
import type { Dispatcher } from 'undici';

const { NGHTTP2_CANCEL } = http2.constants;

/** undici's newer handler interface, which every request is turned into. */
export type Handler = Dispatcher.DispatchHandler & {
  onRequestStart?(controller: Dispatcher.DispatchController, context: unknown): void;
};

/** The pause, resume and abort of one stream, as undici's handlers expect them. */
export class StreamController implements Dispatcher.DispatchController {
  /** The request's stream now (a refused one is replaced). */
  stream: http2.ClientHttp2Stream | undefined;
  #aborted = false;
  #paused = false;
  #reason: Error | null = null;
  onAbort: ((reason: Error) => void) | undefined;

  get aborted(): boolean {
    return this.#aborted;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get reason(): Error | null {
    return this.#reason;
  }

  abort(reason: Error): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.onAbort?.(reason);
    this.stream?.close(NGHTTP2_CANCEL);
  }

  pause(): void {
    this.#paused = true;
    this.stream?.pause();
  }

  resume(): void {
    this.#paused = false;
    this.stream?.resume();
  }
}

/** The controller of a request that never got a stream. */
export function aborted(): Dispatcher.DispatchController {
  return { aborted: true, paused: false, reason: null, abort() {}, pause() {}, resume() {} };
}

/** undici's older handler interface (onConnect, onHeaders…), as `request()` and `fetch()` use it. */
interface LegacyHandler {
  onConnect?(abort: (reason?: Error) => void, context?: unknown): void;
  onHeaders?(
    statusCode: number,
    rawHeaders: Buffer[],
    resume: () => void,
    statusText: string,
  ): boolean | undefined;
  onData?(chunk: Buffer): boolean | undefined;
  onComplete?(trailers: Buffer[] | null): void;
  onError?(error: Error): void;
  onResponseStarted?(): void;
}

/** The handler in undici's newer interface: as it is, or adapted from the older one. */
export function newStyle(handler: Dispatcher.DispatchHandler): Handler {
  if (typeof (handler as Handler).onRequestStart === 'function') return handler as Handler;
  const legacy = handler as unknown as LegacyHandler;
  return {
    onRequestStart(controller, context) {
      legacy.onConnect?.((reason) => controller.abort(reason ?? new Error('aborted')), context);
    },
    onResponseStart(controller, statusCode, headers, statusText) {
      legacy.onResponseStarted?.();
      const resume = () => controller.resume();
      if (legacy.onHeaders?.(statusCode, rawHeaders(headers), resume, statusText ?? '') === false)
        controller.pause();
    },
    onResponseData(controller, chunk) {
      if (legacy.onData?.(chunk) === false) controller.pause();
    },
    onResponseEnd(_controller, trailers) {
      legacy.onComplete?.(rawHeaders(trailers));
    },
    onResponseError(_controller, error) {
      legacy.onError?.(error);
    },
  };
}

function rawHeaders(headers: Record<string, string | string[] | undefined>): Buffer[] {
  const raw: Buffer[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value])
      raw.push(Buffer.from(name, 'latin1'), Buffer.from(one, 'latin1'));
  }
  return raw;
}
