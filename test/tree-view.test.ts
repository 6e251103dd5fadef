// Trees as views (issue 20, "entries per tree, streamed, never all in memory"): readTree gives a
// view over a tree's checked bytes that decodes one entry when asked. It must see exactly what
// decoding the whole tree saw, and find names by binary search over the raw names.
import { describe, expect, it } from 'vitest';
import { asArray, asRecord, cborHead, cborHeadInto, cborSkip, decodeCbor, encodeCbor } from '../src/model/cbor.js';
import { type Node, nodeFromRecord, nodeToRecord } from '../src/model/node.js';
import { type CountableTree, DECODED_MAX, MAX_TREE_BYTES, MAX_TREE_ENTRIES, Tree, TreeWriter, encodeTree, openTree, sketchTree, sortNodes } from '../src/model/tree.js';
import { isSnapError } from '../src/core/errors.js';
import { sha256 } from '../src/core/ids.js';
import { fileNode } from './helpers/nodes.js';
import { Rng } from './helpers/rng.js';

const file = fileNode;
const dir = (name: string): Node => ({ ...file(name), type: 'dir', size: 0, chunks: undefined, tree: sha256(Buffer.from(name)) });

/** What decoding the whole tree at once gives (the reader before views), as the reference. */
function wholeDecode(bytes: Buffer): Node[] {
  return asArray(asRecord(decodeCbor(bytes, 't'), 't').entries, 't.entries').map((e, i) => nodeFromRecord(e, `t.entries[${i}]`));
}

function corrupt(f: () => unknown): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(isSnapError(err, 'SNAP_CORRUPT'), String(err)).toBe(true);
}

