// `snap drill`: prove a snapshot restores. A random sample of its files (or everything) is restored
// into a sandbox folder by the restore op (ops/restore/restore.ts), whose every read of a stored object
// goes through the one decode-and-verify path (store/object-codec.ts); a file whose data is
// damaged or missing is named there and not written. Each restored file is then read back from the
// sandbox and its bytes checked against the snapshot's recorded chunk ids (content-check.ts), and,
// with againstSource, compared byte for byte with the file on disk at the same path when that
// file's stat vouches that it has not changed since the snapshot (live-stamp.ts); a changed
// source file is skipped, not failed. Memory: the sample (N entries), or for a full drill one
// walk of the snapshot after the restore; lists in the report are capped.
import * as fs from 'node:fs';
import { randomInt } from 'node:crypto';
import { displayName, fsDecode, fsEncode, fsPath, joinPath } from '../../core/bytes.js';
import { SnapError, errnoCode, isSnapError } from '../../core/errors.js';
import type { ProgressSink, Warning } from '../../core/progress.js';
import type { Node } from '../../model/node.js';
import type { StoredSnapshot } from '../../model/snapshot.js';
import type { Repository } from '../../repo/repository.js';
import { listPath } from '../browse/browse.js';
import { compareFileContent } from '../fs/content-check.js';
import { readFully } from '../../core/read-fully.js';
import { stampChange, trustedBefore } from '../fs/live-stamp.js';
import { restoreSnapshot } from '../restore/restore.js';

export interface DrillOptions {
  /** How many files to pick at random; undefined: a full drill (everything is restored). */
  sample?: number;
  /** An empty folder to restore into. */
  sandbox: string;
  /** Compare restored files with the unchanged source files at the same paths. */
  againstSource: boolean;
  /** The host this drill runs on: a snapshot of another host's files is not compared with this one's (all skipped). */
  hostname: string;
  /** Restore ownership (only root can). */
  asRoot: boolean;
  sink: ProgressSink;
  signal?: AbortSignal;
  /** A random integer in [0, n): crypto's by default. */
  random?: (n: number) => number;
}

/** A file that failed (or, for the source comparison, was skipped), and why. */
export interface DrillEntry {
  /** Its path in the snapshot; undefined for a failure of the whole restore (a damaged tree). */
  path?: Buffer;
  reason: string;
}

export interface DrillReport {
  snapshot: string;
  full: boolean;
  /** Files the snapshot holds (its summary's count for a full drill). */
  filesInSnapshot: number;
  /** Files picked (a sample), or restored (a full drill). */
  filesPicked: number;
  /** Files restored and verified against the snapshot's ids. */
  filesVerified: number;
  bytesVerified: number;
  /** Symlinks whose restored target was checked (full drill). */
  symlinksVerified: number;
  /** At most LIST_MAX entries; failedCount counts all. */
  failed: DrillEntry[];
  failedCount: number;
  source?: {
    /** Restored files found byte-identical to their unchanged source file. */
    compared: number;
    bytes: number;
    /** At most LIST_MAX entries; skippedCount counts all. */
    skipped: DrillEntry[];
    skippedCount: number;
  };
  /** Warnings of the restore besides damaged data (metadata that could not be set, device nodes as a user). */
  warnings: number;
}

/** Entries kept in each list of the report (all are counted). */
export const LIST_MAX = 1000;
const BLOCK = 1024 * 1024;

interface Picked {
  path: Buffer;
  node: Node;
}

