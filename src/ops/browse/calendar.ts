// `snap list --since/--until` and `snap list --by day|week|month|year`: a time window over snapshots
// and a compact calendar of it, one line per period that has snapshots. Pure functions; the
// calendar buckets are the ones retention uses (local days, ISO weeks, calendar months).
import { bucketKey } from '../../model/retention.js';
import type { StoredSnapshot } from '../../model/snapshot.js';

export interface TimeWindow {
  /** Inclusive lower bound. */
  since?: Date;
  /** Inclusive upper bound. */
  until?: Date;
}

export function inWindow(snaps: StoredSnapshot[], w: TimeWindow): StoredSnapshot[] {
  const lo = w.since?.getTime() ?? -Infinity;
  const hi = w.until?.getTime() ?? Infinity;
  return snaps.filter((s) => {
    const t = Date.parse(s.time);
    return t >= lo && t <= hi;
  });
}

export type CalendarUnit = 'day' | 'week' | 'month' | 'year';
/** The units `snap list --by` and the web UI's timeline take. */
export const CALENDAR_UNITS: readonly CalendarUnit[] = ['day', 'week', 'month', 'year'];

const PERIOD = { day: 'daily', week: 'weekly', month: 'monthly', year: 'yearly' } as const;

export interface CalendarPeriod {
  /** `2026-03-03`, `2026-W10`, `2026-03` or `2026`. */
  label: string;
  count: number;
  /** Sum of `summary.dataAdded`: what the period's snapshots added to the repository. */
  added: number;
  /** `summary.totalBytes` of the newest snapshot of the period. */
  size: number;
  first: StoredSnapshot;
  newest: StoredSnapshot;
}

/** Snapshots in time order (as listed) grouped by period, oldest period first. */
export function calendar(snaps: StoredSnapshot[], unit: CalendarUnit, timeZone?: string): CalendarPeriod[] {
  const byLabel = new Map<string, CalendarPeriod>();
  const sorted = [...snaps].sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
  for (const s of sorted) {
    const label = bucketKey(PERIOD[unit], new Date(s.time), timeZone);
    const p = byLabel.get(label);
    if (!p) byLabel.set(label, { label, count: 1, added: s.summary.dataAdded, size: s.summary.totalBytes, first: s, newest: s });
    else {
      p.count++;
      p.added += s.summary.dataAdded;
      p.size = s.summary.totalBytes;
      p.newest = s;
    }
  }
  // Labels sort as dates; ISO week-years keep `2026-W01` after `2025-W52`.
  return [...byLabel.values()].sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
}
