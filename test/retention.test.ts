import { describe, expect, it } from 'vitest';
import { parseDuration } from '../src/model/duration.js';
import {
  applyPolicy, bucketKey, groupSnapshots, isEmptyPolicy, type RetentionInput, type RetentionPolicy,
} from '../src/model/retention.js';

const S = (id: string, time: string, extra: Partial<RetentionInput> = {}): RetentionInput => ({
  id, time: new Date(time), hostname: 'h', paths: ['/data'], tags: [], ...extra,
});
const d = parseDuration;
const LATER = new Date('2030-01-01T00:00:00Z'); // "now" well after every snapshot

// D: a year of irregular snapshots, UTC. Comments give the UTC day and ISO week.
const D = [
  S('a01', '2024-06-01T12:00:00Z'), // Sat 2024-W22
  S('a02', '2025-12-29T08:00:00Z'), // Mon 2026-W01
  S('a03', '2025-12-31T23:00:00Z'), // Wed 2026-W01: ISO week-year 2026, calendar year 2025
  S('a04', '2026-01-01T09:00:00Z'), // Thu 2026-W01
  S('a05', '2026-01-05T10:00:00Z'), // Mon 2026-W02
  S('a06', '2026-01-05T18:00:00Z'), // Mon 2026-W02
  S('a07', '2026-01-31T23:59:00Z'), // Sat 2026-W05
  S('a08', '2026-02-15T12:00:00Z'), // Sun 2026-W07
  S('a09', '2026-02-28T12:00:00Z'), // Sat 2026-W09
  S('a10', '2026-03-01T22:15:00Z'), // Sun 2026-W09
  S('a11', '2026-03-01T23:00:00Z'), // Sun 2026-W09
  S('a12', '2026-03-02T00:30:00Z'), // Mon 2026-W10
];

// The oldest snapshot shares a day with a newer one.
const B = [S('b1', '2026-05-01T08:00:00Z'), S('b2', '2026-05-01T12:00:00Z'), S('b3', '2026-05-02T10:00:00Z')];

const T = [
  S('t1', '2026-01-01T00:00:00Z', { tags: ['x'] }),
  S('t2', '2026-01-02T00:00:00Z', { tags: ['keep', 'x'] }),
  S('t3', '2026-01-03T00:00:00Z', { tags: ['keep'] }),
  S('t4', '2026-01-04T00:00:00Z'),
];

interface Case {
  name: string;
  snaps: RetentionInput[];
  policy: RetentionPolicy;
  tz?: string;
  now?: Date;
  keep: string[]; // newest first; every other snapshot must be removed
  reasons?: Record<string, string[]>; // when given: the exact reasons of every kept snapshot
}

