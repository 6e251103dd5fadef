// Date references in place of a snapshot id: `2026-03-03`, `yesterday`, `3 days ago`, ...
// A reference names a period (a day, a month, a minute, a second, or an exact moment); "at or
// before" it means before the period's END, "since" it means from its START. See docs/retention.md.
import { SnapError } from '../core/errors.js';
import { fromLocalParts, localParts, subtractDuration, utcMs, type Duration } from './duration.js';

export interface WhenRange {
  start: Date;
  end: Date; // inclusive: the last millisecond of the period
}

const usage = (text: string, why: string): SnapError => new SnapError('SNAP_USAGE', `not a valid date '${text}': ${why}`);

// Exact units are subtracted as milliseconds; calendar units move the local wall clock.
const AGO_UNITS: Array<[RegExp, number | keyof Duration, number]> = [
  [/^(s|secs?|seconds?)$/, 1000, 1],
  [/^(min|mins|minutes?)$/, 60_000, 1],
  [/^(h|hrs?|hours?)$/, 'hours', 1],
  [/^(d|days?)$/, 'days', 1],
  [/^(w|wks?|weeks?)$/, 'days', 7],
  [/^(mo|mons?|months?)$/, 'months', 1],
  [/^(y|yrs?|years?)$/, 'years', 1],
];

function ago(text: string, n: number, unit: string, now: Date, timeZone?: string): Date {
  if (unit === 'm') throw usage(text, "'m' is ambiguous here; write 'min' or 'month'");
  const hit = AGO_UNITS.find(([re]) => re.test(unit));
  if (!hit) throw usage(text, `unknown unit '${unit}' (use min, h, d, w, month, y)`);
  const [, what, times] = hit;
  if (typeof what === 'number') return new Date(now.getTime() - n * times * what);
  return subtractDuration(now, { years: 0, months: 0, days: 0, hours: 0, [what]: n * times }, timeZone);
}

function localDay(now: Date, back: number, timeZone?: string): WhenRange {
  const p = localParts(now, timeZone);
  const start = fromLocalParts({ year: p.year, month: p.month, day: p.day - back, hour: 0, minute: 0, second: 0 }, timeZone);
  const next = fromLocalParts({ year: p.year, month: p.month, day: p.day - back + 1, hour: 0, minute: 0, second: 0 }, timeZone);
  return { start, end: new Date(next.getTime() - 1) };
}

const DATE_TIME =
  /^(\d{4})-(\d{2})(?:-(\d{2})(?:[t ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(z|[+-]\d{2}(?::?\d{2})?)?)?)?$/;

/**
 * The period a reference names, or undefined when `text` is not a date reference at all (so the
 * caller can treat it as a snapshot id). A bare number such as `2026` or `20260303` is never a
 * date: it could be a hex id prefix. Text that is clearly meant as a date but is invalid
 * (`2026-02-30`, `5m ago`) throws SNAP_USAGE instead of silently falling back.
 */
export function parseWhenRange(text: string, now: Date, timeZone?: string): WhenRange | undefined {
  const s = text.trim().toLowerCase();
  const at = (d: Date): WhenRange => ({ start: d, end: d });
  if (s === 'now') return at(now);
  if (s === 'today') return localDay(now, 0, timeZone);
  if (s === 'yesterday') return localDay(now, 1, timeZone);
  const rel = /^(\d{1,6})\s*([a-z]+)\s+ago$/.exec(s);
  if (rel) return at(ago(text, Number(rel[1]), rel[2]!, now, timeZone));
  if (s.endsWith(' ago')) throw usage(text, "write '<number> <unit> ago', e.g. '3 days ago', '2h ago'");

  const m = DATE_TIME.exec(s);
  if (!m) return undefined;
  const [year, month] = [Number(m[1]), Number(m[2])];
  const day = m[3] === undefined ? 1 : Number(m[3]);
  const [hour, minute, second] = [Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0)];
  const ms = m[7] === undefined ? 0 : Number(m[7].padEnd(3, '0'));
  if (month < 1 || month > 12) throw usage(text, 'month must be 01-12');
  if (day < 1 || new Date(utcMs(year, month, day)).getUTCDate() !== day) throw usage(text, `${m[1]}-${m[2]} has no day ${m[3]}`);
  if (hour > 23 || minute > 59 || second > 59) throw usage(text, 'time must be 00:00-23:59:59');

  // The period's length follows the precision written; the next period starts where it ends.
  const fields = { year, month, day, hour, minute, second, ms };
  const next = { ...fields };
  if (m[3] === undefined) next.month += 1;
  else if (m[4] === undefined) next.day += 1;
  else if (m[6] === undefined) next.minute += 1;
  else if (m[7] === undefined) next.second += 1;
  else next.ms += 1;

  const zone = m[8];
  if (zone === undefined) {
    const start = fromLocalParts(fields, timeZone);
    return { start, end: new Date(fromLocalParts(next, timeZone).getTime() - 1) };
  }
  const off = zone === 'z' ? 0 : offsetMinutes(text, zone);
  const toInstant = (f: typeof fields): number => utcMs(f.year, f.month, f.day, f.hour, f.minute, f.second, f.ms) - off * 60_000;
  return { start: new Date(toInstant(fields)), end: new Date(toInstant(next) - 1) };
}

function offsetMinutes(text: string, zone: string): number {
  const digits = zone.slice(1).replace(':', '');
  const h = Number(digits.slice(0, 2));
  const min = digits.length > 2 ? Number(digits.slice(2)) : 0;
  if (h > 23 || min > 59) throw usage(text, `bad UTC offset '${zone}'`);
  return (zone.startsWith('-') ? -1 : 1) * (h * 60 + min);
}

/** The moment to pick "the newest snapshot at or before": the END of the named period. */
export function parseWhen(text: string, now: Date, timeZone?: string): Date | undefined {
  return parseWhenRange(text, now, timeZone)?.end;
}

/** For `--since`: the START of the named period (midnight for a date-only form). */
export function parseWhenStart(text: string, now: Date, timeZone?: string): Date | undefined {
  return parseWhenRange(text, now, timeZone)?.start;
}
