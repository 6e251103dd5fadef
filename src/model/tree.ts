// A tree object: the entries of one directory, sorted by raw name bytes. Identical directories
// encode to identical bytes and so to identical ids.
import { SnapError } from '../core/errors.js';
import { displayName } from '../core/bytes.js';
import { asArray, asRecord, asUint, decodeCbor, encodeCbor } from './cbor.js';
import { type Node, nodeFromRecord, nodeToRecord } from './node.js';

export const TREE_VERSION = 1;

export function sortNodes(nodes: Node[]): Node[] {
  return nodes.sort((a, b) => Buffer.compare(a.name, b.name));
}

export function encodeTree(nodes: Node[]): Buffer {
  return encodeCbor({ v: TREE_VERSION, entries: nodes.map(nodeToRecord) });
}

export function decodeTree(bytes: Uint8Array, what: string): Node[] {
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
  let lo = 0;
  let hi = nodes.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = Buffer.compare(nodes[mid]!.name, name);
    if (c === 0) return nodes[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}
