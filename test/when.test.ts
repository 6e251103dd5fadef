import { describe, expect, it } from 'vitest';
import { parseWhen, parseWhenRange, parseWhenStart } from '../src/model/when.js';

const NOW = new Date('2026-03-10T12:00:00Z'); // 13:00 CET in Berlin
const BERLIN = 'Europe/Berlin';

describe('parseWhen / parseWhenStart (Europe/Berlin)', () => {
  // [text, start, end]: "at or before" uses the end of the named period, --since its start.
  it.each([
    ['2026-03-03', '2026-03-02T23:00:00.000Z', '2026-03-03T22:59:59.999Z'],
    ['2026-03', '2026-02-28T23:00:00.000Z', '2026-03-31T21:59:59.999Z'], // March ends in CEST
    ['2024-02-29', '2024-02-28T23:00:00.000Z', '2024-02-29T22:59:59.999Z'],
    ['2026-03-03T14:00', '2026-03-03T13:00:00.000Z', '2026-03-03T13:00:59.999Z'],
    ['2026-03-03 14:00', '2026-03-03T13:00:00.000Z', '2026-03-03T13:00:59.999Z'],
    ['2026-03-03t14:00', '2026-03-03T13:00:00.000Z', '2026-03-03T13:00:59.999Z'],
    ['2026-03-03T14:00:30', '2026-03-03T13:00:30.000Z', '2026-03-03T13:00:30.999Z'],
    ['2026-03-03T14:00:30.25', '2026-03-03T13:00:30.250Z', '2026-03-03T13:00:30.250Z'],
    ['2026-03-03T14:00Z', '2026-03-03T14:00:00.000Z', '2026-03-03T14:00:59.999Z'],
    ['2026-03-03T14:00:00z', '2026-03-03T14:00:00.000Z', '2026-03-03T14:00:00.999Z'],
    ['2026-03-03T14:00+01:00', '2026-03-03T13:00:00.000Z', '2026-03-03T13:00:59.999Z'],
    ['2026-03-03T14:00+0100', '2026-03-03T13:00:00.000Z', '2026-03-03T13:00:59.999Z'],
    ['2026-03-03T14:00+01', '2026-03-03T13:00:00.000Z', '2026-03-03T13:00:59.999Z'],
    ['2026-03-03T14:00-05:30', '2026-03-03T19:30:00.000Z', '2026-03-03T19:30:59.999Z'],
    ['2026-03-03T23:59:59Z', '2026-03-03T23:59:59.000Z', '2026-03-03T23:59:59.999Z'],
    ['now', '2026-03-10T12:00:00.000Z', '2026-03-10T12:00:00.000Z'],
    [' NOW ', '2026-03-10T12:00:00.000Z', '2026-03-10T12:00:00.000Z'],
    ['today', '2026-03-09T23:00:00.000Z', '2026-03-10T22:59:59.999Z'],
    ['yesterday', '2026-03-08T23:00:00.000Z', '2026-03-09T22:59:59.999Z'],
    ['3 days ago', '2026-03-07T12:00:00.000Z', '2026-03-07T12:00:00.000Z'],
    ['3d ago', '2026-03-07T12:00:00.000Z', '2026-03-07T12:00:00.000Z'],
    ['3 Days Ago', '2026-03-07T12:00:00.000Z', '2026-03-07T12:00:00.000Z'],
    ['1 day ago', '2026-03-09T12:00:00.000Z', '2026-03-09T12:00:00.000Z'],
    ['1w ago', '2026-03-03T12:00:00.000Z', '2026-03-03T12:00:00.000Z'],
    ['2 weeks ago', '2026-02-24T12:00:00.000Z', '2026-02-24T12:00:00.000Z'],
    ['2h ago', '2026-03-10T10:00:00.000Z', '2026-03-10T10:00:00.000Z'],
    ['30 min ago', '2026-03-10T11:30:00.000Z', '2026-03-10T11:30:00.000Z'],
    ['90 s ago', '2026-03-10T11:58:30.000Z', '2026-03-10T11:58:30.000Z'],
    ['1 month ago', '2026-02-10T12:00:00.000Z', '2026-02-10T12:00:00.000Z'],
    ['1mo ago', '2026-02-10T12:00:00.000Z', '2026-02-10T12:00:00.000Z'],
    ['1 year ago', '2025-03-10T12:00:00.000Z', '2025-03-10T12:00:00.000Z'],
  ])('%j', (text, start, end) => {
    expect(parseWhenRange(text, NOW, BERLIN)).toEqual({ start: new Date(start), end: new Date(end) });
    expect(parseWhen(text, NOW, BERLIN)?.toISOString()).toBe(end);
    expect(parseWhenStart(text, NOW, BERLIN)?.toISOString()).toBe(start);
  });
});

