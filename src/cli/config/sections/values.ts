/**
 * The values configuration keys share: durations (`"500ms"`, `"10s"`, or milliseconds), sizes
 * (`"512KB"`, `"100MB"`, or bytes), ports, header names and header conditions.
 */
import { z } from 'zod';

export const DURATION = /^\s*(?:(?:\d+(?:\.\d+)?|\.\d+)(?:ms|s|m|h|d))+\s*$|^\s*\d+(?:\.\d+)?\s*$/;
export const SIZE = /^\s*\d+(?:\.\d+)?\s*(?:B|KB|MB|GB|KiB|MiB|GiB|K|M|G)?\s*$/i;

/** A duration: a number of milliseconds or a string such as `"10s"`. */
export const duration = (description: string) =>
  z
    .union(
      [
        z.number().nonnegative(),
        z.string().regex(DURATION, { error: 'expected a duration such as "500ms", "10s" or "1m30s"' }),
      ],
      { error: 'expected a duration such as "500ms", "10s" or "1m30s", or milliseconds' },
    )
    .meta({ description, format: 'duration' });

/** A size: a number of bytes or a string such as `"100MB"`. */
export const size = (description: string) =>
  z
    .union(
      [
        z.number().int().nonnegative(),
        z.string().regex(SIZE, { error: 'expected a size such as "512KB" or "100MB"' }),
      ],
      { error: 'expected a size such as "512KB" or "100MB", or bytes' },
    )
    .meta({ description, format: 'size' });

export const port = z.number().int().min(0).max(65_535);
export const headerName = z
  .string()
  .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, { error: 'expected a header name' });
export const headerMatch = z.record(headerName, z.string()).meta({
  description: 'Header name → value it must equal; a value `/like this/i` is a regular expression.',
});
