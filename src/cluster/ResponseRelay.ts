/**
 * One attempt of {@link Cluster.stream}: an undici dispatch handler that writes the upstream's
 * answer straight into the caller's Writable (a `ServerResponse`, say), with no body stream in
 * between. undici's `request()` wraps every answer in a Readable that the caller then pipes; for a
 * proxy that is a second stream, its buffering and half a dozen listeners per request for nothing.
 *
 * The retry decision is taken when the headers arrive. An answer the retry policy would not retry
 * (nearly all of them) is relayed at once: the caller's factory gets the head, returns its Writable,
 * and each chunk is written as it arrives, pausing the upstream while the Writable is full. An answer
 * it might retry (a 503, say) is held: the upstream is paused, and the cluster either discards it
 * (retrying elsewhere) or, out of attempts or budget, accepts it after all, and it is relayed then.
 *
 * It speaks undici's older handler interface (`onConnect`, `onHeaders`…), which hands over the
 * header list as it came off the wire: the newer one wraps every handler in two more objects and
 * parses every answer's headers into an object that the proxy, which writes them on from the raw
 * list, never needs. The object is made only when someone asks for {@link ClusterStreamHead.headers}.
 *
 * States: connecting → relaying | held → (held →) relaying | discarding → done.
 */
import type { Writable } from 'node:stream';
import { util } from 'undici';
import type { DeadlineItem, DeadlineQueue } from '../core/DeadlineQueue.js';
import type { Endpoint } from '../core/endpoint.js';
import { type ErrorCode, isMcgravityError, McgravityError } from '../core/errors.js';
import { failureKind } from '../core/failures.js';
import { rawHeaderOf } from '../core/rawHeaders.js';
import { abortReason } from '../core/signals.js';
import { writableCompleted } from '../core/writable.js';
import type { Attempt } from './Attempt.js';
import { type Idempotence, idempotenceOf } from './retrying.js';

/** The status and headers of an answer, handed to {@link Cluster.stream}'s factory. */
export interface ClusterStreamHead {
  readonly statusCode: number;
  /**
   * The response headers as an object (lower-case names, repeated ones as arrays), made on first
   * read; the factory may change it before writing it.
   */
  readonly headers: Record<string, string | string[] | undefined>;
  /**
   * The response headers as they came: name, value, name, value… in the upstream's order and case,
   * repeated headers repeated. Bytes, to be read as latin1.
   */
  readonly rawHeaders: readonly Buffer[];
  /** One response header's value (the first, if repeated), read without making {@link headers}. */
  header(name: string): string | undefined;
  /** The endpoint that answered. */
  readonly endpoint: Endpoint;
  /** Which try answered: 1 for the first, 2 for the first retry… */
  readonly attempt: number;
  /** Body bytes written to the factory's Writable so far: stops growing when either side stalls. */
  readonly bytesRelayed: number;
}

/** What {@link Cluster.stream} resolves with once the whole body is written. */
export interface ClusterStreamResult {
  readonly statusCode: number;
  readonly endpoint: Endpoint;
  readonly trailers: Record<string, string | string[] | undefined>;
}

/** Makes the Writable an answer is written to; called once, when the answer is final. */
export type ClusterStreamFactory = (head: ClusterStreamHead) => Writable;

/** True when the retry policy might retry this answer, so it must be held (one function per cluster). */
export type MightRetry = (head: ClusterStreamHead, idempotent: boolean) => boolean;

/** Who waits for a relay's head: told once, of the head (relaying, or held for a decision) or a failure. */
export interface HeadWaiter {
  headed(relay: ResponseRelay, held: boolean): void;
  headFailed(error: unknown): void;
}

/**
 * Who waits for a relayed answer's end ({@link Cluster.streamInto}): told once, with the result when
 * the Writable has finished, or with the error when no answer came or either side broke.
 */
export interface ClusterStreamSettle {
  resolve(result: ClusterStreamResult): void;
  reject(error: unknown): void;
}

/** Inside the cluster: the same thing. */
export type RelaySettle = ClusterStreamSettle;

type State = 'connecting' | 'relaying' | 'held' | 'discarding' | 'done';

/** A dropped answer's body is read (to keep the connection) up to this size, then the connection is cut. */
const DISCARD_LIMIT_BYTES = 128 * 1024;

