// Whether the bytes of a file on disk are the content a snapshot records for it: read in the
// recorded chunks' lengths (from the index), each piece's id computed with the repository's id
// function (keyed in an encrypted repository, store/object-codec.ts objectId) and compared with the
// recorded id. The recorded boundaries are used rather than the file cut again, so the answer does
// not depend on the chunker: a snapshot copied from a repository with other chunker parameters
// (snap copy keeps chunks as they were cut) is still compared exactly. Used by `snap drill` (the
// restored sandbox files) and `snap diff --live` (a live file whose stat cannot vouch for it).
// Memory: one chunk at a time (at most the chunker's maximum size).
import * as fs from 'node:fs';
import { SnapError } from '../../core/errors.js';
import { toHex } from '../../core/ids.js';
import { readFully } from '../../core/read-fully.js';
import type { Node } from '../../model/node.js';
import type { ObjectLocation } from '../../repo/repository.js';

/** What the comparison needs from a repository. */
export interface ContentIds {
  index: { lookup(id: Buffer): Promise<ObjectLocation | undefined> };
  hashId(data: Uint8Array): Buffer;
}

export type ContentVerdict = { same: true } | { same: false; reason: string };

/**
 * Compare the file open at `fd` with the content `node` records. A recorded chunk the index does
 * not know is SNAP_MISSING_OBJECT (the snapshot is damaged, not the file).
 */
export async function compareContent(repo: ContentIds, fd: number, node: Node, signal?: AbortSignal): Promise<ContentVerdict> {
  const size = Number(fs.fstatSync(fd, { bigint: true }).size);
  if (size !== node.size) return { same: false, reason: `it holds ${size} bytes, the snapshot ${node.size}` };
  let pos = 0;
  let buf = Buffer.alloc(0);
  const chunks = node.chunks ?? [];
  for (let i = 0; i < chunks.length; i++) {
    signal?.throwIfAborted();
    const id = chunks[i]!;
    const loc = await repo.index.lookup(id);
    if (!loc) throw new SnapError('SNAP_MISSING_OBJECT', `object ${toHex(id).slice(0, 16)} is not in the repository index`);
    const len = loc.rawLength;
    if (buf.length < len) buf = Buffer.allocUnsafe(len);
    const piece = buf.subarray(0, len);
    const got = readFully(fd, piece, pos);
    if (got < len) return { same: false, reason: `it ends at byte ${pos + got}, the snapshot's chunk ${i + 1} goes on to ${pos + len}` };
    if (!repo.hashId(piece).equals(id)) return { same: false, reason: `bytes ${pos}-${pos + len - 1} (chunk ${i + 1} of ${chunks.length}) differ` };
    pos += len;
  }
  if (pos !== node.size) return { same: false, reason: `the snapshot's chunks hold ${pos} bytes but it records a size of ${node.size}` };
  return { same: true };
}

/** compareContent of the file at `p` (opened without following a symlink). */
export async function compareFileContent(repo: ContentIds, p: Buffer, node: Node, signal?: AbortSignal): Promise<ContentVerdict> {
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    return await compareContent(repo, fd, node, signal);
  } finally {
    fs.closeSync(fd);
  }
}
