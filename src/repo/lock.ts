// Repository locks (docs/format.md, "Locks"): a JSON record per holder at `locks/<random id>`.
// Shared locks (create, restore, list, check, ...) coexist; an exclusive lock (gc, forget, repair,
// index rebuild) excludes every other lock (docs/maintenance.md, "What can run together"). Acquiring = write ours, list the others, and back off if one conflicts: two
// processes that race both see each other, so at worst both retry (with jitter), never both win.
import { SnapError, isSnapError } from '../core/errors.js';
import { displayPath } from '../core/bytes.js';
import { randomHex } from '../core/ids.js';
import type { Clock } from '../core/clock.js';
import type { HostInfo } from '../core/host.js';
import type { ProgressSink } from '../core/progress.js';
import type { Backend } from '../backend/backend.js';
import { LOCKS } from './layout.js';

export type LockKind = 'shared' | 'exclusive';

export interface LockRecord {
  host: string;
  pid: number;
  /** When the lock was taken (ISO 8601). */
  time: string;
  /** When the holder last proved it is alive (ISO 8601). */
  refreshed: string;
  exclusive: boolean;
  command: string;
}

/** A lock not refreshed for this long is stale, whoever holds it (a host that died, a suspended laptop). */
export const STALE_AFTER_MS = 30 * 60_000;
/** Holders refresh well inside the stale limit: six chances before anyone may break the lock. */
export const REFRESH_EVERY_MS = 5 * 60_000;
/** The default for --lock-wait: the same as for the LevelDB index (src/repo/repository.ts). */
export const DEFAULT_LOCK_WAIT_MS = 60_000;

export interface LockOptions {
  kind: LockKind;
  command: string;
  host: HostInfo;
  clock: Clock;
  sink: ProgressSink;
  /** How long to wait for a conflicting lock to go away before failing with SNAP_LOCKED. */
  waitMs: number;
  staleAfterMs?: number;
  refreshEveryMs?: number;
  /** Base retry interval while waiting; a random jitter of the same size is added. */
  retryMs?: number;
  /** Stops waiting (Ctrl-C): the reason is thrown, and no lock file is left behind. */
  signal?: AbortSignal;
}

const LOCK_NAME = /^locks\/([0-9a-f]{64})$/;

export function encodeLock(r: LockRecord): Buffer {
  return Buffer.from(JSON.stringify(r, null, 2) + '\n');
}

