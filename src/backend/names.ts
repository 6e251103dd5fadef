// The rules for blob names, the same for every backend, so a name that works on a local
// directory works on S3 and the other way round, and a name can never reach outside the
// repository. A name is 1 to 8 segments joined by '/'; a segment is 1 to 255 characters from
// NAME_CHARS and does not start with '.' (which keeps out '.', '..', the local backend's
// temporary files and the S3 backend's probe object). The whole name is at most 512 bytes,
// which leaves room for an S3 key prefix within S3's 1024.
import { SnapError } from '../core/errors.js';

/** Every character a segment may hold: letters, digits and `-_.~+=,@`. */
export const NAME_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+=,@';
export const MAX_NAME_BYTES = 512;
const MAX_SEGMENT = 255;
const MAX_SEGMENTS = 8;
const SEGMENT = /^[A-Za-z0-9\-_~+=,@][A-Za-z0-9\-_.~+=,@]*$/;

export function isBlobName(name: string): boolean {
  if (name.length === 0 || name.length > MAX_NAME_BYTES) return false;
  const parts = name.split('/');
  if (parts.length > MAX_SEGMENTS) return false;
  return parts.every((p) => p.length <= MAX_SEGMENT && SEGMENT.test(p));
}

/** Throws SNAP_INTERNAL for a name that breaks the rules (names are made by snap: a bad one is a bug). */
export function checkBlobName(name: string): void {
  if (typeof name !== 'string' || !isBlobName(name)) {
    throw new SnapError('SNAP_INTERNAL', `invalid blob name ${JSON.stringify(name)}`);
  }
}

/** A list prefix is '' (everything) or a folder: a valid name followed by '/'. */
export function checkListPrefix(prefix: string): void {
  if (prefix === '') return;
  if (typeof prefix !== 'string' || !prefix.endsWith('/') || !isBlobName(prefix.slice(0, -1))) {
    throw new SnapError('SNAP_INTERNAL', `invalid list prefix ${JSON.stringify(prefix)}`);
  }
}
