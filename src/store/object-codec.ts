// The one place where an object's stored bytes become its content and back. Every reader goes
// through decodeAndVerify (or its synchronous twin): ObjectStore.get and readObjectAt (restore,
// export, ls, diff, ...), the restore writer threads (ops/restore/worker.ts), and the whole-pack
// readers of check --read-data, repair and gc's pack rewriter (pack-verify.ts). Every writer goes
// through encodeObject / encodeObjectSync (the object store and its compression threads,
// store/compress-worker.ts).
//
// The encryption seam (docs/design.md, "Object codec"): an object is stored as
//     stored = seal(ctx, compress(raw))          id = objectId(ctx, raw)
// Today the repository stores objects in the clear, so `seal`/`open` are the identity and the id
// is SHA-256 of the content. An encryption layer changes exactly openStored/sealStored (AEAD open
// and seal of the stored bytes) and objectId (a keyed hash), and puts its keys into CodecContext; nothing else in the readers or writers changes.
// A CodecContext is plain data (structured-cloneable), so worker threads receive the same one.
import { SnapError } from '../core/errors.js';
import { sha256, toHex } from '../core/ids.js';
import { hmacSha256 } from '../core/crypto.js';
import type { CodecName } from '../model/config.js';
import { type Compressed, compress, compressSync, CODEC_RAW, CODEC_ZSTD, decompress, decompressSync } from './codec.js';

/**
 * What decoding and encoding need besides the bytes. Empty while objects are stored in the clear;
 * the encryption layer adds its keys here (and must keep it structured-cloneable: worker threads
 * get a copy through workerData).
 */
export interface CodecContext {
  /**
   * Encrypted repositories (format 2): the secret id key; object ids are HMAC-SHA256 under it. The
   * stored bytes themselves are sealed and opened below this layer, whole blobs at a time
   * (backend/encrypted.ts), so openStored/sealStored stay the identity.
   */
  readonly idKey?: Uint8Array;
}

/** The context of a repository that stores objects in the clear (every repository today). */
export const PLAIN: CodecContext = Object.freeze({});

/** What a stored object claims to be: the index or pack header entry it was found by. */
export interface ObjectClaim {
  /** The id the decoded content must have. */
  id: Buffer;
  codec: number;
  rawLength: number;
  /** For messages: "object … (in pack …)". */
  what: string;
}

/** "object … (in pack …)", as every reader names an object in its messages. */
export function objectWhat(id: Uint8Array, pack: string): string {
  return `object ${toHex(id).slice(0, 16)} (in pack ${pack.slice(0, 12)})`;
}

/** Bytes of an object id (either kind). */
export const ID_BYTES = 32;

/** The id of an object's content. Keyed ids (encryption) are computed here. */
export function objectId(raw: Uint8Array, ctx: CodecContext = PLAIN): Buffer {
  return ctx.idKey ? hmacSha256(ctx.idKey, raw) : sha256(raw);
}

/** Stored bytes to the compressed form (encryption: AEAD open; id as associated data). */
function openStored(stored: Buffer, _claim: ObjectClaim, _ctx: CodecContext): Buffer {
  return stored;
}

/** Compressed form to stored bytes (encryption: AEAD seal). */
function sealStored(c: Compressed, _ctx: CodecContext): Compressed {
  return c;
}

function verify(raw: Buffer, claim: ObjectClaim, ctx: CodecContext): Buffer {
  if (!objectId(raw, ctx).equals(claim.id)) throw new SnapError('SNAP_CORRUPT', `${claim.what} failed verification: its content does not match its id`);
  return raw;
}

/**
 * The content of a stored object, checked against everything its claim says: codec, declared and
 * actual size, and id. Throws SNAP_CORRUPT on any mismatch. `scratch`: zstd may decompress into it
 * (the result is then a view of it, valid until the buffer is reused).
 */
export async function decodeAndVerify(stored: Buffer, claim: ObjectClaim, ctx: CodecContext = PLAIN, scratch?: Buffer): Promise<Buffer> {
  const raw = await decompress(claim.codec, openStored(stored, claim, ctx), claim.rawLength, claim.what, scratch);
  return verify(raw, claim, ctx);
}

/** decodeAndVerify on the calling thread (the restore writer threads; deflate inflates synchronously). */
export function decodeAndVerifySync(stored: Buffer, claim: ObjectClaim, ctx: CodecContext = PLAIN, scratch?: Buffer): Buffer {
  const raw = decompressSync(claim.codec, openStored(stored, claim, ctx), claim.rawLength, claim.what, scratch);
  return verify(raw, claim, ctx);
}

/**
 * Codecs worth unpacking on a writer thread: zstd and raw. Deflate (older repositories) is
 * unpacked on libuv's pool by decodeAndVerify instead, which overlaps better with the main thread.
 */
export function decodesOnWorker(codec: number): boolean {
  return codec === CODEC_RAW || codec === CODEC_ZSTD;
}

/**
 * An object's stored form: compressed when that saves enough (codec.ts), then sealed. The data
 * may be a view of a scratch buffer or of `raw` itself, valid only until the next call: copy it
 * before awaiting anything. `guessRaw`: the caller expects incompressible data (codec.ts,
 * TRIAL_MIN_BYTES).
 */
export function encodeObjectSync(raw: Buffer, codec: CodecName, level: number, ctx: CodecContext = PLAIN, guessRaw = false): Compressed {
  return sealStored(compressSync(raw, codec, level, guessRaw), ctx);
}

/** encodeObjectSync for every codec (deflate compresses on libuv's pool); the data is not shared. */
export async function encodeObject(raw: Buffer, codec: CodecName, level: number, ctx: CodecContext = PLAIN): Promise<Compressed> {
  return sealStored(await compress(raw, codec, level), ctx);
}