/** A lock record, or undefined when the bytes are not one (lock files are untrusted input too). */
export function decodeLock(b: Buffer): LockRecord | undefined {
  let v: unknown;
  try {
    v = JSON.parse(b.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!v || typeof v !== 'object') return undefined;
  const r = v as Partial<LockRecord>;
  const ok =
    typeof r.host === 'string' && Number.isSafeInteger(r.pid) && typeof r.time === 'string' && typeof r.refreshed === 'string' &&
    !Number.isNaN(Date.parse(r.refreshed)) && typeof r.exclusive === 'boolean' && typeof r.command === 'string';
  return ok ? (r as LockRecord) : undefined;
}

/** Why a lock is stale, or undefined when its holder may still be working. */
export function staleReason(r: LockRecord, host: HostInfo, now: Date, staleAfterMs = STALE_AFTER_MS): string | undefined {
  if (r.host === host.hostname && r.pid !== host.pid && !host.isAlive(r.pid)) return `its process (pid ${r.pid}) is no longer running`;
  const age = now.getTime() - Date.parse(r.refreshed);
  // A refresh time is believed only as far ahead as clocks may disagree (the stale limit assumes
  // they agree within minutes): a lock "refreshed" in a year would otherwise lock the repository
  // for a year, and a crafted one for ever.
  if (-age > staleAfterMs) {
    return `its refresh time ${r.refreshed} is more than ${Math.round(staleAfterMs / 60_000)} min in the future (a wrong clock on its host, or a crafted lock)`;
  }
  if (age > staleAfterMs) return `it has not been refreshed since ${r.refreshed} (more than ${Math.round(staleAfterMs / 60_000)} min ago)`;
  return undefined;
}

export function describeLock(r: LockRecord): string {
  return `${r.exclusive ? 'an exclusive' : 'a shared'} lock of '${displayPath(r.command)}' (pid ${r.pid} on ${displayPath(r.host)}, since ${displayPath(r.time)}, refreshed ${displayPath(r.refreshed)})`;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class RepoLock {
  private timer: NodeJS.Timeout | undefined;
  private lost = false;
  private released = false;

  private constructor(
    private readonly backend: Backend,
    readonly name: string,
    private readonly record: LockRecord,
    private readonly o: LockOptions,
  ) {}

  get exclusive(): boolean {
    return this.record.exclusive;
  }

  /** Take a lock, waiting up to `o.waitMs` for conflicting holders; stale locks are broken. */
  static async acquire(backend: Backend, o: LockOptions): Promise<RepoLock> {
    const name = `${LOCKS}${randomHex(32)}`;
    const time = o.clock.now().toISOString();
    const retry = o.retryMs ?? 500;
    const deadline = Date.now() + o.waitMs;
    let told = false;
    for (;;) {
      const record: LockRecord = { host: o.host.hostname, pid: o.host.pid, time, refreshed: o.clock.now().toISOString(), exclusive: o.kind === 'exclusive', command: o.command };
      try {
        await backend.put(name, encodeLock(record));
      } catch (e) {
        // Stopped while the lock was written: it may be there (the server did it, its answer was
        // lost), so it is removed briefly, or the user is told it may stay.
        if (o.signal?.aborted) await removeLock(backend, name, o).catch(() => {});
        throw e;
      }
      let holder: LockRecord | undefined;
      let holderName = '';
      try {
        const c = await findConflict(backend, name, record.exclusive, o);
        holder = c?.record;
        holderName = c ? `${c.name} in ${backend.location}` : '';
      } catch (e) {
        await removeLock(backend, name, o).catch(() => {});
        throw e;
      }
      if (!holder) {
        const lock = new RepoLock(backend, name, record, o);
        lock.startRefresh();
        return lock;
      }
      // Remove ours before waiting, so two waiters never block each other for good.
      await removeLock(backend, name, o);
      o.signal?.throwIfAborted();
      const left = deadline - Date.now();
      if (left <= 0) {
        const waited = Math.round(o.waitMs / 1000);
        throw new SnapError(
          'SNAP_LOCKED',
          `the repository is locked: ${describeLock(holder)}; gave up after ${waited} s (use --lock-wait to wait longer. A lock of a process on this host that has ended is removed by the next command; any other lock only once it has not been refreshed for ${Math.round((o.staleAfterMs ?? STALE_AFTER_MS) / 60_000)} min: if its holder is surely gone, delete the file ${holderName} yourself)`,
        );
      }
      if (!told) {
        const secs = Math.round(o.waitMs / 1000);
        o.sink.info?.(
          `waiting for ${describeLock(holder)}: it is released when that command ends (waiting up to ${secs} s, set by --lock-wait; Ctrl-C stops waiting)...`,
        );
        told = true;
      }
      await sleep(Math.min(left, retry + Math.random() * retry));
    }
  }

  private startRefresh(): void {
    const every = this.o.refreshEveryMs ?? REFRESH_EVERY_MS;
    this.timer = setInterval(() => {
      this.refresh().catch((e: unknown) => {
        this.o.sink.warn?.({ code: 'SNAP_LOCKED', message: `could not refresh the repository lock: ${e instanceof Error ? e.message : String(e)}` });
      });
    }, every);
    this.timer.unref(); // a held lock never keeps the process alive on its own
  }

  /** Rewrite the record with a new `refreshed` time; notes when another process removed it. */
  async refresh(): Promise<void> {
    if (this.released || this.lost) return;
    if (!(await this.backend.exists(this.name))) {
      this.lost = true;
      this.o.sink.warn?.({ code: 'SNAP_LOCKED', message: `the repository lock ${this.name} was removed by another process (it was judged stale)` });
      return;
    }
    this.record.refreshed = this.o.clock.now().toISOString();
    await this.backend.put(this.name, encodeLock(this.record));
  }

  /** Before a destructive step: throw unless the lock is still ours (and refresh it). */
  async assertHeld(): Promise<void> {
    await this.refresh();
    if (this.lost || this.released) {
      throw new SnapError('SNAP_LOCKED', 'the repository lock was lost (another process removed it as stale); stopping before changing the repository');
    }
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.timer) clearInterval(this.timer);
    if (!this.lost) await removeLock(this.backend, this.name, this.o);
  }
}

/**
 * Delete our lock `name`. A stopped command tries once, briefly (backend/retry.ts,
 * STOPPED_REQUEST_MS): with its server down or hanging the lock stays behind for the stale-lock
 * rules (docs/remote.md), and the user is told so.
 */
async function removeLock(backend: Backend, name: string, o: LockOptions): Promise<void> {
  try {
    await backend.delete(name);
  } catch (e) {
    if (o.signal?.aborted) {
      const why = isSnapError(e, 'SNAP_INTERRUPTED') ? 'the server could not be reached' : e instanceof Error ? e.message : String(e);
      o.sink.warn?.({
        code: 'SNAP_LOCKED',
        path: name,
        message: `could not remove the repository lock ${name} (${why}): it stays until the next command on this machine removes it (its process is no longer running), or another machine once it has not been refreshed for ${Math.round((o.staleAfterMs ?? STALE_AFTER_MS) / 60_000)} min`,
      });
    }
    throw e;
  }
}

/** The first live lock that conflicts with ours; stale locks met on the way are removed. */
async function findConflict(backend: Backend, mine: string, exclusive: boolean, o: LockOptions): Promise<{ record: LockRecord; name: string } | undefined> {
  for await (const blob of backend.list(LOCKS)) {
    if (blob.name === mine || !LOCK_NAME.test(blob.name)) continue;
    let bytes: Buffer;
    try {
      bytes = await backend.get(blob.name);
    } catch (e) {
      // Released between the listing and the read, or a sealed file that does not open (ignored as
      // before). Any other failure (the server still unreachable after every retry) must not let a
      // holder pass for gone: it stops the acquisition.
      if (isSnapError(e, 'SNAP_MISSING_OBJECT') || isSnapError(e, 'SNAP_CORRUPT')) continue;
      throw e;
    }
    const r = decodeLock(bytes);
    if (!r) {
      o.sink.warn?.({ code: 'SNAP_CORRUPT', path: blob.name, message: `ignoring ${blob.name}: not a lock record` });
      continue;
    }
    const why = staleReason(r, o.host, o.clock.now(), o.staleAfterMs);
    if (why) {
      await backend.delete(blob.name);
      o.sink.info?.(`removed a stale lock: ${describeLock(r)}: ${why}`);
      continue;
    }
    if (exclusive || r.exclusive) return { record: r, name: blob.name };
  }
  return undefined;
}
