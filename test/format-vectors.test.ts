// The format contract (docs/format.md) against the committed vectors (test/vectors/v1):
// - every record is rebuilt from its documented fields by a small CBOR encoder written here from
//   the document (not the code's encoder) and must give the committed bytes and ids;
// - chunk boundaries come from a chunker written here from the document;
// - the current code must still write the same bytes, read the vector repositories, find them
//   clean and restore them exactly.
// A change that breaks compatibility with format 1 repositories fails here.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { decompress as fzstdDecompress } from 'fzstd';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Level } from 'level';
import { describe, expect, it } from 'vitest';
import { fsDecode, fsEncode, hasEscapedBytes } from '../src/core/bytes.js';
import { asArray, asBytes, asUint, decodeCbor, encodeCbor } from '../src/model/cbor.js';
import { decodeConfig } from '../src/model/config.js';
import type { Node } from '../src/model/node.js';
import { decodeSnapshot, encodeSnapshot, type Snapshot } from '../src/model/snapshot.js';
import { decodeTree, encodeTree } from '../src/model/tree.js';
import { chunkBuffer, makeGear } from '../src/store/chunker.js';
import { FileChunker } from '../src/store/file-chunker.js';
import { decodePackHeader, PackBuilder } from '../src/store/pack.js';
import { mtimeNs } from '../src/cli/format.js';
import { fmtTime } from '../src/ops/restore/export/verify.js';
import { snap, tmpDir } from './helpers/cli.js';
import { craftSnapshot, node as craftNode } from './helpers/craft.js';
import { type Content, contentBytes } from './vectors/content.js';
import { expectRestoredTime } from './helpers/times.js';

const VECTORS = path.join(import.meta.dirname, 'vectors', 'v1');
const readJson = <T>(name: string): T => JSON.parse(fs.readFileSync(path.join(VECTORS, name), 'utf8')) as T;
const isRoot = process.getuid?.() === 0;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

// ---------------------------------------------------------------------------------------------
// A CBOR encoder written from docs/format.md, "Encoding of records". Values are typed, so the
// encoder never guesses: the record builders below say what each documented field is.

type C =
  | { k: 'int'; n: number }
  | { k: 'bytes'; b: Buffer }
  | { k: 'text'; s: string }
  | { k: 'array'; xs: C[] }
  | { k: 'map'; pairs: [string, C][] };

const int = (n: number): C => ({ k: 'int', n });
const bytes = (hex: string): C => ({ k: 'bytes', b: Buffer.from(hex, 'hex') });
const text = (s: string): C => ({ k: 'text', s });
const arr = (xs: C[]): C => ({ k: 'array', xs });
const map = (pairs: [string, C][]): C => ({ k: 'map', pairs });

/**
 * `v1` is format 1 exactly. The others are encodings readers must accept too: `preferred` (RFC
 * 8949 shortest map heads), `wide` (string lengths in 4 bytes, every other argument in 8 bytes,
 * integers never as floats),
 * `floats` (every integer as a 64-bit float) and `shuffled` (map keys reversed, an unknown key added).
 */
type Style = 'v1' | 'preferred' | 'wide' | 'floats' | 'shuffled';

function head(major: number, n: bigint, style: Style): Buffer {
  const mt = major << 5;
  if (style === 'wide' && (major === 2 || major === 3)) {
    const b = Buffer.alloc(5); // strings: 4 bytes (snap refuses 8-byte string lengths)
    b[0] = mt | 26;
    b.writeUInt32BE(Number(n), 1);
    return b;
  }
  if (style === 'wide') {
    const b = Buffer.alloc(9);
    b[0] = mt | 27;
    b.writeBigUInt64BE(n, 1);
    return b;
  }
  if (n < 24n) return Buffer.from([mt | Number(n)]);
  if (n < 0x100n) return Buffer.from([mt | 24, Number(n)]);
  if (n < 0x10000n) return Buffer.from([mt | 25, Number(n >> 8n), Number(n & 0xffn)]);
  if (n < 0x100000000n) {
    const b = Buffer.alloc(5);
    b[0] = mt | 26;
    b.writeUInt32BE(Number(n), 1);
    return b;
  }
  const b = Buffer.alloc(9);
  b[0] = mt | 27;
  b.writeBigUInt64BE(n, 1);
  return b;
}

function float64(n: number): Buffer {
  const b = Buffer.alloc(9);
  b[0] = 0xfb;
  b.writeDoubleBE(n, 1);
  return b;
}

