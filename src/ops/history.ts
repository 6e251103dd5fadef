// `snap history PATH`: the distinct versions of one file or directory across snapshots, oldest
// first. A new version starts where the entry appears, changes (chunk list, tree id, type or
// metadata) or disappears. Snapshots whose source paths do not cover the path say nothing about
// it and are passed over, so snapshots of other folders never show up as deletions.
import { SnapError } from '../core/errors.js';
import type { Node } from '../model/node.js';
import type { StoredSnapshot } from '../model/snapshot.js';
import type { Repository } from '../repo/repository.js';
import { canonicalPath, compareNodes, type ChangeAspect, type MetaField } from './diff.js';
import { locateAbs } from './navigate.js';

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
 * Versions of `userPath`: an absolute snapshot path, or one relative to a source path (the first
 * snapshot holding it fixes which). Each version is yielded once the next one starts (or at the end).
 */
export async function* history(repo: Repository, snaps: StoredSnapshot[], userPath: string): AsyncGenerator<Version> {
  let abs = userPath.startsWith('/') ? canonicalPath(userPath) : undefined;
  let current: Version | undefined;
  let prevRoot: Buffer | undefined;
  let prevNode: Node | undefined;
  for (const snap of snaps) {
    let node: Node | undefined;
    if (!abs) {
      for (const src of snap.paths) {
        const p = canonicalPath(`${src}/${userPath}`);
        const hit = await locateAbs(repo, snap.tree, p);
        if (hit?.node) {
          abs = p;
          break;
        }
      }
      if (!abs) continue;
    }
    if (!covers(snap, abs)) continue;
    // Unchanged root tree, unchanged entry: no walk needed.
    if (prevRoot && prevRoot.equals(snap.tree)) node = prevNode;
    else node = (await locateAbs(repo, snap.tree, abs))?.node;
    prevRoot = snap.tree;
    prevNode = node;

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
