// Object ids: SHA-256 of an object's uncompressed bytes. node:crypto's one-shot hash runs at
// ~1,500 MB/s here against 82 MB/s for @noble/hashes (shared/bench-kit/RESULTS.md §3.1), so
// hashing of bulk data uses node:crypto.
import { createHash, hash as oneShot } from 'node:crypto';
import { SnapError } from './errors.js';

export const ID_BYTES = 32;

export function sha256(data: Uint8Array): Buffer {
  if (typeof oneShot === 'function') return oneShot('sha256', data, 'buffer') as Buffer;
  return createHash('sha256').update(data).digest();
}

export function toHex(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex');
}

const HEX_ID = /^[0-9a-f]{64}$/;

export function isHexId(s: string): boolean {
  return HEX_ID.test(s);
}

export function shortId(hex: string): string {
  return hex.slice(0, 8);
}

/**
 * Ids kept a while (a directory's chunk ids, until its tree is made) copied into shared slabs of
 * SLAB_IDS: a hash's digest is a Buffer of its own, about 300 bytes of heap and native memory for
 * its 32 bytes; a view of a slab is about 100. A slab stays while any id in it is used.
 */
export class IdSlab {
  private slab = Buffer.alloc(0);
  private at = 0;

  keep(id: Uint8Array): Buffer {
    if (this.at + ID_BYTES > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_IDS * ID_BYTES);
      this.at = 0;
    }
    const out = this.slab.subarray(this.at, (this.at += ID_BYTES));
    out.set(id);
    return out;
  }
}

const SLAB_IDS = 256;

/** Check that a decoded value is a 32-byte id. Repository data is untrusted input. */
export function asId(v: unknown, what: string): Buffer {
  if (v instanceof Uint8Array && v.byteLength === ID_BYTES) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new SnapError('SNAP_CORRUPT', `${what}: expected a 32-byte id`);
}

/** 128 random bits as hex, for repository ids, lock ids and temp names. */
export function randomHex(bytes = 16): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString('hex');
}
