/**
 * Option validation shared by every constructor: bad options fail at construction, with a message
 * that names the option and the expected value.
 */

/** Bounds for {@link checkNumber}. */
export interface NumberRule {
  /** Smallest allowed value (inclusive). */
  min?: number;
  /** Largest allowed value (inclusive). */
  max?: number;
  /** The value must be greater than this (exclusive). */
  above?: number;
  /** The value must be a whole number. */
  integer?: boolean;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  return typeof value;
}

function expectation(rule: NumberRule): string {
  const parts: string[] = [rule.integer ? 'an integer' : 'a finite number'];
  if (rule.above !== undefined) parts.push(`> ${rule.above}`);
  if (rule.min !== undefined) parts.push(`>= ${rule.min}`);
  if (rule.max !== undefined) parts.push(`<= ${rule.max}`);
  return parts.join(' ');
}

/** Returns `value` when it is a number obeying `rule`; throws a TypeError or RangeError naming `option`. */
export function checkNumber(value: unknown, option: string, rule: NumberRule = {}): number {
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw new TypeError(`${option} must be ${expectation(rule)}, got ${describe(value)}`);
  }
  const ok =
    (Number.isFinite(value) || (rule.max === Number.POSITIVE_INFINITY && value === rule.max)) &&
    (!rule.integer || Number.isInteger(value)) &&
    (rule.min === undefined || value >= rule.min) &&
    (rule.max === undefined || value <= rule.max) &&
    (rule.above === undefined || value > rule.above);
  if (!ok) throw new RangeError(`${option} must be ${expectation(rule)}, got ${describe(value)}`);
  return value;
}

/** Like {@link checkNumber}, but `undefined` yields `fallback`. */
export function optionalNumber(
  value: unknown,
  option: string,
  fallback: number,
  rule: NumberRule = {},
): number {
  return value === undefined ? fallback : checkNumber(value, option, rule);
}

/** Returns `value` when it is a function; `undefined` yields `fallback`. */
export function optionalFunction<F extends (...args: never[]) => unknown>(
  value: unknown,
  option: string,
  fallback: F,
): F {
  if (value === undefined) return fallback;
  if (typeof value !== 'function')
    throw new TypeError(`${option} must be a function, got ${describe(value)}`);
  return value as F;
}

/** Throws when `options` holds a key outside `allowed`: a misspelt option is a bug, not a no-op. */
export function checkKnownOptions(options: object, allowed: readonly string[], owner: string): void {
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      const known = allowed.length > 0 ? allowed.join(', ') : 'none';
      throw new TypeError(`${owner}: unknown option "${key}" (known options: ${known})`);
    }
  }
}

export { describe as describeValue };
