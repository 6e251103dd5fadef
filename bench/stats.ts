// Summaries over rounds: median with the range, and snap/restic ratios paired by round.
import type { Row } from './results.js';
import type { StepName } from './steps.js';

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(xs: number[]): Spread | undefined {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v[v.length - 1]!, n: v.length };
}

/** The rows of one tool and step that produced a measurement. */
export function measured(rows: Row[], tool: string, step: StepName): Row[] {
  return rows.filter((r) => r.tool === tool && r.step === step && (r.status === 'ok' || r.status === 'warnings'));
}

export function rowsOf(rows: Row[], tool: string, step: StepName): Row[] {
  return rows.filter((r) => r.tool === tool && r.step === step);
}

/**
 * The ratio a/b of one quantity, computed within each round (both tools ran in the same stretch of
 * time, so machine drift cancels), then summarised over rounds.
 */
export function pairedRatio(rows: Row[], a: string, b: string, step: StepName, value: (r: Row) => number): Spread | undefined {
  const ratios: number[] = [];
  for (const ra of measured(rows, a, step)) {
    const rb = measured(rows, b, step).find((r) => r.round === ra.round);
    if (rb && value(rb) > 0) ratios.push(value(ra) / value(rb));
  }
  return spread(ratios);
}

export const wall = (r: Row): number => r.wallS;
export const cpu = (r: Row): number => r.userS + r.sysS;
export const rss = (r: Row): number => r.maxRssKb;
export const repo = (r: Row): number => r.repoBytes;
