// Which snapshots a `forget` policy keeps: a pure function with restic's semantics (see
// docs/retention.md). Calendar buckets are taken in a time zone so tests need not depend on TZ.
import { SnapError } from '../core/errors.js';
import { formatDuration, isZeroDuration, localParts, subtractDuration, utcMs, type Duration } from './duration.js';

export interface RetentionInput {
  id: string;
  time: Date;
  hostname: string;
  paths: string[];
  tags: string[];
}

/** Counts: 0 or absent = rule off, -1 = unlimited (restic's `unlimited`). */
export interface RetentionPolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  within?: Duration;
  withinHourly?: Duration;
  withinDaily?: Duration;
  withinWeekly?: Duration;
  withinMonthly?: Duration;
  withinYearly?: Duration;
  /** Keep snapshots having every tag of any one set; an empty set (or `['']`) means "has no tags". */
  tags?: string[][];
}

export interface Decision {
  snapshot: RetentionInput;
  reasons: string[];
}

export const UNLIMITED = -1;

type Period = 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';
const PERIODS: Period[] = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'];
const WITHIN_KEY = {
  hourly: 'withinHourly', daily: 'withinDaily', weekly: 'withinWeekly', monthly: 'withinMonthly', yearly: 'withinYearly',
} as const;

export function isEmptyPolicy(p: RetentionPolicy): boolean {
  const counts = [p.last, ...PERIODS.map((k) => p[k])];
  const durations = [p.within, ...PERIODS.map((k) => p[WITHIN_KEY[k]])];
  return counts.every((c) => !c) && durations.every((d) => !d || isZeroDuration(d)) && !(p.tags && p.tags.length > 0);
}

