// "Now" for date references (`yesterday`, `3 days ago`, `today`). The hidden SNAP_NOW variable
// (an ISO 8601 instant) fixes it so end-to-end tests do not depend on the wall clock; it is read
// here only, never below the CLI.
import type { Clock } from '../core/clock.js';
import { SnapError } from '../core/errors.js';

export function cliNow(clock: Clock): Date {
  const fixed = process.env.SNAP_NOW;
  if (!fixed) return clock.now();
  const t = Date.parse(fixed);
  if (Number.isNaN(t)) throw new SnapError('SNAP_USAGE', `SNAP_NOW is not an ISO 8601 time: '${fixed}'`);
  return new Date(t);
}
