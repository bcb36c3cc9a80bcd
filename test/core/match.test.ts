import { describe, expect, it } from 'vitest';
import { headerMatchers, headersMatch, textMatcher } from '../../src/core/match.js';

describe('textMatcher', () => {
  it.each([
    ['abc', 'equals', 'abc', true],
    ['abc', 'equals', 'abcd', false],
    ['bc', 'contains', 'abcd', true],
    [/^a/, 'equals', 'abc', true],
    [/^b/, 'equals', 'abc', false],
  ] as const)('%s (%s) against %j: %s', (expected, mode, text, result) => {
    expect(textMatcher(expected, 'x', mode)(text)).toBe(result);
  });

  it('matches every time with a g or y RegExp, however often it is asked', () => {
    for (const pattern of [/canary/g, /canary/y, /canary/gi]) {
      const matches = textMatcher(pattern, 'x');
      expect(Array.from({ length: 10 }, () => matches('canary'))).toEqual(Array(10).fill(true));
      expect(pattern.lastIndex).toBe(0); // the caller's pattern is left alone
    }
  });

  it('names the option when the value is neither a string nor a RegExp', () => {
    expect(() => textMatcher(3 as never, 'match.headers.x')).toThrow(
      /match\.headers\.x must be a string or a RegExp, got 3/,
    );
  });
});

describe('headerMatchers', () => {
  it('needs every header present and matching, case-insensitively by name, repeated ones joined', () => {
    const matchers = headerMatchers({ 'X-Canary': /^yes$/, accept: 'a, b' }, 'headers');
    expect(headersMatch(matchers, { 'x-canary': 'yes', accept: ['a', 'b'] })).toBe(true);
    expect(headersMatch(matchers, { 'x-canary': 'no', accept: 'a, b' })).toBe(false);
    expect(headersMatch(matchers, { accept: 'a, b' })).toBe(false);
  });
});
