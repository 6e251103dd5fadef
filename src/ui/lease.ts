// The repository, opened for as long as some request needs it and closed soon after the last one
// finishes. A server runs for hours; while it holds the repository open (its index) and locked,
// other snap commands wait, so it holds both only while requests use them. Requests that overlap
// share one opening.
import type { Repository } from '../repo/repository.js';

export interface RepoHandle {
  repo: Repository;
  /** Releases the lock and closes the repository. */
  close(): Promise<void>;
}

/** Opens the repository the way every read-only command does (cli/context.ts), with a shared lock. */
export type RepoOpener = (signal: AbortSignal) => Promise<RepoHandle>;

export class RepoLease {
  private users = 0;
  private opening: Promise<RepoHandle> | undefined;
  private closing: Promise<void> = Promise.resolve();
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly open: RepoOpener,
    /**
     * How long the repository stays open after its last user: a page load sends a few requests
     * one after another, and reopening costs an index open and a listing of snapshot records.
     */
    private readonly idleMs: number,
    private readonly signal: AbortSignal,
  ) {}

  /** Run `fn` with the repository open; it stays open until `fn` settles. */
  async use<T>(fn: (repo: Repository) => Promise<T>): Promise<T> {
    this.users++;
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    try {
      if (!this.opening) {
        const closed = this.closing;
        this.opening = closed.then(() => this.open(this.signal));
        // A failed open is not kept: the next request tries again.
        this.opening.catch(() => (this.opening = undefined));
      }
      const h = await this.opening;
      return await fn(h.repo);
    } finally {
      if (--this.users === 0) this.idleTimer = setTimeout(() => void this.closeNow(), this.idleMs);
    }
  }

  /** Whether the repository is open now (for tests and the status line). */
  get isOpen(): boolean {
    return this.opening !== undefined;
  }

  /** Server shutdown: waits for the requests still using the repository, then closes it. */
  async closeWhenIdle(): Promise<void> {
    while (this.users > 0) await new Promise((r) => setTimeout(r, 20));
    await this.closeNow();
  }

  async closeNow(): Promise<void> {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const opening = this.opening;
    if (!opening || this.users > 0) return this.closing;
    this.opening = undefined;
    // A failed close must not keep the next opening from starting.
    this.closing = opening.then((h) => h.close()).catch(() => undefined);
    return this.closing;
  }
}
