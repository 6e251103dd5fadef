// Reading a whole pack held in memory: its table of contents, and verification of the pack's own
// name (the SHA-256 of the file) and of each object. Used by `check --read-data` and by gc when it
// copies live objects out of a pack (gc never copies damage into a new pack).
import { SnapError } from '../core/errors.js';
import { sha256, toHex } from '../core/ids.js';
import { type CodecContext, decodeAndVerify, objectWhat, PLAIN } from './object-codec.js';
import { checkObjectClaim } from './limits.js';
import { decodePackHeader, PACK_MAGIC, type PackEntry, TRAILER_BYTES } from './pack.js';

/** The entries of a pack from its bytes; SNAP_CORRUPT when the trailer or header is damaged. */
export function entriesOfPack(bytes: Buffer, packId: string): PackEntry[] {
  const what = `pack ${packId.slice(0, 12)}`;
  if (bytes.length < TRAILER_BYTES) throw new SnapError('SNAP_CORRUPT', `${what} is truncated (${bytes.length} bytes)`);
  const trailer = bytes.subarray(bytes.length - TRAILER_BYTES);
  if (!trailer.subarray(4).equals(PACK_MAGIC)) throw new SnapError('SNAP_CORRUPT', `${what}: trailer magic is wrong (truncated or damaged)`);
  const hlen = trailer.readUInt32LE(0);
  if (hlen > bytes.length - TRAILER_BYTES) throw new SnapError('SNAP_CORRUPT', `${what}: header length ${hlen} is impossible`);
  const start = bytes.length - TRAILER_BYTES - hlen;
  return decodePackHeader(bytes.subarray(start, start + hlen), what, start);
}

export function packHashMatches(bytes: Buffer, packId: string): boolean {
  return toHex(sha256(bytes)) === packId;
}

/** The stored bytes of one entry. */
export function storedBytes(pack: Buffer, e: PackEntry): Buffer {
  return pack.subarray(e.offset, e.offset + e.length);
}

/**
 * Decompress and hash one object of a pack in memory; throws SNAP_CORRUPT on any mismatch.
 * `scratch`: a buffer zstd may decompress into (the bytes are not needed afterwards).
 */
export async function verifyEntry(pack: Buffer, e: PackEntry, packId: string, scratch?: Buffer, ctx: CodecContext = PLAIN): Promise<void> {
  checkObjectClaim(e.id, { ...e, pack: packId });
  await decodeAndVerify(storedBytes(pack, e), { id: e.id, codec: e.codec, rawLength: e.rawLength, what: objectWhat(e.id, packId) }, ctx, scratch);
}
