// Every test run gets one temporary folder (TMPDIR, so os.tmpdir() and mkdtemp use it, in the
// workers and in the CLI processes they start) and removes it at the end: end-to-end tests write
// gigabytes (1 GiB files, repositories, restores), and leaving them behind filled the disk.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export default function setup(): () => void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-tests-'));
  // Traversable (not listable) by others: some tests run the CLI as the unprivileged user nobody
  // in folders they hand to it.
  fs.chmodSync(dir, 0o711);
  process.env.TMPDIR = dir;
  return () => {
    // SNAP_KEEP_TMP=1 keeps everything for a post-mortem (the torture tests' cleanupTmp honours it too).
    if (process.env.SNAP_KEEP_TMP) {
      console.info(`SNAP_KEEP_TMP: the run's temporary folder is kept: ${dir}`);
      return;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
}
