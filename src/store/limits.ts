// Caps on what a repository can claim (issue 20). A repository is untrusted input: a pack header
// may claim an object of 3 GiB, a tree may claim millions of entries. Every claim is checked
// against these bounds before anything is allocated for it, so memory stays bounded whatever a
// repository holds. snap never writes anything beyond them (create refuses such a directory).
import { SnapError } from '../core/errors.js';
import { toHex } from '../core/ids.js';

/** The largest chunk any config allows (docs/format.md: `chunker.maxSize` <= 64 MiB). */
export const MAX_CHUNK_BYTES = 64 * 1024 * 1024;
/** The most entries a tree may have (model/tree.ts). */
import { MAX_TREE_BYTES, MAX_TREE_ENTRIES } from '../model/tree.js';

export { MAX_TREE_BYTES, MAX_TREE_ENTRIES };
/** No object of any type is larger. */
export const MAX_OBJECT_BYTES = Math.max(MAX_CHUNK_BYTES, MAX_TREE_BYTES);
export { MAX_PACK_SIZE } from '../model/config.js';

export interface ObjectLimits {
  /** Largest raw size of a blob: the config's `chunker.maxSize`. */
  blob: number;
  /** Largest raw size of a tree. */
  tree: number;
}

export function objectLimits(chunkerMaxSize: number): ObjectLimits {
  return { blob: Math.min(chunkerMaxSize, MAX_CHUNK_BYTES), tree: MAX_TREE_BYTES };
}

/** The absolute bounds, for readers that do not know the config. */
export const ANY_CONFIG: ObjectLimits = { blob: MAX_CHUNK_BYTES, tree: MAX_TREE_BYTES };

/**
 * The most stored bytes an object of `rawLength` bytes can take: snap stores an object raw when
 * compression does not save 5%, so a compressed form is never larger than the raw one; the slack
 * covers other writers' framing (zstd's compressBound is n + n/256 + 64 KiB at most).
 */
export function maxStoredBytes(rawLength: number, codec: number): number {
  return codec === 0 ? rawLength : rawLength + Math.ceil(rawLength / 128) + 128 * 1024;
}

export interface ClaimedObject {
  type: 'blob' | 'tree';
  length: number;
  rawLength: number;
  codec: number;
  pack?: string;
}

/** Throw SNAP_CORRUPT when an object's recorded sizes are beyond what snap can have written. */
export function checkObjectClaim(id: Uint8Array, o: ClaimedObject, limits: ObjectLimits = ANY_CONFIG): void {
  const max = o.type === 'tree' ? limits.tree : limits.blob;
  // Named only when refused: this runs for every index entry read (a hex id per lookup was
  // 96 ms of a check of the bench corpus).
  const what = () => `object ${toHex(Buffer.from(id)).slice(0, 16)}${o.pack ? ` (in pack ${o.pack.slice(0, 12)})` : ''}`;
  if (o.rawLength > max) {
    throw new SnapError(
      'SNAP_CORRUPT',
      `${what()} claims ${o.rawLength} bytes, more than any ${o.type} of this repository can have (${max}): the repository is damaged or crafted`,
    );
  }
  if (o.length > maxStoredBytes(o.rawLength, o.codec)) {
    throw new SnapError('SNAP_CORRUPT', `${what()} claims ${o.length} stored bytes for ${o.rawLength} bytes of content: the repository is damaged or crafted`);
  }
}