const CASES: Case[] = [
  { name: 'last 3', snaps: D, policy: { last: 3 }, keep: ['a12', 'a11', 'a10'] },
  { name: 'last beyond the count keeps all', snaps: B, policy: { last: 20 }, keep: ['b3', 'b2', 'b1'],
    reasons: { b3: ['last snapshot'], b2: ['last snapshot'], b1: ['last snapshot'] } },
  { name: 'hourly 3', snaps: D, policy: { hourly: 3 }, keep: ['a12', 'a11', 'a10'] },
  { name: 'daily 3: newest of each day', snaps: D, policy: { daily: 3 }, keep: ['a12', 'a11', 'a09'] },
  { name: 'daily 10', snaps: D, policy: { daily: 10 }, keep: ['a12', 'a11', 'a09', 'a08', 'a07', 'a06', 'a04', 'a03', 'a02', 'a01'] },
  { name: 'weekly 4', snaps: D, policy: { weekly: 4 }, keep: ['a12', 'a11', 'a08', 'a07'] },
  // a03 (2025-12-31) and a02 are in ISO week 2026-W01 with a04, so they are not weekly snapshots.
  { name: 'weekly 6 across the ISO week-year', snaps: D, policy: { weekly: 6 }, keep: ['a12', 'a11', 'a08', 'a07', 'a06', 'a04'] },
  { name: 'weekly 7', snaps: D, policy: { weekly: 7 }, keep: ['a12', 'a11', 'a08', 'a07', 'a06', 'a04', 'a01'] },
  { name: 'monthly 3', snaps: D, policy: { monthly: 3 }, keep: ['a12', 'a09', 'a07'] },
  { name: 'monthly 5 across the year', snaps: D, policy: { monthly: 5 }, keep: ['a12', 'a09', 'a07', 'a03', 'a01'] },
  { name: 'yearly 2', snaps: D, policy: { yearly: 2 }, keep: ['a12', 'a03'] },
  { name: 'yearly 5: fewer years than asked', snaps: D, policy: { yearly: 5 }, keep: ['a12', 'a03', 'a01'],
    reasons: { a12: ['yearly snapshot'], a03: ['yearly snapshot'], a01: ['yearly snapshot'] } },
  { name: 'daily 2 weekly 2 monthly 2 yearly 3', snaps: D, policy: { daily: 2, weekly: 2, monthly: 2, yearly: 3 },
    keep: ['a12', 'a11', 'a09', 'a03', 'a01'],
    reasons: {
      a12: ['daily snapshot', 'weekly snapshot', 'monthly snapshot', 'yearly snapshot'],
      a11: ['daily snapshot', 'weekly snapshot'],
      a09: ['monthly snapshot'],
      a03: ['yearly snapshot'],
      a01: ['yearly snapshot'],
    } },
  { name: 'last 1 monthly 2', snaps: D, policy: { last: 1, monthly: 2 }, keep: ['a12', 'a09'],
    reasons: { a12: ['last snapshot', 'monthly snapshot'], a09: ['monthly snapshot'] } },

  // restic 0.17: a rule with counts left also keeps the oldest snapshot.
  { name: 'daily 5 keeps the oldest too', snaps: B, policy: { daily: 5 }, keep: ['b3', 'b2', 'b1'],
    reasons: { b3: ['daily snapshot'], b2: ['daily snapshot'], b1: ['oldest daily snapshot'] } },
  { name: 'daily 2 used up: no oldest', snaps: B, policy: { daily: 2 }, keep: ['b3', 'b2'] },
  { name: 'daily unlimited', snaps: B, policy: { daily: -1 }, keep: ['b3', 'b2', 'b1'] },
  { name: 'monthly 2 skips the middle one', snaps: B, policy: { monthly: 2 }, keep: ['b3', 'b1'],
    reasons: { b3: ['monthly snapshot'], b1: ['oldest monthly snapshot'] } },
  { name: 'monthly 1', snaps: B, policy: { monthly: 1 }, keep: ['b3'] },

  // within: measured back from the newest snapshot (a12, 2026-03-02 00:30), not from now.
  { name: 'within 30d', snaps: D, policy: { within: d('30d') }, keep: ['a12', 'a11', 'a10', 'a09', 'a08', 'a07'],
    reasons: Object.fromEntries(['a12', 'a11', 'a10', 'a09', 'a08', 'a07'].map((id) => [id, ['within 30d']])) },
  { name: 'within 1m', snaps: D, policy: { within: d('1m') }, keep: ['a12', 'a11', 'a10', 'a09', 'a08'] },
  { name: 'within 2w (from 16 Feb 00:30)', snaps: D, policy: { within: d('2w') }, keep: ['a12', 'a11', 'a10', 'a09'] },
  { name: 'within is strict at the boundary', policy: { within: d('1d') }, keep: ['c2'],
    snaps: [S('c1', '2026-03-01T00:00:00Z'), S('c2', '2026-03-02T00:00:00Z')] },
  { name: 'within 25h', policy: { within: d('25h') }, keep: ['c2', 'c1'],
    snaps: [S('c1', '2026-03-01T00:00:00Z'), S('c2', '2026-03-02T00:00:00Z')] },
  { name: 'within 1h from the newest', snaps: D, policy: { within: d('1h') }, keep: ['a12'] },
  // a12 is in the future: it is kept, and the window starts at a11 (23:00).
  { name: 'within ignores future snapshots for its reference', snaps: D, policy: { within: d('1h') },
    now: new Date('2026-03-01T23:30:00Z'), keep: ['a12', 'a11', 'a10'] },
  { name: 'within plus last', snaps: D, policy: { within: d('1h'), last: 2 }, keep: ['a12', 'a11'],
    reasons: { a12: ['within 1h', 'last snapshot'], a11: ['last snapshot'] } },
  { name: 'within-daily 2d', snaps: D, policy: { withinDaily: d('2d') }, keep: ['a12', 'a11', 'a09'],
    reasons: { a12: ['daily within 2d'], a11: ['daily within 2d'], a09: ['daily within 2d'] } },
  { name: 'within-monthly 1y', snaps: D, policy: { withinMonthly: d('1y') }, keep: ['a12', 'a09', 'a07', 'a03'] },
  // Across the spring change a calendar day is 23 hours: 23.5 hours back is outside 1d, inside 24h.
  { name: 'within 1d in Berlin (23-hour day)', tz: 'Europe/Berlin', policy: { within: d('1d') }, keep: ['e2'],
    snaps: [S('e1', '2026-03-28T10:30:00Z'), S('e2', '2026-03-29T10:00:00Z')] },
  { name: 'within 24h in Berlin', tz: 'Europe/Berlin', policy: { within: d('24h') }, keep: ['e2', 'e1'],
    snaps: [S('e1', '2026-03-28T10:30:00Z'), S('e2', '2026-03-29T10:00:00Z')] },
  { name: 'within 1d in UTC', policy: { within: d('1d') }, keep: ['e2', 'e1'],
    snaps: [S('e1', '2026-03-28T10:30:00Z'), S('e2', '2026-03-29T10:00:00Z')] },

  // tags
  { name: 'tag keep', snaps: T, policy: { tags: [['keep']] }, keep: ['t3', 't2'],
    reasons: { t3: ['tag keep'], t2: ['tag keep'] } },
  { name: 'tags keep,x need both', snaps: T, policy: { tags: [['keep', 'x']] }, keep: ['t2'], reasons: { t2: ['tags keep,x'] } },
  { name: 'tag keep or tag x', snaps: T, policy: { tags: [['keep'], ['x']] }, keep: ['t3', 't2', 't1'],
    reasons: { t3: ['tag keep'], t2: ['tag keep', 'tag x'], t1: ['tag x'] } },
  { name: "keep-tag '' keeps untagged", snaps: T, policy: { tags: [['']] }, keep: ['t4'], reasons: { t4: ['untagged'] } },
  { name: 'tags do not use up counts', snaps: T, policy: { tags: [['keep']], last: 2 }, keep: ['t4', 't3', 't2'],
    reasons: { t4: ['last snapshot'], t3: ['tag keep', 'last snapshot'], t2: ['tag keep'] } },

  // calendar boundaries depend on the zone
  { name: 'month boundary in Berlin', tz: 'Europe/Berlin', policy: { monthly: 2 }, keep: ['m2', 'm0'],
    snaps: [S('m0', '2026-01-10T12:00:00Z'), S('m1', '2026-01-31T23:30:00Z'), S('m2', '2026-02-10T12:00:00Z')] },
  { name: 'month boundary in UTC', policy: { monthly: 2 }, keep: ['m2', 'm1'],
    snaps: [S('m0', '2026-01-10T12:00:00Z'), S('m1', '2026-01-31T23:30:00Z'), S('m2', '2026-02-10T12:00:00Z')] },
  { name: 'year boundary in Berlin', tz: 'Europe/Berlin', policy: { yearly: 2 }, keep: ['y2', 'y0'],
    snaps: [S('y0', '2025-06-01T12:00:00Z'), S('y1', '2025-12-31T23:30:00Z'), S('y2', '2026-06-01T12:00:00Z')] },
  { name: 'year boundary in UTC', policy: { yearly: 2 }, keep: ['y2', 'y1'],
    snaps: [S('y0', '2025-06-01T12:00:00Z'), S('y1', '2025-12-31T23:30:00Z'), S('y2', '2026-06-01T12:00:00Z')] },
  // 2020-12-31 (Thu) and 2021-01-03 (Sun) are both in ISO week 53 of 2020.
  { name: 'ISO week 53', policy: { weekly: 2 }, keep: ['i3', 'i2'],
    snaps: [S('i0', '2020-12-20T12:00:00Z'), S('i1', '2020-12-31T12:00:00Z'), S('i2', '2021-01-03T12:00:00Z'), S('i3', '2021-01-04T12:00:00Z')] },
  { name: 'ISO week 53, weekly 3', policy: { weekly: 3 }, keep: ['i3', 'i2', 'i0'],
    snaps: [S('i0', '2020-12-20T12:00:00Z'), S('i1', '2020-12-31T12:00:00Z'), S('i2', '2021-01-03T12:00:00Z'), S('i3', '2021-01-04T12:00:00Z')] },

  // DST, Europe/Berlin: 29 March 2026 02:00 CET -> 03:00 CEST; 25 October 03:00 CEST -> 02:00 CET.
  { name: 'daily across the spring change in Berlin', tz: 'Europe/Berlin', policy: { daily: 10 }, keep: ['e6', 'e5', 'e1'],
    snaps: [
      S('e1', '2026-03-28T22:30:00Z'), // 28th 23:30 CET
      S('e2', '2026-03-28T23:30:00Z'), // 29th 00:30 CET
      S('e3', '2026-03-29T00:59:00Z'), // 29th 01:59 CET
      S('e4', '2026-03-29T01:00:00Z'), // 29th 03:00 CEST
      S('e5', '2026-03-29T21:59:00Z'), // 29th 23:59 CEST
      S('e6', '2026-03-29T22:00:00Z'), // 30th 00:00 CEST
    ] },
  { name: 'the same snapshots by UTC days', policy: { daily: 10 }, keep: ['e6', 'e2', 'e1'],
    reasons: { e6: ['daily snapshot'], e2: ['daily snapshot'], e1: ['oldest daily snapshot'] },
    snaps: [
      S('e1', '2026-03-28T22:30:00Z'), S('e2', '2026-03-28T23:30:00Z'), S('e3', '2026-03-29T00:59:00Z'),
      S('e4', '2026-03-29T01:00:00Z'), S('e5', '2026-03-29T21:59:00Z'), S('e6', '2026-03-29T22:00:00Z'),
    ] },
  // 02:00-03:00 happens twice; each real hour is its own hourly bucket.
  { name: 'hourly across the autumn change in Berlin', tz: 'Europe/Berlin', policy: { hourly: 3 }, keep: ['f5', 'f4', 'f2'],
    snaps: [
      S('f1', '2026-10-25T00:10:00Z'), // 02:10 CEST
      S('f2', '2026-10-25T00:50:00Z'), // 02:50 CEST
      S('f3', '2026-10-25T01:10:00Z'), // 02:10 CET
      S('f4', '2026-10-25T01:50:00Z'), // 02:50 CET
      S('f5', '2026-10-25T02:10:00Z'), // 03:10 CET
    ] },
  { name: 'the 25-hour day is one day in Berlin', tz: 'Europe/Berlin', policy: { daily: 2 }, keep: ['g2', 'g0'],
    snaps: [
      S('g0', '2026-10-24T21:30:00Z'), // 24th 23:30 CEST
      S('g1', '2026-10-24T22:30:00Z'), // 25th 00:30 CEST
      S('g2', '2026-10-25T22:30:00Z'), // 25th 23:30 CET
    ] },
  { name: 'the same snapshots by UTC days', policy: { daily: 2 }, keep: ['g2', 'g1'],
    snaps: [S('g0', '2026-10-24T21:30:00Z'), S('g1', '2026-10-24T22:30:00Z'), S('g2', '2026-10-25T22:30:00Z')] },

  // DST, America/New_York: 8 March 2026 02:00 EST -> 03:00 EDT; 1 November 02:00 EDT -> 01:00 EST.
  { name: 'daily around the spring change in New York', tz: 'America/New_York', policy: { daily: 3 }, keep: ['n4', 'n3', 'n1'],
    snaps: [
      S('n1', '2026-03-08T04:30:00Z'), // 7th 23:30 EST
      S('n2', '2026-03-08T05:30:00Z'), // 8th 00:30 EST
      S('n3', '2026-03-09T03:30:00Z'), // 8th 23:30 EDT
      S('n4', '2026-03-09T04:30:00Z'), // 9th 00:30 EDT
    ] },
  { name: 'the same snapshots by UTC days', policy: { daily: 3 }, keep: ['n4', 'n2', 'n1'],
    reasons: { n4: ['daily snapshot'], n2: ['daily snapshot'], n1: ['oldest daily snapshot'] },
    snaps: [S('n1', '2026-03-08T04:30:00Z'), S('n2', '2026-03-08T05:30:00Z'), S('n3', '2026-03-09T03:30:00Z'), S('n4', '2026-03-09T04:30:00Z')] },
  { name: 'hourly in the repeated hour in New York', tz: 'America/New_York', policy: { hourly: 2 }, keep: ['h4', 'h2'],
    snaps: [
      S('h1', '2026-11-01T05:15:00Z'), // 01:15 EDT
      S('h2', '2026-11-01T05:45:00Z'), // 01:45 EDT
      S('h3', '2026-11-01T06:15:00Z'), // 01:15 EST
      S('h4', '2026-11-01T06:45:00Z'), // 01:45 EST
    ] },
  { name: 'weekly: Sunday night in New York is Monday in UTC', tz: 'America/New_York', policy: { weekly: 2 }, keep: ['w2', 'w1'],
    snaps: [S('w0', '2026-03-02T12:00:00Z'), S('w1', '2026-03-09T03:30:00Z'), S('w2', '2026-03-09T04:30:00Z')] },
  { name: 'weekly in UTC', policy: { weekly: 2 }, keep: ['w2', 'w0'],
    snaps: [S('w0', '2026-03-02T12:00:00Z'), S('w1', '2026-03-09T03:30:00Z'), S('w2', '2026-03-09T04:30:00Z')] },

  // identical times: the smaller id counts as newer
  { name: 'identical times, last 1', policy: { last: 1 }, keep: ['a'],
    snaps: [S('c', '2026-01-01T00:00:00Z'), S('a', '2026-01-01T00:00:00Z'), S('b', '2026-01-01T00:00:00Z')] },
  { name: 'identical times, daily 1', policy: { daily: 1 }, keep: ['a'],
    snaps: [S('b', '2026-01-01T00:00:00Z'), S('c', '2026-01-01T00:00:00Z'), S('a', '2026-01-01T00:00:00Z')] },
  { name: 'empty list', snaps: [], policy: { last: 1 }, keep: [] },
];

