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
