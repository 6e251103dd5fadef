// FastCDC content-defined chunking (Xia et al., 2016): a 32-bit gear hash with normalized
// chunking level 2: a harder mask before the average size, an easier one after it, so chunk
// sizes cluster around the average. Measured at ~630 MB/s of input per core here
// (shared/bench-kit/RESULTS.md §3.3); inserting bytes changes only the chunk around the insertion.
import { createHash } from 'node:crypto';
import type { ChunkerParams } from '../model/config.js';
import { SnapError } from '../core/errors.js';
import { GearScanner } from './gear-scan.js';

export interface Gear {
  table: Uint32Array;
  maskSmall: number; // used below the average size: more bits, cuts are rarer
  maskLarge: number; // used above it: fewer bits, cuts are likelier
  min: number;
  avg: number;
  max: number;
}

/** The gear table is derived from the repository's seed, so boundaries are repository-specific. */
export function makeGear(p: ChunkerParams): Gear {
  if (p.gearSeed === undefined) throw new SnapError('SNAP_INTERNAL', 'the chunker has no gear seed (an encrypted repository keeps it in its keys)');
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i += 8) {
    const h = createHash('sha256').update(Buffer.from(p.gearSeed, 'hex')).update(Buffer.from([i])).digest();
    for (let j = 0; j < 8; j++) table[i + j] = h.readUInt32LE(j * 4);
  }
  const bits = Math.round(Math.log2(p.avgSize));
  return { table, maskSmall: topBits(bits + 2), maskLarge: topBits(bits - 2), min: p.minSize, avg: p.avgSize, max: p.maxSize };
}

/** Whether two gears cut every input at the same places (same sizes, masks and table). */
export function sameGear(a: Gear, b: Gear): boolean {
  if (a.min !== b.min || a.avg !== b.avg || a.max !== b.max || a.maskSmall !== b.maskSmall || a.maskLarge !== b.maskLarge) return false;
  for (let i = 0; i < 256; i++) if (a.table[i] !== b.table[i]) return false;
  return true;
}

// The high bits of a shift-left gear hash depend on the last 32 bytes; test those.
function topBits(n: number): number {
  return n >= 32 ? 0xffffffff : (~(0xffffffff >>> n)) >>> 0;
}

const scanners = new WeakMap<Gear, GearScanner>();
/** False where WebAssembly cannot run (node --jitless): the scan stays in JavaScript. */
let wasmScan = typeof WebAssembly === 'object';

function scannerOf(g: Gear): GearScanner | undefined {
  if (!wasmScan) return undefined;
  let s = scanners.get(g);
  if (s === undefined) {
    try {
      s = new GearScanner(g.table);
    } catch {
      wasmScan = false;
      return undefined;
    }
    scanners.set(g, s);
  }
  return s;
}

/**
 * Length of the first chunk of buf[start, end). `eof` says no more data follows `end`; without it
 * the caller guarantees end - start >= max, so a boundary is always found inside the window.
 * The scan runs in WebAssembly (gear-scan.ts); `cutPointJs` is the same in JavaScript.
 */
export function cutPoint(g: Gear, buf: Uint8Array, start: number, end: number): number {
  const n = end - start;
  if (n <= g.min) return n;
  const limit = Math.min(n, g.max);
  const normal = Math.min(limit, g.avg);
  const s = scannerOf(g);
  if (!s) return cutPointJs(g, buf, start, end);
  // The hash starts at 0 at `min`, the harder mask up to the average size, the easier one after.
  let at = s.scan(buf, start + g.min, start + normal, 0, g.maskSmall | 0);
  if (at >= 0) return at - start;
  at = s.scan(buf, start + normal, start + limit, s.h, g.maskLarge | 0);
  return at >= 0 ? at - start : limit;
}

/** cutPoint's loop in JavaScript: the reference the WebAssembly scan is tested against. */
export function cutPointJs(g: Gear, buf: Uint8Array, start: number, end: number): number {
  const n = end - start;
  if (n <= g.min) return n;
  const limit = Math.min(n, g.max);
  const normal = Math.min(limit, g.avg);
  const table = g.table;
  // The hash kept as a signed 32-bit integer (`| 0`; the same 32 bits as `>>> 0`, so the same
  // cuts): an unsigned one does not fit V8's small integers, and Node 24 ran the loop at 225 MB/s
  // for the first 450 MB of a backup (its optimizing compiler took that long to step in) against
  // 720 MB/s this way, and 0.9-1.1 GB/s against 1.2-1.4 GB/s once optimized on Node 20-26
  // (docs/performance.md, "The boundary scan on Node 22-26").
  const ms = g.maskSmall | 0;
  const ml = g.maskLarge | 0;
  let h = 0;
  let p = start + g.min;
  const pNormal = start + normal;
  const pLimit = start + limit;
  for (; p < pNormal; p++) {
    h = ((h << 1) + table[buf[p]!]!) | 0;
    if ((h & ms) === 0) return p - start + 1;
  }
  for (; p < pLimit; p++) {
    h = ((h << 1) + table[buf[p]!]!) | 0;
    if ((h & ml) === 0) return p - start + 1;
  }
  return limit;
}

/** Split a complete in-memory buffer (tests and small inputs). */
export function chunkBuffer(g: Gear, buf: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let off = 0;
  while (off < buf.length) {
    const len = cutPoint(g, buf, off, buf.length);
    out.push(buf.subarray(off, off + len));
    off += len;
  }
  return out;
}
