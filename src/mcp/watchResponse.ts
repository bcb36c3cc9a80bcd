/**
 * Watches an MCP response body as it streams past, for the JSON-RPC answer to one request, without
 * holding any of it back: every chunk is passed on the moment it arrives (SSE progress events reach
 * the client while the tool runs), and a copy of the text is read on the side, bounded.
 *
 * A JSON body is parsed when it ends; an SSE body event by event, and the watch ends at the event
 * that answers the request id, so a long stream is not read further. The outcome separates a
 * JSON-RPC error and a tool's own `isError` result from success, which HTTP statuses cannot tell
 * (MCP servers answer both with 200).
 */

import type { Transformer } from 'node:stream/web';

/** How the answer to one request ended. */
export type RpcOutcome =
  /** A `result`, and for `tools/call` one without `isError`. */
  | 'ok'
  /** A JSON-RPC `error`. */
  | 'rpc-error'
  /** A `tools/call` result with `isError: true`: the tool itself failed. */
  | 'tool-error'
  /** The body ended without an answer to the request, or one too large to read. */
  | 'unknown'
  /** The reader cancelled the body before the answer came. */
  | 'cancelled';

/** The most text kept to find an answer (one JSON body, or one SSE event). */
const MAX_TEXT = 256 * 1024;

/** Passes `body` through, calling `done` once with the outcome of the answer to `id`. */
export function watchResponse(
  body: ReadableStream<Uint8Array>,
  sse: boolean,
  id: string | number,
  done: (outcome: RpcOutcome) => void,
): ReadableStream<Uint8Array> {
  const decoder = new TextDecoder();
  let text = '';
  let overflow = false;
  let settled = false;
  const settle = (outcome: RpcOutcome) => {
    if (settled) return;
    settled = true;
    text = '';
    done(outcome);
  };
  /** Reads the complete SSE events in `text`, keeping an unfinished one for the next chunk. */
  const readEvents = () => {
    for (;;) {
      const end = eventEnd(text);
      if (end === undefined) break;
      const event = text.slice(0, end.at);
      text = text.slice(end.at + end.length);
      const outcome = answerIn(eventData(event), id);
      if (outcome !== undefined) return settle(outcome);
    }
    if (text.length > MAX_TEXT) {
      // One event larger than the bound: skip it, and read again from its end.
      overflow = true;
      text = '';
    }
  };
  // `cancel` (the reader gave up) is in the Streams standard and in Node 20, not yet in TypeScript's types.
  const transformer: Transformer<Uint8Array, Uint8Array> & { cancel(): void } = {
    transform(chunk, controller) {
      controller.enqueue(chunk);
      if (settled) return;
      if (sse) {
        text += decoder.decode(chunk, { stream: true });
        if (overflow) {
          // Still inside the oversized event: wait for its end.
          const end = eventEnd(text);
          if (end === undefined) {
            text = '';
            return;
          }
          text = text.slice(end.at + end.length);
          overflow = false;
        }
        readEvents();
      } else if (!overflow) {
        text += decoder.decode(chunk, { stream: true });
        if (text.length > MAX_TEXT) {
          overflow = true;
          text = '';
        }
      }
    },
    flush() {
      if (settled) return;
      if (!sse && !overflow) {
        text += decoder.decode();
        settle(answerIn(text, id) ?? 'unknown');
        return;
      }
      settle('unknown');
    },
    cancel() {
      settle('cancelled');
    },
  };
  return body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>(transformer));
}

/** Where the first SSE event of `text` ends (a blank line, in any of the three line endings). */
function eventEnd(text: string): { at: number; length: number } | undefined {
  const match = /\r\n\r\n|\n\n|\r\r/.exec(text);
  return match === null ? undefined : { at: match.index, length: match[0].length };
}

/** The `data` of one SSE event, its lines joined as the SSE specification says. */
function eventData(event: string): string {
  let data = '';
  for (const line of event.split(/\r\n|\n|\r/)) {
    if (!line.startsWith('data:')) continue;
    const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
    data = data === '' ? value : `${data}\n${value}`;
  }
  return data;
}

/** The outcome of the answer to `id` in a JSON text (one message or a batch), if it holds one. */
function answerIn(text: string, id: string | number): RpcOutcome | undefined {
  if (text === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  for (const message of Array.isArray(parsed) ? parsed : [parsed]) {
    if (message === null || typeof message !== 'object') continue;
    const { id: answered, result, error } = message as { id?: unknown; result?: unknown; error?: unknown };
    if (answered !== id) continue;
    if (error !== undefined) return 'rpc-error';
    if (result !== null && typeof result === 'object' && (result as { isError?: unknown }).isError === true)
      return 'tool-error';
    return 'ok';
  }
  return undefined;
}
