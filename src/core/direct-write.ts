// Large files written past the page cache (O_DIRECT). A backup writes every pack once and reads
// none of them back: copied into the page cache, each of their bytes costs the kernel a page to
// find, fill and later write back, and pushes out what the machine's own programs had cached. On
// the bench VM those copies cost 1.5 CPU s for a 1 GiB file's packs (2.6 s of its 6.2 s of wall
// time); written direct, 0.1 s (docs/performance.md, "Packs written past the page cache").
//
// O_DIRECT wants the memory, the file offset and the length aligned to the device's block. Node
// cannot align a buffer or say where one lies, so each writer keeps bounce buffers of its own,
// each aligned once by trying a 4 KiB direct write from successive offsets in it (the first that
// the kernel takes is aligned), and copies a blob through them piece by piece: a copy between two
// buffers this process holds costs a fraction of the kernel's page-cache copy. The blob's whole
// 4 KiB blocks go direct, the rest (under 4 KiB) through the ordinary handle. A file system that
// refuses O_DIRECT (or a system without /proc/self/fd) is noticed at the first blob, which is then
// written as before, and so are all later ones. Durability is unchanged: the caller fsyncs the
// handle, which also writes out what went through the page cache.
import * as fs from 'node:fs';
import type * as fsp from 'node:fs/promises';
import { errnoCode } from './errors.js';

/** Direct writes are in whole blocks of this size (the largest logical block size in common use). */
const BLOCK = 4096;
/** The bounce buffer's size: one direct write. */
export const DIRECT_PIECE = 4 * 1024 * 1024;
/** Smaller blobs go through the page cache (a pack of a few objects, an index file, a snapshot). */
export const DIRECT_MIN = 1024 * 1024;
/** Bounce buffers kept between writes (one per write in flight). */
const SPARE = 2;

/** Reopen an open file for direct writes; the default goes through /proc/self/fd (the same file, whatever its name). */
export type Reopen = (fd: number) => number;

/** Systems without O_DIRECT (Node leaves the constant out) write every blob through the page cache. */
const O_DIRECT: number | undefined = fs.constants.O_DIRECT;

const reopenProc: Reopen = (fd) => {
  if (O_DIRECT === undefined) throw Object.assign(new Error('no O_DIRECT on this system'), { code: 'ENOTSUP' });
  return fs.openSync(`/proc/self/fd/${fd}`, fs.constants.O_WRONLY | O_DIRECT);
};

const pwrite = (fd: number, b: Buffer, off: number, len: number, pos: number): Promise<number> =>
  new Promise((resolve, reject) => fs.write(fd, b, off, len, pos, (e, n) => (e ? reject(e) : resolve(n))));

/** Errors that say "not direct here" (a file system or device without O_DIRECT, or other alignment). */
const NOT_DIRECT = ['EINVAL', 'EOPNOTSUPP', 'ENOTSUP', 'ENOENT', 'EACCES'];

export class DirectWriter {
  /** Undefined until the first blob says whether direct writes work here. */
  private works: boolean | undefined;
  private readonly spare: Buffer[] = [];
  /** Blobs and bytes written direct (tests and measurements). */
  readonly stats = { blobs: 0, bytes: 0, fellBack: 0 };

  constructor(private readonly reopen: Reopen = reopenProc) {}

  /** Whether direct writes were found not to work here (every blob then goes through the page cache). */
  get off(): boolean {
    return this.works === false;
  }

  /**
   * Write all of `data` at the start of the file open as `fh` (nothing written to it yet), direct
   * where possible. False when nothing usable was written: the caller writes `data` as usual.
   */
  async write(fh: fsp.FileHandle, data: Uint8Array): Promise<boolean> {
    if (this.works === false || data.length < DIRECT_MIN) return false;
    let dfd: number;
    try {
      dfd = this.reopen(fh.fd);
    } catch (e) {
      if (!NOT_DIRECT.includes(errnoCode(e) ?? '')) throw e;
      return this.unsupported();
    }
    let bounce: Buffer | undefined;
    try {
      bounce = this.spare.pop() ?? aligned(dfd);
      if (!bounce) return this.unsupported();
      const src = Buffer.from(data.buffer, data.byteOffset, data.length);
      const whole = data.length - (data.length % BLOCK);
      for (let at = 0; at < whole; ) {
        const n = Math.min(DIRECT_PIECE, whole - at);
        src.copy(bounce, 0, at, at + n);
        for (let done = 0; done < n; ) {
          try {
            done += await pwrite(dfd, bounce, done, n - done, at + done);
          } catch (e) {
            // Taken at the probe, refused now (another alignment for longer writes): the file is
            // written again through the page cache from its start.
            if (errnoCode(e) === 'EINVAL') return this.unsupported();
            throw e;
          }
        }
        at += n;
      }
      for (let at = whole; at < data.length; ) at += (await fh.write(src, at, data.length - at, at)).bytesWritten;
      this.works = true;
      this.stats.blobs++;
      this.stats.bytes += whole;
      return true;
    } finally {
      fs.closeSync(dfd);
      if (bounce && this.spare.length < SPARE) this.spare.push(bounce);
    }
  }

  private unsupported(): false {
    this.works = false;
    this.stats.fellBack++;
    this.spare.length = 0;
    return false;
  }
}

/**
 * A DIRECT_PIECE buffer at an address the kernel takes for direct writes to `dfd`, found by trying
 * a block's write (at the file's start, which the blob then overwrites) from each 16-byte step of
 * a block; undefined when none is taken (direct writes do not work here).
 */
function aligned(dfd: number): Buffer | undefined {
  // Zeroed: the probe's block lands in the file until the blob overwrites it, and a crash in
  // between must not leave this process's memory in a temporary file of the repository.
  const raw = Buffer.alloc(DIRECT_PIECE + BLOCK);
  for (let off = 0; off < BLOCK; off += 16) {
    try {
      fs.writeSync(dfd, raw, off, BLOCK, 0);
      return raw.subarray(off, off + DIRECT_PIECE);
    } catch (e) {
      if (errnoCode(e) !== 'EINVAL') throw e;
    }
  }
  return undefined;
}
