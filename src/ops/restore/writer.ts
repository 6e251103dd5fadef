// Writing restored files on worker threads. A small file costs seven system calls (open, write,
// fchown, fchmod, futimes, close, rename); through fs/promises each is a trip from the main thread
// to libuv's pool and back, and on a 2-core machine the main thread spent more time dispatching
// and resuming those trips than anything else (--cpu-prof of a restore of the benchmark corpus:
// openFileHandle, rename, fchmod, fchown, futimes and close natives together 6.9 s of 20.8 s).
// Here a worker (worker.ts) runs the whole sequence with synchronous calls, and the main
// thread posts one message per batch of files. The worker also unpacks and verifies the file's
// object with the object codec every reader uses (store/object-codec.ts), so zstd and SHA-256 run
// beside the main thread, into a reused buffer. Paths are `/proc/self/fd/N/<name>` through the
// directory's descriptor held by the main thread (restore-dir.ts; threads share the process's
// descriptors, and the main thread keeps the directory open until the job is answered). On a
// local repository the threads read the objects too (Repository.threadReads): a job then says where
// its object is stored instead of carrying its bytes (on the benchmark corpus the main thread's
// reads, segment opening and copies into batch buffers were a fifth of its work).
import { Worker } from 'node:worker_threads';
import { SnapError } from '../../core/errors.js';
import { workerUrl } from '../../core/worker-url.js';
import { type CodecContext, decodesOnWorker, PLAIN } from '../../store/object-codec.js';
import { zstdSpec } from '../../store/zstd.js';
import type { PackReadSpec, StoredAt } from '../../store/thread-pack-reads.js';
import type { JobMeta, WireBatch, WireClose, WireDone, WireJob, WireResult, WriterData } from './worker.js';

export interface WriteJob extends JobMeta {
  tmp: Buffer;
  dest: Buffer;
  /** The file's one object as stored, or empty for an empty file (or when `from` says where the thread reads it). */
  data: Buffer;
  /** Where the thread reads the object itself (FileWriter.readsStored), instead of `data`. */
  from?: StoredAt;
  /** The object id the unpacked bytes must hash to (none for an empty file). */
  id?: Buffer;
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

/** Buffers of large jobs are sized in steps of this, and a few (up to this size each) kept for reuse. */
const LARGE_STEP = 1024 * 1024;
const LARGE_SPARES = 4;
const LARGE_KEPT_BYTES = 16 * 1024 * 1024;

const EMPTY = Buffer.alloc(0);

/** Codecs the writer threads unpack themselves; others are unpacked by the caller (decodeAndVerify). */
export function writerUnpacks(codec: number): boolean {
  return decodesOnWorker(codec);
}

/**
 * One chunk of a file of several: its object as stored, unpacked and verified by a writer thread
 * and written sparsely at `pos` of `fd` (the caller holds the descriptor open until it is answered).
 */
export interface ChunkJob {
  fd: number;
  pos: number;
  data: Buffer;
  codec: number;
  rawLength: number;
  what: string;
  id?: Buffer;
  from?: StoredAt;
}

interface Pending {
  resolve(r: WireResult): void;
  reject(e: Error): void;
}

interface Lane {
  worker: Worker;
  /** The thread's exit code, once it has ended. */
  exited: Promise<number>;
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
  private readonly largeSpare: ArrayBuffer[] = [];

  /** Jobs may say where their object is stored (`from`): the threads read it themselves. */
  readonly readsStored: boolean;

