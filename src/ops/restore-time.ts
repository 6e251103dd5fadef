// The times restore sets. libuv takes seconds as a double and truncates them to whole
// microseconds toward zero; Node turns a negative number into the current time without a word
// (issue 10, defect 2: files dated before 1970 got the time of the restore), but passes a
// numeric string on unchanged. So: a number for times from 1970 on, a string before, each aimed
// at the middle of its microsecond on the side truncation moves away from, so the truncation
// lands on it exactly (measured: 20,000 random times each side of 1970, all exact).
import type * as fs from 'node:fs';
import type { Node } from '../model/node.js';

export type TimeArg = number | string;

export function timeArg(n: Node): TimeArg {
  const us = Math.floor(n.mtime.nsec / 1000);
  if (n.mtime.sec >= 0) return n.mtime.sec + (us + 0.5) / 1e6;
  return String(n.mtime.sec + (us - 0.5) / 1e6);
}

/** Whether setting this time needs a check: before 1970 the file system may not hold it (ext4 stops at 1901). */
export function needsTimeCheck(n: Node): boolean {
  return n.mtime.sec < 0;
}

/** The recorded time to the microsecond, in nanoseconds (what the restore can set). */
export function recordedNs(n: Node): bigint {
  return BigInt(n.mtime.sec) * 1_000_000_000n + BigInt(Math.floor(n.mtime.nsec / 1000) * 1000);
}

/** Whether a file's mtime is what restore set for `n` (a restore run again: same time, same file). */
export function sameMtime(st: fs.BigIntStats | fs.Stats, n: Node): boolean {
  if ('mtimeNs' in st) {
    const d = (st as fs.BigIntStats).mtimeNs - recordedNs(n);
    return d > -2000n && d < 2000n;
  }
  // libuv truncates to whole microseconds, so a file this restore wrote can be up to ~1.3 µs off
  // its snapshot mtime in a double: compare within 2 µs.
  return Math.abs((st as fs.Stats).mtimeMs - (n.mtime.sec * 1000 + n.mtime.nsec / 1e6)) < 0.002;
}

/** A warning's text for a time the target would not take. */
export function timeNotSet(n: Node, gotNs: bigint): string {
  const want = new Date(n.mtime.sec * 1000 + Math.floor(n.mtime.nsec / 1e6)).toISOString();
  const got = new Date(Number(gotNs / 1_000_000n)).toISOString();
  return `its time ${want} could not be set (the target file system holds ${got}); the file is restored with that time`;
}
