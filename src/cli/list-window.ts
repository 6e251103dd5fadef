// `--since/--until` (a time window, in date-reference syntax) for list, find and history, and
// the compact calendar of `snap list --by day|week|month|year`.
import type { Command } from 'commander';
import { SnapError } from '../core/errors.js';
import { shortId } from '../core/ids.js';
import type { StoredSnapshot } from '../model/snapshot.js';
import { CALENDAR_UNITS, calendar, inWindow, type CalendarUnit, type TimeWindow } from '../ops/browse/calendar.js';
import type { Ctx } from './context.js';
import { snapRefJson, plural } from './browse-out.js';
import { bytes, localDateTime, table } from './format.js';
import { dateOption } from './when.js';

export interface WindowFlags {
  since?: string;
  until?: string;
}

export function windowOptions(cmd: Command): Command {
  return cmd
    .option('--since <date>', 'only snapshots from the start of this date or time on (2026-03-03, 2026-03, 1w ago, ...)')
    .option('--until <date>', 'only snapshots up to the end of this date or time');
}

/** `--since` takes the start of the named period, `--until` its end, so both days are included whole. */
export function parseWindow(o: WindowFlags, now: Date): TimeWindow {
  const w: TimeWindow = {};
  if (o.since !== undefined) w.since = dateOption('--since', o.since, now, 'start');
  if (o.until !== undefined) w.until = dateOption('--until', o.until, now, 'end');
  if (w.since && w.until && w.since > w.until) throw new SnapError('SNAP_USAGE', `--since ${o.since} is after --until ${o.until}`);
  return w;
}

export function applyWindow(snaps: StoredSnapshot[], o: WindowFlags, now: Date): StoredSnapshot[] {
  return o.since === undefined && o.until === undefined ? snaps : inWindow(snaps, parseWindow(o, now));
}

export function parseUnit(by: string): CalendarUnit {
  const u = by.toLowerCase().replace(/ly$/, '').replace(/^dai$/, 'day');
  if (!(CALENDAR_UNITS as readonly string[]).includes(u)) throw new SnapError('SNAP_USAGE', `--by must be day, week, month or year, not '${by}'`);
  return u as CalendarUnit;
}

/** One line per period that has snapshots: the count, the bytes they added, the size of the newest. */
export function printCalendar(ctx: Ctx, snaps: StoredSnapshot[], by: string): void {
  const periods = calendar(snaps, parseUnit(by));
  if (ctx.json) {
    const rows = periods.map((p) => ({
      period: p.label,
      count: p.count,
      added: p.added,
      size: p.size,
      first: snapRefJson(p.first),
      newest: snapRefJson(p.newest),
    }));
    return ctx.out(JSON.stringify(rows, null, 2));
  }
  if (periods.length === 0) return ctx.out('no snapshots');
  const rows = [['Period', 'Snapshots', 'Added', 'Size', 'Newest']];
  for (const p of periods) {
    rows.push([p.label, String(p.count), bytes(p.added), bytes(p.size), `${shortId(p.newest.id)} ${localDateTime(new Date(p.newest.time))}`]);
  }
  ctx.out(table(rows, new Set([1, 2, 3])));
  const added = periods.reduce((s, p) => s + p.added, 0);
  ctx.out(`${plural(snaps.length, 'snapshot')} in ${plural(periods.length, parseUnit(by))}, ${bytes(added)} added`);
}
