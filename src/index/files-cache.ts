// The files cache: for each backed-up file its size, mtime, ctime, inode and device, and its chunk
// list, so that an unchanged file is recognised from lstat alone and not read again (the same
// rule as restic and borg). Entries of one directory are adjacent keys: one range read per directory.
import { asArray, asBytes, asString, asUint, decodeCbor, encodeCbor } from '../model/cbor.js';
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
}

export function encodeCachedFile(f: CachedFile): Buffer {
  return encodeCbor([f.size, String(f.mtimeNs), String(f.ctimeNs), String(f.ino), String(f.dev), f.chunks]);
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
    };
  } catch {
    return undefined; // a damaged cache entry only means the file is read again
  }
}

export function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino && a.dev === b.dev;
}
