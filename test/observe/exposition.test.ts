import { describe, expect, it } from 'vitest';
import { Exposition, escapeLabel, formatValue } from '../../src/observe/exposition.js';

describe('Prometheus exposition', () => {
  it('writes HELP, TYPE and labelled samples, escaping label values', () => {
    const out = new Exposition();
    out.family('m_total', 'counter', 'Things.', [
      [{ a: 'x"y', b: 'back\\slash' }, 3],
      [{}, Number.POSITIVE_INFINITY],
    ]);
    expect(out.toString()).toBe(
      '# HELP m_total Things.\n# TYPE m_total counter\nm_total{a="x\\"y",b="back\\\\slash"} 3\nm_total +Inf\n',
    );
  });

  it.each([
    [Number.NaN, 'NaN'],
    [Number.NEGATIVE_INFINITY, '-Inf'],
    [0.25, '0.25'],
  ])('formats %s as %s', (value, text) => {
    expect(formatValue(value)).toBe(text);
  });

  it('escapes newlines in label values', () => {
    expect(escapeLabel('a\nb')).toBe('a\\nb');
  });
});