describe('a tree view', () => {
  it('gives every entry as decoding the whole tree does, by index and in order, with names found by binary search', () => {
    const rng = new Rng(20);
    for (let round = 0; round < 12; round++) {
      const names = new Map<string, Buffer>();
      // Small trees keep their decoded entries; larger ones (rounds 5 and 11) decode on demand.
      const count = round % 6 === 5 ? DECODED_MAX + rng.int(1, 500) : rng.int(0, 300);
      while (names.size < count) {
        // Any bytes but '/' and NUL, short and long, prefixes of each other, not UTF-8.
        const b = Buffer.from(Array.from({ length: rng.int(1, 12) }, () => [0x61, 0x62, 0xff, 0x80, 0x2e, 0x20][rng.int(0, 5)]!));
        if (b.equals(Buffer.from('.')) || b.equals(Buffer.from('..'))) continue;
        names.set(b.toString('hex'), b);
      }
      const nodes = [...names.values()].map((n, i) =>
        i % 3 === 0 ? { ...dir('x'), name: n } : file(n, { size: i, xattrs: i % 5 === 0 ? [{ name: Buffer.from('user.a'), value: Buffer.from([i & 255]) }] : undefined }),
      );
      const bytes = encodeTree(sortNodes(nodes));
      const t = openTree(bytes, 't');
      const ref = wholeDecode(bytes);
      expect(t.length).toBe(ref.length);
      expect([...t]).toEqual(ref);
      expect(t.toArray()).toEqual(ref);
      expect(t.hasDirs).toBe(ref.some((n) => n.type === 'dir'));
      expect(Array.from({ length: ref.length }, (_, i) => t.at(i))).toEqual(ref);
      expect(Array.from({ length: ref.length }, (_, i) => t.find(ref[i]!.name))).toEqual(ref);
      const wrong: number[] = [];
      for (let i = 0; i < ref.length; i++) if (!t.nameAt(i).equals(ref[i]!.name) || t.indexOf(ref[i]!.name) !== i) wrong.push(i);
      expect(wrong).toEqual([]);
      for (const missing of [Buffer.from('zzz'), Buffer.from([0x61, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61]), Buffer.from([0x00])]) {
        if (!names.has(missing.toString('hex'))) expect(t.indexOf(missing)).toBe(-1);
      }
    }
  });

  it('holds the bytes and 4 bytes per entry, and encodes as before (identical trees keep identical ids)', () => {
    const nodes = Array.from({ length: 50_000 }, (_, i) => file(`f${String(i).padStart(6, '0')}`));
    const bytes = encodeTree(nodes);
    expect(bytes.equals(encodeCbor({ v: 1, entries: nodes.map(nodeToRecord) }))).toBe(true);
    const t = openTree(bytes, 't');
    // The bytes, 4 bytes per entry and one batch of decoded entries: not 670 bytes per entry.
    expect(t.heldBytes).toBeGreaterThanOrEqual(bytes.length + 4 * (nodes.length + 1));
    expect(t.heldBytes).toBeLessThan(bytes.length + 4 * (nodes.length + 1) + 200_000);
    expect(t.at(49_999).name.toString()).toBe('f049999');
    expect(() => t.at(50_000)).toThrow(RangeError);
    expect(() => t.at(-1)).toThrow(RangeError);
    expect(Tree.of([file('b'), file('a')]).nameAt(0).toString()).toBe('a');
    expect(Tree.EMPTY.length).toBe(0);
  });

  it('reads the top-level map and the entries as decoding does: keys in any order, the last of equal keys counts', () => {
    const e = nodeToRecord(file('a'));
    const t1 = openTree(Buffer.concat([Buffer.from([0xa2]), encodeCbor('entries'), encodeCbor([e]), encodeCbor('v'), encodeCbor(1)]), 't');
    expect(t1.at(0).name.toString()).toBe('a');
    // {"v": 1, "entries": [b], "entries": [a]}: the second array counts.
    const two = Buffer.concat([Buffer.from([0xa3]), encodeCbor('v'), encodeCbor(1), encodeCbor('entries'), encodeCbor([nodeToRecord(file('b'))]), encodeCbor('entries'), encodeCbor([e])]);
    expect(openTree(two, 't').toArray()).toEqual(wholeDecode(two));
    // An entry naming itself twice: decoding takes the last name, and so does the lookup.
    const rec = Buffer.from(encodeCbor(e));
    // One more key in the map's header (cbor-x writes a map's count in 2 bytes after 0xb9).
    if (rec[0] === 0xb9) rec.writeUInt16BE(rec.readUInt16BE(1) + 1, 1);
    else rec[0]!++;
    const twice = Buffer.concat([rec, encodeCbor('name'), encodeCbor(Buffer.from('z'))]);
    const t2 = openTree(Buffer.concat([encodeCbor({ v: 1, entries: [] }).subarray(0, -1), Buffer.from([0x81]), twice]), 't');
    expect(t2.at(0).name.toString()).toBe('z');
    expect(t2.indexOf(Buffer.from('z'))).toBe(0);
    expect(t2.indexOf(Buffer.from('a'))).toBe(-1);
    // v as a float of value 1 (CBOR allows it; decoding always took it).
    expect(openTree(Buffer.concat([Buffer.from([0xa2]), encodeCbor('v'), Buffer.from([0xf9, 0x3c, 0x00]), encodeCbor('entries'), Buffer.from([0x80])]), 't').length).toBe(0);
  });

  it('refuses what decoding refused, before the view exists', () => {
    const a = nodeToRecord(file('a'));
    const b = nodeToRecord(file('b'));
    corrupt(() => openTree(encodeCbor({ v: 1, entries: [b, a] }), 't'));
    corrupt(() => openTree(encodeCbor({ v: 1, entries: [a, a] }), 't'));
    corrupt(() => openTree(encodeCbor({ v: 1, entries: [a, { ...b, mode: 'rw' }] }), 't'));
    corrupt(() => openTree(encodeCbor({ v: 1, entries: [{ ...a, name: Buffer.from('..') }] }), 't'));
    corrupt(() => openTree(encodeCbor({ v: 1, entries: [{ ...a, name: 'a' }] }), 't'));
    corrupt(() => openTree(encodeCbor({ v: 2, entries: [] }), 't'));
    corrupt(() => openTree(encodeCbor({ v: -1, entries: [] }), 't'));
    corrupt(() => openTree(encodeCbor({ entries: [] }), 't'));
    corrupt(() => openTree(encodeCbor({ v: 1 }), 't'));
    corrupt(() => openTree(encodeCbor({ v: 1, entries: {} }), 't'));
    corrupt(() => openTree(encodeCbor([1, 2, 3]), 't'));
    corrupt(() => openTree(Buffer.concat([encodeCbor({ v: 1, entries: [a] }), Buffer.from([0])]), 't'));
    corrupt(() => openTree(encodeCbor({ v: 1, entries: [1] }), 't'));
    // The same in a tree large enough to be checked in batches, the bad entry in its last batch.
    const many = Array.from({ length: DECODED_MAX + 10 }, (_, i) => nodeToRecord(file(`f${String(i).padStart(6, '0')}`)));
    expect(openTree(encodeCbor({ v: 1, entries: many }), 't').length).toBe(DECODED_MAX + 10);
    corrupt(() => openTree(encodeCbor({ v: 1, entries: [...many.slice(0, -2), many.at(-1), many.at(-2)] }), 't'));
    corrupt(() => openTree(encodeCbor({ v: 1, entries: [...many.slice(0, -1), { ...many.at(-1)!, type: 'door' }] }), 't'));
    corrupt(() => openTree(encodeCbor({ v: 1, entries: [...many.slice(0, -1), { ...many.at(-1)!, name: Buffer.from('a/b') }] }), 't'));
    const head = Buffer.concat([encodeCbor({ v: 1, entries: [] }).subarray(0, -1), Buffer.from([0x9a, 0, 0x0f, 0x42, 0x41])]); // MAX_TREE_ENTRIES + 1
    expect(() => openTree(head, 't')).toThrow(new RegExp(`claims ${MAX_TREE_ENTRIES + 1} entries`));
  });
});

