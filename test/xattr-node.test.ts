// The optional `xattrs` field of tree nodes (docs/format.md, "Trees"): nodes without attributes
// encode exactly as before the field existed, so existing tree ids do not change.
import { describe, expect, it } from 'vitest';
import { decodeCbor, encodeCbor } from '../src/model/cbor.js';
import { decodeTree, encodeTree, sortNodes } from '../src/model/tree.js';
import type { Node } from '../src/model/node.js';
import { isSnapError } from '../src/core/errors.js';
import { sha256 } from '../src/core/ids.js';

const id = Buffer.alloc(32, 7);
const nodes = (): Node[] =>
  sortNodes([
    { name: Buffer.from('a.txt'), type: 'file', mode: 0o644, uid: 1000, gid: 1000, user: 'me', group: 'me', mtime: { sec: 1700000000, nsec: 123456789 }, size: 5, chunks: [id] },
    { name: Buffer.from('d'), type: 'dir', mode: 0o755, uid: 0, gid: 0, user: 'root', group: 'root', mtime: { sec: -5, nsec: 0 }, size: 0, tree: id },
    { name: Buffer.from('l'), type: 'symlink', mode: 0o777, uid: 0, gid: 0, user: '', group: '', mtime: { sec: 1, nsec: 2 }, size: 0, target: Buffer.from([0xff, 0x2f]) },
    { name: Buffer.from('h'), type: 'file', mode: 0o600, uid: 1, gid: 2, user: 'u', group: 'g', mtime: { sec: 3, nsec: 4 }, size: 0, chunks: [], inode: { dev: 1, ino: 2, links: 2 } },
  ]);

describe('tree node xattrs', () => {
  it('a tree without attributes has the id it had before the field existed', () => {
    // Computed with the tree encoder of the commit before xattrs were added (fca682e).
    expect(sha256(encodeTree(nodes())).toString('hex')).toBe('b19bb5f5d12f19c36896724c615ed66cb86b92be1fcba35404b10f89a2786a83');
    const empty = nodes();
    empty[0]!.xattrs = [];
    expect(sha256(encodeTree(empty)).toString('hex')).toBe('b19bb5f5d12f19c36896724c615ed66cb86b92be1fcba35404b10f89a2786a83');
  });

  it('round-trips, as the last key, [name, value] byte-string pairs sorted by name', () => {
    const ns = nodes();
    const h = ns.find((n) => n.name.toString() === 'h')!;
    h.xattrs = [
      { name: Buffer.from('system.posix_acl_access'), value: Buffer.from([2, 0, 0, 0, 1, 0, 6, 0]) },
      { name: Buffer.from('user.empty'), value: Buffer.alloc(0) },
      { name: Buffer.from('user.x'), value: Buffer.from([0, 0xff]) },
    ];
    const bytes = encodeTree(ns);
    const back = decodeTree(bytes, 'tree');
    expect(back.find((n) => n.name.toString() === 'h')!.xattrs).toEqual(h.xattrs);
    const rec = (decodeCbor(bytes, 't') as { entries: Record<string, unknown>[] }).entries.find((e) => Buffer.from(e.name as Uint8Array).toString() === 'h')!;
    expect(Object.keys(rec).at(-1)).toBe('xattrs');
    expect(Object.keys(rec).at(-2)).toBe('inode');
    expect(back.filter((n) => n.name.toString() !== 'h').every((n) => n.xattrs === undefined)).toBe(true);
  });

  const corrupt = (xattrs: unknown): boolean => {
    const rec = { v: 1, entries: [{ name: Buffer.from('f'), type: 'file', mode: 0o644, uid: 0, gid: 0, user: '', group: '', mtime: [0, 0], size: 0, chunks: [], xattrs }] };
    try {
      decodeTree(encodeCbor(rec), 'tree');
      return false;
    } catch (e) {
      return isSnapError(e, 'SNAP_CORRUPT');
    }
  };

  it('a tree with malformed attributes is corrupt', () => {
    const b = (s: string): Buffer => Buffer.from(s);
    expect(corrupt([[b('user.b'), b('1')], [b('user.a'), b('2')]])).toBe(true); // unsorted
    expect(corrupt([[b('user.a'), b('1')], [b('user.a'), b('2')]])).toBe(true); // duplicate
    expect(corrupt([['user.a', b('1')]])).toBe(true); // name as text
    expect(corrupt([[b('user.a')]])).toBe(true); // no value
    expect(corrupt([[b(''), b('1')]])).toBe(true);
    expect(corrupt([[Buffer.from([0x75, 0, 0x61]), b('1')]])).toBe(true); // NUL in the name
    expect(corrupt([[b('user.' + 'x'.repeat(251)), b('1')]])).toBe(true); // 256 bytes
    expect(corrupt([[b('user.a'), Buffer.alloc(65537)]])).toBe(true);
    expect(corrupt({ 'user.a': b('1') })).toBe(true);
    expect(corrupt([[b('user.a'), Buffer.alloc(65536)], [b('user.b'), b('')]])).toBe(false);
  });
});
