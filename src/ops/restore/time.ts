// The times restore sets. Node's utimes takes seconds as a double and libuv turns it into a
// timespec: whole seconds toward zero, then the fraction times 1e9 toward zero. Before libuv 1.52
// (Node 20 and 22 as of 2026-12) it then truncated that to whole microseconds; from 1.52 (Node 24.22 and 26) it keeps the
// nanoseconds, so the time set is as close as a double of that size allows (238 ns apart for times
// of today). Node turns a negative number into the current time without a word (issue 10, defect
// 2: files dated before 1970 got the time of the restore) but passes a numeric string on unchanged.
//
// So restore looks, among the doubles next to the recorded time, for one that both conversions
// take to the recorded time's microsecond exactly (what restore promises: docs/restore.md), and of
// those the one the nanosecond conversion takes closest to the recorded nanoseconds. A number for
// times from 1970 on, its string before. The two conversions are computed here in JavaScript: the
// same IEEE double operations as libuv's C.
import type * as fs from 'node:fs';
import type { Node } from '../../model/node.js';

export type TimeArg = number | string;

const NS = 1_000_000_000;
const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
/** The index of the low 32 bits of a double in u32 (0 on little-endian machines). */
const LO = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 0 : 1;
const HI = 1 - LO;

/**
 * The double `k` steps from `d` in its binary representation (the same sign: toward or away from
 * zero; |k| < 2^32). Without BigInt: this runs some fifty times per file restored.
 */
function stepped(d: number, k: number): number {
  f64[0] = d;
  const lo = u32[LO]! + k;
  u32[LO] = lo; // modulo 2^32
  if (lo >= 0x1_0000_0000) u32[HI] = u32[HI]! + 1;
  else if (lo < 0) u32[HI] = u32[HI]! - 1;
  return f64[0]!;
}

/** libuvTime's answer, without an array (choose's loop): set by convert. */
let convS = 0;
let convNs = 0;

function convert(d: number, micro: boolean): void {
  let s = Math.trunc(d);
  let ns = Math.trunc((d - s) * 1e9);
  if (micro) ns -= ns % 1000;
  if (ns < 0) {
    ns += NS;
    s -= 1;
  }
  convS = s === 0 ? 0 : s;
  convNs = ns;
}

/**
 * What libuv sets for `d` seconds, as [seconds, nanoseconds] (nanoseconds 0..1e9-1): with
 * `micro`, as before 1.52 (truncated to whole microseconds toward zero).
 */
export function libuvTime(d: number, micro: boolean): [number, number] {
  convert(d, micro);
  return [convS, convNs];
}

/** The double to hand to utimes for `n`'s mtime (see the top of this file). */
function choose(n: Node): number {
  const { sec, nsec } = n.mtime;
  const us = Math.floor(nsec / 1000) * 1000;
  // The start: the middle of the microsecond, on the side truncation moves away from (exact for
  // microsecond truncation, measured: 20,000 random times each side of 1970).
  const start = sec >= 0 ? sec + (us + 500) / NS : sec + (us - 500) / NS;
  let best = start;
  let bestOff = Infinity;
  // Around the start, the recorded time and its microsecond (the window's edge before 1970): up to
  // 64 steps either side (a double of a small time is nanoseconds fine).
  for (let seedNo = 0; seedNo < 3; seedNo++) {
    const seed = seedNo === 0 ? start : seedNo === 1 ? sec + nsec / NS : sec + us / NS;
    const ulp = Math.abs(stepped(seed, 1) - seed) * NS;
    const k = Math.min(64, Math.ceil(1000 / Math.max(ulp, 1e-3)) + 1);
    for (let i = -k; i <= k; i++) {
      const d = stepped(seed, i);
      if (d < 0 !== sec < 0) continue;
      convert(d, true);
      if (convS !== sec || convNs !== us) continue;
      convert(d, false);
      const off = Math.abs((convS - sec) * NS + (convNs - nsec));
      if (off < bestOff) {
        best = d;
        bestOff = off;
      }
    }
  }
  return best;
}

/** The atime and mtime to hand to utimes/futimes for `n`. */
export function timeArg(n: Node): TimeArg {
  const best = choose(n);
  return n.mtime.sec >= 0 ? best : String(best);
}

/** Whether setting this time needs a check: before 1970 the file system may not hold it (ext4 stops at 1901). */
export function needsTimeCheck(n: Node): boolean {
  return n.mtime.sec < 0;
}

/** The mtimes (ns) an entry restored from `n` has when its file system held the time set (one per libuv conversion). */
export function heldTimes(n: Node): string[] {
  const best = choose(n);
  return [true, false].map((micro) => {
    convert(best, micro);
    return String(BigInt(convS) * BigInt(NS) + BigInt(convNs));
  });
}

/** Whether a file's mtime is what restore set for `n` (a restore run again: same time, same file). */
export function sameMtime(st: fs.BigIntStats | fs.Stats, n: Node): boolean {
  const ns = BigInt(n.mtime.sec) * BigInt(NS) + BigInt(n.mtime.nsec);
  if ('mtimeNs' in st) {
    const d = (st as fs.BigIntStats).mtimeNs - ns;
    return d > -2000n && d < 2000n;
  }
  // Set to the microsecond, read back through a double: compare within 2 µs.
  return Math.abs((st as fs.Stats).mtimeMs - (n.mtime.sec * 1000 + n.mtime.nsec / 1e6)) < 0.002;
}

/** A warning's text for a time the target would not take. */
export function timeNotSet(n: Node, gotNs: bigint): string {
  const want = new Date(n.mtime.sec * 1000 + Math.floor(n.mtime.nsec / 1e6)).toISOString();
  const got = new Date(Number(gotNs / 1_000_000n)).toISOString();
  return `its time ${want} could not be set (the target file system holds ${got}); the file is restored with that time`;
}
