/**
 * Request bodies on their way upstream. A small body of known length is read whole, so that a retry
 * can send it again; a larger or chunked one streams through a limiter that cuts it off past
 * `maxBodyBytes` (413). Either way a client that stops sending mid-body is cut when it has been
 * silent for the idle timeout (408), so it cannot hold an upstream request open.
 *
 * A body a framework's parser already read (`express.json()` before the proxy) cannot be streamed
 * again: what the parser left in `req.body` is sent instead, re-encoded for JSON and urlencoded
 * bodies and as it is for raw and text ones, with a `Content-Length` to match. Anything else fails
 * at once with a 500 that says why, instead of waiting for a body that will never come.
 */
import type { IncomingMessage } from 'node:http';
import { Transform } from 'node:stream';
import type { Clock } from '../core/clock.js';
import { McgravityError } from '../core/errors.js';
import type { IdleSweeper, Watched } from './IdleSweeper.js';

const IDLE_BODY = 'request body went idle';

/** Who waits for a body read whole: told once, of the body or of why it could not be read. */
export interface BodyWaiter {
  bodyRead(body: Buffer): void;
  bodyFailed(error: unknown): void;
}

/**
 * Reads a body of `declared` bytes whole (a retry can resend it) and tells `waiter`. One object per
 * body, which is also its idle watch: no promise, no closure beyond its three listeners.
 */
export function readBody(
  req: IncomingMessage,
  declared: number,
  sweeper: IdleSweeper,
  clock: Clock,
  waiter: BodyWaiter,
): void {
  const read = new BodyRead(req, declared, sweeper, clock, waiter);
  sweeper.track(read);
  // `on`, not `once` (which wraps each listener): a request ends or fails once.
  req.on('data', read.onData);
  req.on('end', read.onEnd);
  req.on('error', read.onError);
}

/** One body being read whole; see {@link readBody}. */
class BodyRead implements Watched {
  lastActivity = 0;
  lastProgress = 0;
  prev: Watched | undefined;
  next: Watched | undefined;
  readonly #req: IncomingMessage;
  readonly #declared: number;
  readonly #sweeper: IdleSweeper;
  readonly #clock: Clock;
  readonly #waiter: BodyWaiter;
  #chunks: Buffer[] = [];
  #size = 0;
  /** The waiter was told (a promise's once, kept by hand). */
  #told = false;

  constructor(
    req: IncomingMessage,
    declared: number,
    sweeper: IdleSweeper,
    clock: Clock,
    waiter: BodyWaiter,
  ) {
    this.#req = req;
    this.#declared = declared;
    this.#sweeper = sweeper;
    this.#clock = clock;
    this.#waiter = waiter;
  }

  onIdle(): void {
    this.#req.destroy();
    this.#fail(new McgravityError('EREQUESTTIMEOUT', IDLE_BODY));
  }

