import { describe, expect, it } from 'vitest';
import { PeakEwma } from '../../src/core/PeakEwma.js';
import { ManualClock } from '../helpers/clock.js';

describe('PeakEwma', () => {
  it('jumps to a higher sample at once and is pulled down by lower ones in time', () => {
    const clock = new ManualClock();
    const ewma = new PeakEwma({ decayMs: '1s', clock });
    expect(ewma.value).toBe(0);
    ewma.observe(100);
    expect(ewma.value).toBe(100);
    ewma.observe(300);
    expect(ewma.value).toBe(300);
    clock.advance(1000);
    ewma.observe(100);
    // 300 × e^-1 + 100 × (1 − e^-1)
    expect(ewma.value).toBeCloseTo(300 * Math.exp(-1) + 100 * (1 - Math.exp(-1)), 9);
  });

  it('decays towards zero while no samples arrive, and reading does not change it', () => {
    const clock = new ManualClock();
    const ewma = new PeakEwma({ decayMs: 1000, clock });
    ewma.observe(200);
    clock.advance(500);
    const first = ewma.value;
    expect(first).toBeCloseTo(200 * Math.exp(-0.5), 9);
    expect(ewma.value).toBe(first);
    clock.advance(10_000);
    expect(ewma.value).toBeLessThan(0.01);
  });

  it('rejects a non-positive decay naming the option', () => {
    expect(() => new PeakEwma({ decayMs: 0 })).toThrow(/decayMs/);
    expect(() => new PeakEwma({ decayMs: 'soon' as never })).toThrow(/decayMs must be a duration/);
  });
});
