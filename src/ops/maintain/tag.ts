// `snap tag`: change the tags of snapshots. A record is immutable (its id is its hash), so a new
// record replaces the old one, as restic does: same tree and fields, new tags, `original` naming
// the first record of the chain; the old record is removed once the new one is durable.
import { encodeSnapshot, type StoredSnapshot } from '../../model/snapshot.js';
import type { Repository } from '../../repo/repository.js';
import { draftFrom, replaceSnapshot } from './forget.js';

export interface TagEdit {
  add?: string[];
  remove?: string[];
  /** Replace all tags (before add/remove, which the CLI does not combine with it). */
  set?: string[];
}

/** The tags after an edit: sorted, unique, no empty tags. Pure. */
export function editTags(tags: readonly string[], e: TagEdit): string[] {
  const remove = new Set(e.remove ?? []);
  const out = [...(e.set ?? tags)].filter((t) => !remove.has(t));
  out.push(...(e.add ?? []));
  return [...new Set(out.filter((t) => t !== ''))].sort();
}

export interface TagResult {
  old: StoredSnapshot;
  /** The replacing record; undefined when the tags did not change. */
  replacement?: StoredSnapshot;
}

export async function tagSnapshots(repo: Repository, snaps: StoredSnapshot[], e: TagEdit, o: { dryRun?: boolean } = {}): Promise<TagResult[]> {
  if (!o.dryRun) repo.assertMayDelete('tag (a tagged snapshot replaces the old record, which is deleted)');
  const out: TagResult[] = [];
  for (const old of snaps) {
    const tags = editTags(old.tags, e);
    if (tags.join('\0') === old.tags.join('\0')) {
      out.push({ old });
      continue;
    }
    const draft = { ...draftFrom(old), tags };
    out.push({ old, replacement: o.dryRun ? { ...draft, id: encodeSnapshot(draft).id } : await replaceSnapshot(repo, old, draft, true) });
  }
  return out;
}
