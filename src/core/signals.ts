/** Shared AbortSignal helpers. */

/** A signal that never aborts, handed to work run without a caller's signal. */
export const neverAborted: AbortSignal = new AbortController().signal;

/** The reason an aborted signal carries, as an Error. */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const error = new Error('The operation was aborted', { cause: reason });
  error.name = 'AbortError';
  return error;
}
