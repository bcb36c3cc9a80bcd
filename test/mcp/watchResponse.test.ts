import { describe, expect, it } from 'vitest';
import { type RpcOutcome, watchResponse } from '../../src/mcp/watchResponse.js';

const encoder = new TextEncoder();

/** A body made of `text` cut at the given offsets. */
function bodyOf(text: string, cuts: number[] = []): ReadableStream<Uint8Array> {
  const bytes = encoder.encode(text);
  const points = [0, ...cuts, bytes.length];
  return new ReadableStream({
    start(controller) {
      for (let i = 1; i < points.length; i++) controller.enqueue(bytes.slice(points[i - 1], points[i]));
      controller.close();
    },
  });
}

/** Passes `text` through the watcher; returns what came out and the outcome. */
async function watch(
  text: string,
  sse: boolean,
  id: string | number,
  cuts: number[] = [],
): Promise<{ out: string; outcome: RpcOutcome[] }> {
  const outcome: RpcOutcome[] = [];
  const out = await new Response(watchResponse(bodyOf(text, cuts), sse, id, (o) => outcome.push(o))).text();
  return { out, outcome };
}

const progress =
  'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}\n\n';
const answer = 'event: message\ndata: {"jsonrpc":"2.0","id":7,"result":{"content":[]}}\n\n';

describe('watchResponse', () => {
  it('finds the answer in an SSE stream however it is cut, passing every byte through unchanged', async () => {
    const text = progress + answer;
    for (let cut = 1; cut < text.length; cut += 3) {
      const { out, outcome } = await watch(text, true, 7, [cut]);
      expect(out).toBe(text);
      expect(outcome).toEqual(['ok']);
    }
  });

  it('reads CRLF line endings and data split over several lines', async () => {
    const text = 'data: {"jsonrpc":"2.0","id":"a",\r\ndata: "error":{"code":-1,"message":"no"}}\r\n\r\n';
    expect((await watch(text, true, 'a')).outcome).toEqual(['rpc-error']);
  });

  it('tells JSON-RPC errors and failed tools from successes in JSON bodies, batches included', async () => {
    const cases: [string, RpcOutcome][] = [
      ['{"jsonrpc":"2.0","id":1,"result":{}}', 'ok'],
      ['{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"nope"}}', 'rpc-error'],
      ['{"jsonrpc":"2.0","id":1,"result":{"isError":true,"content":[]}}', 'tool-error'],
      [
        '[{"jsonrpc":"2.0","id":2,"result":{}},{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}]',
        'rpc-error',
      ],
      ['{"jsonrpc":"2.0","id":2,"result":{}}', 'unknown'],
      ['not json', 'unknown'],
    ];
    for (const [text, expected] of cases) {
      expect((await watch(text, false, 1, [5])).outcome).toEqual([expected]);
    }
  });

  it('skips an SSE event larger than its bound and still finds a later answer', async () => {
    const huge = `data: ${'x'.repeat(300 * 1024)}\n\n`;
    const { out, outcome } = await watch(huge + answer, true, 7, [1000, 200_000, huge.length + 3]);
    expect(out.length).toBe(huge.length + answer.length);
    expect(outcome).toEqual(['ok']);
  });

  it("reports 'unknown' for an oversized JSON body and 'cancelled' when the reader gives up", async () => {
    const big = `{"jsonrpc":"2.0","id":1,"result":{"pad":"${'y'.repeat(300 * 1024)}"}}`;
    expect((await watch(big, false, 1, [100_000])).outcome).toEqual(['unknown']);

    const outcome: RpcOutcome[] = [];
    const reader = watchResponse(bodyOf(progress + answer, [10]), true, 7, (o) =>
      outcome.push(o),
    ).getReader();
    await reader.read();
    await reader.cancel();
    expect(outcome).toEqual(['cancelled']);
  });
});
