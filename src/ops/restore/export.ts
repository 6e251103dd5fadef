// `snap export`: stream a snapshot, or some of its paths, into a tar, tar.gz or zip archive.
// Memory is bounded whatever the snapshot's size: the walk holds only the trees on the current
// path, and file data goes chunk by chunk into the writer, which waits for the output to drain.
// The caller owns the output stream: on a rejection the archive is incomplete and must be removed.
import { displayName } from '../../core/bytes.js';
import type { ProgressCounters, ProgressSink } from '../../core/progress.js';
import type { StoredSnapshot } from '../../model/snapshot.js';
import { createArchiveWriter, type ArchiveFormat } from './export/archive.js';
import { ArchiveItems, type WalkRepo } from './export/walk.js';
import { type RestoreItem, type RestoreOutput, RestoreWalk, restoreWith } from './output.js';
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
  let bytes = 0;
  const progress: ProgressCounters = { files: 0, dirs: 0, bytes: 0 };
  const items = new ArchiveItems(repo, o.selection, (n) => {
    bytes += n;
    progress.bytes = bytes;
    o.sink.progress?.(progress);
  });
  const writer = createArchiveWriter(o.format, out, { gzipLevel: o.gzipLevel });
  // The archive as a restore output (output.ts): each entry the restore walk yields, written in turn.
  const add = async (it: RestoreItem<Buffer>): Promise<void> => {
    const item = await items.item(it);
    if (!item) return;
    progress.current = displayName(item.entry.path);
    o.sink.progress?.(progress);
    await writer.add(item.entry);
    progress.files = c.files + c.links;
    progress.dirs = c.dirs;
  };
  const output: RestoreOutput<Buffer> = {
    read: (id, at) => items.read(id, at),
    dir: async (it) => {
      await add(it);
      return true;
    },
    entry: add,
  };
  const walk = new RestoreWalk<Buffer>(repo, snap.tree, items.options, output);
  const c = walk.counts;
  await restoreWith(walk, output);
  await writer.finish();
  return { entries: c.dirs + c.files + c.links + c.symlinks + c.special, files: c.files, dirs: c.dirs, symlinks: c.symlinks, hardlinks: c.links, special: c.special, sockets: c.sockets, bytes };
}
