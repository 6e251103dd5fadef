// The one durable write of a whole file: a temporary name in the destination's folder (created
// exclusively), the contents, fsync, close, then rename(2) over the destination (or link(2),
// which refuses to replace it: an atomic create-if-absent), then fsync of the folder. A crash
// leaves the old file or the complete new one, never a torn one; on any failure the temporary
// file is removed. Used by the local backend (every blob), `export` to a file, the schedule's
// unit files and the shared index's owner file.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fsPath } from './bytes.js';
import { errnoCode } from './errors.js';

export type FsPath = string | Buffer;

/** What a durable write needs besides the contents. */
export interface DurableTarget {
  /** The folder both names are in (fsynced after the rename). */
  dir: FsPath;
  /** The temporary name (the caller's naming scheme: backends list and clean up their own). */
  tmp: FsPath;
  dest: FsPath;
  /** The new file's mode (default 0600). */
  mode?: number;
  /**
   * 'replace' (default): rename over whatever is at dest. 'create': link(2), which fails when
   * dest exists (the write then returns false and dest is untouched).
   */
  publish?: 'replace' | 'create';
  /**
   * With 'create', on a file system without hard links (EPERM, ENOTSUP, EMLINK, EXDEV): check
   * that dest is absent and rename (two writers can race; used only where that is acceptable).
   */
  linkFallback?: boolean;
}

/** Errors of link(2) that mean "this file system has no hard links here", not "dest exists". */
const NO_LINKS = ['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK', 'EXDEV'];

/**
 * Write a file durably (see the top of this file). `fill` writes the contents through the handle;
 * it may throw to abandon the write. It may return a function to run after the fsync, before the
 * handle is closed (a write stream on the handle is destroyed there). Returns false only with
 * publish 'create' when dest existed.
 */
export async function writeDurable(t: DurableTarget, fill: (fh: fsp.FileHandle) => Promise<void | (() => void)>): Promise<boolean> {
  const fh = await fsp.open(t.tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, t.mode ?? 0o600);
  let closed = false;
  try {
    const release = await fill(fh);
    try {
      await fh.sync();
    } finally {
      release?.();
    }
    closed = true;
    await fh.close();
    if (!(await publish(t))) return false;
  } catch (e) {
    if (!closed) await fh.close().catch(() => {});
    await fsp.rm(t.tmp, { force: true }).catch(() => {});
    throw e;
  }
  await syncDir(t.dir);
  return true;
}

/** writeDurable of bytes or text. */
export function writeFileDurable(t: DurableTarget, data: Uint8Array | string): Promise<boolean> {
  return writeDurable(t, async (fh) => writeAllTo(fh, typeof data === 'string' ? Buffer.from(data) : data));
}

/** Write all of `data` at the handle's current position, or at `position` of the file. */
export async function writeAllTo(fh: fsp.FileHandle, data: Uint8Array, position?: number): Promise<void> {
  let off = 0;
  while (off < data.length) off += (await fh.write(data, off, data.length - off, position === undefined ? null : position + off)).bytesWritten;
}

/** Move the finished temporary file to dest; false when 'create' found dest there. */
async function publish(t: DurableTarget): Promise<boolean> {
  if ((t.publish ?? 'replace') === 'replace') {
    await fsp.rename(t.tmp, t.dest);
    return true;
  }
  try {
    await fsp.link(t.tmp, t.dest);
  } catch (e) {
    const code = errnoCode(e) ?? '';
    if (code === 'EEXIST') {
      await fsp.rm(t.tmp, { force: true });
      return false;
    }
    if (!t.linkFallback || !NO_LINKS.includes(code)) throw e;
    if (await fsp.lstat(t.dest).then(() => true, (e2: unknown) => (errnoCode(e2) === 'ENOENT' ? false : Promise.reject(e2)))) {
      await fsp.rm(t.tmp, { force: true });
      return false;
    }
    await fsp.rename(t.tmp, t.dest);
    return true;
  }
  await fsp.rm(t.tmp, { force: true });
  return true;
}

/**
 * fsync a folder, so a rename in it survives a crash. Some file systems cannot fsync a folder
 * (EINVAL, ENOTSUP): the file itself is already durable, and that is the most they offer.
 */
export async function syncDir(dir: FsPath): Promise<void> {
  const d = await fsp.open(dir, 'r');
  try {
    await d.sync();
  } catch (e) {
    if (!['EINVAL', 'ENOTSUP', 'EOPNOTSUPP'].includes(errnoCode(e) ?? '')) throw e;
  } finally {
    await d.close();
  }
}

/**
 * mkdir -p whose failure is the system's own: Node's recursive mkdir reports ENOENT where mkdir(2)
 * said EROFS (a read-only file system) or EACCES. On ENOENT the missing folders are made one by
 * one from the highest, and the first one's own error is thrown. Returns the first folder made.
 * `p` is a path as snap holds it (core/bytes.ts: bytes that are not UTF-8 escaped; fsPath for fs).
 */
export async function makeDirs(p: string, mode: number): Promise<string | undefined> {
  const native = fsPath;
  try {
    return await fsp.mkdir(native(p), { recursive: true, mode });
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
    const missing: string[] = [];
    for (let d = p; ; ) {
      const up = path.dirname(d);
      missing.unshift(d);
      if (up === d || (await fsp.stat(native(up)).then(() => true, () => false))) break;
      d = up;
    }
    for (const d of missing) {
      try {
        await fsp.mkdir(native(d), { mode });
      } catch (e2) {
        if (errnoCode(e2) !== 'EEXIST') throw e2;
      }
    }
    return missing[0];
  }
}
