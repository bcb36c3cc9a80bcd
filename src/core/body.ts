/**
 * Request bodies that can be sent again. A body given whole (none, a string, bytes) can be sent as
 * often as needed; a stream can be read once, unless it keeps a copy of itself (the proxy's streamed
 * bodies do, up to a bound), which, once the stream has ended whole within that bound, can be sent
 * instead. The cluster's retries and the HTTP/2 pool's re-sends of refused streams both ask here.
 */
import { Readable } from 'node:stream';

/** A streamed body that keeps a copy of itself; see the module comment. */
export interface ReplayableStream extends Readable {
  /** The whole body, once the stream has ended within its bound; otherwise undefined. */
  replay(): Buffer | undefined;
  /** The copy once the stream has ended whole, or undefined once it cannot be. */
  replayWhenEnded?(): Promise<Buffer | undefined>;
}

export function isReplayableStream(body: unknown): body is ReplayableStream {
  return body instanceof Readable && typeof (body as Partial<ReplayableStream>).replay === 'function';
}

/** A body given whole, which can be sent again as it is: none, a string or bytes. */
export function isWholeBody(body: unknown): body is string | Uint8Array | null | undefined {
  return body === null || body === undefined || typeof body === 'string' || body instanceof Uint8Array;
}

/** The copy a streamed body kept of itself, when it has ended whole; otherwise undefined. */
export function keptCopyOf(body: unknown): Buffer | undefined {
  return isReplayableStream(body) ? body.replay() : undefined;
}