/** What counting sees of each entry: type, subtree, links, name, chunk ids. */
function counted(t: CountableTree): string[] {
  return Array.from({ length: t.length }, (_, i) => `${t.typeAt(i)} ${t.subtreeAt(i)?.toString('hex') ?? '-'} ${t.linksAt(i)} ${t.nameAt(i).toString('hex')} [${t.chunksAt(i).map((c) => c.toString('hex')).join(',')}]`);
}

/** An entry's record with one more key (k, v) at its end (decoding takes the last of equal keys). */
function withKey(n: Node, k: string, v: unknown): Buffer {
  const rec = Buffer.from(encodeCbor(nodeToRecord(n)));
  if (rec[0] === 0xb9) rec.writeUInt16BE(rec.readUInt16BE(1) + 1, 1);
  else rec[0]!++;
  return Buffer.concat([rec, encodeCbor(k), encodeCbor(v)]);
}

/** A tree of the given encoded entries. */
function treeOf(entries: Buffer[]): Buffer {
  const n = entries.length;
  return Buffer.concat([encodeCbor({ v: 1, entries: [] }).subarray(0, -1), Buffer.from(n < 24 ? [0x80 | n] : [0x98, n]), ...entries]);
}

describe("a tree's sketch (what a restore's count reads: sketchTree)", () => {
  it('sees every entry as the view does: types, subtree ids, link counts, names and chunk ids, small trees and large', () => {
    const rng = new Rng(21);
    for (let round = 0; round < 8; round++) {
      const count = round === 7 ? DECODED_MAX + 300 : rng.int(0, 400);
      const nodes: Node[] = [];
      for (let i = 0; i < count; i++) {
        const name = Buffer.from(`e${String(i).padStart(5, '0')}${['', '\xff', ' x'][i % 3]}`, 'latin1');
        const k = rng.int(0, 6);
        if (k === 0) nodes.push({ ...dir('x'), name, tree: sha256(name) });
        else if (k === 1) nodes.push({ ...file(name), type: 'symlink', chunks: undefined, target: Buffer.from('t') });
        else if (k === 2) nodes.push({ ...file(name), type: 'fifo', chunks: undefined });
        else if (k === 3) nodes.push(file(name, { inode: { dev: 5, ino: 1000 + i, links: rng.int(1, 4) } }));
        else if (k === 4) nodes.push(file(name, { xattrs: [{ name: Buffer.from('user.a'), value: Buffer.from([i & 255]) }] }));
        // No chunks, one, a few, and more than 23 (a longer array head).
        else nodes.push(file(name, { size: i, chunks: Array.from({ length: [0, 1, 3, 30][i % 4]! }, (_, j) => sha256(Buffer.from(`${i}.${j}`))) }));
      }
      const bytes = encodeTree(sortNodes(nodes));
      const sketch = sketchTree(bytes, 't');
      expect(sketch, `round ${round}`).toBeDefined();
      expect(counted(sketch!)).toEqual(counted(openTree(bytes, 't')));
    }
  });

  it('is not made for an entry a count could read otherwise than decoding does: the caller then opens the tree', () => {
    const a = file('a');
    const good = treeOf([Buffer.from(encodeCbor(nodeToRecord(a)))]);
    expect(sketchTree(good, 't')).toBeDefined();
    const refused: [string, Buffer][] = [
      ['a second type (decoding takes the last)', treeOf([withKey(a, 'type', 'dir')])],
      ['a second name', treeOf([withKey(a, 'name', Buffer.from('b'))])],
      ['a name as text', treeOf([Buffer.from(encodeCbor({ ...nodeToRecord(a), name: 'a' }))])],
      ['an unknown type', treeOf([Buffer.from(encodeCbor({ ...nodeToRecord(a), type: 'door' }))])],
      ['a directory without a tree', treeOf([Buffer.from(encodeCbor({ ...nodeToRecord(dir('d')), tree: undefined }))])],
      ['a tree id of 31 bytes', treeOf([Buffer.from(encodeCbor({ ...nodeToRecord(dir('d')), tree: Buffer.alloc(31) }))])],
      ['an inode link count as a float', treeOf([Buffer.from(encodeCbor({ ...nodeToRecord(a), inode: [1, 2, 2.5] }))])],
      ['names out of order', treeOf([Buffer.from(encodeCbor(nodeToRecord(file('b')))), Buffer.from(encodeCbor(nodeToRecord(a)))])],
      ['a name twice', treeOf([Buffer.from(encodeCbor(nodeToRecord(a))), Buffer.from(encodeCbor(nodeToRecord(a)))])],
      ['an unsafe name', treeOf([Buffer.from(encodeCbor(nodeToRecord(file('..'))))])],
      ['an entry that is not a map', treeOf([Buffer.from(encodeCbor(['a']))])],
      ['a chunk id of 31 bytes', treeOf([Buffer.from(encodeCbor({ ...nodeToRecord(a), chunks: [Buffer.alloc(31)] }))])],
      ['a chunk id as text', treeOf([Buffer.from(encodeCbor({ ...nodeToRecord(a), chunks: ['x'.repeat(32)] }))])],
      ['chunks not an array', treeOf([Buffer.from(encodeCbor({ ...nodeToRecord(a), chunks: Buffer.alloc(32) }))])],
      ['chunks twice', treeOf([withKey(a, 'chunks', [Buffer.alloc(32, 1)])])],
      // A chunk id with a longer head (0x59 0x00 0x20): the same id to a decoder, not where a sketch reads ids.
      ['a chunk id with a longer head', treeOf([(() => {
        const rec = Buffer.from(encodeCbor(nodeToRecord(a)));
        const at = rec.indexOf(Buffer.concat([Buffer.from([0x81, 0x58, 0x20]), a.chunks![0]!]));
        return Buffer.concat([rec.subarray(0, at + 1), Buffer.from([0x59, 0x00, 0x20]), rec.subarray(at + 3)]);
      })()])],
    ];
    for (const [why, bytes] of refused) expect(sketchTree(bytes, 't'), why).toBeUndefined();
    // Problems of the whole encoding are thrown as openTree throws them.
    corrupt(() => sketchTree(Buffer.from([0xa1, 0x61, 0x76]), 't'));
    corrupt(() => sketchTree(encodeCbor({ v: 2, entries: [] }), 't'));
  });
});