// Independent of the implementation's sort: newest first, ties by id.
const newestFirst = (snaps: RetentionInput[]): string[] =>
  [...snaps].sort((a, b) => b.time.getTime() - a.time.getTime() || a.id.localeCompare(b.id)).map((s) => s.id);

describe('applyPolicy golden table', () => {
  it.each(CASES)('$name', ({ snaps, policy, tz, now, keep, reasons }) => {
    const r = applyPolicy(snaps, policy, now ?? LATER, { timeZone: tz ?? 'UTC' });
    expect(r.keep.map((k) => k.snapshot.id)).toEqual(keep);
    expect(r.remove.map((k) => k.snapshot.id)).toEqual(newestFirst(snaps).filter((id) => !keep.includes(id)));
    for (const rm of r.remove) expect(rm.reasons).toEqual([]);
    for (const k of r.keep) expect(k.reasons.length).toBeGreaterThan(0);
    if (reasons) expect(Object.fromEntries(r.keep.map((k) => [k.snapshot.id, k.reasons]))).toEqual(reasons);
  });

  it('does not depend on input order', () => {
    const reversed = applyPolicy([...D].reverse(), { daily: 3, weekly: 3 }, LATER, { timeZone: 'UTC' });
    const forward = applyPolicy(D, { daily: 3, weekly: 3 }, LATER, { timeZone: 'UTC' });
    expect(reversed).toEqual(forward);
  });

  it('does not depend on now except for future snapshots', () => {
    const a = applyPolicy(D, { within: d('30d') }, LATER, { timeZone: 'UTC' });
    const b = applyPolicy(D, { within: d('30d') }, new Date('2026-03-02T01:00:00Z'), { timeZone: 'UTC' });
    expect(a).toEqual(b);
  });

  it('an empty policy keeps everything', () => {
    const r = applyPolicy(B, {}, LATER, { timeZone: 'UTC' });
    expect(r.keep.map((k) => [k.snapshot.id, k.reasons])).toEqual([
      ['b3', ['policy is empty']], ['b2', ['policy is empty']], ['b1', ['policy is empty']],
    ]);
    expect(r.remove).toEqual([]);
  });

  it.each([{ last: 1.5 }, { daily: -2 }, { weekly: Number.NaN }])('rejects the count in %j', (policy) => {
    expect(() => applyPolicy(B, policy, LATER)).toThrow(expect.objectContaining({ code: 'SNAP_USAGE' }));
  });
});

