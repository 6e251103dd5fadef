// Dates on the command line, for snapshot references, --since/--until and --time alike: one
// parser (model/when.ts, syntax in docs/retention.md), in the local time zone, one vocabulary.
import { SnapError } from '../core/errors.js';
import { parseWhen, parseWhenRange } from '../model/when.js';
import { snapshotTime, TIME_RANGE } from '../model/snapshot.js';
import type { WhenParser } from '../ops/tree/refs.js';

export const whenParser: WhenParser = (text, now) => parseWhen(text, now);

const EXAMPLES = "examples: 2026-03-03, '2026-03-03 14:00', 2026-03-03T14:00:00Z, yesterday, '3 days ago'";

/**
 * A date option's value: the start or the end of the period it names (`2026-03-03` is a whole
 * day, `2026-03-03 14:00` a minute, `3 days ago` a moment). Invalid dates are usage errors.
 */
export function dateOption(flag: string, text: string, now: Date, edge: 'start' | 'end'): Date {
  const r = parseWhenRange(text, now);
  if (!r) throw new SnapError('SNAP_USAGE', `${flag} '${text}' is not a date (${EXAMPLES})`);
  return edge === 'start' ? r.start : r.end;
}

/** `--time`: the start of the named period, refused unless a snapshot record can hold it exactly. */
export function timeOption(text: string, now: Date): Date {
  const outOfRange = (): SnapError => new SnapError('SNAP_USAGE', `--time '${text}' is out of range: a snapshot records ${TIME_RANGE}`);
  // ISO 8601's expanded years (+010000-01-01, -000001-01-01) are dates, just not ones a record holds.
  if (/^\s*[+-]\d{4,}-\d\d/.test(text)) throw outOfRange();
  const t = dateOption('--time', text, now, 'start');
  if (snapshotTime(t) === undefined) throw outOfRange();
  return t;
}
