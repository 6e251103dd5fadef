// The pure parts of maintenance: gc's per-pack decisions, check's read-data subsets.
import { describe, expect, it } from 'vitest';
import { decidePack, decidePacks, type PackUsage, parsePercent } from '../src/ops/maintain/gc-plan.js';
import { inSubset, parseSubset } from '../src/ops/maintain/check-subset.js';
import { isSnapError } from '../src/core/errors.js';
import { randomHex } from '../src/core/ids.js';

const pack = (over: Partial<PackUsage>): PackUsage => ({
  id: 'aa'.repeat(32),
  size: 1000,
  inStorage: true,
  indexed: true,
  usedCount: 0,
  usedBytes: 0,
  unusedCount: 0,
  unusedBytes: 0,
  hiddenCount: 0,
  neededMissing: 0,
  ...over,
});

describe('gc planner: decidePack', () => {
  const cases: [string, Partial<PackUsage>, number, ReturnType<typeof decidePack>][] = [
    ['all used: keep', { usedCount: 10, usedBytes: 900 }, 0.05, 'keep'],
    ['nothing used: delete', { unusedCount: 10, unusedBytes: 900 }, 0.05, 'delete'],
    ['empty index entry (no objects): delete', {}, 0.05, 'delete'],
    ['unused share 4% <= 5%: keep', { usedCount: 24, usedBytes: 960, unusedCount: 1, unusedBytes: 40 }, 0.05, 'keep'],
    ['unused share exactly 5%: keep (threshold is exceeded, not reached)', { usedCount: 19, usedBytes: 950, unusedCount: 1, unusedBytes: 50 }, 0.05, 'keep'],
    ['unused share 6% > 5%: rewrite', { usedCount: 47, usedBytes: 940, unusedCount: 3, unusedBytes: 60 }, 0.05, 'rewrite'],
    ['max-unused 0%: any waste rewrites', { usedCount: 999, usedBytes: 999, unusedCount: 1, unusedBytes: 1 }, 0, 'rewrite'],
    ['max-unused 100%: partly used is kept', { usedCount: 1, usedBytes: 1, unusedCount: 999, unusedBytes: 999 }, 1, 'keep'],
    ['hidden duplicates: rewrite even when under threshold', { usedCount: 10, usedBytes: 900, hiddenCount: 1 }, 0.05, 'rewrite'],
    ['unindexed leftover: delete', { indexed: false }, 0.05, 'delete'],
    ['unindexed pack holding needed objects: reindex', { indexed: false, neededMissing: 3 }, 0.05, 'reindex'],
    ['indexed, missing from storage, unused: unindex', { inStorage: false, unusedCount: 4, unusedBytes: 400 }, 0.05, 'unindex'],
    ['indexed, missing from storage, used: missing (gc refuses)', { inStorage: false, usedCount: 1, usedBytes: 10 }, 0.05, 'missing'],
  ];
  for (const [name, u, max, want] of cases) it(name, () => expect(decidePack(pack(u), max)).toBe(want));
});

describe('gc planner: decidePacks totals', () => {
  it('counts objects and bytes to free and to copy, and sorts decisions by pack id', () => {
    const { decisions, totals } = decidePacks(
      [
        pack({ id: 'cc'.repeat(32), size: 1000, unusedCount: 5, unusedBytes: 950 }),
        pack({ id: 'bb'.repeat(32), size: 2000, usedCount: 2, usedBytes: 500, unusedCount: 8, unusedBytes: 1400 }),
        pack({ id: 'aa'.repeat(32), size: 3000, usedCount: 9, usedBytes: 2900 }),
        pack({ id: 'dd'.repeat(32), inStorage: false, size: 0, unusedCount: 2, unusedBytes: 10 }),
      ],
      0.05,
    );
    expect(decisions.map((d) => [d.usage.id.slice(0, 2), d.action])).toEqual([
      ['aa', 'keep'],
      ['bb', 'rewrite'],
      ['cc', 'delete'],
      ['dd', 'unindex'],
    ]);
    expect(totals.packs).toEqual({ keep: 1, delete: 1, rewrite: 1, reindex: 0, unindex: 1, missing: 0 });
    expect(totals.objectsToFree).toBe(5 + 8 + 2);
    expect(totals.bytesToFree).toBe(1000 + (2000 - 500));
    expect(totals.bytesToCopy).toBe(500);
  });

  it('parses --max-unused', () => {
    expect(parsePercent('5%')).toBe(0.05);
    expect(parsePercent('0')).toBe(0);
    expect(parsePercent('100%')).toBe(1);
    expect(parsePercent('2.5%')).toBeCloseTo(0.025);
    expect(parsePercent('101%')).toBeUndefined();
    expect(parsePercent('-1%')).toBeUndefined();
    expect(parsePercent('five')).toBeUndefined();
  });
});

describe('check --read-data-subset', () => {
  const ids = Array.from({ length: 500 }, () => randomHex(32));

  it('n/m subsets partition the packs', () => {
    for (const m of [1, 2, 5, 7]) {
      const seen = new Map<string, number>();
      for (let n = 1; n <= m; n++) for (const id of ids) if (inSubset(id, parseSubset(`${n}/${m}`))) seen.set(id, (seen.get(id) ?? 0) + 1);
      expect(seen.size).toBe(ids.length);
      expect([...seen.values()].every((c) => c === 1)).toBe(true);
    }
  });

  it('a percentage is deterministic, roughly that share, and grows monotonically', () => {
    const ten = ids.filter((id) => inSubset(id, parseSubset('10%')));
    expect(ids.filter((id) => inSubset(id, parseSubset('10%')))).toEqual(ten);
    expect(ten.length).toBeGreaterThan(20);
    expect(ten.length).toBeLessThan(80);
    const fifty = new Set(ids.filter((id) => inSubset(id, parseSubset('50%'))));
    expect(ten.every((id) => fifty.has(id))).toBe(true);
    expect(ids.every((id) => inSubset(id, parseSubset('100%')))).toBe(true);
  });

  it('rejects malformed subsets as usage errors', () => {
    for (const bad of ['0/5', '6/5', '1/0', '0%', '101%', 'half', '1/2/3']) {
      try {
        parseSubset(bad);
        expect.unreachable(bad);
      } catch (e) {
        expect(isSnapError(e, 'SNAP_USAGE')).toBe(true);
      }
    }
  });
});