const NO_TRAILERS: Record<string, string | string[] | undefined> = Object.freeze({});
const NO_RAW: Buffer[] = [];

/** Relays one attempt's answer; see the module comment. */
export class ResponseRelay implements ClusterStreamHead, DeadlineItem {
  deadlineAt = 0;
  deadlinePrev: DeadlineItem | undefined;
  deadlineNext: DeadlineItem | undefined;
  readonly #attempt: Attempt;
  /** Which try of its call this is (1 for the first). */
  readonly attempt: number;
  /** The first-byte timeout's queue, if the call has one. */
  readonly #deadlines: DeadlineQueue | undefined;
  readonly #mightRetry: MightRetry;
  readonly #factory: ClusterStreamFactory;
  readonly #idempotent: Idempotence;
  readonly #signal: AbortSignal | undefined;
  #waiter: HeadWaiter | undefined;
  #state: State = 'connecting';
  /** undici's abort for this request, from `onConnect`. */
  #abort: ((reason: Error) => void) | undefined;
  /** undici's resume, from `onHeaders`: called once after a `false` from `onHeaders` or `onData`. */
  #resumeParser: (() => void) | undefined;
  #paused = false;
  #writable: Writable | undefined;
  #statusCode = 0;
  #rawHeaders: Buffer[] = NO_RAW;
  #headers: Record<string, string | string[] | undefined> | undefined;
  #bytes = 0;
  /** The answer's declared Content-Length, or -1. */
  #length = -1;
  /**
   * The chunk that completed a sized body, kept for `end(chunk)`: undici completes the answer in the
   * same parse, and one `end(chunk)` costs the Writable less than a `write()` and then an `end()`.
   */
  #last: Buffer | undefined;
  /** Chunks that arrived while held (undici may hand over what it already parsed). */
  #heldChunks: Buffer[] | undefined;
  /** undici started writing the request (before that, a failure proves it never reached the upstream). */
  #sent = false;
  #upstreamEnded = false;
  #upstreamError: unknown;
  #rawTrailers: Buffer[] | null = null;
  #trailers: Record<string, string | string[] | undefined> | undefined;
  #resume: (() => void) | undefined;
  #result: ClusterStreamResult | undefined;
  #failure: unknown;
  #settle: RelaySettle | undefined;
  #onAbort: (() => void) | undefined;

