import { describe, expect, it } from 'vitest';
import { newRequestId } from '../../src/proxy/requestIds.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('request ids', () => {
  it('look like version 4 UUIDs and never repeat, across blocks', () => {
    const seen = new Set<string>();
    const blocks = new Set<string>();
    // Three blocks and more: a block serves 65,536 ids.
    for (let i = 0; i < 200_000; i++) {
      const id = newRequestId();
      expect(UUID_V4.test(id)).toBe(true);
      seen.add(id);
      blocks.add(id.slice(0, 32));
    }
    expect(seen.size).toBe(200_000);
    expect(blocks.size).toBeGreaterThanOrEqual(3);
  });

  it('count up within a block and draw fresh random bits for the next', () => {
    const first = newRequestId();
    const second = newRequestId();
    if (second.slice(0, 32) === first.slice(0, 32)) {
      expect(Number.parseInt(second.slice(32), 16)).toBe(Number.parseInt(first.slice(32), 16) + 1);
    }
    let last = second;
    let id = newRequestId();
    while (id.slice(0, 32) === last.slice(0, 32)) {
      last = id;
      id = newRequestId();
    }
    expect(id.slice(32)).toBe('0000');
    expect(last.slice(32)).toBe('ffff');
  });
});
