// `snap diff REF --live [PATH]`: what changed on disk since a snapshot, as the changes `snap diff`
// reports between two snapshots (ops/browse/diff.ts): added, removed, modified in content, metadata or
// type. The snapshot's trees and the disk are merge-walked side by side, both in raw name-byte
// order, with an explicit stack (no recursion, any depth). Only what the snapshot covers is
// walked: its source paths (with its exclude patterns applied to what is on disk), and of the
// folders above them only the way to each source, whose own metadata does not count (it changes
// whenever anything beside a source does, as create's unchanged check has it).
//
// A file's content is read only when its stat cannot vouch for it (live-stamp.ts): its size
// differs (then it changed, unread), or its mtime differs or its ctime is later than the backup's
// start (then it is read and compared with the recorded chunk ids, content-check.ts); with
// readAll every file of the recorded size is read. Metadata (mode, owner, mtime, link target,
// device, extended attributes) is compared for every entry whose stat does not vouch for it.
import * as fs from 'node:fs';
import { fsDecode, fsEncode, joinPath } from '../../core/bytes.js';
import { SnapError, errnoCode, systemDetail } from '../../core/errors.js';
import { compileExcludes, isExcluded, needsAbsolute, type ExcludeRule } from '../../model/exclude.js';
import type { Node } from '../../model/node.js';
import type { Tree } from '../../model/tree.js';
import type { StoredSnapshot } from '../../model/snapshot.js';
import type { Repository } from '../../repo/repository.js';
import { canonicalPath, diffNodes, mergeNext, metaDiff, type Change, type ChangeAspect } from './diff.js';
import { compareFileContent } from '../fs/content-check.js';
import { stampChange, trustedBefore } from '../fs/live-stamp.js';
import { locateAbs, splitPath } from '../tree/navigate.js';
import { baseNode } from '../fs/node-meta.js';
import { OwnerNames } from '../fs/owners.js';
import { buildTrie, type SourceTrie } from '../fs/sources.js';
import { ExpansionGuard } from '../tree/walk.js';
import { type XattrBinding, xattrBinding } from '../fs/xattr-binding.js';
import { readXattrs } from '../fs/xattr-read.js';

export interface LiveDiffOptions {
  /** Read and compare every file of the recorded size, whatever its stat says. */
  readAll?: boolean;
  signal?: AbortSignal;
  /** An entry on disk that cannot be read: named, and left out of the comparison. */
  warn(code: string, path: Buffer, message: string): void;
}

/** Where an entry is: on the way to a source (a trie node that is not one), or at/below a source (`rel` from its root). */
type Place = { above: SourceTrie } | { rel: string };

interface LiveEntry {
  full: Buffer;
  node: Node;
  st: fs.BigIntStats;
  place: Place;
}

type Task =
  | { t: 'pair'; path: Buffer; a?: Node; b?: LiveEntry; place: Place }
  | { t: 'merge'; left: Tree; right: LiveEntry[]; i: number; j: number; dir: Buffer; place: Place }
  | { t: 'added'; entries: LiveEntry[]; i: number };

const latin1 = (b: Buffer): string => b.toString('latin1');

class LiveSide {
  private readonly owners = new OwnerNames();
  private readonly rules: ExcludeRule[];
  private readonly absRules: boolean;
  private readonly xattr: XattrBinding | undefined = xattrBinding();
  readonly before: bigint;

  constructor(readonly snap: StoredSnapshot, private readonly o: LiveDiffOptions) {
    this.rules = compileExcludes(snap.excludes);
    this.absRules = needsAbsolute(this.rules);
    this.before = trustedBefore(snap);
  }

  childPlace(place: Place, name: Buffer): Place | undefined {
    if ('rel' in place) return { rel: place.rel === '' ? latin1(name) : `${place.rel}/${latin1(name)}` };
    const t = place.above.children.get(fsDecode(name));
    if (!t) return undefined;
    return t.source !== undefined ? { rel: '' } : { above: t };
  }

