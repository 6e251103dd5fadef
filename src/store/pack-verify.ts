// Reading a whole pack held in memory: its table of contents, and verification of the pack's own
// name (the SHA-256 of the file; for a sealed pack, its segments' tags) and of each object. Used by `check --read-data` and by gc when it
// copies live objects out of a pack (gc never copies damage into a new pack).
import { SnapError } from '../core/errors.js';
import { sha256, toHex } from '../core/ids.js';
import { type CodecContext, decodeAndVerify, decodeAndVerifySync, objectWhat, PLAIN } from './object-codec.js';
import { checkObjectClaim } from './limits.js';
import { decodePackHeader, PACK_MAGIC, type PackEntry, TRAILER_BYTES } from './pack.js';

/** Where a pack's header is in its bytes; SNAP_CORRUPT when the trailer is damaged. */
function headerOfPack(bytes: Buffer, packId: string): { header: Buffer; start: number } {
  const what = `pack ${packId.slice(0, 12)}`;
  if (bytes.length < TRAILER_BYTES) throw new SnapError('SNAP_CORRUPT', `${what} is truncated (${bytes.length} bytes)`);
  const trailer = bytes.subarray(bytes.length - TRAILER_BYTES);
  if (!trailer.subarray(4).equals(PACK_MAGIC)) throw new SnapError('SNAP_CORRUPT', `${what}: trailer magic is wrong (truncated or damaged)`);
  const hlen = trailer.readUInt32LE(0);
  if (hlen > bytes.length - TRAILER_BYTES) throw new SnapError('SNAP_CORRUPT', `${what}: header length ${hlen} is impossible`);
  const start = bytes.length - TRAILER_BYTES - hlen;
  return { header: bytes.subarray(start, start + hlen), start };
}

/** The entries of a pack's header, as headerOfPack found it; SNAP_CORRUPT when it is damaged. */
export function entriesOfHeader(header: Uint8Array, start: number, packId: string): PackEntry[] {
  return decodePackHeader(header, `pack ${packId.slice(0, 12)}`, start);
}

/** The entries of a pack from its bytes; SNAP_CORRUPT when the trailer or header is damaged. */
export function entriesOfPack(bytes: Buffer, packId: string): PackEntry[] {
  const { header, start } = headerOfPack(bytes, packId);
  return entriesOfHeader(header, start, packId);
}

/**
 * Whether a pack read whole is the pack its name names. Unsealed: its bytes hash to the name.
 * `opened`: it was sealed (an encrypted repository) and opened whole, `damaged` of its segments
 * failing their tags; it is then intact when every segment opened: AES-GCM with the pack's name as
 * associated data (docs/format.md, "Sealed blobs") proves each byte is what the repository's key
 * sealed under that name, which its plaintext's SHA-256 would only repeat (a fifth of a check
 * thread's work: docs/performance.md, "check --read-data: sealed packs").
 */
export function packIntact(bytes: Buffer, packId: string, opened?: { damaged: number }): boolean {
  return opened ? opened.damaged === 0 : toHex(sha256(bytes)) === packId;
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

/** verifyEntry on the calling thread (the check threads: store/verify-worker.ts). */
export function verifyEntrySync(pack: Buffer, e: PackEntry, packId: string, scratch?: Buffer, ctx: CodecContext = PLAIN): void {
  checkObjectClaim(e.id, { ...e, pack: packId });
  decodeAndVerifySync(storedBytes(pack, e), { id: e.id, codec: e.codec, rawLength: e.rawLength, what: objectWhat(e.id, packId) }, ctx, scratch);
}

/**
 * What reading a whole pack found: the pack's name, its header, and each object. The header
 * comes as bytes (a copy), not entries: a thread hands this back, and a copy of a few KB costs
 * far less than cloning thousands of entry objects.
 */
export interface PackVerdict {
  /** The pack's size (opened, in an encrypted repository). */
  size: number;
  /** The pack's bytes hash to its name (a sealed pack: every segment opened under its name). */
  intact: boolean;
  /** Its header (entriesOfHeader), unless it could not be read (then `headerError`). */
  header?: { bytes: Uint8Array; start: number };
  headerError?: string;
  /** The entries (by index) that failed their verification, with why. */
  failures: Array<{ index: number; message: string }>;
}

/** The largest object decompressed into a reused buffer (chunks are at most 8 MiB by default). */
const MAX_SCRATCH = 64 * 1024 * 1024;

/** The largest whole-pack buffer a verifier keeps for its next pack (packs are 16 MiB by default); a larger pack gets a buffer of its own, let go after it. */
export const MAX_KEPT_PACK_BYTES = 256 * 1024 * 1024;

/**
 * Verify a whole pack in memory: its name (packIntact, with `opened` as there), its header, then
 * every object it holds (decoded and checked against its id). `scratch` is reused for objects up
 * to 64 MiB and returned, grown.
 */
export function verifyPackSync(bytes: Buffer, packId: string, ctx: CodecContext, scratch: Buffer, opened?: { damaged: number }): { verdict: PackVerdict; scratch: Buffer } {
  const intact = packIntact(bytes, packId, opened);
  let entries: PackEntry[];
  let header: PackVerdict['header'];
  try {
    const h = headerOfPack(bytes, packId);
    entries = entriesOfHeader(h.header, h.start, packId);
    header = { bytes: Uint8Array.prototype.slice.call(h.header), start: h.start };
  } catch (e) {
    return { verdict: { size: bytes.length, intact, headerError: e instanceof Error ? e.message : String(e), failures: [] }, scratch };
  }
  const maxRaw = entries.reduce((m, e) => Math.max(m, e.rawLength), 0);
  if (scratch.length < maxRaw && maxRaw <= MAX_SCRATCH) scratch = Buffer.allocUnsafe(maxRaw);
  const failures: PackVerdict['failures'] = [];
  entries.forEach((e, index) => {
    try {
      verifyEntrySync(bytes, e, packId, scratch, ctx);
    } catch (err) {
      failures.push({ index, message: err instanceof Error ? err.message : String(err) });
    }
  });
  return { verdict: { size: bytes.length, intact, header, failures }, scratch };
}
