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
import type { WriterData } from './worker.js';
import { type Answer, type Encoded, type Job, type WireBatch, type WireClose, type WireDone, encode, put } from './wire.js';

export interface WriteJob extends Pick<Job, 'codec' | 'rawLength' | 'what' | 'inPack' | 'size' | 'mode' | 'owner' | 'time' | 'checkTime'> {
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
  what?: string;
  inPack?: string;
  id?: Buffer;
  from?: StoredAt;
}

/** Who takes a job's answer: a promise's functions (write, writeChunk), or the caller's own object (submit). */
export interface Pending {
  resolve(r: Answer): void;
  reject(e: Error): void;
}

interface Lane {
  worker: Worker;
  /** The thread's exit code, once it has ended. */
  exited: Promise<number>;
  /** Jobs posted and not yet answered. */
  busy: number;
  /** Jobs in the batch being filled. */
  batch: number;
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
      const lane: Lane = { worker, exited, busy: 0, batch: 0, buf: undefined, used: 0 };
      worker.on('message', (done: WireDone) => this.settle(lane, done));
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', (code) => {
        if (this.pending.size > 0) this.fail(new Error(`a restore writer thread exited (code ${code}) with files unwritten`));
      });
      this.lanes.push(lane);
    }
  }

  /**
   * Write one file (see WriteJob; its data is copied before this returns, and the object is the
   * writer's: it numbers it); resolves with the
   * mtime the file got when it is not job.checkTime; rejects with the system error (its errno code kept).
   */
  async write(job: WriteJob): Promise<bigint | undefined> {
    const r = await new Promise<Answer>((resolve, reject) => this.submit(job, { resolve, reject }));
    return r.timeNs === undefined ? undefined : BigInt(r.timeNs);
  }

  /**
   * write, answered through `to` (its `timeNs` as write's result would be) instead of a promise:
   * for callers that hand over many files without a task or promise each (the restore's files of
   * the directories it created). The job object is the writer's from here on (numbered, its id
   * filled in: no copy per file).
   */
  submit(job: WriteJob, to: Pending): void {
    const j = job as WriteJob & Job;
    j.id ??= EMPTY;
    this.enqueue(j, to);
  }

  /**
   * Write one chunk of a larger file (see ChunkJob; its data is copied before this returns);
   * resolves with the file offset just past the last byte written (0 when it was all zeros).
   */
  async writeChunk(job: ChunkJob): Promise<number> {
    const r = await this.send({ ...job, n: 0, id: job.id ?? EMPTY, tmp: EMPTY, dest: EMPTY, time: 0, size: job.rawLength, mode: 0, chunk: { fd: job.fd, pos: job.pos } });
    return r.end;
  }

  private send(job: Job): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => this.enqueue(job, { resolve, reject }));
  }

  private enqueue(job: Job, to: Pending): void {
    if (this.failure) return to.reject(this.failure);
    if (job.from && !this.readsStored) return to.reject(new Error('a restore job says where its object is stored, and the writer threads cannot read it'));
    job.n = this.next++;
    // The lane with the least outstanding work takes the job, unless a lane's open batch can take
    // it without that lane being a batch ahead of it: one message of 16 files rather than two of 8.
    let lane = this.lanes[0]!;
    for (const l of this.lanes) if (l.busy + l.batch < lane.busy + lane.batch) lane = l;
    for (const l of this.lanes) {
      if (l !== lane && l.batch > 0 && l.batch < BATCH_FILES && l.busy + l.batch < lane.busy + lane.batch + BATCH_FILES) {
        lane = l;
        break;
      }
    }
    const e: Encoded = encode(job);
    if (lane.batch > 0 && lane.used + e.bytes > lane.buf!.byteLength) this.post(lane);
    if (!lane.buf) {
      lane.buf = e.bytes <= BATCH_BYTES ? (this.spare.pop() ?? new ArrayBuffer(BATCH_BYTES)) : this.largeBuffer(e.bytes);
      lane.used = 0;
    }
    put(lane.buf, lane.used, e);
    lane.used += e.bytes;
    lane.batch++;
    this.pending.set(job.n, to);
    // Batches go out when full or once this turn of the event loop is done: posting each file
    // at once to an idle thread cost a message and an event-loop wake-up per file.
    if (lane.batch >= BATCH_FILES || lane.used >= lane.buf.byteLength) this.post(lane);
    else if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(() => {
        this.flushQueued = false;
        // A lane still at work posts what gathered when it answers (settle): a partial batch
        // posted now would be one message more for the same files (6,000 messages of 7.7 files
        // on average for the bench corpus's 46,000 jobs).
        for (const l of this.lanes) if (l.batch > 0 && l.busy === 0) this.post(l);
      });
    }
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
    lane.batch = 0;
    lane.buf = undefined;
    lane.busy += batch.jobs;
    try {
      lane.worker.postMessage(batch, [batch.buf]);
    } catch (e) {
      this.fail(e as Error);
    }
  }

  private settle(lane: Lane, { results, buf, rare }: WireDone): void {
    const jobs = results.length / 2;
    lane.busy -= jobs;
    if (buf.byteLength === BATCH_BYTES) this.spare.push(buf);
    else if (buf.byteLength <= LARGE_KEPT_BYTES && this.largeSpare.length < LARGE_SPARES) this.largeSpare.push(buf);
    let r = 0;
    for (let i = 0; i < jobs; i++) {
      const n = results[2 * i]!;
      const more = rare && rare[r]?.[0] === i ? rare[r++]![1] : undefined;
      const p = this.pending.get(n);
      if (!p) continue;
      this.pending.delete(n);
      if (!more) p.resolve({ end: results[2 * i + 1]! });
      else if (more.failed) p.reject(new SnapError(more.failed.code, more.failed.message));
      else if (!more.error) p.resolve({ end: results[2 * i + 1]!, timeNs: more.timeNs });
      else {
        const e = new Error(more.error.message) as NodeJS.ErrnoException;
        if (more.error.code) e.code = more.error.code;
        if (more.error.syscall) e.syscall = more.error.syscall;
        if (more.error.errno !== undefined) e.errno = more.error.errno;
        p.reject(e);
      }
    }
    // Keep the lane fed: whatever gathered while it worked goes now.
    if (lane.batch > 0) this.post(lane);
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
