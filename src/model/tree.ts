// A tree object: the entries of one directory, sorted by raw name bytes. Identical directories
// encode to identical bytes and so to identical ids.
//
// Readers never hold a large tree's entries as objects all at once (issue 20): `openTree` checks
// the whole encoding once (its structure, every entry, the order of the names) and keeps the bytes
// and where each entry starts (4 bytes per entry). An entry is decoded when it is asked for (`at`,
// iteration) and dropped by the caller; a name is found by binary search over the raw names,
// decoding nothing else. A small tree (at most DECODED_MAX entries, the most directories) keeps
// the entries its check decoded: decoding is most of the cost of reading a tree, and a walk that
// decoded each entry again (restore reads each tree twice) was measurably slower.
import { SnapError } from '../core/errors.js';
import { displayName } from '../core/bytes.js';
import { asArray, asRecord, asUint, cborHead, cborHeadInto, cborSkip, decodeCborItem, decodeCborItems, encodeCbor, encodeCborView, structureProblem, topLevelArrayLength } from './cbor.js';
import { NODE_TYPES, type Node, type NodeType, isSafeName, nodeFromRecord, nodeToRecord } from './node.js';

export const TREE_VERSION = 1;

/**
 * The most entries a tree (one directory) may have; readers refuse more, and create refuses to
 * store a directory with more (issue 20). Readers hold a tree as its bytes (at most
 * MAX_TREE_BYTES) plus 4 bytes per entry and decode one entry at a time, so a tree at this cap
 * costs its bytes (about 80 MB for a million short names) plus 4 MB, not the ~670 MB its million
 * entries took as objects (measured: docs/performance.md, "Trees in memory"). The cap stays as
 * the format documents it (docs/format.md, "Limits"): writers never produced more, and a
 * directory of a million entries is past what the tools that list it (ls, a file manager) handle.
 */
export const MAX_TREE_ENTRIES = 1_000_000;

export function sortNodes(nodes: Node[]): Node[] {
  return nodes.sort((a, b) => Buffer.compare(a.name, b.name));
}

/** The largest tree object snap reads or writes: about a million entries of 80-150 bytes. */
export const MAX_TREE_BYTES = 128 * 1024 * 1024;

export function encodeTree(nodes: Node[]): Buffer {
  // Never write what a reader refuses (see MAX_TREE_ENTRIES).
  if (nodes.length > MAX_TREE_ENTRIES) {
    throw new SnapError('SNAP_TOO_LARGE', `a directory has ${nodes.length} entries; snap stores at most ${MAX_TREE_ENTRIES} in one directory (exclude part of it)`);
  }
  const bytes = encodeCbor({ v: TREE_VERSION, entries: nodes.map(nodeToRecord) });
  if (bytes.length > MAX_TREE_BYTES) {
    throw new SnapError('SNAP_TOO_LARGE', `a directory's listing takes ${bytes.length} bytes; snap stores at most ${MAX_TREE_BYTES} for one directory (exclude part of it)`);
  }
  return bytes;
}

/**
 * A tree encoded one entry at a time, byte for byte what encodeTree gives for the same entries, for
 * a writer that makes a large tree from a view of another (copy's rewrite: issue 20) and so never
 * holds the entries as objects: it holds the encoding (at most MAX_TREE_BYTES) and one entry.
 * The number of entries is given first (the array's head comes before them); entries are given
 * sorted by name (as encodeTree's callers sort them) and checked to be.
 */
export class TreeWriter {
  private buf: Buffer;
  private pos = 0;
  private added = 0;
  private last: Buffer | undefined;

  /** `sizeHint`: the bytes expected (the tree being rewritten's), so the buffer rarely grows. */
  constructor(private readonly count: number, sizeHint = 0) {
    if (count > MAX_TREE_ENTRIES) {
      throw new SnapError('SNAP_TOO_LARGE', `a directory has ${count} entries; snap stores at most ${MAX_TREE_ENTRIES} in one directory (exclude part of it)`);
    }
    const head = treeHead(count);
    this.buf = Buffer.allocUnsafe(Math.min(MAX_TREE_BYTES, Math.max(sizeHint + 4096, 4096)));
    this.pos = head.copy(this.buf, 0);
  }

