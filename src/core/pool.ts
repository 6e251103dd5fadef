// A bounded task pool: at most `concurrency` tasks run, and `run` waits while `maxQueued` more
// are waiting, so a fast producer (a directory walk) cannot queue unbounded work and memory.
export class TaskPool {
  private running = 0;
  private queue: (() => void)[] = [];
  private spaceWaiters: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  private firstError: unknown;
  private failed = false;

  constructor(private readonly concurrency: number, private readonly maxQueued = concurrency * 4) {}

  /** Schedule `fn`; resolves when it is accepted (not when it finishes). Errors surface in `drain`. */
  async run(fn: () => Promise<void>): Promise<void> {
    while (this.queue.length >= this.maxQueued) await new Promise<void>((r) => this.spaceWaiters.push(r));
    this.throwIfFailed();
    const start = (): void => {
      this.running++;
      fn()
        .catch((e) => {
          if (!this.failed) {
            this.failed = true;
            this.firstError = e;
          }
        })
        .finally(() => {
          this.running--;
          const next = this.queue.shift();
          if (next) next();
          this.spaceWaiters.shift()?.();
          if (this.running === 0 && this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
        });
    };
    if (this.running < this.concurrency) start();
    else this.queue.push(start);
  }

  /** Wait until every scheduled task has finished; rethrow the first failure. */
  async drain(): Promise<void> {
    if (this.running > 0 || this.queue.length > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failed) throw this.firstError;
  }
}
