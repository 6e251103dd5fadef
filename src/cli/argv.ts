// Command-line arguments are bytes on Linux. Node decodes them as UTF-8 and replaces what is not
// with U+FFFD, so a path such as $'dir\xff' could not be named. The exact bytes are in
// /proc/self/cmdline, whose last entries are the user's arguments (node's own options and the
// script come first); each becomes a lossless string (fsDecode, src/core/bytes.ts).
import * as fs from 'node:fs';
import { fsDecode } from '../core/bytes.js';

export function rawArgv(argv: string[]): string[] {
  const user = argv.slice(2);
  let raw: Buffer;
  try {
    raw = fs.readFileSync('/proc/self/cmdline');
  } catch {
    return argv; // no /proc: Node's decoding, exact for UTF-8 arguments
  }
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0) {
      parts.push(raw.subarray(start, i));
      start = i + 1;
    }
  }
  if (parts.length < user.length) return argv;
  const tail = parts.slice(parts.length - user.length);
  // Each entry must be what Node decoded, or the entries are not these arguments (a changed
  // process title): then Node's decoding is all there is.
  for (let i = 0; i < user.length; i++) if (tail[i]!.toString('utf8') !== user[i]) return argv;
  return [...argv.slice(0, 2), ...tail.map(fsDecode)];
}

/** The working directory as a lossless string (process.cwd() decodes it lossily). */
export function rawCwd(): string {
  try {
    return fsDecode(fs.readlinkSync('/proc/self/cwd', { encoding: 'buffer' }));
  } catch {
    return process.cwd();
  }
}
