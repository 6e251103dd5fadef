import { describe, expect, it } from 'vitest';
import { decodeCbor, encodeCbor, encodeCborView } from '../src/model/cbor.js';
import { decodeTree, encodeTree, sortNodes } from '../src/model/tree.js';
import { type Node, recordedInode } from '../src/model/node.js';
import { decodeSnapshot, encodeSnapshot } from '../src/model/snapshot.js';
import { compileExcludes, isExcluded } from '../src/model/exclude.js';
import { isSnapError } from '../src/core/errors.js';
import { sha256 } from '../src/core/ids.js';
import { fileNode } from './helpers/nodes.js';

const file = fileNode;

const corrupt = (e: unknown) => isSnapError(e, 'SNAP_CORRUPT');

describe('trees', () => {
  it('round-trips every field, including names that are not UTF-8', () => {
    const nodes = sortNodes([
      file(Buffer.from([0x66, 0xff, 0xfe])),
      file('hard', { inode: { dev: 2049, ino: 77, links: 2 } }),
      { ...file('link'), type: 'symlink', size: 0, chunks: undefined, target: Buffer.from([0x2e, 0x2e, 0x2f, 0x80]) },
      { ...file('sub'), type: 'dir', size: 0, chunks: undefined, tree: sha256(Buffer.from('t')) },
      { ...file('dev'), type: 'chardev', size: 0, chunks: undefined, rdev: 0x103 },
      { ...file('pipe'), type: 'fifo', size: 0, chunks: undefined },
      { ...file('old'), mtime: { sec: -86_400, nsec: 5 } },
    ]);
    const back = decodeTree(encodeTree(nodes), 't');
    expect(back).toEqual(nodes);
  });

  it('gives identical bytes (and so ids) for identical directories', () => {
    const a = encodeTree([file('a'), file('b')]);
    const b = encodeTree([file('a'), file('b')]);
    expect(a.equals(b)).toBe(true);
  });

  it.each([
    ['..', 'a parent reference'],
    ['.', 'a self reference'],
    ['a/b', 'a slash'],
    ['', 'an empty name'],
  ])('refuses an entry named %j (%s)', (name) => {
    const bytes = encodeCbor({ v: 1, entries: [{ ...encodeRec(file('x')), name: Buffer.from(name) }] });
    expect(() => decodeTree(bytes, 't')).toThrow(expect.objectContaining({ code: 'SNAP_CORRUPT' }));
  });

  it('refuses unsorted or duplicated entries, wrong types and garbage', () => {
    const rec = encodeRec(file('b'));
    const cases = [
      encodeCbor({ v: 1, entries: [rec, { ...rec, name: Buffer.from('a') }] }),
      encodeCbor({ v: 1, entries: [rec, rec] }),
      encodeCbor({ v: 1, entries: [{ ...rec, mode: 'rw' }] }),
      encodeCbor({ v: 1, entries: [{ ...rec, chunks: [Buffer.alloc(5)] }] }),
      encodeCbor({ v: 1, entries: [{ ...rec, type: 'door' }] }),
      encodeCbor({ v: 2, entries: [] }),
      encodeCbor([1, 2, 3]),
      Buffer.from([0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // array of 2^64-1 items
      Buffer.from([0x5a, 0xff, 0xff, 0xff, 0xff]), // byte string of 4 GiB, 0 bytes present
      Buffer.alloc(100_000, 0x81), // 100,000 nested arrays
    ];
    for (const c of cases) {
      let err: unknown;
      try {
        decodeTree(c, 't');
      } catch (e) {
        err = e;
      }
      expect(corrupt(err), String(err)).toBe(true);
    }
  });
});

function encodeRec(n: Node): Record<string, unknown> {
  return { name: n.name, type: n.type, mode: n.mode, uid: n.uid, gid: n.gid, user: n.user, group: n.group, mtime: [n.mtime.sec, n.mtime.nsec], size: n.size, chunks: n.chunks };
}

describe('the CBOR encoder after a large value', () => {
  it('encodes what follows exactly, and a view it gave before stays as it was', () => {
    const small = { v: 1, name: Buffer.from('a name'), n: 123456789 };
    const before = encodeCbor(small);
    const view = encodeCborView({ kept: 'x'.repeat(1000) });
    const keptCopy = Buffer.from(view);
    // Larger than the size after which the encoder gets a small buffer again (cbor.ts).
    const large = { entries: Array.from({ length: 20_000 }, (_, i) => ({ name: Buffer.from(`file-${i}`), size: i, chunks: [Buffer.alloc(32, i & 0xff)] })) };
    const bigBytes = encodeCbor(large);
    expect(bigBytes.length).toBeGreaterThan(1024 * 1024);
    expect(decodeCbor(bigBytes, 'test')).toEqual(large);
    // The view of the value before is untouched, and values after encode as they did before it.
    expect(Buffer.from(view).equals(keptCopy)).toBe(true);
    for (let i = 0; i < 3000; i++) expect(encodeCbor(small).equals(before)).toBe(true);
    const bigView = encodeCborView(large);
    const bigCopy = Buffer.from(bigView);
    expect(bigCopy.equals(bigBytes)).toBe(true);
    expect(encodeCbor(small).equals(before)).toBe(true);
    expect(Buffer.from(bigView).equals(bigCopy)).toBe(true);
  });
});

describe('hard-link inode numbers', () => {
  it('numbers above 2^53-1 (overlayfs xino) are folded into safe integers, so the tree stays readable and groups stay apart', () => {
    expect(recordedInode(12345n)).toBe(12345);
    expect(recordedInode((1n << 53n) - 1n)).toBe(Number.MAX_SAFE_INTEGER);
    // xino: a layer number in the top bits; files 1000 and 1001 of layers 1 and 2, and of the upper layer.
    const xino = (layer: bigint, ino: bigint): bigint => (layer << 59n) | ino;
    const inos = [1000n, 1001n, xino(1n, 1000n), xino(1n, 1001n), xino(2n, 1000n), xino(2n, 1001n), (1n << 64n) - 1n];
    const folded = inos.map(recordedInode);
    for (const f of folded) expect(Number.isSafeInteger(f)).toBe(true);
    expect(new Set(folded).size).toBe(inos.length);
    // As a float (what create wrote before) two of them were one number: restore would have linked them.
    expect(Number(xino(1n, 1000n))).toBe(Number(xino(1n, 1001n)));
    const n: Node = { name: Buffer.from('f'), type: 'file', mode: 0o644, uid: 0, gid: 0, user: 'root', group: 'root', mtime: { sec: 1, nsec: 0 }, size: 0, chunks: [], inode: { dev: 2049, ino: folded[6]!, links: 2 } };
    expect(decodeTree(encodeTree([n]), 't')[0]!.inode).toEqual({ dev: 2049, ino: folded[6], links: 2 });
  });
});

describe('snapshot records', () => {
  const snap = {
    time: '2026-03-03T14:00:00.000Z',
    hostname: 'h',
    username: 'u',
    paths: ['/a'],
    tags: ['t'],
    tree: sha256(Buffer.from('root')),
    program: 'snap test',
    excludes: ['*.tmp'],
    summary: { filesNew: 1, filesChanged: 2, filesUnchanged: 3, dirsNew: 4, dirsChanged: 5, dirsUnchanged: 6, bytesRead: 7, totalBytes: 8, totalFiles: 9, dataAdded: 10, objectsAdded: 11, warnings: 0, durationMs: 12 },
  };

  it('round-trips and is named by its hash', () => {
    const { id, bytes } = encodeSnapshot(snap);
    expect(id).toBe(sha256(bytes).toString('hex'));
    expect(decodeSnapshot(bytes, id)).toEqual({ ...snap, id });
  });

  it('detects a record that does not match its id', () => {
    const { id, bytes } = encodeSnapshot(snap);
    const bad = Buffer.from(bytes);
    bad[bad.length - 1]! ^= 1;
    expect(() => decodeSnapshot(bad, id)).toThrow(expect.objectContaining({ code: 'SNAP_CORRUPT' }));
  });
});

describe('exclude patterns (.gitignore syntax)', () => {
  const ex = (patterns: string[], p: string, dir = false) => isExcluded(compileExcludes(patterns), p, dir);
  it.each([
    [['*.tmp'], 'a/b/c.tmp', false, true],
    [['*.tmp'], 'a/b/c.tmpx', false, false],
    [['/build'], 'build', true, true],
    [['/build'], 'src/build', true, false],
    [['build/'], 'src/build', true, true],
    [['build/'], 'src/build', false, false],
    [['docs/*.md'], 'docs/a.md', false, true],
    [['docs/*.md'], 'docs/sub/a.md', false, false],
    [['**/node_modules'], 'a/b/node_modules', true, true],
    [['a/**/z'], 'a/b/c/z', false, true],
    [['a/**/z'], 'a/z', false, true],
    [['logs/**'], 'logs/x/y', false, true],
    [['*.log', '!keep.log'], 'x/keep.log', false, false],
    [['*.log', '!keep.log'], 'x/drop.log', false, true],
    [['# comment', ''], 'x', false, false],
    [['file?.txt'], 'file1.txt', false, true],
    [['file[0-9].txt'], 'fileA.txt', false, false],
    [['caf\u00e9'], Buffer.from('café').toString('latin1'), false, true],
  ])('%j on %j (dir %s) -> %s', (patterns, p, dir, want) => {
    expect(ex(patterns as string[], p as string, dir as boolean)).toBe(want);
  });
});
