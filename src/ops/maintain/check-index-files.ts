// `snap check` on the repository's index files (docs/format.md, "Index files"): each must read and
// verify, give each pack it lists the size storage has, agree with the local index, and, with
// read-data, say exactly what the headers of the packs read whole say. Split from check.ts.
import { createHash } from 'node:crypto';
import { toHex } from '../../core/ids.js';
import { isSnapError } from '../../core/errors.js';
import type { ObjectLocation, Repository } from '../../repo/repository.js';
import { type IndexedPack, indexFileName, listIndexFiles, readIndexFile } from '../../repo/index-files.js';
import { type PackEntry, readPackTable } from '../../repo/maintenance.js';
import type { CheckProblem, CheckReport } from './check.js';
import { errorMessage } from '../../repo/reachability.js';

/**
 * The repository's index files (docs/format.md, "Index files"): each must read and verify, list each
 * pack in storage with the size storage has, and agree with the index wherever the index uses the
 * pack's copy of an object; with read-data, also with the header of each pack it lists that was
 * read whole and found intact (`headers`), since a client that has never read those headers takes
 * the file's word for them. A damaged one is reported by name; nothing reads it (clients fall back
 * to the pack headers). Packs no index file lists are counted, not reported: a backup that crashed
 * before writing its index file leaves them, and clients read their headers.
 *
 * In two steps: readIndexFiles reads the files and holds them against storage and the index (what
 * needs no pack header), while check --read-data's threads still verify packs; checkIndexFiles
 * then holds what it kept against the headers. (Run after the packs were read, the first step was
 * 0.2-0.3 s of the bench repository's check with nothing else left to do.)
 */
export async function checkIndexFiles(
  repo: Repository, stored: Map<string, number>, headers: Map<string, ReadHeader>, r: CheckReport, problem: (p: CheckProblem) => void, signal?: AbortSignal,
  read?: IndexFilesRead,
): Promise<void> {
  const files = read ?? (await readIndexFiles(repo, stored, headers.size > 0, signal));
  r.indexFiles += files.indexFiles;
  // Objects an index file leaves out of a pack whose copy the index uses (hex -> the file and the
  // pack): allowed only when another pack holds the object too, which is looked for at the end.
  const leftOut = new Map<string, { file: string; pack: string }>();
  const reported = new Set<string>();
  for (const f of files.files) {
    signal?.throwIfAborted();
    // The first thing wrong, in the order of the file's packs: for each its size, its header, its entries against the index.
    let wrong: string | undefined;
    for (const p of f.packs) {
      if (p.sizeWrong !== undefined) {
        wrong ??= p.sizeWrong;
        continue;
      }
      const header = headers.get(p.id);
      if (header && !wrong) {
        const h = await againstHeader(repo, f.fileId, p, header);
        wrong = h.wrong;
        for (const id of h.leftOut) if (!leftOut.has(id)) leftOut.set(id, { file: f.name, pack: p.id });
      }
      wrong ??= p.indexWrong;
    }
    if (wrong) {
      reported.add(f.name);
      problem({ kind: 'index-file-damaged', indexFile: f.name, message: `index file ${f.name} is wrong: ${wrong}; 'snap repair' or 'snap index rebuild' rewrites it` });
    }
  }
  for (const id of stored.keys()) if (!files.covered.has(id)) r.packsWithoutIndexFile++;
  // An unreadable index file hides nothing when intact ones list every pack in storage: what a
  // write cut short leaves (a gc's compaction writes all new index files before it deletes the old
  // ones), removed by the next gc. Otherwise it is damage: clients read its packs' headers.
  for (const u of files.unreadable) {
    if (r.packsWithoutIndexFile === 0) {
      r.leftovers.push({ kind: 'index-file-unneeded', indexFile: u.name, message: `index file ${u.name} cannot be read (${u.why}), but other index files list every pack: a leftover of an interrupted write that 'snap gc' removes` });
    } else {
      problem({ kind: 'index-file-damaged', indexFile: u.name, message: `index file ${u.name} is damaged (${u.why}): clients read the headers of its packs instead; 'snap repair' or 'snap index rebuild' rewrites it` });
    }
  }
  if (leftOut.size === 0) return;
  await dropOtherCopies(repo, stored, files.covered, leftOut, signal);
  for (const [id, { file, pack }] of leftOut) {
    if (reported.has(file)) continue;
    reported.add(file);
    problem({ kind: 'index-file-damaged', indexFile: file, message: `index file ${file} is wrong: it leaves out object ${id.slice(0, 16)} of pack ${pack.slice(0, 12)}, and no other pack holds it; 'snap repair' or 'snap index rebuild' rewrites it` });
  }
}