describe('a large tree opened again, known to have passed its check (Repository.readTree)', () => {
  it('is the same view: entries, names, lookups and whether it has directories', () => {
    const nodes = Array.from({ length: DECODED_MAX + 300 }, (_, i) => (i % 50 === 7 ? { ...dir('d'), name: Buffer.from(`n${String(i).padStart(6, '0')}`) } : file(`n${String(i).padStart(6, '0')}`, { size: i })));
    const bytes = encodeTree(nodes);
    const first = openTree(bytes, 't');
    const again = openTree(bytes, 't', { hasDirs: first.hasDirs });
    expect(again.length).toBe(first.length);
    expect(again.hasDirs).toBe(true);
    expect([...again]).toEqual([...first]);
    expect(again.indexOf(Buffer.from('n004321'))).toBe(4321);
    expect(again.heldBytes).toBe(first.heldBytes);
    // The count and size limits still hold for a tree said to be checked.
    const head = Buffer.concat([encodeCbor({ v: 1, entries: [] }).subarray(0, -1), Buffer.from([0x9a, 0, 0x0f, 0x42, 0x41])]);
    expect(() => openTree(head, 't', { hasDirs: false })).toThrow(new RegExp(`claims ${MAX_TREE_ENTRIES + 1} entries`));
  });
});

