// The paths a user named inside a snapshot (restore --include, export --path), resolved once.
// One type for every command that takes them, so they all select alike: a named path and
// everything below it is selected; the directories leading to it are walked (and restored or
// exported with their own metadata) but hold only what leads to a named path.
import type { Repository } from '../../repo/repository.js';
import type { StoredSnapshot } from '../../model/snapshot.js';
import { locate, splitPath } from './navigate.js';

/** 'all': selected (a named path or below one); 'partial': a directory leading to one; 'none': not selected. */
export type Scope = 'all' | 'partial' | 'none';

export class PathSelection {
  /** Nothing named: the whole snapshot. */
  static readonly ALL = new PathSelection([]);

  private constructor(
    /** The named paths as name components from the snapshot root; [] for the root itself. */
    readonly paths: readonly (readonly Buffer[])[],
  ) {}

  /** Paths already split into components (splitPath); none means the whole snapshot. */
  static of(paths: readonly (readonly Buffer[])[]): PathSelection {
    return paths.length === 0 ? PathSelection.ALL : new PathSelection(paths.map((p) => [...p]));
  }

  /**
   * Resolve the paths a user gave as `snap ls` and `snap cat` take them: an absolute path is a
   * snapshot path, a relative one is tried under each source path. A path not in the snapshot is
   * an error (SNAP_NOT_FOUND).
   */
  static async resolve(repo: Repository, snap: StoredSnapshot, userPaths: readonly string[]): Promise<PathSelection> {
    const out: Buffer[][] = [];
    for (const p of userPaths) out.push(splitPath((await locate(repo, snap, p)).path));
    return PathSelection.of(out);
  }

  /** Whether the user named any path (the root counts as one). */
  get named(): boolean {
    return this.paths.length > 0;
  }

  /** Whether every path of the snapshot is selected: nothing named, or the root named. */
  get everything(): boolean {
    return this.paths.length === 0 || this.paths.some((p) => p.length === 0);
  }

  /** How the path with these components (from the snapshot root) is selected. */
  scope(parts: readonly Buffer[]): Scope {
    if (this.paths.length === 0) return 'all';
    let partial = false;
    for (const sel of this.paths) {
      if (!startsWith(parts, sel, Math.min(sel.length, parts.length))) continue;
      if (parts.length >= sel.length) return 'all';
      partial = true;
    }
    return partial ? 'partial' : 'none';
  }

  /** Whether the path is a named path or below one (false when nothing is named). */
  covers(parts: readonly Buffer[]): boolean {
    return this.paths.some((sel) => sel.length <= parts.length && startsWith(parts, sel, sel.length));
  }
}

function startsWith(parts: readonly Buffer[], sel: readonly Buffer[], n: number): boolean {
  for (let i = 0; i < n; i++) if (!sel[i]!.equals(parts[i]!)) return false;
  return true;
}
