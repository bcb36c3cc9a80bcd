/**
 * The checks every request and every upgrade passes before it is sent anywhere, in one place so that
 * both kinds of traffic obey the same rules: the proxy is not closing (503), the request is well
 * formed (400), a route matches (404), and the route's rate limit admits the client (429).
 */
import type { IncomingMessage } from 'node:http';
import type { ErrorCode } from '../core/errors.js';
import type { RateLimitDecision } from '../limit/rules.js';
import { type ClientAddress, malformation, targetPath } from './forwarding.js';
import type { ProxySettings } from './options.js';
import { consumeRateLimit } from './rateLimits.js';
import type { CompiledRoute } from './routes.js';
import { forwardedFor } from './trust.js';

/** Why a request is answered by the proxy itself. */
export interface Refusal {
  readonly code: ErrorCode;
  readonly message: string;
  readonly status: number;
}

/** A request that may go on: its route, its path and query, and where it came from. */
export interface Admitted {
  readonly route: CompiledRoute;
  readonly path: string;
  readonly from: ClientAddress;
}

const CLOSING: Refusal = { code: 'ECLOSED', message: 'proxy is shutting down', status: 503 };
const BAD_TARGET: Refusal = { code: 'EBADREQUEST', message: 'malformed request target', status: 400 };
/** No route matched: Express middleware hands such a request on (`next()`). */
export const NO_ROUTE: Refusal = {
  code: 'ENOUPSTREAM',
  message: 'no route matches this request',
  status: 404,
};
export const RATE_LIMITED: Refusal = { code: 'ERATELIMITED', message: 'rate limit exceeded', status: 429 };

/** The route and client of `req`, or why it is refused (the rate limit aside: see {@link consumeLimit}). */
export function admit(req: IncomingMessage, settings: ProxySettings, closing: boolean): Admitted | Refusal {
  if (closing) return CLOSING;
  const bad = malformation(req);
  if (bad !== undefined) return { code: 'EBADREQUEST', message: bad, status: 400 };
  // The path and query only: an absolute-form target never chooses the host we connect to.
  const path = targetPath(req.url ?? '/');
  if (path === undefined) return BAD_TARGET;
  let route: CompiledRoute | undefined;
  for (const candidate of settings.routes) {
    if (candidate.matches(req, path)) {
      route = candidate;
      break;
    }
  }
  if (route === undefined) return NO_ROUTE;
  const from = forwardedFor(req.socket.remoteAddress ?? '', req.headers['x-forwarded-for'], settings.trust);
  return { route, path, from };
}

/** True for a refusal (as opposed to an admitted request). */
export function isRefusal(value: Admitted | Refusal): value is Refusal {
  return (value as Refusal).code !== undefined;
}

/**
 * Takes one request from the rate limit of the route (or, when it has none of its own, the proxy's):
 * the decision, or undefined when no limit applies to this request.
 */
export function consumeLimit(
  admitted: Admitted,
  settings: ProxySettings,
  req: IncomingMessage,
): Promise<RateLimitDecision> | undefined {
  const own = admitted.route.rateLimit;
  const limits = own === undefined ? settings.rateLimit : own === false ? undefined : own;
  return limits === undefined ? undefined : consumeRateLimit(limits, req, admitted.from.client);
}
