/**
 * Requests pipelined on one connection, forwarded in the order RFC 9112 §9.3.2 allows: safe requests
 * (GET, HEAD, OPTIONS, TRACE) may be processed in parallel, but a request that is not safe waits for
 * every request before it to finish, and every request after it waits for it. Node's server emits
 * each pipelined request as soon as it is parsed (and orders the responses itself), so without this a
 * GET after a POST could reach the upstream before the POST it may depend on.
 *
 * A connection that does not pipeline pays one property read per request; the state is made on the
 * first request that finds another still running on its connection.
 */
import type { IncomingMessage } from 'node:http';

interface ConnectionOrder {
  running: number;
  unsafeRunning: boolean;
  readonly waiting: { readonly safe: boolean; readonly handle: () => Promise<void> }[];
}

const ORDER = Symbol('mcgravity.order');

type OrderedSocket = { [ORDER]?: ConnectionOrder };

function isSafe(method: string | undefined): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS' || method === 'TRACE';
}

/**
 * Runs `handle` for `req` when its turn on the connection comes; `handle`'s promise settling (it
 * should not reject) ends the request's turn.
 */
export function inOrder(req: IncomingMessage, handle: () => Promise<void>): void {
  const socket = req.socket as unknown as OrderedSocket;
  let order = socket[ORDER];
  if (order === undefined) {
    order = { running: 0, unsafeRunning: false, waiting: [] };
    socket[ORDER] = order;
  }
  const safe = isSafe(req.method);
  if (order.waiting.length === 0 && mayStart(order, safe)) start(order, safe, handle);
  else order.waiting.push({ safe, handle });
}

function mayStart(order: ConnectionOrder, safe: boolean): boolean {
  return safe ? !order.unsafeRunning : order.running === 0;
}

function start(order: ConnectionOrder, safe: boolean, handle: () => Promise<void>): void {
  order.running++;
  if (!safe) order.unsafeRunning = true;
  const done = () => {
    order.running--;
    if (!safe) order.unsafeRunning = false;
    // Start what waited, in order, as far as the rule allows.
    for (
      let next = order.waiting[0];
      next !== undefined && mayStart(order, next.safe);
      next = order.waiting[0]
    ) {
      order.waiting.shift();
      start(order, next.safe, next.handle);
    }
  };
  handle().then(done, done);
}
