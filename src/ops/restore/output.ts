// The restore walk, and the output interface it feeds (issue 17, item 4): restoring into a
// directory (restore.ts) and exporting into a tar or zip archive (export.ts) are one walk of the
// snapshot with one selection (ops/tree: walkEntries, PathSelection), one hard-link grouping and
// one count of what was met, written into different outputs. export --verify reads the same walk
// back (export/verify.ts), in step with the archive.
import type { Node } from '../../model/node.js';
import type { Tree } from '../../model/tree.js';
import type { PathSelection } from '../tree/selection.js';
import { type TreeReader, type WalkedEntry, walkEntries } from '../tree/walk.js';

/**
 * A file that is one of several names of an inode (node.inode). The first met registers what later
 * names link to (for a directory: where it was written, once it was; for an archive: its path), or
 * undefined when it was not written. A later name links to it when `same`: the snapshot records it
 * as the first's twin (a file that changed between the backup's reads of two of its names was
 * recorded twice, each as read: each is then a file of its own).
 */
export type LinkMember<F> =
  | { first: true; register(f: F | undefined): void }
  | {
      first: false;
      /** What the group's first registered (awaited: a restore writes the first on another task). */
      group: Promise<F | undefined>;
      same: boolean;
      /** The last name of the inode (node.inode.links): the output may let go of what it holds for the group. */
      last: boolean;
    };

export interface RestoreItem<F> extends WalkedEntry {
  /** For a file with other names (node.inode). */
  link?: LinkMember<F>;
}

/** What the walk met, by kind (a later name of a hard-link group counts under links, not files). */
export interface RestoreCounts {
  dirs: number;
  files: number;
  links: number;
  symlinks: number;
  /** FIFOs and devices. */
  special: number;
  sockets: number;
}

interface Group<F> {
  node: Node;
  first: Promise<F | undefined>;
  /** Names not met yet. */
  left: number;
}

export interface RestoreWalkOptions {
  /** Prefixed to every path (a restore's target; nothing for an archive). */
  base?: Buffer;
  selection?: PathSelection;
  signal?: AbortSignal;
  /** false: the caller counted the expansion first (restore's budget.ts). */
  guard?: false;
}

/** The walk: every selected entry (and the directories leading to them) in restore order. */
export class RestoreWalk<F> {
  readonly counts: RestoreCounts = { dirs: 0, files: 0, links: 0, symlinks: 0, special: 0, sockets: 0 };
  /**
   * Groups some of whose names are still to come. A group is dropped at its last name, so memory
   * grows only with groups partly outside the selection.
   */
  private readonly groups = new Map<string, Group<F>>();

  constructor(
    private readonly repo: TreeReader,
    private readonly root: Buffer,
    private readonly o: RestoreWalkOptions,
    private readonly hooks: Pick<RestoreOutput<F>, 'read' | 'leave'> = {},
  ) {}

  /** The walk's entries, each with its hard-link role, counted. */
  async *entries(): AsyncGenerator<RestoreItem<F>> {
    for await (const e of this.raw()) yield this.meet(e);
  }

  /** The snapshot walk itself (ops/tree/walk.ts), before meet. restoreWith uses it: one generator less per entry. */
  raw(): AsyncGenerator<WalkedEntry> {
    const { read, leave } = this.hooks;
    return walkEntries(this.repo, this.root, { ...this.o, read: read?.bind(this.hooks), leave: leave?.bind(this.hooks) });
  }

  /** Count an entry of the walk and give a file of a hard-link group its role. */
  meet(e: WalkedEntry): RestoreItem<F> {
    const item: RestoreItem<F> = e;
    const c = this.counts;
    switch (e.node.type) {
      case 'dir':
        c.dirs++;
        break;
      case 'file':
        item.link = this.member(e.node);
        if (item.link && !item.link.first && item.link.same) c.links++;
        else c.files++;
        break;
      case 'symlink':
        c.symlinks++;
        break;
      case 'socket':
        c.sockets++;
        break;
      default:
        c.special++;
    }
    return item;
  }

  /** What the groups not all met registered (their other names are outside the selection). */
  async unfinished(): Promise<(F | undefined)[]> {
    const out = await Promise.all([...this.groups.values()].map((g) => g.first));
    this.groups.clear();
    return out;
  }

  private member(node: Node): LinkMember<F> | undefined {
    if (!node.inode || node.inode.links < 2) return undefined;
    const key = `${node.inode.dev}:${node.inode.ino}`;
    const g = this.groups.get(key);
    if (!g) {
      let register!: (f: F | undefined) => void;
      const first = new Promise<F | undefined>((r) => (register = r));
      this.groups.set(key, { node, first, left: node.inode.links - 1 });
      return { first: true, register };
    }
    const last = --g.left <= 0;
    if (last) this.groups.delete(key);
    return { first: false, group: g.first, same: sameFile(g.node, node), last };
  }
}

/** Where a restore writes: a directory on disk (restore.ts), a tar or a zip archive (export.ts). */
export interface RestoreOutput<F> {
  /** A directory's entries, read when the walk goes into it (the root first); default: as stored. */
  read?(id: Buffer, path: Buffer): Promise<Tree>;
  /** A directory met (selected, or leading to a selected path): false leaves out its contents. */
  dir(item: RestoreItem<F>): Promise<boolean>;
  /** Any other entry. */
  entry(item: RestoreItem<F>): Promise<void>;
  /** The walk is done with the directory it went into last (the root too, last of all). */
  leave?(): void;
}

/** Restore the walk's entries into `out`; the walk is returned for its counts and unfinished groups. */
export async function restoreInto<F>(repo: TreeReader, root: Buffer, o: RestoreWalkOptions, out: RestoreOutput<F>): Promise<RestoreWalk<F>> {
  const walk = new RestoreWalk<F>(repo, root, o, out);
  await restoreWith(walk, out);
  return walk;
}

/** Feed each entry of `walk` (made with `out`'s read and leave) to `out`. */
export async function restoreWith<F>(walk: RestoreWalk<F>, out: RestoreOutput<F>): Promise<void> {
  for await (const e of walk.raw()) {
    const item = walk.meet(e);
    if (item.node.type !== 'dir') await out.entry(item);
    else if (!(await out.dir(item))) item.descend = false;
  }
}

/** A later name of a hard-link group is the first's twin only if the snapshot records it so: same contents and metadata. */
export function sameFile(a: Node, b: Node): boolean {
  if (a.size !== b.size || a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid) return false;
  if (a.mtime.sec !== b.mtime.sec || a.mtime.nsec !== b.mtime.nsec) return false;
  const ca = a.chunks ?? [];
  const cb = b.chunks ?? [];
  if (ca.length !== cb.length || !ca.every((c, i) => c.equals(cb[i]!))) return false;
  const xa = a.xattrs ?? [];
  const xb = b.xattrs ?? [];
  return xa.length === xb.length && xa.every((x, i) => x.name.equals(xb[i]!.name) && x.value.equals(xb[i]!.value));
}
