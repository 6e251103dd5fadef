// Writing restored files on worker threads. A small file costs seven system calls (open, write,
// fchown, fchmod, futimes, close, rename); through fs/promises each is a trip from the main thread
// to libuv's pool and back, and on a 2-core machine the main thread spent more time dispatching
// and resuming those trips than anything else (--cpu-prof of a restore of the benchmark corpus:
// openFileHandle, rename, fchmod, fchown, futimes and close natives together 6.9 s of 20.8 s).
// Here a worker runs the whole sequence with synchronous calls, and the main thread posts one
// message per batch of files. The worker also decompresses and verifies the file's object (the
// checks of ObjectStore.get), so zstd and SHA-256 run beside the main thread, into a reused
// buffer. Paths are `/proc/self/fd/N/<name>` through the directory's descriptor held by the main
// thread (restore-dir.ts; threads share the process's descriptors, and the main thread keeps the
// directory open until the job is answered). The write sequence is the one restore.ts used: a temporary name created with
// O_EXCL|O_NOFOLLOW, sparse writes, metadata, close, rename; the temporary file is removed on
// failure, so an interrupted restore never leaves a complete-looking file, and nothing is written
// for an object that fails verification.
import { Worker } from 'node:worker_threads';
import { SnapError } from '../core/errors.js';
import { CODEC_RAW, CODEC_ZSTD } from '../store/codec.js';
import type { TimeArg } from './restore-time.js';
import { ZSTD_ADAPTER_SOURCE, zstdSpec } from '../store/zstd.js';

export interface WriteJob {
  tmp: Buffer;
  dest: Buffer;
  /** The file's one object as stored (CODEC_RAW or CODEC_ZSTD), or empty for an empty file. */
  data: Buffer;
  codec: number;
  rawLength: number;
  /** The object id the unpacked bytes must hash to (none for an empty file). */
  id?: Buffer;
  /** The object, for messages: "object … (in pack …)". */
  what: string;
  /** File size: trailing zero blocks are not written, a truncate sets the size. */
  size: number;
  mode: number;
  /** Set ownership (restores by root). */
  owner?: { uid: number; gid: number };
  /** atime and mtime (restore-time.ts timeArg). */
  time: TimeArg;
  /** The time to expect afterwards, in ns (times before 1970, which a file system may not hold). */
  checkTime?: string;
}

/**
 * A job on the wire: its byte strings are copied into the batch's buffer (one ArrayBuffer per
 * batch rather than four small ones per file) at `off`: stored data, temporary path, final path,
 * id, of the given lengths.
 */
interface WireJob extends Omit<WriteJob, 'tmp' | 'dest' | 'data' | 'id'> {
  n: number;
  off: number;
  len: number;
  tmpLen: number;
  destLen: number;
  idLen: number;
}

interface WireBatch {
  jobs: WireJob[];
  buf: ArrayBuffer;
}

interface WireResult {
  n: number;
  /** The object failed verification: nothing was written. */
  corrupt?: string;
  /** With checkTime: the mtime the file got instead (ns). */
  timeNs?: string;
  error?: { code?: string; message: string; syscall?: string; errno?: number };
}

interface WireDone {
  results: WireResult[];
  /** The batch's buffer, handed back for reuse. */
  buf: ArrayBuffer;
}

/** Jobs per message: enough to amortise a message, few enough to keep every worker fed. */
const BATCH_FILES = 16;
/**
 * Batch buffers. File contents travel in one buffer per batch that the worker hands back: moving
 * each file's own buffer to a worker left it garbage in an isolate that hardly ever collects
 * (peak RSS 250 MB). Every batch buffer handed back is reused, so their number is at most the
 * batches in flight at once (bounded by the files in flight); a file larger than a batch buffer
 * travels alone in a buffer of its own size.
 */
const BATCH_BYTES = 256 * 1024;

