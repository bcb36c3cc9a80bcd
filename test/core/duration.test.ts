import { describe, expect, it } from 'vitest';
import { optionalDuration, parseDuration } from '../../src/core/duration.js';

describe('parseDuration', () => {
  it.each([
    [0, 0],
    [250, 250],
    [1.5, 1.5],
    ['250', 250],
    ['500ms', 500],
    ['10s', 10_000],
    ['1.5s', 1500],
    ['.5s', 500],
    ['1m', 60_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1h30m', 5_400_000],
    ['1m30s250ms', 90_250],
    [' 10s ', 10_000],
  ])('reads %j as %d ms', (input, expected) => {
    expect(parseDuration(input)).toBe(expected);
  });

  it.each([
    ['abc'],
    [''],
    ['10 s'],
    ['-1s'],
    ['10x'],
    ['s'],
    ['1s2'],
    [-1],
    [Number.NaN],
    [Number.POSITIVE_INFINITY],
    [null],
    [{}],
  ])('rejects %j with an error naming the option', (input) => {
    expect(() => parseDuration(input, 'health.intervalMs')).toThrow(/^health\.intervalMs must be a duration/);
  });

  it('uses the fallback only for undefined', () => {
    expect(optionalDuration(undefined, 'x', 42)).toBe(42);
    expect(optionalDuration('1s', 'x', 42)).toBe(1000);
    expect(() => optionalDuration('nope', 'timeoutMs', 42)).toThrow(/timeoutMs/);
  });
});
