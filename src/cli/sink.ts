// The CLI's progress sink: a throttled single status line on a terminal, nothing otherwise;
// warnings and notices go to stderr as lines (or JSON lines with --json).
import { terminalSafe } from '../core/bytes.js';
import type { ProgressCounters, ProgressSink, Warning } from '../core/progress.js';
import { bytes } from './format.js';

export interface CliSink extends ProgressSink {
  warnings: Warning[];
  done(): void;
}

export function makeSink(opts: { json: boolean; quiet: boolean; stream: NodeJS.WriteStream }): CliSink {
  const tty = opts.stream.isTTY === true && !opts.json && !opts.quiet;
  const started = Date.now();
  let last = 0;
  let shown = false;
  const clear = (): void => {
    if (shown) {
      opts.stream.write('\r\x1b[K');
      shown = false;
    }
  };
  const sink: CliSink = {
    warnings: [],
    progress(c: Readonly<ProgressCounters>): void {
      if (!tty) return;
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      const line = progressLine(c, (now - started) / 1000, (opts.stream.columns ?? 100) - 1);
      opts.stream.write(`\r\x1b[K${line}`);
      shown = true;
    },
    warn(w: Warning): void {
      sink.warnings.push(w);
      clear();
      if (opts.json) opts.stream.write(JSON.stringify({ warning: w }) + '\n');
      else opts.stream.write(`warning: ${terminalSafe(w.message)}\n`);
    },
    info(message: string): void {
      clear();
      if (opts.json) opts.stream.write(JSON.stringify({ info: message }) + '\n');
      else if (!opts.quiet) opts.stream.write(`snap: ${terminalSafe(message)}\n`);
    },
    done(): void {
      clear();
    },
  };
  return sink;
}

/**
 * The status line: counters, rate, and when the total is known (a backup after the first: the
 * previous snapshot's size) a percentage and the time left; then the current path, cut from the
 * left to keep the file name. Never wider than `width` characters, so it never wraps (wide CJK
 * characters count as one: an approximation). The path is already escaped (core/bytes.ts).
 */
export function progressLine(c: Readonly<ProgressCounters>, secs: number, width: number): string {
  const parts: string[] = [];
  const total = c.totalBytes ?? 0;
  if (total > 0) parts.push(`${Math.min(99, Math.floor((c.bytes * 100) / total))}%`);
  parts.push(`${c.files} files, ${c.dirs} dirs, ${bytes(c.bytes)}`);
  if (secs > 0) parts.push(`${bytes(c.bytes / secs)}/s`);
  if (total > 0 && c.bytes > 0 && secs >= 1) parts.push(`ETA ${clock((secs * Math.max(0, total - c.bytes)) / c.bytes)}`);
  const head = `${parts.join(' ')} `;
  const room = width - [...head].length;
  if (room < 0) return [...head].slice(0, Math.max(0, width)).join('');
  const cur = [...(c.current ?? '')];
  return head + (cur.length <= room ? cur.join('') : room > 1 ? `…${cur.slice(cur.length - room + 1).join('')}` : '');
}

/** Seconds as m:ss or h:mm:ss. */
function clock(secs: number): string {
  const s = Math.round(secs);
  const two = (n: number): string => String(n).padStart(2, '0');
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}:${two(m)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
}
