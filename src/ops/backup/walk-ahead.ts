// The sources' folders listed, and their entries' lstat taken, while the repository is being opened.
// `snap create` on an encrypted repository waits about 0.4 s for its key (scrypt, on libuv's thread
// pool) with this thread idle, and a backup in which little has changed is mostly its walk: about
// 0.6 s of lstat and readdir for the bench corpus's 49,000 entries. Walked ahead meanwhile, the
// backup's walk (create.ts, walkDir) takes each folder from here as it was listed instead of asking
// the disk again; any folder not here it reads itself. docs/performance.md, "A backup where little changed".
//
// Nothing here decides anything. What the backup leaves out it decides again on the same stat (one
// LeaveOut rule for both); an entry whose lstat failed here, or a folder that could not be listed,
// is asked for again by the backup, which says what failed. The backup counts as started when this
// walk did (CreateOptions.ahead): its record's time less its duration is still before anything was
// looked at, which the files cache's trust in old entries relies on (live-stamp.ts). Nothing is
// opened but folders and, with --exclude-caches, CACHEDIR.TAG files; folders a backup leaves out
// (patterns, tags, other file systems with --one-file-system) are not entered. Memory: at most
// AHEAD_ENTRIES entries, about 200 bytes each (a name and ten 64-bit fields), each folder dropped
// once taken.
import * as fs from 'node:fs';
import { fsEncode, joinPath } from '../../core/bytes.js';
import { type EntryStat, LEAN_FIELDS as FIELDS, LeanStat } from '../fs/node-meta.js';
import { normalizeSources } from '../fs/sources.js';
import { LeaveOut, type LeaveOutOptions, relBelow } from './leave-out.js';

/** What the walk ahead is told: the backup's own options (CreateOptions). */
export interface WalkAheadOptions extends LeaveOutOptions {
  paths: string[];
  cwd: string;
  oneFileSystem?: boolean;
  /** Stops the walk (the command was stopped). */
  signal?: AbortSignal;
  /** Entries listed at most (AHEAD_ENTRIES by default). */
  limit?: number;
}

/** One folder as listed: its names in the backup's order, and each entry's lstat (undefined: failed here). */
export interface AheadDir {
  names: Buffer[];
  stats: (EntryStat | undefined)[];
}

/** Entries walked ahead at most (a folder listed in part when it is reached is left to the backup): about 20 MB. */
const AHEAD_ENTRIES = 100_000;
/**
 * How old a walk ahead may be when the backup starts: an encrypted repository's key takes about
 * 0.5 s, a remote one's first requests a second or two more. Beyond it (a lock waited for), the
 * listing would be older than a user expects a backup's view to be.
 */
const FRESH_MS = 3000;
/** This thread's work between two visits of the event loop, which opens the repository meanwhile. */
const SLICE_MS = 1;

/**
 * A folder's size (lstat) per entry, at the least, on the file systems measured: ext4 about 78
 * (17,841 names of a man page folder: 1.39 MB), tmpfs 20, btrfs twice the names' length. A folder
 * larger than SMALL_FOLDER whose size says it may hold more entries than are left is not listed.
 */
const FOLDER_BYTES_PER_ENTRY = 20;
const SMALL_FOLDER = 64n * 1024n;

interface Listed {
  /** The names back to back (one buffer per folder: a Buffer per name kept would be about 100 bytes more each). */
  names: Buffer;
  /** Where each name ends in `names`. */
  ends: Uint32Array;
  /** FIELDS values per entry (BigInt64Array: Node's own type for bigint stats, so every value fits). */
  rows: BigInt64Array;
  /** 1 where the entry's lstat worked. */
  ok: Uint8Array;
}

/** A folder to list: its path, where it is below its source root, its device and its size (lstat). */
interface Folder {
  dir: Buffer;
  rel: string;
  dev: bigint;
  size: bigint;
}

/** A folder being listed: its names, each entry's lstat so far (the next is `i`), and its subfolders to enter. */
interface Listing extends Folder {
  names: Buffer[];
  rows: BigInt64Array;
  ok: Uint8Array;
  into: Folder[];
  i: number;
}

export class WalkAhead {
  /** When the walk started: the backup's start (Date.now()). */
  readonly startedAt = Date.now();
  /** Entries listed so far, and entries the backup took. */
  readonly counts = { listed: 0, taken: 0 };
  private readonly dirs = new Map<string, Listed>();
  /** Folders still to list, the next one last. */
  private readonly todo: Folder[] = [];
  /** The folder being listed. */
  private cur: Listing | undefined;
  /** The sources (a --files-from list may name thousands: looked at in the slices, not at once); the next is roots[nextRoot]. */
  private readonly roots: string[];
  private nextRoot = 0;
  private readonly leaveOut: LeaveOut;
  private readonly limit: number;
  private stopped = false;
  /** Settles when the walk has ended (done, stopped, or at its limit); never rejects. */
  readonly done: Promise<void>;

  constructor(private readonly o: WalkAheadOptions) {
    this.leaveOut = new LeaveOut(o, { lstat: 0 });
    this.limit = o.limit ?? AHEAD_ENTRIES;
    this.roots = normalizeSources(o.paths, o.cwd).sources;
    this.done = this.run().catch(() => {});
  }

