/**
 * Reading a header list as undici hands it over (`rawHeaders`: name, value, name, value… as bytes),
 * without turning it into an object first: one header looked up by name, case-insensitively, in one
 * pass that compares lengths before bytes.
 */

/** True when `bytes` spell `lowerName` in any case (`lowerName` is lower-case ASCII). */
function isHeaderName(bytes: Buffer, lowerName: string): boolean {
  const length = lowerName.length;
  if (bytes.length !== length) return false;
  for (let i = 0; i < length; i++) {
    // ASCII letters differ from their lower case by 0x20 alone; other bytes must match as they are.
    const byte = bytes[i] as number;
    const lower = byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte;
    if (lower !== lowerName.charCodeAt(i)) return false;
  }
  return true;
}

/** The value of the first header named `name` in `raw` (read as latin1), or undefined. */
export function rawHeaderOf(raw: readonly Buffer[], name: string): string | undefined {
  const lowerName = name.toLowerCase();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (isHeaderName(raw[i] as Buffer, lowerName)) return (raw[i + 1] as Buffer).toString('latin1');
  }
  return undefined;
}