describe('days and times around DST changes', () => {
  it.each([
    [BERLIN, '2026-03-29', '2026-03-28T23:00:00.000Z', '2026-03-29T21:59:59.999Z'], // 23-hour day
    [BERLIN, '2026-10-25', '2026-10-24T22:00:00.000Z', '2026-10-25T22:59:59.999Z'], // 25-hour day
    ['America/New_York', '2026-03-08', '2026-03-08T05:00:00.000Z', '2026-03-09T03:59:59.999Z'],
    ['America/New_York', '2026-11-01', '2026-11-01T04:00:00.000Z', '2026-11-02T04:59:59.999Z'],
    [BERLIN, '2026-03-29T02:30', '2026-03-29T01:30:00.000Z', '2026-03-29T01:30:59.999Z'], // skipped: 03:30 CEST
    [BERLIN, '2026-10-25T02:30', '2026-10-25T00:30:00.000Z', '2026-10-25T00:30:59.999Z'], // twice: the first
    ['UTC', '2026-03-03', '2026-03-03T00:00:00.000Z', '2026-03-03T23:59:59.999Z'],
  ])('%s %s', (tz, text, start, end) => {
    expect(parseWhenRange(text, NOW, tz)).toEqual({ start: new Date(start), end: new Date(end) });
  });

  it('a calendar day ago is 23 hours across the spring change, 24h ago is 24', () => {
    const now = new Date('2026-03-29T10:00:00Z'); // 12:00 CEST
    expect(parseWhen('1 day ago', now, BERLIN)?.toISOString()).toBe('2026-03-28T11:00:00.000Z');
    expect(parseWhen('24h ago', now, BERLIN)?.toISOString()).toBe('2026-03-28T10:00:00.000Z');
  });

  it('today/yesterday follow the zone, not UTC', () => {
    const now = new Date('2026-03-10T23:30:00Z'); // already 11 March in Berlin
    expect(parseWhen('today', now, BERLIN)?.toISOString()).toBe('2026-03-11T22:59:59.999Z');
    expect(parseWhen('today', now, 'UTC')?.toISOString()).toBe('2026-03-10T23:59:59.999Z');
  });

  it('defaults to the process time zone', () => {
    const local = Intl.DateTimeFormat().resolvedOptions().timeZone;
    expect(parseWhen('2026-03-03', NOW)).toEqual(parseWhen('2026-03-03', NOW, local));
  });
});

describe('not a date: left for the caller to treat as a snapshot id', () => {
  it.each(['2026', 'deadbeef', '20260303', '2026abcd', 'latest', 'abc123', '', '2026-3-3', 'tomorrow', '12:00'])('%j', (text) => {
    expect(parseWhen(text, NOW, BERLIN)).toBeUndefined();
    expect(parseWhenStart(text, NOW, BERLIN)).toBeUndefined();
  });
});

describe('clearly meant as a date but invalid: SNAP_USAGE', () => {
  it.each([
    '2026-02-30', '2025-02-29', '2026-13', '2026-00-10', '2026-03-00', '2026-03-03T24:00', '2026-03-03T12:60',
    '2026-03-03T12:00:60', '2026-03-03T10:00+25:00', '5m ago', '3 fortnights ago', '1y6m ago', 'ages ago',
  ])('%j', (text) => {
    expect(() => parseWhen(text, NOW, BERLIN)).toThrow(expect.objectContaining({ code: 'SNAP_USAGE' }));
  });
});
