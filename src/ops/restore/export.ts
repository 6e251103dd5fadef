// `snap export`: stream a snapshot, or some of its paths, into a tar, tar.gz or zip archive.
// Memory is bounded whatever the snapshot's size: the walk holds only the trees on the current
// path, and file data goes chunk by chunk into the writer, which waits for the output to drain.
// The caller owns the output stream: on a rejection the archive is incomplete and must be removed.
import { displayName } from '../../core/bytes.js';
import type { ProgressCounters, ProgressSink } from '../../core/progress.js';
import type { StoredSnapshot } from '../../model/snapshot.js';
import { createArchiveWriter, type ArchiveFormat } from './export/archive.js';
import { SnapshotWalker, type WalkRepo } from './export/walk.js';
import type { PathSelection } from '../tree/selection.js';

export { formatFromName, type ArchiveFormat } from './export/archive.js';
export { verifyArchive, type VerifyResult } from './export/verify.js';

export interface ExportOptions {
  format: ArchiveFormat;
  /** The paths to export (PathSelection.resolve); undefined exports everything. */
  selection?: PathSelection;
  sink: ProgressSink;
  /** Deflate level of tar.gz and zip members (default 6). */
  gzipLevel?: number;
}

export interface ExportResult {
  entries: number;
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  /** FIFOs and devices. */
  special: number;
  /** Sockets are not archived; they are counted here. */
  sockets: number;
  /** File data bytes written (hard links in zip count again: zip stores a copy). */
  bytes: number;
}

export async function exportSnapshot(repo: WalkRepo, snap: StoredSnapshot, out: NodeJS.WritableStream, o: ExportOptions): Promise<ExportResult> {
  const r: ExportResult = { entries: 0, files: 0, dirs: 0, symlinks: 0, hardlinks: 0, special: 0, sockets: 0, bytes: 0 };
  const progress: ProgressCounters = { files: 0, dirs: 0, bytes: 0 };
  const walker = new SnapshotWalker(repo, o.selection, (n) => {
    r.bytes += n;
    progress.bytes = r.bytes;
    o.sink.progress?.(progress);
  });
  const writer = createArchiveWriter(o.format, out, { gzipLevel: o.gzipLevel });
  for await (const { entry } of walker.entries(snap.tree)) {
    progress.current = displayName(entry.path);
    o.sink.progress?.(progress);
    await writer.add(entry);
    r.entries++;
    if (entry.type === 'file') r.files++;
    else if (entry.type === 'dir') r.dirs++;
    else if (entry.type === 'symlink') r.symlinks++;
    else if (entry.type === 'hardlink') r.hardlinks++;
    else r.special++;
    progress.files = r.files + r.hardlinks;
    progress.dirs = r.dirs;
  }
  await writer.finish();
  r.sockets = walker.sockets;
  return r;
}
