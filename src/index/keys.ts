// Key layout of the LevelDB index (docs/format.md, "Index"). One byte of prefix per record kind.
export const K_OBJECT = 0x6f; // 'o' + object id (32 bytes)            -> [pack id, type, offset, length, rawLength, codec]
export const K_PACK = 0x70; // 'p' + pack id (32 bytes)                -> [size, object count]
export const K_SNAP = 0x73; // 's' + time (ISO UTC, 24 chars) + id hex  -> snapshot record bytes
export const K_SNAPID = 0x53; // 'S' + id hex                           -> time
export const K_FILE = 0x66; // 'f' + dir path + 0x00 + name            -> files-cache entry
//                             'f' + dir path + 0x01                   -> directory record (digest, tree id)
export const K_META = 0x6d; // 'm' + name                              -> value

export function key(prefix: number, ...parts: (Buffer | string)[]): Buffer {
  return Buffer.concat([Buffer.from([prefix]), ...parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p))]);
}

/** The range of keys that start with `k`. */
export function prefixRange(k: Buffer): { gte: Buffer; lt: Buffer } {
  const lt = Buffer.from(k);
  let i = lt.length - 1;
  while (i >= 0 && lt[i] === 0xff) i--;
  if (i < 0) return { gte: k, lt: Buffer.from([0xff, 0xff, 0xff, 0xff]) };
  lt[i]!++;
  return { gte: k, lt: lt.subarray(0, i + 1) };
}
