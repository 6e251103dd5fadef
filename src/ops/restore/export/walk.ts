// The entries of an export, in archive order: the restore walk (../output.ts: depth first, in name
// order, holding only the trees on the current path), each entry as the archive holds it. File data
// is read lazily, chunk by chunk, when the writer asks for it. Export and --verify walk the same
// way, so the verifier can compare the archive with the snapshot entry by entry, in step.
import { SnapError, isSnapError } from '../../../core/errors.js';
import { displayName } from '../../../core/bytes.js';
import type { Node } from '../../../model/node.js';
import type { Tree } from '../../../model/tree.js';
import { splitDev } from '../../fs/special-files.js';
import type { ArchiveEntry } from './archive.js';
import { type RestoreItem, type RestoreOutput, RestoreWalk, type RestoreWalkOptions } from '../output.js';
import type { PathSelection } from '../../tree/selection.js';

export interface WalkItem {
  entry: ArchiveEntry;
  /** The snapshot entry; for files and hard links it names the content chunks. */
  node: Node;
}

/** What the walk needs from a repository. */
export interface WalkRepo {
  readTree(id: Buffer): Promise<Tree>;
  objects: { get(id: Buffer, type: 'blob'): Promise<Buffer> };
}

/**
 * Chunks fetched ahead of the one being written, so reading a pack overlaps compression and output.
 * Measured (zstd repository, tar to a pipe): 1 GiB of random data from a cold cache took 3.5-3.8 s
 * with 0, 2.9-3.5 s with 1, 2.7-3.6 s with 2; peak RSS exporting 2 GiB of zeros (8 MiB chunks)
 * was 116, 132 and 156 MB. One is most of the gain for little memory.
 */
const READ_AHEAD = 1;

/**
 * The archive's side of the restore walk (../output.ts): the entry to write for each item the walk
 * yields, a hard link to the first archived name of an inode, and file data read as the writer asks.
 */
export class ArchiveItems implements Pick<RestoreOutput<Buffer>, 'read'> {
  constructor(
    private readonly repo: WalkRepo,
    private readonly selection: PathSelection | undefined,
    /** Called with the byte count of each chunk as it is read. */
    private readonly onData: (n: number) => void = () => {},
  ) {}

  /** The walk's options: archive paths are relative (no leading `/`). */
  get options(): RestoreWalkOptions {
    return { selection: this.selection };
  }

  /** The entries to archive, in order, pulled (export --verify reads the archive in step). */
  async *entries(root: Buffer): AsyncGenerator<WalkItem> {
    for await (const it of new RestoreWalk<Buffer>(this.repo, root, this.options, this).entries()) {
      const item = await this.item(it);
      if (item) yield item;
    }
  }

  /** Damage in a directory listing stops the export. */
  async read(tree: Buffer, dir: Buffer): Promise<Tree> {
    try {
      return await this.repo.readTree(tree);
    } catch (e) {
      throw damaged(e, dir.length === 0 ? '/' : `/${displayName(dir)}/`, 'directory listing');
    }
  }

  /** What to archive for one entry of the walk; undefined for a socket (archives cannot hold one). */
  async item({ node, path, link }: RestoreItem<Buffer>): Promise<WalkItem | undefined> {
    if (node.type === 'socket') return undefined;
    const entry = this.entry(node, path);
    if (link?.first) link.register(path);
    else if (link?.same) {
      // tar stores a link to the first path; zip has no links and stores the data again.
      const first = await link.group;
      if (first) {
        entry.type = 'hardlink';
        entry.linkTarget = first;
      }
    }
    return { entry, node };
  }

  private entry(node: Node, path: Buffer): ArchiveEntry {
    const e: ArchiveEntry = {
      path,
      type: 'file',
      mode: node.mode,
      uid: node.uid,
      gid: node.gid,
      uname: node.user,
      gname: node.group,
      mtime: node.mtime,
      size: 0,
    };
    switch (node.type) {
      case 'file': {
        e.size = node.size;
        e.data = () => this.data(node, path);
        return e;
      }
      case 'symlink':
        return { ...e, type: 'symlink', linkTarget: node.target ?? Buffer.alloc(0) };
      case 'chardev':
      case 'blockdev': {
        const { major, minor } = splitDev(node.rdev ?? 0);
        return { ...e, type: node.type, devMajor: major, devMinor: minor };
      }
      case 'dir':
      case 'fifo':
        return { ...e, type: node.type };
      case 'socket':
        throw new SnapError('SNAP_INTERNAL', 'sockets are not exported');
    }
  }

  /** A file's bytes, each chunk verified against its id; damage stops the export. */
  private async *data(node: Node, path: Buffer): AsyncGenerator<Buffer> {
    const ids = node.chunks ?? [];
    const ahead: Promise<Buffer>[] = [];
    const fetch = (i: number): void => {
      const id = ids[i];
      if (id === undefined) return;
      const p = this.repo.objects.get(id, 'blob');
      p.catch(() => {}); // awaited below in order; this only keeps an early rejection from being "unhandled"
      ahead.push(p);
    };
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      // Keep the chunk being read plus READ_AHEAD more in flight.
      while (ahead.length <= READ_AHEAD && i + ahead.length < ids.length) fetch(i + ahead.length);
      let chunk: Buffer;
      try {
        chunk = await ahead.shift()!;
      } catch (e) {
        throw damaged(e, `/${displayName(path)}`, 'file data');
      }
      total += chunk.length;
      if (total > node.size) break;
      this.onData(chunk.length);
      yield chunk;
    }
    if (total !== node.size) {
      throw new SnapError('SNAP_CORRUPT', `/${displayName(path)}: its chunks hold ${total > node.size ? 'more' : 'fewer'} bytes than its recorded size ${node.size}; the export was stopped`);
    }
  }
}

/** Damaged repository data fails the export: an archive silently missing data is worse than none. */
function damaged(e: unknown, what: string, part: string): unknown {
  if (isSnapError(e, 'SNAP_CORRUPT') || isSnapError(e, 'SNAP_MISSING_OBJECT')) {
    return new SnapError(e.code, `${what}: the ${part} in the repository is damaged, so the export was stopped (${e.message})`, { cause: e });
  }
  return e;
}
