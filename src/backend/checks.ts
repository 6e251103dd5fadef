// Argument checks and errors of the Backend contract that every backend reports the same way.
import { SnapError } from '../core/errors.js';

/** Throws SNAP_INTERNAL unless offset and length are non-negative safe integers. */
export function checkRange(name: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new SnapError('SNAP_INTERNAL', `invalid range ${offset}+${length} of ${name}`);
  }
}

/** The error for a read that would reach past the end of a blob. */
export function shortBlobError(name: string, where: string, offset: number, length: number, size: number | undefined): SnapError {
  const got = size === undefined ? '' : ` (the blob has ${size} bytes)`;
  return new SnapError('SNAP_CORRUPT', `${name} in ${where} is shorter than expected: wanted ${length} bytes at offset ${offset}${got}`);
}

/** The error for a streaming put whose source gave another number of bytes than announced. */
export function sizeMismatchError(name: string, got: number, announced: number): SnapError {
  return new SnapError('SNAP_INTERNAL', `writing ${name}: the source gave ${got > announced ? `more than ${announced}` : got} bytes, ${announced} were announced`);
}

/**
 * A paged listing that must end: object stores return keys in ascending (UTF-8 byte) order, each
 * page after the last, with a continuation token that never repeats. A server (or something
 * between) that answers a token with a page seen before, with keys out of order, or with empty
 * pages without end would keep a listing going forever: SNAP_REMOTE instead, naming the store.
 */
export class ListingGuard {
  private last: Buffer | undefined;
  private readonly tokens = new Set<string>();
  private emptyInARow = 0;

  /** `where`: the store and the listing, as errors name them. */
  constructor(private readonly where: string, private readonly maxEmptyPages = 100) {}

  /** One page's keys in the order received, and the token for the next page (undefined: the end). */
  page(keys: readonly string[], next: string | undefined): void {
    for (const k of keys) {
      const b = Buffer.from(k, 'utf8');
      if (this.last && Buffer.compare(b, this.last) <= 0) {
        throw new SnapError('SNAP_REMOTE', `${this.where}: the server listed '${k}' after '${this.last.toString('utf8')}' (keys must come in ascending order, each once): the listing cannot be trusted`);
      }
      this.last = b;
    }
    if (next === undefined) return;
    this.emptyInARow = keys.length === 0 ? this.emptyInARow + 1 : 0;
    if (this.emptyInARow > this.maxEmptyPages) throw new SnapError('SNAP_REMOTE', `${this.where}: the server answered ${this.emptyInARow} empty pages in a row, each asking for more: the listing does not end`);
    if (this.tokens.has(next)) throw new SnapError('SNAP_REMOTE', `${this.where}: the server gave a continuation token it gave before: the listing would never end`);
    this.tokens.add(next);
  }
}

/**
 * A folder read in batches (SFTP's READDIR until EOF) that must end: each name comes once. A
 * server that answers with a batch it gave before, or with empty batches without end, would keep
 * the read going (and its memory growing) forever: SNAP_REMOTE instead, naming the folder.
 */
export class FolderListingGuard {
  private readonly seen = new Set<string>();
  private emptyInARow = 0;

  /** `where`: the folder and the store, as errors name them. */
  constructor(private readonly where: string, private readonly maxEmptyBatches = 100) {}

  batch(names: readonly Buffer[]): void {
    this.emptyInARow = names.length === 0 ? this.emptyInARow + 1 : 0;
    if (this.emptyInARow > this.maxEmptyBatches) throw new SnapError('SNAP_REMOTE', `${this.where}: the server answered ${this.emptyInARow} empty batches in a row without ending the listing`);
    for (const n of names) {
      const k = n.toString('latin1');
      if (this.seen.has(k)) throw new SnapError('SNAP_REMOTE', `${this.where}: the server listed '${n.toString('utf8')}' twice in one folder: the listing cannot be trusted`);
      this.seen.add(k);
    }
  }
}
