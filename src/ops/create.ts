// `snap create`: walk the sources, store new chunks and trees, write a snapshot record.
// One file is read, chunked and hashed at a time on the main thread with synchronous reads (the
// fastest way to read from Node here); compression and pack writes run concurrently on the thread
// pool, bounded by the object store. Unchanged files are recognised from the files cache without
// being read. Per-file problems are warnings: the snapshot is still written.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SnapError, errnoCode, fromSystemError } from '../core/errors.js';
import { displayName, joinPath } from '../core/bytes.js';
import { sha256 } from '../core/ids.js';
import type { HostInfo } from '../core/host.js';
import type { ProgressCounters, ProgressSink } from '../core/progress.js';
import { compileExcludes, type ExcludeRule, isExcluded } from '../model/exclude.js';
import type { Node } from '../model/node.js';
import type { SnapshotSummary, StoredSnapshot } from '../model/snapshot.js';
import { encodeTree } from '../model/tree.js';
import { FileChunker } from '../store/file-chunker.js';
import { type CachedFile, type FileStamp, sameStamp } from '../index/files-cache.js';
import type { Repository } from '../repo/repository.js';
import { baseNode } from './node-meta.js';
import { OwnerNames } from './owners.js';
import { buildTrie, normalizeSources, type SourceTrie } from './sources.js';

export interface CreateOptions {
  paths: string[];
  cwd: string;
  tags?: string[];
  excludes?: string[];
  time?: Date;
  oneFileSystem?: boolean;
  host: HostInfo;
  program: string;
  sink: ProgressSink;
}

export interface CreateResult {
  snapshot: StoredSnapshot;
  warnings: number;
}

/** Files-cache updates wait until the chunks they name are durable; flush them in batches. */
const CACHE_BATCH = 20_000;

/** The files cache of the directory being walked: what it held, and what this backup learned. */
interface DirCache {
  old: Map<string, CachedFile>;
  updates: Map<string, CachedFile>;
}

interface PendingDir {
  dir: Buffer;
  files: [Buffer, CachedFile][];
  stale: Buffer[];
}

export async function createSnapshot(repo: Repository, o: CreateOptions): Promise<CreateResult> {
  const started = Date.now();
  if (o.paths.length === 0) throw new SnapError('SNAP_USAGE', 'name at least one path to back up');
  const { sources, dropped } = normalizeSources(o.paths, o.cwd);
  for (const d of dropped) o.sink.info?.(`${d} is inside another source path; it is backed up once`);
  for (const s of sources) {
    try {
      fs.lstatSync(s);
    } catch (e) {
      throw fromSystemError(e, `source ${s}`);
    }
  }
  const a = new Archiver(repo, o);
  const rootTree = await a.dirOfTrie('/', buildTrie(sources));
  const snapshots = await repo.listSnapshots();
  const parent = [...snapshots].reverse().find((s) => s.hostname === o.host.hostname && s.paths.join('\0') === sources.join('\0'));
  const summary: SnapshotSummary = {
    ...a.summary,
    dataAdded: 0,
    objectsAdded: 0,
    durationMs: 0,
  };
  const draft = {
    time: (o.time ?? repo.clock.now()).toISOString(),
    hostname: o.host.hostname,
    username: o.host.username,
    paths: sources,
    tags: [...new Set(o.tags ?? [])].sort(),
    tree: rootTree,
    program: o.program,
    excludes: o.excludes ?? [],
    summary,
  };
  // Flush before reading the stats, so they count every object this backup added.
  await repo.objects.flush();
  summary.dataAdded = repo.objects.stats.bytesAdded;
  summary.objectsAdded = repo.objects.stats.objectsAdded;
  summary.durationMs = Date.now() - started;
  const snapshot = await repo.saveSnapshot(parent ? { ...draft, parent: Buffer.from(parent.id, 'hex') } : draft);
  await a.flushCache();
  return { snapshot, warnings: a.summary.warnings };
}

class Archiver {
  readonly summary = {
    filesNew: 0, filesChanged: 0, filesUnchanged: 0, dirsNew: 0, dirsChanged: 0, dirsUnchanged: 0,
    bytesRead: 0, totalBytes: 0, totalFiles: 0, warnings: 0,
  };
  private readonly rules: ExcludeRule[];
  private readonly owners = new OwnerNames();
  private readonly progress: ProgressCounters = { files: 0, dirs: 0, bytes: 0 };
  private readonly repoId: { dev: bigint; ino: bigint } | undefined;
  private pendingCache: PendingDir[] = [];
  private pendingFiles = 0;
  private chunker: FileChunker;