describe('isEmptyPolicy', () => {
  it.each<[RetentionPolicy, boolean]>([
    [{}, true],
    [{ last: 0, daily: 0 }, true],
    [{ within: d('0d') }, true],
    [{ tags: [] }, true],
    [{ last: 1 }, false],
    [{ hourly: -1 }, false],
    [{ within: d('1h') }, false],
    [{ withinDaily: d('1d') }, false],
    [{ tags: [['a']] }, false],
  ])('%j -> %s', (policy, empty) => {
    expect(isEmptyPolicy(policy)).toBe(empty);
  });
});

describe('bucketKey', () => {
  it.each([
    ['weekly', '2020-12-31T12:00:00Z', 'UTC', '2020-W53'],
    ['weekly', '2021-01-03T12:00:00Z', 'UTC', '2020-W53'],
    ['weekly', '2021-01-04T12:00:00Z', 'UTC', '2021-W01'],
    ['weekly', '2024-12-30T12:00:00Z', 'UTC', '2025-W01'],
    ['weekly', '2026-12-31T12:00:00Z', 'UTC', '2026-W53'],
    ['weekly', '2027-01-01T12:00:00Z', 'UTC', '2026-W53'],
    ['weekly', '2016-01-03T12:00:00Z', 'UTC', '2015-W53'],
    ['weekly', '2026-03-09T03:30:00Z', 'America/New_York', '2026-W10'],
    ['daily', '2026-03-28T23:30:00Z', 'Europe/Berlin', '2026-03-29'],
    ['monthly', '2026-01-31T23:30:00Z', 'Europe/Berlin', '2026-02'],
    ['yearly', '2025-12-31T23:30:00Z', 'Europe/Berlin', '2026'],
    ['hourly', '2026-10-25T00:30:00Z', 'Europe/Berlin', '2026-10-25T02+02:00'],
    ['hourly', '2026-10-25T01:30:00Z', 'Europe/Berlin', '2026-10-25T02+01:00'],
    ['hourly', '2026-06-01T12:30:00Z', 'Asia/Kolkata', '2026-06-01T18+05:30'],
    ['hourly', '2026-06-01T12:30:00Z', 'America/New_York', '2026-06-01T08-04:00'],
  ] as const)('%s %s %s', (period, time, tz, want) => {
    expect(bucketKey(period, new Date(time), tz)).toBe(want);
  });
});