  readonly onData = (chunk: Buffer): void => {
    this.lastActivity = this.#clock.now();
    this.#size += chunk.length;
    if (this.#size <= this.#declared) this.#chunks.push(chunk);
  };

  readonly onEnd = (): void => {
    if (this.#told) return;
    this.#told = true;
    this.#sweeper.unwatch(this);
    const chunks = this.#chunks;
    // A body that came in one chunk (most small ones) is sent as it is, not copied.
    const whole = this.#size;
    this.#waiter.bodyRead(
      chunks.length === 1 && whole === this.#declared
        ? (chunks[0] as Buffer)
        : Buffer.concat(chunks, Math.min(whole, this.#declared)),
    );
  };

  readonly onError = (error: Error): void => {
    this.#fail(error);
  };

  #fail(error: unknown): void {
    if (this.#told) return;
    this.#told = true;
    this.#sweeper.unwatch(this);
    this.#waiter.bodyFailed(error);
  }
}

/** A request body on its way upstream, counting what passed. */
export interface LimitedBody extends Transform {
  /** Body bytes received from the client so far. */
  readonly received: number;
  /** The whole body, when it has ended within the bytes kept for a retry; otherwise undefined. */
  replay(): Buffer | undefined;
  /**
   * The whole body once it has ended within the bytes kept, or undefined as soon as it cannot be
   * (it grew past them, failed, or keeps no copy): for a request sent again while its body streams.
   */
  replayWhenEnded(): Promise<Buffer | undefined>;
}

/**
 * Streams a large or chunked body, cutting it off past `maxBytes` (413) or when it goes idle (408):
 * `refuse` answers the client (and closes the connection after the answer).
 * With `keepBytes`, it also keeps what passes, up to that many bytes: a body that ends within them
 * can be sent again by a retry (a gRPC call's, say, whose length is never announced).
 */
export function limitBody(
  req: IncomingMessage,
  refuse: (code: 'EBODYTOOLARGE' | 'EREQUESTTIMEOUT', message: string) => void,
  maxBytes: number,
  sweeper: IdleSweeper,
  clock: Clock,
  keepBytes = 0,
): LimitedBody {
  let kept: Buffer[] | undefined = keepBytes > 0 ? [] : undefined;
  let whole: Buffer | undefined;
  /** Who waits for the copy to be decided: whole (flush), or never (overflow, close). */
  let waiting: ((copy: Buffer | undefined) => void)[] | undefined;
  const decided = () => {
    const waiters = waiting;
    waiting = undefined;
    if (waiters !== undefined) for (const resolve of waiters) resolve(whole);
  };
  const limiter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      watched.lastActivity = clock.now();
      limiter.received += chunk.length;
      if (kept !== undefined) {
        if (limiter.received <= keepBytes) kept.push(chunk);
        else {
          kept = undefined; // too long to keep: it cannot be replayed
          decided();
        }
      }
      if (limiter.received > maxBytes) {
        const error = new McgravityError('EBODYTOOLARGE', `request body over ${maxBytes} bytes`);
        refuse('EBODYTOOLARGE', error.message);
        callback(error);
        return;
      }
      callback(null, chunk);
    },
    flush(callback) {
      if (kept !== undefined) whole = Buffer.concat(kept, limiter.received);
      kept = undefined;
      decided();
      callback();
    },
  }) as Transform & {
    received: number;
    replay(): Buffer | undefined;
    replayWhenEnded(): Promise<Buffer | undefined>;
  };
  limiter.received = 0;
  limiter.replay = () => whole;
  limiter.replayWhenEnded = () => {
    if (whole !== undefined || kept === undefined) return Promise.resolve(whole);
    return new Promise((resolve) => {
      waiting ??= [];
      waiting.push(resolve);
    });
  };
  // A client that stops sending its body mid-way holds an upstream request open: cut it.
  const watched: Watched = sweeper.watch(() => {
    refuse('EREQUESTTIMEOUT', IDLE_BODY);
    limiter.destroy(new McgravityError('EREQUESTTIMEOUT', IDLE_BODY));
    req.unpipe(limiter);
    req.resume(); // the connection closes once the 408 is out
  });
  limiter.once('close', () => {
    sweeper.unwatch(watched);
    decided(); // destroyed before its end: no copy will come
  });
  req.pipe(limiter);
  req.once('error', (error) => limiter.destroy(error));
  return limiter;
}

/**
 * The body to send for a request whose stream a parser already consumed: `req.body` as bytes, or
 * why it cannot be sent.
 */
export function consumedBody(req: IncomingMessage): Buffer | McgravityError {
  const parsed = (req as { body?: unknown }).body;
  const type = String(req.headers['content-type'] ?? '').toLowerCase();
  if (Buffer.isBuffer(parsed)) return parsed; // express.raw()
  if (typeof parsed === 'string') return Buffer.from(parsed, 'utf8'); // express.text()
  if (parsed !== undefined && parsed !== null && /[/+]json\b/.test(type)) {
    return Buffer.from(JSON.stringify(parsed), 'utf8');
  }
  if (parsed !== null && typeof parsed === 'object' && type.startsWith('application/x-www-form-urlencoded')) {
    const form = new URLSearchParams();
    for (const [key, value] of Object.entries(parsed)) {
      for (const item of Array.isArray(value) ? value : [value]) {
        if (item !== null && typeof item === 'object') return notForwardable('a nested urlencoded body');
        form.append(key, String(item));
      }
    }
    return Buffer.from(form.toString(), 'utf8');
  }
  return notForwardable(
    parsed === undefined ? 'no req.body was left' : `a ${type || 'body'} it cannot re-encode`,
  );
}

function notForwardable(what: string): McgravityError {
  return new McgravityError(
    'EINTERNAL',
    `the request body was already read by a body parser (${what}): mount the proxy before body-parsing middleware`,
  );
}
