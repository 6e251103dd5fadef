// A restore writer thread (started by writer.ts from its compiled form in dist/; see
// core/worker-url.ts). Per file: the object is unpacked and verified by the object codec
// (store/object-codec.ts, the same checks as every other reader), then written with synchronous
// calls: a temporary name created with O_EXCL|O_NOFOLLOW, sparse writes (core/sparse.ts),
// ownership, mode, times, close, rename. The temporary file is removed on failure, so an
// interrupted restore never leaves a complete-looking file, and nothing is written for an object
// that fails verification. In a directory the restore made under a temporary name (restore.ts,
// DirState.hidden) the file is written under its own name, the directory's name standing for it.
// A chunk of a larger file is unpacked and verified the same way and written at its offset of a
// descriptor the main thread holds (which then finishes the file).
// On a local repository the thread reads the object itself (store/thread-pack-reads.ts: the job says
// where it is stored), so its bytes never pass through the main thread.
import * as fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { SnapError } from '../../core/errors.js';
import { writeSparseSync } from '../../core/sparse.js';
import { CODEC_ZSTD } from '../../store/codec.js';
import { type CodecContext, decodeAndVerifySync } from '../../store/object-codec.js';
import { type PackReadSpec, type StoredAt, ThreadPackReader } from '../../store/thread-pack-reads.js';
import { useZstd, zstd, type ZstdSpec } from '../../store/zstd.js';
import { type Answer, type Job, type WireBatch, type WireClose, type WireDone, jobsIn } from './wire.js';

/** What a writer thread is started with. */
export interface WriterData {
  zstd: ZstdSpec;
  codec: CodecContext;
  /** The smallest scratch buffer to decompress into (then grown to the largest object seen). */
  scratchBytes: number;
  /** How the thread reads stored objects itself (jobs with `from`), when it can. */
  reads?: PackReadSpec;
}

const C = fs.constants;
const FLAGS = C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW;

/** Unpack and verify one job's object; an empty file has nothing to unpack. */
function unpack(j: Job & { what: string }, stored: Buffer, id: Buffer, ctx: CodecContext, scratch: () => Buffer | undefined): Buffer {
  if (id.length === 0 && j.rawLength === 0 && stored.length === 0) return stored;
  return decodeAndVerifySync(stored, { id, codec: j.codec, rawLength: j.rawLength, what: j.what }, ctx, j.codec === CODEC_ZSTD ? scratch() : undefined);
}

/**
 * Write one file under `tmp`, set its metadata, rename it to `dest` (unless `tmp` is `dest`: a
 * file of a directory made under a temporary name, restore.ts DirState.hidden); returns the mtime
 * it got when not j.checkTime.
 */
export function writeFile(j: Job, data: Buffer): string | undefined {
  const { tmp, dest } = j;
  const fd = fs.openSync(tmp, FLAGS, 0o600);
  let ok = false;
  let timeNs: string | undefined;
  try {
    const end = writeSparseSync(fd, data, 0);
    if (end < j.size) fs.ftruncateSync(fd, j.size);
    if (j.owner) fs.fchownSync(fd, j.owner.uid, j.owner.gid);
    fs.fchmodSync(fd, j.mode);
    fs.futimesSync(fd, j.time, j.time);
    if (j.checkTime !== undefined) {
      const got = fs.fstatSync(fd, { bigint: true }).mtimeNs;
      if (!j.checkTime.includes(String(got))) timeNs = String(got);
    }
    ok = true;
  } finally {
    try {
      fs.closeSync(fd);
    } finally {
      if (!ok) fs.rmSync(tmp, { force: true });
    }
  }
  if (!tmp.equals(dest)) fs.renameSync(tmp, dest);
  return timeNs;
}

function readStored(reader: ThreadPackReader | undefined, at: StoredAt): Buffer {
  if (!reader) throw new Error('a restore writer thread was sent a job to read without the means to read it');
  return reader.read(at);
}

/** Run one batch: every job gets an answer, in order. */
export function runBatch(batch: WireBatch, ctx: CodecContext, scratch: (rawLength: number) => Buffer | undefined, reader?: ThreadPackReader): WireDone {
  const results = new Float64Array(batch.jobs * 2);
  const rare: [number, Omit<Answer, 'end'>][] = [];
  let k = 0;
  for (const j of jobsIn(batch)) {
    const i = k++;
    results[2 * i] = j.n;
    try {
      const stored = j.from ? readStored(reader, j.from) : j.data;
      const data = unpack(j, stored, j.id, ctx, () => scratch(j.rawLength));
      if (j.chunk) {
        results[2 * i + 1] = writeSparseSync(j.chunk.fd, data, j.chunk.pos);
        continue;
      }
      const timeNs = writeFile(j, data);
      if (timeNs !== undefined) rare.push([i, { timeNs }]);
    } catch (e) {
      if (e instanceof SnapError) {
        rare.push([i, { failed: { code: e.code, message: e.message } }]);
        continue;
      }
      const x = e as NodeJS.ErrnoException | undefined;
      rare.push([i, { error: { code: x?.code, message: String(x?.message), syscall: x?.syscall, errno: x?.errno } }]);
    }
  }
  return rare.length > 0 ? { buf: batch.buf, results, rare } : { buf: batch.buf, results };
}

if (parentPort && (workerData as { restoreWriter?: WriterData } | undefined)?.restoreWriter) {
  const port = parentPort;
  const data = (workerData as { restoreWriter: WriterData }).restoreWriter;
  // The same zstd implementation as the main thread (a wasm module is instantiated here, once).
  if (!(await useZstd(data.zstd.kind))) throw new Error(`a restore writer thread cannot load zstd (${data.zstd.kind})`);
  let scratch = Buffer.alloc(0);
  const scratchFor = (rawLength: number): Buffer | undefined => {
    if (!zstd().decompressesInto) return undefined;
    if (scratch.length < rawLength) scratch = Buffer.allocUnsafe(Math.max(rawLength, data.scratchBytes));
    return scratch;
  };
  const reader = data.reads ? new ThreadPackReader(data.reads) : undefined;
  port.on('message', (m: WireBatch | WireClose) => {
    if ('close' in m) {
      reader?.close();
      port.close();
      return;
    }
    const done = runBatch(m, data.codec, scratchFor, reader);
    port.postMessage(done, [done.buf, done.results.buffer as ArrayBuffer]);
  });
}