  add(node: Node): void {
    if (this.added >= this.count) throw new RangeError(`more than the ${this.count} entries announced`);
    if (this.last && Buffer.compare(this.last, node.name) >= 0) throw new RangeError('tree entries out of order or duplicated');
    const e = encodeCborView(nodeToRecord(node));
    if (this.pos + e.length > this.buf.length) this.grow(this.pos + e.length);
    this.buf.set(e, this.pos);
    this.pos += e.length;
    this.added++;
    this.last = node.name;
  }

  /** The tree's bytes (a view of this writer's buffer); every announced entry must have been added. */
  finish(): Buffer {
    if (this.added !== this.count) throw new RangeError(`${this.added} entries of the ${this.count} announced`);
    return this.buf.subarray(0, this.pos);
  }

  private grow(need: number): void {
    if (need > MAX_TREE_BYTES) {
      throw new SnapError('SNAP_TOO_LARGE', `a directory's listing takes more than the ${MAX_TREE_BYTES} bytes snap stores for one directory (exclude part of it)`);
    }
    const next = Buffer.allocUnsafe(Math.min(MAX_TREE_BYTES, Math.max(need, this.buf.length * 2)));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
}

/** `{v: TREE_VERSION, entries: [` with the array's head for `count` entries: the CBOR before the first entry. */
function treeHead(count: number): Buffer {
  const empty = encodeCbor({ v: TREE_VERSION, entries: [] }); // ends with 0x80, the head of an empty array
  const n = count;
  const arr = n < 24 ? [0x80 | n] : n < 256 ? [0x98, n] : n < 65536 ? [0x99, n >> 8, n & 255] : [0x9a, n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  return Buffer.concat([empty.subarray(0, -1), Buffer.from(arr)]);
}

const NAME_KEY = Buffer.from('name');

/**
 * Trees of at most this many entries keep their decoded entries (about 670 bytes each: at most
 * 2.7 MB a tree, as every tree cost before); larger ones decode an entry each time it is asked for.
 */
export const DECODED_MAX = 4096;
/** What a decoded entry costs, for caches (measured: 669 MB for 1,000,000 minimal entries). */
const DECODED_ENTRY_BYTES = 700;
/** Entries of a large tree decoded together when a walk reaches them (one decoder call). */
const BATCH = 256;

/**
 * What counting a walk's expansion needs of a directory's entries (ops/tree/walk.ts expandTree):
 * a Tree, or a TreeSketch (sketchTree) that never builds the entries.
 */
export interface CountableTree {
  readonly length: number;
  typeAt(i: number): NodeType;
  /** A directory's subtree id; undefined for any other entry. */
  subtreeAt(i: number): Buffer | undefined;
  /** A file's recorded link count (its `inode`), 1 when none is recorded and for other entries. */
  linksAt(i: number): number;
  nameAt(i: number): Buffer;
  /** A file's chunk ids (none for other entries). */
  chunksAt(i: number): Buffer[];
}

/**
 * A tree read from a repository: a read-only view over its checked bytes. `at(i)` decodes entry
 * `i` afresh on each call (callers keep what they need), iteration decodes one entry per step.
 */
export class Tree implements Iterable<Node>, CountableTree {
  private static empty: Tree | undefined;

  /** The tree of no entries (what a walk uses for a directory it cannot read). */
  static get EMPTY(): Tree {
    return (Tree.empty ??= openTree(encodeTree([]), 'the empty tree'));
  }

  /** The entries of a large tree decoded last (BATCH of them, from batchStart). */
  private batch: Node[] = [];
  private batchStart = 0;

  /** @internal use openTree */
  constructor(
    private readonly bytes: Buffer,
    /** Where each entry starts in `bytes` (the last element: where the entries end); only for a large tree. */
    private readonly starts: Uint32Array | undefined,
    private readonly what: string,
    /** Whether any entry is a directory. */
    readonly hasDirs: boolean,
    /** The entries decoded, for a small tree (DECODED_MAX). */
    private readonly decoded: readonly Node[] | undefined,
  ) {}

  get length(): number {
    return this.decoded ? this.decoded.length : this.starts!.length - 1;
  }

  /** The length of the tree's encoding in bytes. */
  get encodedLength(): number {
    return this.bytes.length;
  }

  /** Memory this view holds (its bytes, offsets and decoded entries), for caches. */
  get heldBytes(): number {
    return this.bytes.length + (this.starts ? this.starts.byteLength + BATCH * DECODED_ENTRY_BYTES : 0) + (this.decoded ? this.decoded.length * DECODED_ENTRY_BYTES : 0);
  }

  /**
   * Entry `i` (0 <= i < length): kept from the check for a small tree; for a large one decoded now
   * with the BATCH entries from `i` on (a walk asks for them next). Shared: do not change it.
   */
  at(i: number): Node {
    if (!(i >= 0 && i < this.length)) throw new RangeError(`entry ${i} of a tree of ${this.length}`);
    if (this.decoded) return this.decoded[i]!;
    if (i < this.batchStart || i >= this.batchStart + this.batch.length) {
      const end = Math.min(i + BATCH, this.length);
      this.batch = decodeRange(this.bytes, this.starts!, i, end, this.what);
      this.batchStart = i;
    }
    return this.batch[i - this.batchStart]!;
  }

  typeAt(i: number): NodeType {
    return this.at(i).type;
  }

  subtreeAt(i: number): Buffer | undefined {
    const n = this.at(i);
    return n.type === 'dir' ? n.tree : undefined;
  }

  linksAt(i: number): number {
    const n = this.at(i);
    return n.type === 'file' && n.inode ? n.inode.links : 1;
  }

  chunksAt(i: number): Buffer[] {
    const n = this.at(i);
    return n.type === 'file' ? (n.chunks ?? []) : [];
  }

  /** The name of entry `i`, without decoding the entry (a view of the tree's bytes). */
  nameAt(i: number): Buffer {
    if (!(i >= 0 && i < this.length)) throw new RangeError(`entry ${i} of a tree of ${this.length}`);
    return this.decoded ? this.decoded[i]!.name : rawName(this.bytes, this.starts![i]!)!;
  }

  /** Where the entry named `name` is, or -1: a binary search decoding names only. */
  indexOf(name: Uint8Array): number {
    let lo = 0;
    let hi = this.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const c = Buffer.compare(this.nameAt(mid), name);
      if (c === 0) return mid;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** The entry named `name`, or undefined. */
  find(name: Uint8Array): Node | undefined {
    const at = this.indexOf(name);
    return at < 0 ? undefined : this.at(at);
  }

  *[Symbol.iterator](): Iterator<Node> {
    for (let i = 0; i < this.length; i++) yield this.at(i);
  }

  /**
   * Every entry decoded at once (about 670 bytes each). Only for callers that must hold them all,
   * such as one that re-encodes the tree with changes; bounded by MAX_TREE_ENTRIES.
   */
  toArray(): Node[] {
    const out = new Array<Node>(this.length);
    for (let i = 0; i < out.length; i++) out[i] = this.at(i);
    return out;
  }

  /** A tree of the given entries (sorted here), as a reader would see it once stored. */
  static of(nodes: Node[]): Tree {
    return openTree(encodeTree(sortNodes(nodes.slice())), 'tree');
  }
}

/** Entries `from` to `to` (exclusive) of a large tree, decoded with one decoder call. */
function decodeRange(bytes: Buffer, starts: Uint32Array, from: number, to: number, what: string): Node[] {
  const out: Node[] = [];
  decodeCborItems(bytes.subarray(starts[from]!, starts[to]!), `${what}.entries[${from}]`, (rec) => {
    out.push(nodeFromRecord(rec, `${what}.entries[${from + out.length}]`));
  });
  return out;
}

/**
 * The value of the last text key "name" of the map at `pos` when it is a byte string (as decoding
 * gives it: the last of equal keys counts), else undefined. Reads heads only.
 */
function rawName(b: Buffer, pos: number): Buffer | undefined {
  const m = cborHead(b, pos);
  if (!m || m.major !== 5) return undefined;
  let p: number | undefined = m.next;
  let found: Buffer | undefined;
  for (let k = 0; k < m.arg && p !== undefined; k++) {
    let isName: boolean;
    // The key as snap writes it (a text string of 4 bytes, head 0x64) read in place; any other
    // encoding of it through cborHead.
    if (b[p] === 0x64) isName = b[p + 1] === 0x6e && b[p + 2] === 0x61 && b[p + 3] === 0x6d && b[p + 4] === 0x65;
    else {
      const key = cborHead(b, p);
      if (!key) return undefined;
      isName = key.major === 3 && key.arg === NAME_KEY.length && b.subarray(key.next, key.next + key.arg).equals(NAME_KEY);
    }
    p = cborSkip(b, p);
    if (p === undefined) return undefined;
    if (isName) {
      const v = cborHead(b, p);
      found = v?.major === 2 ? b.subarray(v.next, v.next + v.arg) : undefined;
    }
    p = cborSkip(b, p);
  }
  return found;
}

/**
 * The encoding of `tree` with some entries changed (for a rewrite or a repair): index -> a new
 * subtree id for that directory, or null to leave the entry out. Entries keep their order. Written
 * entry by entry (TreeWriter), never the whole list as objects: a tree may hold a million entries.
 */
export function encodeWithSubtrees(tree: Tree, changes: Map<number, Buffer | null>): Buffer {
  let removed = 0;
  for (const c of changes.values()) if (c === null) removed++;
  const w = new TreeWriter(tree.length - removed, tree.encodedLength);
  for (let i = 0; i < tree.length; i++) {
    const change = changes.get(i);
    if (change === null) continue;
    const n = tree.at(i);
    w.add(change ? { ...n, tree: change } : n);
  }
  return w.finish();
}

/** What the check of a large tree found, for opening the same bytes again without checking its entries again. */
export interface CheckedTree {
  hasDirs: boolean;
}

/**
 * Check a tree's bytes and open a view over them: everything decodeTree refused before is refused
 * here, with the same messages, before the view exists (every entry is decoded once to be checked,
 * then dropped). Memory: the bytes plus 4 bytes per entry.
 *
 * `checked`: these very bytes passed the check before (a reader that verified them against the
 * id of a tree it opened already: Repository.readTree), so a large tree's entries are not decoded
 * again to be checked; only where each starts is found. Checking is most of what opening a large
 * tree costs, and walks read some trees twice (check --read-data, the expansion count of ls -R).
 */
/**
 * A tree's encoding checked up to its entries (size, count, CBOR structure, version): its bytes (a
 * copy when they were a small part of a larger buffer), the number of entries, where the first is.
 */
function treeEntries(input: Uint8Array, what: string): { bytes: Buffer; n: number; at: number } {
  let bytes = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  // Counted before anything else: a crafted tree of millions of entries is refused at once.
  const count = topLevelArrayLength(bytes, 'entries');
  if (count !== undefined && count > MAX_TREE_ENTRIES) {
    throw new SnapError('SNAP_CORRUPT', `${what} claims ${count} entries, more than the ${MAX_TREE_ENTRIES} snap reads in one directory: the repository is damaged or crafted`);
  }
  if (bytes.length > MAX_TREE_BYTES) throw new SnapError('SNAP_CORRUPT', `${what} takes ${bytes.length} bytes, more than the ${MAX_TREE_BYTES} of any tree`);
  bytes = ownBytes(bytes); // before decoding: entries are views of these bytes
  const bad = structureProblem(bytes);
  if (bad) throw new SnapError('SNAP_CORRUPT', `${what} is not valid CBOR (${bad})`);
  // The top-level map as decoding reads it: text keys, the last of equal keys counts, others ignored.
  const top = cborHead(bytes, 0);
  if (!top || top.major !== 5) throw new SnapError('SNAP_CORRUPT', `${what}: expected a map`);
  let vAt: number | undefined;
  let entriesAt: number | undefined;
  let p = top.next;
  for (let k = 0; k < top.arg; k++) {
    const key = cborHead(bytes, p)!;
    const name = key.major === 3 ? bytes.toString('latin1', key.next, key.next + key.arg) : undefined;
    p = cborSkip(bytes, p)!;
    if (name === 'v') vAt = p;
    else if (name === 'entries') entriesAt = p;
    p = cborSkip(bytes, p)!;
  }
  // As decoding reads it: an unsigned integer, or a float of an integral value (CBOR allows both).
  const vHead = vAt === undefined ? undefined : cborHead(bytes, vAt)!;
  const vValue = vHead?.major === 0 ? vHead.arg : vHead?.major === 7 ? decodeCborItem(bytes.subarray(vAt!, cborSkip(bytes, vAt!)), `${what}.v`) : undefined;
  const v = asUint(vValue, `${what}.v`);
  if (v !== TREE_VERSION) throw new SnapError('SNAP_CORRUPT', `${what}: unsupported tree version ${v}`);
  const arr = entriesAt === undefined ? undefined : cborHead(bytes, entriesAt)!;
  if (!arr || arr.major !== 4) throw new SnapError('SNAP_CORRUPT', `${what}.entries: expected an array`);
  const n = arr.arg;
  if (n > MAX_TREE_ENTRIES) {
    throw new SnapError('SNAP_CORRUPT', `${what} claims ${n} entries, more than the ${MAX_TREE_ENTRIES} snap reads in one directory: the repository is damaged or crafted`);
  }
  return { bytes, n, at: arr.next };
}

export function openTree(input: Uint8Array, what: string, checked?: CheckedTree): Tree {
  const { bytes, n, at } = treeEntries(input, what);
  let hasDirs = false;
  let prev: Buffer | undefined;
  const check = (node: Node): void => {
    if (node.type === 'dir') hasDirs = true;
    if (prev && Buffer.compare(prev, node.name) >= 0) {
      throw new SnapError('SNAP_CORRUPT', `${what}: entries not sorted or duplicated at ${JSON.stringify(displayName(node.name))}`);
    }
    prev = node.name;
  };
  if (n <= DECODED_MAX) {
    // A small tree is decoded whole, as it always was, and kept decoded.
    const entries = asArray(asRecord(decodeCborItem(bytes, what), what).entries, `${what}.entries`);
    const keep = entries.map((e, i) => nodeFromRecord(e, `${what}.entries[${i}]`));
    keep.forEach(check);
    return new Tree(bytes, undefined, what, hasDirs, keep);
  }
  const starts = new Uint32Array(n + 1);
  let p = at;
  for (let i = 0; i < n; i++) {
    starts[i] = p;
    p = cborSkip(bytes, p)!;
  }
  starts[n] = p;
  if (checked) return new Tree(bytes, starts, what, checked.hasDirs, undefined);
  for (let from = 0; from < n; from += BATCH) {
    const to = Math.min(from + BATCH, n);
    const nodes = decodeRange(bytes, starts, from, to, what);
    for (let k = 0; k < nodes.length; k++) {
      const node = nodes[k]!;
      // Names are found later without decoding: the raw name must be the one decoding gives.
      const raw = rawName(bytes, starts[from + k]!);
      if (!raw || !raw.equals(node.name)) throw new SnapError('SNAP_CORRUPT', `${what}.entries[${from + k}]: its name is not where decoding finds it`);
      check(node);
    }
  }
  return new Tree(bytes, starts, what, hasDirs, undefined);
}

const TYPE_NAMES = NODE_TYPES.map((t) => Buffer.from(t));
const K_NAME = Buffer.from('name');
const K_TYPE = Buffer.from('type');
const K_TREE = Buffer.from('tree');
const K_INODE = Buffer.from('inode');
const K_CHUNKS = Buffer.from('chunks');
/** sketchTree's scratch for item heads (cborHeadInto): the argument and where the content starts. */
const HEAD = new Float64Array(2);
/** How a chunk id is written: a byte string of 32 bytes (0x58 0x20, then the id). */
const ID_HEAD = 2;
const ID_STRIDE = ID_HEAD + 32;

/** Whether the text of `len` bytes at `at` is `lit` (no string made; byte by byte: Buffer.compare's checks of its offsets cost more than a key's few bytes). */
function textIs(b: Buffer, at: number, len: number, lit: Buffer): boolean {
  if (len !== lit.length) return false;
  for (let i = 0; i < len; i++) if (b[at + i] !== lit[i]) return false;
  return true;
}

/**
 * A tree's entries as counting needs them (CountableTree), read in place: types, subtree ids, link
 * counts, names and chunk ids, about 30 bytes an entry, no entry decoded into an object (a restore
 * counts every tree before it writes anything, and decoding them all was most of that count). Only
 * for the shape writers give entries: a map of text keys, each of `name`, `type`, `tree`, `inode`
 * and `chunks` at most once, the name a safe byte string in order, the type a known one, a
 * directory's tree an id, an inode three unsigned integers, chunks an array of ids each written
 * as a 32-byte string with the short head writers use. Anything else is undefined: the caller
 * opens the tree as readers do (openTree), so a count never reads an entry otherwise than a walk
 * does. Problems of the encoding as a whole throw as openTree throws them.
 */
export function sketchTree(input: Uint8Array, what: string): TreeSketch | undefined {
  const { bytes, n, at } = treeEntries(input, what);
  const types = new Uint8Array(n);
  const subtrees = new Uint32Array(n);
  const links = new Float64Array(n);
  const names = new Uint32Array(2 * n);
  const chunks = new Uint32Array(2 * n);
  let p = at;
  let prevAt = -1;
  let prevLen = 0;
  const h = HEAD;
  for (let i = 0; i < n; i++) {
    if (cborHeadInto(bytes, p, h) !== 5) return undefined;
    const fields = h[0]!;
    let q = h[1]!;
    let seen = 0;
    let type = -1;
    let sub = 0;
    let lk = 1;
    let nameAt = 0;
    let nameLen = 0;
    let chunksAt = 0;
    let chunkCount = 0;
    for (let k = 0; k < fields; k++) {
      if (cborHeadInto(bytes, q, h) !== 3) return undefined;
      const keyLen = h[0]!;
      const keyAt = h[1]!;
      const vAt = keyAt + keyLen;
      const vMajor = cborHeadInto(bytes, vAt, h);
      if (vMajor < 0) return undefined;
      const vArg = h[0]!;
      const vNext = h[1]!;
      const next = cborSkip(bytes, vAt);
      if (next === undefined) return undefined;
      let bit = 0;
      if (textIs(bytes, keyAt, keyLen, K_NAME)) {
        if (vMajor !== 2) return undefined;
        nameAt = vNext;
        nameLen = vArg;
        bit = 1;
      } else if (textIs(bytes, keyAt, keyLen, K_TYPE)) {
        if (vMajor !== 3) return undefined;
        type = -1;
        for (let t = 0; t < TYPE_NAMES.length; t++) {
          if (textIs(bytes, vNext, vArg, TYPE_NAMES[t]!)) {
            type = t;
            break;
          }
        }
        if (type < 0) return undefined;
        bit = 2;
      } else if (textIs(bytes, keyAt, keyLen, K_TREE)) {
        if (vMajor !== 2 || vArg !== 32) return undefined;
        sub = vNext;
        bit = 4;
      } else if (textIs(bytes, keyAt, keyLen, K_INODE)) {
        if (vMajor !== 4 || vArg !== 3) return undefined;
        let e = vNext;
        for (let j = 0; j < 3; j++) {
          if (cborHeadInto(bytes, e, h) !== 0) return undefined;
          lk = h[0]!;
          e = h[1]!;
        }
        bit = 8;
      } else if (textIs(bytes, keyAt, keyLen, K_CHUNKS)) {
        if (vMajor !== 4) return undefined;
        // Ids one after the other, each 0x58 0x20 and 32 bytes: the array ends where its items do.
        if (vNext + vArg * ID_STRIDE !== next) return undefined;
        for (let j = 0, at = vNext; j < vArg; j++, at += ID_STRIDE) if (bytes[at] !== 0x58 || bytes[at + 1] !== 32) return undefined;
        chunksAt = vNext + ID_HEAD;
        chunkCount = vArg;
        bit = 16;
      }
      if (seen & bit) return undefined; // a key twice: decoding takes the last, counting does not guess
      seen |= bit;
      q = next;
    }
    if ((seen & 3) !== 3) return undefined;
    const t = NODE_TYPES[type]!;
    if (t === 'dir' && !(seen & 4)) return undefined;
    const name = bytes.subarray(nameAt, nameAt + nameLen);
    if (!isSafeName(name)) return undefined;
    if (prevAt >= 0 && bytes.compare(bytes, prevAt, prevAt + prevLen, nameAt, nameAt + nameLen) <= 0) return undefined;
    prevAt = nameAt;
    prevLen = nameLen;
    types[i] = type;
    subtrees[i] = t === 'dir' ? sub : 0;
    links[i] = t === 'file' ? lk : 1;
    names[2 * i] = nameAt;
    names[2 * i + 1] = nameLen;
    if (t === 'file') {
      chunks[2 * i] = chunksAt;
      chunks[2 * i + 1] = chunkCount;
    }
    p = q;
  }
  return new TreeSketch(bytes, types, subtrees, links, names, chunks);
}

/** sketchTree's view of a tree (CountableTree). */
export class TreeSketch implements CountableTree {
  /** @internal use sketchTree */
  constructor(
    private readonly bytes: Buffer,
    private readonly types: Uint8Array,
    private readonly subtrees: Uint32Array,
    private readonly links: Float64Array,
    private readonly names: Uint32Array,
    /** Per entry: where its first chunk id is, and how many there are. */
    private readonly chunks: Uint32Array,
  ) {}

  get length(): number {
    return this.types.length;
  }

  typeAt(i: number): NodeType {
    return NODE_TYPES[this.types[i]!]!;
  }

  subtreeAt(i: number): Buffer | undefined {
    const at = this.subtrees[i]!;
    return at === 0 ? undefined : this.bytes.subarray(at, at + 32);
  }

  linksAt(i: number): number {
    return this.links[i]!;
  }

  nameAt(i: number): Buffer {
    const at = this.names[2 * i]!;
    return this.bytes.subarray(at, at + this.names[2 * i + 1]!);
  }

  chunksAt(i: number): Buffer[] {
    const at = this.chunks[2 * i]!;
    const n = this.chunks[2 * i + 1]!;
    const out = new Array<Buffer>(n);
    for (let j = 0; j < n; j++) out[j] = this.bytes.subarray(at + j * ID_STRIDE, at + j * ID_STRIDE + 32);
    return out;
  }
}

/** Bytes a view may keep: a copy when they are a small part of a larger buffer (a read of a whole pack). */
function ownBytes(b: Buffer): Buffer {
  return b.buffer.byteLength > 2 * b.length + 65536 ? Buffer.from(b) : b;
}

/**
 * Every entry of a tree at once. Only for tests and format tools: readers use openTree (a view),
 * which never holds all entries as objects.
 */
export function decodeTree(bytes: Uint8Array, what: string): Node[] {
  return openTree(bytes, what).toArray();
}