// The worker is plain JavaScript evaluated from a string: it needs only node: modules and the
// zstd implementation this process uses (store/zstd.ts), and works the same from compiled dist/
// and from TypeScript sources under test.
const WORKER_SOURCE = `
'use strict';
const fs = require('node:fs');
const { createHash, createHmac } = require('node:crypto');
const { parentPort, workerData } = require('node:worker_threads');
${ZSTD_ADAPTER_SOURCE}
const zstd = openZstd(workerData.zstd);
// Encrypted repositories key their object ids: HMAC-SHA256 under the id key (docs/format.md, "Format 2").
const idKey = workerData.idKey ? Buffer.from(workerData.idKey) : undefined;
const idOf = (raw) => (idKey ? createHmac('sha256', idKey) : createHash('sha256')).update(raw).digest();
let scratch = Buffer.alloc(0);
const BLOCK = 64 * 1024;
const ZERO = Buffer.alloc(BLOCK);
const C = fs.constants;
const FLAGS = C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW;

function writeAll(fd, data, pos) {
  let off = 0;
  while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off, pos + off);
}

// Skip 64 KiB blocks of zeros (sparse files stay sparse); returns the offset past the last byte written.
function writeSparse(fd, data) {
  let runStart = -1;
  let end = 0;
  for (let off = 0; off < data.length; off += BLOCK) {
    const n = Math.min(BLOCK, data.length - off);
    const zero = Buffer.compare(data.subarray(off, off + n), ZERO.subarray(0, n)) === 0;
    if (!zero && runStart < 0) runStart = off;
    if (zero && runStart >= 0) {
      writeAll(fd, data.subarray(runStart, off), runStart);
      end = off;
      runStart = -1;
    }
  }
  if (runStart >= 0) {
    writeAll(fd, data.subarray(runStart), runStart);
    end = data.length;
  }
  return end;
}

class Corrupt extends Error {}

// The checks of store/codec.ts and readObjectAt: a zstd frame must declare the recorded size and
// decompress to exactly it (into a reused buffer), and the bytes must hash to the object's id.
function unpack(j, stored, id) {
  let raw = stored;
  if (j.codec === ${CODEC_ZSTD}) {
    let size;
    try {
      size = zstd.frameContentSize(stored);
    } catch {
      throw new Corrupt(j.what + ' is not a zstd frame');
    }
    if (size !== j.rawLength) throw new Corrupt(j.what + ' declares ' + String(size) + ' bytes, expected ' + j.rawLength);
    if (zstd.decompressesInto && scratch.length < j.rawLength) scratch = Buffer.allocUnsafe(Math.max(j.rawLength, ${BATCH_BYTES}));
    try {
      raw = zstd.decompress(stored, j.rawLength, scratch);
    } catch {
      throw new Corrupt(j.what + ' does not decompress');
    }
    if (raw.length !== j.rawLength) throw new Corrupt(j.what + ' has ' + raw.length + ' bytes, expected ' + j.rawLength);
  } else if (j.codec !== ${CODEC_RAW}) throw new Corrupt(j.what + ' uses unknown codec ' + j.codec);
  if (raw.length !== j.rawLength) throw new Corrupt(j.what + ' has ' + raw.length + ' bytes, expected ' + j.rawLength);
  if (id.length > 0 && !idOf(raw).equals(id)) {
    throw new Corrupt(j.what + ' failed verification: its content does not match its id');
  }
  return raw;
}

function writeFile(j, data, tmp, dest) {
  const fd = fs.openSync(tmp, FLAGS, 0o600);
  let ok = false;
  let timeNs;
  try {
    const end = writeSparse(fd, data);
    if (end < j.size) fs.ftruncateSync(fd, j.size);
    if (j.owner) fs.fchownSync(fd, j.owner.uid, j.owner.gid);
    fs.fchmodSync(fd, j.mode);
    fs.futimesSync(fd, j.time, j.time);
    if (j.checkTime !== undefined) {
      const got = fs.fstatSync(fd, { bigint: true }).mtimeNs;
      if (got !== BigInt(j.checkTime)) timeNs = String(got);
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

// A wasm module is instantiated asynchronously: batches wait for it, in order.
parentPort.on('message', (m) => (zstd.ready ? zstd.ready.then(() => run(m)) : run(m)));
function run({ jobs, buf: ab }) {
  const all = Buffer.from(ab);
  const results = [];
  for (const j of jobs) {
    try {
      let at = j.off + j.len;
      const tmp = all.subarray(at, (at += j.tmpLen));
      const dest = all.subarray(at, (at += j.destLen));
      const id = all.subarray(at, (at += j.idLen));
      const timeNs = writeFile(j, unpack(j, all.subarray(j.off, j.off + j.len), id), tmp, dest);
      results.push(timeNs === undefined ? { n: j.n } : { n: j.n, timeNs });
    } catch (e) {
      if (e instanceof Corrupt) {
        results.push({ n: j.n, corrupt: e.message });
        continue;
      }
      results.push({ n: j.n, error: { code: e && e.code, message: String(e && e.message), syscall: e && e.syscall, errno: e && e.errno } });
    }
  }
  parentPort.postMessage({ results, buf: ab }, [ab]);
}
`;

const EMPTY = Buffer.alloc(0);

/** Codecs the writer threads unpack themselves; others are unpacked by the caller. */
export function writerUnpacks(codec: number): boolean {
  return codec === CODEC_RAW || codec === CODEC_ZSTD;
}

interface Pending {
  resolve(timeNs: bigint | undefined): void;
  reject(e: Error): void;
}

