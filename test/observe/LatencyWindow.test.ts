import { describe, expect, it } from 'vitest';
import { LatencyWindow } from '../../src/observe/LatencyWindow.js';
import { ManualClock } from '../helpers/clock.js';

describe('LatencyWindow', () => {
  it('estimates percentiles of a large window within a few percent', () => {
    const clock = new ManualClock();
    const window = new LatencyWindow(60_000, clock);
    // 300,000 samples spread evenly over 0–999 ms.
    for (let i = 0; i < 300_000; i++) {
      window.record((i * 7919) % 1000, clock.now());
      clock.advance(0.1);
    }
    const summary = window.summary();
    expect(summary.count).toBe(300_000);
    expect(summary.p50).toBeGreaterThan(470);
    expect(summary.p50).toBeLessThan(530);
    expect(summary.p95).toBeGreaterThan(920);
    expect(summary.p95).toBeLessThan(980);
    expect(summary.p99).toBeGreaterThan(970);
    expect(summary.rps).toBeCloseTo(10_000, 0);
  });

  it('forgets what is older than two windows', () => {
    const clock = new ManualClock();
    const window = new LatencyWindow(1000, clock);
    for (let i = 0; i < 100; i++) window.record(500, clock.now());
    clock.advance(1000);
    for (let i = 0; i < 100; i++) window.record(10, clock.now());
    expect(window.summary().count).toBe(200); // this window and the last
    clock.advance(1000);
    expect(window.summary()).toMatchObject({ count: 100, p99: 10 }); // the 500s are gone
    clock.advance(2000);
    expect(window.summary()).toEqual({ p50: 0, p95: 0, p99: 0, rps: 0, count: 0 });
  });
});
