// The CLI's progress sink: a throttled single status line on a terminal, nothing otherwise;
// warnings and notices go to stderr as lines (or JSON lines with --json).
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
      const secs = (now - started) / 1000;
      const rate = secs > 0 ? `${bytes(c.bytes / secs)}/s` : '';
      const width = (opts.stream.columns ?? 100) - 1;
      const head = `${c.files} files, ${c.dirs} dirs, ${bytes(c.bytes)} ${rate} `;
      // Keep the end of the current path (the file name) when the line is too long.
      let cur = c.current ?? '';
      const room = width - head.length;
      if (cur.length > room) cur = room > 1 ? `…${cur.slice(cur.length - room + 1)}` : '';
      const line = head + cur;
      opts.stream.write(`\r\x1b[K${line}`);
      shown = true;
    },
    warn(w: Warning): void {
      sink.warnings.push(w);
      clear();
      if (opts.json) opts.stream.write(JSON.stringify({ warning: w }) + '\n');
      else opts.stream.write(`warning: ${w.message}\n`);
    },
    info(message: string): void {
      clear();
      if (opts.json) opts.stream.write(JSON.stringify({ info: message }) + '\n');
      else if (!opts.quiet) opts.stream.write(`snap: ${message}\n`);
    },
    done(): void {
      clear();
    },
  };
  return sink;
}
