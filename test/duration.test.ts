import { describe, expect, it } from 'vitest';
import {
  formatDuration, fromLocalParts, localParts, parseDuration, parseWaitDuration, subtractDuration, type Duration,
} from '../src/model/duration.js';

const dur = (years: number, months: number, days: number, hours: number): Duration => ({ years, months, days, hours });

describe('parseDuration (restic units: m = months)', () => {
  it.each([
    ['30d', dur(0, 0, 30, 0)],
    ['1y2m', dur(1, 2, 0, 0)],
    ['2w', dur(0, 0, 14, 0)],
    ['12h', dur(0, 0, 0, 12)],
    ['1y6m3d4h', dur(1, 6, 3, 4)],
    ['3d1y', dur(1, 0, 3, 0)],
    ['1w2d', dur(0, 0, 9, 0)],
    [' 0d ', dur(0, 0, 0, 0)],
  ])('%s', (text, want) => {
    expect(parseDuration(text)).toEqual(want);
  });

  it.each(['', '30', 'd', '1x', '1min', '1s', '1y1y', '-1d', '1.5d', '1 d', '1D', '1y 2m', '1234567d'])('rejects %j', (text) => {
    expect(() => parseDuration(text)).toThrow(expect.objectContaining({ code: 'SNAP_USAGE' }));
  });

  it.each([
    [dur(1, 6, 3, 4), '1y6m3d4h'],
    [dur(0, 0, 14, 0), '14d'],
    [dur(0, 1, 0, 0), '1m'],
    [dur(0, 0, 0, 0), '0h'],
  ])('formats %j as %s', (d, want) => {
    expect(formatDuration(d)).toBe(want);
  });
});

describe('parseWaitDuration (m = minutes)', () => {
  it.each([
    ['30s', 30_000], ['5m', 300_000], ['1h', 3_600_000], ['1h30m', 5_400_000], ['500ms', 500],
    ['2min', 120_000], ['0', 0], ['0s', 0], ['1m30s', 90_000],
  ])('%s = %d ms', (text, ms) => {
    expect(parseWaitDuration(text)).toBe(ms);
  });

  it.each(['', '5', '5x', '1d', '5m5m', '-1s', '1.5h', 'm'])('rejects %j', (text) => {
    expect(() => parseWaitDuration(text)).toThrow(expect.objectContaining({ code: 'SNAP_USAGE' }));
  });
});

describe('subtractDuration: calendar parts on the local wall clock, hours exact', () => {
  it.each([
    ['UTC', '2026-03-31T10:00:00Z', dur(0, 1, 0, 0), '2026-02-28T10:00:00.000Z'], // clamped, not 3 March
    ['UTC', '2024-03-31T10:00:00Z', dur(0, 1, 0, 0), '2024-02-29T10:00:00.000Z'],
    ['UTC', '2024-02-29T10:00:00Z', dur(1, 0, 0, 0), '2023-02-28T10:00:00.000Z'],
    ['UTC', '2026-01-15T10:00:00Z', dur(0, 2, 0, 0), '2025-11-15T10:00:00.000Z'],
    ['UTC', '2026-05-04T10:00:00Z', dur(1, 2, 3, 4), '2025-03-01T06:00:00.000Z'],
    ['UTC', '2026-03-01T10:00:00Z', dur(0, 0, 1, 0), '2026-02-28T10:00:00.000Z'],
    // 29 March 2026 12:00 CEST minus one day is 28 March 12:00 CET: only 23 hours earlier.
    ['Europe/Berlin', '2026-03-29T10:00:00Z', dur(0, 0, 1, 0), '2026-03-28T11:00:00.000Z'],
    ['Europe/Berlin', '2026-03-29T10:00:00Z', dur(0, 0, 0, 24), '2026-03-28T10:00:00.000Z'],
    // 25 October 2026 12:00 CET minus one day is 24 October 12:00 CEST: 25 hours earlier.
    ['Europe/Berlin', '2026-10-25T11:00:00Z', dur(0, 0, 1, 0), '2026-10-24T10:00:00.000Z'],
    ['America/New_York', '2026-03-08T17:00:00Z', dur(0, 0, 1, 0), '2026-03-07T18:00:00.000Z'],
    ['America/New_York', '2026-11-01T17:00:00Z', dur(0, 0, 1, 0), '2026-10-31T16:00:00.000Z'],
  ])('%s: %s minus %j', (tz, from, d, want) => {
    expect(subtractDuration(new Date(from), d, tz).toISOString()).toBe(want);
  });
});

describe('wall clock in a zone', () => {
  it('reads local parts', () => {
    expect(localParts(new Date('2026-10-25T01:30:00.123Z'), 'Europe/Berlin')).toEqual({
      year: 2026, month: 10, day: 25, hour: 2, minute: 30, second: 0, ms: 123,
    });
  });

  it.each([
    ['Europe/Berlin', [2026, 3, 3, 14, 0], '2026-03-03T13:00:00.000Z'],
    ['Europe/Berlin', [2026, 7, 1, 0, 0], '2026-06-30T22:00:00.000Z'],
    ['Europe/Berlin', [2026, 3, 29, 2, 30], '2026-03-29T01:30:00.000Z'], // gap: 03:30 CEST
    ['Europe/Berlin', [2026, 10, 25, 2, 30], '2026-10-25T00:30:00.000Z'], // repeated: the earlier
    ['America/New_York', [2026, 3, 8, 2, 30], '2026-03-08T07:30:00.000Z'], // gap: 03:30 EDT
    ['America/New_York', [2026, 11, 1, 1, 30], '2026-11-01T05:30:00.000Z'], // repeated: EDT
    ['UTC', [2026, 1, 0, 0, 0], '2025-12-31T00:00:00.000Z'], // day 0 rolls back
  ])('%s %j', (tz, [year, month, day, hour, minute], want) => {
    const d = fromLocalParts({ year: year!, month: month!, day: day!, hour: hour!, minute: minute!, second: 0 }, tz);
    expect(d.toISOString()).toBe(want);
  });

  it('rejects an unknown zone', () => {
    expect(() => localParts(new Date(0), 'Mars/Olympus')).toThrow(expect.objectContaining({ code: 'SNAP_USAGE' }));
  });
});
