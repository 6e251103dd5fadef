// The deterministic file contents of the format test vectors (test/vectors/README.md), shared by
// the generator and the tests so both describe the same bytes.

/** xorshift32: x ^= x << 13; x ^= x >>> 17; x ^= x << 5 (all mod 2^32); each step yields x & 0xff. */
export function xorshift32(seed: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  let x = seed >>> 0;
  for (let i = 0; i < length; i++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    b[i] = x & 0xff;
  }
  return b;
}

export type Content = { text: string } | { xorshift32: number; length: number } | { zeros: number } | { concat: Content[] };

export function contentBytes(c: Content): Buffer {
  if ('text' in c) return Buffer.from(c.text, 'utf8');
  if ('xorshift32' in c) return xorshift32(c.xorshift32, c.length);
  if ('zeros' in c) return Buffer.alloc(c.zeros);
  return Buffer.concat(c.concat.map(contentBytes));
}