  constructor(private readonly repo: Repository, private readonly o: CreateOptions) {
    this.rules = compileExcludes(o.excludes ?? []);
    const st = fs.statSync(repo.root, { bigint: true });
    this.repoId = { dev: st.dev, ino: st.ino };
    this.chunker = new FileChunker(-1, repo.gear);
  }

  private warn(code: string, p: Buffer | string, message: string): void {
    this.summary.warnings++;
    const shown = typeof p === 'string' ? p : displayName(p);
    this.o.sink.warn?.({ code, path: shown, message: `${shown}: ${message}` });
  }

  /** The tree of a directory on the way to the sources: only the children that lead to one. */
  async dirOfTrie(abs: string, trie: SourceTrie): Promise<Buffer> {
    if (trie.source) return this.dirTree(Buffer.from(abs), '', await this.lstat(Buffer.from(abs)));
    const nodes: Node[] = [];
    const dirBuf = Buffer.from(abs);
    for (const name of [...trie.children.keys()].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))) {
      const child = trie.children.get(name)!;
      const nameBuf = Buffer.from(name);
      const full = joinPath(dirBuf, nameBuf);
      if (child.source) {
        const node = await this.entry(dirBuf, nameBuf, '', undefined);
        if (node) nodes.push(node);
        continue;
      }
      const st = await this.lstat(full);
      if (!st) continue;
      const node = baseNode(nameBuf, st, this.owners);
      node.tree = await this.dirOfTrie(path.posix.join(abs, name), child);
      nodes.push(node);
    }
    return this.storeTree(nodes);
  }

  private async lstat(p: Buffer): Promise<fs.BigIntStats | undefined> {
    try {
      return fs.lstatSync(p, { bigint: true });
    } catch (e) {
      this.warn(errnoCode(e) ?? 'SNAP_IO', p, `cannot stat: ${(e as Error).message}`);
      return undefined;
    }
  }

  private async storeTree(nodes: Node[]): Promise<Buffer> {
    const bytes = encodeTree(nodes);
    const r = await this.repo.objects.add('tree', bytes);
    return r.id;
  }

  /** Back up one directory entry; undefined when it is excluded or unreadable. */
  private async entry(dir: Buffer, name: Buffer, rel: string, cache: DirCache | undefined, rootDev?: bigint): Promise<Node | undefined> {
    const full = joinPath(dir, name);
    const st = await this.lstat(full);
    if (!st) return undefined;
    if (rel !== '' && isExcluded(this.rules, rel, st.isDirectory())) return undefined;
    const node = baseNode(name, st, this.owners);
    switch (node.type) {
      case 'dir': {
        if (this.repoId && st.dev === this.repoId.dev && st.ino === this.repoId.ino) {
          this.o.sink.info?.(`${displayName(full)} is the repository itself; it is not backed up`);
          return undefined;
        }
        if (this.o.oneFileSystem && rootDev !== undefined && st.dev !== rootDev) {
          node.tree = await this.storeTree([]);
          return node;
        }
        node.tree = await this.dirTree(full, rel, st);
        return node;
      }
      case 'file':
        return this.file(full, name, node, st, cache);
      case 'symlink':
        try {
          node.target = fs.readlinkSync(full, { encoding: 'buffer' });
        } catch (e) {
          this.warn(errnoCode(e) ?? 'SNAP_IO', full, `cannot read symlink: ${(e as Error).message}`);
          return undefined;
        }
        return node;
      case 'chardev':
      case 'blockdev':
        node.rdev = Number(st.rdev);
        return node;
      default:
        return node; // fifo, socket: recorded by type, never opened
    }
  }

  private async dirTree(full: Buffer, rel: string, st: fs.BigIntStats | undefined): Promise<Buffer> {
    let names: Buffer[];
    try {
      names = fs.readdirSync(full, { encoding: 'buffer' });
    } catch (e) {
      this.warn(errnoCode(e) ?? 'SNAP_IO', full, `cannot list directory: ${(e as Error).message}`);
      return this.storeTree([]);
    }
    names.sort(Buffer.compare);
    const cache: DirCache = { old: await this.repo.index.filesInDir(full), updates: new Map() };
    const seen = new Set<string>();
    const updates: [Buffer, CachedFile][] = [];
    const nodes: Node[] = [];
    const rootDev = st?.dev;
    for (const name of names) {
      const childRel = rel === '' ? name.toString('latin1') : `${rel}/${name.toString('latin1')}`;
      const node = await this.entry(full, name, childRel, cache, rootDev);
      if (!node) continue;
      nodes.push(node);
      if (node.type === 'file') {
        const key = name.toString('latin1');
        seen.add(key);
        const upd = cache.updates.get(key);
        if (upd) updates.push([name, upd]);
      }
    }
    const stale = [...cache.old.keys()].filter((k) => !seen.has(k)).map((k) => Buffer.from(k, 'latin1'));
    this.progress.dirs++;
    const bytes = encodeTree(nodes);
    const r = await this.repo.objects.add('tree', bytes);
    if (!r.added) this.summary.dirsUnchanged++;
    else if (cache.old.size > 0) this.summary.dirsChanged++;
    else this.summary.dirsNew++;
    if (updates.length > 0 || stale.length > 0) {
      this.pendingCache.push({ dir: full, files: updates, stale });
      this.pendingFiles += updates.length + stale.length;
      if (this.pendingFiles >= CACHE_BATCH) await this.flushCache();
    }
    return r.id;
  }

  private async file(full: Buffer, name: Buffer, node: Node, st: fs.BigIntStats, cache: DirCache | undefined): Promise<Node | undefined> {
    const stamp: FileStamp = { size: Number(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino, dev: st.dev };
    if (Number(st.nlink) > 1) node.inode = { dev: Number(st.dev), ino: Number(st.ino), links: Number(st.nlink) };
    const key = name.toString('latin1');
    const cached = cache?.old.get(key);
    this.summary.totalFiles++;
    this.progress.files++;
    if (cached && sameStamp(cached, stamp)) {
      node.size = stamp.size;
      node.chunks = cached.chunks;
      this.summary.filesUnchanged++;
      this.summary.totalBytes += stamp.size;
      this.progress.bytes += stamp.size;
      this.report(full);
      return node;
    }
    const read = await this.readFile(full, st);
    if (!read) return undefined;
    node.size = read.size;
    node.chunks = read.chunks;
    if (cached) this.summary.filesChanged++;
    else this.summary.filesNew++;
    this.summary.totalBytes += read.size;
    if (read.stable) cache?.updates.set(key, { ...stamp, chunks: read.chunks });
    this.report(full);
    return node;
  }

  private report(full: Buffer): void {
    this.progress.current = displayName(full);
    this.o.sink.progress?.(this.progress);
  }

  private async readFile(full: Buffer, before: fs.BigIntStats): Promise<{ size: number; chunks: Buffer[]; stable: boolean } | undefined> {
    let fd: number;
    try {
      fd = fs.openSync(full, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch (e) {
      this.warn(errnoCode(e) ?? 'SNAP_IO', full, `cannot read: ${(e as Error).message}`);
      return undefined;
    }
    try {
      const opened = fs.fstatSync(fd, { bigint: true });
      if (!opened.isFile() || opened.ino !== before.ino) {
        this.warn('SNAP_CHANGED', full, 'was replaced while being backed up; skipped');
        return undefined;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      this.chunker.reset(fd, Number(opened.size));
      for (let c = this.chunker.next(); c; c = this.chunker.next()) {
        size += c.length;
        this.progress.bytes += c.length;
        this.summary.bytesRead += c.length;
        const id = sha256(c);
        chunks.push(id);
        await this.repo.objects.add('blob', c, id);
      }
      const after = fs.fstatSync(fd, { bigint: true });
      const stable = after.size === before.size && after.mtimeNs === before.mtimeNs && after.ctimeNs === before.ctimeNs && BigInt(size) === after.size;
      if (!stable) this.warn('SNAP_CHANGED', full, 'changed while it was being read; the snapshot holds the bytes as read');
      return { size, chunks, stable };
    } catch (e) {
      // Source reads fail with plain system errors; a SnapError comes from the repository side
      // (a pack write failing with EIO, the index on a full disk) and is fatal, never a file warning.
      if (e instanceof SnapError) throw e;
      this.warn(errnoCode(e) ?? 'SNAP_IO', full, `read failed: ${(e as Error).message}`);
      return undefined;
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Write buffered files-cache updates once the chunks they name are durable and indexed. */
  async flushCache(): Promise<void> {
    if (this.pendingCache.length === 0) return;
    await this.repo.objects.flush();
    for (const p of this.pendingCache) await this.repo.index.putFilesInDir(p.dir, p.files, p.stale);
    this.pendingCache = [];
    this.pendingFiles = 0;
  }
}
