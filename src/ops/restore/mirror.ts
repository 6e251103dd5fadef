// `restore --delete` (issue 15): make the restored paths match the snapshot, as `rsync --delete`
// does, by removing what the snapshot does not have. Only inside directories at or below a
// restored path (a source path of the snapshot, or an --include), never in the folders on the
// way to one, never outside the target. Everything is removed through the directory handles of
// restore-dir.ts: a directory is opened with O_NOFOLLOW relative to its parent's descriptor and
// emptied through its own, so a symlink, wherever it is planted, is removed as a link and never
// followed, and a rename by another user above cannot redirect a removal. A dry run lists the
// same removals, reading the target by path and never going through a symlink either.
import * as fs from 'node:fs';
import { errnoCode } from '../../core/errors.js';
import { joinPath } from '../../core/bytes.js';
import type { Node } from '../../model/node.js';
import type { Tree } from '../../model/tree.js';
import { DIR_FLAGS, fdPath } from './dir.js';

/** One entry removed (or, in a dry run, to be removed); directories after their contents. */
export interface Removal {
  dest: Buffer;
  dir: boolean;
}

export interface MirrorSink {
  removed(r: Removal): Promise<void> | void;
  /** An entry that could not be removed: a warning, the restore goes on. */
  failed(shown: Buffer, e: unknown): void;
}

/** Whether what is at the target must go to make room for `node` (a directory for a non-directory, or the reverse). */
function wrongKind(node: Node | undefined, isDir: boolean): boolean {
  if (node === undefined) return true;
  return (node.type === 'dir') !== isDir;
}

/** Names a restore writes for a moment (restore.ts): never removed here. */
function isRestoreTemp(name: Buffer, tmpPrefix: Buffer): boolean {
  return name.subarray(0, tmpPrefix.length).equals(tmpPrefix);
}

/**
 * Remove from the open directory `fd` (shown as `shown`) every entry that `nodes` (its contents
 * in the snapshot) lacks, or holds as another kind (a file where a directory was, a symlink where
 * the snapshot has a directory). Returns how many entries were removed.
 */
export async function pruneDir(fd: number, shown: Buffer, nodes: Tree, tmpPrefix: Buffer, sink: MirrorSink): Promise<number> {
  let names: Buffer[];
  try {
    names = fs.readdirSync(fdPath(fd, '.'), { encoding: 'buffer' });
  } catch (e) {
    sink.failed(shown, e);
    return 0;
  }
  let n = 0;
  for (const name of names) {
    if (isRestoreTemp(name, tmpPrefix)) continue;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(fdPath(fd, name));
    } catch {
      continue; // gone meanwhile
    }
    if (!wrongKind(nodes.find(name), st.isDirectory())) continue;
    n += await removeEntry(fd, name, joinPath(shown, name), st.isDirectory(), sink);
  }
  return n;
}

interface Level {
  fd: number;
  shown: Buffer;
  names: Buffer[];
  i: number;
  /** This directory, as its parent's entry. */
  parentFd: number;
  name: Buffer;
}

/**
 * Remove `name` from the open directory `parentFd`: a directory with everything in it (a stack
 * of its own, any depth), anything else with unlink (a symlink is removed, never followed).
 */
export async function removeEntry(parentFd: number, name: Buffer, shown: Buffer, isDir: boolean, sink: MirrorSink): Promise<number> {
  if (!isDir) {
    try {
      fs.unlinkSync(fdPath(parentFd, name));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return 0;
      sink.failed(shown, e);
      return 0;
    }
    await sink.removed({ dest: shown, dir: false });
    return 1;
  }
  let n = 0;
  const stack: Level[] = [];
  const unlinked: Buffer[] = [];
  const open = (pfd: number, nm: Buffer, sh: Buffer): boolean => {
    let fd: number;
    try {
      // O_NOFOLLOW: a directory swapped for a symlink since it was looked at is not entered.
      fd = fs.openSync(fdPath(pfd, nm), DIR_FLAGS);
    } catch (e) {
      if (errnoCode(e) === 'ELOOP' || errnoCode(e) === 'ENOTDIR') {
        // No longer a directory: remove whatever it is now, as an entry.
        try {
          fs.unlinkSync(fdPath(pfd, nm));
          n++;
          unlinked.push(sh);
        } catch (e2) {
          sink.failed(sh, e2);
        }
        return false;
      }
      sink.failed(sh, e);
      return false;
    }
    let names: Buffer[];
    try {
      names = fs.readdirSync(fdPath(fd, '.'), { encoding: 'buffer' });
    } catch (e) {
      fs.closeSync(fd);
      sink.failed(sh, e);
      return false;
    }
    stack.push({ fd, shown: sh, names, i: 0, parentFd: pfd, name: nm });
    return true;
  };
  try {
    open(parentFd, name, shown);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.i >= top.names.length) {
        stack.pop();
        fs.closeSync(top.fd);
        try {
          fs.rmdirSync(fdPath(top.parentFd, top.name));
          n++;
          await sink.removed({ dest: top.shown, dir: true });
        } catch (e) {
          sink.failed(top.shown, e);
        }
        continue;
      }
      const nm = top.names[top.i++]!;
      const sh = joinPath(top.shown, nm);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(fdPath(top.fd, nm));
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        open(top.fd, nm, sh);
        continue;
      }
      try {
        fs.unlinkSync(fdPath(top.fd, nm));
        n++;
        await sink.removed({ dest: sh, dir: false });
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') sink.failed(sh, e);
      }
    }
  } finally {
    for (const l of stack) fs.closeSync(l.fd);
  }
  for (const u of unlinked) await sink.removed({ dest: u, dir: false });
  return n;
}

/**
 * A dry run's removals in the directory at `dirPath` (a real directory, reached without a
 * symlink below the target): listed, nothing touched. Returns how many.
 */
export async function planPrune(dirPath: Buffer, nodes: Tree, tmpPrefix: Buffer, sink: MirrorSink): Promise<number> {
  let names: Buffer[];
  try {
    names = fs.readdirSync(dirPath, { encoding: 'buffer' });
  } catch {
    return 0;
  }
  let n = 0;
  for (const name of names) {
    if (isRestoreTemp(name, tmpPrefix)) continue;
    const p = joinPath(dirPath, name);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      continue;
    }
    if (!wrongKind(nodes.find(name), st.isDirectory())) continue;
    n += st.isDirectory() ? await planTree(p, sink) : (await sink.removed({ dest: p, dir: false }), 1);
  }
  return n;
}

/** Everything in the real directory `p` and `p` itself, depth first, as a removal would go. */
async function planTree(p: Buffer, sink: MirrorSink): Promise<number> {
  let n = 0;
  const stack: { p: Buffer; names: Buffer[]; i: number }[] = [];
  const push = (q: Buffer): void => {
    let names: Buffer[] = [];
    try {
      names = fs.readdirSync(q, { encoding: 'buffer' });
    } catch {
      // unreadable: the removal would fail on it too; listed as a whole
    }
    stack.push({ p: q, names, i: 0 });
  };
  push(p);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.i >= top.names.length) {
      stack.pop();
      await sink.removed({ dest: top.p, dir: true });
      n++;
      continue;
    }
    const q = joinPath(top.p, top.names[top.i++]!);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(q);
    } catch {
      continue;
    }
    if (st.isDirectory()) push(q);
    else {
      await sink.removed({ dest: q, dir: false });
      n++;
    }
  }
  return n;
}

/** Whether `p` is a directory itself, not a symlink to one (a dry run descends only into those). */
export function isRealDir(p: Buffer): boolean {
  try {
    return fs.lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}