describe('a tree written entry by entry (TreeWriter)', () => {
  function written(nodes: Node[], hint?: number): Buffer {
    const w = new TreeWriter(nodes.length, hint);
    for (const n of nodes) w.add(n);
    return w.finish();
  }

  it('gives exactly the bytes encodeTree gives, for every size of the array head and any entry', () => {
    const rng = new Rng(21);
    // The head of the entries array changes length at 24, 256 and 65,536 entries.
    for (const count of [0, 1, 23, 24, 255, 256, 4097, 65_535, 65_536]) {
      const nodes = Array.from({ length: count }, (_, i) => {
        const name = Buffer.from(`n${String(i).padStart(6, '0')}`);
        if (i % 7 === 3) return { ...dir('d'), name };
        const extra: Partial<Node> = { size: rng.int(0, 1 << 30), chunks: Array.from({ length: rng.int(0, 3) }, () => sha256(Buffer.from([rng.int(0, 255)]))) };
        if (i % 11 === 5) extra.xattrs = [{ name: Buffer.from('user.x'), value: Buffer.from([0xff, i & 255]) }];
        if (i % 13 === 6) extra.inode = { dev: 2049, ino: 2 ** 40 + i, links: 2 };
        return file(name, extra);
      });
      const expected = encodeTree(nodes);
      // Without a hint the buffer grows many times; with the right size it never does.
      for (const hint of [undefined, expected.length]) expect(written(nodes, hint).equals(expected), `${count} entries, hint ${hint}`).toBe(true);
    }
  });

  it('refuses entries out of order, more or fewer entries than announced, and more than a reader reads', () => {
    const a = file('a');
    const b = file('b');
    expect(() => written([b, a])).toThrow(RangeError);
    expect(() => written([a, a])).toThrow(RangeError);
    const w = new TreeWriter(1);
    w.add(a);
    expect(() => w.add(b)).toThrow(RangeError);
    const short = new TreeWriter(2);
    short.add(a);
    expect(() => short.finish()).toThrow(RangeError);
    let err: unknown;
    try {
      void new TreeWriter(MAX_TREE_ENTRIES + 1);
    } catch (e) {
      err = e;
    }
    expect(isSnapError(err, 'SNAP_TOO_LARGE'), String(err)).toBe(true);
    // Past MAX_TREE_BYTES: entries of 64 KiB attributes each.
    const big = new TreeWriter(MAX_TREE_BYTES / 65536 + 10);
    err = undefined;
    try {
      for (let i = 0; i < MAX_TREE_BYTES / 65536 + 10; i++) big.add(file(`x${String(i).padStart(5, '0')}`, { xattrs: [{ name: Buffer.from('user.big'), value: Buffer.alloc(65536) }] }));
    } catch (e) {
      err = e;
    }
    expect(isSnapError(err, 'SNAP_TOO_LARGE'), String(err)).toBe(true);
  });
});

