// Find a path inside a snapshot by walking its trees from the root.
import { SnapError } from '../../core/errors.js';
import { displayPath, fsEncode } from '../../core/bytes.js';
import type { Node } from '../../model/node.js';
import type { StoredSnapshot } from '../../model/snapshot.js';
import type { Repository } from '../../repo/repository.js';

export interface Located {
  /** The entry itself; undefined for the snapshot root. */
  node?: Node;
  /** Its tree (for directories and the root). */
  tree?: Buffer;
  path: Buffer;
}

export function splitPath(p: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i === p.length || p[i] === 0x2f) {
      if (i > start) {
        const part = p.subarray(start, i);
        if (!(part.length === 1 && part[0] === 0x2e)) parts.push(part);
      }
      start = i + 1;
    }
  }
  return parts;
}

/**
 * Resolve a path given by a user: absolute paths are snapshot paths; a relative path is tried
 * against each of the snapshot's source paths.
 */
export async function locate(repo: Repository, snap: StoredSnapshot, userPath: string): Promise<Located> {
  const candidates = userPath.startsWith('/') || userPath === '' ? [userPath || '/'] : snap.paths.map((s) => `${s}/${userPath}`);
  for (const c of candidates) {
    const hit = await locateAbs(repo, snap.tree, fsEncode(c));
    if (hit) return hit;
  }
  throw new SnapError('SNAP_NOT_FOUND', `${displayPath(userPath)} is not in snapshot ${snap.id.slice(0, 8)} (its paths: ${snap.paths.map(displayPath).join(', ')})`);
}

export async function locateAbs(repo: Repository, root: Buffer, p: Buffer): Promise<Located | undefined> {
  let tree: Buffer | undefined = root;
  let node: Node | undefined;
  for (const part of splitPath(p)) {
    if (!tree) return undefined;
    node = (await repo.readTree(tree)).find(part);
    if (!node) return undefined;
    tree = node.type === 'dir' ? node.tree : undefined;
  }
  return { node, tree, path: p };
}
