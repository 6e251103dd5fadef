// `snap mount`'s file system: every snapshot as a read-only folder, by id, date, host and tag.
//
//   snapshots/1a2b3c4d/...              each snapshot's tree (its paths from /), by short id
//   by-date/2026/03/03/07:30:12/...     the same trees by local date and time
//   latest -> snapshots/<the newest>
//   hosts/HOST/2026-03-03T07:30:12 -> ../../snapshots/1a2b3c4d
//   tags/TAG/2026-03-03T07:30:12   -> ../../snapshots/1a2b3c4d
//
// Files are read chunk by chunk through the one decode-and-verify path (repo.objects.get): a
// damaged chunk is an I/O error for that read, never wrong bytes. The repository is opened per
// stretch of requests through a lease (ui/lease.ts) and closed when idle, so a mount that stays
// up for days holds nothing against other commands. docs/mount.md.
import type { Node } from '../model/node.js';
import type { StoredSnapshot } from '../model/snapshot.js';
import type { Tree } from '../model/tree.js';
import type { Repository } from '../repo/repository.js';
import type { RepoLease } from '../ui/lease.js';
import {
  type Attr,
  attrOut,
  cString,
  dirent,
  E,
  entryOut,
  FOPEN_KEEP_CACHE,
  FuseError,
  getxattrIn,
  OP,
  openOut,
  readIn,
  type Request,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFREG,
  S_IFSOCK,
  statfsOut,
  xattrSizeOut,
} from './fuse.js';

/** How long the kernel may trust what it learned of a snapshot's contents (they never change). */
const TREE_TTL = 3600;
/** ... and of the folders listing snapshots, hosts and tags (new snapshots appear, old ones go). */
const LIST_TTL = 1;
/** Snapshot records are listed again when the last listing is older than this. */
const LIST_REFRESH_MS = 1000;
/** Decoded chunks kept for reads that continue in them (the kernel reads 128 KiB at a time). */
const CHUNK_CACHE_BYTES = 64 * 1024 * 1024;

type Kind = 'root' | 'snapshots' | 'by-date' | 'year' | 'month' | 'day' | 'hosts' | 'tags' | 'host' | 'tag' | 'link' | 'snaproot' | 'node';

interface Inode {
  nodeid: number;
  ino: number;
  kind: Kind;
  name: Buffer;
  parent: number;
  nlookup: number;
  /** A path for messages. */
  path: string;
  attr: Omit<Attr, 'ino'>;
  /** snaproot and dir nodes: the tree to list. */
  tree?: Buffer;
  node?: Node;
  /** link: where it points. */
  target?: Buffer;
  /** host or tag folder: which; year, month or day folder: its prefix of the local time. */
  key?: string;
  /** Inside a snapshot: the snapshot folder's inode number (hard links share an inode number per snapshot). */
  snapIno?: number;
}

/** What a folder lists: a name and how to make its inode. */
interface Child {
  name: Buffer;
  /** Inside a snapshot: the entry. */
  node?: Node;
  make: () => Omit<Inode, 'nodeid' | 'ino' | 'name' | 'parent' | 'nlookup' | 'path'>;
  mode: number;
}

interface FileHandle {
  node: Node;
  path: string;
  /** Where each chunk starts in the file, then the file's end (looked up on the first read). */
  starts?: Promise<number[]>;
}

/** The repository the file system reads (a small interface: ops declare what they use). */
export type MountRepo = Pick<Repository, 'listSnapshots' | 'readTree' | 'objects' | 'index'>;

export interface SnapFsOptions {
  lease: Pick<RepoLease, 'use'>;
  uid: number;
  gid: number;
  now: () => Date;
  log: (line: string) => void;
}