describe('reading CBOR heads in place', () => {
  /** cborSkip as it was written first, through cborHead (an object per item): the reference. */
  function skipByHeads(b: Uint8Array, pos: number): number | undefined {
    let todo = 1;
    while (todo > 0) {
      const h = cborHead(b, pos);
      if (!h) return undefined;
      todo--;
      pos = h.next;
      if (h.major === 2 || h.major === 3) pos += h.arg;
      else if (h.major === 4) todo += h.arg;
      else if (h.major === 5) todo += 2 * h.arg;
      else if (h.major === 6) todo += 1;
      if (pos > b.length || todo > b.length) return undefined;
    }
    return pos;
  }

  it('cborSkip ends where reading every head ends, on trees, their truncations and random bytes', () => {
    const rng = new Rng(22);
    const tree = encodeTree(Array.from({ length: 40 }, (_, i) => file(`f${i}`, { xattrs: i % 4 ? undefined : [{ name: Buffer.from('user.a'), value: Buffer.alloc(300, i) }], inode: { dev: 1, ino: 2 ** 40 + i, links: 2 } })));
    const inputs: Buffer[] = [tree, tree.subarray(0, tree.length - 1), tree.subarray(0, 100)];
    for (let i = 0; i < 300; i++) inputs.push(Buffer.from(Array.from({ length: rng.int(0, 40) }, () => rng.int(0, 255))));
    const wrong: string[] = [];
    for (const b of inputs) {
      for (let pos = 0; pos <= b.length; pos++) if (cborSkip(b, pos) !== skipByHeads(b, pos)) wrong.push(`${b.toString('hex').slice(0, 40)} at ${pos}`);
    }
    expect(wrong).toEqual([]);
  });

  it('cborHeadInto reads every head as cborHead does, on trees, their truncations and random bytes', () => {
    const rng = new Rng(23);
    const tree = encodeTree(Array.from({ length: 20 }, (_, i) => file(`f${i}`, { inode: { dev: 1, ino: 2 ** 40 + i, links: 2 } })));
    const inputs: Buffer[] = [tree, tree.subarray(0, tree.length - 1), Buffer.from([0x1b, 0, 0, 1, 2, 3, 4, 5, 6]), Buffer.from([0x1b, 0, 0])];
    for (let i = 0; i < 300; i++) inputs.push(Buffer.from(Array.from({ length: rng.int(0, 40) }, () => rng.int(0, 255))));
    const into = new Float64Array(2);
    const wrong: string[] = [];
    for (const b of inputs) {
      for (let pos = 0; pos <= b.length; pos++) {
        const h = cborHead(b, pos);
        const major = cborHeadInto(b, pos, into);
        const got = major < 0 ? undefined : { major, arg: into[0], next: into[1] };
        if (JSON.stringify(got) !== JSON.stringify(h)) wrong.push(`${b.toString('hex').slice(0, 40)} at ${pos}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('finds a name whose key is not written the shortest way (a text head of 2 bytes), as decoding does', () => {
    const entries = Array.from({ length: DECODED_MAX + 2 }, (_, i) => {
      const rec = encodeCbor(nodeToRecord(file(`f${String(i).padStart(6, '0')}`)));
      // 'name' as 0x78 0x04 'name' instead of 0x64 'name' (cbor-x writes map counts as 0xb9 + 2 bytes).
      const at = rec.indexOf(Buffer.from([0x64, 0x6e, 0x61, 0x6d, 0x65]));
      return i % 2 ? Buffer.concat([rec.subarray(0, at), Buffer.from([0x78, 0x04]), rec.subarray(at + 1)]) : rec;
    });
    const n = entries.length;
    const bytes = Buffer.concat([encodeCbor({ v: 1, entries: [] }).subarray(0, -1), Buffer.from([0x99, n >> 8, n & 255]), ...entries]);
    const t = openTree(bytes, 't');
    expect(t.toArray()).toEqual(wholeDecode(bytes));
    expect(t.indexOf(Buffer.from('f000003'))).toBe(3);
    expect(t.nameAt(4097).toString()).toBe('f004097');
  });
});
