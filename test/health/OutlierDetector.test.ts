import { describe, expect, it } from 'vitest';
import { OutlierDetector, type OutlierOptions } from '../../src/health/OutlierDetector.js';
import { ManualClock } from '../helpers/clock.js';

function detector(ids: string[], options: OutlierOptions = {}) {
  const clock = new ManualClock();
  const outliers = new OutlierDetector({ clock, ...options });
  for (const id of ids) outliers.add(id);
  const events: string[] = [];
  outliers.on('endpoint:ejected', ({ id, reason, ejectionMs }) =>
    events.push(`ejected ${id} ${reason} ${ejectionMs}`),
  );
  outliers.on('endpoint:restored', ({ id }) => events.push(`restored ${id}`));
  return { clock, outliers, events };
}

const times = (n: number, fn: () => void) => {
  for (let i = 0; i < n; i++) fn();
};

describe('OutlierDetector', () => {
  it('ejects on the report that meets the threshold, not before, and not after a success in between', () => {
    const { outliers, events } = detector(['a', 'b'], { maxEjectionPercent: 50 });
    times(4, () => outliers.report('a', 500));
    outliers.report('a', 200);
    times(4, () => outliers.report('a', 500));
    expect(outliers.isEjected('a')).toBe(false);
    outliers.report('a', 500);
    expect(outliers.isEjected('a')).toBe(true); // at once, no sweep needed
    expect(events).toEqual(['ejected a consecutive-5xx 30000']);
  });

  it('names the trigger: gateway errors, local-origin failures, 5xx', () => {
    const gateway = detector(['a', 'b'], { consecutiveGatewayErrors: 3 });
    times(3, () => gateway.outliers.report('a', 503));
    expect(gateway.events).toEqual(['ejected a consecutive-gateway-errors 30000']);
    const { outliers, events } = detector(['b', 'c'], { maxEjectionPercent: 100 });
    times(5, () => outliers.report('b', 'connect-failure')); // counts for all three; local is named
    times(2, () => outliers.report('c', 'timeout'));
    times(2, () => outliers.report('c', 'reset'));
    outliers.report('c', 500); // a response: ends the local and gateway runs, continues the 5xx run
    expect(events).toEqual(['ejected b consecutive-local-failures 30000', 'ejected c consecutive-5xx 30000']);
  });

  it('can watch local-origin failures alone', () => {
    const { outliers, events } = detector(['a'], { consecutive5xx: false, consecutiveGatewayErrors: false });
    times(10, () => outliers.report('a', 503));
    expect(outliers.isEjected('a')).toBe(false);
    times(5, () => outliers.report('a', 'reset'));
    expect(events).toEqual(['ejected a consecutive-local-failures 30000']);
  });

  it('restores after base × ejections, growing up to the cap, and decays the multiplier while healthy', () => {
    const { clock, outliers, events } = detector(['a'], {
      baseEjectionMs: '30s',
      maxEjectionMs: '70s',
      intervalMs: '10s',
    });
    const eject = () => times(5, () => outliers.report('a', 502));
    eject();
    clock.advance(29_999);
    expect(outliers.isEjected('a')).toBe(true);
    clock.advance(1);
    expect(outliers.isEjected('a')).toBe(false);
    eject(); // second in a row, right after coming back: 60 s
    clock.advance(60_000);
    eject(); // third: 90 s, capped at 70 s
    clock.advance(70_000);
    expect(events).toEqual([
      'ejected a consecutive-gateway-errors 30000',
      'restored a',
      'ejected a consecutive-gateway-errors 60000',
      'restored a',
      'ejected a consecutive-gateway-errors 70000',
      'restored a',
    ]);
    expect(outliers.ejections('a')).toBe(3);
    clock.advance(20_000); // two sweeps while healthy
    expect(outliers.ejections('a')).toBe(1);
  });

  it('ejects at most maxEjectionPercent of the endpoints, but always at least one', () => {
    const ids = Array.from({ length: 10 }, (_, i) => `e${i}`);
    const { outliers } = detector(ids, { maxEjectionPercent: 20 });
    for (const id of ids) times(5, () => outliers.report(id, 500));
    expect(outliers.ejectedCount).toBe(2);
    const small = detector(['a', 'b', 'c'], { maxEjectionPercent: 10 });
    for (const id of ['a', 'b', 'c']) times(5, () => small.outliers.report(id, 500));
    expect(small.outliers.ejectedCount).toBe(1);
  });

  it('ejects by success rate: below mean − 1.9 × stdev among hosts with enough requests', () => {
    const ids = ['a', 'b', 'c', 'd', 'e', 'f'];
    const { clock, outliers, events } = detector(ids, {
      consecutive5xx: false,
      consecutiveGatewayErrors: false,
      successRate: { minimumHosts: 5, requestVolume: 100 },
      maxEjectionPercent: 50,
    });
    for (const id of ids) {
      for (let i = 0; i < 100; i++) {
        const failing = id === 'f' ? i % 2 === 0 : i % 50 === 0; // f: 50 %; others: 98 %
        outliers.report(id, failing ? 500 : 200);
      }
    }
    outliers.report('a', 200);
    clock.advance(10_000);
    expect(events).toEqual(['ejected f success-rate 30000']);
  });

  it('skips success-rate analysis without enough hosts or volume', () => {
    const { clock, outliers, events } = detector(['a', 'b'], {
      successRate: { minimumHosts: 5, requestVolume: 10 },
      consecutive5xx: false,
      consecutiveGatewayErrors: false,
    });
    times(10, () => outliers.report('a', 200));
    times(10, () => outliers.report('b', 500));
    clock.advance(10_000);
    expect(events).toEqual([]);
  });

  it('forgets removed endpoints and leaves no timer after close', () => {
    const { clock, outliers } = detector(['a', 'b'], { maxEjectionPercent: 100 });
    times(5, () => outliers.report('a', 500));
    outliers.remove('a');
    expect(outliers.ejectedCount).toBe(0);
    outliers.report('a', 500); // unknown: ignored
    times(5, () => outliers.report('b', 500));
    outliers.close();
    expect(clock.pending).toBe(0);
  });

  it.each([
    [{ consecutive5xx: 0 }, /consecutive5xx must be an integer >= 1/],
    [{ maxEjectionPercent: 101 }, /maxEjectionPercent must be a finite number >= 0 <= 100/],
    [{ baseEjectionMs: '1m', maxEjectionMs: '10s' }, /maxEjectionMs must be >= baseEjectionMs/],
    [{ intervalMs: 0 }, /intervalMs must be > 0/],
    [{ successRate: { stdevFactor: -1 } }, /successRate.stdevFactor must be a finite number >= 0/],
    [{ consecutive: 5 }, /OutlierDetector: unknown option "consecutive"/],
  ])('rejects %j', (options, message) => {
    expect(() => new OutlierDetector(options as never)).toThrow(message);
  });
});
