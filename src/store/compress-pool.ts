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
import { Worker } from 'node:worker_threads';
import { workerUrl } from '../core/worker-url.js';
import type { CompressMessage, CompressWorkerData } from './compress-worker.js';
import type { CodecContext } from './object-codec.js';
import { zstdSpec } from './zstd.js';

/** A batch: `objs` holds (offset, length) pairs of objects inside `ring`. */
export interface CompressJob {
  ring: SharedArrayBuffer;
  level: number;
  objs: Int32Array;
}

/** Per object, (codec, stored length): the stored bytes are at the object's offset in the ring. */
export type CompressResult = Int32Array;

interface Slot {
  worker: Worker;
  outstanding: number;
}

/** Compression threads this process has started (each stays until the process ends or it fails). */
let threadsStarted = 0;

/** How many compression threads this process has started: at most one per batch in flight at once. */
export function compressThreadsStarted(): number {
  return threadsStarted;
}

interface Waiting {
  slot: Slot;
  resolve: (r: CompressResult) => void;
  reject: (e: unknown) => void;
}

/** Worker count for this machine: one per available core (the main thread reads, chunks and hashes meanwhile). */
export function defaultCompressWorkers(): number {
  return Math.min(8, Math.max(1, availableParallelism()));
}

class CompressPool {
  private readonly slots: Slot[] = [];
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  private readonly spec = zstdSpec();

  constructor(private readonly ctx: CodecContext) {}

  private spawn(): Slot {
    const compress: CompressWorkerData = { zstd: this.spec, codec: this.ctx };
    const worker = new Worker(workerUrl('./compress-worker.js', import.meta.url), { workerData: { compress } });
    threadsStarted++;
    const slot: Slot = { worker, outstanding: 0 };
    worker.on('message', (m: { id: number; out: Int32Array }) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (--slot.outstanding === 0) worker.unref();
      w.resolve(m.out);
    });
    const fail = (e: unknown): void => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      for (const [id, w] of this.waiting) {
        if (w.slot !== slot) continue;
        this.waiting.delete(id);
        w.reject(e);
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`a compression worker exited (code ${code})`)));
    // Only a worker with a job keeps the process alive. After the listeners: adding a 'message'
    // listener refs the worker's port again.
    worker.unref();
    return slot;
  }

  /**
   * Compress a batch on the least busy of `workers` threads; a new thread starts (and takes the
   * batch) only when every thread has a batch already and there are fewer than `workers`.
   */
  run(job: CompressJob, workers: number): Promise<CompressResult> {
    let slot: Slot | undefined;
    for (const s of this.slots.slice(0, workers)) if (!slot || s.outstanding < slot.outstanding) slot = s;
    if (!slot || (slot.outstanding > 0 && this.slots.length < workers)) this.slots.push((slot = this.spawn()));
    const id = this.nextId++;
    if (slot.outstanding++ === 0) slot.worker.ref(); // a job in flight keeps the process alive
    return new Promise<CompressResult>((resolve, reject) => {
      this.waiting.set(id, { slot, resolve, reject });
      const m: CompressMessage = { id, ring: job.ring, level: job.level, objs: job.objs };
      slot.worker.postMessage(m);
    });
  }
}

/**
 * Rings an object store has finished with, for the next store of the process. A worker keeps each
 * ring it was sent until its own garbage collection, which a thread that compresses a little now
 * and then may not run for hours: a watch whose every backup made a ring (16 MiB and more) kept
 * them all, RSS growing by the pages each backup touched (140 KB per nothing-changed rescan,
 * 130 MB in 300 under load) and ArrayBuffer memory by gigabytes. Reused, the rings the process
 * holds are as many as stores that compressed at once.
 */
const spareRings: SharedArrayBuffer[] = [];
const SPARE_RINGS = 2;

/** A ring of `size` bytes: one a finished store gave back, else a new one. */
export function takeRing(size: number): SharedArrayBuffer {
  const i = spareRings.findIndex((r) => r.byteLength === size);
  return i >= 0 ? spareRings.splice(i, 1)[0]! : new SharedArrayBuffer(size);
}

/** Give back a ring no job uses any more (every batch sent in it has come back). */
export function giveBackRing(ring: SharedArrayBuffer): void {
  if (spareRings.length < SPARE_RINGS && !spareRings.includes(ring)) spareRings.push(ring);
}

/** One pool per codec context (objects in the clear: one for the process). */
const pools = new Map<CodecContext, CompressPool>();

export function compressOnWorkers(job: CompressJob, workers: number, ctx: CodecContext): Promise<CompressResult> {
  let pool = pools.get(ctx);
  if (!pool) pools.set(ctx, (pool = new CompressPool(ctx)));
  return pool.run(job, workers);
}