export async function drillSnapshot(repo: Repository, snap: StoredSnapshot, o: DrillOptions): Promise<DrillReport> {
  const r: DrillReport = {
    snapshot: snap.id, full: o.sample === undefined, filesInSnapshot: 0, filesPicked: 0, filesVerified: 0, bytesVerified: 0,
    symlinksVerified: 0, failed: [], failedCount: 0, warnings: 0,
    source: o.againstSource ? { compared: 0, bytes: 0, skipped: [], skippedCount: 0 } : undefined,
  };
  const fail = (path: Buffer | undefined, reason: string): void => {
    r.failedCount++;
    if (r.failed.length < LIST_MAX) r.failed.push({ path, reason });
  };
  const sandbox = fs.realpathSync.native(fsPath(o.sandbox), { encoding: 'buffer' }); // libc's realpath: bytes, not text
  // Restore's warnings about damaged data name files the drill reports as failed; others pass on.
  const damaged = new Map<string, string>();
  const sink: ProgressSink = {
    progress: (c) => o.sink.progress?.(c),
    info: (m) => o.sink.info?.(m),
    warn: (w: Warning) => {
      if ((w.code === 'SNAP_CORRUPT' || w.code === 'SNAP_MISSING_OBJECT') && w.path !== undefined) {
        damaged.set(w.path, w.message.startsWith(`${w.path}: `) ? w.message.slice(w.path.length + 2) : w.message);
        return;
      }
      r.warnings++;
      o.sink.warn?.(w);
    },
  };

  let picked: Picked[] | undefined;
  try {
    if (o.sample !== undefined) {
      const s = await pickFiles(repo, snap, o.sample, o.random ?? randomInt, o.signal);
      r.filesInSnapshot = s.total;
      // A sample as large as the snapshot is the whole snapshot: restored without --include.
      picked = s.picked;
      r.filesPicked = picked.length;
      if (picked.length === s.total) r.full = true;
    } else r.filesInSnapshot = snap.summary.totalFiles;
    const include = picked && !r.full ? picked.map((p) => fsDecode(p.path)) : undefined;
    if (picked?.length === 0) return r;
    await restoreSnapshot(repo, snap, { target: o.sandbox, include, overwrite: 'never', asRoot: o.asRoot, sink, signal: o.signal });
  } catch (e) {
    // A damaged tree stops the restore: the drill has failed, and says why.
    if (!isSnapError(e, 'SNAP_CORRUPT') && !isSnapError(e, 'SNAP_MISSING_OBJECT')) throw e;
    fail(undefined, `the restore stopped: ${e.message}`);
    return r;
  }

  const check = async (path: Buffer, node: Node): Promise<void> => {
    o.signal?.throwIfAborted();
    const at = Buffer.concat([sandbox, path]);
    if (node.type === 'symlink') {
      const got = readlinkOrUndefined(at);
      if (got === undefined) fail(path, damaged.get(displayName(at)) ?? 'the symlink was not restored');
      else if (!got.equals(node.target ?? Buffer.alloc(0))) fail(path, `the restored symlink points to ${displayName(got)}, the snapshot to ${displayName(node.target ?? Buffer.alloc(0))}`);
      else r.symlinksVerified++;
      return;
    }
    let verdict;
    try {
      verdict = await compareFileContent(repo, at, node, o.signal);
    } catch (e) {
      if (isSnapError(e, 'SNAP_MISSING_OBJECT')) return fail(path, e.message);
      if (e instanceof SnapError || o.signal?.aborted) throw e;
      if (errnoCode(e) === 'ENOENT') return fail(path, damaged.get(displayName(at)) ?? 'it was not restored');
      return fail(path, `the restored file cannot be read back: ${(e as Error).message}`);
    }
    if (!verdict.same) return fail(path, `the restored bytes do not match the snapshot: ${verdict.reason}`);
    r.filesVerified++;
    r.bytesVerified += node.size;
    o.sink.progress?.({ files: r.filesVerified, dirs: 0, bytes: r.bytesVerified, totalBytes: r.full ? snap.summary.totalBytes : undefined, current: `verifying ${displayName(path)}` });
    if (r.source) compareWithSource(r, path, at, node, trustedBefore(snap), snap.hostname, o);
  };

  try {
    if (picked && !r.full) for (const p of picked) await check(p.path, p.node);
    else {
      // Everything was restored: every file and symlink of the snapshot is checked, in one walk.
      let files = 0;
      for await (const e of listPath(repo, snap, '/', true)) {
        if (e.node.type === 'file') files++;
        if (e.node.type === 'file' || e.node.type === 'symlink') await check(e.path, e.node);
      }
      r.filesInSnapshot = files;
      r.filesPicked = files;
    }
  } catch (e) {
    if (!isSnapError(e, 'SNAP_CORRUPT') && !isSnapError(e, 'SNAP_MISSING_OBJECT')) throw e;
    fail(undefined, `the snapshot's trees could not be read: ${e.message}`);
  }
  return r;
}

/** A uniform random sample of `n` files (reservoir sampling over one walk), and how many files there are. */
async function pickFiles(repo: Repository, snap: StoredSnapshot, n: number, random: (n: number) => number, signal?: AbortSignal): Promise<{ picked: Picked[]; total: number }> {
  const picked: Picked[] = [];
  let total = 0;
  for await (const e of listPath(repo, snap, '/', true)) {
    signal?.throwIfAborted();
    if (e.node.type !== 'file') continue;
    total++;
    if (picked.length < n) picked.push({ path: e.path, node: e.node });
    else {
      const k = random(total);
      if (k < n) picked[k] = { path: e.path, node: e.node };
    }
  }
  picked.sort((a, b) => Buffer.compare(a.path, b.path));
  return { picked, total };
}

