/**
 * MurmurHash3, x86 32-bit variant (Austin Appleby's reference `MurmurHash3_x86_32`), over the UTF-8
 * bytes of a string or over raw bytes. Output matches the reference implementation bit for bit (the
 * tests compare it with `murmurhash3js-revisited`).
 *
 * Written here rather than taken from a package because the hash sits on the pick path of the hash
 * balancers: ASCII strings are hashed straight from their char codes, with no encoding step, no
 * input-validation pass and no allocation; other strings are encoded into one reused buffer.
 * O(length of the key).
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

let scratch = Buffer.allocUnsafe(256);

function mixBlock(h: number, block: number): number {
  let k = Math.imul(block, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function mixTail(h: number, tail: number): number {
  let k = Math.imul(tail, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  return h ^ k;
}

function finish(h: number, length: number): number {
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3 x86_32 of `bytes[0..length)`. */
export function murmur3Bytes(bytes: Uint8Array, seed = 0, length = bytes.length): number {
  let h = seed | 0;
  const blocks = length & ~3;
  for (let i = 0; i < blocks; i += 4) {
    h = mixBlock(
      h,
      (bytes[i] as number) |
        ((bytes[i + 1] as number) << 8) |
        ((bytes[i + 2] as number) << 16) |
        ((bytes[i + 3] as number) << 24),
    );
  }
  const rest = length & 3;
  if (rest !== 0) {
    let tail = 0;
    if (rest === 3) tail ^= (bytes[blocks + 2] as number) << 16;
    if (rest >= 2) tail ^= (bytes[blocks + 1] as number) << 8;
    tail ^= bytes[blocks] as number;
    h = mixTail(h, tail);
  }
  return finish(h, length);
}

/**
 * MurmurHash3 x86_32 of the UTF-8 encoding of `text.slice(start)`, without making the slice.
 * @param start index of the first character to hash
 */
export function murmur3String(text: string, seed = 0, start = 0): number {
  const end = text.length;
  let h = seed | 0;
  let i = start;
  // ASCII fast path: one byte per char code, four per block.
  for (; i + 4 <= end; i += 4) {
    const a = text.charCodeAt(i);
    const b = text.charCodeAt(i + 1);
    const c = text.charCodeAt(i + 2);
    const d = text.charCodeAt(i + 3);
    if ((a | b | c | d) > 0x7f) return murmur3Utf8(text, seed, start);
    h = mixBlock(h, a | (b << 8) | (c << 16) | (d << 24));
  }
  const rest = end - i;
  if (rest !== 0) {
    let tail = 0;
    for (let j = rest - 1; j >= 0; j--) {
      const code = text.charCodeAt(i + j);
      if (code > 0x7f) return murmur3Utf8(text, seed, start);
      tail = (tail << 8) | code;
    }
    h = mixTail(h, tail);
  }
  return finish(h, end - start);
}

function murmur3Utf8(text: string, seed: number, start: number): number {
  const needed = (text.length - start) * 3;
  if (scratch.length < needed) scratch = Buffer.allocUnsafe(Math.max(needed, scratch.length * 2));
  const length = scratch.write(start === 0 ? text : text.slice(start), 0, 'utf8');
  return murmur3Bytes(scratch, seed, length);
}

/** Hashes a pick key given as a string or bytes. */
export function hashKey(key: string | Uint8Array, seed = 0): number {
  return typeof key === 'string' ? murmur3String(key, seed) : murmur3Bytes(key, seed);
}
