// A tree object: the entries of one directory, sorted by raw name bytes. Identical directories
// encode to identical bytes and so to identical ids.
import { SnapError } from '../core/errors.js';
import { displayName } from '../core/bytes.js';
import { asArray, asRecord, asUint, decodeCbor, encodeCbor, topLevelArrayLength } from './cbor.js';
import { type Node, nodeFromRecord, nodeToRecord } from './node.js';

export const TREE_VERSION = 1;

/**
 * The most entries a tree (one directory) may have; readers refuse more, and create refuses to
 * store a directory with more (issue 20). Decoded, an entry costs about 670 bytes
 * (measured: 1,000,000 minimal entries took 669 MB of RSS on top of their 81 MB of CBOR), so one
 * tree at this cap costs under 1 GB; a crafted tree of 6 million entries would take 4.5 GB.
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

export function decodeTree(bytes: Uint8Array, what: string): Node[] {
  // Counted before decoding: a crafted tree of millions of entries would take gigabytes as objects.
  const count = topLevelArrayLength(bytes, 'entries');
  if (count !== undefined && count > MAX_TREE_ENTRIES) {
    throw new SnapError('SNAP_CORRUPT', `${what} claims ${count} entries, more than the ${MAX_TREE_ENTRIES} snap reads in one directory: the repository is damaged or crafted`);
  }
  const r = asRecord(decodeCbor(bytes, what), what);
  const v = asUint(r.v, `${what}.v`);
  if (v !== TREE_VERSION) throw new SnapError('SNAP_CORRUPT', `${what}: unsupported tree version ${v}`);
  const nodes = asArray(r.entries, `${what}.entries`).map((e, i) => nodeFromRecord(e, `${what}.entries[${i}]`));
  for (let i = 1; i < nodes.length; i++) {
    if (Buffer.compare(nodes[i - 1]!.name, nodes[i]!.name) >= 0) {
      throw new SnapError('SNAP_CORRUPT', `${what}: entries not sorted or duplicated at ${JSON.stringify(displayName(nodes[i]!.name))}`);
    }
  }
  return nodes;
}

export function findNode(nodes: Node[], name: Buffer): Node | undefined {
  const at = indexOfName(nodes, name);
  return at < 0 ? undefined : nodes[at];
}

/** Where the entry named `name` is in `nodes` (sorted as trees are), or -1. */
export function indexOfName(nodes: Node[], name: Buffer): number {
  let lo = 0;
  let hi = nodes.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = Buffer.compare(nodes[mid]!.name, name);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}