const two = (n: number): string => String(n).padStart(2, '0');
/** A snapshot's folder name: its time in this machine's time zone, to the second. */
export function snapshotFolderName(iso: string): string {
  const d = new Date(iso);
  const y = d.getFullYear();
  const year = y >= 0 && y <= 9999 ? String(y).padStart(4, '0') : (y < 0 ? '-' : '+') + String(Math.abs(y)).padStart(6, '0');
  return `${year}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

export interface NamedSnapshot {
  snap: StoredSnapshot;
  /** Its folder under snapshots/: the short id, longer where two share a prefix. */
  id: string;
  /** Local time to the second (YYYY-MM-DDTHH:MM:SS), with the short id appended when two share a second. */
  time: string;
}

/** Names for snapshots, oldest first. */
export function nameSnapshots(snaps: StoredSnapshot[]): NamedSnapshot[] {
  const sorted = [...snaps].sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.id < b.id ? -1 : 1));
  const ids = snaps.map((s) => s.id).sort();
  const at = new Map(ids.map((id, k) => [id, k]));
  const idName = (id: string): string => {
    // Long enough to differ from its neighbours in sorted order (8 hex digits nearly always).
    const k = at.get(id)!;
    let n = 8;
    for (const other of [ids[k - 1], ids[k + 1]]) {
      if (!other) continue;
      let common = 0;
      while (common < id.length && id[common] === other[common]) common++;
      n = Math.max(n, common + 1);
    }
    return id.slice(0, n);
  };
  const bases = sorted.map((s) => snapshotFolderName(s.time));
  const count = new Map<string, number>();
  for (const b of bases) count.set(b, (count.get(b) ?? 0) + 1);
  return sorted.map((snap, k) => {
    const id = idName(snap.id);
    return { snap, id, time: count.get(bases[k]!)! > 1 ? `${bases[k]}-${id}` : bases[k]! };
  });
}

/** A safe component for a host or tag folder: '/' and NUL cannot be in names, '.' and '..' are taken. */
function folderName(s: string): Buffer {
  const b = Buffer.from(s.replace(/[/\0]/g, '_'));
  return b.length === 0 || s === '.' || s === '..' ? Buffer.from(`_${s}`) : b;
}

function typeBits(n: Node): number {
  switch (n.type) {
    case 'file':
      return S_IFREG;
    case 'dir':
      return S_IFDIR;
    case 'symlink':
      return S_IFLNK;
    case 'fifo':
      return S_IFIFO;
    case 'socket':
      return S_IFSOCK;
    case 'chardev':
      return S_IFCHR;
    case 'blockdev':
      return S_IFBLK;
  }
}

/** A stable inode number for a name in a folder (FNV-1a, 52 bits): the same in readdir and stat. */
function inoOf(parentIno: number, name: Buffer): number {
  let h = 0xcbf29ce484222325n ^ BigInt(parentIno);
  for (const b of name) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  return Number(h & 0xfffffffffffffn) + 2; // 1 is the root's
}

/**
 * An entry's inode number: the files of one hard-link group in a snapshot share one (their
 * recorded device and inode, within that snapshot's folder); everything else by its folder and name.
 */
function inoFor(parent: Inode, name: Buffer, node?: Node): number {
  const snapIno = parent.kind === 'snaproot' ? parent.ino : parent.snapIno;
  if (node?.inode && snapIno !== undefined) return inoOf(snapIno, Buffer.from(`\0${node.inode.dev}:${node.inode.ino}`));
  return inoOf(parent.ino, name);
}

export class SnapFs {
  private readonly inodes = new Map<number, Inode>();
  private readonly byName = new Map<string, number>();
  private nextNodeId = 2;
  private readonly files = new Map<number, FileHandle>();
  /**
   * Open folder listings: the dirents of a listing folder, or a snapshot directory's tree (a view,
   * tree.ts) whose dirents are made as READDIR pages through it, so a folder of a million
   * entries costs its tree's bytes, not a million entries held at once.
   */
  private readonly dirs = new Map<number, Buffer[] | { tree: Tree; dir: Inode; head: Buffer[] }>();
  private nextFh = 1;
  private listed: { at: number; names: NamedSnapshot[] } | undefined;
  private listing: Promise<NamedSnapshot[]> | undefined;
  private readonly chunks = new Map<string, { data: Promise<Buffer>; size?: number }>();
  private chunkBytes = 0;
  private readonly sizes = new Map<string, number>();

  constructor(private readonly o: SnapFsOptions) {
    this.inodes.set(1, { nodeid: 1, ino: 1, kind: 'root', name: Buffer.alloc(0), parent: 1, nlookup: 1, path: '/', attr: this.folderAttr(o.now()) });
  }

  private folderAttr(time: Date): Omit<Attr, 'ino'> {
    const ms = time.getTime();
    return { size: 0, mtime: { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1e6 }, mode: S_IFDIR | 0o555, nlink: 2, uid: this.o.uid, gid: this.o.gid };
  }

  private linkAttr(target: Buffer, time: Date): Omit<Attr, 'ino'> {
    return { ...this.folderAttr(time), size: target.length, mode: S_IFLNK | 0o777, nlink: 1 };
  }

  private nodeAttr(n: Node): Omit<Attr, 'ino'> {
    const size = n.type === 'file' ? n.size : n.type === 'symlink' ? (n.target?.length ?? 0) : 0;
    return { size, mtime: n.mtime, mode: typeBits(n) | (n.mode & 0o7777), nlink: n.type === 'dir' ? 2 : (n.inode?.links ?? 1), uid: n.uid, gid: n.gid, rdev: n.rdev };
  }

  private async snapshots(): Promise<NamedSnapshot[]> {
    if (this.listed && Date.now() - this.listed.at < LIST_REFRESH_MS) return this.listed.names;
    this.listing ??= this.o.lease
      .use((repo) => repo.listSnapshots())
      .then((snaps) => {
        const names = nameSnapshots(snaps);
        this.listed = { at: Date.now(), names };
        return names;
      })
      .finally(() => (this.listing = undefined));
    return this.listing;
  }

  private get(nodeid: number): Inode {
    const i = this.inodes.get(nodeid);
    if (!i) throw new FuseError(E.NOENT);
    return i;
  }

  /** What folder `dir` holds. */
  private async children(dir: Inode): Promise<Child[]> {
    const folder = (name: string, kind: Kind, key?: string): Child => ({ name: folderName(name), mode: S_IFDIR, make: () => ({ kind, key, attr: this.folderAttr(this.o.now()) }) });
    const link = (name: string, to: string, time: Date): Child => {
      const target = Buffer.from(to);
      return { name: Buffer.from(name), mode: S_IFLNK, make: () => ({ kind: 'link', target, attr: this.linkAttr(target, time) }) };
    };
    const snapFolder = (name: string, snap: StoredSnapshot): Child => ({
      name: Buffer.from(name),
      mode: S_IFDIR,
      make: () => ({ kind: 'snaproot', tree: snap.tree, attr: { ...this.folderAttr(new Date(snap.time)), mode: S_IFDIR | 0o755 } }),
    });
    const links = async (keep: (s: StoredSnapshot) => boolean): Promise<Child[]> =>
      (await this.snapshots()).filter((e) => keep(e.snap)).map((e) => link(e.time, `../../snapshots/${e.id}`, new Date(e.snap.time)));
    const distinct = (xs: string[]): string[] => [...new Set(xs)].sort();
    switch (dir.kind) {
      case 'root': {
        const out = [folder('snapshots', 'snapshots'), folder('by-date', 'by-date'), folder('hosts', 'hosts'), folder('tags', 'tags')];
        const newest = (await this.snapshots()).at(-1);
        if (newest) out.push(link('latest', `snapshots/${newest.id}`, new Date(newest.snap.time)));
        return out;
      }
      case 'snapshots':
        return (await this.snapshots()).map((e) => snapFolder(e.id, e.snap));
      case 'by-date':
        return distinct((await this.snapshots()).map((e) => e.time.slice(0, 4))).map((y) => ({ ...folder(y, 'year', y) }));
      case 'year':
      case 'month': {
        const width = dir.kind === 'year' ? 7 : 10; // YYYY-MM, YYYY-MM-DD
        const keys = distinct((await this.snapshots()).filter((e) => e.time.startsWith(dir.key! + '-')).map((e) => e.time.slice(0, width)));
        return keys.map((k) => folder(k.slice(width - 2), dir.kind === 'year' ? 'month' : 'day', k));
      }
      case 'day':
        return (await this.snapshots()).filter((e) => e.time.startsWith(dir.key! + 'T')).map((e) => snapFolder(e.time.slice(11), e.snap));
      case 'hosts':
        return distinct((await this.snapshots()).map((e) => e.snap.hostname)).map((h) => folder(h, 'host', h));
      case 'tags':
        return distinct((await this.snapshots()).flatMap((e) => e.snap.tags)).map((t) => folder(t, 'tag', t));
      case 'host':
        return links((s) => s.hostname === dir.key);
      case 'tag':
        return links((s) => s.tags.includes(dir.key!));
      // A snapshot's directories are listed from their tree as READDIR pages through it, and
      // looked up by name in it (lookup): never made into a list of all their entries.
      default:
        throw new FuseError(E.NOTDIR);
    }
  }

  private fromNode(n: Node): Omit<Inode, 'nodeid' | 'ino' | 'name' | 'parent' | 'nlookup' | 'path'> {
    return { kind: 'node', node: n, tree: n.type === 'dir' ? n.tree : undefined, target: n.type === 'symlink' ? n.target : undefined, attr: this.nodeAttr(n) };
  }

  private ttl(i: Inode): number {
    return i.kind === 'node' || i.kind === 'snaproot' ? TREE_TTL : LIST_TTL;
  }

  private async lookup(parent: Inode, name: Buffer): Promise<Buffer> {
    let child: Child | undefined;
    if (parent.kind === 'snaproot' || parent.kind === 'node') {
      if (!parent.tree) throw new FuseError(E.NOTDIR);
      const n = (await this.o.lease.use((repo) => repo.readTree(parent.tree!))).find(name);
      if (n) child = { name: n.name, mode: typeBits(n), node: n, make: () => this.fromNode(n) };
    } else {
      child = (await this.children(parent)).find((c) => c.name.equals(name));
    }
    if (!child) throw new FuseError(E.NOENT);
    const key = `${parent.nodeid}/${name.toString('latin1')}`;
    let i = this.inodes.get(this.byName.get(key) ?? 0);
    const made = child.make();
    // A name in a listing folder that now means another snapshot (a forget, then a new one in the
    // same second) is a new inode; a snapshot's own contents never change.
    if (i && (i.kind !== made.kind || !sameTarget(i, made))) {
      this.byName.delete(key);
      i = undefined;
    }
    if (!i) {
      const nodeid = this.nextNodeId++;
      const path = `${parent.path === '/' ? '' : parent.path}/${name.toString()}`;
      const snapIno = parent.kind === 'snaproot' ? parent.ino : parent.snapIno;
      i = { ...made, nodeid, ino: inoFor(parent, name, made.node), name, parent: parent.nodeid, nlookup: 0, path, snapIno };
      this.inodes.set(nodeid, i);
      this.byName.set(key, nodeid);
    }
    i.nlookup++;
    // A name inside a snapshot never changes; a name in a listing folder (a snapshot's folder
    // among the others) goes when the snapshot is forgotten: the kernel keeps it for a second.
    return entryOut(i.nodeid, { ...i.attr, ino: i.ino }, this.ttl(parent), this.ttl(i));
  }

  private forget(nodeid: number, n: number): void {
    const i = this.inodes.get(nodeid);
    if (!i || nodeid === 1) return;
    i.nlookup -= n;
    if (i.nlookup > 0) return;
    this.inodes.delete(nodeid);
    const key = `${i.parent}/${i.name.toString('latin1')}`;
    if (this.byName.get(key) === nodeid) this.byName.delete(key);
  }

  private async chunkSizes(h: FileHandle): Promise<number[]> {
    h.starts ??= this.o.lease.use(async (repo) => {
      const ids = h.node.chunks ?? [];
      const starts: number[] = [];
      let at = 0;
      for (const id of ids) {
        starts.push(at);
        const hex = id.toString('hex');
        let size = this.sizes.get(hex);
        if (size === undefined) {
          const loc = await repo.index.lookup(id);
          if (!loc) throw new Error(`${h.path}: chunk ${hex.slice(0, 16)} is not in the repository index`);
          size = loc.rawLength;
          if (this.sizes.size > 1_000_000) this.sizes.clear();
          this.sizes.set(hex, size);
        }
        at += size;
      }
      starts.push(at);
      return starts;
    });
    return h.starts;
  }

  private chunk(id: Buffer): Promise<Buffer> {
    const hex = id.toString('hex');
    const hit = this.chunks.get(hex);
    if (hit) {
      this.chunks.delete(hex); // most recently used last
      this.chunks.set(hex, hit);
      return hit.data;
    }
    const entry: { data: Promise<Buffer>; size?: number } = { data: this.o.lease.use((repo) => repo.objects.get(id, 'blob')) };
    this.chunks.set(hex, entry);
    entry.data.then(
      (b) => {
        if (this.chunks.get(hex) !== entry) return;
        entry.size = b.length;
        this.chunkBytes += b.length;
        for (const [k, e] of this.chunks) {
          if (this.chunkBytes <= CHUNK_CACHE_BYTES) break;
          if (k === hex || e.size === undefined) continue;
          this.chunks.delete(k);
          this.chunkBytes -= e.size;
        }
      },
      () => {
        if (this.chunks.get(hex) === entry) this.chunks.delete(hex);
      },
    );
    return entry.data;
  }

  private async read(h: FileHandle, offset: number, size: number): Promise<Buffer[]> {
    const end = Math.min(h.node.size, offset + size);
    if (offset >= end) return [];
    const starts = await this.chunkSizes(h);
    if (starts.at(-1) !== h.node.size) throw new Error(`${h.path}: its chunks hold ${starts.at(-1)} bytes, the snapshot records ${h.node.size}`);
    const ids = h.node.chunks ?? [];
    let lo = 0;
    let hi = ids.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    const parts: Buffer[] = [];
    for (let c = lo, at = offset; at < end && c < ids.length; c++) {
      const data = await this.chunk(ids[c]!);
      if (data.length !== starts[c + 1]! - starts[c]!) throw new Error(`${h.path}: chunk ${c} holds ${data.length} bytes, the index says ${starts[c + 1]! - starts[c]!}`);
      const from = at - starts[c]!;
      const to = Math.min(data.length, end - starts[c]!);
      parts.push(data.subarray(from, to));
      at += to - from;
    }
    return parts;
  }

  /** Answer one request (fuse.ts calls this; errors become errno replies). */
  async handle(req: Request): Promise<Buffer | Buffer[] | undefined> {
    switch (req.opcode) {
      case OP.LOOKUP:
        return this.lookup(this.get(req.nodeid), cString(req.body));
      case OP.FORGET:
        this.forget(req.nodeid, Number(req.body.readBigUInt64LE(0)));
        return undefined;
      case OP.BATCH_FORGET: {
        const count = req.body.readUInt32LE(0);
        for (let k = 0; k < count; k++) this.forget(Number(req.body.readBigUInt64LE(8 + k * 16)), Number(req.body.readBigUInt64LE(16 + k * 16)));
        return undefined;
      }
      case OP.GETATTR: {
        const i = this.get(req.nodeid);
        return attrOut({ ...i.attr, ino: i.ino }, this.ttl(i));
      }
      case OP.READLINK: {
        const i = this.get(req.nodeid);
        if (!i.target) throw new FuseError(E.INVAL);
        return i.target;
      }
      case OP.OPEN: {
        const i = this.get(req.nodeid);
        if (i.attr.mode >> 12 !== S_IFREG >> 12 || !i.node) throw new FuseError(i.kind === 'node' ? E.INVAL : E.ISDIR);
        if ((req.body.readUInt32LE(0) & 3) !== 0) throw new FuseError(E.ROFS); // O_WRONLY, O_RDWR
        const fh = this.nextFh++;
        this.files.set(fh, { node: i.node, path: i.path });
        return openOut(fh, FOPEN_KEEP_CACHE);
      }
      case OP.READ: {
        const { fh, offset, size } = readIn(req.body);
        const h = this.files.get(fh);
        if (!h) throw new FuseError(E.INVAL);
        try {
          return await this.read(h, offset, size);
        } catch (e) {
          this.o.log(`${h.path}: ${(e as Error).message}`);
          throw new FuseError(E.IO);
        }
      }
      case OP.RELEASE:
        this.files.delete(readIn(req.body).fh);
        return undefined;
      case OP.OPENDIR: {
        const i = this.get(req.nodeid);
        if (i.attr.mode >> 12 !== S_IFDIR >> 12) throw new FuseError(E.NOTDIR);
        const parent = this.inodes.get(i.parent) ?? i;
        // The listing is taken once per open, so paging through it with offsets stays consistent.
        const head = [dirent(i.ino, 1, S_IFDIR, Buffer.from('.')), dirent(parent.ino, 2, S_IFDIR, Buffer.from('..'))];
        const fh = this.nextFh++;
        if ((i.kind === 'snaproot' || i.kind === 'node') && i.tree) {
          this.dirs.set(fh, { tree: await this.o.lease.use((repo) => repo.readTree(i.tree!)), dir: i, head });
          return openOut(fh, 0);
        }
        const list = (await this.children(i)).map((c, k) => ({ ino: inoFor(i, c.name, c.node), mode: c.mode, name: c.name, k }));
        this.dirs.set(fh, [...head, ...list.map((c) => dirent(c.ino, c.k + 3, c.mode, c.name))]);
        return openOut(fh, 0);
      }
      case OP.READDIR: {
        const { fh, offset, size } = readIn(req.body);
        const listing = this.dirs.get(fh);
        if (!listing) throw new FuseError(E.INVAL);
        const count = Array.isArray(listing) ? listing.length : listing.head.length + listing.tree.length;
        const at = (k: number): Buffer => {
          if (Array.isArray(listing)) return listing[k]!;
          if (k < listing.head.length) return listing.head[k]!;
          const n = listing.tree.at(k - listing.head.length);
          return dirent(inoFor(listing.dir, n.name, n), k + 1, typeBits(n), n.name);
        };
        const out: Buffer[] = [];
        let used = 0;
        for (let k = offset; k < count; k++) {
          const e = at(k);
          if (used + e.length > size) break;
          out.push(e);
          used += e.length;
        }
        return out;
      }
      case OP.RELEASEDIR:
        this.dirs.delete(readIn(req.body).fh);
        return undefined;
      case OP.GETXATTR: {
        const i = this.get(req.nodeid);
        const { size, name } = getxattrIn(req.body);
        const x = i.node?.xattrs?.find((a) => a.name.equals(name));
        if (!x) throw new FuseError(E.NODATA);
        if (size === 0) return xattrSizeOut(x.value.length);
        if (size < x.value.length) throw new FuseError(E.RANGE);
        return x.value;
      }
      case OP.LISTXATTR: {
        const i = this.get(req.nodeid);
        const size = req.body.readUInt32LE(0);
        const list = Buffer.concat((i.node?.xattrs ?? []).flatMap((a) => [a.name, Buffer.from([0])]));
        if (size === 0) return xattrSizeOut(list.length);
        if (size < list.length) throw new FuseError(E.RANGE);
        return list;
      }
      case OP.STATFS:
        return statfsOut(0, this.inodes.size);
      case OP.FLUSH:
      case OP.INTERRUPT:
        return undefined;
      default:
        // Writes cannot arrive on a read-only mount; ACCESS is left to the kernel (default_permissions).
        throw new FuseError(E.NOSYS);
    }
  }
}

function sameTarget(i: Inode, made: { tree?: Buffer; target?: Buffer; key?: string }): boolean {
  const eq = (a?: Buffer, b?: Buffer): boolean => (a === undefined ? b === undefined : b !== undefined && a.equals(b));
  return eq(i.tree, made.tree) && eq(i.target, made.target) && i.key === made.key;
}