  /** `reads`: how the threads read stored objects themselves (Repository.threadReads), when they can. */
  constructor(workers: number, codec: CodecContext = PLAIN, reads?: PackReadSpec) {
    this.readsStored = reads !== undefined;
    const restoreWriter: WriterData = { zstd: zstdSpec(), codec, scratchBytes: BATCH_BYTES, reads };
    const url = workerUrl('./worker.js', import.meta.url);
    for (let i = 0; i < workers; i++) {
      const worker = new Worker(url, { workerData: { restoreWriter } });
      const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
      const lane: Lane = { worker, exited, busy: 0, batch: [], buf: undefined, used: 0 };
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
  async write(job: WriteJob): Promise<bigint | undefined> {
    const r = await this.send(job, { time: job.time, size: job.size, mode: job.mode, owner: job.owner, checkTime: job.checkTime });
    return r.timeNs === undefined ? undefined : BigInt(r.timeNs);
  }

  /**
   * Write one chunk of a larger file (see ChunkJob; its data is copied before this returns);
   * resolves with the file offset just past the last byte written (0 when it was all zeros).
   */
  async writeChunk(job: ChunkJob): Promise<number> {
    const r = await this.send({ ...job, tmp: EMPTY, dest: EMPTY }, { time: 0, size: job.rawLength, mode: 0, chunk: { fd: job.fd, pos: job.pos } });
    return r.end ?? 0;
  }

  private send(
    job: Pick<WriteJob, 'data' | 'tmp' | 'dest' | 'id' | 'codec' | 'rawLength' | 'what' | 'from'>,
    meta: Pick<WireJob, 'time' | 'size' | 'mode' | 'owner' | 'checkTime' | 'chunk'>,
  ): Promise<WireResult> {
    if (this.failure) return Promise.reject(this.failure);
    if (job.from && !this.readsStored) return Promise.reject(new Error('a restore job says where its object is stored, and the writer threads cannot read it'));
    const n = this.next++;
    // The lane with the least outstanding work takes the job, unless a lane's open batch can take
    // it without that lane being a batch ahead of it: one message of 16 files rather than two of 8.
    let lane = this.lanes[0]!;
    for (const l of this.lanes) if (l.busy + l.batch.length < lane.busy + lane.batch.length) lane = l;
    for (const l of this.lanes) {
      if (l !== lane && l.batch.length > 0 && l.batch.length < BATCH_FILES && l.busy + l.batch.length < lane.busy + lane.batch.length + BATCH_FILES) {
        lane = l;
        break;
      }
    }
    const id = job.id ?? EMPTY;
    const len = job.data.length + job.tmp.length + job.dest.length + id.length;
    if (lane.batch.length > 0 && lane.used + len > lane.buf!.byteLength) this.post(lane);
    if (!lane.buf) {
      lane.buf = len <= BATCH_BYTES ? (this.spare.pop() ?? new ArrayBuffer(BATCH_BYTES)) : this.largeBuffer(len);
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
      rawLength: job.rawLength, what: job.what, from: job.from, ...meta,
    });
    lane.used = at;
    const p = new Promise<WireResult>((resolve, reject) => this.pending.set(n, { resolve, reject }));
    // Batches go out when full or once this turn of the event loop is done: posting each file
    // at once to an idle thread cost a message and an event-loop wake-up per file.
    if (lane.batch.length >= BATCH_FILES || lane.used >= lane.buf!.byteLength) this.post(lane);
    else if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(() => {
        this.flushQueued = false;
        // A lane still at work posts what gathered when it answers (settle): a partial batch
        // posted now would be one message more for the same files (6,000 messages of 7.7 files
        // on average for the bench corpus's 46,000 jobs).
        for (const l of this.lanes) if (l.batch.length > 0 && l.busy === 0) this.post(l);
      });
    }
    return p;
  }

  /**
   * A buffer for a job larger than a batch buffer (a chunk of a large file, a large small file):
   * one handed back before when one is large enough, else a new one rounded up to whole MiB so
   * that it fits the next ones too (a restore of large files then makes no buffer per chunk).
   */
  private largeBuffer(len: number): ArrayBuffer {
    const i = this.largeSpare.findIndex((b) => b.byteLength >= len);
    if (i >= 0) return this.largeSpare.splice(i, 1)[0]!;
    return new ArrayBuffer(Math.ceil(len / LARGE_STEP) * LARGE_STEP);
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
    else if (buf.byteLength <= LARGE_KEPT_BYTES && this.largeSpare.length < LARGE_SPARES) this.largeSpare.push(buf);
    for (const r of results) {
      const p = this.pending.get(r.n);
      if (!p) continue;
      this.pending.delete(r.n);
      if (r.failed) p.reject(new SnapError(r.failed.code, r.failed.message));
      else if (!r.error) p.resolve(r);
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

  /**
   * End the threads and resolve with their exit codes (0 each). Each is asked to stop, finishes
   * what it was given, and leaves its event loop; none is terminated (worker.terminate()): a thread
   * still starting may be loading zstd-napi, and one terminated inside it ends the whole process
   * when zstd-napi was built for Node-API 10 (store/compress-pool.ts, docs/performance.md).
   */
  async close(): Promise<number[]> {
    const bye: WireClose = { close: true };
    for (const l of this.lanes) l.worker.postMessage(bye);
    return Promise.all(this.lanes.map((l) => l.exited));
  }
}