  constructor(
    attempt: Attempt,
    attemptNumber: number,
    deadlines: DeadlineQueue | undefined,
    mightRetry: MightRetry,
    factory: ClusterStreamFactory,
    idempotent: Idempotence,
    signal: AbortSignal | undefined,
    waiter: HeadWaiter,
  ) {
    this.#attempt = attempt;
    this.attempt = attemptNumber;
    this.#deadlines = deadlines;
    this.#mightRetry = mightRetry;
    this.#factory = factory;
    this.#idempotent = idempotent;
    this.#signal = signal;
    this.#waiter = waiter;
    if (signal !== undefined) {
      this.#onAbort = () => this.#abort?.(abortReason(signal));
      signal.addEventListener('abort', this.#onAbort);
    }
  }

  get statusCode(): number {
    return this.#statusCode;
  }

  get headers(): Record<string, string | string[] | undefined> {
    this.#headers ??= this.#rawHeaders === NO_RAW ? {} : util.parseHeaders(this.#rawHeaders);
    return this.#headers;
  }

  get rawHeaders(): readonly Buffer[] {
    return this.#rawHeaders;
  }

  header(name: string): string | undefined {
    if (this.#headers !== undefined) {
      const value = this.#headers[name.toLowerCase()];
      return Array.isArray(value) ? value[0] : value;
    }
    return rawHeaderOf(this.#rawHeaders, name);
  }

  get endpoint(): Endpoint {
    return this.#attempt.endpoint;
  }

  get bytesRelayed(): number {
    return this.#bytes;
  }

  /**
   * Makes this answer the final one: relays a held answer now. `settle` is told once the whole body
   * is in the Writable and it has finished, or once either side broke first (the Writable is
   * destroyed).
   */
  acceptInto(settle: RelaySettle): void {
    if (this.#state === 'held') this.#relayHeld();
    if (this.#result !== undefined) settle.resolve(this.#result);
    else if (this.#failure !== undefined) settle.reject(this.#failure);
    else this.#settle = settle;
  }

  /** Drops a held answer (a retry replaces it): its body is read and thrown away. */
  discard(): void {
    if (this.#state !== 'held') return;
    this.#state = 'discarding';
    this.#heldChunks = undefined;
    if (this.#upstreamEnded || this.#upstreamError !== undefined) this.#release();
    else this.#resumeUpstream();
  }

  // --- undici's side

  onConnect(abort: (reason?: Error) => void): void {
    this.#abort = abort;
    this.#sent = true;
    if (this.#signal?.aborted) abort(abortReason(this.#signal));
    else this.#deadlines?.add(this); // the first-byte timeout runs from here, as undici's would
  }

  /** No answer's head within the first-byte timeout: the attempt fails as a timeout. */
  expire(): void {
    const ms = this.#deadlines?.ms ?? 0;
    this.#abort?.(
      new McgravityError('EUPSTREAMTIMEOUT', `upstream sent no response headers within ${ms} ms`),
    );
  }

  /** The answer's head; false pauses the upstream (a held answer) until `resume`. */
  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200 || this.#state !== 'connecting') return true; // 1xx: informational, not forwarded
    this.#deadlines?.remove(this);
    this.#statusCode = statusCode;
    this.#rawHeaders = rawHeaders;
    this.#resumeParser = resume;
    const length = rawHeaderOf(rawHeaders, 'content-length');
    if (length !== undefined) this.#length = Number(length);
    // Only a 503 or a 429 cools its endpoint down for a Retry-After; no other answer is searched for one.
    const coolable = statusCode === 503 || statusCode === 429;
    this.#attempt.answered(statusCode, coolable ? rawHeaderOf(rawHeaders, 'retry-after') : undefined);
    const held = this.#mightRetry(this, idempotenceOf(this.#idempotent));
    if (held) {
      this.#state = 'held';
      this.#paused = true;
    } else {
      this.#open();
    }
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.headed(this, held);
    return !this.#paused;
  }

  /** A chunk of the body; false pauses the upstream until `resume`. */
  onData(chunk: Buffer): boolean {
    switch (this.#state) {
      case 'relaying': {
        this.#bytes += chunk.length;
        if (this.#bytes === this.#length) {
          this.#last = chunk; // the body's last bytes: onComplete follows in the same parse
          return true;
        }
        const writable = this.#writable as Writable;
        if (writable.write(chunk)) return true;
        this.#paused = true;
        this.#resume ??= () => this.#resumeUpstream();
        writable.once('drain', this.#resume);
        return false;
      }
      case 'held':
        this.#heldChunks ??= [];
        this.#heldChunks.push(chunk);
        this.#paused = true;
        return false;
      case 'discarding':
        this.#bytes += chunk.length;
        if (this.#bytes > DISCARD_LIMIT_BYTES) this.#abort?.(new Error('discarded answer too large'));
        return true;
      default:
        return true;
    }
  }

  onComplete(rawTrailers: Buffer[] | null): void {
    this.#upstreamEnded = true;
    this.#rawTrailers = rawTrailers;
    if (this.#state === 'held') return; // acceptInto() or discard() decides
    this.#release();
    if (this.#state === 'relaying') this.#end(this.#writable as Writable);
  }

  /** The trailers the upstream sent after the body (gRPC's status travels there). */
  get trailers(): Record<string, string | string[] | undefined> {
    if (this.#trailers === undefined) {
      const raw = this.#rawTrailers;
      this.#trailers = raw === null || raw.length === 0 ? NO_TRAILERS : util.parseHeaders(raw);
    }
    return this.#trailers;
  }

  #resumeUpstream(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#resumeParser?.();
  }

  onError(error: Error): void {
    switch (this.#state) {
      case 'connecting': {
        this.#state = 'done';
        this.#deadlines?.remove(this);
        this.#detachSignal();
        this.#attempt.failed(error, this.#signal);
        const waiter = this.#waiter;
        this.#waiter = undefined;
        waiter?.headFailed(this.#sent || failureKind(error) === 'connect-failure' ? error : unsent(error));
        return;
      }
      case 'held':
        this.#upstreamError = error;
        return;
      case 'relaying':
        this.#release();
        this.#fail(error, 'EUPSTREAM');
        return;
      default:
        this.#release();
        return;
    }
  }

  // --- the Writable's side

  /** Calls the factory and starts relaying into its Writable. */
  #open(): void {
    this.#state = 'relaying';
    let writable: Writable;
    try {
      writable = this.#factory(this);
    } catch (error) {
      this.#fail(error, 'EINTERNAL'); // first: the abort below reports an upstream error at once
      this.#abort?.(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    this.#writable = writable;
    if (writable.destroyed) {
      this.#abort?.(new McgravityError('EABORTED', 'the response was closed before it started'));
      return;
    }
    writable.on('close', this.#onWritableClose);
  }

  #relayHeld(): void {
    const chunks = this.#heldChunks;
    this.#heldChunks = undefined;
    this.#open();
    if (this.#state !== 'relaying') return;
    const writable = this.#writable as Writable;
    let room = true;
    if (chunks !== undefined) {
      for (const chunk of chunks) {
        this.#bytes += chunk.length;
        room = writable.write(chunk);
      }
    }
    if (this.#upstreamError !== undefined) {
      this.#release();
      this.#fail(this.#upstreamError, 'EUPSTREAM');
    } else if (this.#upstreamEnded) {
      this.#release();
      this.#end(writable);
    } else if (room) {
      this.#resumeUpstream();
    } else {
      // The held chunks filled the Writable: the upstream stays paused until it drains.
      this.#resume ??= () => this.#resumeUpstream();
      writable.once('drain', this.#resume);
    }
  }

  /**
   * Ends the Writable, passing the upstream's trailers on when it takes them (`addTrailers()`, as an
   * HTTP/2 response and a chunked HTTP/1.1 response do): gRPC's status travels there.
   */
  #end(writable: Writable): void {
    if (this.#rawTrailers !== null && this.#rawTrailers.length > 0) {
      const taker = writable as Writable & {
        addTrailers?: (headers: Record<string, string | string[]>) => void;
      };
      if (typeof taker.addTrailers === 'function')
        taker.addTrailers(this.trailers as Record<string, string | string[]>);
    }
    const last = this.#last;
    this.#last = undefined;
    if (last === undefined) writable.end();
    else writable.end(last);
  }

  readonly #onWritableClose = (): void => {
    const writable = this.#writable as Writable;
    if (this.#state !== 'relaying') return;
    this.#state = 'done';
    this.#detachSignal();
    if (writableCompleted(writable)) {
      this.#result = {
        statusCode: this.#statusCode,
        endpoint: this.#attempt.endpoint,
        trailers: this.trailers,
      };
      this.#settle?.resolve(this.#result);
      return;
    }
    // The reader went away (a client that disconnected): stop the upstream.
    const error = new McgravityError('EABORTED', 'the response was closed before its end');
    if (!this.#upstreamEnded) this.#abort?.(error);
    this.#release();
    this.#failure = error;
    this.#settle?.reject(error);
  };

  /**
   * Ends the relay with an error: the Writable is destroyed (a truncated answer must not look whole).
   * The error is ours, marked as after the answer started, so nothing retries it; a foreign one is
   * wrapped as its `cause`, never changed.
   */
  #fail(error: unknown, code: ErrorCode): void {
    if (this.#state === 'done') return;
    this.#state = 'done';
    this.#detachSignal();
    this.#failure = isMcgravityError(error)
      ? error
      : new McgravityError(
          code,
          code === 'EINTERNAL' ? 'the response factory threw' : 'the upstream broke off its answer',
          { cause: error, phase: 'response-started' },
        );
    this.#writable?.destroy();
    this.#settle?.reject(this.#failure);
  }

  /** The endpoint is done with this attempt (body ended, broken or dropped). */
  #release(): void {
    this.#detachSignal();
    this.#attempt.end();
  }

  #detachSignal(): void {
    if (this.#onAbort === undefined) return;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#onAbort = undefined;
  }
}

/** A failure before undici started writing the request: it never reached the upstream. */
function unsent(error: unknown): McgravityError {
  if (isMcgravityError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new McgravityError('EUPSTREAM', `the request was not sent: ${message}`, {
    cause: error,
    phase: 'unsent',
  });
}