/** Newest first; equal times are ordered by id so the result never depends on input order. */
export function sortNewestFirst<T extends { id: string; time: Date }>(snaps: T[]): T[] {
  return [...snaps].sort((a, b) => b.time.getTime() - a.time.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/**
 * The calendar bucket of an instant. Hours carry the UTC offset so the hour repeated when DST
 * ends counts as two hours (restic would merge them); weeks are ISO weeks with their week-year.
 */
export function bucketKey(period: Period, time: Date, timeZone?: string): string {
  const p = localParts(time, timeZone);
  const ymd = `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)}`;
  switch (period) {
    case 'hourly': {
      const off = Math.round((utcMs(p.year, p.month, p.day, p.hour, p.minute, p.second, p.ms) - time.getTime()) / 60_000);
      const sign = off < 0 ? '-' : '+';
      return `${ymd}T${pad(p.hour)}${sign}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
    }
    case 'daily':
      return ymd;
    case 'weekly': {
      // The ISO week belongs to the year holding its Thursday.
      const day = utcMs(p.year, p.month, p.day);
      const thursday = day + (3 - ((new Date(day).getUTCDay() + 6) % 7)) * 86_400_000;
      const weekYear = new Date(thursday).getUTCFullYear();
      const week = Math.floor((thursday - utcMs(weekYear, 1, 1)) / (7 * 86_400_000)) + 1;
      return `${pad(weekYear, 4)}-W${pad(week)}`;
    }
    case 'monthly':
      return `${pad(p.year, 4)}-${pad(p.month)}`;
    case 'yearly':
      return pad(p.year, 4);
  }
}

function validate(p: RetentionPolicy): void {
  for (const k of ['last', ...PERIODS] as const) {
    const c = p[k];
    if (c !== undefined && !(Number.isInteger(c) && c >= -1)) {
      throw new SnapError('SNAP_USAGE', `--keep-${k} must be a whole number (or unlimited), got ${c}`);
    }
  }
}

function hasTagSet(s: RetentionInput, set: string[]): boolean {
  const wanted = set.filter((t) => t !== '');
  return wanted.length === 0 ? s.tags.length === 0 : wanted.every((t) => s.tags.includes(t));
}

function tagReason(set: string[]): string {
  const wanted = set.filter((t) => t !== '');
  return wanted.length === 0 ? 'untagged' : `${wanted.length === 1 ? 'tag' : 'tags'} ${wanted.join(',')}`;
}

export interface ApplyOptions {
  /** IANA zone for calendar buckets and `within` arithmetic; default the process's local zone. */
  timeZone?: string;
}

/**
 * Apply a policy to ONE group of snapshots (see groupSnapshots). Rules are ORed; a kept snapshot
 * lists every rule that kept it. `now` only matters for `within`: as in restic, durations are
 * measured back from the newest snapshot that is not in the future, so a host that stopped
 * backing up does not lose everything; future snapshots are kept by `within` rules.
 */
export function applyPolicy(
  snapshots: RetentionInput[],
  policy: RetentionPolicy,
  now: Date,
  opts: ApplyOptions = {},
): { keep: Decision[]; remove: Decision[] } {
  validate(policy);
  const list = sortNewestFirst(snapshots);
  if (isEmptyPolicy(policy)) return { keep: list.map((s) => ({ snapshot: s, reasons: ['policy is empty'] })), remove: [] };
  const tz = opts.timeZone;
  const latest = list.find((s) => s.time.getTime() <= now.getTime())?.time ?? new Date(-8.64e15);
  const cutoff = (d: Duration | undefined): number | undefined =>
    d && !isZeroDuration(d) ? subtractDuration(latest, d, tz).getTime() : undefined;

  const counted = [
    { reason: 'last snapshot', left: policy.last ?? 0, period: undefined as Period | undefined, seen: new Set<string>() },
    ...PERIODS.map((k) => ({ reason: `${k} snapshot`, left: policy[k] ?? 0, period: k as Period | undefined, seen: new Set<string>() })),
  ];
  const withinAll = cutoff(policy.within);
  const withinBuckets = PERIODS.map((k) => {
    const d = policy[WITHIN_KEY[k]];
    return { reason: `${k} within ${d ? formatDuration(d) : ''}`, period: k, cutoff: cutoff(d), seen: new Set<string>() };
  });

  const keep: Decision[] = [];
  const remove: Decision[] = [];
  list.forEach((s, nr) => {
    const reasons: string[] = [];
    const t = s.time.getTime();
    for (const set of policy.tags ?? []) if (hasTagSet(s, set)) reasons.push(tagReason(set));
    // Strictly newer than the cutoff, as restic: exactly `within` before the newest is not kept.
    if (withinAll !== undefined && t > withinAll) reasons.push(`within ${formatDuration(policy.within!)}`);
    for (const b of counted) {
      if (b.left === 0) continue;
      const key = b.period ? bucketKey(b.period, s.time, tz) : `#${nr}`;
      const isNew = !b.seen.has(key);
      // restic 0.17+: while a rule still has counts left, also keep the oldest snapshot, so the
      // history reaches back as far as it can.
      if (isNew || nr === list.length - 1) {
        b.seen.add(key);
        if (b.left > 0) b.left--;
        reasons.push(isNew ? b.reason : `oldest ${b.reason}`);
      }
    }
    for (const b of withinBuckets) {
      if (b.cutoff === undefined || t <= b.cutoff) continue;
      const key = bucketKey(b.period, s.time, tz);
      if (!b.seen.has(key)) {
        b.seen.add(key);
        reasons.push(b.reason);
      }
    }
    (reasons.length > 0 ? keep : remove).push({ snapshot: s, reasons });
  });
  return { keep, remove };
}

export type GroupField = 'host' | 'paths' | 'tags';

// Bare when safe, JSON-quoted otherwise, so distinct groups can never print the same key.
function keyItem(v: string): string {
  return /^[^\s,"\\=]+$/.test(v) ? v : JSON.stringify(v);
}

/**
 * Split snapshots into the groups a policy is applied to separately, keyed like
 * `host=a paths=/x,/y tags=daily`. Paths and tags are compared as sets. Fields always appear in
 * the order host, paths, tags; an empty groupBy puts everything in one group with key ''.
 * Groups come out sorted by key; each keeps its snapshots' input order.
 */
export function groupSnapshots(snaps: RetentionInput[], groupBy: GroupField[]): Map<string, RetentionInput[]> {
  const fields = (['host', 'paths', 'tags'] as const).filter((f) => groupBy.includes(f));
  const groups = new Map<string, RetentionInput[]>();
  for (const s of snaps) {
    const key = fields
      .map((f) => (f === 'host' ? `host=${keyItem(s.hostname)}` : `${f}=${[...new Set(s[f])].sort().map(keyItem).join(',')}`))
      .join(' ');
    const g = groups.get(key);
    if (g) g.push(s);
    else groups.set(key, [s]);
  }
  return new Map([...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
