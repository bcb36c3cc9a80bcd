/**
 * Requests pipelined on one connection, forwarded in the order RFC 9112 §9.3.2 allows: safe requests
 * (GET, HEAD, OPTIONS, TRACE) may be processed in parallel, but a request that is not safe waits for
 * every request before it to finish, and every request after it waits for it. Node's server emits
 * each pipelined request as soon as it is parsed (and orders the responses itself), so without this a
 * GET after a POST could reach the upstream before the POST it may depend on.
 *
 * The state lives on the socket (shared by every proxy that serves the connection), made on its first
 * request with the two callbacks that end a request's turn, so a request allocates nothing here
 * unless it has to wait.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Handles one request, and calls `done` exactly once when it is over (which ends the request's turn). */
export type OrderedHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  next: ((error?: unknown) => void) | undefined,
  done: () => void,
) => void;

interface Waiting {
  readonly handle: OrderedHandler;
  readonly safe: boolean;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly next: ((error?: unknown) => void) | undefined;
}

class ConnectionOrder {
  running = 0;
  unsafeRunning = false;
  readonly waiting: Waiting[] = [];
  readonly #safeDone = (): void => this.#done(true);
  readonly #unsafeDone = (): void => this.#done(false);

  mayStart(safe: boolean): boolean {
    return safe ? !this.unsafeRunning : this.running === 0;
  }

  start(
    handle: OrderedHandler,
    safe: boolean,
    req: IncomingMessage,
    res: ServerResponse,
    next: Waiting['next'],
  ): void {
    this.running++;
    if (!safe) this.unsafeRunning = true;
    handle(req, res, next, safe ? this.#safeDone : this.#unsafeDone);
  }

  #done(safe: boolean): void {
    this.running--;
    if (!safe) this.unsafeRunning = false;
    // Start what waited, in order, as far as the rule allows.
    for (let head = this.waiting[0]; head !== undefined && this.mayStart(head.safe); head = this.waiting[0]) {
      this.waiting.shift();
      this.start(head.handle, head.safe, head.req, head.res, head.next);
    }
  }
}

const ORDER = Symbol('mcgravity.order');

type OrderedSocket = { [ORDER]?: ConnectionOrder };

function isSafe(method: string | undefined): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS' || method === 'TRACE';
}

/** Runs `handle` for `req` when its turn on the connection comes. */
export function inOrder(
  handle: OrderedHandler,
  req: IncomingMessage,
  res: ServerResponse,
  next: ((error?: unknown) => void) | undefined,
): void {
  const socket = req.socket as unknown as OrderedSocket;
  let order = socket[ORDER];
  if (order === undefined) {
    order = new ConnectionOrder();
    socket[ORDER] = order;
  }
  const safe = isSafe(req.method);
  if (order.waiting.length === 0 && order.mayStart(safe)) order.start(handle, safe, req, res, next);
  else order.waiting.push({ handle, safe, req, res, next });
}
