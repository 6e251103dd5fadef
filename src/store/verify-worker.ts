// A `check --read-data` thread (started by verify-pool.ts from its compiled form in dist/; see
// core/worker-url.ts): it verifies whole packs with pack-verify.ts, the one decode-and-verify path
// of every reader. A pack comes in a buffer the main thread read it into (handed back with the
// verdict for the next read), or, from a local repository, the thread reads it itself
// (Repository.threadReads) into a buffer of its own: then no pack waits for the main thread's
// event loop, busy with the tree walk, to be read and handed over.
import { workerData } from 'node:worker_threads';
import { type ErrorCode, SnapError } from '../core/errors.js';
import type { CodecContext } from './object-codec.js';
import { MAX_KEPT_PACK_BYTES, type PackVerdict, verifyPackSync } from './pack-verify.js';
import { serveJobs } from './thread-pool.js';
import { useZstd, type ZstdSpec } from './zstd.js';
import { type BlobKeys, openBlob } from '../backend/encrypted.js';
import { ThreadBlobReader } from '../backend/thread-reads.js';
import type { PackReadSpec } from './thread-pack-reads.js';
import { packName } from './pack.js';

/** What a check thread is started with. */
export interface VerifyWorkerData {
  zstd: ZstdSpec;
  codec: CodecContext;
  /** How the thread reads packs itself (a local repository), for requests that bring no buffer. */
  reads?: PackReadSpec;
}

/**
 * One pack: `length` bytes at the start of `buffer` (moved to the thread and back), as stored:
 * sealed when `keys` come with it (an encrypted repository), opened here. Or, with `read`, the pack
 * as the thread reads it itself (sealed when the read spec has keys).
 */
export type VerifyRequest = { pack: string; buffer: ArrayBuffer; length: number; keys?: BlobKeys } | { pack: string; read: true };

export interface VerifyReply {
  /** Absent only with `readError`. */
  verdict?: PackVerdict;
  /** The request's buffer, handed back (requests that brought one). */
  buffer?: ArrayBuffer;
  /** A pack the thread read itself and could not read (missing, not a regular file, an I/O error): nothing verified. */
  readError?: { code: ErrorCode; message: string };
}

const data = (workerData as { verify?: VerifyWorkerData } | undefined)?.verify;
if (data) {
  let scratch: Buffer = Buffer.alloc(0);
  let own: Buffer = Buffer.alloc(0);
  const reader = data.reads ? new ThreadBlobReader(data.reads) : undefined;
  const readKeys = data.reads?.keys ? { dataKey: Buffer.from(data.reads.keys.dataKey) } : undefined;
  const ready = useZstd(data.zstd.kind).then((ok) => {
    if (!ok) throw new Error(`cannot load zstd (${data.zstd.kind})`);
  });
  const verify = (pack: string, stored: Buffer, keys: BlobKeys | undefined): PackVerdict => {
    let bytes = stored;
    let opened: { damaged: number } | undefined;
    if (keys) {
      // Opened in place: segment i's plaintext goes to i * 64 KiB, before where its sealed bytes
      // were (they follow the file nonce and i tags), once they are read. Tolerant: damaged
      // segments come back as zeros; each object in them fails below, the pack its name.
      const o = openBlob(keys, packName(pack), bytes, true, bytes);
      bytes = o.bytes;
      opened = { damaged: o.damaged };
    }
    const r = verifyPackSync(bytes, pack, data.codec, scratch, opened);
    scratch = r.scratch;
    return r.verdict;
  };
  serveJobs<VerifyRequest, VerifyReply>((req) => {
    if ('read' in req) {
      if (!reader) throw new Error('a check thread was asked to read a pack without the means to read it');
      let stored: Buffer;
      try {
        stored = reader.readStored(packName(req.pack), own);
      } catch (e) {
        if (e instanceof SnapError) return { result: { readError: { code: e.code, message: e.message } } };
        throw e;
      }
      if (stored.buffer !== own.buffer && stored.length <= MAX_KEPT_PACK_BYTES) own = Buffer.from(stored.buffer, 0, stored.buffer.byteLength);
      return { result: { verdict: verify(req.pack, stored, readKeys) } };
    }
    const verdict = verify(req.pack, Buffer.from(req.buffer, 0, req.length), req.keys ? { dataKey: Buffer.from(req.keys.dataKey) } : undefined);
    return { result: { verdict, buffer: req.buffer }, transfer: [req.buffer] };
  }, ready);
}