describe('groupSnapshots', () => {
  const G = [
    S('g1', '2026-01-01T00:00:00Z', { hostname: 'b', paths: ['/x'] }),
    S('g2', '2026-01-02T00:00:00Z', { hostname: 'a', paths: ['/y', '/x'], tags: ['t'] }),
    S('g3', '2026-01-03T00:00:00Z', { hostname: 'a', paths: ['/x', '/y'] }),
    S('g4', '2026-01-04T00:00:00Z', { hostname: 'a', paths: ['/my docs'], tags: ['u', 't'] }),
  ];
  const ids = (m: Map<string, RetentionInput[]>): Array<[string, string[]]> => [...m].map(([k, v]) => [k, v.map((s) => s.id)]);

  it.each<[Array<'host' | 'paths' | 'tags'>, Array<[string, string[]]>]>([
    [['host', 'paths'], [['host=a paths="/my docs"', ['g4']], ['host=a paths=/x,/y', ['g2', 'g3']], ['host=b paths=/x', ['g1']]]],
    [['paths', 'host'], [['host=a paths="/my docs"', ['g4']], ['host=a paths=/x,/y', ['g2', 'g3']], ['host=b paths=/x', ['g1']]]],
    [['host'], [['host=a', ['g2', 'g3', 'g4']], ['host=b', ['g1']]]],
    [['tags'], [['tags=', ['g1', 'g3']], ['tags=t', ['g2']], ['tags=t,u', ['g4']]]],
    [['host', 'tags'], [['host=a tags=', ['g3']], ['host=a tags=t', ['g2']], ['host=a tags=t,u', ['g4']], ['host=b tags=', ['g1']]]],
    [[], [['', ['g1', 'g2', 'g3', 'g4']]]],
  ])('by %j', (by, want) => {
    expect(ids(groupSnapshots(G, by))).toEqual(want);
  });

  it('policies apply per group', () => {
    const kept = [...groupSnapshots(G, ['host', 'paths']).values()]
      .flatMap((g) => applyPolicy(g, { last: 1 }, LATER, { timeZone: 'UTC' }).keep.map((k) => k.snapshot.id));
    expect(kept).toEqual(['g4', 'g3', 'g1']);
  });
});
