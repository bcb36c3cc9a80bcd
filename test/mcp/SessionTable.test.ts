import { describe, expect, it } from 'vitest';
import { SessionTable } from '../../src/mcp/SessionTable.js';
import { ManualClock } from '../helpers/clock.js';

describe('SessionTable', () => {
  it('forgets a session idle for idleMs, and a read refreshes it', () => {
    const clock = new ManualClock(1_000); // not 0: lru-cache takes a start time of 0 for "never set"
    const table = new SessionTable<string>({ maxSessions: 10, idleMs: 1000, clock });
    table.set('s1', 'a', 'data');
    table.set('s2', 'b', 'other');
    clock.advance(600);
    expect(table.get('s1')).toEqual({ endpointId: 'a', data: 'data' });
    clock.advance(600);
    expect(table.get('s1')?.endpointId).toBe('a'); // read at 600: idle for 600 only
    expect(table.get('s2')).toBeUndefined(); // idle for 1,200
  });

  it('keeps at most maxSessions, dropping the least recently used', () => {
    const table = new SessionTable({ maxSessions: 2, idleMs: 60_000, clock: new ManualClock() });
    table.set('s1', 'a', undefined);
    table.set('s2', 'a', undefined);
    table.get('s1');
    table.set('s3', 'b', undefined);
    expect([table.get('s1')?.endpointId, table.get('s2'), table.get('s3')?.endpointId]).toEqual([
      'a',
      undefined,
      'b',
    ]);
    expect(table.size).toBe(2);
  });

  it('counts sessions per endpoint, ignoring endpoints not asked about', () => {
    const table = new SessionTable({ maxSessions: 10, idleMs: 60_000, clock: new ManualClock() });
    for (const [id, endpoint] of [
      ['1', 'a'],
      ['2', 'a'],
      ['3', 'gone'],
    ] as const)
      table.set(id, endpoint, undefined);
    table.delete('2');
    expect(table.countFor([{ id: 'a' }, { id: 'b' }])).toEqual({ a: 1, b: 0 });
  });
});
