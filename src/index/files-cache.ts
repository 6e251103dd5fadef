// The files cache: for each backed-up file its size, mtime, ctime, inode and device, and its chunk
// list, so that an unchanged file is recognised from lstat alone and not read again (the same
// rule as restic and borg). Entries of one directory are adjacent keys: one range read per directory.
import { asArray, asBytes, asString, asUint, decodeCbor, encodeCborView } from '../model/cbor.js';
import { asId } from '../core/ids.js';

export interface FileStamp {
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  dev: bigint;
}

export interface CachedFile extends FileStamp {
  chunks: Buffer[];
  /**
   * The file had no extended attributes when this stamp was taken (listed after the lstat the
   * stamp is from). Setting or removing one changes the file's ctime, so while the stamp is the
   * same the backup need not list them again.
   */
  noXattrs?: boolean;
}

/** Bit 0 of a stored entry's flags: noXattrs. */
const NO_XATTRS = 1;

/**
 * A files-cache entry as stored: CBOR of [size, mtime, ctime, inode, device (decimal strings),
 * chunk ids], and flags (an unsigned integer, NO_XATTRS) when there are any.
 */
function cachedFileRecord(f: CachedFile): unknown[] {
  const r: unknown[] = [f.size, String(f.mtimeNs), String(f.ctimeNs), String(f.ino), String(f.dev), f.chunks];
  if (f.noXattrs) r.push(NO_XATTRS);
  return r;
}

/**
 * Files-cache entries of one directory as they will be stored, packed into one buffer: for each,
 * the name's length and the value's length (u32le each), the name, and the value
 * (cachedFileRecord, encoded). A backup keeps a directory's new entries until the chunks they name are
 * durable, up to tens of thousands of them: as objects (four bigints, an array and a Buffer per
 * chunk id each) they held 60-90 MiB of the heap in a first backup of the bench corpus and kept
 * the garbage collector marking them (docs/performance.md, "Memory of a first backup: files-cache
 * entries, index-file entries, malloc arenas").
 */
export function packCachedFiles(files: Iterable<[Buffer, CachedFile]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, f] of files) {
    // The encoder's own buffer, valid until its next call: copied into the entry at once.
    const value = encodeCborView(cachedFileRecord(f));
    const entry = Buffer.allocUnsafe(8 + name.length + value.length);
    entry.writeUInt32LE(name.length, 0);
    entry.writeUInt32LE(value.length, 4);
    name.copy(entry, 8);
    entry.set(value, 8 + name.length);
    parts.push(entry);
  }
  return Buffer.concat(parts);
}

/** The (name, stored value) pairs of packCachedFiles' buffer, in order: views of it. */
export function* unpackCachedFiles(b: Buffer): Generator<[Buffer, Buffer]> {
  let p = 0;
  while (p < b.length) {
    const n = b.readUInt32LE(p);
    const v = b.readUInt32LE(p + 4);
    const name = b.subarray(p + 8, p + 8 + n);
    const value = b.subarray(p + 8 + n, p + 8 + n + v);
    if (name.length !== n || value.length !== v) throw new Error('packed files-cache entries end early');
    yield [name, value];
    p += 8 + n + v;
  }
}

export function decodeCachedFile(b: Buffer): CachedFile | undefined {
  try {
    const a = asArray(decodeCbor(b, 'files cache entry'), 'files cache entry');
    return {
      size: asUint(a[0], 'size'),
      mtimeNs: BigInt(asString(a[1], 'mtime')),
      ctimeNs: BigInt(asString(a[2], 'ctime')),
      ino: BigInt(asString(a[3], 'ino')),
      dev: BigInt(asString(a[4], 'dev')),
      chunks: asArray(a[5], 'chunks').map((c) => asId(asBytes(c, 'chunk'), 'chunk')),
      // Entries of before the flags have six elements; unknown flag bits are ignored.
      noXattrs: a.length > 6 && (asUint(a[6], 'flags') & NO_XATTRS) !== 0,
    };
  } catch {
    return undefined; // a damaged cache entry only means the file is read again
  }
}

export function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino && a.dev === b.dev;
}
