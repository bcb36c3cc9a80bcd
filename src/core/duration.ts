/**
 * Durations as people write them in config files: `"500ms"`, `"10s"`, `"1m"`, `"1h30m"`, or a number
 * of milliseconds. Units: `ms`, `s`, `m`, `h`, `d`; a bare number (or numeric string) is milliseconds.
 */

/** A unit of a {@link Duration} string. */
export type DurationUnit = 'ms' | 's' | 'm' | 'h' | 'd';

/**
 * A duration string, typed so that a mistake (`'1 minute'`, `'10 s'`) fails in the editor: `'250ms'`,
 * `'10s'`, `'1m30s'`, `'1h30m15s'`, or a number of milliseconds as a string. A string built at run time
 * (`String(x)`) needs `as Duration`; it is checked when parsed either way.
 */
export type DurationString =
  | `${number}`
  | `${number}${DurationUnit}`
  | `${number}${DurationUnit}${number}${DurationUnit}`
  | `${number}${DurationUnit}${number}${DurationUnit}${number}${DurationUnit}`;

/** A duration: milliseconds as a number, or a {@link DurationString} such as `"250ms"` or `"1m30s"`. */
export type Duration = number | DurationString;

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d)/y;
const BARE = /^(\d+(?:\.\d+)?|\.\d+)$/;

function invalid(option: string, value: unknown): never {
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  throw new RangeError(
    `${option} must be a duration such as "500ms", "10s", "1m", "1h30m" or a number of milliseconds >= 0, got ${shown}`,
  );
}

/**
 * Parses a {@link Duration} into milliseconds.
 * @param value the duration to parse
 * @param option the option name used in the error message
 * @throws RangeError naming `option` when `value` is not a non-negative duration
 */
export function parseDuration(value: unknown, option = 'duration'): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) invalid(option, value);
    return value;
  }
  if (typeof value !== 'string') invalid(option, value);
  const text = value.trim();
  if (text === '') invalid(option, value);
  if (BARE.test(text)) return Number(text);
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const start = PART.lastIndex;
    const match = PART.exec(text);
    if (match === null || match.index !== start) invalid(option, value);
    total += Number(match[1]) * (UNIT_MS[match[2] as string] as number);
  }
  return total;
}

/** Like {@link parseDuration}, but `undefined` yields `fallbackMs`. */
export function optionalDuration(value: unknown, option: string, fallbackMs: number): number {
  return value === undefined ? fallbackMs : parseDuration(value, option);
}