interface Lane {
  worker: Worker;
  /** Jobs posted and not yet answered. */
  busy: number;
  batch: WireJob[];
  /** The batch's buffer (files are copied into it) and how much of it is used. */
  buf: ArrayBuffer | undefined;
  used: number;
}


export class FileWriter {
  private readonly lanes: Lane[] = [];
  private readonly pending = new Map<number, Pending>();
  private next = 0;
  private flushQueued = false;
  private failure: Error | undefined;
  private readonly spare: ArrayBuffer[] = [];

  /** `idKey`: the id key of an encrypted repository (its object ids are keyed). */
  constructor(workers: number, idKey?: Buffer) {
    for (let i = 0; i < workers; i++) {
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { zstd: zstdSpec(), idKey: idKey ? Uint8Array.from(idKey) : undefined } });
      const lane: Lane = { worker, busy: 0, batch: [], buf: undefined, used: 0 };
      worker.on('message', (done: WireDone) => this.settle(lane, done));
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', (code) => {
        if (this.pending.size > 0) this.fail(new Error(`a restore writer thread exited (code ${code}) with files unwritten`));
      });
      this.lanes.push(lane);
    }
  }

  /**
   * Write one file (see WriteJob; its data is copied before this returns); resolves with the
   * mtime the file got when it is not job.checkTime; rejects with the system error (its errno code kept).
   */
  write(job: WriteJob): Promise<bigint | undefined> {
    if (this.failure) return Promise.reject(this.failure);
    const n = this.next++;
    // The lane with the least outstanding work takes the job.
    let lane = this.lanes[0]!;
    for (const l of this.lanes) if (l.busy + l.batch.length < lane.busy + lane.batch.length) lane = l;
    const id = job.id ?? EMPTY;
    const len = job.data.length + job.tmp.length + job.dest.length + id.length;
    if (lane.batch.length > 0 && lane.used + len > lane.buf!.byteLength) this.post(lane);
    if (!lane.buf) {
      lane.buf = len <= BATCH_BYTES ? (this.spare.pop() ?? new ArrayBuffer(BATCH_BYTES)) : new ArrayBuffer(len);
      lane.used = 0;
    }
    const into = new Uint8Array(lane.buf);
    const off = lane.used;
    let at = off;
    for (const b of [job.data, job.tmp, job.dest, id]) {
      into.set(b, at);
      at += b.length;
    }
    lane.batch.push({
      n, off, len: job.data.length, tmpLen: job.tmp.length, destLen: job.dest.length, idLen: id.length, codec: job.codec,
      rawLength: job.rawLength, what: job.what, size: job.size, mode: job.mode, owner: job.owner, time: job.time, checkTime: job.checkTime,
    });
    lane.used = at;
    const p = new Promise<bigint | undefined>((resolve, reject) => this.pending.set(n, { resolve, reject }));
    // Batches go out when full or once this turn of the event loop is done: posting each file
    // at once to an idle thread cost a message and an event-loop wake-up per file.
    if (lane.batch.length >= BATCH_FILES || lane.used >= lane.buf!.byteLength) this.post(lane);
    else if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(() => {
        this.flushQueued = false;
        for (const l of this.lanes) if (l.batch.length > 0) this.post(l);
      });
    }
    return p;
  }

  private post(lane: Lane): void {
    const batch: WireBatch = { jobs: lane.batch, buf: lane.buf! };
    lane.batch = [];
    lane.buf = undefined;
    lane.busy += batch.jobs.length;
    try {
      lane.worker.postMessage(batch, [batch.buf]);
    } catch (e) {
      this.fail(e as Error);
    }
  }

  private settle(lane: Lane, { results, buf }: WireDone): void {
    lane.busy -= results.length;
    if (buf.byteLength === BATCH_BYTES) this.spare.push(buf);
    for (const r of results) {
      const p = this.pending.get(r.n);
      if (!p) continue;
      this.pending.delete(r.n);
      if (r.corrupt) p.reject(new SnapError('SNAP_CORRUPT', r.corrupt));
      else if (!r.error) p.resolve(r.timeNs === undefined ? undefined : BigInt(r.timeNs));
      else {
        const e = new Error(r.error.message) as NodeJS.ErrnoException;
        if (r.error.code) e.code = r.error.code;
        if (r.error.syscall) e.syscall = r.error.syscall;
        if (r.error.errno !== undefined) e.errno = r.error.errno;
        p.reject(e);
      }
    }
    // Keep the lane fed: whatever gathered while it worked goes now.
    if (lane.batch.length > 0) this.post(lane);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  async close(): Promise<void> {
    await Promise.all(this.lanes.map((l) => l.worker.terminate()));
  }
}
