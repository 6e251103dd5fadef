// What a tree on disk holds, to compare a restore (or an export) with its source byte for byte.
// The one description of a tree for every test: the torture suite compares manifests with
// diffManifests/assertSameTree; the end-to-end tests use describeTree, a view of the same walk
// (hex keys, microsecond mtimes, hard-link groups) compared with toEqual.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { nodeType } from '../../src/ops/fs/node-meta.js';


export interface Entry {
  type: 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev';
  mode: number;
  /** mtime in nanoseconds; compared to 2 µs (libuv truncates utimes to whole µs, after a double). */
  mtimeNs: bigint;
  size: number;
  sha256?: string;
  target?: string; // hex of the link target bytes
  rdev?: number;
  /** With `links`: the key of the first path (in walk order) with the same inode, for hard links. */
  linkGroup?: string;
}

export type Manifest = Map<string, Entry>; // key: relative path, latin1 of the raw bytes ('' = root)

// The kinds of entry as snap's own trees name them.
const typeOf: (st: fs.BigIntStats) => Entry['type'] = nodeType;

export function hashFile(p: Buffer | string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

export interface ManifestOptions {
  /** Skip names for which this returns true (e.g. restore temporaries). */
  skip?: (name: Buffer) => boolean;
  /** Group hard-linked files (linkGroup). */
  links?: boolean;
}

/**
 * Walk order: a folder's entries sorted by name bytes, each folder's contents right after it (the
 * order of snap's trees, so of its archives): paths compared name by name.
 */
export function walkOrder(a: string, b: string): number {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const c = Buffer.compare(Buffer.from(x[i]!, 'latin1'), Buffer.from(y[i]!, 'latin1'));
    if (c !== 0) return c;
  }
  return x.length - y.length;
}

/** Describe every entry under `root`, including `root` itself (key ''). Iterative: 1,000-level trees. */
export function manifest(root: string, o: ManifestOptions = {}): Manifest {
  const out: Manifest = new Map();
  const inodes = new Map<string, string[]>();
  const stack: [Buffer, string][] = [[Buffer.from(root), '']];
  while (stack.length > 0) {
    const [abs, rel] = stack.pop()!;
    const st = fs.lstatSync(abs, { bigint: true });
    const e: Entry = { type: typeOf(st), mode: Number(st.mode & 0o7777n), mtimeNs: st.mtimeNs, size: 0 };
    if (e.type === 'file') {
      e.size = Number(st.size);
      e.sha256 = hashFile(abs);
      if (o.links && st.nlink > 1n) {
        const k = `${st.dev}:${st.ino}`;
        inodes.set(k, [...(inodes.get(k) ?? []), rel]);
      }
    } else if (e.type === 'symlink') e.target = fs.readlinkSync(abs, { encoding: 'buffer' }).toString('hex');
    else if (e.type === 'chardev' || e.type === 'blockdev') e.rdev = Number(st.rdev);
    out.set(rel, e);
    if (e.type === 'dir') {
      for (const name of fs.readdirSync(abs, { encoding: 'buffer' })) {
        if (o.skip?.(name)) continue;
        const childRel = rel === '' ? name.toString('latin1') : `${rel}/${name.toString('latin1')}`;
        stack.push([Buffer.concat([abs, Buffer.from('/'), name]), childRel]);
      }
    }
  }
  for (const paths of inodes.values()) {
    const first = paths.sort(walkOrder)[0]!;
    for (const p of paths) out.get(p)!.linkGroup = first;
  }
  return out;
}

export interface CompareOptions {
  /** Entry types a restore cannot recreate (sockets), or does not as non-root (devices). */
  absentOk?: Entry['type'][];
  /** Compare mtimes (default true). */
  mtimes?: boolean;
  /** Compare modes (default true). */
  modes?: boolean;
}

/** Differences between an expected and an actual manifest, as readable lines (empty: equal). */
export function diffManifests(want: Manifest, got: Manifest, o: CompareOptions = {}): string[] {
  const d: string[] = [];
  const show = (k: string): string => JSON.stringify(Buffer.from(k, 'latin1').toString('utf8'));
  for (const [k, w] of want) {
    const g = got.get(k);
    if (!g) {
      if (!o.absentOk?.includes(w.type)) d.push(`missing ${show(k)} (${w.type})`);
      continue;
    }
    if (g.type !== w.type) {
      d.push(`${show(k)}: type ${g.type}, want ${w.type}`);
      continue;
    }
    if (w.type === 'file' && (g.size !== w.size || g.sha256 !== w.sha256)) d.push(`${show(k)}: content differs (size ${g.size}, want ${w.size})`);
    if (w.type === 'symlink' && g.target !== w.target) d.push(`${show(k)}: link target differs`);
    if (w.rdev !== undefined && g.rdev !== w.rdev) d.push(`${show(k)}: rdev ${g.rdev}, want ${w.rdev}`);
    if (o.modes !== false && w.type !== 'symlink' && g.mode !== w.mode) d.push(`${show(k)}: mode ${g.mode.toString(8)}, want ${w.mode.toString(8)}`);
    if (o.mtimes !== false) {
      const diff = g.mtimeNs - w.mtimeNs;
      if (diff > 2000n || diff < -2000n) d.push(`${show(k)}: mtime off by ${diff} ns`);
    }
  }
  for (const [k, g] of got) if (!want.has(k)) d.push(`unexpected ${show(k)} (${g.type})`);
  return d;
}

export function assertSameTree(want: Manifest, got: Manifest, what: string, o: CompareOptions = {}): void {
  const d = diffManifests(want, got, o);
  if (d.length > 0) throw new Error(`${what}: ${d.length} difference(s):\n  ${d.slice(0, 30).join('\n  ')}`);
}

/** describeTree's view of an entry: the root left out, every kind that is not a file, folder, symlink or FIFO 'other'. */
export interface EntryDesc {
  type: string;
  mode: number;
  mtimeUs: bigint;
  size: number;
  sha256?: string;
  target?: string;
  /** Key of the first path with the same inode, for hard links. */
  linkGroup?: string;
}

/**
 * Every entry under `dir` (not `dir` itself), keyed by the hex of its relative raw-byte path (so
 * invalid UTF-8 survives), in walk order. mtimes to the microsecond: restore sets them through
 * libuv's double-based utimes.
 */
export function describeTree(dir: string): Map<string, EntryDesc> {
  const hex = (k: string): string => Buffer.from(k, 'latin1').toString('hex');
  const m = manifest(dir, { links: true });
  const out = new Map<string, EntryDesc>();
  for (const k of [...m.keys()].filter((x) => x !== '').sort(walkOrder)) {
    const e = m.get(k)!;
    const d: EntryDesc = {
      type: e.type === 'file' || e.type === 'dir' || e.type === 'symlink' || e.type === 'fifo' ? e.type : 'other',
      mode: e.mode,
      mtimeUs: e.mtimeNs / 1000n,
      size: e.size,
    };
    if (e.sha256 !== undefined) d.sha256 = e.sha256;
    if (e.linkGroup !== undefined) d.linkGroup = hex(e.linkGroup);
    if (e.target !== undefined) d.target = e.target;
    out.set(hex(k), d);
  }
  return out;
}
