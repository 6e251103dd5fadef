// Snapshot references: a full id, a unique id prefix, `latest`, or (through `parseWhen`) a date
// meaning the newest snapshot at or before it. Filters narrow the candidates first.
import { SnapError } from '../../core/errors.js';
import { shortId } from '../../core/ids.js';
import { displayPath } from '../../core/bytes.js';

/** The shortest id prefix taken as one: shorter ones match too much to mean anything. */
export const MIN_PREFIX = 4;
import type { StoredSnapshot } from '../../model/snapshot.js';

export interface SnapshotFilter {
  host?: string[];
  tag?: string[];
  path?: string[];
}

/** A source path as records hold it: no trailing slash (`--path /home/ann/` means /home/ann). */
function sourcePath(p: string): string {
  const s = p.replace(/\/+$/, '');
  return s === '' && p.startsWith('/') ? '/' : s;
}

export function filterSnapshots(snaps: StoredSnapshot[], f: SnapshotFilter): StoredSnapshot[] {
  const paths = f.path?.map(sourcePath);
  return snaps.filter(
    (s) =>
      (!f.host?.length || f.host.includes(s.hostname)) &&
      (!f.tag?.length || f.tag.every((t) => s.tags.includes(t))) &&
      (!paths?.length || paths.every((p) => s.paths.includes(p))),
  );
}

export type WhenParser = (text: string, now: Date) => Date | undefined;

/** Resolve one reference among snapshots (oldest first). A malformed reference is a usage error, checked first. */
export function resolveRef(snaps: StoredSnapshot[], ref: string, now: Date, parseWhen?: WhenParser): StoredSnapshot {
  const lower = ref.toLowerCase();
  if (/^[0-9a-f]{1,3}$/.test(lower)) {
    throw new SnapError('SNAP_USAGE', `snapshot reference '${ref}' is too short: an id prefix needs at least ${MIN_PREFIX} hex digits`);
  }
  const hexLike = /^[0-9a-f]{4,64}$/.test(lower);
  // A hex-like reference is an id prefix first; anything else must be `latest` or a valid date.
  const early = ref === 'latest' || hexLike ? undefined : parseWhen?.(ref, now);
  if (snaps.length === 0) throw new SnapError('SNAP_NOT_FOUND', 'the repository has no snapshots (matching the filters)');
  if (ref === 'latest') return snaps[snaps.length - 1]!;
  if (hexLike) {
    const hits = snaps.filter((s) => s.id.startsWith(lower));
    if (hits.length === 1) return hits[0]!;
    if (hits.length > 1) {
      const list = hits.slice(0, 10).map((s) => `  ${shortId(s.id)}  ${s.time}  ${s.hostname}  ${s.paths.map(displayPath).join(' ')}`).join('\n');
      throw new SnapError('SNAP_AMBIGUOUS', `snapshot reference '${ref}' matches ${hits.length} snapshots:\n${list}`);
    }
  }
  const when = hexLike ? parseWhen?.(ref, now) : early;
  if (when) {
    let best: StoredSnapshot | undefined;
    for (const s of snaps) if (Date.parse(s.time) <= when.getTime()) best = s;
    if (!best) {
      const first = snaps[0]!;
      throw new SnapError('SNAP_NOT_FOUND', `no snapshot at or before ${when.toISOString()}; the earliest is ${shortId(first.id)} from ${first.time}`);
    }
    return best;
  }
  const recent = snaps.slice(-5).map((s) => `  ${shortId(s.id)}  ${s.time}`).join('\n');
  throw new SnapError('SNAP_NOT_FOUND', `no snapshot matches '${ref}'; the most recent are:\n${recent}\n(use an id prefix, 'latest' or a date)`);
}
