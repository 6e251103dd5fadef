// Tests that write gigabytes (a 2 GiB export, a 1 GiB backup and restore) need that much free
// space where the run's temporary folder is. On a disk that other work has nearly filled they
// would fail with SNAP_NO_SPACE, which says nothing about snap: they are skipped instead, saying
// how much they need and how much there is (full-disk.test.ts tests a full disk on purpose).
import * as fs from 'node:fs';
import * as os from 'node:os';

const GiB = 2 ** 30;

/** Bytes an unprivileged writer may still use on the file system holding `dir`. */
export function freeBytes(dir = os.tmpdir()): number {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
}

/** Why a test that writes `bytes` cannot run here, or undefined when there is room. */
export function lackOfRoom(bytes: number, dir = os.tmpdir()): string | undefined {
  const free = freeBytes(dir);
  if (free >= bytes) return undefined;
  return `needs ${(bytes / GiB).toFixed(1)} GiB free in ${dir}, which has ${(free / GiB).toFixed(2)} GiB`;
}
