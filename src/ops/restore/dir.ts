// Restore's directory handles (issue 20). Every directory a restore writes into is an open
// descriptor, opened with O_DIRECTORY|O_NOFOLLOW relative to its parent's descriptor, and every
// entry inside it is named `/proc/self/fd/N/<name>`: Linux resolves such a path from the open
// directory itself, so no rename or symlink placed by another user anywhere above it can
// redirect a write (Node's fs has no openat; this is its stand-in, without native code). Owner,
// mode and times of a directory are set on its descriptor (fchown, fchmod, futimes), of symlinks
// and special files on an O_PATH descriptor of the entry itself, never through a path that is
// looked up again. The paths are short whatever the depth, so PATH_MAX never limits a restore.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SnapError, errnoCode, fromSystemError } from '../../core/errors.js';
import { displayName } from '../../core/bytes.js';

/** open(2)'s O_PATH on Linux (the same value on x86, ARM and RISC-V); Node does not export it. */
export const O_PATH = 0o10000000;
const C = fs.constants;
export const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;
/** For a directory its owner may not read: a descriptor that only names it (enough to work inside it). */
export const DIR_PATH_FLAGS = O_PATH | C.O_DIRECTORY | C.O_NOFOLLOW;

/** The path of `name` inside the open directory `fd`, resolved from the descriptor. */
export function fdPath(fd: number, name?: Buffer | string): Buffer {
  const base = `/proc/self/fd/${fd}`;
  if (name === undefined) return Buffer.from(base);
  return Buffer.concat([Buffer.from(`${base}/`), typeof name === 'string' ? Buffer.from(name) : name]);
}

/** The same for another process (a helper program such as mkfifo, which does not inherit our descriptors). */
export function fdPathFor(pid: number, fd: number, name: string): string {
  return `/proc/${pid}/fd/${fd}/${name}`;
}

/**
 * Pseudo file systems (statfs f_type, from linux/magic.h). Writing a restore there is never
 * meant and can hang: `snap restore latest /proc/x` spun at 80% CPU in Node's recursive mkdir.
 */
const PSEUDO_FS: Record<number, string> = {
  0x9fa0: 'proc',
  0x62656572: 'sysfs',
  0x1cd1: 'devpts',
  0x27e0eb: 'cgroup',
  0x63677270: 'cgroup2',
  0x64626720: 'debugfs',
  0x74726163: 'tracefs',
  0x73636673: 'securityfs',
  0x6165676c: 'pstore',
  0xcafe4a11: 'bpf',
  0x62656570: 'configfs',
  0xde5e81e4: 'efivarfs',
  0x65735543: 'fusectl',
  0x19800202: 'mqueue',
  0xf97cff8c: 'selinuxfs',
  0x42494e4d: 'binfmt_misc',
  0x50495045: 'pipefs',
  0x534f434b: 'sockfs',
  0x6e736673: 'nsfs',
};

/** The name of the pseudo file system `p` is on, or undefined for a real one. */
export function pseudoFs(p: string | Buffer): string | undefined {
  try {
    return PSEUDO_FS[fs.statfsSync(p).type];
  } catch {
    return undefined;
  }
}

/**
 * Create the restore target (the folders missing on the way, one mkdir each: never Node's
 * recursive mkdir) and open it. Refuses a target on a pseudo file system. The target itself is
 * the user's own path and may go through symlinks; everything below it is reached by handle.
 */
export function openTarget(target: Buffer): { fd: number; pathOnly: boolean } {
  // Bytes all the way: a target whose name is not UTF-8 is created and opened as given.
  const shown = displayName(target);
  const missing: Buffer[] = [];
  let at = target;
  for (;;) {
    try {
      fs.lstatSync(at);
      break;
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw fromSystemError(e, `restore target ${shown}`);
      const up = dirnameBytes(at);
      if (up.equals(at)) break;
      missing.push(at);
      at = up;
    }
  }
  const kind = pseudoFs(at);
  if (kind) {
    throw new SnapError('SNAP_USAGE', `restore target ${shown} is on ${kind}, a pseudo file system that holds no files; choose a folder on a disk`);
  }
  for (const dir of missing.reverse()) {
    try {
      fs.mkdirSync(dir, { mode: 0o700 });
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw fromSystemError(e, `creating restore target ${displayName(dir)}`);
    }
  }
  try {
    try {
      return { fd: fs.openSync(target, C.O_RDONLY | C.O_DIRECTORY), pathOnly: false };
    } catch (e) {
      if (errnoCode(e) !== 'EACCES') throw e;
      return { fd: fs.openSync(target, O_PATH | C.O_DIRECTORY), pathOnly: true };
    }
  } catch (e) {
    if (errnoCode(e) === 'ENOTDIR') throw new SnapError('SNAP_EXISTS', `restore target ${shown} exists and is not a directory`);
    throw fromSystemError(e, `restore target ${shown}`);
  }
}

/** path.dirname for an absolute path as bytes ('/' stays '/'). */
function dirnameBytes(p: Buffer): Buffer {
  let end = p.length;
  while (end > 1 && p[end - 1] === 0x2f) end--;
  const slash = p.lastIndexOf(0x2f, end - 1);
  if (slash <= 0) return Buffer.from('/');
  return p.subarray(0, slash);
}
