// A tree entry: one file, directory, symlink or special file inside a directory of a snapshot.
import { SnapError } from '../core/errors.js';
import { asId } from '../core/ids.js';
import { asArray, asBytes, asInt, asRecord, asString, asUint } from './cbor.js';

export const NODE_TYPES = ['file', 'dir', 'symlink', 'fifo', 'socket', 'chardev', 'blockdev'] as const;
export type NodeType = (typeof NODE_TYPES)[number];

export interface Timestamp {
  sec: number;
  nsec: number;
}

export interface Node {
  name: Buffer;
  type: NodeType;
  mode: number; // permission bits, 0o7777
  uid: number;
  gid: number;
  user: string;
  group: string;
  mtime: Timestamp;
  size: number; // bytes of file contents; 0 for other types
  chunks?: Buffer[]; // file: content chunk ids in order
  tree?: Buffer; // dir: subtree id
  target?: Buffer; // symlink: target bytes
  rdev?: number; // chardev/blockdev
  /** Hard-link group: set only on files with more than one link; equal keys are one inode. */
  inode?: { dev: number; ino: number; links: number };
  /** Extended attributes (POSIX ACLs among them), sorted by name bytes; absent when there are none. */
  xattrs?: Xattr[];
}

/** One extended attribute: its full name (`user.x`, `system.posix_acl_access`, ...) and value. */
export interface Xattr {
  name: Buffer;
  value: Buffer;
}

/** Linux limits (XATTR_NAME_MAX, XATTR_SIZE_MAX): a tree with larger ones is corrupt. */
export const XATTR_NAME_MAX = 255;
export const XATTR_SIZE_MAX = 65536;

/** A name that is safe to create inside a directory. Crafted trees with others are corrupt. */
const SAFE = (1n << 53n) - 1n;

/**
 * The inode number a hard-linked file's `inode` field records. Records write integers above
 * 2^53-1 as floats, which readers refuse (docs/format.md, "Integers"), and overlayfs with `xino`
 * puts a layer number in the top bits of inode numbers. The field only groups hard links (equal
 * device and inode within one snapshot), so numbers above 2^53-1 are folded into 53 bits: the bits
 * above the 53rd (at most 11) are XORed in from bit 42 up. Numbers below 2^53 are kept as they
 * are; a folded number equals another only if their low 42 bits are equal and their bits above
 * cancel out, which inode numbers below 2^42 on one device cannot do.
 */
export function recordedInode(ino: bigint): number {
  if (ino <= SAFE) return Number(ino);
  return Number((ino & SAFE) ^ ((ino >> 53n) << 42n));
}

export function isSafeName(name: Uint8Array): boolean {
  if (name.length === 0 || name.length > 4096) return false;
  if (name.length === 1 && name[0] === 0x2e) return false;
  if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) return false;
  return !name.includes(0x2f) && !name.includes(0);
}

/** The CBOR form. Keys are written in this fixed order so identical nodes give identical bytes. */
export function nodeToRecord(n: Node): Record<string, unknown> {
  const r: Record<string, unknown> = {
    name: n.name,
    type: n.type,
    mode: n.mode,
    uid: n.uid,
    gid: n.gid,
    user: n.user,
    group: n.group,
    mtime: [n.mtime.sec, n.mtime.nsec],
    size: n.size,
  };
  if (n.chunks) r.chunks = n.chunks;
  if (n.tree) r.tree = n.tree;
  if (n.target) r.target = n.target;
  if (n.rdev !== undefined) r.rdev = n.rdev;
  if (n.inode) r.inode = [n.inode.dev, n.inode.ino, n.inode.links];
  // Last, and only when there are some: nodes without attributes encode as they always did.
  if (n.xattrs && n.xattrs.length > 0) r.xattrs = n.xattrs.map((x) => [x.name, x.value]);
  return r;
}

export function nodeFromRecord(v: unknown, what: string): Node {
  const r = asRecord(v, what);
  const name = asBytes(r.name, `${what}.name`);
  if (!isSafeName(name)) throw new SnapError('SNAP_CORRUPT', `${what}: unsafe entry name ${JSON.stringify(name.toString('latin1'))}`);
  const type = asString(r.type, `${what}.type`) as NodeType;
  if (!NODE_TYPES.includes(type)) throw new SnapError('SNAP_CORRUPT', `${what}: unknown entry type ${JSON.stringify(type)}`);
  const mt = asArray(r.mtime, `${what}.mtime`);
  const nsec = asUint(mt[1], `${what}.mtime[1]`);
  if (mt.length !== 2 || nsec > 999_999_999) throw new SnapError('SNAP_CORRUPT', `${what}.mtime: expected [sec, nsec]`);
  const n: Node = {
    name,
    type,
    mode: asUint(r.mode, `${what}.mode`) & 0o7777,
    uid: asUint(r.uid, `${what}.uid`),
    gid: asUint(r.gid, `${what}.gid`),
    user: asString(r.user, `${what}.user`),
    group: asString(r.group, `${what}.group`),
    mtime: { sec: asInt(mt[0], `${what}.mtime[0]`), nsec },
    size: asUint(r.size, `${what}.size`),
  };
  if (type === 'file') {
    n.chunks = asArray(r.chunks ?? [], `${what}.chunks`).map((c, i) => asId(c, `${what}.chunks[${i}]`));
    if (r.inode !== undefined) {
      const ino = asArray(r.inode, `${what}.inode`);
      n.inode = { dev: asUint(ino[0], `${what}.inode[0]`), ino: asUint(ino[1], `${what}.inode[1]`), links: asUint(ino[2], `${what}.inode[2]`) };
    }
  } else if (type === 'dir') {
    n.tree = asId(r.tree, `${what}.tree`);
  } else if (type === 'symlink') {
    n.target = asBytes(r.target, `${what}.target`);
  } else if (type === 'chardev' || type === 'blockdev') {
    n.rdev = asUint(r.rdev ?? 0, `${what}.rdev`);
  }
  if (r.xattrs !== undefined) n.xattrs = xattrsFromRecord(r.xattrs, `${what}.xattrs`);
  return n;
}

function xattrsFromRecord(v: unknown, what: string): Xattr[] {
  const out = asArray(v, what).map((e, i): Xattr => {
    const pair = asArray(e, `${what}[${i}]`);
    if (pair.length !== 2) throw new SnapError('SNAP_CORRUPT', `${what}[${i}]: expected [name, value]`);
    const name = asBytes(pair[0], `${what}[${i}].name`);
    const value = asBytes(pair[1], `${what}[${i}].value`);
    if (name.length === 0 || name.length > XATTR_NAME_MAX || name.includes(0)) throw new SnapError('SNAP_CORRUPT', `${what}[${i}]: bad attribute name`);
    if (value.length > XATTR_SIZE_MAX) throw new SnapError('SNAP_CORRUPT', `${what}[${i}]: attribute value over ${XATTR_SIZE_MAX} bytes`);
    return { name, value };
  });
  for (let i = 1; i < out.length; i++) {
    if (Buffer.compare(out[i - 1]!.name, out[i]!.name) >= 0) throw new SnapError('SNAP_CORRUPT', `${what}: names not sorted or duplicated`);
  }
  return out;
}
