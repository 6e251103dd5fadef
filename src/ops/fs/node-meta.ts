// Tree-node metadata from an lstat result (bigint stats give nanosecond times and exact inodes).
import type * as fs from 'node:fs';
import type { Node, NodeType, Timestamp } from '../../model/node.js';
import type { OwnerNames } from './owners.js';

/**
 * The fields of an lstat result a backup reads of an entry: fs.BigIntStats has them, and so does
 * the walk ahead's compact copy (ops/backup/walk-ahead.ts).
 */
export type EntryStat = Pick<
  fs.BigIntStats,
  'dev' | 'ino' | 'mode' | 'nlink' | 'uid' | 'gid' | 'rdev' | 'size' | 'mtimeNs' | 'ctimeNs' | 'isFile' | 'isDirectory' | 'isSymbolicLink' | 'isFIFO' | 'isSocket' | 'isCharacterDevice' | 'isBlockDevice'
>;

const S_IFMT = 0o170000n;

/**
 * An lstat result kept while a directory is backed up: the ten values EntryStat names. Node's
 * BigIntStats holds 18 bigints and, on Node 20, four Dates (about 1 KB of heap an entry); a
 * directory of 17,762 files (the bench corpus's man1) held 18 MB of them until its tree was made,
 * long enough for every one to be promoted to the old generation (docs/performance.md, "Memory of
 * a large directory's entries").
 */
export class LeanStat implements EntryStat {
  constructor(
    readonly dev: bigint,
    readonly ino: bigint,
    readonly mode: bigint,
    readonly nlink: bigint,
    readonly uid: bigint,
    readonly gid: bigint,
    readonly rdev: bigint,
    readonly size: bigint,
    readonly mtimeNs: bigint,
    readonly ctimeNs: bigint,
  ) {}

  static of(st: EntryStat): LeanStat {
    return new LeanStat(st.dev, st.ino, st.mode, st.nlink, st.uid, st.gid, st.rdev, st.size, st.mtimeNs, st.ctimeNs);
  }

  /** Its values into `rows` from `r` on (LEAN_FIELDS of them; fromRow reads them back). */
  static toRow(st: EntryStat, rows: BigInt64Array, r: number): void {
    rows[r] = st.dev;
    rows[r + 1] = st.ino;
    rows[r + 2] = st.mode;
    rows[r + 3] = st.nlink;
    rows[r + 4] = st.uid;
    rows[r + 5] = st.gid;
    rows[r + 6] = st.rdev;
    rows[r + 7] = st.size;
    rows[r + 8] = st.mtimeNs;
    rows[r + 9] = st.ctimeNs;
  }

  static fromRow(rows: BigInt64Array, r: number): LeanStat {
    return new LeanStat(rows[r]!, rows[r + 1]!, rows[r + 2]!, rows[r + 3]!, rows[r + 4]!, rows[r + 5]!, rows[r + 6]!, rows[r + 7]!, rows[r + 8]!, rows[r + 9]!);
  }

  private type(): bigint {
    return this.mode & S_IFMT;
  }
  isFile(): boolean {
    return this.type() === 0o100000n;
  }
  isDirectory(): boolean {
    return this.type() === 0o040000n;
  }
  isSymbolicLink(): boolean {
    return this.type() === 0o120000n;
  }
  isFIFO(): boolean {
    return this.type() === 0o010000n;
  }
  isSocket(): boolean {
    return this.type() === 0o140000n;
  }
  isCharacterDevice(): boolean {
    return this.type() === 0o020000n;
  }
  isBlockDevice(): boolean {
    return this.type() === 0o060000n;
  }
}

/** Values a LeanStat keeps (LeanStat.toRow). */
export const LEAN_FIELDS = 10;

export function nodeType(st: EntryStat): NodeType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'chardev';
  return 'blockdev';
}

export function splitNs(ns: bigint): Timestamp {
  let sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  if (nsec < 0n) {
    nsec += 1_000_000_000n;
    sec -= 1n;
  }
  return { sec: Number(sec), nsec: Number(nsec) };
}

export function baseNode(name: Buffer, st: EntryStat, owners: OwnerNames): Node {
  const uid = Number(st.uid);
  const gid = Number(st.gid);
  return {
    name,
    type: nodeType(st),
    mode: Number(st.mode & 0o7777n),
    uid,
    gid,
    user: owners.user(uid),
    group: owners.group(gid),
    mtime: splitNs(st.mtimeNs),
    size: 0,
  };
}
