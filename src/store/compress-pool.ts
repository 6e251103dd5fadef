// zstd compression on worker threads. zstd is synchronous (store/zstd.ts), so on the main thread it ran in
// series with reading, chunking and hashing (~55 % of a first backup's CPU time). Workers take
// batches of objects that the object store has copied into a SharedArrayBuffer ring, compress each
// one into a private scratch buffer and, when it saves enough, copy the frame back over the
// object's own bytes in the ring: the result always fits where the input was, so no buffer is
// allocated per object on either side and memory stays the ring plus one scratch per worker.
// The workers' code is compress-worker.ts (encodeObjectSync of store/object-codec.ts).
// The pool is shared by every object store of the process; idle workers do not keep it alive.
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

  /** Compress a batch on the least busy of `workers` threads (spawned on first use). */
  run(job: CompressJob, workers: number): Promise<CompressResult> {
    while (this.slots.length < workers) this.slots.push(this.spawn());
    let slot = this.slots[0]!;
    for (let i = 1; i < workers; i++) if (this.slots[i]!.outstanding < slot.outstanding) slot = this.slots[i]!;
    const id = this.nextId++;
    if (slot.outstanding++ === 0) slot.worker.ref(); // a job in flight keeps the process alive
    return new Promise<CompressResult>((resolve, reject) => {
      this.waiting.set(id, { slot, resolve, reject });
      const m: CompressMessage = { id, ring: job.ring, level: job.level, objs: job.objs };
      slot.worker.postMessage(m);
    });
  }
}

/** One pool per codec context (objects in the clear: one for the process). */
const pools = new Map<CodecContext, CompressPool>();

export function compressOnWorkers(job: CompressJob, workers: number, ctx: CodecContext): Promise<CompressResult> {
  let pool = pools.get(ctx);
  if (!pool) pools.set(ctx, (pool = new CompressPool(ctx)));
  return pool.run(job, workers);
}
