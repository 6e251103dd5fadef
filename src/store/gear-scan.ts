// The gear hash's boundary scan in WebAssembly: the inner loop of FastCDC (chunker.ts cutPoint),
// h = (h << 1) + table[byte] in 32 bits, a cut after the first byte where (h & mask) == 0. V8's
// optimized JavaScript for that loop checks both arrays' bounds on every byte; WebAssembly reads
// its own linear memory without them (docs/performance.md, "The boundary scan in WebAssembly").
//
// The module is assembled here from its opcodes (no toolchain, no binary file in the tree): one
// function, `scan(len, h, mask)`, over `len` bytes at DATA of its memory, the gear table at 0.
// It answers the offset just past the byte that cut, or 0 when no byte of the block cut; then its
// global `h` holds the hash after the block, for the next block to go on from. The caller copies
// the bytes to scan into the memory block by block, so any buffer can be scanned (plain, shared,
// a view), and a scan stops copying at its cut. Cuts are the same as the JavaScript loop's: the
// same 32-bit arithmetic, checked against it in test/chunker.test.ts on many tables and masks.

const TABLE = 0; // 256 little-endian u32
const DATA = 1024;
/** Bytes scanned per call: the copy into the module's memory runs past a cut by at most this. */
export const SCAN_BLOCK = 64 * 1024;
const PAGES = Math.ceil((DATA + SCAN_BLOCK) / 65536);

/** Unsigned LEB128. */
function u32(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of a small non-negative constant (i32.const's immediate). */
function s32(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}

const name = (s: string): number[] => [...u32(s.length), ...Buffer.from(s, 'ascii')];
const section = (id: number, body: number[]): number[] => [id, ...u32(body.length), ...body];

// Opcodes used.
const I32 = 0x7f;
const BLOCK = 0x02, LOOP = 0x03, IF = 0x04, END = 0x0b, BR = 0x0c, BR_IF = 0x0d, RETURN = 0x0f, VOID = 0x40;
const LOCAL_GET = 0x20, LOCAL_SET = 0x21, GLOBAL_SET = 0x24;
const I32_LOAD = 0x28, I32_LOAD8_U = 0x2d, I32_CONST = 0x41;
const I32_EQZ = 0x45, I32_GE_U = 0x4f, I32_ADD = 0x6a, I32_SUB = 0x6b, I32_AND = 0x71, I32_SHL = 0x74;

// Parameters 0 len, 1 h, 2 mask; locals 3 p (the next byte's address), 4 end.
const [LEN, H, MASK, P, END_AT] = [0, 1, 2, 3, 4];
const body = [
  1, 2, I32, // two i32 locals
  I32_CONST, ...s32(DATA), LOCAL_SET, P,
  LOCAL_GET, LEN, I32_CONST, ...s32(DATA), I32_ADD, LOCAL_SET, END_AT,
  BLOCK, VOID,
  LOOP, VOID,
  LOCAL_GET, P, LOCAL_GET, END_AT, I32_GE_U, BR_IF, 1, // p >= end: out of the block
  // h = (h << 1) + table[mem[p]]
  LOCAL_GET, H, I32_CONST, 1, I32_SHL,
  LOCAL_GET, P, I32_LOAD8_U, 0, 0, I32_CONST, 2, I32_SHL, I32_LOAD, 2, ...u32(TABLE),
  I32_ADD, LOCAL_SET, H,
  LOCAL_GET, P, I32_CONST, 1, I32_ADD, LOCAL_SET, P,
  // (h & mask) == 0: the cut is after this byte
  LOCAL_GET, H, LOCAL_GET, MASK, I32_AND, I32_EQZ,
  IF, VOID, LOCAL_GET, P, I32_CONST, ...s32(DATA), I32_SUB, RETURN, END,
  BR, 0,
  END, // loop
  END, // block
  LOCAL_GET, H, GLOBAL_SET, 0,
  I32_CONST, 0,
  END,
];

const BYTES = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
  ...section(1, [1, 0x60, 3, I32, I32, I32, 1, I32]), // type 0: (i32, i32, i32) -> i32
  ...section(3, [1, 0]), // function 0 has type 0
  ...section(5, [1, 0x00, ...u32(PAGES)]), // one memory, PAGES pages, no maximum
  ...section(6, [1, I32, 1, I32_CONST, 0, END]), // global 0: mutable i32 = 0
  ...section(7, [3, ...name('mem'), 2, 0, ...name('h'), 3, 0, ...name('scan'), 0, 0]),
  ...section(10, [1, ...u32(body.length), ...body]),
]);

let compiled: WebAssembly.Module | undefined;

/** One gear table's scanner: its own instance and memory (a few per thread at most). */
export class GearScanner {
  private readonly scanFn: (len: number, h: number, mask: number) => number;
  private readonly hGlobal: WebAssembly.Global;
  private readonly mem: Uint8Array;
  /** The hash after the last scan that found no cut. */
  h = 0;

  constructor(table: Uint32Array) {
    compiled ??= new WebAssembly.Module(BYTES);
    const inst = new WebAssembly.Instance(compiled, {});
    const ex = inst.exports as { mem: WebAssembly.Memory; h: WebAssembly.Global; scan: (len: number, h: number, mask: number) => number };
    this.scanFn = ex.scan;
    this.hGlobal = ex.h;
    this.mem = new Uint8Array(ex.mem.buffer);
    const t = new DataView(ex.mem.buffer, TABLE, 1024);
    for (let i = 0; i < 256; i++) t.setUint32(i * 4, table[i]!, true);
  }

  /**
   * Scan buf[from, to) going on from hash `h`: the index just past the first byte whose hash has
   * no bit of `mask` set, or -1 when none has (then `this.h` is the hash after `to - 1`).
   */
  scan(buf: Uint8Array, from: number, to: number, h: number, mask: number): number {
    const mem = this.mem;
    for (let p = from; p < to; ) {
      const len = Math.min(SCAN_BLOCK, to - p);
      mem.set(buf.subarray(p, p + len), DATA);
      const r = this.scanFn(len, h, mask);
      if (r !== 0) return p + r;
      h = this.hGlobal.value as number;
      p += len;
    }
    this.h = h;
    return -1;
  }
}
