// The reserve for a full disk (docs/format.md, "Layout"): a blob of RESERVE_BYTES at the top of a
// repository, there only to be removed when its disk is full. A backup that fills the disk stops
// with SNAP_NO_SPACE; the commands that would free space (forget, gc) need a little of it
// themselves (a lock file, the operation log, the index's writes, gc's new packs), and without it
// a full disk was a dead end (restic and borg alike; borg lets the user reserve space by hand). So
// `init` writes the reserve, forget and gc remove it when the disk has less than its size free,
// and gc writes it again once there is room. Its bytes are random, so no file system stores it in
// less (compression, deduplication), and it is never sealed (backend/encrypted.ts). It is written
// only where, after it, at least as much again stays free: it never fills a disk itself.
//
// Kept where the storage can say how much room is left (Backend.freeSpace): a local folder, and an
// SFTP server that answers statvfs@openssh.com. Object storage (S3, Azure) does not fill up.
import { randomBytes } from 'node:crypto';
import type { Backend } from '../backend/backend.js';
import { isSnapError } from '../core/errors.js';

export const RESERVE = 'reserve';
/** Written by snap before the reserve went through the backends (2026-12-07): removed when found. */
const OLD_TMP = 'reserve.tmp';
export const RESERVE_BYTES = 16 * 1024 * 1024;
const PIECE = 1024 * 1024;

/** What the reserve needs of the storage. */
export type ReserveStore = Pick<Backend, 'freeSpace' | 'stat' | 'exists' | 'putStream' | 'delete'>;

async function* randomPieces(bytes: number): AsyncGenerator<Uint8Array> {
  for (let done = 0; done < bytes; done += PIECE) yield randomBytes(Math.min(PIECE, bytes - done));
}

/**
 * Write the reserve unless it is there, the storage cannot say how much room it has ('unknown'),
 * or it lacks room for it and as much again ('no-room'; also when the disk filled up meanwhile:
 * nothing is left of the attempt, as the put is atomic).
 */
export async function makeReserve(b: ReserveStore, bytes = RESERVE_BYTES): Promise<'there' | 'made' | 'no-room' | 'unknown'> {
  const free = await b.freeSpace?.();
  if (free === undefined) return 'unknown';
  const there = await b.stat(RESERVE);
  if (there?.size === bytes) return 'there';
  if (await b.exists(OLD_TMP)) await b.delete(OLD_TMP);
  // A reserve of another size (written with another size, or cut short by hand) is written anew.
  if (free + (there?.size ?? 0) < 2 * bytes) return 'no-room';
  try {
    await b.putStream(RESERVE, randomPieces(bytes), bytes);
  } catch (e) {
    if (isSnapError(e, 'SNAP_NO_SPACE')) return 'no-room';
    throw e;
  }
  return 'made';
}

/**
 * For a command that frees space: remove the reserve when the storage has less than its size
 * free. True when it was removed; any failure to look or remove leaves it (false).
 */
export async function releaseReserveIfFull(b: ReserveStore): Promise<boolean> {
  try {
    const free = await b.freeSpace?.();
    if (free === undefined || free >= RESERVE_BYTES || !(await b.exists(RESERVE))) return false;
    await b.delete(RESERVE);
    return true;
  } catch {
    return false;
  }
}
