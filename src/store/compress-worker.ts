// A zstd compression thread (started by compress-pool.ts from its compiled form in dist/; see
// core/worker-url.ts). Each object of a batch, a region of the shared ring, is encoded by the
// object codec (store/object-codec.ts, the rules every writer uses); when the stored form is not
// the object itself it is copied back over the object's bytes: a compressed form is always smaller
// (codec.ts keeps one only when it saves 5 %), so it fits where the input was.
import { workerData } from 'node:worker_threads';
import { type CodecContext, encodeObjectSync } from './object-codec.js';
import { serveJobs } from './thread-pool.js';
import { useZstd, type ZstdSpec } from './zstd.js';

/** What a compression thread is started with. */
export interface CompressWorkerData {
  zstd: ZstdSpec;
  codec: CodecContext;
}

/** A batch: `objs` holds (offset, length) pairs of objects inside `ring`. */
export interface CompressRequest {
  ring: SharedArrayBuffer;
  level: number;
  objs: Int32Array;
}

/** Per object, (codec, stored length): the stored bytes are at the object's offset in the ring. */
export function compressBatch(ring: Uint8Array, objs: Int32Array, level: number, ctx: CodecContext): Int32Array {
  const out = new Int32Array(objs.length);
  for (let i = 0; i < objs.length; i += 2) {
    const off = objs[i]!;
    const len = objs[i + 1]!;
    const raw = Buffer.from(ring.buffer, ring.byteOffset + off, len);
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
  serveJobs<CompressRequest, Int32Array>((m) => {
    const out = compressBatch(new Uint8Array(m.ring), m.objs, m.level, data.codec);
    return { result: out, transfer: [out.buffer as ArrayBuffer] };
  }, ready);
}
