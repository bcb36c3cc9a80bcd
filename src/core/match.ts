/**
 * One way to compare text against what a configuration expects, for routes (headers, MCP method
 * and name) and health checks (headers, body): a string compares exactly (or, for a body, is
 * looked for), a RegExp is tested. A RegExp is copied without its `g` and `y` flags, because `test()`
 * on such a pattern resumes from `lastIndex`, so a shared pattern would match every other request.
 */
import { describeValue } from './validate.js';

/** What a value must be: equal to a string, or matching a pattern. */
export type TextMatch = string | RegExp;

/** A compiled {@link TextMatch}. */
export type TextMatcher = (text: string) => boolean;

/**
 * Compiles `expected`: a string must equal the text (`'equals'`) or occur in it (`'contains'`), a
 * RegExp must match it, whatever its flags.
 * @throws TypeError naming `option` when `expected` is neither
 */
export function textMatcher(
  expected: TextMatch,
  option: string,
  mode: 'equals' | 'contains' = 'equals',
): TextMatcher {
  if (typeof expected === 'string') {
    return mode === 'equals' ? (text) => text === expected : (text) => text.includes(expected);
  }
  if (expected instanceof RegExp) {
    const pattern = /[gy]/.test(expected.flags)
      ? new RegExp(expected.source, expected.flags.replace(/[gy]/g, ''))
      : expected;
    return (text) => pattern.test(text);
  }
  throw new TypeError(`${option} must be a string or a RegExp, got ${describeValue(expected)}`);
}

/** Header conditions: each named header (lower-cased) must be present and match. */
export type HeaderMatchers = readonly (readonly [name: string, matches: TextMatcher])[];

/** Compiles `{ name: string | RegExp }` header conditions. */
export function headerMatchers(headers: Record<string, TextMatch>, option: string): HeaderMatchers {
  if (headers === null || typeof headers !== 'object')
    throw new TypeError(`${option} must be an object of header name → string or RegExp`);
  return Object.entries(headers).map(
    ([name, value]) => [name.toLowerCase(), textMatcher(value, `${option}.${name}`)] as const,
  );
}

/**
 * The first header condition that does not hold (the header is missing or does not match), or
 * undefined when all hold. Repeated headers are joined with `, `.
 */
export function firstMismatch(
  matchers: HeaderMatchers,
  headers: Readonly<Record<string, string | string[] | undefined>>,
): string | undefined {
  for (const [name, matches] of matchers) {
    const raw = headers[name];
    if (raw === undefined || !matches(Array.isArray(raw) ? raw.join(', ') : raw)) return name;
  }
  return undefined;
}

/** True when every header condition holds. */
export function headersMatch(
  matchers: HeaderMatchers,
  headers: Readonly<Record<string, string | string[] | undefined>>,
): boolean {
  return firstMismatch(matchers, headers) === undefined;
}