function readlinkOrUndefined(p: Buffer): Buffer | undefined {
  try {
    return fs.readlinkSync(p, { encoding: 'buffer' });
  } catch {
    return undefined;
  }
}

/**
 * A verified restored file against the source file at its path: compared byte for byte when the
 * source's stat vouches that it is what the snapshot holds; otherwise skipped, saying why.
 */
function compareWithSource(r: DrillReport, path: Buffer, restored: Buffer, node: Node, before: bigint, host: string, o: DrillOptions): void {
  const s = r.source!;
  const skip = (reason: string): void => {
    s.skippedCount++;
    if (s.skipped.length < LIST_MAX) s.skipped.push({ path, reason });
  };
  if (o.hostname !== host) return skip(`the snapshot is of host ${host}'s files, this is ${o.hostname}`);
  let st: fs.BigIntStats;
  try {
    st = fs.lstatSync(path, { bigint: true });
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return skip('it is no longer on disk');
    o.sink.warn?.({ code: errnoCode(e) ?? 'SNAP_IO', path: displayName(path), message: `${displayName(path)}: the source file cannot be compared: ${(e as Error).message}` });
    r.warnings++;
    return skip(`it cannot be read: ${(e as Error).message}`);
  }
  if (!st.isFile()) return skip('it is no longer a regular file');
  const changed = stampChange(node, st, before);
  if (changed !== undefined) return skip(`it changed since the snapshot: ${changed}`);
  let at: number | undefined;
  try {
    at = firstDifference(restored, path);
  } catch (e) {
    o.sink.warn?.({ code: errnoCode(e) ?? 'SNAP_IO', path: displayName(path), message: `${displayName(path)}: the source file cannot be compared: ${(e as Error).message}` });
    r.warnings++;
    return skip(`it cannot be read: ${(e as Error).message}`);
  }
  if (at !== undefined) {
    r.failedCount++;
    const reason = `the restored file differs from the source file at byte ${at}, though the source is unchanged since the snapshot (same size, mtime and ctime)`;
    if (r.failed.length < LIST_MAX) r.failed.push({ path, reason });
    return;
  }
  s.compared++;
  s.bytes += node.size;
}

/** The offset of the first byte where two files differ (a shorter file differs at its end), or undefined. */
function firstDifference(a: Buffer, b: Buffer): number | undefined {
  const flags = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
  const fa = fs.openSync(a, flags);
  try {
    const fb = fs.openSync(b, flags);
    try {
      const ba = Buffer.allocUnsafe(BLOCK);
      const bb = Buffer.allocUnsafe(BLOCK);
      for (let pos = 0; ; ) {
        const na = readFully(fa, ba, pos);
        const nb = readFully(fb, bb, pos);
        const n = Math.min(na, nb);
        if (!ba.subarray(0, n).equals(bb.subarray(0, n))) {
          for (let i = 0; i < n; i++) if (ba[i] !== bb[i]) return pos + i;
        }
        if (na !== nb) return pos + n;
        if (na < BLOCK) return undefined;
        pos += na;
      }
    } finally {
      fs.closeSync(fb);
    }
  } finally {
    fs.closeSync(fa);
  }
}

/**
 * Remove what a drill restored into `dir` (and `dir` itself unless keepDir). Restored folders
 * carry their recorded modes (0555, 0000): each is given its owner's rwx first, so a user who is
 * not root can empty it.
 */
export function removeSandbox(dir: string, keepDir: boolean): void {
  const root = fsEncode(dir);
  const stack: Buffer[] = [root];
  while (stack.length > 0) {
    const d = stack.pop()!;
    try {
      const st = fs.lstatSync(d);
      if (!st.isDirectory()) continue;
      if ((st.mode & 0o700) !== 0o700) fs.chmodSync(d, (st.mode & 0o7777) | 0o700);
      for (const name of fs.readdirSync(d, { encoding: 'buffer' })) {
        const p = joinPath(d, name);
        if (fs.lstatSync(p).isDirectory()) stack.push(p);
      }
    } catch {
      // removed below as far as it can be
    }
  }
  for (const name of fs.readdirSync(root, { encoding: 'buffer' })) fs.rmSync(joinPath(root, name), { recursive: true, force: true });
  if (!keepDir) fs.rmdirSync(root);
}
