// What a restored time must be on this Node line. libuv's utimes takes seconds as a double: before
// libuv 1.52 (Node 20 and 22 as of 2026-12) it truncates them to whole microseconds, so restore sets the recorded
// microsecond exactly; from 1.52 (Node 24.22 and 26) it keeps the nanoseconds a double carries, and the
// double restore picks is one the older conversion also takes to the recorded microsecond: from
// 1970 on within a step of the double of the recorded time, before 1970 at most that microsecond
// below the recorded microsecond (docs/design.md, "Times"). Either way, within 2 µs.
import * as process from 'node:process';
import { expect } from 'vitest';

/** Whether this process's libuv keeps nanoseconds in utimes (1.52 and later). */
export const UTIMES_KEEPS_NANOSECONDS = ((): boolean => {
  const [major, minor] = process.versions.uv!.split('.').map(Number) as [number, number];
  return major > 1 || (major === 1 && minor >= 52);
})();

/** The recorded time truncated to its microsecond (toward the past), in ns. */
export function microsecondOf(ns: bigint): bigint {
  return ns - (((ns % 1000n) + 1000n) % 1000n);
}

/** A restored mtime against the recorded one: the recorded microsecond exactly, or within 2 µs where libuv keeps nanoseconds. */
export function expectRestoredTime(got: bigint, recorded: bigint, what = 'mtime'): void {
  if (!UTIMES_KEEPS_NANOSECONDS) {
    expect(got, `${what}: restored ${got}, recorded ${recorded}`).toBe(microsecondOf(recorded));
    return;
  }
  const off = got - recorded;
  expect(off > -2000n && off < 2000n, `${what}: restored ${got}, recorded ${recorded} (libuv ${process.versions.uv})`).toBe(true);
}
