// A small pool of worker threads for one kind of job (a compiled worker file: core/worker-url.ts).
// Jobs go to the least busy thread; a new thread starts only when every thread has a job already
// and there are fewer than the pool's limit, never ahead of need. Only a thread with a job keeps
// the process alive, so an idle pool never holds a command open, and a thread is never ended
// while it runs a job (zstd-napi built for Node-API 10 aborts the process when a thread is ended
// inside one of its calls: see compress-pool.ts). The worker side is `serveJobs`.
import { parentPort, Worker } from 'node:worker_threads';
import type { Transferable } from 'node:worker_threads';

interface Slot {
  worker: Worker;
  outstanding: number;
}

interface Waiting<Res> {
  slot: Slot;
  resolve: (r: Res) => void;
  reject: (e: unknown) => void;
}

/** What a pool thread answers: its result, or the message of what it threw. */
type Reply<Res> = { id: number; result: Res } | { id: number; error: string };

export class ThreadPool<Req, Res> {
  private readonly slots: Slot[] = [];
  private readonly waiting = new Map<number, Waiting<Res>>();
  private nextId = 1;

  /**
   * `url`: the compiled worker; `workerData`: what every thread starts with; `threads`: the most it
   * starts (a run may ask for fewer); `what`: named in errors; `onSpawn`: told of each new thread.
   */
  constructor(private readonly o: { url: URL; workerData: unknown; threads: number; what: string; onSpawn?: () => void }) {}

  private spawn(): Slot {
    const worker = new Worker(this.o.url, { workerData: this.o.workerData });
    this.o.onSpawn?.();
    const slot: Slot = { worker, outstanding: 0 };
    worker.on('message', (m: Reply<Res>) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (--slot.outstanding === 0) worker.unref();
      if ('error' in m) w.reject(new Error(`${this.o.what}: ${m.error}`));
      else w.resolve(m.result);
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
    worker.on('exit', (code) => fail(new Error(`${this.o.what}: a thread exited (code ${code})`)));
    // Only a thread with a job keeps the process alive (after the listeners: adding a 'message'
    // listener refs the thread's port again).
    worker.unref();
    return slot;
  }

  /**
   * Run one job on the least busy of the first `threads` threads; `transfer` moves buffers to the
   * thread instead of copying them.
   */
  run(req: Req, transfer: Transferable[] = [], threads = this.o.threads): Promise<Res> {
    const limit = Math.min(threads, this.o.threads);
    let slot: Slot | undefined;
    for (const s of this.slots.slice(0, limit)) if (!slot || s.outstanding < slot.outstanding) slot = s;
    if (!slot || (slot.outstanding > 0 && this.slots.length < limit)) this.slots.push((slot = this.spawn()));
    const id = this.nextId++;
    if (slot.outstanding++ === 0) slot.worker.ref();
    const chosen = slot;
    return new Promise<Res>((resolve, reject) => {
      this.waiting.set(id, { slot: chosen, resolve, reject });
      chosen.worker.postMessage({ id, req }, transfer);
    });
  }
}

/**
 * The worker side: answer every job with `handle`'s result (and the buffers it names, moved back),
 * or with the message of what it threw. `ready` runs first (loading a codec); jobs wait for it.
 */
export function serveJobs<Req, Res>(handle: (req: Req) => { result: Res; transfer?: Transferable[] }, ready?: Promise<unknown>): void {
  const port = parentPort;
  if (!port) throw new Error('serveJobs runs on a worker thread');
  const started = ready ?? Promise.resolve();
  port.on('message', (m: { id: number; req: Req }) => {
    void started.then(() => {
      let reply: { msg: Reply<Res>; transfer: Transferable[] };
      try {
        const r = handle(m.req);
        reply = { msg: { id: m.id, result: r.result }, transfer: r.transfer ?? [] };
      } catch (e) {
        reply = { msg: { id: m.id, error: e instanceof Error ? e.message : String(e) }, transfer: [] };
      }
      port.postMessage(reply.msg, reply.transfer);
    }, (e: unknown) => port.postMessage({ id: m.id, error: e instanceof Error ? e.message : String(e) }));
  });
}
