/**
 * Logging, the pino way: a logger is any object with `debug`, `info`, `warn` and `error` methods that
 * take a context object and a message (pino, and loggers that mimic it: bunyan, a `pino`-compatible
 * wrapper around winston). mcgravity is silent unless given one.
 */
import { describeValue } from './validate.js';

/** What mcgravity needs of a logger: pino's method signature, `(context, message)`. */
export interface Logger {
  debug(context: object, message: string): void;
  info(context: object, message: string): void;
  warn(context: object, message: string): void;
  error(context: object, message: string): void;
}

/** Checks a `logger` option: undefined stays undefined (silent). */
export function optionalLogger(value: unknown, option = 'logger'): Logger | undefined {
  if (value === undefined) return undefined;
  const logger = value as Partial<Logger> | null;
  if (
    logger === null ||
    typeof logger !== 'object' ||
    typeof logger.debug !== 'function' ||
    typeof logger.info !== 'function' ||
    typeof logger.warn !== 'function' ||
    typeof logger.error !== 'function'
  ) {
    throw new TypeError(
      `${option} must be a logger with debug, info, warn and error methods (pino, say), got ${describeValue(value)}`,
    );
  }
  return logger as Logger;
}
