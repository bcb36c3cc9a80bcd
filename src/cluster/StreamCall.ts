/**
 * One `Cluster.stream()` / `streamInto()` call: its tries, each dispatched through a
 * {@link ResponseRelay} into the factory's Writable, and the settle it tells of its end.
 *
 * The first try takes no promise: its relay tells the call of its head, and an answer the retry
 * policy would not retry (nearly all of them) is relayed and tells the settle when the Writable has
 * finished. Only a failure, or an answer held because the policy might retry it,
 * enters the retry machinery, where each further try is a promise of its head as in the other calls.
 * That spares the common call four promises, their callbacks and as many turns of the microtask queue.
 */
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { DeadlineQueue } from '../core/DeadlineQueue.js';
import type { RetryPolicy } from '../retry/RetryPolicy.js';
import type { Attempt } from './Attempt.js';
import type { AttemptSource } from './AttemptSource.js';
import type { ClusterRequestOptions } from './options.js';
import {
  type ClusterStreamFactory,
  type ClusterStreamResult,
  type HeadWaiter,
  type MightRetry,
  type RelaySettle,
  ResponseRelay,
} from './ResponseRelay.js';
import {
  type Idempotence,
  idempotenceOf,
  type RetryingCall,
  retrying,
  type UntriedLeft,
} from './retrying.js';
import { bodyOf, NO_SIGNAL, requestShape } from './transports.js';

type Body = string | Uint8Array | Readable | null;

/** Makes the call for `options`, or the TypeError they earn. */
export function streamCall(
  source: AttemptSource,
  options: ClusterRequestOptions,
  factory: ClusterStreamFactory,
  mightRetry: MightRetry,
): StreamCall | TypeError {
  const shape = requestShape(options, 'stream');
  if (shape instanceof TypeError) return shape;
  if (typeof factory !== 'function') return new TypeError('stream() needs a factory function');
  return new StreamCall(source, options, factory, mightRetry, shape.method, shape.body, shape.idempotent);
}

/** See the module comment. */
export class StreamCall implements RetryingCall<ResponseRelay>, HeadWaiter, RelaySettle {
  readonly signal: AbortSignal | undefined;
  readonly excluded: number;
  readonly pinned: boolean;
  readonly #source: AttemptSource;
  readonly #options: ClusterRequestOptions;
  readonly #factory: ClusterStreamFactory;
  readonly #mightRetry: MightRetry;
  readonly #body: Body;
  readonly #idempotent: Idempotence;
  readonly #deadlines: DeadlineQueue | undefined;
  /** undici copies the options at dispatch, so one object serves every try. */
  readonly #dispatchOptions: Dispatcher.DispatchOptions;
  #tries = 0;
  /**
   * The endpoints tried (and those the caller excluded), made when a second try or the retry
   * machinery needs it: the first try of most calls records its endpoint in `#first` alone.
   */
  #tried: Set<string> | undefined;
  #first: string | undefined;
  // The first try's way on, when it needs the retry machinery after all.
  #retry: RetryPolicy | undefined;
  #untriedLeft: UntriedLeft | undefined;
  /** Who is told of the call's end. */
  #settle: RelaySettle | undefined;

