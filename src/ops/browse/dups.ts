// `snap dups [REF]`: files with identical content (identical chunk lists) inside one snapshot.
// The repository stores such content once; the report says what the copies would take without
// deduplication. Hard links of one inode are one file, not duplicates.
//
// Two passes over the snapshot's trees: the first counts copies per content (a 44-byte key per
// distinct content), the second collects paths only for content seen more than once. Holding
// every path of a snapshot with millions of files would cost far more than reading its trees twice.
import { joinPath } from '../../core/bytes.js';
import { sha256 } from '../../core/ids.js';
import type { Node } from '../../model/node.js';
import type { Tree } from '../../model/tree.js';
import { ExpansionGuard, type TreeReader } from '../tree/walk.js';

export interface DupCopy {
  /** The paths of one file: several when it is hard-linked. */
  paths: Buffer[];
}

export interface DupGroup {
  size: number;
  chunks: number;
  copies: DupCopy[];
  /** size * (copies - 1): what the extra copies would take without deduplication. */
  wasted: number;
}

export interface DupReport {
  groups: DupGroup[];
  /** Files that are extra copies (copies - 1, summed). */
  duplicateFiles: number;
  wasted: number;
  filesScanned: number;
}

const contentKey = (n: Node): string => sha256(Buffer.concat(n.chunks ?? [])).toString('base64');
const inodeKey = (n: Node): string | undefined => (n.inode ? `${n.inode.dev}:${n.inode.ino}` : undefined);

/** The files below `tree`, a directory before its contents; iterative, one frame per level (issue 20). */
async function* files(repo: TreeReader, tree: Buffer, dir: Buffer, minSize: number, signal?: AbortSignal): AsyncGenerator<{ path: Buffer; node: Node }> {
  const guard = new ExpansionGuard(repo, tree);
  const read = async (id: Buffer): Promise<Tree> => {
    signal?.throwIfAborted();
    const nodes = await repo.readTree(id);
    await guard.enter(id, nodes);
    return nodes;
  };
  const stack: { nodes: Tree; i: number; dir: Buffer }[] = [{ nodes: await read(tree), i: 0, dir }];
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    if (f.i >= f.nodes.length) {
      stack.pop();
      continue;
    }
    const node = f.nodes.at(f.i++);
    const path = joinPath(f.dir, node.name);
    if (node.type === 'dir') stack.push({ nodes: await read(node.tree!), i: 0, dir: path });
    else if (node.type === 'file' && node.size > 0 && node.size >= minSize) yield { path, node };
  }
}

/** Duplicate groups below `tree` (at `dir`), largest waste first. */
export async function findDups(repo: TreeReader, tree: Buffer, dir: Buffer, opts: { minSize?: number; signal?: AbortSignal } = {}): Promise<DupReport> {
  const minSize = Math.max(1, opts.minSize ?? 1);
  const copies = new Map<string, number>();
  const seenInodes = new Set<string>();
  let filesScanned = 0;
  for await (const { node } of files(repo, tree, dir, minSize, opts.signal)) {
    filesScanned++;
    const ino = inodeKey(node);
    if (ino) {
      if (seenInodes.has(ino)) continue;
      seenInodes.add(ino);
    }
    const k = contentKey(node);
    copies.set(k, (copies.get(k) ?? 0) + 1);
  }
  for (const [k, n] of copies) if (n < 2) copies.delete(k);

  const groups = new Map<string, { node: Node; byInode: Map<string, DupCopy>; list: DupCopy[] }>();
  if (copies.size > 0) {
    for await (const { path, node } of files(repo, tree, dir, minSize, opts.signal)) {
      const k = contentKey(node);
      if (!copies.has(k)) continue;
      let g = groups.get(k);
      if (!g) groups.set(k, (g = { node, byInode: new Map(), list: [] }));
      const ino = inodeKey(node);
      const same = ino ? g.byInode.get(ino) : undefined;
      if (same) same.paths.push(path);
      else {
        const c = { paths: [path] };
        g.list.push(c);
        if (ino) g.byInode.set(ino, c);
      }
    }
  }
  const out: DupGroup[] = [...groups.values()].map((g) => ({
    size: g.node.size,
    chunks: g.node.chunks?.length ?? 0,
    copies: g.list,
    wasted: g.node.size * (g.list.length - 1),
  }));
  out.sort((a, b) => b.wasted - a.wasted || b.size - a.size || Buffer.compare(a.copies[0]!.paths[0]!, b.copies[0]!.paths[0]!));
  return {
    groups: out,
    duplicateFiles: out.reduce((s, g) => s + g.copies.length - 1, 0),
    wasted: out.reduce((s, g) => s + g.wasted, 0),
    filesScanned,
  };
}
