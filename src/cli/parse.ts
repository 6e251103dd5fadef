// Parsing of option values given on the command line.
import * as fs from 'node:fs';
import { SnapError, fromSystemError } from '../core/errors.js';
import { displayPath, fsDecode, fsPath } from '../core/bytes.js';

export function parseWaitMs(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?$/.exec(s.trim());
  if (!m) throw new SnapError('SNAP_USAGE', `not a duration: '${s}' (examples: 30s, 5m, 1h, 1d)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const mult = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'h' ? 3_600_000 : unit === 'd' ? 86_400_000 : 60_000;
  return Math.round(n * mult);
}

/**
 * Patterns from exclude files, one per line (`--exclude-file`); empty lines are dropped. Patterns
 * are bytes, like the names they match: each file is read so and its lines become lossless strings.
 */
export function readPatternFiles(files: string[]): string[] {
  const out: string[] = [];
  for (const f of files) {
    try {
      out.push(...fsDecode(fs.readFileSync(fsPath(f))).split(/\r?\n/));
    } catch (e) {
      throw fromSystemError(e, `exclude file ${displayPath(f)}`);
    }
  }
  return out.filter((x) => x.trim() !== '');
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** A size in bytes: `2048`, `500k`, `10M`, `1.5G`, `2T` (binary units; `KiB`, `MB` and the like accepted). */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(s.trim());
  if (!m) throw new SnapError('SNAP_USAGE', `not a size: '${s}' (examples: 4096, 500k, 10M, 2G)`);
  const mult = 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  return Math.floor(Number(m[1]) * mult);
}
