// Calendar durations (`--keep-within 1y6m`), wait durations (`--lock-wait 5m`) and the
// wall-clock arithmetic in an IANA time zone that retention and date references share.
// See docs/retention.md for the user-facing syntax.
import { SnapError } from '../core/errors.js';

/** A calendar duration as restic has it: years, months, days and hours (weeks become 7 days). */
export interface Duration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

const DURATION_UNITS: Record<string, keyof Duration> = { y: 'years', m: 'months', w: 'days', d: 'days', h: 'hours' };

/**
 * Parse `30d`, `1y2m`, `2w`, `12h`, `1y6m3d4h`. Units: y years, m MONTHS (as in restic), w weeks
 * (a snap extension: 7 days each), d days, h hours. Units may come in any order, each at most once.
 */
export function parseDuration(text: string): Duration {
  const s = text.trim();
  const d: Duration = { years: 0, months: 0, days: 0, hours: 0 };
  const seen = new Set<string>();
  const re = /(\d{1,6})([a-z]+)/gy;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(s)) !== null) {
    const unit = m[2]!;
    const field = DURATION_UNITS[unit];
    if (!field || seen.has(unit)) break;
    seen.add(unit);
    d[field] += Number(m[1]) * (unit === 'w' ? 7 : 1);
    end = re.lastIndex;
  }
  if (s === '' || end !== s.length) {
    throw new SnapError('SNAP_USAGE', `not a duration: '${text}' (use y, m for months, w, d, h, e.g. 30d, 1y6m, 2w, 12h)`);
  }
  return d;
}

export function isZeroDuration(d: Duration): boolean {
  return d.years === 0 && d.months === 0 && d.days === 0 && d.hours === 0;
}

/** `1y2m3d4h`, omitting zero parts; `0h` for the zero duration. */
export function formatDuration(d: Duration): string {
  const s = (d.years ? `${d.years}y` : '') + (d.months ? `${d.months}m` : '') + (d.days ? `${d.days}d` : '') + (d.hours ? `${d.hours}h` : '');
  return s === '' ? '0h' : s;
}

/**
 * Parse a wait such as `30s`, `5m`, `1h`, `1h30m`, `500ms` into milliseconds. Unlike
 * parseDuration, `m` here means MINUTES: nobody waits months for a lock. `0` means do not wait.
 */
export function parseWaitDuration(text: string): number {
  const s = text.trim();
  if (s === '0') return 0;
  const mult: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 };
  const re = /(\d{1,9})(ms|min|s|m|h)/gy;
  const seen = new Set<number>();
  let total = 0;
  let end = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    const f = mult[m[2]!]!;
    if (seen.has(f)) break;
    seen.add(f);
    total += Number(m[1]) * f;
    end = re.lastIndex;
  }
  if (s === '' || end !== s.length) {
    throw new SnapError('SNAP_USAGE', `not a wait duration: '${text}' (use ms, s, m for minutes, h, e.g. 30s, 5m, 1h30m)`);
  }
  return total;
}

// ---- wall-clock arithmetic in a time zone ----

/** The wall-clock reading of an instant in a zone; month is 1-12. */
export interface LocalParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  ms: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

// Formatters are costly to build and retention reads thousands of times, so keep one per zone.
function formatter(timeZone: string | undefined): Intl.DateTimeFormat {
  const key = timeZone ?? '';
  let f = formatters.get(key);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric',
        hour: 'numeric', minute: 'numeric', second: 'numeric',
      });
    } catch (e) {
      throw new SnapError('SNAP_USAGE', `unknown time zone: '${timeZone}'`, { cause: e });
    }
    formatters.set(key, f);
  }
  return f;
}

/** Wall-clock fields of `date` in `timeZone` (default: the process's local zone, honouring TZ). */
export function localParts(date: Date, timeZone?: string): LocalParts {
  const p: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(date)) {
    if (part.type !== 'literal') p[part.type] = Number(part.value);
  }
  return { year: p.year!, month: p.month!, day: p.day!, hour: p.hour!, minute: p.minute!, second: p.second!, ms: date.getUTCMilliseconds() };
}

/** Milliseconds of the wall-clock fields read as UTC; out-of-range fields roll over (day 0 = last of previous month). */
export function utcMs(year: number, month: number, day: number, hour = 0, minute = 0, second = 0, ms = 0): number {
  // setUTCFullYear instead of Date.UTC because Date.UTC maps years 0-99 to 1900-1999.
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, ms);
  return d.getTime();
}

function offsetAt(t: number, timeZone: string | undefined): number {
  const p = localParts(new Date(t), timeZone);
  return utcMs(p.year, p.month, p.day, p.hour, p.minute, p.second, p.ms) - t;
}

/**
 * The instant a wall-clock reading denotes in a zone. Like Temporal's 'compatible' choice: a
 * reading that happens twice (autumn) gives the earlier instant, a reading skipped by a DST gap
 * (spring) is moved forward by the gap. Out-of-range fields roll over as in utcMs.
 */
export function fromLocalParts(p: Omit<LocalParts, 'ms'> & { ms?: number }, timeZone?: string): Date {
  const wall = utcMs(p.year, p.month, p.day, p.hour, p.minute, p.second, p.ms ?? 0);
  // The offsets a day before and after bracket any single transition near this reading.
  const before = wall - offsetAt(wall - 86_400_000, timeZone);
  const after = wall - offsetAt(wall + 86_400_000, timeZone);
  const valid = (t: number): boolean => t + offsetAt(t, timeZone) === wall;
  if (valid(before)) return new Date(valid(after) ? Math.min(before, after) : before);
  if (valid(after)) return new Date(after);
  return new Date(before); // in a gap: the pre-transition offset lands just past the gap
}

function daysInMonth(year: number, month: number): number {
  return new Date(utcMs(year, month + 1, 0)).getUTCDate();
}

/**
 * `date` minus `dur`: years, months and days move the wall clock in the zone (so a day is 23 or
 * 25 hours across DST), then hours are subtracted as exact hours, the order restic uses. Unlike
 * Go's AddDate, a day missing in the target month is clamped: 31 March minus 1m is 28/29 February.
 */
export function subtractDuration(date: Date, dur: Duration, timeZone?: string): Date {
  let t = date.getTime();
  if (dur.years || dur.months || dur.days) {
    const p = localParts(date, timeZone);
    const monthIndex = p.year * 12 + (p.month - 1) - dur.years * 12 - dur.months;
    const year = Math.floor(monthIndex / 12);
    const month = monthIndex - year * 12 + 1;
    const day = Math.min(p.day, daysInMonth(year, month)) - dur.days;
    t = fromLocalParts({ ...p, year, month, day }, timeZone).getTime();
  }
  return new Date(t - dur.hours * 3_600_000);
}