function enc(c: C, style: Style = 'v1'): Buffer {
  switch (c.k) {
    case 'int': {
      const outside = c.n > 0xffffffff || c.n < -0x100000000;
      if (style === 'floats' || (outside && style !== 'wide')) return float64(c.n);
      return c.n >= 0 ? head(0, BigInt(c.n), style) : head(1, BigInt(-1 - c.n), style);
    }
    case 'bytes':
      return Buffer.concat([head(2, BigInt(c.b.length), style), c.b]);
    case 'text': {
      const u = Buffer.from(c.s, 'utf8');
      return Buffer.concat([head(3, BigInt(u.length), style), u]);
    }
    case 'array':
      return Buffer.concat([head(4, BigInt(c.xs.length), style), ...c.xs.map((x) => enc(x, style))]);
    case 'map': {
      let pairs = c.pairs;
      if (style === 'shuffled') pairs = [['zz-unknown', arr([text('ignored')])], ...[...pairs].reverse()];
      const n = pairs.length;
      const h = style === 'v1' || style === 'floats' || style === 'shuffled' ? Buffer.from([0xb9, n >> 8, n & 0xff]) : head(5, BigInt(n), style);
      return Buffer.concat([h, ...pairs.flatMap(([k, v]) => [enc(text(k), style), enc(v, style)])]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Records from their documented fields (byte strings as hex in the vectors' JSON).

interface NodeFields {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  user: string;
  group: string;
  mtime: [number, number];
  size: number;
  chunks?: string[];
  tree?: string;
  target?: string;
  rdev?: number;
  inode?: [number, number, number];
  /** `[name, value]`, both hex. */
  xattrs?: [string, string][];
}

interface TreeFields {
  v: number;
  entries: NodeFields[];
}

const SUMMARY_KEYS = ['filesNew', 'filesChanged', 'filesUnchanged', 'dirsNew', 'dirsChanged', 'dirsUnchanged', 'bytesRead', 'totalBytes', 'totalFiles', 'dataAdded', 'objectsAdded', 'warnings', 'durationMs'];

/** A `paths` or `excludes` item: JSON text for a text string, `{"bytes": hex}` for a byte string (test/vectors/README.md). */
type PathField = string | { bytes: string };

interface SnapshotFields {
  v: number;
  time: string;
  hostname: string;
  username: string;
  paths: PathField[];
  tags: string[];
  tree: string;
  program: string;
  excludes: PathField[];
  summary: Record<string, number>;
  parent?: string;
  original?: string;
}

type PackEntryFields = [number, string, number, number, number, number];

/** docs/format.md, "Trees": keys in the table's order; a "present" key exactly when its condition holds. */
function nodeC(e: NodeFields): C {
  const p: [string, C][] = [
    ['name', bytes(e.name)], ['type', text(e.type)], ['mode', int(e.mode)], ['uid', int(e.uid)], ['gid', int(e.gid)],
    ['user', text(e.user)], ['group', text(e.group)], ['mtime', arr([int(e.mtime[0]), int(e.mtime[1])])], ['size', int(e.size)],
  ];
  if (e.type === 'file') p.push(['chunks', arr(e.chunks!.map(bytes))]);
  if (e.type === 'dir') p.push(['tree', bytes(e.tree!)]);
  if (e.type === 'symlink') p.push(['target', bytes(e.target!)]);
  if (e.type === 'chardev' || e.type === 'blockdev') p.push(['rdev', int(e.rdev!)]);
  if (e.type === 'file' && e.inode && e.inode[2] > 1) p.push(['inode', arr(e.inode.map(int))]);
  if (e.xattrs && e.xattrs.length > 0) p.push(['xattrs', arr(e.xattrs.map(([k, v]) => arr([bytes(k), bytes(v)])))]);
  return map(p);
}

const treeC = (t: TreeFields): C => map([['v', int(t.v)], ['entries', arr(t.entries.map(nodeC))]]);

function isUtf8(b: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

/** docs/format.md, "Snapshot records": a path is a text string when it is UTF-8, a byte string otherwise. */
function pathC(p: PathField): C {
  if (typeof p === 'string') return text(p);
  const b = Buffer.from(p.bytes, 'hex');
  expect(isUtf8(b), 'a UTF-8 path is a text string').toBe(false);
  return { k: 'bytes', b };
}

function snapshotC(r: SnapshotFields): C {
  const p: [string, C][] = [
    ['v', int(r.v)], ['time', text(r.time)], ['hostname', text(r.hostname)], ['username', text(r.username)],
    ['paths', arr(r.paths.map(pathC))], ['tags', arr(r.tags.map(text))], ['tree', bytes(r.tree)], ['program', text(r.program)],
    ['excludes', arr(r.excludes.map(pathC))], ['summary', map(SUMMARY_KEYS.map((k) => [k, int(r.summary[k]!)]))],
  ];
  if (r.parent) p.push(['parent', bytes(r.parent)]);
  if (r.original) p.push(['original', bytes(r.original)]);
  return map(p);
}

const packEntryC = (e: PackEntryFields): C => arr([int(e[0]), bytes(e[1]), int(e[2]), int(e[3]), int(e[4]), int(e[5])]);
const packHeaderC = (h: { v: number; entries: PackEntryFields[] }): C => map([['v', int(h.v)], ['entries', arr(h.entries.map(packEntryC))]]);
/** The index's `o` value: [pack id, type, offset, length, rawLength, codec]; `p`: [pack size, object count]. */
const indexObjectC = (pack: string, e: PackEntryFields): C => arr([bytes(pack), int(e[0]), int(e[2]), int(e[3]), int(e[4]), int(e[5])]);
const indexPackC = (size: number, count: number): C => arr([int(size), int(count)]);

// The same fields as the code's types, to hold the code to the committed bytes too.
const hexBuf = (h: string): Buffer => Buffer.from(h, 'hex');
function toNode(e: NodeFields): Node {
  const n: Node = { name: hexBuf(e.name), type: e.type as Node['type'], mode: e.mode, uid: e.uid, gid: e.gid, user: e.user, group: e.group, mtime: { sec: e.mtime[0], nsec: e.mtime[1] }, size: e.size };
  if (e.chunks) n.chunks = e.chunks.map(hexBuf);
  if (e.tree) n.tree = hexBuf(e.tree);
  if (e.target) n.target = hexBuf(e.target);
  if (e.rdev !== undefined) n.rdev = e.rdev;
  if (e.inode) n.inode = { dev: e.inode[0], ino: e.inode[1], links: e.inode[2] };
  if (e.xattrs) n.xattrs = e.xattrs.map(([k, v]) => ({ name: hexBuf(k), value: hexBuf(v) }));
  return n;
}
/** The code holds paths as lossless strings (core/bytes.ts): a stray byte 0xNN is the code unit 0xDCNN. */
const pathString = (p: PathField): string => (typeof p === 'string' ? p : fsDecode(hexBuf(p.bytes)));
const pathFieldOf = (s: string): PathField => (hasEscapedBytes(s) ? { bytes: fsEncode(s).toString('hex') } : s);
function toSnapshot(r: SnapshotFields): Snapshot {
  const s: Snapshot = { time: r.time, hostname: r.hostname, username: r.username, paths: r.paths.map(pathString), tags: r.tags, tree: hexBuf(r.tree), program: r.program, excludes: r.excludes.map(pathString), summary: r.summary as unknown as Snapshot['summary'] };
  if (r.parent) s.parent = hexBuf(r.parent);
  if (r.original) s.original = hexBuf(r.original);
  return s;
}
const nodeFields = (n: Node): NodeFields => JSON.parse(JSON.stringify({
  name: n.name.toString('hex'), type: n.type, mode: n.mode, uid: n.uid, gid: n.gid, user: n.user, group: n.group, mtime: [n.mtime.sec, n.mtime.nsec], size: n.size,
  chunks: n.chunks?.map((c) => c.toString('hex')), tree: n.tree?.toString('hex'), target: n.target?.toString('hex'), rdev: n.rdev, inode: n.inode && [n.inode.dev, n.inode.ino, n.inode.links],
  xattrs: n.xattrs?.map((x) => [x.name.toString('hex'), x.value.toString('hex')]),
})) as NodeFields;

// ---------------------------------------------------------------------------------------------
// A chunker written from docs/format.md, "Chunking".

function gearTable(seedHex: string): number[] {
  const seed = Buffer.from(seedHex, 'hex');
  const g: number[] = [];
  for (let i = 0; i < 256; i += 8) {
    const d = createHash('sha256').update(Buffer.concat([seed, Buffer.from([i])])).digest();
    for (let j = 0; j < 8; j++) g.push(d.readUInt32LE(4 * j));
  }
  return g;
}

/** A 32-bit word with its top `bits` bits set. */
const topBitsMask = (bits: number): number => 2 ** 32 - 2 ** (32 - bits);

function docChunks(seedHex: string, p: { minSize: number; avgSize: number; maxSize: number }, data: Buffer): { offset: number; length: number; id: string }[] {
  const G = gearTable(seedHex);
  const b = Math.log2(p.avgSize);
  // h & mask == 0 means the top bits of h are zero: h below 2^(32 - bits).
  const smallLimit = 2 ** (32 - (b + 2));
  const largeLimit = 2 ** (32 - (b - 2));
  const out: { offset: number; length: number; id: string }[] = [];
  let start = 0;
  while (start < data.length) {
    const n = data.length - start;
    let len: number;
    if (n <= p.minSize) len = n;
    else {
      len = Math.min(n, p.maxSize);
      let h = 0;
      for (let i = p.minSize; i < Math.min(n, p.maxSize); i++) {
        h = (2 * h + G[data[start + i]!]!) % 2 ** 32;
        if (h < (i < p.avgSize ? smallLimit : largeLimit)) {
          len = i + 1;
          break;
        }
      }
    }
    out.push({ offset: start, length: len, id: sha(data.subarray(start, start + len)) });
    start += len;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

interface ChunkerVectors {
  gearSeed: string;
  gear_table: string[];
  cases: { name: string; params: { minSize: number; avgSize: number; maxSize: number }; input: Content; maskS: string; maskL: string; input_sha256: string; chunks: { offset: number; length: number; id: string }[] }[];
}

describe('format 1 chunker vectors (test/vectors/v1/chunker.json)', () => {
  const v = readJson<ChunkerVectors>('chunker.json');

  it('the gear table and masks follow the document', () => {
    expect(contentBytes({ xorshift32: 1, length: 3 }).toString('hex')).toBe('2101c5'); // test/vectors/README.md
    expect(gearTable(v.gearSeed).map((x) => x.toString(16).padStart(8, '0'))).toEqual(v.gear_table);
    const code = makeGear({ algorithm: 'fastcdc-gear32-nc2', minSize: 256, avgSize: 1024, maxSize: 4096, gearSeed: v.gearSeed });
    expect(Array.from(code.table, (x) => x.toString(16).padStart(8, '0'))).toEqual(v.gear_table);
    // Seeds of other lengths: 32 to 64 digits; an odd last digit is not used.
    const seed32 = v.gearSeed.slice(0, 32);
    const tableOf = (gearSeed: string): number[] => Array.from(makeGear({ algorithm: 'fastcdc-gear32-nc2', minSize: 256, avgSize: 1024, maxSize: 4096, gearSeed }).table);
    expect(tableOf(seed32)).toEqual(gearTable(seed32));
    expect(tableOf(`${seed32}f`)).toEqual(gearTable(seed32));
    expect(tableOf(v.gearSeed.slice(0, 63))).toEqual(gearTable(v.gearSeed.slice(0, 62)));
    expect(tableOf(seed32)).not.toEqual(gearTable(v.gearSeed));
    for (const c of v.cases) {
      const b = Math.log2(c.params.avgSize);
      expect(topBitsMask(b + 2).toString(16)).toBe(c.maskS);
      expect(topBitsMask(b - 2).toString(16)).toBe(c.maskL);
    }
  });

  for (const c of v.cases) {
    it(`${c.name}: the document's chunker and the code give the committed boundaries and ids`, () => {
      const data = contentBytes(c.input);
      expect(sha(data)).toBe(c.input_sha256);
      expect(docChunks(v.gearSeed, c.params, data)).toEqual(c.chunks);
      const g = makeGear({ algorithm: 'fastcdc-gear32-nc2', ...c.params, gearSeed: v.gearSeed });
      const described = (chunks: Uint8Array[]): { offset: number; length: number; id: string }[] => {
        let off = 0;
        return chunks.map((ch) => {
          const r = { offset: off, length: ch.length, id: sha(ch) };
          off += ch.length;
          return r;
        });
      };
      expect(described(chunkBuffer(g, data))).toEqual(c.chunks);
      // As a backup reads a file: in a stream.
      const file = path.join(tmpDir('snap-vectors-chunker-'), 'input');
      fs.writeFileSync(file, data);
      const fd = fs.openSync(file, 'r');
      try {
        const fc = new FileChunker(fd, g);
        const streamed: Buffer[] = [];
        for (let ch = fc.next(); ch; ch = fc.next()) streamed.push(Buffer.from(ch));
        expect(described(streamed)).toEqual(c.chunks);
      } finally {
        fs.closeSync(fd);
      }
    });
  }
});

interface RecordVector {
  name: string;
  kind: 'tree' | 'snapshot' | 'pack-header' | 'index-object' | 'index-pack';
  fields: unknown;
  hex: string;
  sha256: string;
}

function recordC(r: RecordVector): C {
  switch (r.kind) {
    case 'tree':
      return treeC(r.fields as TreeFields);
    case 'snapshot':
      return snapshotC(r.fields as SnapshotFields);
    case 'pack-header':
      return packHeaderC(r.fields as { v: number; entries: PackEntryFields[] });
    case 'index-object': {
      const f = r.fields as [string, number, number, number, number, number];
      return indexObjectC(f[0], [f[1], '', f[2], f[3], f[4], f[5]]);
    }
    case 'index-pack': {
      const f = r.fields as [number, number];
      return indexPackC(f[0], f[1]);
    }
  }
}

/** What the code decodes a record to, back in documented fields. */
function decodeWithCode(r: RecordVector, b: Buffer): unknown {
  switch (r.kind) {
    case 'tree':
      return { v: 1, entries: decodeTree(b, r.name).map(nodeFields) };
    case 'snapshot': {
      const { id: _id, ...s } = decodeSnapshot(b, sha(b));
      return JSON.parse(JSON.stringify({ v: 1, ...s, paths: s.paths.map(pathFieldOf), excludes: s.excludes.map(pathFieldOf), tree: s.tree.toString('hex'), parent: s.parent?.toString('hex'), original: s.original?.toString('hex') }));
    }
    case 'pack-header':
      return { v: 1, entries: decodePackHeader(b, r.name, Number.MAX_SAFE_INTEGER).map((e) => [e.type === 'tree' ? 1 : 0, e.id.toString('hex'), e.offset, e.length, e.rawLength, e.codec]) };
    case 'index-object': {
      // As the index reads it (src/index/level-index.ts, decodeLocation).
      const a = asArray(decodeCbor(b, r.name), r.name);
      return [asBytes(a[0], 'pack').toString('hex'), ...a.slice(1).map((x) => asUint(x, r.name))];
    }
    case 'index-pack':
      return asArray(decodeCbor(b, r.name), r.name).map((x) => asUint(x, r.name));
  }
}

/** The code's encoder, given the same fields. */
function encodeWithCode(r: RecordVector): Buffer {
  switch (r.kind) {
    case 'tree':
      return encodeTree((r.fields as TreeFields).entries.map(toNode));
    case 'snapshot':
      return encodeSnapshot(toSnapshot(r.fields as SnapshotFields)).bytes;
    case 'pack-header': {
      const entries = (r.fields as { entries: PackEntryFields[] }).entries;
      const pb = new PackBuilder(0);
      for (const e of entries) pb.add(hexBuf(e[1]), e[0] === 1 ? 'tree' : 'blob', Buffer.alloc(e[3]), e[4], e[5]);
      const sealed = pb.seal().bytes;
      const dataLength = entries.reduce((n, e) => n + e[3], 0);
      return Buffer.from(sealed.subarray(dataLength, sealed.length - 12));
    }
    case 'index-object': {
      const f = r.fields as [string, number, number, number, number, number];
      return encodeCbor([hexBuf(f[0]), ...f.slice(1)]);
    }
    case 'index-pack':
      return encodeCbor(r.fields);
  }
}

describe('format 1 record vectors (test/vectors/v1/records.json)', () => {
  const { records } = readJson<{ records: RecordVector[] }>('records.json');

  it('covers every kind of record', () => {
    expect(new Set(records.map((r) => r.kind))).toEqual(new Set(['tree', 'snapshot', 'pack-header', 'index-object', 'index-pack']));
  });

  for (const r of records) {
    it(`${r.name}: the document's encoding of its fields is the committed bytes, and so is the code's`, () => {
      const doc = enc(recordC(r));
      expect(doc.toString('hex')).toBe(r.hex);
      expect(sha(doc)).toBe(r.sha256);
      expect(encodeWithCode(r).toString('hex')).toBe(r.hex);
      expect(decodeWithCode(r, doc)).toEqual(r.fields);
      if (r.kind === 'snapshot') {
        // "Sorted": JavaScript's string order, a stray byte 0xNN read as the code unit 0xDCNN.
        const f = r.fields as SnapshotFields;
        const keys = f.paths.map(pathString);
        expect([...keys].sort(), 'paths sorted').toEqual(keys);
        expect([...f.tags].sort(), 'tags sorted').toEqual(f.tags);
        expect(new Set(f.tags).size).toBe(f.tags.length);
      }
    });

    it(`${r.name}: readers accept the other encodings the document allows`, () => {
      for (const style of ['preferred', 'wide', 'floats', 'shuffled'] as const) {
        const other = enc(recordC(r), style);
        if (style === 'wide' || style === 'floats') expect(other.equals(enc(recordC(r))), style).toBe(false);
        expect(decodeWithCode(r, other), style).toEqual(r.fields);
      }
    });
  }

  it('the examples in the document', () => {
    expect(enc(arr([int(-1), int(250_000_000)])).toString('hex')).toBe('82201a0ee6b280');
    expect(enc(int(4_294_967_295)).toString('hex')).toBe('1affffffff');
    expect(enc(int(4_294_967_296)).toString('hex')).toBe('fb41f0000000000000');
    const empty = enc(treeC({ v: 1, entries: [] }));
    expect(empty.toString('hex')).toBe('b9000261760167656e747269657380');
    expect(sha(empty)).toMatch(/^69bc1d54226a525c/);
    // "Packs": an entry takes at most 52 bytes, so 1,000,000 entries fit in a 64 MiB header.
    const maxStored = 64 * 1024 * 1024 + 64 * 1024 * 1024 / 128 + 128 * 1024;
    const widest = enc(packEntryC([1, 'ff'.repeat(32), 256 * 1024 * 1024 + maxStored, maxStored, 64 * 1024 * 1024, 2]));
    expect(widest.length).toBe(52);
    const headerOf = (n: number): number => enc(packHeaderC({ v: 1, entries: [] })).length - 1 + head(4, BigInt(n), 'v1').length + 52 * n;
    expect(headerOf(1_000_000)).toBeLessThanOrEqual(64 * 1024 * 1024);
    expect(headerOf(1_290_555)).toBeGreaterThan(64 * 1024 * 1024);
  });
});

// ---------------------------------------------------------------------------------------------
// The vector repositories.

interface SourceEntry {
  path: string;
  path_text: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime_ns: string;
  content?: Content;
  size?: number;
  sha256?: string;
  chunks?: { offset: number; length: number; id: string }[];
  target?: string;
  dev?: [number, number];
  link_of?: string;
  excluded?: boolean;
}

interface RepoVectors {
  config: Record<string, unknown> & { chunker: { algorithm: string; minSize: number; avgSize: number; maxSize: number; gearSeed: string }; packSize: number; compression: { codec: string; level: number } };
  files: { file: string; size: number; sha256: string }[];
  packs: { id: string; file: string; size: number; header_length: number; type: string; entries: PackEntryFields[] }[];
  snapshots: { id: string; file: string; record: SnapshotFields }[];
  trees: (TreeFields & { id: string })[];
  sources: { snapshot: string; root: string; root_mode: number; root_mtime_ns: string; parent: string; parent_mode: number; parent_mtime_ns: string; entries: SourceEntry[] }[];
}

const { repositories } = readJson<{ repositories: Record<string, RepoVectors> }>('repos.json');
// fzstd: a zstd decoder written in plain JavaScript, independent of every implementation snap uses.
const zstd = { decompress: (b: Uint8Array): Buffer => Buffer.from(fzstdDecompress(b)) };

function listFiles(dir: string, rel = ''): string[] {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const r = rel ? `${rel}/${e.name}` : e.name;
    return e.isDirectory() ? listFiles(dir, r) : [r];
  }).sort();
}

/** The node a path of the snapshot's root tree leads to. */
function lookup(v: RepoVectors, rootTree: string, p: string): NodeFields {
  const trees = new Map(v.trees.map((t) => [t.id, t]));
  let tree = trees.get(rootTree)!;
  const parts = p.split('/').filter(Boolean);
  for (let i = 0; ; i++) {
    const name = Buffer.from(parts[i]!, 'latin1').toString('hex');
    const node = tree.entries.find((e) => e.name === name);
    if (!node) throw new Error(`${p}: no ${parts[i]}`);
    if (i === parts.length - 1) return node;
    tree = trees.get(node.tree!)!;
  }
}

for (const [name, v] of Object.entries(repositories)) {
  const dir = path.join(VECTORS, name);

  describe(`format 1 vector repository ${name}`, () => {
    it('holds exactly the listed files, each named by its hash where the document says so', () => {
      expect(listFiles(dir)).toEqual(v.files.map((f) => f.file).sort());
      for (const f of v.files) {
        const b = fs.readFileSync(path.join(dir, f.file));
        expect(b.length, f.file).toBe(f.size);
        expect(sha(b), f.file).toBe(f.sha256);
        if (f.file !== 'config') expect(f.file).toBe(`${f.file.split('/')[0]}/${f.file.startsWith('data/') ? `${f.sha256.slice(0, 2)}/` : ''}${f.sha256}`);
      }
    });

    it('config: the documented fields, order and layout', () => {
      const c = v.config;
      const ordered = {
        format: c.format, version: c.version, id: c.id, created: c.created, hash: c.hash,
        chunker: { algorithm: c.chunker.algorithm, minSize: c.chunker.minSize, avgSize: c.chunker.avgSize, maxSize: c.chunker.maxSize, gearSeed: c.chunker.gearSeed },
        compression: c.compression, packSize: c.packSize,
      };
      const bytesOnDisk = fs.readFileSync(path.join(dir, 'config'));
      expect(bytesOnDisk.toString('utf8')).toBe(`${JSON.stringify(ordered, null, 2)}\n`);
      expect(c.version).toBe(1);
      expect(decodeConfig(bytesOnDisk, dir).chunker.gearSeed).toBe(c.chunker.gearSeed);
    });

    it('packs: trailer, header and objects as documented; trees rebuilt from their fields', () => {
      const trees = new Map(v.trees.map((t) => [t.id, t]));
      const seen = new Set<string>();
      for (const p of v.packs) {
        const b = fs.readFileSync(path.join(dir, p.file));
        expect(b.subarray(b.length - 8).toString('latin1')).toBe('SNAPPK01');
        const hlen = b.readUInt32LE(b.length - 12);
        expect(hlen).toBe(p.header_length);
        const dataEnd = b.length - 12 - hlen;
        expect(b.subarray(dataEnd, dataEnd + hlen).equals(enc(packHeaderC({ v: 1, entries: p.entries })))).toBe(true);
        let expectOffset = 0;
        for (const [type, id, offset, length, rawLength, codec] of p.entries) {
          expect(type).toBe(p.type === 'tree' ? 1 : 0);
          expect(offset).toBe(expectOffset); // back to back from 0 in entry order
          expectOffset += length;
          const stored = b.subarray(offset, offset + length);
          const raw = codec === 0 ? stored : codec === 1 ? zlib.inflateRawSync(stored) : zstd.decompress(stored);
          expect(raw.length).toBe(rawLength);
          expect(sha(raw)).toBe(id);
          if (type === 1) {
            const t = trees.get(id)!;
            expect(enc(treeC(t)).equals(raw), `tree ${id}`).toBe(true);
            for (let i = 1; i < t.entries.length; i++) expect(Buffer.compare(hexBuf(t.entries[i - 1]!.name), hexBuf(t.entries[i]!.name))).toBe(-1);
          }
          seen.add(id);
        }
        expect(expectOffset).toBe(dataEnd);
        expect(dataEnd < v.config.packSize + Math.max(...p.entries.map((e) => e[3]))).toBe(true);
      }
      for (const t of v.trees) expect(seen.has(t.id)).toBe(true);
      // Every codec is there to read: raw and this repository's own.
      const codecs = new Set(v.packs.flatMap((p) => p.entries.map((e) => e[5])));
      expect(codecs.has(0)).toBe(true);
      expect(codecs.has(v.config.compression.codec === 'zstd' ? 2 : 1)).toBe(true);
    });

    it('snapshot records rebuilt from their fields; trees and chunks match the sources', () => {
      const blobs = new Map<string, number>();
      for (const p of v.packs) for (const e of p.entries) if (e[0] === 0) blobs.set(e[1], e[4]);
      expect(v.snapshots.length).toBe(v.sources.length);
      for (const [i, s] of v.snapshots.entries()) {
        const b = fs.readFileSync(path.join(dir, s.file));
        expect(enc(snapshotC(s.record)).equals(b), s.id).toBe(true);
        expect(sha(b)).toBe(s.id);
        expect(s.record.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        if (i > 0) expect(s.record.parent).toBe(v.snapshots[i - 1]!.id);
        const src = v.sources[i]!;
        expect(src.snapshot).toBe(s.id);
        expect(s.record.paths).toEqual([src.root]);
        let totalFiles = 0;
        let totalBytes = 0;
        for (const e of src.entries) {
          const full = `${src.root}/${Buffer.from(e.path, 'hex').toString('latin1')}`;
          if (e.excluded) {
            expect(() => lookup(v, s.record.tree, full)).toThrow();
            continue;
          }
          const n = lookup(v, s.record.tree, full);
          expect(n.type, full).toBe(e.type);
          const owner = e.link_of ? src.entries.find((x) => x.path === e.link_of)! : e;
          expect(n.mode, full).toBe(owner.mode);
          expect([n.uid, n.gid], full).toEqual([owner.uid, owner.gid]);
          const ns = BigInt(owner.mtime_ns);
          const sec = ns >= 0n ? ns / 1_000_000_000n : -((-ns + 999_999_999n) / 1_000_000_000n);
          expect(n.mtime, full).toEqual([Number(sec), Number(ns - sec * 1_000_000_000n)]);
          if (e.type === 'file') {
            totalFiles++;
            const data = contentBytes(owner.content!);
            totalBytes += data.length;
            const chunks = docChunks(v.config.chunker.gearSeed, v.config.chunker, data);
            expect(chunks, full).toEqual(owner.chunks);
            expect(n.chunks, full).toEqual(chunks.map((c) => c.id));
            expect(n.size).toBe(chunks.reduce((sum, c) => sum + blobs.get(c.id)!, 0));
            if (e.link_of || src.entries.some((x) => x.link_of === e.path)) expect(n.inode?.[2]).toBe(2);
            else expect(n.inode).toBeUndefined();
          }
          if (e.target) expect(n.target).toBe(e.target);
          if (e.dev) {
            const [major, minor] = e.dev;
            expect(n.rdev).toBe(Number(((BigInt(major) & 0xfffn) << 8n) | ((BigInt(major) & ~0xfffn) << 32n) | (BigInt(minor) & 0xffn) | ((BigInt(minor) & ~0xffn) << 12n)));
          }
        }
        expect([s.record.summary.totalFiles, s.record.summary.totalBytes]).toEqual([totalFiles, totalBytes]);
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The current code reads the vector repositories: check is clean, restores are exact.

/** Every path under `dir` (relative, raw bytes as hex), directories included. */
function walkHex(dir: Buffer, rel: Buffer = Buffer.alloc(0)): string[] {
  return fs.readdirSync(dir, { encoding: 'buffer' }).flatMap((name) => {
    const r = rel.length ? Buffer.concat([rel, Buffer.from('/'), name]) : name;
    const full = Buffer.concat([dir, Buffer.from('/'), name]);
    return [r.toString('hex'), ...(fs.lstatSync(full).isDirectory() ? walkHex(full, r) : [])];
  });
}

function expectTime(st: fs.BigIntStats, ns: string, what: string): void {
  // restore sets times through libuv's double-based utimes: to the microsecond (helpers/times.ts).
  expectRestoredTime(st.mtimeNs, BigInt(ns), what);
}

function copyRepo(name: string): string {
  const to = path.join(tmpDir('snap-vectors-'), name);
  fs.cpSync(path.join(VECTORS, name), to, { recursive: true });
  return to;
}

for (const [name, v] of Object.entries(repositories)) {
  describe(`format 1 vector repository ${name}, read by this snap`, () => {
    it('check --read-data finds it clean; every snapshot restores exactly; the index holds the documented values', async () => {
      const repo = copyRepo(name);
      const check = snap(['--repo', repo, '--json', 'check', '--read-data']);
      expect(check.code, check.stderr).toBe(0);
      const report = JSON.parse(check.stdout) as { ok: boolean; problems: unknown[]; leftovers: unknown[]; snapshots: number; packs: number };
      expect(report).toMatchObject({ ok: true, problems: [], leftovers: [], snapshots: v.snapshots.length, packs: v.packs.length });

      for (const src of v.sources) {
        const target = tmpDir('snap-vectors-restore-');
        const r = snap(['--repo', repo, 'restore', src.snapshot, target]);
        const devices = src.entries.filter((e) => e.dev);
        // mknod needs root: elsewhere the devices (only) are warnings.
        expect(r.code, r.stderr).toBe(isRoot || devices.length === 0 ? 0 : 3);
        const root = Buffer.from(path.join(target, src.root));
        expect(fs.statSync(path.join(target, src.parent)).mode & 0o7777).toBe(src.parent_mode);
        expectTime(fs.statSync(path.join(target, src.parent), { bigint: true }), src.parent_mtime_ns, src.parent);
        expect(fs.statSync(root).mode & 0o7777).toBe(src.root_mode);
        expectTime(fs.statSync(root, { bigint: true }), src.root_mtime_ns, src.root);
        const present = src.entries.filter((e) => !e.excluded && e.type !== 'socket' && (isRoot || !e.dev));
        expect(walkHex(root).sort()).toEqual(present.map((e) => e.path).sort());
        for (const e of present) {
          const p = Buffer.concat([root, Buffer.from('/'), Buffer.from(e.path, 'hex')]);
          const st = fs.lstatSync(p, { bigint: true });
          const what = e.path_text;
          const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'chardev' : st.isBlockDevice() ? 'blockdev' : 'other';
          expect(type, what).toBe(e.type);
          if (e.type !== 'symlink') expect(Number(st.mode & 0o7777n), what).toBe(e.mode);
          if (isRoot) expect([Number(st.uid), Number(st.gid)], what).toEqual([e.uid, e.gid]);
          // Times before 1970: see the test 'restores an mtime before 1970' below.
          if (!e.mtime_ns.startsWith('-')) expectTime(st, e.mtime_ns, what);
          if (e.type === 'file') {
            const owner = e.link_of ? src.entries.find((x) => x.path === e.link_of)! : e;
            expect(sha(fs.readFileSync(p)), what).toBe(sha(contentBytes(owner.content!)));
            if (e.link_of) expect(st.ino, what).toBe(fs.lstatSync(Buffer.concat([root, Buffer.from('/'), Buffer.from(e.link_of, 'hex')]), { bigint: true }).ino);
          }
          if (e.target) expect(fs.readlinkSync(p, { encoding: 'buffer' }).toString('hex'), what).toBe(e.target);
          if (e.dev) {
            const [major, minor] = e.dev;
            expect(Number(st.rdev), what).toBe(Number(((BigInt(major) & 0xfffn) << 8n) | ((BigInt(major) & ~0xfffn) << 32n) | (BigInt(minor) & 0xffn) | ((BigInt(minor) & ~0xffn) << 12n)));
          }
        }
      }

      // The index (rebuilt by the first command: the vectors hold none) in the documented encoding.
      const db = new Level<Buffer, Buffer>(path.join(repo, 'index'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
      try {
        for (const p of v.packs) {
          const pv = await db.get(Buffer.concat([Buffer.from('p'), hexBuf(p.id)]));
          expect(pv?.toString('hex')).toBe(enc(indexPackC(p.size, p.entries.length)).toString('hex'));
          for (const e of p.entries) {
            const ov = await db.get(Buffer.concat([Buffer.from('o'), hexBuf(e[1])]));
            expect(ov?.toString('hex')).toBe(enc(indexObjectC(p.id, e)).toString('hex'));
          }
        }
        for (const s of v.snapshots) {
          const sv = await db.get(Buffer.concat([Buffer.from(`s${s.record.time}${s.id}`, 'latin1')]));
          expect(sv?.equals(fs.readFileSync(path.join(repo, s.file)))).toBe(true);
          expect((await db.get(Buffer.from(`S${s.id}`, 'latin1')))?.toString('latin1')).toBe(s.record.time);
        }
      } finally {
        await db.close();
      }
    });

    it('ls --json gives each mtime as exact nanoseconds, negative before 1970', () => {
      const repo = copyRepo(name);
      const last = v.sources[v.sources.length - 1]!;
      const r = snap(['--repo', repo, '--json', 'ls', last.snapshot, last.root]);
      expect(r.code, r.stderr).toBe(0);
      // One JSON document, {snapshot, entries} (docs/browsing.md).
      const got = new Map((JSON.parse(r.stdout) as { entries: { path_hex: string; mtime_ns: string }[] }).entries.map((j) => [j.path_hex, j.mtime_ns]));
      const rootHex = Buffer.from(`${last.root}/`).toString('hex');
      const want = last.entries.filter((e) => !e.excluded && !e.path_text.includes('/') && !e.link_of);
      for (const e of want) expect(got.get(rootHex + e.path), e.path_text).toBe(e.mtime_ns);
      expect(want.map((e) => e.mtime_ns)).toEqual(expect.arrayContaining(['-750000000', '0', '4294967301500000000', '1700000000123456789']));
    });
  });
}

describe('format 1: one object in several packs', () => {
  it('a second copy of objects, in a pack written from the document alone, is read like the first', () => {
    const name = 'repo';
    const v = repositories[name]!;
    const repo = copyRepo(name);
    // Copy every tree into one new pack, in reverse order, built from the document (not PackBuilder).
    const treePacks = v.packs.filter((p) => p.type === 'tree');
    const objects: { id: string; raw: Buffer }[] = [];
    for (const p of treePacks) for (const e of p.entries) objects.push({ id: e[1], raw: enc(treeC(v.trees.find((t) => t.id === e[1])!)) });
    objects.reverse();
    const entries: PackEntryFields[] = [];
    let off = 0;
    for (const o of objects) {
      entries.push([1, o.id, off, o.raw.length, o.raw.length, 0]);
      off += o.raw.length;
    }
    const header = enc(packHeaderC({ v: 1, entries }));
    const trailer = Buffer.alloc(12);
    trailer.writeUInt32LE(header.length, 0);
    trailer.write('SNAPPK01', 4, 'latin1');
    const pack = Buffer.concat([...objects.map((o) => o.raw), header, trailer]);
    const id = sha(pack);
    fs.mkdirSync(path.join(repo, 'data', id.slice(0, 2)), { recursive: true });
    fs.writeFileSync(path.join(repo, 'data', id.slice(0, 2), id), pack);

    const check = snap(['--repo', repo, '--json', 'check', '--read-data']);
    expect(check.code, check.stderr).toBe(0);
    expect(JSON.parse(check.stdout)).toMatchObject({ ok: true, problems: [], packs: v.packs.length + 1 });
    for (const src of v.sources) {
      const target = tmpDir('snap-vectors-restore-');
      const r = snap(['--repo', repo, 'restore', src.snapshot, target]);
      expect(r.code, r.stderr).toBe(isRoot ? 0 : 3);
      const files = src.entries.filter((e) => e.type === 'file' && !e.excluded);
      for (const e of files) {
        const owner = e.link_of ? src.entries.find((x) => x.path === e.link_of)! : e;
        const p = Buffer.concat([Buffer.from(path.join(target, src.root)), Buffer.from('/'), Buffer.from(e.path, 'hex')]);
        expect(sha(fs.readFileSync(p)), e.path_text).toBe(sha(contentBytes(owner.content!)));
      }
    }
  });
});

describe('format 1: times before 1970', () => {
  const src = repositories.repo!.sources[0]!;
  const old = src.entries.find((e) => e.path_text === 'old')!;
  let restored: fs.BigIntStats | undefined;

  it('restores the file "old" of 1969-12-31T23:59:59.25Z, recorded as [-1, 250000000]', () => {
    expect(old.mtime_ns).toBe('-750000000');
    const repo = copyRepo('repo');
    const target = tmpDir('snap-vectors-restore-');
    const r = snap(['--repo', repo, 'restore', src.snapshot, target, '--include', `${src.root}/old`]);
    expect(r.code, r.stderr).toBe(0);
    restored = fs.statSync(path.join(target, src.root, 'old'), { bigint: true });
    expect(restored.size).toBe(BigInt(contentBytes(old.content!).length));
  });

  // Node's utimes/futimes replace a negative number of seconds by the current time; restore sets
  // such times exactly (issue 10, defect 2).
  it('gives it its mtime before 1970', () => {
    expect(restored).toBeDefined();
    expectTime(restored!, old.mtime_ns, 'old');
  });
});

// ---------------------------------------------------------------------------------------------
// Reader rules of docs/format.md that the vectors above do not reach.

describe('format 1 reader rules', () => {
  const records = readJson<{ records: RecordVector[] }>('records.json').records;
  const snapshotFields = (name: string): SnapshotFields => structuredClone(records.find((r) => r.name === name)!.fields as SnapshotFields);
  const corrupt = (f: () => unknown): void => expect(f).toThrow(expect.objectContaining({ code: 'SNAP_CORRUPT' }));

  it('ls --json mtime_ns is [seconds, nanoseconds] as exact decimal nanoseconds', () => {
    // The rule from "Trees": seconds rounded down, nanoseconds 0..999999999 added to them.
    const want = (sec: number, nsec: number): string => (BigInt(sec) * 1_000_000_000n + BigInt(nsec)).toString();
    const cases: [number, number, string][] = [
      [-1, 250_000_000, '-750000000'], [0, 0, '0'], [-1, 0, '-1000000000'], [-2, 999_999_999, '-1000000001'],
      [0, 1, '1'], [1, 0, '1000000000'], [-4_294_967_297, 999_999_999, '-4294967296000000001'], [4_294_967_296, 1, '4294967296000000001'],
    ];
    for (const [sec, nsec, text] of cases) {
      expect(want(sec, nsec)).toBe(text);
      expect(mtimeNs({ mtime: { sec, nsec } } as Node), `[${sec}, ${nsec}]`).toBe(text);
    }
    for (const r of records.filter((x) => x.kind === 'tree')) {
      for (const e of (r.fields as TreeFields).entries) expect(mtimeNs(toNode(e))).toBe(want(e.mtime[0], e.mtime[1]));
    }
    // export --verify names a differing time in decimal seconds, with the same rule.
    expect([[-1, 250_000_000], [0, 0], [-1, 0], [-2, 999_999_999], [1, 5]].map(([sec, nsec]) => fmtTime({ sec: sec!, nsec: nsec! })))
      .toEqual(['-0.750000000', '0.000000000', '-1.000000000', '-1.000000001', '1.000000005']);
  });

  it('snapshot time: exactly YYYY-MM-DDTHH:MM:SS.mmmZ, years 0000 to 9999, a real date; anything else is damage', () => {
    // Both ends of the range are in the vectors (snapshot-byte-paths, snapshot-edges).
    expect(records.map((r) => (r.fields as SnapshotFields).time).filter(Boolean)).toEqual(expect.arrayContaining(['0000-01-01T00:00:00.000Z', '9999-12-31T23:59:59.999Z']));
    const base = snapshotFields('snapshot-minimal');
    for (const time of ['+010000-01-01T00:00:00.000Z', '10000-01-01T00:00:00.000Z', '-000001-12-31T23:59:59.999Z', '2026-02-30T00:00:00.000Z', '2026-01-02T03:04:05Z', '2026-01-02T03:04:05.678+00:00', '2026-01-02 03:04:05.678Z', '2026-01-02T24:00:00.000Z']) {
      const b = enc(snapshotC({ ...base, time }));
      corrupt(() => decodeSnapshot(b, sha(b)));
      expect(() => encodeSnapshot(toSnapshot({ ...base, time })), time).toThrow(expect.objectContaining({ code: 'SNAP_USAGE' }));
    }
  });

  it('map keys are text strings: a byte-string key is refused, an integer key matches nothing, the last of two equal keys counts', () => {
    const tree = enc(treeC({ v: 1, entries: [] }));
    expect(decodeTree(tree, 't')).toEqual([]);
    // {h'76': 1, "entries": []}: the key "v" as a byte string.
    corrupt(() => decodeTree(Buffer.concat([Buffer.from('a24176016767', 'hex').subarray(0, 4), tree.subarray(6)]), 't'));
    // {1: 1, "entries": []}: no key "v".
    corrupt(() => decodeTree(Buffer.concat([Buffer.from('a20101', 'hex'), tree.subarray(6)]), 't'));
    // {"v": 2, "v": 1, "entries": []}
    expect(decodeTree(Buffer.concat([Buffer.from('b900036176026176', 'hex'), tree.subarray(5)]), 't')).toEqual([]);
  });

  it('a file\'s size is the sum of its chunks\' rawLength: a file recorded otherwise is damaged and not restored', async () => {
    const repo = path.join(tmpDir('snap-vectors-size-'), 'repo');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const id = await craftSnapshot(repo, async (c) => {
      const abc = await c.blob('abc');
      const de = await c.blob('de');
      return c.tree([
        craftNode('right', 'file', { size: 5, chunks: [abc, de] }),
        craftNode('one-chunk-too-long', 'file', { size: 10, chunks: [abc] }),
        craftNode('two-chunks-too-short', 'file', { size: 4, chunks: [abc, de] }),
        craftNode('empty-with-size', 'file', { size: 1, chunks: [] }),
      ]);
    });
    const target = tmpDir('snap-vectors-restore-');
    const r = snap(['--repo', repo, 'restore', id, target]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/one-chunk-too-long.*chunks hold 3 bytes but the file has 10; not restored$/m);
    expect(r.stderr).toMatch(/two-chunks-too-short.*chunks hold 5 bytes but the file has 4; not restored$/m);
    expect(r.stderr).toMatch(/empty-with-size.*chunks hold 0 bytes but the file has 1; not restored$/m);
    expect(fs.readdirSync(target)).toEqual(['right']);
    expect(fs.readFileSync(path.join(target, 'right'), 'utf8')).toBe('abcde');
  });

  it('hard links: members of one [device, inode] group are linked exactly when recorded alike', async () => {
    const repo = path.join(tmpDir('snap-vectors-links-'), 'repo');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const inode = { dev: 7, ino: 99, links: 5 };
    const id = await craftSnapshot(repo, async (c) => {
      const x = await c.blob('same');
      const y = await c.blob('other');
      const file = (name: string, extra: Partial<Node>): Node => craftNode(name, 'file', { size: 4, chunks: [x], inode, ...extra });
      return c.tree([
        file('a', {}),
        file('b', { user: 'someone', group: 'else', inode: { ...inode, links: 2 } }), // names and link count play no part
        file('c', { mode: 0o600 }),
        file('d', { mtime: { sec: 1_600_000_000, nsec: 1 } }),
        file('e', { size: 5, chunks: [y] }),
      ]);
    });
    const target = tmpDir('snap-vectors-restore-');
    const r = snap(['--repo', repo, 'restore', id, target]);
    expect(r.code, r.stderr).toBe(0);
    const ino = (n: string): bigint => fs.statSync(path.join(target, n), { bigint: true }).ino;
    expect(ino('b')).toBe(ino('a'));
    for (const n of ['c', 'd', 'e']) expect(ino(n), n).not.toBe(ino('a'));
    expect(fs.readFileSync(path.join(target, 'e'), 'utf8')).toBe('other');
    expect(fs.statSync(path.join(target, 'c')).mode & 0o777).toBe(0o600);
  });

  it('a snapshot record with paths as byte strings reads as the same paths; a UTF-8 path is a text string', () => {
    const f = snapshotFields('snapshot-byte-paths');
    const b = enc(snapshotC(f));
    const s = decodeSnapshot(b, sha(b));
    expect(s.paths.map(fsEncode).map((x) => x.toString('hex'))).toEqual(f.paths.map((p) => (typeof p === 'string' ? Buffer.from(p).toString('hex') : p.bytes)));
    expect(s.paths[0]).toBe('/data/café');
    const raw = decodeCbor(b, 'r') as { paths: unknown[]; excludes: unknown[] };
    expect(raw.paths.map((x) => typeof x)).toEqual(['string', 'object', 'object']);
    expect(raw.excludes.map((x) => typeof x)).toEqual(['string', 'object']);
  });
});

// Format 2 (encrypted) as snap wrote it before configs were authenticated (test/vectors/v2/): a
// contract like the format 1 folders. The tampering cases are in test/config-auth.test.ts.
describe('format 2 vector repository repo-unauthenticated (written by main 72875b3), read by this snap', () => {
  const V2 = path.join(import.meta.dirname, 'vectors', 'v2');
  const v2 = (JSON.parse(fs.readFileSync(path.join(V2, 'repos.json'), 'utf8')) as {
    repositories: Record<string, { password: string; source_root: string; snapshots: string[]; config_sha256: string; files: Record<string, { size: number; sha256: string; content: Content }> }>;
  }).repositories['repo-unauthenticated']!;

  it('its config is the committed bytes; check --read-data finds it clean; its snapshot restores exactly; nothing in it is rewritten', () => {
    const repo = path.join(tmpDir('snap-vectors-v2-'), 'repo');
    fs.cpSync(path.join(V2, 'repo-unauthenticated'), repo, { recursive: true });
    expect(sha(fs.readFileSync(path.join(repo, 'config')))).toBe(v2.config_sha256);
    const files = (d: string): string[] => fs.readdirSync(d, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => `${path.join(e.parentPath, e.name)}:${sha(fs.readFileSync(path.join(e.parentPath, e.name)))}`).sort();
    const before = files(repo);
    const env = { XDG_CACHE_HOME: path.join(path.dirname(repo), 'cache'), SNAP_PASSWORD: v2.password };
    const check = snap(['--repo', repo, '--json', 'check', '--read-data'], { env });
    expect(check.code, check.stderr).toBe(0);
    expect(JSON.parse(check.stdout)).toMatchObject({ ok: true, problems: [], snapshots: v2.snapshots.length, config_authenticated: false });
    const target = tmpDir('snap-vectors-v2-restore-');
    const r = snap(['--repo', repo, 'restore', v2.snapshots[0]!.slice(0, 8), target], { env });
    expect(r.code, r.stderr).toBe(0);
    for (const [rel, f] of Object.entries(v2.files)) {
      const bytes = fs.readFileSync(path.join(target, v2.source_root, rel));
      expect(bytes.length, rel).toBe(f.size);
      expect(sha(bytes), rel).toBe(f.sha256);
      expect(sha(contentBytes(f.content)), rel).toBe(f.sha256);
    }
    expect(files(repo)).toEqual(before);
  });
});
