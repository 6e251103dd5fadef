// A zstd compression thread (started by compress-pool.ts from its compiled form in dist/; see
// core/worker-url.ts). Each object of a batch, a region of the shared ring, is encoded by the
// object codec (store/object-codec.ts, the rules every writer uses); when the stored form is not
// the object itself it is copied back over the object's bytes: a compressed form is always smaller
// (codec.ts keeps one only when it saves 5 %), so it fits where the input was.
//
// The same threads finish a backup's full packs (a `PackJob`): the SHA-256 that names the pack
// and, in an encrypted repository, its sealing, both of every byte of the pack, which on the
// main thread ran in series with reading, chunking and hashing the files (docs/performance.md,
// "Packs finished on the compression threads").
import { workerData } from 'node:worker_threads';
import type { Transferable } from 'node:worker_threads';
import { sha256, toHex } from '../core/ids.js';
import { type BlobKeys, sealBlob, sealBlobInPlace, sealedSize } from '../backend/encrypted.js';
import { type CodecContext, encodeObjectSync, ID_BYTES, objectId } from './object-codec.js';
import { CODEC_RAW, TRIAL_MIN_BYTES } from './codec.js';
import { packName } from './pack.js';
import { serveJobs } from './thread-pool.js';
import { type Gear, sameGear } from './chunker.js';
import { FileChunker } from './file-chunker.js';
import { useZstd, type ZstdSpec } from './zstd.js';

/** What a compression thread is started with. */
export interface CompressWorkerData {
  zstd: ZstdSpec;
  codec: CodecContext;
}

/**
 * A batch: `objs` holds (offset, length) pairs of objects inside `ring`. With `hash`, the thread
 * also computes each object's id (objectId: SHA-256, or HMAC-SHA256 under the id key) from its
 * bytes before compressing them, and the result carries the ids after the (codec, length) pairs.
 */
export interface CompressRequest {
  ring: SharedArrayBuffer;
  level: number;
  objs: Int32Array;
  hash?: boolean;
  /** With `hash`: ids only, the objects left as they are (each (codec, length) pair is (0, length)). */
  hashOnly?: boolean;
}

/**
 * A full pack: its first `length` bytes of `buffer`. With `keys` (an encrypted repository) it is
 * sealed too: in `buffer` itself when `inPlace` (sealBlobInPlace: the buffer must have room for
 * the sealed bytes; the plaintext is gone afterwards), else into `into` when that is large enough,
 * else into a new buffer; with `hashSealed`, the SHA-256 of the sealed bytes comes back too
 * (storage that signs it: Backend.wantsSha256). A backup's packs of file data are
 * SharedArrayBuffers the store keeps and reuses: shared, nothing moves between the threads, so no
 * pack's 32 MiB arrives in an isolate as new external memory (which made the collector run for
 * "external memory pressure" at every pack). An ArrayBuffer (a pack of trees) is moved to the
 * thread and back.
 */
export interface PackJob {
  pack: { buffer: ArrayBuffer | SharedArrayBuffer; length: number; keys?: BlobKeys; inPlace?: boolean; into?: ArrayBuffer | SharedArrayBuffer; hashSealed?: boolean };
}

/**
 * A large file to chunk and hash here: the thread reads the open descriptor `fd` (the process's,
 * kept open by the caller until the answer) from its start, at most `size` bytes, and cuts it with
 * `gear`, as the calling thread's FileChunker would. The answer is the chunks' lengths and their
 * ids (objectId), ID_BYTES each in the same order, computed from the bytes this thread read
 * (docs/performance.md, "Changed large files cut on the threads").
 */
export interface ChunkFileJob {
  chunkFile: { fd: number; size: number; gear: Gear };
}

/** The chunks of a ChunkFileJob, or the read error that stopped it (its errno code and message). */
export type ChunkFileDone = { lengths: Int32Array; ids: Uint8Array; bytes: number } | { error: { code?: string; message: string } };

/** Each thread's chunker for ChunkFileJob (its buffer, max + 1 MiB, made at its first such job), and its gear. */
let fileChunker: { chunker: FileChunker; gear: Gear } | undefined;

