// Number formatting and Markdown tables for the reports.
import type { Spread } from './stats.js';

export function seconds(s: Spread | undefined): string {
  if (!s) return '—';
  return s.n > 1 ? `${fix(s.median)} [${fix(s.min)}–${fix(s.max)}]` : fix(s.median);
}

/** A ratio's median [min–max] with `digits` decimals (3 where a goal's margin is finer than 0.01). */
export function ratio(s: Spread | undefined, digits = 2): string {
  if (!s) return '—';
  return s.n > 1 ? `${s.median.toFixed(digits)} [${s.min.toFixed(digits)}–${s.max.toFixed(digits)}]` : s.median.toFixed(digits);
}

export function mib(kb: number | undefined): string {
  return kb === undefined || !Number.isFinite(kb) ? '—' : `${Math.round(kb / 1024)} MiB`;
}

export function mb(bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes)) return '—';
  return bytes >= 1e8 ? `${(bytes / 1e6).toFixed(0)} MB` : bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}

/** Seconds with a precision that suits their size. */
export function fix(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

export function table(head: string[], rows: string[][], rightAligned: Set<number> = new Set()): string {
  const sep = head.map((_, i) => (rightAligned.has(i) ? '---:' : '---'));
  return [head, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}
