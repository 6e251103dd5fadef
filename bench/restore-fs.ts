// A fresh file system for each restore the benchmarks time. A restore into a folder of a disk that
// has just lost tens of thousands of files (the corpus copied again for each tool, the last tool's
// restore removed) is slowed by ext4's inode allocator walking past the recently deleted inodes,
// by an amount that depends on what came before it, not on the tool: restores of the same build
// and corpus took 5 to 17 s on this VM (docs/performance.md, "File creation on this machine's
// ext4"), and in `bench:s3-tools` one tool's restore ratio ranged 0.59-1.12 over five rounds.
// Where this process may mount (root, with mkfs.ext4 and mount), each restore gets an ext4 made
// for it on a sparse loop image (inode tables and journal written at mkfs, so nothing initialises
// in the background while the restore runs), mounted at the restore folder and removed after;
// elsewhere the restore goes to a plain folder, as before, and the reports say which.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { hasExecutable } from './measure.js';

/** Room for the bench corpus (about 1.1 GB restored) several times over; sparse, so only what is written takes disk. */
const IMAGE_BYTES = 4 * 1024 ** 3;

/** What the restores of this run go into: a fresh ext4 each time, or a plain folder. */
export function restoreFsKind(): 'fresh ext4' | 'folder' {
  return process.getuid?.() === 0 && hasExecutable('mkfs.ext4') && hasExecutable('mount') && hasExecutable('umount') ? 'fresh ext4' : 'folder';
}

/**
 * Make `at` an empty folder to restore into: a fresh ext4 mounted there (image file `image`) when
 * restoreFsKind() says so, else a plain empty folder. Returns what undoes it (unmount and remove
 * the image, or remove the folder). `files`: how many files and folders the restore makes, when
 * more than the default image's inodes (about 262,000) hold: the image then has an inode for each
 * and 8 KiB of room (a block and its share of folders) for each besides.
 */
export function freshRestoreTarget(at: string, image: string, o: { files?: number } = {}): () => void {
  // A file system an interrupted run left mounted there is unmounted first.
  if (spawnSync('mountpoint', ['-q', at]).status === 0) run('umount', [at]);
  fs.rmSync(at, { recursive: true, force: true });
  fs.mkdirSync(at, { recursive: true });
  if (restoreFsKind() === 'folder') return () => fs.rmSync(at, { recursive: true, force: true });
  fs.rmSync(image, { force: true });
  fs.writeFileSync(image, '');
  const inodes = o.files !== undefined && o.files > IMAGE_BYTES / 16384 / 1.2 ? Math.ceil(o.files * 1.2) : undefined;
  fs.truncateSync(image, inodes ? Math.max(IMAGE_BYTES, inodes * 8192) : IMAGE_BYTES);
  run('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', ...(inodes ? ['-N', String(inodes)] : []), image]);
  run('mount', ['-o', 'loop', image, at]);
  return () => {
    // Unmounting writes back what the restore left in the page cache, and `sync` what is left of
    // it on the disk below: not part of any timed step, nor of the next one.
    run('umount', [at]);
    fs.rmSync(image, { force: true });
    fs.rmSync(at, { recursive: true, force: true });
    run('sync', []);
  };
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${(r.stderr || r.stdout || String(r.error)).trim()}`);
}
