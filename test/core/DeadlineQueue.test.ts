import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type DeadlineItem, DeadlineQueue } from '../../src/core/DeadlineQueue.js';
import { ManualClock } from '../helpers/clock.js';

function item(name: string, expired: string[]): DeadlineItem {
  return {
    deadlineAt: 0,
    deadlinePrev: undefined,
    deadlineNext: undefined,
    expire: () => expired.push(name),
  };
}

describe('DeadlineQueue', () => {
  it('expires each item exactly ms after it was added, on one timer', () => {
    const clock = new ManualClock(1_000);
    const queue = new DeadlineQueue(100, clock);
    const expired: string[] = [];
    const a = item('a', expired);
    const b = item('b', expired);
    const c = item('c', expired);
    queue.add(a);
    clock.advance(30);
    queue.add(b);
    clock.advance(30);
    queue.add(c);
    queue.remove(b); // answered in time
    expect(clock.pending).toBe(1);
    clock.advance(39);
    expect(expired).toEqual([]);
    clock.advance(1); // 100 ms after a
    expect(expired).toEqual(['a']);
    clock.advance(59);
    expect(expired).toEqual(['a']);
    clock.advance(1); // 100 ms after c
    expect(expired).toEqual(['a', 'c']);
    expect(clock.pending).toBe(0);
  });

  it('expires exactly the items not removed in time, each at its deadline (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            gap: fc.integer({ min: 0, max: 50 }),
            removeAfter: fc.option(fc.integer({ min: 0, max: 150 })),
          }),
          { maxLength: 40 },
        ),
        (plan) => {
          const clock = new ManualClock(1);
          const queue = new DeadlineQueue(100, clock);
          const items = plan.map((step, i) => ({
            addAt: 1 + plan.slice(0, i + 1).reduce((sum, s) => sum + s.gap, 0),
            removeAfter: step.removeAfter,
            expiredAt: undefined as number | undefined,
            node: undefined as DeadlineItem | undefined,
          }));
          const end = (items.at(-1)?.addAt ?? 1) + 300;
          // One millisecond at a time: adds and removals due now happen before the timer's turn.
          for (let t = 1; t <= end; t++) {
            for (const entry of items) {
              if (entry.addAt === t) {
                entry.node = {
                  deadlineAt: 0,
                  deadlinePrev: undefined,
                  deadlineNext: undefined,
                  expire: () => {
                    entry.expiredAt = clock.now();
                  },
                };
                queue.add(entry.node);
              }
              if (
                entry.node !== undefined &&
                entry.removeAfter !== null &&
                entry.addAt + entry.removeAfter === t
              )
                queue.remove(entry.node);
            }
            clock.advance(1);
          }
          for (const entry of items) {
            if (entry.removeAfter !== null && entry.removeAfter < 100)
              expect(entry.expiredAt).toBeUndefined();
            else expect(entry.expiredAt).toBe(entry.addAt + 100);
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
