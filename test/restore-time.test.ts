// How restore turns a recorded time into utimes' double (src/ops/restore/time.ts), checked against
// both of libuv's conversions and against this process's real utimes on real files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Node } from '../src/model/node.js';
import { heldTimes, libuvTime, timeArg } from '../src/ops/restore/time.js';
import { tmpDir } from './helpers/cli.js';
import { Rng } from './helpers/rng.js';
import { UTIMES_KEEPS_NANOSECONDS, expectRestoredTime } from './helpers/times.js';

const NS = 1_000_000_000;

function node(sec: number, nsec: number): Node {
  return { mtime: { sec, nsec } } as Node;
}

/** Random recorded times from 1901 to 2100, a third of them before 1970, some on whole seconds and microseconds. */
function randomTimes(rng: Rng, count: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < count; i++) {
    const sec = rng.chance(1 / 3) ? rng.int(-2_147_483_648, -1) : rng.int(0, 4_102_444_800);
    const r = rng.int(0, 2);
    const nsec = r === 0 ? 0 : r === 1 ? rng.int(0, 999_999) * 1000 : rng.int(0, NS - 1);
    out.push([sec, nsec]);
  }
  out.push([-1, 250_000_000], [-1, 999_999_999], [0, 0], [0, 1], [-1, 0], [1_500_000_000, 123_456_789]);
  return out;
}

function asDouble(arg: number | string): number {
  return typeof arg === 'number' ? arg : Number(arg);
}

describe('restore times', () => {
  it('each time becomes a double both libuv conversions take to the recorded microsecond; the nanosecond one lands within a step of the double', () => {
    const rng = new Rng(0x7173);
    for (const [sec, nsec] of randomTimes(rng, 20_000)) {
      const n = node(sec, nsec);
      const arg = timeArg(n);
      // Node turns a negative number into the current time: times before 1970 go as strings.
      expect(typeof arg, `${sec}.${nsec}`).toBe(sec >= 0 ? 'number' : 'string');
      const d = asDouble(arg);
      const us = Math.floor(nsec / 1000) * 1000;
      expect(libuvTime(d, true), `${sec}.${nsec} as ${arg}`).toEqual([sec, us]);
      const [s, ns] = libuvTime(d, false);
      const off = (s - sec) * NS + (ns - nsec);
      const step = Math.max(Math.abs(d) * 2 ** -52 * NS, 1);
      if (sec >= 0) {
        // From 1970 on, the doubles the older conversion takes to the recorded microsecond are
        // those from it up to the next: the nearest to the recorded time is within one step.
        expect(Math.abs(off), `${sec}.${nsec} as ${arg}`).toBeLessThanOrEqual(step);
      } else {
        // Before 1970 the older conversion rounds toward zero, to the microsecond above: a double
        // it takes to the recorded microsecond lies at most a microsecond below it.
        expect(off, `${sec}.${nsec} as ${arg}`).toBeLessThanOrEqual(0);
        expect(-off, `${sec}.${nsec} as ${arg}`).toBeLessThan(nsec - us + Math.max(step, 1) + 1);
      }
    }
  });

  it('this Node sets exactly what restore expects on a real file, both sides of 1970', () => {
    const dir = tmpDir('snap-times-');
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, '');
    const rng = new Rng(0x1970);
    // Times a file system of today holds (ext4: from 1901-12-14 on).
    const times = randomTimes(rng, 2000).filter(([sec]) => sec > -2_147_483_000);
    for (const [sec, nsec] of times) {
      const n = node(sec, nsec);
      fs.utimesSync(file, timeArg(n), timeArg(n));
      const got = fs.statSync(file, { bigint: true }).mtimeNs;
      const held = heldTimes(n);
      expect(held, `${sec}.${nsec}`).toContain(String(got));
      expect(String(got), `${sec}.${nsec}: the conversion of libuv ${process.versions.uv}`).toBe(held[UTIMES_KEEPS_NANOSECONDS ? 1 : 0]);
      expectRestoredTime(got, BigInt(sec) * BigInt(NS) + BigInt(nsec), `${sec}.${nsec}`);
    }
  });
});
