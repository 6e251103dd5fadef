// Whether a file on disk can be taken to be unchanged since a snapshot from its stat alone: the
// same size and mtime as recorded, and a ctime from before the backup started. Every change of
// contents or metadata (a write, chmod, chown, an attribute, a rename into place, `touch -d` to
// put an mtime back) sets ctime to the time of the change, which nobody can set back. The
// snapshot records no ctime, so its start stands in: the record's time (taken once everything
// was written, where its duration ends too) less its duration, less a margin for file systems
// whose timestamps lag the clock by up to a scheduler tick. A snapshot given an older --time
// only makes more files look changed (they are read, or skipped); one given a later time than it
// was taken would make a changed file look unchanged: such snapshots are rare, and the margin
// does not cover them.
import type * as fs from 'node:fs';
import type { Node } from '../../model/node.js';
import type { StoredSnapshot } from '../../model/snapshot.js';

/** Timestamps of a change can lag the wall clock by a scheduler tick (1-10 ms); 50 ms is well past that. */
const MARGIN_MS = 50;

/** Nanoseconds since the epoch before which a ctime means "not changed since the snapshot". */
export function trustedBefore(snap: StoredSnapshot): bigint {
  const start = Date.parse(snap.time) - Math.max(0, snap.summary.durationMs) - MARGIN_MS;
  return BigInt(start) * 1_000_000n;
}

const mtimeNsOf = (n: Node): bigint => BigInt(n.mtime.sec) * 1_000_000_000n + BigInt(n.mtime.nsec);

/**
 * Why the entry `st` may have changed since the snapshot recorded `node`, or undefined when its
 * stat vouches that it has not. Sizes count for files only.
 */
export function stampChange(node: Node, st: fs.BigIntStats, before: bigint): string | undefined {
  if (node.type === 'file' && BigInt(node.size) !== st.size) return `its size is ${st.size} bytes, the snapshot's ${node.size}`;
  if (mtimeNsOf(node) !== st.mtimeNs) return 'its modification time differs from the snapshot';
  if (st.ctimeNs >= before) return 'it was changed after the snapshot was taken (its ctime is later)';
  return undefined;
}
