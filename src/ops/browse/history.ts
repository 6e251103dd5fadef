// `snap history PATH`: the distinct versions of one file or directory across snapshots, oldest
// first. A new version starts where the entry appears, changes (chunk list, tree id, type or
// metadata) or disappears. Snapshots whose source paths do not cover the path say nothing about
// it and are passed over, so snapshots of other folders never show up as deletions.
import { SnapError } from '../../core/errors.js';
import { toHex } from '../../core/ids.js';
import type { Node } from '../../model/node.js';
import type { StoredSnapshot } from '../../model/snapshot.js';
import { canonicalPath, compareNodes, type ChangeAspect, type MetaField, type TreeReader } from './diff.js';
import { splitPath } from '../tree/navigate.js';

export type HistoryEvent = 'added' | 'modified' | 'deleted';

export interface Version {
  event: HistoryEvent;
  /** The first snapshot showing this version. */
  snapshot: StoredSnapshot;
  /** The last snapshot (in a row) showing it. */
  last: StoredSnapshot;
  /** How many snapshots in a row show it. */
  seen: number;
  /** The entry; absent for a deletion. */
  node?: Node;
  /** For `modified`: what differs from the version before. */
  aspects: ChangeAspect[];
  fields: MetaField[];
}

function covers(snap: StoredSnapshot, abs: Buffer): boolean {
  return snap.paths.some((p) => {
    const src = canonicalPath(p);
    if (src.length === 1) return true; // `/`
    return abs.equals(src) || (abs.length > src.length && abs[src.length] === 0x2f && abs.subarray(0, src.length).equals(src));
  });
}

/**
 * Find one path in many snapshots reading each distinct tree on the way once: the entry found
 * below a tree id at a given depth is the same in every snapshot holding that tree there.
 */
function memoLookup(repo: TreeReader, abs: Buffer): (root: Buffer) => Promise<Node | undefined> {
  const memo = new Map<string, Node | undefined>();
  const parts = splitPath(abs);
  return async (root) => {
    const walk = async (tree: Buffer, depth: number): Promise<Node | undefined> => {
      const key = `${depth}:${toHex(tree)}`;
      if (memo.has(key)) return memo.get(key);
      const node = (await repo.readTree(tree)).find(parts[depth]!);
      const found = !node || depth === parts.length - 1 ? node : node.type === 'dir' ? await walk(node.tree!, depth + 1) : undefined;
      memo.set(key, found);
      return found;
    };
    return parts.length === 0 ? undefined : walk(root, 0);
  };
}

/**
 * Versions of `userPath`: an absolute snapshot path, or one relative to a source path (the first
 * snapshot holding it fixes which). Each version is yielded once the next one starts (or at the end).
 */
export async function* history(repo: TreeReader, snaps: StoredSnapshot[], userPath: string): AsyncGenerator<Version> {
  // Fixed by the argument, or (for a relative path) by the first snapshot that holds it.
  let at: { abs: Buffer; lookup: (root: Buffer) => Promise<Node | undefined> } | undefined;
  if (userPath.startsWith('/')) {
    const abs = canonicalPath(userPath);
    at = { abs, lookup: memoLookup(repo, abs) };
  }
  let current: Version | undefined;
  for (const snap of snaps) {
    if (!at) {
      for (const src of snap.paths) {
        const abs = canonicalPath(`${src}/${userPath}`);
        const lookup = memoLookup(repo, abs);
        if (await lookup(snap.tree)) {
          at = { abs, lookup };
          break;
        }
      }
      if (!at) continue;
    }
    if (!covers(snap, at.abs)) continue;
    const node = await at.lookup(snap.tree);

    if (!current) {
      if (node) current = { event: 'added', snapshot: snap, last: snap, seen: 1, node, aspects: [], fields: [] };
      continue;
    }
    const before = current.node;
    let next: Version | undefined;
    if (!node && before) next = { event: 'deleted', snapshot: snap, last: snap, seen: 1, aspects: [], fields: [] };
    else if (node && !before) next = { event: 'added', snapshot: snap, last: snap, seen: 1, node, aspects: [], fields: [] };
    else if (node && before) {
      const d = compareNodes(before, node, true);
      if (d.aspects.length > 0) next = { event: 'modified', snapshot: snap, last: snap, seen: 1, node, ...d };
    }
    if (next) {
      yield current;
      current = next;
    } else {
      current.last = snap;
      current.seen++;
    }
  }
  if (!current) throw new SnapError('SNAP_NOT_FOUND', `${userPath} is in none of the ${snaps.length} snapshot(s) searched`);
  yield current;
}
