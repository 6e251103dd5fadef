// `snap diff`: what changed between two trees, streamed. Both entry lists are sorted by raw name
// bytes, so one merge-walk pairs them; a subtree whose tree id is equal on both sides is identical
// (trees are content-addressed) and is never read. Memory holds one entry list per level of the
// two paths being walked, whatever the size of the trees.
import { displayPath, fsEncode, joinPath } from '../../core/bytes.js';
import { SnapError } from '../../core/errors.js';
import { shortId } from '../../core/ids.js';
import type { Node } from '../../model/node.js';
import type { Tree } from '../../model/tree.js';
import type { StoredSnapshot } from '../../model/snapshot.js';
import type { Repository } from '../../repo/repository.js';
import { type Located, locateAbs, splitPath } from '../tree/navigate.js';
import { ExpansionGuard, type TreeReader, walkEntries } from '../tree/walk.js';

/** What the diff needs from a repository. */
export type { TreeReader };

export type ChangeKind = 'added' | 'removed' | 'modified';
/** content: chunk list (file) differs; metadata: mode, owner, mtime, link target, device or extended attributes; type: file became dir, ... */
export type ChangeAspect = 'content' | 'metadata' | 'type';
export type MetaField = 'mode' | 'owner' | 'mtime' | 'target' | 'rdev' | 'xattrs';

export interface Change {
  kind: ChangeKind;
  path: Buffer;
  before?: Node;
  after?: Node;
  /** For `modified`: what differs. */
  aspects: ChangeAspect[];
  /** For a metadata change: which fields. */
  fields: MetaField[];
}

const sameIds = (a: Buffer[] | undefined, b: Buffer[] | undefined): boolean =>
  (a?.length ?? 0) === (b?.length ?? 0) && (a ?? []).every((id, i) => id.equals(b![i]!));

const sameXattrs = (a: Node, b: Node): boolean =>
  (a.xattrs?.length ?? 0) === (b.xattrs?.length ?? 0) &&
  (a.xattrs ?? []).every((x, i) => x.name.equals(b.xattrs![i]!.name) && x.value.equals(b.xattrs![i]!.value));

/** The metadata fields that differ between two entries of the same type. */
export function metaDiff(a: Node, b: Node): MetaField[] {
  const out: MetaField[] = [];
  if (a.mode !== b.mode) out.push('mode');
  if (a.uid !== b.uid || a.gid !== b.gid || a.user !== b.user || a.group !== b.group) out.push('owner');
  if (a.mtime.sec !== b.mtime.sec || a.mtime.nsec !== b.mtime.nsec) out.push('mtime');
  if (a.type === 'symlink' && !(a.target ?? Buffer.alloc(0)).equals(b.target ?? Buffer.alloc(0))) out.push('target');
  if (a.rdev !== b.rdev) out.push('rdev');
  if (!sameXattrs(a, b)) out.push('xattrs');
  return out;
}

/**
 * How two entries at the same path differ. A file's content is its chunk list; a directory's is
 * its tree id, counted only when `dirContent` (diff walks into the directory instead).
 */
export function compareNodes(a: Node, b: Node, dirContent: boolean): { aspects: ChangeAspect[]; fields: MetaField[] } {
  if (a.type !== b.type) return { aspects: ['type'], fields: [] };
  const aspects: ChangeAspect[] = [];
  if (a.type === 'file' && (a.size !== b.size || !sameIds(a.chunks, b.chunks))) aspects.push('content');
  if (a.type === 'dir' && dirContent && !a.tree!.equals(b.tree!)) aspects.push('content');
  const fields = metaDiff(a, b);
  if (fields.length > 0) aspects.push('metadata');
  return { aspects, fields };
}

/** Compare two entries found at the same path (either may be absent). Descends into directories. */
export function diffNodes(repo: TreeReader, path: Buffer, a: Node | undefined, b: Node | undefined): AsyncGenerator<Change> {
  return walkDiff(repo, { t: 'pair', path, a, b });
}

/** Changes from tree `a` to tree `b`, whose directory is at `dir`, in path order (a directory before its contents). */
export function diffTrees(repo: TreeReader, a: Buffer, b: Buffer, dir: Buffer): AsyncGenerator<Change> {
  return walkDiff(repo, { t: 'trees', a, b, dir });
}

