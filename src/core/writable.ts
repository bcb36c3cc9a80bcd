/**
 * Whether a Writable took everything: finished, and not cut on the way. A `ServerResponse` answers
 * with `writableFinished` alone; Node's HTTP/2 compatibility response reports `writableFinished`
 * even when its client reset the stream, so its stream's reset code (`NGHTTP2_NO_ERROR`, 0, for a
 * stream that ended well) decides.
 */
import type { Writable } from 'node:stream';

export function writableCompleted(writable: Writable): boolean {
  if (!writable.writableFinished) return false;
  const stream = (writable as Writable & { stream?: { rstCode?: number } }).stream;
  return stream?.rstCode === undefined || stream.rstCode === 0;
}
