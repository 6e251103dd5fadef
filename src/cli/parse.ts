// Parsing of option values given on the command line.
import { SnapError } from '../core/errors.js';

export function parseWaitMs(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?$/.exec(s.trim());
  if (!m) throw new SnapError('SNAP_USAGE', `not a duration: '${s}' (examples: 30s, 5m, 1h)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const mult = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'h' ? 3_600_000 : 60_000;
  return Math.round(n * mult);
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