  /** The entry at `full` as a tree node would record it (contents and attributes aside), or undefined when it is not there. */
  entry(full: Buffer, place: Place): LiveEntry | undefined {
    let st: fs.BigIntStats;
    try {
      st = fs.lstatSync(full, { bigint: true });
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT' && errnoCode(e) !== 'ENOTDIR') this.o.warn(errnoCode(e) ?? 'SNAP_IO', full, `cannot stat: ${systemDetail(e, full.toString())}`);
      return undefined;
    }
    const name = splitPath(full).at(-1) ?? Buffer.from('/');
    const node = baseNode(name, st, this.owners);
    try {
      if (node.type === 'file') node.size = Number(st.size);
      else if (node.type === 'symlink') node.target = fs.readlinkSync(full, { encoding: 'buffer' });
      else if (node.type === 'chardev' || node.type === 'blockdev') node.rdev = Number(st.rdev);
    } catch (e) {
      this.o.warn(errnoCode(e) ?? 'SNAP_IO', full, `cannot read symlink: ${systemDetail(e, full.toString())}`);
      return undefined;
    }
    return { full, node, st, place };
  }

  /** A directory's entries on disk that the snapshot would cover, sorted by name bytes. */
  list(dir: Buffer, place: Place): LiveEntry[] {
    const out: LiveEntry[] = [];
    if (!('rel' in place)) {
      const names = [...place.above.children.keys()].map(fsEncode).sort(Buffer.compare);
      for (const name of names) {
        const e = this.entry(joinPath(dir, name), this.childPlace(place, name)!);
        if (e) out.push(e);
      }
      return out;
    }
    let names: Buffer[];
    try {
      names = fs.readdirSync(dir, { encoding: 'buffer' });
    } catch (e) {
      this.o.warn(errnoCode(e) ?? 'SNAP_IO', dir, `cannot list directory: ${systemDetail(e, dir.toString())}`);
      throw new Unlisted();
    }
    names.sort(Buffer.compare);
    for (const name of names) {
      const p = this.childPlace(place, name) as { rel: string };
      const full = joinPath(dir, name);
      const e = this.entry(full, p);
      if (!e) continue;
      if (isExcluded(this.rules, p.rel, e.node.type === 'dir', this.absRules ? latin1(full.subarray(1)) : undefined)) continue;
      out.push(e);
    }
    return out;
  }

  /** The metadata fields that differ; none when the stat vouches for the entry (unless readAll). */
  metaFields(a: Node, b: LiveEntry): ReturnType<typeof metaDiff> {
    if (!this.o.readAll && stampChange(a, b.st, this.before) === undefined) return [];
    const live: Node = { ...b.node };
    // Attributes are compared only where they can be read; otherwise they count as recorded.
    const r = this.xattr ? readXattrs(this.xattr, b.full) : undefined;
    if (r && r.problems.length === 0) live.xattrs = r.xattrs.length > 0 ? r.xattrs : undefined;
    else {
      for (const p of r?.problems ?? []) this.o.warn(p.code, b.full, p.message);
      live.xattrs = a.xattrs;
    }
    return metaDiff(a, live);
  }

  /** Whether a file's content changed: undefined when it could not be read (warned). */
  async contentChanged(a: Node, b: LiveEntry, repo: Repository): Promise<boolean | undefined> {
    if (a.size !== b.node.size) return true;
    const why = stampChange(a, b.st, this.before);
    if (why === undefined && !this.o.readAll) return false;
    try {
      return !(await compareFileContent(repo, b.full, a, this.o.signal)).same;
    } catch (e) {
      if (e instanceof SnapError || this.o.signal?.aborted) throw e;
      this.o.warn(errnoCode(e) ?? 'SNAP_IO', b.full, `cannot read: ${systemDetail(e, b.full.toString())}`);
      return undefined;
    }
  }
}

/** A directory that could not be listed (warned): its entries are left out of the comparison. */
class Unlisted extends Error {}

/** Place of an absolute path: on the way to a source, at or below one, or outside every source. */
function placeOf(trie: SourceTrie, parts: Buffer[]): Place | undefined {
  let t = trie;
  for (let i = 0; i < parts.length; i++) {
    if (t.source !== undefined) return { rel: parts.slice(i).map(latin1).join('/') };
    const next = t.children.get(fsDecode(parts[i]!));
    if (!next) return undefined;
    t = next;
  }
  return t.source !== undefined ? { rel: '' } : { above: t };
}

