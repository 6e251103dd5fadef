// zstd compression on worker threads. zstd is synchronous (store/zstd.ts), so on the main thread it ran in
// series with reading, chunking and hashing (~55 % of a first backup's CPU time). Workers take
// batches of objects that the object store has copied into a SharedArrayBuffer ring, compress each
// one into a private scratch buffer and, when it saves enough, copy the frame back over the
// object's own bytes in the ring: the result always fits where the input was, so no buffer is
// allocated per object on either side and memory stays the ring plus one scratch per worker.
// The workers' code is compress-worker.ts (encodeObjectSync of store/object-codec.ts).
// The pool is shared by every object store of the process; idle workers do not keep it alive.
//
// A thread is started only for a batch it runs at once (when every thread has work), never ahead
// of need: a thread that is still starting when the process ends is terminated at exit, possibly
// while it loads zstd-napi or opens a context in it. zstd-napi 0.0.13 (node-addon-api 7) built
// for Node-API 10 (npm install on Node 22.14+, 24, 26) cannot survive that: the runtime answers its
// calls napi_cannot_run_js, which node-addon-api 7 does not expect, and the C++ exception it then
// throws ends the process with "terminate called after throwing an instance of 'Napi::Error'"
// (SIGABRT; docs/performance.md, "zstd implementations"). A thread that took a batch keeps the
// process alive until it answers, so by the time the process can end it is idle: ending it
// then runs none of its JavaScript.
import { availableParallelism } from 'node:os';
import { workerUrl } from '../core/worker-url.js';
import type { ChunkFileDone, ChunkFileJob, CompressRequest, CompressWorkerData, PackDone, PackJob } from './compress-worker.js';
import type { CodecContext } from './object-codec.js';
import { ThreadPool } from './thread-pool.js';
import { zstdSpec } from './zstd.js';

/** A batch: `objs` holds (offset, length) pairs of objects inside `ring` (compress-worker.ts). */
export type CompressJob = CompressRequest;

/** Per object, (codec, stored length): the stored bytes are at the object's offset in the ring. */
export type CompressResult = Int32Array;

/** Compression threads this process has started (each stays until the process ends or it fails). */
let threadsStarted = 0;

/** How many compression threads this process has started: at most one per batch in flight at once. */
export function compressThreadsStarted(): number {
  return threadsStarted;
}

/**
 * Worker count for this machine: one per available core but the one the main thread keeps busy
 * (it walks, reads, cuts and hashes small files, and compresses itself whenever the ring is full
 * because the threads are behind), at least 1 and at most 8. One per core made 3 busy threads on 2
 * cores: the main thread, the critical path of a backup's many small files, waited 3 s of an 8 s
 * first backup of the bench corpus in the run queue (3,000 involuntary switches; schedstat), while
 * the threads were idle half the time. With one thread there, the encrypted first backup was 5-8 %
 * faster and 30-45 MiB smaller at its peak, on local disk and to a local radosgw (docs/performance.md,
 * "A core for the main thread").
 */
export function defaultCompressWorkers(): number {
  return Math.min(8, Math.max(1, availableParallelism() - 1));
}

/**
 * Shared buffers an object store has finished with, for the next store of the process: the rings
 * objects are compressed in, and a backup's pack buffers and their sealed forms (compress-worker.ts,
 * PackJob). A worker keeps each shared buffer it was sent until its own garbage collection, which a
 * thread that compresses a little now and then may not run for hours: a watch whose every backup
 * made a ring (16 MiB and more) kept them all, RSS growing by the pages each backup touched (140 KB
 * per nothing-changed rescan, 130 MB in 300 under load) and ArrayBuffer memory by gigabytes; a
 * backup that made a new 32 MiB buffer for a sealed pack now and then held 7 of them, 200 MiB more
 * at its peak. Reused, the buffers the process holds are as many as its stores used at once, up to
 * SPARE_SHARED of each size kept between them.
 */
const spareShared = new Map<number, SharedArrayBuffer[]>();
const SPARE_SHARED = 6;

/** A shared buffer of `size` bytes: one a finished store gave back, else a new one (zeros). */
export function takeShared(size: number): SharedArrayBuffer {
  return spareShared.get(size)?.pop() ?? new SharedArrayBuffer(size);
}

/** Give back a shared buffer no job uses any more (every job sent with it has come back). */
export function giveBackShared(b: SharedArrayBuffer): void {
  let spare = spareShared.get(b.byteLength);
  if (!spare) spareShared.set(b.byteLength, (spare = []));
  if (spare.length < SPARE_SHARED && !spare.includes(b)) spare.push(b);
}

/** The most compression threads one pool starts (each call asks for its own number, at most this). */
const MAX_WORKERS = 64;

/** One pool per codec context (objects in the clear: one for the process). */
type Job = CompressJob | PackJob | ChunkFileJob;
type Done = CompressResult | PackDone | ChunkFileDone;
const pools = new Map<CodecContext, ThreadPool<Job, Done>>();

/**
 * Compress a batch on the least busy of `workers` threads; a new thread starts (and takes the
 * batch) only when every thread has a batch already and there are fewer than `workers`.
 */
export async function compressOnWorkers(job: CompressJob, workers: number, ctx: CodecContext): Promise<CompressResult> {
  return (await poolOf(ctx).run(job, [], workers)) as CompressResult;
}

/**
 * Name (and, with keys, seal) a full pack on the same threads (compress-worker.ts, finishPack):
 * its buffer, and `into` when given, are shared or move to the thread and come back in the result.
 */
export async function finishPackOnWorkers(job: PackJob['pack'], workers: number, ctx: CodecContext): Promise<PackDone> {
  const transfer = [job.buffer, job.into].filter((b): b is ArrayBuffer => b instanceof ArrayBuffer);
  return (await poolOf(ctx).run({ pack: job }, transfer, workers)) as PackDone;
}

/**
 * Chunk and hash a large file on the same threads (compress-worker.ts, chunkFile): the calling
 * thread goes on with other files meanwhile. `job.fd` must stay open until this settles.
 */
export async function chunkFileOnWorkers(job: ChunkFileJob['chunkFile'], workers: number, ctx: CodecContext): Promise<ChunkFileDone> {
  return (await poolOf(ctx).run({ chunkFile: job }, [], workers)) as ChunkFileDone;
}

function poolOf(ctx: CodecContext): ThreadPool<Job, Done> {
  let pool = pools.get(ctx);
  if (!pool) {
    const compress: CompressWorkerData = { zstd: zstdSpec(), codec: ctx };
    pool = new ThreadPool({
      url: workerUrl('./compress-worker.js', import.meta.url), workerData: { compress }, threads: MAX_WORKERS, what: 'a compression worker',
      onSpawn: () => void threadsStarted++,
    });
    pools.set(ctx, pool);
  }
  return pool;
}
