import { describe, expect, it } from 'vitest';
import { checkKnownOptions, checkNumber, optionalFunction, optionalNumber } from '../../src/core/validate.js';

describe('option validation', () => {
  it.each([
    [5, {}, 5],
    [0, { min: 0 }, 0],
    [3, { integer: true, max: 3 }, 3],
    [1.5, { above: 1 }, 1.5],
    [Number.POSITIVE_INFINITY, { min: 1, max: Number.POSITIVE_INFINITY }, Number.POSITIVE_INFINITY],
  ])('accepts %j under %j', (value, rule, expected) => {
    expect(checkNumber(value, 'opt', rule)).toBe(expected);
  });

  it.each([
    ['5', {}, TypeError, 'timeoutMs must be a finite number, got "5"'],
    [Number.NaN, {}, TypeError, 'timeoutMs must be a finite number, got NaN'],
    [-1, { min: 0 }, RangeError, 'timeoutMs must be a finite number >= 0, got -1'],
    [1.5, { integer: true }, RangeError, 'timeoutMs must be an integer, got 1.5'],
    [1, { above: 1 }, RangeError, 'timeoutMs must be a finite number > 1, got 1'],
    [Number.POSITIVE_INFINITY, {}, RangeError, 'timeoutMs must be a finite number, got Infinity'],
  ])('rejects %j under %j with a message naming the option', (value, rule, type, message) => {
    expect(() => checkNumber(value, 'timeoutMs', rule)).toThrow(type);
    expect(() => checkNumber(value, 'timeoutMs', rule)).toThrow(message);
  });

  it('fills defaults only for undefined', () => {
    expect(optionalNumber(undefined, 'x', 7)).toBe(7);
    expect(() => optionalNumber(null, 'x', 7)).toThrow(/x must be/);
    const fallback = () => 0.5;
    expect(optionalFunction(undefined, 'random', fallback)).toBe(fallback);
    expect(() => optionalFunction('no', 'random', fallback)).toThrow('random must be a function, got "no"');
  });

  it('refuses unknown option names, listing the known ones', () => {
    expect(() => checkKnownOptions({ timeout: 1 }, ['timeoutMs'], 'HealthMonitor')).toThrow(
      'HealthMonitor: unknown option "timeout" (known options: timeoutMs)',
    );
    expect(() => checkKnownOptions({ timeoutMs: 1 }, ['timeoutMs'], 'HealthMonitor')).not.toThrow();
  });
});