/** Changes on disk since snapshot `snap`, of everything it holds or of one path (absolute, or relative to a source path). */
export async function* diffLive(repo: Repository, snap: StoredSnapshot, userPath: string | undefined, o: LiveDiffOptions): AsyncGenerator<Change> {
  const live = new LiveSide(snap, o);
  const trie = buildTrie(snap.paths);
  const guard = new ExpansionGuard(repo);
  const readTree = async (id: Buffer): Promise<Tree> => {
    const nodes = await repo.readTree(id);
    await guard.enter(id, nodes);
    return nodes;
  };
  const tryList = (dir: Buffer, place: Place): LiveEntry[] | undefined => {
    try {
      return live.list(dir, place);
    } catch (e) {
      if (e instanceof Unlisted) return undefined;
      throw e;
    }
  };

  const stack: Task[] = [];
  const candidates = userPath === undefined ? ['/'] : userPath.startsWith('/') ? [userPath] : snap.paths.map((s) => `${s}/${userPath}`);
  let found = false;
  for (const c of candidates) {
    const path = canonicalPath(c);
    const place = placeOf(trie, splitPath(path));
    if (!place) continue;
    if (splitPath(path).length === 0) {
      const right = tryList(path, place) ?? [];
      stack.push({ t: 'merge', left: await readTree(snap.tree), right, i: 0, j: 0, dir: path, place });
      found = true;
      break;
    }
    const a = (await locateAbs(repo, snap.tree, path))?.node;
    const b = live.entry(path, place);
    if (!a && !b) continue;
    stack.push({ t: 'pair', path, a, b, place });
    found = true;
    break;
  }
  if (!found) {
    throw new SnapError('SNAP_NOT_FOUND', `${userPath ?? '/'} is neither in snapshot ${snap.id.slice(0, 8)} nor on disk below its paths (${snap.paths.join(', ')})`);
  }

  while (stack.length > 0) {
    o.signal?.throwIfAborted();
    const task = stack[stack.length - 1]!;
    switch (task.t) {
      case 'pair': {
        stack.pop();
        const { a, b, path, place } = task;
        if (!a) {
          yield { kind: 'added', path, after: b!.node, aspects: [], fields: [] };
          if (b!.node.type === 'dir') pushAdded(stack, tryList(b!.full, place));
          break;
        }
        if (!b) {
          yield* diffNodes(repo, path, a, undefined);
          break;
        }
        if (a.type !== b.node.type) {
          yield { kind: 'modified', path, before: a, after: b.node, aspects: ['type'], fields: [] };
          if (b.node.type === 'dir') pushAdded(stack, tryList(b.full, place));
          if (a.type === 'dir') yield* below(diffNodes(repo, path, a, undefined));
          break;
        }
        // The folders on the way to the sources are walked through, not compared.
        const compared = 'rel' in place;
        const aspects: ChangeAspect[] = [];
        if (compared && a.type === 'file') {
          const changed = await live.contentChanged(a, b, repo);
          if (changed) aspects.push('content');
        }
        const fields = compared ? live.metaFields(a, b) : [];
        if (fields.length > 0) aspects.push('metadata');
        if (aspects.length > 0) yield { kind: 'modified', path, before: a, after: b.node, aspects, fields };
        if (a.type === 'dir') {
          const right = tryList(b.full, place);
          // A directory that cannot be listed is left out (warned), not reported as emptied.
          if (right) stack.push({ t: 'merge', left: await readTree(a.tree!), right, i: 0, j: 0, dir: path, place });
        }
        break;
      }
      case 'merge': {
        const next = mergeNext(task, (e) => e.node.name);
        if (!next) {
          stack.pop();
          break;
        }
        const place = next.r ? next.r.place : live.childPlace(task.place, next.name);
        // A recorded entry off the way to every source (not in this snapshot's trie) is not compared.
        if (place) stack.push({ t: 'pair', path: joinPath(task.dir, next.name), a: next.l, b: next.r, place });
        break;
      }
      case 'added': {
        if (task.i >= task.entries.length) {
          stack.pop();
          break;
        }
        const e = task.entries[task.i++]!;
        yield { kind: 'added', path: e.full, after: e.node, aspects: [], fields: [] };
        if (e.node.type === 'dir') pushAdded(stack, tryList(e.full, e.place));
        break;
      }
    }
  }
}

function pushAdded(stack: Task[], entries: LiveEntry[] | undefined): void {
  if (entries && entries.length > 0) stack.push({ t: 'added', entries, i: 0 });
}

/** The changes of a walk without its first (the entry itself, already reported). */
async function* below(changes: AsyncGenerator<Change>): AsyncGenerator<Change> {
  let first = true;
  for await (const ch of changes) {
    if (!first) yield ch;
    first = false;
  }
}
