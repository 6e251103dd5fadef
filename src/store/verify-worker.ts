// A `check --read-data` thread (started by verify-pool.ts from its compiled form in dist/; see
// core/worker-url.ts): it verifies whole packs with pack-verify.ts, the one decode-and-verify path
// of every reader, and hands each pack's buffer back for the next read.
import { workerData } from 'node:worker_threads';
import type { CodecContext } from './object-codec.js';
import { type PackVerdict, verifyPackSync } from './pack-verify.js';
import { serveJobs } from './thread-pool.js';
import { useZstd, type ZstdSpec } from './zstd.js';
import { type BlobKeys, openBlob } from '../backend/encrypted.js';
import { packName } from './pack.js';

/** What a check thread is started with. */
export interface VerifyWorkerData {
  zstd: ZstdSpec;
  codec: CodecContext;
}

/**
 * One pack: `length` bytes at the start of `buffer` (moved to the thread and back), as stored:
 * sealed when `keys` come with it (an encrypted repository), opened here.
 */
export interface VerifyRequest {
  pack: string;
  buffer: ArrayBuffer;
  length: number;
  keys?: BlobKeys;
}

export interface VerifyReply {
  verdict: PackVerdict;
  buffer: ArrayBuffer;
}

const data = (workerData as { verify?: VerifyWorkerData } | undefined)?.verify;
if (data) {
  let scratch: Buffer = Buffer.alloc(0);
  const ready = useZstd(data.zstd.kind).then((ok) => {
    if (!ok) throw new Error(`cannot load zstd (${data.zstd.kind})`);
  });
  serveJobs<VerifyRequest, VerifyReply>((req) => {
    let bytes: Buffer = Buffer.from(req.buffer, 0, req.length);
    if (req.keys) {
      // Opened in place: segment i's plaintext goes to i * 64 KiB, before where its sealed bytes
      // were (they follow the file nonce and i tags), once they are read. Tolerant: damaged
      // segments come back as zeros; each object in them fails below, the pack its name.
      bytes = openBlob({ dataKey: Buffer.from(req.keys.dataKey) }, packName(req.pack), bytes, true, bytes).bytes;
    }
    const r = verifyPackSync(bytes, req.pack, data.codec, scratch);
    scratch = r.scratch;
    return { result: { verdict: r.verdict, buffer: req.buffer }, transfer: [req.buffer] };
  }, ready);
}
