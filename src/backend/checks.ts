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
