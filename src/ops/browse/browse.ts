// `snap ls` and `snap cat`: read a directory listing or a file's bytes out of a snapshot.
import { SnapError } from '../../core/errors.js';
import { joinPath } from '../../core/bytes.js';
import type { Node } from '../../model/node.js';
import { Tree } from '../../model/tree.js';
import type { StoredSnapshot } from '../../model/snapshot.js';
import type { Repository } from '../../repo/repository.js';
import { locate } from '../tree/navigate.js';
import { ExpansionGuard } from '../tree/walk.js';

export interface ListedEntry {
  path: Buffer;
  node: Node;
  /** The entries of the directory it is in (the same tree for all of them): for column widths. */
  siblings: Tree;
}

/** Entries of a directory (or the single entry for a file), optionally recursive, streamed. */
export async function* listPath(repo: Repository, snap: StoredSnapshot, userPath: string, recursive: boolean): AsyncIterable<ListedEntry> {
  const at = await locate(repo, snap, userPath);
  if (at.node && at.node.type !== 'dir') {
    yield { path: at.path, node: at.node, siblings: Tree.of([at.node]) };
    return;
  }
  yield* walk(repo, at.tree!, at.path.length === 0 ? Buffer.from('/') : at.path, recursive);
}

async function* walk(repo: Repository, tree: Buffer, dir: Buffer, recursive: boolean): AsyncIterable<ListedEntry> {
  // Iterative (issue 20): a directory before its contents, in name order, one frame per level.
  const guard = new ExpansionGuard(repo, tree);
  const first = await repo.readTree(tree);
  await guard.enter(tree, first);
  const stack: { nodes: Tree; i: number; dir: Buffer }[] = [{ nodes: first, i: 0, dir }];
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    if (f.i >= f.nodes.length) {
      stack.pop();
      continue;
    }
    const node = f.nodes.at(f.i++);
    const p = joinPath(f.dir, node.name);
    yield { path: p, node, siblings: f.nodes };
    if (recursive && node.type === 'dir') {
      const nodes = await repo.readTree(node.tree!);
      await guard.enter(node.tree!, nodes);
      stack.push({ nodes, i: 0, dir: p });
    }
  }
}

/** A file's bytes, chunk by chunk, each verified against its id. */
export async function* fileChunks(repo: Repository, node: Node): AsyncIterable<Buffer> {
  for (const id of node.chunks ?? []) yield await repo.objects.get(id, 'blob');
}

export async function catFile(repo: Repository, snap: StoredSnapshot, userPath: string): Promise<{ node: Node; chunks: AsyncIterable<Buffer> }> {
  const at = await locate(repo, snap, userPath);
  if (!at.node || at.node.type !== 'file') {
    throw new SnapError('SNAP_USAGE', `${userPath} is ${at.node ? `a ${at.node.type}` : 'the snapshot root'}, not a file`);
  }
  return { node: at.node, chunks: fileChunks(repo, at.node) };
}