  /** End the walk. What was listed stays to be taken. */
  stop(): void {
    this.stopped = true;
  }

  /**
   * End the walk as the backup's own starts: true when what it listed may be taken, false when it
   * started more than FRESH_MS ago (the repository took long to open: a lock waited for, a slow
   * server), and the backup then lists everything itself, as of now (what was listed is dropped).
   */
  claim(now = Date.now()): boolean {
    this.stop();
    if (now - this.startedAt <= FRESH_MS) return true;
    this.dirs.clear();
    return false;
  }

  /** The folder `dir` as listed here, once; undefined when it was not (the backup lists it itself). */
  take(dir: Buffer): AheadDir | undefined {
    const key = dir.toString('latin1');
    const d = this.dirs.get(key);
    if (!d) return undefined;
    this.dirs.delete(key);
    const n = d.ends.length;
    this.counts.taken += n;
    const names: Buffer[] = new Array(n);
    const stats: (EntryStat | undefined)[] = new Array(n);
    for (let i = 0, start = 0; i < n; start = d.ends[i++]!) {
      names[i] = d.names.subarray(start, d.ends[i]);
      stats[i] = d.ok[i] ? LeanStat.fromRow(d.rows, i * FIELDS) : undefined;
    }
    return { names, stats };
  }

  private async run(): Promise<void> {
    // Not before the caller has gone on (to open the repository).
    await new Promise<void>((r) => setImmediate(r));
    while (!this.stopped && !this.o.signal?.aborted && (this.cur || this.todo.length > 0 || this.nextRoot < this.roots.length) && this.counts.listed < this.limit) {
      this.work(performance.now() + SLICE_MS);
      await new Promise<void>((r) => setImmediate(r));
    }
    this.cur = undefined; // a folder listed in part is left to the backup
  }

  /** List folders and lstat their entries until `until` or the limit. */
  private work(until: number): void {
    for (;;) {
      if (!this.cur && this.todo.length === 0) {
        if (this.nextRoot >= this.roots.length) return;
        this.addRoot(this.roots[this.nextRoot++]!);
        if (performance.now() >= until) return;
        continue;
      }
      const c = (this.cur ??= this.open());
      if (!c) continue;
      while (c.i < c.names.length) {
        if (this.counts.listed >= this.limit) return;
        this.statEntry(c, c.i++);
        this.counts.listed++;
        if ((c.i & 31) === 0 && performance.now() >= until) return;
      }
      this.finish(c);
      this.cur = undefined;
      if (performance.now() >= until) return;
    }
  }

  /** A source to walk when it is a folder (else the backup says what it is, or that it is missing). */
  private addRoot(s: string): void {
    try {
      const dir = fsEncode(s);
      const st = fs.lstatSync(dir, { bigint: true });
      if (st.isDirectory()) this.todo.push({ dir, rel: '', dev: st.dev, size: st.size });
    } catch {
      // The backup says so.
    }
  }

  /** The next folder, listed; undefined when it cannot be (the backup lists it itself, and says why it cannot). */
  private open(): Listing | undefined {
    const { dir, rel, dev, size } = this.todo.pop()!;
    // A folder that may hold more entries than are left to list is left to the backup before its
    // names are read: the listing would be dropped, and a folder of a million names is about 100 MB
    // of them, at the moment the key derivation holds its 128 MiB.
    if (size > SMALL_FOLDER && Number(size) / FOLDER_BYTES_PER_ENTRY > this.limit - this.counts.listed) return undefined;
    let names: Buffer[];
    try {
      names = fs.readdirSync(dir, { encoding: 'buffer' });
    } catch {
      return undefined;
    }
    names.sort(Buffer.compare);
    return { dir, rel, dev, size, names, rows: new BigInt64Array(names.length * FIELDS), ok: new Uint8Array(names.length), into: [], i: 0 };
  }

  private statEntry(c: Listing, i: number): void {
    const name = c.names[i]!;
    const full = joinPath(c.dir, name);
    let st: fs.BigIntStats;
    try {
      st = fs.lstatSync(full, { bigint: true });
    } catch {
      return;
    }
    c.ok[i] = 1;
    LeanStat.toRow(st, c.rows, i * FIELDS);
    if (!st.isDirectory() || (this.o.oneFileSystem && st.dev !== c.dev)) return;
    const childRel = relBelow(c.rel, name);
    if (!this.leaveOut.excluded(full, childRel, st)) c.into.push({ dir: full, rel: childRel, dev: st.dev, size: st.size });
  }

  /** A folder listed whole: kept to be taken, and its subfolders the backup enters next, in the backup's order. */
  private finish(c: Listing): void {
    const ends = new Uint32Array(c.names.length);
    let end = 0;
    c.names.forEach((n, i) => (ends[i] = end += n.length));
    this.dirs.set(c.dir.toString('latin1'), { names: Buffer.concat(c.names, end), ends, rows: c.rows, ok: c.ok });
    for (let i = c.into.length - 1; i >= 0; i--) this.todo.push(c.into[i]!);
  }
}