/**
 * One step of a merge-walk of two entry lists sorted by raw name bytes (a recorded tree's, and
 * another tree's or a directory on disk): the next name and the entry each side has under it;
 * undefined once both lists are done. Advances the cursors `i` and `j`.
 */
export function mergeNext<R>(m: { left: Tree; right: { readonly length: number; at(i: number): R | undefined }; i: number; j: number }, nameOf: (r: R) => Buffer): { name: Buffer; l?: Node; r?: R } | undefined {
  if (m.i >= m.left.length && m.j >= m.right.length) return undefined;
  // The recorded side's name is compared without decoding its entry; the entry is decoded when it is the next.
  const ln = m.i < m.left.length ? m.left.nameAt(m.i) : undefined;
  const r = m.j < m.right.length ? m.right.at(m.j) : undefined;
  const c = !ln ? 1 : r === undefined ? -1 : Buffer.compare(ln, nameOf(r));
  const l = c <= 0 ? m.left.at(m.i++) : undefined;
  if (c >= 0) m.j++;
  return { name: l ? l.name : nameOf(r!), l, r: c >= 0 ? r : undefined };
}

type Side = 'added' | 'removed';
type Task =
  | { t: 'pair'; path: Buffer; a: Node | undefined; b: Node | undefined }
  | { t: 'trees'; a: Buffer; b: Buffer; dir: Buffer }
  | { t: 'merge'; left: Tree; right: Tree; i: number; j: number; dir: Buffer }
  | { t: 'side'; kind: Side; tree: Buffer; dir: Buffer };

/**
 * The diff as an explicit stack of tasks, no recursion (issue 20: 5,000 levels nest fine): a merge
 * of two directories stays on the stack under the task for its current entry, so changes come in
 * path order. A directory only one side has is walked whole by the snapshot walk (walkEntries).
 * Each side's expansion is watched for crafted shared subtrees by one guard (ops/tree/walk.ts).
 */
async function* walkDiff(repo: TreeReader, first: Task): AsyncGenerator<Change> {
  const guards = { removed: new ExpansionGuard(repo), added: new ExpansionGuard(repo) };
  const read = async (kind: Side, id: Buffer): Promise<Tree> => {
    const nodes = await repo.readTree(id);
    await guards[kind].enter(id, nodes);
    return nodes;
  };
  const stack: Task[] = [first];
  while (stack.length > 0) {
    const task = stack[stack.length - 1]!;
    switch (task.t) {
      case 'pair': {
        stack.pop();
        const { a, b, path } = task;
        if (!a && !b) break;
        if (!a) {
          yield { kind: 'added', path, after: b, aspects: [], fields: [] };
          if (b!.type === 'dir') stack.push({ t: 'side', kind: 'added', tree: b!.tree!, dir: path });
        } else if (!b) {
          yield { kind: 'removed', path, before: a, aspects: [], fields: [] };
          if (a.type === 'dir') stack.push({ t: 'side', kind: 'removed', tree: a.tree!, dir: path });
        } else if (a.type !== b.type) {
          yield { kind: 'modified', path, before: a, after: b, aspects: ['type'], fields: [] };
          // Pushed in reverse: what was removed is reported before what was added.
          if (b.type === 'dir') stack.push({ t: 'side', kind: 'added', tree: b.tree!, dir: path });
          if (a.type === 'dir') stack.push({ t: 'side', kind: 'removed', tree: a.tree!, dir: path });
        } else {
          // A directory's contents are reported entry by entry below it, not as a change of the directory.
          const { aspects, fields } = compareNodes(a, b, false);
          if (aspects.length > 0) yield { kind: 'modified', path, before: a, after: b, aspects, fields };
          if (a.type === 'dir' && !a.tree!.equals(b.tree!)) stack.push({ t: 'trees', a: a.tree!, b: b.tree!, dir: path });
        }
        break;
      }
      case 'trees': {
        stack.pop();
        if (task.a.equals(task.b)) break;
        const left = await read('removed', task.a);
        const right = await read('added', task.b);
        stack.push({ t: 'merge', left, right, i: 0, j: 0, dir: task.dir });
        break;
      }
      case 'merge': {
        const next = mergeNext(task, (n) => n.name);
        if (!next) stack.pop();
        else stack.push({ t: 'pair', path: joinPath(task.dir, next.name), a: next.l, b: next.r });
        break;
      }
      case 'side': {
        stack.pop();
        const kind = task.kind;
        for await (const { path, node } of walkEntries(repo, task.tree, { base: task.dir, guard: guards[kind] })) {
          yield kind === 'added' ? { kind, path, after: node, aspects: [], fields: [] } : { kind, path, before: node, aspects: [], fields: [] };
        }
        break;
      }
    }
  }
}

