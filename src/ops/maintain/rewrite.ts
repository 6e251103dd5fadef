// `snap rewrite`: remove files from existing snapshots (a secret backed up by mistake). Each
// snapshot's trees are rebuilt without the entries the patterns match; unchanged subtrees keep
// their ids, so only the directories on the way to a removed entry are written anew. The new
// record replaces the old one like a tag edit does (`original` names the first of the chain);
// the old record stays unless asked to forget it, and only `gc` then frees the removed data.
import { fsEncode, joinPath } from '../../core/bytes.js';
import { toHex } from '../../core/ids.js';
import { type ExcludeRule, isExcluded } from '../../model/exclude.js';
import type { Node } from '../../model/node.js';
import { encodeSnapshot, type StoredSnapshot } from '../../model/snapshot.js';
import { encodeWithSubtrees } from '../../model/tree.js';
import type { Repository } from '../../repo/repository.js';
import { draftFrom, replaceSnapshot } from './forget.js';

export interface RewriteOptions {
  /** Patterns as `create --exclude` takes them: relative to each source path, or absolute. */
  rules: ExcludeRule[];
  patterns: string[];
  dryRun?: boolean;
  /** Remove each original once its replacement is durable. */
  forget?: boolean;
  program: string;
  /** Told of each removed entry (a directory stands for everything below it). */
  onRemoved?: (snap: StoredSnapshot, path: Buffer, node: Node) => void | Promise<void>;
  /**
   * Stops the rewrite (Ctrl-C) at its next entry: tree writes under way finish, no record is
   * written for the snapshot being rewritten (those already replaced stay replaced), and the
   * reason is thrown. Trees written so far are unreferenced; gc removes them.
   */
  signal?: AbortSignal;
}

export interface RewriteResult {
  old: StoredSnapshot;
  /** Entries removed (a directory counts once), and the files and bytes they held. */
  removed: number;
  files: number;
  bytes: number;
  /** The replacing record (its would-be id in a dry run); undefined when nothing matched. */
  replacement?: StoredSnapshot;
  forgotten: boolean;
}

export async function rewriteSnapshots(repo: Repository, snaps: StoredSnapshot[], o: RewriteOptions): Promise<RewriteResult[]> {
  if (o.forget && !o.dryRun) repo.assertMayDelete('rewrite --forget (it deletes the original records)');
  const memo = new Map<string, Rebuilt>();
  const out: RewriteResult[] = [];
  for (const snap of snaps) {
    const w = new TreeRewriter(repo, snap, o, memo);
    let r: Rebuilt;
    try {
      r = await w.tree(snap.tree, Buffer.from('/'));
      o.signal?.throwIfAborted();
    } catch (e) {
      // Stopped (or failed): let pack writes already under way finish, so none is cut off.
      await repo.objects.settle();
      throw e;
    }
    const res: RewriteResult = { old: snap, removed: r.removed, files: r.files, bytes: r.bytes, forgotten: false };
    if (r.removed > 0) {
      const draft = {
        ...draftFrom(snap),
        tree: r.id,
        program: o.program,
        excludes: [...snap.excludes, ...o.patterns],
        summary: { ...snap.summary, totalFiles: Math.max(0, snap.summary.totalFiles - r.files), totalBytes: Math.max(0, snap.summary.totalBytes - r.bytes), dataAdded: 0, objectsAdded: w.written },
      };
      res.replacement = o.dryRun ? { ...draft, id: encodeSnapshot(draft).id } : await replaceSnapshot(repo, snap, draft, o.forget === true);
      res.forgotten = o.forget === true && !o.dryRun;
    }
    out.push(res);
  }
  return out;
}

interface Rebuilt {
  id: Buffer;
  removed: number;
  files: number;
  bytes: number;
}

class TreeRewriter {
  /** Tree objects this rewrite added to the repository. */
  written = 0;
  /** Source paths as latin1 strings of their bytes, as exclude rules take paths. */
  private readonly sources: string[];

  constructor(
    private readonly repo: Repository,
    private readonly snap: StoredSnapshot,
    private readonly o: RewriteOptions,
    private readonly memo: Map<string, Rebuilt>,
  ) {
    this.sources = snap.paths.map((p) => fsEncode(p).toString('latin1'));
  }

  /** The path relative to the source it lies in; undefined for a source itself and the directories above. */
  private rel(abs: string): string | undefined {
    for (const s of this.sources) {
      if (s === '/') return abs.slice(1);
      if (abs.startsWith(s + '/')) return abs.slice(s.length + 1);
    }
    return undefined;
  }

  async tree(id: Buffer, at: Buffer): Promise<Rebuilt> {
    // The same tree at the same place, under the same sources, gives the same answer (snapshots of one source share most trees).
    const key = `${this.sources.join('\0')}\0\0${toHex(id)}\0${at.toString('latin1')}`;
    const seen = this.memo.get(key);
    if (seen && !this.o.onRemoved) return seen;
    const nodes = await this.repo.readTree(id);
    // What changes (an entry dropped: null; a new subtree id); the entries are held all at once
    // only to re-encode a tree that changes (at most MAX_TREE_ENTRIES, ~670 bytes each decoded).
    const changes = new Map<number, Buffer | null>();
    const r: Rebuilt = { id, removed: 0, files: 0, bytes: 0 };
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes.at(i);
      this.o.signal?.throwIfAborted();
      const p = joinPath(at, n.name);
      const abs = p.toString('latin1');
      const rel = this.rel(abs);
      if (rel !== undefined && isExcluded(this.o.rules, rel, n.type === 'dir', abs.slice(1))) {
        const c = n.type === 'dir' ? await this.count(n.tree!) : { files: n.type === 'file' ? 1 : 0, bytes: n.size };
        r.removed++;
        r.files += c.files;
        r.bytes += c.bytes;
        await this.o.onRemoved?.(this.snap, p, n);
        changes.set(i, null);
        continue;
      }
      if (n.type === 'dir') {
        const sub = await this.tree(n.tree!, p);
        r.removed += sub.removed;
        r.files += sub.files;
        r.bytes += sub.bytes;
        if (!sub.id.equals(n.tree!)) changes.set(i, sub.id);
      }
    }
    if (r.removed > 0) {
      const bytes = encodeWithSubtrees(nodes, changes);
      r.id = this.repo.hashId(bytes);
      if (!this.o.dryRun && (await this.repo.objects.add('tree', bytes, r.id)).added) this.written++;
    }
    this.memo.set(key, r);
    return r;
  }

  /** Files and bytes below a removed directory. */
  private async count(id: Buffer): Promise<{ files: number; bytes: number }> {
    let files = 0;
    let bytes = 0;
    for (const n of await this.repo.readTree(id)) {
      if (n.type === 'dir') {
        const c = await this.count(n.tree!);
        files += c.files;
        bytes += c.bytes;
      } else if (n.type === 'file') {
        files++;
        bytes += n.size;
      }
    }
    return { files, bytes };
  }
}
