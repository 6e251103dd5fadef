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
import { type BlobKeys, sealBlob, sealedSize } from '../backend/encrypted.js';
import { type CodecContext, encodeObjectSync, ID_BYTES, objectId } from './object-codec.js';
import { packName } from './pack.js';
import { serveJobs } from './thread-pool.js';
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
 * A full pack: its first `length` bytes of `buffer` (moved to the thread and back). With `keys`
 * (an encrypted repository) it is sealed too, into `into` when that is large enough (a buffer of
 * a pack before, moved here to be reused), else into a new buffer; with `hashSealed`, the SHA-256
 * of the sealed bytes comes back too (storage that signs it: Backend.wantsSha256).
 */
export interface PackJob {
  pack: { buffer: ArrayBuffer; length: number; keys?: BlobKeys; into?: ArrayBuffer; hashSealed?: boolean };
}

/** The pack's id (hex SHA-256 of its bytes), its buffer back, and its sealed form when asked. */
export interface PackDone {
  id: string;
  buffer: ArrayBuffer;
  sealed?: { buffer: ArrayBuffer; length: number; sha256?: Uint8Array };
}

/** Name a pack and seal it when keys come with it. */
export function finishPack(j: PackJob['pack']): { result: PackDone; transfer: Transferable[] } {
  const bytes = Buffer.from(j.buffer, 0, j.length);
  const id = toHex(sha256(bytes));
  if (!j.keys) return { result: { id, buffer: j.buffer }, transfer: [j.buffer] };
  const size = sealedSize(j.length);
  // A buffer of its own (allocUnsafe takes small ones from a shared pool, which must not move).
  const into = j.into && j.into.byteLength >= size ? Buffer.from(j.into) : Buffer.allocUnsafeSlow(size);
  const sealed = sealBlob({ dataKey: Buffer.from(j.keys.dataKey) }, packName(id), bytes, into);
  const hash = j.hashSealed ? { sha256: Uint8Array.from(sha256(sealed)) } : {};
  return { result: { id, buffer: j.buffer, sealed: { buffer: into.buffer, length: sealed.length, ...hash } }, transfer: [j.buffer, into.buffer] };
}

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
    const c = encodeObjectSync(raw, 'zstd', level, ctx);
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
  serveJobs<CompressRequest | PackJob, Int32Array | PackDone>((m) => {
    if ('pack' in m) return finishPack(m.pack);
    const out = compressBatch(new Uint8Array(m.ring), m.objs, m.level, data.codec, m.hash === true, m.hashOnly === true);
    return { result: out, transfer: [out.buffer as ArrayBuffer] };
  }, ready);
}
