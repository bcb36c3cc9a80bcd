/**
 * mcgravity's `node:diagnostics_channel` channels, all named here. Tracing and metrics tools
 * (OpenTelemetry instrumentations, APM agents, your own code) subscribe; nothing is built or sent
 * while nobody does (`hasSubscribers`), as undici does for its own channels.
 *
 * | channel | message | when |
 * | --- | --- | --- |
 * | `mcgravity:attempt:start` | {@link AttemptStartMessage} | a try starts on an endpoint |
 * | `mcgravity:attempt:end` | {@link AttemptEndMessage} | it has its answer's head, or failed |
 * | `mcgravity:retry` | {@link RetryMessage} | a cluster retries or requeues a call |
 * | `mcgravity:endpoint` | {@link EndpointMessage} | an endpoint changes state |
 * | `mcgravity:proxy:request:start` | {@link ProxyRequestStartMessage} | the proxy takes a request |
 * | `mcgravity:proxy:request:end` | {@link ProxyRequestEndMessage} | it has answered it |
 */
import diagnostics from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';

/** A try starting on an endpoint. `attempt` is the same object in the matching end message. */
export interface AttemptStartMessage {
  readonly attempt: object;
  readonly cluster: string;
  readonly endpoint: string;
  readonly url: string;
}

/** A try ended: an answer's head (`statusCode`) or a failure (`error`). */
export interface AttemptEndMessage {
  readonly attempt: object;
  readonly cluster: string;
  readonly endpoint: string;
  readonly statusCode?: number;
  readonly error?: unknown;
  /** Time from the try's start to its head or failure. */
  readonly durationMs: number;
}

/** A call tried again: `retry` (within the budget) or `requeue` (it never reached a backend). */
export interface RetryMessage {
  readonly cluster: string;
  readonly kind: 'retry' | 'requeue';
  /** The attempt about to run, 2 for the first retry. */
  readonly attempt: number;
  readonly reason?: string | number;
}

/** An endpoint's state changed: the cluster's event name, and its reason where it has one. */
export interface EndpointMessage {
  readonly cluster: string;
  readonly endpoint: string;
  readonly event: string;
  readonly reason?: string;
}

/** The proxy took a request. `req` is the same object in the matching end message. */
export interface ProxyRequestStartMessage {
  readonly req: IncomingMessage;
  readonly requestId: string | undefined;
}

/** The proxy answered a request (or the client went away: `statusCode` is what was sent, if anything). */
export interface ProxyRequestEndMessage {
  readonly req: IncomingMessage;
  readonly requestId: string | undefined;
  readonly statusCode: number;
  /** The endpoint whose answer was relayed; undefined when the proxy answered itself. */
  readonly endpoint: string | undefined;
  readonly durationMs: number;
}

export const attemptStartChannel = diagnostics.channel('mcgravity:attempt:start');
export const attemptEndChannel = diagnostics.channel('mcgravity:attempt:end');
export const retryChannel = diagnostics.channel('mcgravity:retry');
export const endpointChannel = diagnostics.channel('mcgravity:endpoint');
export const proxyRequestStartChannel = diagnostics.channel('mcgravity:proxy:request:start');
export const proxyRequestEndChannel = diagnostics.channel('mcgravity:proxy:request:end');