/** Cut and hash a file as ChunkFileJob says. A read error is answered, not thrown: it is the file's, not the thread's. */
export function chunkFile(j: ChunkFileJob['chunkFile'], ctx: CodecContext): { result: ChunkFileDone; transfer: Transferable[] } {
  if (!fileChunker || !sameGear(fileChunker.gear, j.gear)) fileChunker = { chunker: new FileChunker(j.fd, j.gear), gear: j.gear };
  const c = fileChunker.chunker;
  c.reset(j.fd, j.size);
  const lengths: number[] = [];
  const ids: Buffer[] = [];
  let bytes = 0;
  try {
    for (let chunk = c.next(); chunk; chunk = c.next()) {
      lengths.push(chunk.length);
      bytes += chunk.length;
      ids.push(objectId(chunk, ctx));
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { result: { error: { code: typeof err.code === 'string' ? err.code : undefined, message: err.message ?? String(e) } }, transfer: [] };
  }
  const out = Int32Array.from(lengths);
  const idBytes = new Uint8Array(ids.length * ID_BYTES);
  ids.forEach((id, i) => idBytes.set(id, i * ID_BYTES));
  return { result: { lengths: out, ids: idBytes, bytes }, transfer: [out.buffer, idBytes.buffer] };
}

/**
 * The pack's id (hex SHA-256 of its bytes), its buffer back when it was moved here, and its
 * sealed form when asked: its length, and where it is (in the pack's buffer when `inPlace`, else
 * in `into` or in `buffer`, a buffer moved or made here).
 */
export interface PackDone {
  id: string;
  buffer?: ArrayBuffer;
  sealed?: { buffer?: ArrayBuffer; inPlace?: boolean; length: number; sha256?: Uint8Array };
}

/** Name a pack and seal it when keys come with it. */
export function finishPack(j: PackJob['pack']): { result: PackDone; transfer: Transferable[] } {
  const bytes = Buffer.from(j.buffer, 0, j.length);
  const id = toHex(sha256(bytes));
  const moved = j.buffer instanceof ArrayBuffer ? j.buffer : undefined;
  const transfer: ArrayBuffer[] = moved ? [moved] : [];
  if (!j.keys) return { result: { id, ...(moved ? { buffer: moved } : {}) }, transfer };
  const keys = { dataKey: Buffer.from(j.keys.dataKey) };
  let sealed: Buffer;
  /** The buffer sealed into, when it moves back with the result (not the pack's own, not a shared one). */
  let sealedBuffer: ArrayBuffer | undefined;
  if (j.inPlace) sealed = sealBlobInPlace(keys, packName(id), Buffer.from(j.buffer), j.length);
  else {
    const size = sealedSize(j.length);
    // A buffer of its own (allocUnsafe takes small ones from a shared pool, which must not move).
    const into = j.into && j.into.byteLength >= size ? Buffer.from(j.into) : Buffer.allocUnsafeSlow(size);
    sealed = sealBlob(keys, packName(id), bytes, into);
    if (into.buffer instanceof ArrayBuffer) transfer.push((sealedBuffer = into.buffer));
  }
  const hash = j.hashSealed ? { sha256: Uint8Array.from(sha256(sealed)) } : {};
  const where = sealedBuffer ? { buffer: sealedBuffer } : j.inPlace ? { inPlace: true } : {};
  return { result: { id, ...(moved ? { buffer: moved } : {}), sealed: { ...where, length: sealed.length, ...hash } }, transfer };
}

/**
 * Whether this thread stored the last large object (TRIAL_MIN_BYTES or more) raw: the next one is
 * then likely incompressible too (the next chunk of the same video or archive) and is tried fast
 * first (codec.ts). Small objects, a file's other kind of data, leave it as it is.
 */
let lastLargeRaw = false;

/**
 * Per object, (codec, stored length): the stored bytes are at the object's offset in the ring.
 * With `hash`, the objects' ids follow, ID_BYTES each, in the same order.
 */
export function compressBatch(ring: Uint8Array, objs: Int32Array, level: number, ctx: CodecContext, hash = false, hashOnly = false): Int32Array {
  const n = objs.length / 2;
  const out = new Int32Array(hash ? objs.length + (n * ID_BYTES) / 4 : objs.length);
  const ids = hash ? Buffer.from(out.buffer, objs.length * 4, n * ID_BYTES) : undefined;
  for (let i = 0; i < objs.length; i += 2) {
    const off = objs[i]!;
    const len = objs[i + 1]!;
    const raw = Buffer.from(ring.buffer, ring.byteOffset + off, len);
    if (ids) objectId(raw, ctx).copy(ids, (i / 2) * ID_BYTES);
    if (hashOnly) {
      out[i + 1] = len;
      continue;
    }
    const c = encodeObjectSync(raw, 'zstd', level, ctx, lastLargeRaw);
    if (len >= TRIAL_MIN_BYTES) lastLargeRaw = c.codec === CODEC_RAW;
    if (c.data !== raw) ring.set(c.data, off);
    out[i] = c.codec;
    out[i + 1] = c.data.length;
  }
  return out;
}

const data = (workerData as { compress?: CompressWorkerData } | undefined)?.compress;
if (data) {
  const ready = useZstd(data.zstd.kind).then((ok) => {
    if (!ok) throw new Error(`a compression thread cannot load zstd (${data.zstd.kind})`);
  });
  serveJobs<CompressRequest | PackJob | ChunkFileJob, Int32Array | PackDone | ChunkFileDone>((m) => {
    if ('pack' in m) return finishPack(m.pack);
    if ('chunkFile' in m) return chunkFile(m.chunkFile, data.codec);
    const out = compressBatch(new Uint8Array(m.ring), m.objs, m.level, data.codec, m.hash === true, m.hashOnly === true);
    return { result: out, transfer: [out.buffer as ArrayBuffer] };
  }, ready);
}
