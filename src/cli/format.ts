// Rendering helpers for people: sizes, local times, modes, table columns.
import type { Node } from '../model/node.js';

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** Years 0-9999 as four digits (`0000-01-01`), as ISO 8601 writes them. */
const year = (d: Date): string => pad(d.getFullYear(), 4);

/**
 * ISO 8601 in local time with its offset and milliseconds, e.g. 2026-03-03T14:00:05.250+01:00:
 * the JSON form of every time (snapshot times are recorded to the millisecond).
 */
export function isoLocal(d: Date): string {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const a = Math.abs(off);
  return `${year(d)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

export function localDateTime(d: Date): string {
  return `${year(d)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

const TYPE_CHAR: Record<Node['type'], string> = { file: '-', dir: 'd', symlink: 'l', fifo: 'p', socket: 's', chardev: 'c', blockdev: 'b' };

export function modeString(n: Node): string {
  const m = n.mode;
  const rwx = (shift: number, special: number, ch: string): string =>
    (m & (4 << shift) ? 'r' : '-') + (m & (2 << shift) ? 'w' : '-') + (m & special ? (m & (1 << shift) ? ch : ch.toUpperCase()) : m & (1 << shift) ? 'x' : '-');
  return TYPE_CHAR[n.type] + rwx(6, 0o4000, 's') + rwx(3, 0o2000, 's') + rwx(0, 0o1000, 't');
}

/** A node's mtime as nanoseconds since the epoch in decimal: `[-1, 250000000]` is "-750000000", the epoch "0". */
export function mtimeNs(n: Node): string {
  return (BigInt(n.mtime.sec) * 1_000_000_000n + BigInt(n.mtime.nsec)).toString();
}

export function table(rows: string[][], rightAlign: Set<number> = new Set()): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 && !rightAlign.has(i) ? c : rightAlign.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd())
    .join('\n');
}

export function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}
