// Paths inside snapshots are bytes: Linux file names need not be UTF-8.
export function displayName(b: Uint8Array): string {
  // Lossy but unambiguous enough for messages: invalid sequences become U+FFFD.
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
}

export function joinPath(dir: Buffer, name: Buffer): Buffer {
  if (dir.length === 1 && dir[0] === 0x2f) return Buffer.concat([dir, name]);
  return Buffer.concat([dir, Buffer.from('/'), name]);
}

export function isAllZero(b: Uint8Array): boolean {
  // Compare in 64 KiB steps against a shared zero buffer: memcmp speed, no per-byte JS loop.
  for (let off = 0; off < b.length; off += ZERO.length) {
    const n = Math.min(ZERO.length, b.length - off);
    if (Buffer.compare(b.subarray(off, off + n), ZERO.subarray(0, n)) !== 0) return false;
  }
  return true;
}

const ZERO = Buffer.alloc(64 * 1024);
