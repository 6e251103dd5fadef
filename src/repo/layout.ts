// Where things live in a repository (docs/format.md, "Layout").
export const CONFIG = 'config';
export const SNAPSHOTS = 'snapshots/';
export const DATA = 'data/';
export const LOCKS = 'locks/';
/** Damaged packs and snapshot records that `snap repair` moved aside (kept, never read). */
export const QUARANTINE = 'quarantine/';
/** The LevelDB index of a local repository; a remote repository keeps it in a local cache folder. */
export const INDEX_DIR = 'index';

export function snapshotName(id: string): string {
  return `${SNAPSHOTS}${id}`;
}

export function snapshotIdFromName(name: string): string | undefined {
  const m = /^snapshots\/([0-9a-f]{64})$/.exec(name);
  return m ? m[1] : undefined;
}