/** What readIndexFiles found: per readable file, per pack in storage it lists, what checkIndexFiles needs (no entries kept). */
export interface IndexFilesRead {
  files: { fileId: string; name: string; packs: PackListed[] }[];
  unreadable: { name: string; why: string }[];
  /** Packs in storage that a file lists with the size storage has. */
  covered: Set<string>;
  /** Index files read. */
  indexFiles: number;
}

/** A pack in storage as an index file lists it. */
interface PackListed {
  id: string;
  /** The file gives it a size storage does not have (nothing else of it is looked at). */
  sizeWrong?: string;
  /** Its entries' count and entriesDigest (with `digests`; else empty), for the header (read-data). */
  entries: number;
  digest: string;
  /** Its first entry that disagrees with the index (where the index uses this pack's copy). */
  indexWrong?: string;
}

/**
 * The first step of checkIndexFiles: read every index file, and hold each pack it lists against
 * storage's size and each entry against the index; `digests`: keep each pack's entriesDigest, for
 * the headers of check --read-data. `pause` is awaited between files and every few hundred lookups
 * (check --read-data lets its threads' answers through meanwhile).
 */
export async function readIndexFiles(
  repo: Repository,
  stored: Map<string, number>,
  digests: boolean,
  signal?: AbortSignal,
  pause?: () => Promise<void>,
  /** Where the index places an object, answered at once (check's object table); default: the index's lookup. */
  find?: (id: Buffer) => ObjectLocation | undefined,
): Promise<IndexFilesRead> {
  const out: IndexFilesRead = { files: [], unreadable: [], covered: new Set(), indexFiles: 0 };
  let n = 0;
  for (const fileId of await listIndexFiles(repo.backend)) {
    signal?.throwIfAborted();
    await pause?.();
    const name = indexFileName(fileId);
    let packs: IndexedPack[];
    try {
      packs = await readIndexFile(repo.backend, fileId);
    } catch (e) {
      if (!isSnapError(e, 'SNAP_CORRUPT') && !isSnapError(e, 'SNAP_MISSING_OBJECT')) throw e;
      if (isSnapError(e, 'SNAP_MISSING_OBJECT')) continue; // deleted since the listing (a gc compacting)
      out.unreadable.push({ name, why: errorMessage(e) });
      continue;
    }
    out.indexFiles++;
    const listed: PackListed[] = [];
    for (const p of packs) {
      const size = stored.get(p.id);
      if (size === undefined) continue; // a pack deleted since (its entries are ignored by readers)
      if (size !== p.size) {
        listed.push({ id: p.id, sizeWrong: `it says pack ${p.id.slice(0, 12)} has ${p.size} bytes, storage has ${size}`, entries: 0, digest: '' });
        continue;
      }
      out.covered.add(p.id);
      const item: PackListed = { id: p.id, entries: p.entries.length, digest: digests ? entriesDigest(p.entries) : '' };
      for (const e of p.entries) {
        if (++n % 512 === 0) await pause?.();
        let loc;
        try {
          loc = find ? find(e.id) : await repo.index.lookup(e.id);
        } catch {
          continue; // damage of the index entry: reported by the tree walk
        }
        if (loc && loc.pack === p.id && (loc.offset !== e.offset || loc.length !== e.length || loc.rawLength !== e.rawLength || loc.codec !== e.codec || loc.type !== e.type)) {
          item.indexWrong = `its entry of object ${toHex(e.id).slice(0, 16)} in pack ${p.id.slice(0, 12)} disagrees with the index`;
          break;
        }
      }
      listed.push(item);
    }
    out.files.push({ fileId, name, packs: listed });
  }
  return out;
}

/**
 * Remove from `leftOut` every object that a pack other than the one it was left out of holds: as an
 * index file lists it, or, for a pack no index file covers, as its header says (what clients read).
 * Runs only when an index file leaves out objects the index finds in that very pack (rare: a writer
 * leaves out only second copies), so reading the index files again costs nothing otherwise.
 */
