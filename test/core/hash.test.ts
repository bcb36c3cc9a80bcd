import fc from 'fast-check';
// @ts-expect-error: the reference implementation ships no types
import reference from 'murmurhash3js-revisited';
import { describe, expect, it } from 'vitest';
import { hashKey, murmur3Bytes, murmur3String } from '../../src/core/hash.js';

const referenceHash = (bytes: Uint8Array, seed: number): number =>
  (reference as { x86: { hash32(bytes: Uint8Array, seed: number): number } }).x86.hash32(bytes, seed);

describe('murmur3 (x86, 32-bit)', () => {
  it('matches the published test vectors', () => {
    expect(murmur3String('', 0)).toBe(0);
    expect(murmur3String('', 1)).toBe(0x514e28b7);
    expect(murmur3String('hello', 0)).toBe(0x248bfa47);
    expect(murmur3String('The quick brown fox jumps over the lazy dog', 0)).toBe(0x2e4ff723);
  });

  it('agrees with the reference implementation on any string, ASCII or not', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 64 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (text, seed) => {
          const bytes = new Uint8Array(Buffer.from(text, 'utf8'));
          expect(murmur3String(text, seed)).toBe(referenceHash(bytes, seed));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('agrees with the reference implementation on bytes, and hashes a suffix without slicing', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(murmur3Bytes(bytes)).toBe(referenceHash(bytes, 0));
        expect(hashKey(bytes)).toBe(referenceHash(bytes, 0));
      }),
    );
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 32 }),
        fc.string({ maxLength: 8 }),
        (text, prefix) => {
          expect(murmur3String(prefix + text, 7, prefix.length)).toBe(murmur3String(text, 7));
        },
      ),
    );
  });
});