export interface DiffCounts {
  files: number;
  dirs: number;
  others: number;
  bytes: number;
}

export interface DiffSummary {
  added: DiffCounts;
  removed: DiffCounts;
  /** Entries whose contents changed (files), counted with their sizes before and after. */
  modified: { content: number; metadataOnly: number; type: number; bytesBefore: number; bytesAfter: number };
}

const counts = (): DiffCounts => ({ files: 0, dirs: 0, others: 0, bytes: 0 });

export function emptySummary(): DiffSummary {
  return { added: counts(), removed: counts(), modified: { content: 0, metadataOnly: 0, type: 0, bytesBefore: 0, bytesAfter: 0 } };
}

function count(c: DiffCounts, n: Node): void {
  if (n.type === 'file') {
    c.files++;
    c.bytes += n.size;
  } else if (n.type === 'dir') c.dirs++;
  else c.others++;
}

/** Add one change to a running summary. A type change counts as a removal plus an addition. */
export function summarize(sum: DiffSummary, ch: Change): void {
  if (ch.kind === 'added') count(sum.added, ch.after!);
  else if (ch.kind === 'removed') count(sum.removed, ch.before!);
  else if (ch.aspects.includes('type')) {
    sum.modified.type++;
    count(sum.removed, ch.before!);
    count(sum.added, ch.after!);
  } else if (ch.aspects.includes('content')) {
    sum.modified.content++;
    sum.modified.bytesBefore += ch.before!.size;
    sum.modified.bytesAfter += ch.after!.size;
  } else sum.modified.metadataOnly++;
}

/** An absolute path inside a snapshot, written as the user gave it, in canonical form (`/a/b`). */
export function canonicalPath(p: string): Buffer {
  const parts = splitPath(fsEncode(p));
  return parts.length === 0 ? Buffer.from('/') : Buffer.concat(parts.flatMap((x) => [Buffer.from('/'), x]));
}

/**
 * Where a user's path is in either of two snapshots: an absolute path as is, a relative one
 * against each source path of either snapshot (the first that exists in one of them).
 */
export async function locatePair(repo: Repository, a: StoredSnapshot, b: StoredSnapshot, userPath: string): Promise<{ path: Buffer; a?: Located; b?: Located }> {
  const candidates = userPath.startsWith('/') ? [userPath] : [...new Set([...a.paths, ...b.paths])].map((s) => `${s}/${userPath}`);
  for (const c of candidates) {
    const path = canonicalPath(c);
    const la = await locateAbs(repo, a.tree, path);
    const lb = await locateAbs(repo, b.tree, path);
    if (la || lb) return { path, a: la, b: lb };
  }
  throw new SnapError('SNAP_NOT_FOUND', `${displayPath(userPath)} is in neither snapshot ${shortId(a.id)} nor ${shortId(b.id)}`);
}

/** Changes from snapshot `a` to snapshot `b`, of everything or of one path (a file or a directory). */
export async function* diffSnapshots(repo: Repository, a: StoredSnapshot, b: StoredSnapshot, userPath?: string): AsyncGenerator<Change> {
  if (userPath === undefined) return yield* diffTrees(repo, a.tree, b.tree, Buffer.from('/'));
  const at = await locatePair(repo, a, b, userPath);
  // The snapshot root has no entry of its own, only a tree.
  if (at.a && !at.a.node && at.b && !at.b.node) return yield* diffTrees(repo, at.a.tree!, at.b.tree!, at.path);
  yield* diffNodes(repo, at.path, at.a?.node, at.b?.node);
}
