// The pure half of gc: given what each pack holds and how much of it the snapshots use, decide
// what happens to it. No I/O, so the rules are unit-tested directly and `gc --dry-run` is free.

/** What gc knows about one pack after marking. Bytes are stored (compressed) object bytes. */
export interface PackUsage {
  id: string;
  /** Size of the pack file (0 when it is not in storage). */
  size: number;
  inStorage: boolean;
  /** Listed in the index (a `p` entry, or object entries pointing into it). */
  indexed: boolean;
  /** Index entries in this pack that snapshots use, and their bytes. */
  usedCount: number;
  usedBytes: number;
  /** Index entries in this pack that nothing uses, and their bytes. */
  unusedCount: number;
  unusedBytes: number;
  /** Objects the pack header lists but the index places elsewhere (duplicates): always waste. */
  hiddenCount: number;
  /** For unindexed packs: objects snapshots use that are in no indexed pack. */
  neededMissing: number;
}

export type PackAction =
  | 'keep'
  /** Nothing in it is used: drop its index entries and delete the file. */
  | 'delete'
  /** Partly used beyond the threshold: copy the used objects into new packs, then delete it. */
  | 'rewrite'
  /** In storage but not indexed, holding objects snapshots need: index it, keep it. */
  | 'reindex'
  /** Indexed but not in storage and nothing uses it: drop its index entries. */
  | 'unindex'
  /** Indexed but not in storage while snapshots use objects in it: damage; gc refuses to run. */
  | 'missing';

export interface PackDecision {
  usage: PackUsage;
  action: PackAction;
}

/**
 * Decide one pack. `maxUnused` is the share (0..1) of a pack's object bytes that may be unused
 * before the pack is rewritten: 0 rewrites every pack with any waste.
 */
export function decidePack(u: PackUsage, maxUnused: number): PackAction {
  if (!u.inStorage) return u.usedCount > 0 ? 'missing' : 'unindex';
  if (!u.indexed) return u.neededMissing > 0 ? 'reindex' : 'delete';
  if (u.usedCount === 0) return 'delete';
  if (u.hiddenCount > 0) return 'rewrite';
  if (u.unusedCount === 0) return 'keep';
  const share = u.unusedBytes / (u.usedBytes + u.unusedBytes);
  return share > maxUnused ? 'rewrite' : 'keep';
}

export interface PlanTotals {
  packs: Record<PackAction, number>;
  /** Objects whose index entries go (unused objects in deleted and rewritten packs). */
  objectsToFree: number;
  /** Bytes of pack files deleted minus the bytes copied into new packs (headers not counted). */
  bytesToFree: number;
  /** Bytes of live objects copied into new packs. */
  bytesToCopy: number;
}

export function decidePacks(usages: Iterable<PackUsage>, maxUnused: number): { decisions: PackDecision[]; totals: PlanTotals } {
  const decisions: PackDecision[] = [];
  const totals: PlanTotals = {
    packs: { keep: 0, delete: 0, rewrite: 0, reindex: 0, unindex: 0, missing: 0 },
    objectsToFree: 0,
    bytesToFree: 0,
    bytesToCopy: 0,
  };
  for (const usage of usages) {
    const action = decidePack(usage, maxUnused);
    decisions.push({ usage, action });
    totals.packs[action]++;
    if (action === 'delete') {
      totals.objectsToFree += usage.unusedCount;
      totals.bytesToFree += usage.size;
    } else if (action === 'rewrite') {
      totals.objectsToFree += usage.unusedCount;
      totals.bytesToFree += usage.size - usage.usedBytes;
      totals.bytesToCopy += usage.usedBytes;
    } else if (action === 'unindex') {
      totals.objectsToFree += usage.unusedCount;
    }
  }
  decisions.sort((a, b) => (a.usage.id < b.usage.id ? -1 : a.usage.id > b.usage.id ? 1 : 0));
  return { decisions, totals };
}

/** Parse `5%`, `0.5%`, `0` or `100%` into a share between 0 and 1; undefined when not one. */
export function parsePercent(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*%?$/.exec(s.trim());
  if (!m) return undefined;
  const v = Number(m[1]);
  return v >= 0 && v <= 100 ? v / 100 : undefined;
}
