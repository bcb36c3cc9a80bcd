import { describe, expect, it } from 'vitest';
import { IdleSweeper } from '../../src/proxy/IdleSweeper.js';
import { ManualClock } from '../helpers/clock.js';

describe('IdleSweeper', () => {
  it('cuts a stream whose last activity is older than idleMs, within a quarter of it', () => {
    const clock = new ManualClock();
    const sweeper = new IdleSweeper(1000, clock);
    const cut: string[] = [];
    const busy = sweeper.watch(() => cut.push('busy'));
    sweeper.watch(() => cut.push('quiet'));
    for (let t = 0; t < 4; t++) {
      clock.advance(250);
      busy.lastActivity = clock.now();
    }
    expect(cut).toEqual(['quiet']);
    clock.advance(1250);
    expect(cut).toEqual(['quiet', 'busy']);
    expect(clock.pending).toBe(0); // nothing watched: no timer left
  });

  it('cuts nothing and runs no timer when idleMs is 0 (the timeout off)', () => {
    const clock = new ManualClock();
    const sweeper = new IdleSweeper(0, clock);
    let cut = 0;
    const watched = sweeper.watch(() => cut++);
    sweeper.watchRelay({ destroy: () => cut++ }, { bytesRelayed: 0 });
    expect(clock.pending).toBe(0);
    clock.advance(3_600_000);
    expect(cut).toBe(0);
    sweeper.unwatch(watched); // unwatching what was never linked is harmless
    expect(clock.pending).toBe(0);
  });

  it('reads a progress counter instead, so the stream does no work per chunk', () => {
    const clock = new ManualClock();
    const sweeper = new IdleSweeper(1000, clock);
    let bytes = 0;
    let cut = false;
    const watched = sweeper.watch(
      () => {
        cut = true;
      },
      () => bytes,
    );
    for (let t = 0; t < 20; t++) {
      bytes += 10;
      clock.advance(250);
    }
    expect(cut).toBe(false); // moving for 5 s with a 1 s timeout
    clock.advance(1500);
    expect(cut).toBe(true); // stalled
    sweeper.unwatch(watched);
  });

  it('stops watching on unwatch() and on close()', () => {
    const clock = new ManualClock();
    const sweeper = new IdleSweeper(1000, clock);
    let cuts = 0;
    const entry = sweeper.watch(() => cuts++);
    sweeper.unwatch(entry);
    sweeper.watch(() => cuts++);
    sweeper.close();
    clock.advance(5000);
    expect(cuts).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it("watches an entry of the caller's own making, and calls its onIdle as a method", () => {
    const clock = new ManualClock();
    const sweeper = new IdleSweeper(1000, clock);
    const entry = {
      lastActivity: -1,
      lastProgress: 0,
      prev: undefined,
      next: undefined,
      cuts: 0,
      onIdle() {
        this.cuts++;
      },
    };
    clock.advance(500);
    sweeper.track(entry);
    expect(entry.lastActivity).toBe(clock.now());
    clock.advance(750);
    expect(entry.cuts).toBe(0);
    clock.advance(500);
    expect(entry.cuts).toBe(1);
    expect(clock.pending).toBe(0);
  });
});