async function dropOtherCopies(repo: Repository, stored: Map<string, number>, covered: Set<string>, leftOut: Map<string, { pack: string }>, signal?: AbortSignal): Promise<void> {
  const drop = (pack: string, entries: PackEntry[]): void => {
    for (const e of entries) {
      const hex = toHex(e.id);
      const where = leftOut.get(hex);
      if (where && where.pack !== pack) leftOut.delete(hex);
    }
  };
  for (const fileId of await listIndexFiles(repo.backend)) {
    signal?.throwIfAborted();
    if (leftOut.size === 0) return;
    let packs: IndexedPack[];
    try {
      packs = await readIndexFile(repo.backend, fileId);
    } catch (e) {
      if (!isSnapError(e, 'SNAP_CORRUPT') && !isSnapError(e, 'SNAP_MISSING_OBJECT')) throw e;
      continue; // reported above, or deleted since
    }
    for (const p of packs) if (stored.get(p.id) === p.size) drop(p.id, p.entries);
  }
  for (const id of stored.keys()) {
    signal?.throwIfAborted();
    if (leftOut.size === 0) return;
    if (covered.has(id)) continue;
    try {
      drop(id, await readPackTable(repo, id));
    } catch (e) {
      if (!isSnapError(e, 'SNAP_CORRUPT') && !isSnapError(e, 'SNAP_MISSING_OBJECT')) throw e;
    }
  }
}

/** What check --read-data learnt of a pack it read whole and found intact (its hash matches its name). */
export interface ReadHeader {
  /** entriesDigest of its header. */
  digest: string;
  entries: number;
}

/**
 * One digest of a pack header's entries, in the order index files list them (by offset): an index
 * file's entries of the pack are compared with it, so no header is kept in memory.
 */
export function entriesDigest(entries: readonly PackEntry[]): string {
  const h = createHash('sha256');
  for (const e of [...entries].sort((a, b) => a.offset - b.offset)) h.update(`${e.type}:${e.offset}:${e.length}:${e.rawLength}:${e.codec}:`).update(e.id);
  return h.digest('hex');
}

/**
 * Whether an index file's entries of pack `p` are what the pack's header says: every entry it
 * lists must be one of the header's, exactly (else `wrong`). An entry it leaves out must be a second
 * copy of an object another pack holds (files written from an index may leave those out, see
 * docs/format.md, "Index files"): one the index finds in no pack makes the file wrong; one the
 * index finds in this very pack is returned in `leftOut`, for the caller to look for another copy.
 * The file's entries and the header are read again (the file, and two small reads) only when the
 * digests differ.
 */
async function againstHeader(repo: Repository, fileId: string, pack: PackListed, header: ReadHeader): Promise<{ wrong?: string; leftOut: string[] }> {
  const leftOut: string[] = [];
  if (pack.entries === header.entries && pack.digest === header.digest) return { leftOut };
  // They differ (rare: damage): the file's entries of the pack and the header, read again.
  let p: IndexedPack | undefined;
  let entries: PackEntry[];
  try {
    p = (await readIndexFile(repo.backend, fileId)).find((x) => x.id === pack.id);
    entries = await readPackTable(repo, pack.id);
  } catch (e) {
    if (!isSnapError(e, 'SNAP_CORRUPT') && !isSnapError(e, 'SNAP_MISSING_OBJECT')) throw e;
    return { leftOut }; // deleted or changed since it was read: nothing to compare with
  }
  if (!p) return { leftOut };
  const at = new Map(entries.map((e) => [e.offset, e]));
  const listed = new Set<number>();
  for (const e of p.entries) {
    const h = at.get(e.offset);
    if (!h || !h.id.equals(e.id) || h.type !== e.type || h.length !== e.length || h.rawLength !== e.rawLength || h.codec !== e.codec) {
      return { wrong: `its entry of object ${toHex(e.id).slice(0, 16)} (offset ${e.offset}, ${e.length} bytes) is not in the header of pack ${p.id.slice(0, 12)}`, leftOut };
    }
    listed.add(e.offset);
  }
  for (const h of entries) {
    if (listed.has(h.offset)) continue;
    let loc;
    try {
      loc = await repo.index.lookup(h.id);
    } catch {
      continue; // damage of the index entry: reported by the tree walk
    }
    if (!loc) return { wrong: `it leaves out object ${toHex(h.id).slice(0, 16)} of pack ${p.id.slice(0, 12)}, and no other pack holds it`, leftOut };
    if (loc.pack === p.id) leftOut.push(toHex(h.id));
  }
  return { leftOut };
}
