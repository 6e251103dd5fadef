// The reserve of a local repository (docs/format.md, "Layout"): a file of RESERVE_BYTES at its top,
// there only to be removed when the disk is full. A backup that fills the disk stops with
// SNAP_NO_SPACE; the commands that would free space (forget, gc) need a little of it themselves (a
// lock file, the operation log, the index's writes, gc's new packs), and without it a full disk was
// a dead end (restic and borg alike; borg lets the user reserve space by hand). So `init` writes
// the reserve, forget and gc remove it when the disk has less than its size free, and gc writes it
// again once there is room. Its bytes are random, so no file system stores it in less (compression,
// deduplication). It is written only where, after it, at least as much again stays free: it never
// fills a disk itself.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fsPath } from '../core/bytes.js';
import { errnoCode } from '../core/errors.js';
import { writeDurable } from '../core/durable.js';

export const RESERVE = 'reserve';
/** Its temporary name while written (a crash leaves it; the next write removes it). */
const RESERVE_TMP = 'reserve.tmp';
export const RESERVE_BYTES = 16 * 1024 * 1024;
const PIECE = 1024 * 1024;

/** Bytes free for this process on the file system holding `dir`. */
function freeBytes(dir: string): number {
  const s = fs.statfsSync(fsPath(dir));
  return s.bavail * s.bsize;
}

function hasReserve(root: string): boolean {
  return fs.existsSync(fsPath(path.join(root, RESERVE)));
}

/**
 * Write the reserve unless it is there or the disk lacks room for it and as much again.
 * 'no-room' also when the disk filled up meanwhile (nothing is left of the attempt).
 */
export async function makeReserve(root: string, bytes = RESERVE_BYTES): Promise<'there' | 'made' | 'no-room'> {
  if (hasReserve(root)) return 'there';
  const tmp = fsPath(path.join(root, RESERVE_TMP));
  await fsp.rm(tmp, { force: true });
  if (freeBytes(root) < 2 * bytes) return 'no-room';
  try {
    await writeDurable({ dir: fsPath(root), tmp, dest: fsPath(path.join(root, RESERVE)), publish: 'create', linkFallback: true }, async (fh) => {
      for (let done = 0; done < bytes; ) {
        const piece = randomBytes(Math.min(PIECE, bytes - done));
        for (let off = 0; off < piece.length; ) off += (await fh.write(piece, off, piece.length - off, done + off)).bytesWritten;
        done += piece.length;
      }
    });
  } catch (e) {
    if (errnoCode(e) === 'ENOSPC' || errnoCode(e) === 'EDQUOT') return 'no-room';
    throw e;
  }
  return 'made';
}

/**
 * For a command that frees space: remove the reserve when the disk has less than its size free.
 * True when it was removed; any failure to look or remove leaves it (false).
 */
export function releaseReserveIfFull(root: string): boolean {
  try {
    if (!hasReserve(root) || freeBytes(root) >= RESERVE_BYTES) return false;
    fs.unlinkSync(fsPath(path.join(root, RESERVE)));
    return true;
  } catch {
    return false;
  }
}
