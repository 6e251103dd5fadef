// A restore writer thread (started by writer.ts from its compiled form in dist/; see
// core/worker-url.ts). Per file: the object is unpacked and verified by the object codec
// (store/object-codec.ts, the same checks as every other reader), then written with synchronous
// calls: a temporary name created with O_EXCL|O_NOFOLLOW, sparse writes (core/sparse.ts),
// ownership, mode, times, close, rename. The temporary file is removed on failure, so an
// interrupted restore never leaves a complete-looking file, and nothing is written for an object
// that fails verification. A chunk of a larger file is unpacked and verified the same way and
// written at its offset of a descriptor the main thread holds (which then finishes the file).
// On a local repository the thread reads the object itself (store/thread-pack-reads.ts: the job says
// where it is stored), so its bytes never pass through the main thread.
import * as fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { type ErrorCode, SnapError } from '../../core/errors.js';
import { writeSparseSync } from '../../core/sparse.js';
import { CODEC_ZSTD } from '../../store/codec.js';
import { type CodecContext, decodeAndVerifySync } from '../../store/object-codec.js';
import { type PackReadSpec, type StoredAt, ThreadPackReader } from '../../store/thread-pack-reads.js';
import { useZstd, zstd, type ZstdSpec } from '../../store/zstd.js';
import type { TimeArg } from './time.js';

/** What a writer thread is started with. */
export interface WriterData {
  zstd: ZstdSpec;
  codec: CodecContext;
  /** The smallest scratch buffer to decompress into (then grown to the largest object seen). */
  scratchBytes: number;
  /** How the thread reads stored objects itself (jobs with `from`), when it can. */
  reads?: PackReadSpec;
}

/** What a file's job says besides its byte strings (the same in writer.ts's WriteJob). */
export interface JobMeta {
  /** How the object is stored (CODEC_RAW or CODEC_ZSTD). */
  codec: number;
  rawLength: number;
  /** The object, for messages: "object … (in pack …)". */
  what: string;
  /** File size: trailing zero blocks are not written, a truncate sets the size. */
  size: number;
  mode: number;
  /** Set ownership (restores by root). */
  owner?: { uid: number; gid: number };
  /** atime and mtime (restore-time.ts timeArg). */
  time: TimeArg;
  /** The times to expect afterwards, in ns (times before 1970, which a file system may not hold): restore-time.ts heldTimes. */
  checkTime?: string[];
}

/**
 * A job on the wire: its byte strings are in the batch's buffer (one ArrayBuffer per batch rather
 * than four small ones per file) at `off`: stored data, temporary path, final path, id, of the
 * given lengths (no id: an empty file, nothing to verify).
 */
export interface WireJob extends JobMeta {
  n: number;
  off: number;
  len: number;
  tmpLen: number;
  destLen: number;
  idLen: number;
  /**
   * A chunk of a larger file (no paths): written at `pos` of the open descriptor `fd`, which the
   * main thread holds open until the job is answered and then finishes the file itself.
   */
  chunk?: { fd: number; pos: number };
  /** The object is read here (WriterData.reads), not sent: `length` stored bytes at `offset` of pack `pack` (len is 0). */
  from?: StoredAt;
}


export interface WireBatch {
  jobs: WireJob[];
  buf: ArrayBuffer;
}

export interface WireResult {
  n: number;
  /** The object could not be read or failed verification (SNAP_CORRUPT, SNAP_MISSING_OBJECT...): nothing was written. */
  failed?: { code: ErrorCode; message: string };
  /** With checkTime: the mtime the file got instead (ns). */
  timeNs?: string;
  /** A chunk job: the file offset just past its last byte written (0 if all of it was zeros). */
  end?: number;
  error?: { code?: string; message: string; syscall?: string; errno?: number };
}

export interface WireDone {
  results: WireResult[];
  /** The batch's buffer, handed back for reuse. */
  buf: ArrayBuffer;
}

/** The last message a writer thread gets: it closes its port and its event loop ends (exit code 0). */
export interface WireClose {
  close: true;
}

const C = fs.constants;
const FLAGS = C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW;

/** Unpack and verify one job's object; an empty file has nothing to unpack. */
function unpack(j: WireJob, stored: Buffer, id: Buffer, ctx: CodecContext, scratch: () => Buffer | undefined): Buffer {
  if (id.length === 0 && j.rawLength === 0 && stored.length === 0) return stored;
  return decodeAndVerifySync(stored, { id, codec: j.codec, rawLength: j.rawLength, what: j.what }, ctx, j.codec === CODEC_ZSTD ? scratch() : undefined);
}

/** Write one file under `tmp`, set its metadata, rename it to `dest`; returns the mtime it got when not j.checkTime. */
export function writeFile(j: WireJob, data: Buffer, tmp: Buffer, dest: Buffer): string | undefined {
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
  fs.renameSync(tmp, dest);
  return timeNs;
}

function readStored(reader: ThreadPackReader | undefined, at: StoredAt): Buffer {
  if (!reader) throw new Error('a restore writer thread was sent a job to read without the means to read it');
  return reader.read(at);
}

/** Run one batch: every job gets a result, in order. */
export function runBatch({ jobs, buf: ab }: WireBatch, ctx: CodecContext, scratch: (rawLength: number) => Buffer | undefined, reader?: ThreadPackReader): WireDone {
  const all = Buffer.from(ab);
  const results: WireResult[] = [];
  for (const j of jobs) {
    try {
      let at = j.off + j.len;
      const tmp = all.subarray(at, (at += j.tmpLen));
      const dest = all.subarray(at, (at += j.destLen));
      const id = all.subarray(at, (at += j.idLen));
      const stored = j.from ? readStored(reader, j.from) : all.subarray(j.off, j.off + j.len);
      const data = unpack(j, stored, id, ctx, () => scratch(j.rawLength));
      if (j.chunk) {
        results.push({ n: j.n, end: writeSparseSync(j.chunk.fd, data, j.chunk.pos) });
        continue;
      }
      const timeNs = writeFile(j, data, tmp, dest);
      results.push(timeNs === undefined ? { n: j.n } : { n: j.n, timeNs });
    } catch (e) {
      if (e instanceof SnapError) {
        results.push({ n: j.n, failed: { code: e.code, message: e.message } });
        continue;
      }
      const x = e as NodeJS.ErrnoException | undefined;
      results.push({ n: j.n, error: { code: x?.code, message: String(x?.message), syscall: x?.syscall, errno: x?.errno } });
    }
  }
  return { results, buf: ab };
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
    port.postMessage(done, [done.buf]);
  });
}
