// Which packs `check --read-data-subset` reads. The choice depends only on each pack's id (its
// first 32 bits), so it is deterministic: `n/m` for n = 1..m partition the packs exactly, and a
// percentage picks the same packs on every run (packs are content-addressed, so ids are uniform).
import { SnapError } from '../../core/errors.js';

export type Subset = { kind: 'all' } | { kind: 'part'; n: number; m: number } | { kind: 'share'; share: number };

export function parseSubset(s: string): Subset {
  const t = s.trim();
  const part = /^(\d+)\/(\d+)$/.exec(t);
  if (part) {
    const n = Number(part[1]);
    const m = Number(part[2]);
    if (m >= 1 && n >= 1 && n <= m) return { kind: 'part', n, m };
  }
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(t);
  if (pct) {
    const v = Number(pct[1]);
    if (v > 0 && v <= 100) return { kind: 'share', share: v / 100 };
  }
  throw new SnapError('SNAP_USAGE', `--read-data-subset takes n/m (1 <= n <= m, e.g. 2/5) or a percentage (e.g. 10%), not '${s}'`);
}

export function inSubset(packId: string, s: Subset): boolean {
  if (s.kind === 'all') return true;
  const h = parseInt(packId.slice(0, 8), 16);
  if (s.kind === 'part') return h % s.m === s.n - 1;
  return h / 0x1_0000_0000 < s.share;
}

export function describeSubset(s: Subset): string {
  return s.kind === 'all' ? 'all packs' : s.kind === 'part' ? `part ${s.n} of ${s.m} of the packs` : `${+(s.share * 100).toFixed(4)}% of the packs`;
}
