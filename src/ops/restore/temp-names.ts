// Names of a restore's temporary entries: files written under a temporary name and renamed, and
// directories made hidden until complete (restore.ts DirState.hidden). Each name says which
// process made it: `.snap-restore-<host>-<pid>-<run>-<n>` (<host> eight hex digits of the SHA-256
// of the host name, <run> eight random hex digits of the restore). A restore that was killed
// leaves such entries behind, and the next restore into the same folder removes them; one still
// running, into the same target from another terminal, must keep its own. So an entry is a
// leftover when the process that made it is gone: on this host, its pid is not running (or is
// this process's, from another restore run: a pid used again); from another host (a shared
// file system), it has not changed for STALE_MS. Names of the older form
// (`.snap-restore-<run>-<n>`, no process named) are leftovers, as they always were.
import { createHash } from 'node:crypto';
import type { HostInfo } from '../../core/host.js';
import { randomHex } from '../../core/ids.js';

const TMP_PREFIX = '.snap-restore-';
export const TMP_PREFIX_B = Buffer.from(TMP_PREFIX);

/** An entry of another host's restore is a leftover once unchanged this long. */
export const STALE_MS = 24 * 60 * 60 * 1000;

const NAMED = /^\.snap-restore-([0-9a-f]{8})-(\d+)-([0-9a-f]{8})-\d+$/;

function hostTag(hostname: string): string {
  return createHash('sha256').update(hostname).digest('hex').slice(0, 8);
}

/** The temporary names of one restore run. */
export class TempNames {
  private readonly tag: string;
  private readonly run = randomHex(4);
  private readonly prefix: string;
  private n = 0;

  constructor(private readonly host: HostInfo) {
    this.tag = hostTag(host.hostname);
    this.prefix = `${TMP_PREFIX}${this.tag}-${host.pid}-${this.run}-`;
  }

  /** A name unique within this run; O_EXCL (or link/symlink's EEXIST) guards against anyone else's. */
  next(): string {
    return `${this.prefix}${this.n++}`;
  }

  /**
   * Whether `name` is a restore's temporary entry (it starts with TMP_PREFIX) that a restore no
   * longer running left behind. `changedMs`: when the entry last changed (its ctime), asked only
   * for another host's.
   */
  isLeftover(name: Buffer, changedMs: () => number | undefined, now: number): boolean {
    if (!name.subarray(0, TMP_PREFIX_B.length).equals(TMP_PREFIX_B)) return false;
    const m = NAMED.exec(name.toString('latin1'));
    if (!m) return true;
    const [, tag, pidText, run] = m;
    const pid = Number(pidText);
    if (tag === this.tag) {
      if (pid === this.host.pid) return run !== this.run;
      return !this.host.isAlive(pid);
    }
    const changed = changedMs();
    return changed !== undefined && now - changed > STALE_MS;
  }
}