  constructor(
    source: AttemptSource,
    options: ClusterRequestOptions,
    factory: ClusterStreamFactory,
    mightRetry: MightRetry,
    method: string,
    body: Body,
    idempotent: Idempotence,
  ) {
    this.#source = source;
    this.#options = options;
    this.#factory = factory;
    this.#mightRetry = mightRetry;
    this.#body = body;
    this.#idempotent = idempotent;
    this.signal = options.signal;
    if (options.exclude === undefined) this.excluded = 0;
    else {
      this.#tried = new Set<string>(options.exclude);
      this.excluded = this.#tried.size;
    }
    this.pinned = options.pin !== undefined;
    this.#dispatchOptions = {
      method: method as Dispatcher.HttpMethod,
      path: options.path,
      headers: options.headers ?? {},
      body,
    };
    // The first-byte timeout is ours, to the millisecond; undici's own timers tick every half second.
    const timeoutMs = options.headersTimeoutMs;
    this.#deadlines = timeoutMs === undefined || timeoutMs <= 0 ? undefined : source.deadlines(timeoutMs);
  }

  get tried(): Set<string> {
    if (this.#tried === undefined) {
      this.#tried = new Set<string>();
      if (this.#first !== undefined) this.#tried.add(this.#first);
    }
    return this.#tried;
  }

  get idempotent(): boolean {
    return idempotenceOf(this.#idempotent);
  }

  /**
   * Runs the call under `retry` (or once, without a policy): `settle` is told once the Writable has
   * finished, or why it could not be.
   */
  runInto(retry: RetryPolicy | undefined, untriedLeft: UntriedLeft, settle: RelaySettle): void {
    this.#settle = settle;
    if (retry !== undefined && retry.perTryTimeoutMs > 0) {
      this.#retried(retrying(retry, undefined, this, untriedLeft));
      return;
    }
    // The request still deposits in the retry budget, which is a share of all requests.
    retry?.budget?.deposit();
    this.#retry = retry;
    this.#untriedLeft = untriedLeft;
    this.#tries = 1;
    this.#dispatch(this.signal ?? NO_SIGNAL, this.#body, this);
  }

  /** A try for the retry machinery: a promise of its head. */
  attempt(signal: AbortSignal): Promise<ResponseRelay> {
    // The first try sends the body as it is; a later one may wait for a stream's copy.
    const tries = ++this.#tries;
    const head = (sent: Body) =>
      new Promise<ResponseRelay>((resolve, reject) =>
        this.#dispatch(signal, sent, new HeadPromise(resolve, reject)),
      );
    return tries === 1 ? head(this.#body) : bodyOf(this.#body, tries).then(head);
  }

  // --- the first try's head, and the end of its answer

  headed(relay: ResponseRelay, held: boolean): void {
    const retry = this.#retry;
    if (held && retry?.wouldRetry(relay, this.idempotent)) this.#retryAfter({ value: relay });
    else relay.acceptInto(this);
  }

  headFailed(error: unknown): void {
    if (this.#retry === undefined) this.reject(error);
    else this.#retryAfter({ error });
  }

  resolve(result: ClusterStreamResult): void {
    this.#settle?.resolve(result);
  }

  reject(error: unknown): void {
    this.#settle?.reject(error);
  }

  #retryAfter(first: { readonly value: ResponseRelay } | { readonly error: unknown }): void {
    this.#retried(retrying(this.#retry as RetryPolicy, first, this, this.#untriedLeft as UntriedLeft));
  }

  /** Relays the answer the retry machinery settled on, or passes its failure on. */
  #retried(kept: Promise<ResponseRelay>): void {
    kept.then(
      (relay) => relay.acceptInto(this),
      (error: unknown) => this.reject(error),
    );
  }

  /** Starts a try: picks an endpoint, takes a pool slot, and dispatches through a new relay. */
  #dispatch(signal: AbortSignal, body: Body, waiter: HeadWaiter): void {
    const options = this.#options;
    this.#dispatchOptions.body = body;
    let current: Attempt;
    let relay: ResponseRelay;
    try {
      // Nothing tried and nothing excluded: the first try needs no set.
      const tried = this.#first === undefined ? this.#tried : this.tried;
      current = this.#source.begin(options.key, tried, options.prefer, options.pin);
      if (tried === undefined) this.#first = current.endpoint.id;
      current.enterPool();
      relay = new ResponseRelay(
        current,
        tried === undefined ? 1 : tried.size - this.excluded,
        this.#deadlines,
        this.#mightRetry,
        this.#factory,
        this.#idempotent,
        signal === NO_SIGNAL ? undefined : signal,
        waiter,
      );
    } catch (error) {
      waiter.headFailed(error);
      return;
    }
    const endpoint = current.endpoint;
    const prefix = endpoint.pathPrefix;
    this.#dispatchOptions.path = prefix === '' ? options.path : prefix + options.path;
    // The relay speaks undici's older handler interface (raw header lists), whose types undici no
    // longer declares as such (it types trailers as strings; they come as Buffers).
    endpoint.pool.dispatcher.dispatch(this.#dispatchOptions, relay as unknown as Dispatcher.DispatchHandler);
  }
}

/** A later try's head, for the retry machinery's promise. */
class HeadPromise implements HeadWaiter {
  readonly #resolve: (relay: ResponseRelay) => void;
  readonly #reject: (error: unknown) => void;

  constructor(resolve: (relay: ResponseRelay) => void, reject: (error: unknown) => void) {
    this.#resolve = resolve;
    this.#reject = reject;
  }

  headed(relay: ResponseRelay): void {
    this.#resolve(relay);
  }

  headFailed(error: unknown): void {
    this.#reject(error);
  }
}
