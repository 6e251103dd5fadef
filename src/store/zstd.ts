// zstd for the object codec, from whichever implementation this process can load, so that snap
// installs and runs without a compiler on every supported Node line:
//   - `zstd-napi` (optional dependency, a native addon built at install when build tools exist);
//   - `node:zlib` (zstdCompressSync/zstdDecompressSync, Node 22.15+ and 23.8+);
//   - `@bokuweb/zstd-wasm` (WebAssembly, no build step, any Node).
// All three write standard single frames that declare their content size (the format does not
// depend on which one wrote an object) and every frame is read with the same checks.
//
// Preference, measured in snap's create/restore/check (docs/performance.md, "zstd implementations"):
// zstd-napi when it is installed, then node:zlib, then wasm (more CPU to restore). Each keeps one
// zstd context and one output buffer per thread, reused for every object: with node:zlib and wasm
// built afresh per call, a 1 GiB backup peaked ~125 MB above zstd-napi's ~230 MB; now all three
// stay within ~20 MB of each other.
//
// Worker threads (store/compress-worker.ts, ops/restore/worker.ts) import this module and select
// the main thread's implementation by its spec, so every thread applies identical checks. Such a
// thread is never ended while it may be inside zstd-napi (loading it, or in a call): built for
// Node-API 10, zstd-napi 0.0.13 aborts the whole process then (store/compress-pool.ts).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as zlib from 'node:zlib';

export type ZstdKind = 'zstd-napi' | 'node:zlib' | 'wasm';
export const ZSTD_KINDS: readonly ZstdKind[] = ['zstd-napi', 'node:zlib', 'wasm'];

/** What a worker needs to open the same implementation: its kind and the module to load. */
export interface ZstdSpec {
  kind: ZstdKind;
  path?: string;
}

export interface Zstd {
  readonly kind: ZstdKind;
  /** Set while a wasm module is still being instantiated; the other methods need it resolved. */
  readonly ready: Promise<void> | undefined;
  /** True when `decompress` writes into the buffer it is given (else it returns a new one). */
  readonly decompressesInto: boolean;
  /**
   * One frame that declares `src.length` as its content size, or `src` itself where the frame
   * would not be smaller (callers store such data raw). The result may be a view of a scratch
   * buffer, valid only until the next call.
   */
  compress(src: Uint8Array, level: number): Buffer;
  /**
   * The content size a frame declares (null when it declares none). Throws unless `frame` is
   * exactly one whole zstd frame: magic, header, blocks (walked by their headers), checksum.
   */
  frameContentSize(frame: Uint8Array): number | null;
  /**
   * Decompress a frame whose declared size was checked to be `size`: never more than `size`
   * bytes are produced (it throws instead). `into`, when large enough and `decompressesInto`,
   * receives the bytes and the result is a view of it. The result's length is what the frame held.
   */
  decompress(frame: Uint8Array, size: number, into?: Buffer): Buffer;
}

const require = createRequire(import.meta.url);

/**
 * The content size a frame declares (null when it declares none); throws unless `f` is exactly
 * one whole zstd frame: magic, header, blocks (walked by their headers), checksum.
 */
export function zstdFrameContentSize(f: Uint8Array): number | null {
  const bad = (why: string): never => {
    throw new Error('not a zstd frame (' + why + ')');
  };
  if (f.length < 6) bad('too short');
  if ((f[0]! | (f[1]! << 8) | (f[2]! << 16) | (f[3]! << 24)) !== (0xfd2fb528 | 0)) bad('bad magic number');
  const fhd = f[4]!;
  if (fhd & 0x08) bad('reserved bit set');
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  let p = 5;
  if (!single) {
    if ((f[p]! >> 3) + 10 > 31) bad('window too large');
    p++;
  }
  p += [0, 1, 2, 4][fhd & 3]!;
  const fcsSize = fcsFlag === 0 ? single : [0, 2, 4, 8][fcsFlag]!;
  if (f.length < p + fcsSize + 3) bad('truncated header');
  let size: number | null = null;
  if (fcsSize === 1) size = f[p]!;
  else if (fcsSize === 2) size = (f[p]! | (f[p + 1]! << 8)) + 256;
  else if (fcsSize === 4) size = (f[p]! | (f[p + 1]! << 8) | (f[p + 2]! << 16)) + f[p + 3]! * 0x1000000;
  else if (fcsSize === 8) {
    const lo = (f[p]! | (f[p + 1]! << 8) | (f[p + 2]! << 16)) + f[p + 3]! * 0x1000000;
    const hi = (f[p + 4]! | (f[p + 5]! << 8) | (f[p + 6]! << 16)) + f[p + 7]! * 0x1000000;
    size = hi * 0x100000000 + lo;
  }
  p += fcsSize;
  for (;;) {
    if (f.length < p + 3) bad('truncated block');
    const h = f[p]! | (f[p + 1]! << 8) | (f[p + 2]! << 16);
    p += 3;
    const type = (h >> 1) & 3;
    if (type === 3) bad('reserved block type');
    p += type === 1 ? 1 : h >>> 3;
    if (h & 1) break;
  }
  if (fhd & 0x04) p += 4;
  if (p > f.length) bad('truncated');
  if (p < f.length) bad('bytes after the frame');
  return size;
}

/** zstd-napi's binding, as far as snap uses it. */
interface NapiBinding {
  compressBound(n: number): number;
  CCtx: new () => { compress(dst: Uint8Array, src: Uint8Array, level: number): number };
  DCtx: new () => { decompress(dst: Uint8Array, src: Uint8Array): number };
}

/** @bokuweb/zstd-wasm, as far as snap uses it: its init and the emscripten module behind it. */
interface WasmModule {
  init(): Promise<void>;
}
interface WasmRuntime {
  HEAPU8: Uint8Array;
  _malloc(n: number): number;
  _free(p: number): void;
  _ZSTD_isError(code: number): number;
  _ZSTD_compressBound(n: number): number;
  _ZSTD_createCCtx(): number;
  _ZSTD_createDCtx(): number;
  // With no dictionary (0, 0) these are ZSTD_compressCCtx / ZSTD_decompressDCtx, which the module
  // does not export: one context per thread, reused for every call.
  _ZSTD_compress_usingDict(cctx: number, dst: number, cap: number, src: number, n: number, dict: number, dictSize: number, level: number): number;
  _ZSTD_decompress_usingDict(dctx: number, dst: number, cap: number, src: number, n: number, dict: number, dictSize: number): number;
}

/** node:zlib's zstd (Node 22.15+, 23.8+), typed here: snap builds with Node 20's @types/node. */
interface ZlibZstd {
  constants: { ZSTD_c_compressionLevel: number; ZSTD_e_end: number };
  zstdCompressSync(src: Uint8Array, o: object): Buffer;
  zstdDecompressSync(src: Uint8Array, o: object): Buffer;
  createZstdCompress(o: object): ZlibEngine;
}

/**
 * The parts of a node:zlib stream that zstdCompressSync itself drives (lib/zlib.js,
 * processChunkSync): its native handle, written synchronously, and the state array where the
 * handle leaves (output space left, input left). Not public API: the node:zlib implementation
 * checks they exist and falls back to zstdCompressSync otherwise.
 */
interface ZlibEngine {
  destroyed: boolean;
  close(): void;
  _writeState?: Uint32Array;
  _handle?: {
    writeSync?(flush: number, src: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
  };
}

/** ZSTD_COMPRESSBOUND: the largest frame zstd makes from n bytes of input, plus a margin. */
const zstdCompressBound = (n: number): number => n + (n >>> 8) + (n < 128 * 1024 ? (128 * 1024 - n) >>> 11 : 0) + 64;

const asBuffer = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength));

/** The wasm module of this thread, initialised once, with its reused context and regions. */
interface WasmThread {
  m: { Module: WasmRuntime };
  ready: Promise<void>;
  cctx: number;
  dctx: number;
  ptr: { src: number; dst: number };
  cap: { src: number; dst: number };
}

let wasmThread: WasmThread | undefined;

function wasmThreadState(path: string): WasmThread {
  const w = require(path) as WasmModule;
  const m = require(join(dirname(path), 'module.js')) as { Module: WasmRuntime };
  return { m, ready: w.init(), cctx: 0, dctx: 0, ptr: { src: 0, dst: 0 }, cap: { src: 0, dst: 0 } };
}

/** An instance of the implementation `spec` names (each thread opens its own). */
function openZstd(spec: ZstdSpec): Zstd {
  const base = { kind: spec.kind, ready: undefined as Promise<void> | undefined, decompressesInto: false, frameContentSize: zstdFrameContentSize };
  if (spec.kind === 'zstd-napi') {
    const b = require(spec.path!) as NapiBinding;
    let cctx: InstanceType<NapiBinding['CCtx']> | undefined;
    let dctx: InstanceType<NapiBinding['DCtx']> | undefined;
    let scratch = Buffer.alloc(0);
    return {
      ...base,
      decompressesInto: true,
      compress(src, level) {
        const bound = b.compressBound(src.length);
        if (scratch.length < bound) scratch = Buffer.allocUnsafe(bound);
        cctx ??= new b.CCtx();
        return scratch.subarray(0, cctx.compress(scratch, src, level));
      },
      decompress(frame, size, into) {
        const out = into && into.length >= size ? into.subarray(0, size) : Buffer.allocUnsafe(size);
        dctx ??= new b.DCtx();
        return out.subarray(0, dctx.decompress(out, frame));
      },
    };
  }
  if (spec.kind === 'node:zlib') {
    const z = zlib as unknown as ZlibZstd;
    const LEVEL = z.constants.ZSTD_c_compressionLevel;
    // zstdCompressSync (the public API) builds a zstd context and allocates a fresh output buffer
    // for every call: on the compression workers that churn kept a 1 GiB backup ~125 MB above
    // zstd-napi's peak RSS (docs/performance.md, "zstd implementations"). Instead each thread keeps
    // one compression stream per level for good and drives its handle as zstdCompressSync does,
    // into one scratch buffer. Each object is one call with all its input and ZSTD_e_end, so zstd
    // records the content size in the frame header, and once that frame is complete zstd starts the
    // next one itself with a fresh session (its parameters, the level among them, stay). The
    // handle is never reset: on Node 22 reset() makes a new context without the stream's level
    // (later frames came out at the default level), and Node 26 refuses to reset an unfinished
    // frame. Frames are byte-identical to a fresh context's on Node 22, 24 and 26 (test/zstd.test.ts).
    const engines = new Map<number, ZlibEngine>();
    let scratch = Buffer.alloc(0);
    const fallback = (src: Uint8Array, level: number): Buffer => {
      try {
        return z.zstdCompressSync(src, { params: { [LEVEL]: level }, chunkSize: 64 * 1024, maxOutputLength: Math.max(64, src.length) });
      } catch (e) {
        if ((e as { code?: string } | undefined)?.code === 'ERR_BUFFER_TOO_LARGE') return asBuffer(src);
        throw e;
      }
    };
    /** Drop the stream of `level` (the next object gets a fresh one) and compress the public way. */
    const dropped = (level: number, src: Uint8Array): Buffer => {
      const e = engines.get(level);
      engines.delete(level);
      if (e && !e.destroyed) e.close();
      return fallback(src, level);
    };
    return {
      ...base,
      // The scratch holds zstd's bound for the input, so the frame always ends within it. A frame
      // not smaller than the input is not kept (the caller stores the object raw).
      compress(src, level) {
        let e = engines.get(level);
        if (!e) engines.set(level, (e = z.createZstdCompress({ params: { [LEVEL]: level } })));
        const h = e._handle;
        const state = e._writeState;
        if (!h?.writeSync || !state || e.destroyed) return dropped(level, src);
        const cap = zstdCompressBound(src.length);
        if (scratch.length < cap) scratch = Buffer.allocUnsafe(cap);
        h.writeSync(z.constants.ZSTD_e_end, src, 0, src.length, scratch, 0, cap);
        const outLeft = state[0]!;
        const inLeft = state[1]!;
        // Output space left and all input taken: the frame is complete (zstd stops early only when
        // the output is full). Otherwise (zstd's bound did not hold here) the stream is dropped.
        if (outLeft === 0 || inLeft !== 0 || e.destroyed) return dropped(level, src);
        if (cap - outLeft >= src.length) return asBuffer(src); // the frame would not be smaller
        const frame = scratch.subarray(0, cap - outLeft);
        // Only a whole frame that declares the input's size is returned; anything else (an
        // internal of node:zlib that changed) goes the public way, with a fresh stream next time.
        try {
          if (zstdFrameContentSize(frame) === src.length) return frame;
        } catch {
          // below
        }
        return dropped(level, src);
      },
      // maxOutputLength stops a frame that holds more than it declares; a chunk of size + 1
      // takes the whole result in one allocation (with exactly size, zlib allocates another).
      decompress(frame, size) {
        return z.zstdDecompressSync(frame, { maxOutputLength: Math.max(1, size), chunkSize: Math.max(64, size + 1) });
      },
    };
  }
  if (spec.kind === 'wasm') {
    // The module's compress/decompress allocate input, output and a zstd context in its linear
    // memory for every call and return a copy: on the compression workers a 1 GiB backup peaked
    // ~135 MB above zstd-napi. Here each thread keeps one context of each kind and two regions of
    // its linear memory, grown to the largest object seen and reused (the memory never shrinks).
    // The module is one per thread and its init() instantiates a new memory, so the state is the
    // thread's, shared by every instance opened on it, and init runs once.
    const st = (wasmThread ??= wasmThreadState(spec.path!));
    const m = st.m;
    const reserve = (which: 'src' | 'dst', n: number): number => {
      if (st.cap[which] < n) {
        if (st.ptr[which]) m.Module._free(st.ptr[which]);
        st.ptr[which] = 0;
        st.cap[which] = 0;
        const p = m.Module._malloc(n);
        if (!p) throw new Error(`zstd-wasm: cannot allocate ${n} bytes`);
        st.ptr[which] = p;
        st.cap[which] = n;
      }
      return st.ptr[which];
    };
    const failed = (code: number): boolean => m.Module._ZSTD_isError(code) !== 0;
    return {
      ...base,
      decompressesInto: true,
      ready: st.ready,
      compress(src, level) {
        const M = m.Module;
        st.cctx ||= M._ZSTD_createCCtx();
        const bound = M._ZSTD_compressBound(src.length);
        const s = reserve('src', Math.max(1, src.length));
        const d = reserve('dst', bound);
        M.HEAPU8.set(src, s);
        const n = M._ZSTD_compress_usingDict(st.cctx, d, bound, s, src.length, 0, 0, level);
        if (failed(n)) throw new Error(`zstd-wasm: compression failed (code ${n})`);
        const heap = M.HEAPU8; // after the calls: growing the memory replaces the view
        return Buffer.from(heap.buffer, heap.byteOffset + d, n >>> 0);
      },
      // The caller checked that the frame declares `size`; at most `size` bytes are written.
      decompress(frame, size, into) {
        const M = m.Module;
        st.dctx ||= M._ZSTD_createDCtx();
        const s = reserve('src', Math.max(1, frame.length));
        const d = reserve('dst', Math.max(1, size));
        M.HEAPU8.set(frame, s);
        const n = M._ZSTD_decompress_usingDict(st.dctx, d, size, s, frame.length, 0, 0);
        if (failed(n)) throw new Error(`zstd-wasm: not a valid frame (code ${n})`);
        const out = into && into.length >= size ? into.subarray(0, n >>> 0) : Buffer.allocUnsafe(n >>> 0);
        out.set(M.HEAPU8.subarray(d, d + (n >>> 0)));
        return out;
      },
    };
  }
  throw new Error('unknown zstd implementation ' + String(spec.kind));
}

/** The spec of `kind` when this process can load it, else undefined. */
export function zstdSpecFor(kind: ZstdKind): ZstdSpec | undefined {
  try {
    if (kind === 'zstd-napi') {
      const path = require.resolve('zstd-napi/binding');
      require(path); // resolvable but not built (or built for another platform) counts as absent
      return { kind, path };
    }
    if (kind === 'node:zlib') // Typed with Node 20's @types/node, which predates zstd in node:zlib.
    return typeof (zlib as unknown as Record<string, unknown>).zstdCompressSync === 'function' ? { kind } : undefined;
    return { kind, path: require.resolve('@bokuweb/zstd-wasm') };
  } catch {
    return undefined;
  }
}

/** The implementations this process can load, in order of preference. */
export function availableZstd(): ZstdSpec[] {
  return ZSTD_KINDS.map(zstdSpecFor).filter((s): s is ZstdSpec => s !== undefined);
}

/** Open an implementation (awaiting a wasm module's instantiation). */
export async function openZstdImpl(spec: ZstdSpec): Promise<Zstd> {
  const z = openZstd(spec);
  await z.ready;
  return z;
}

/** The implementation of this thread; `ready` once a wasm module is instantiated (the others at once). */
let current: { spec: ZstdSpec; zstd: Zstd; ready: boolean } | undefined;

function selected(): { spec: ZstdSpec; zstd: Zstd; ready: boolean } {
  if (!current) {
    // Chosen on first use, not by a top-level await: Node 20's V8 crashed now and then ("Check
    // failed: (location_) != nullptr" in ExecuteAsyncModule) evaluating the module graph of a
    // CLI whose modules awaited at the top level.
    const spec = availableZstd()[0];
    if (!spec) throw new Error('no zstd implementation can be loaded: reinstall snap (npm ci)');
    const z = openZstd(spec);
    const c = { spec, zstd: z, ready: z.ready === undefined };
    void z.ready?.then(() => (c.ready = true));
    current = c;
  }
  return current;
}

async function select(spec: ZstdSpec | undefined): Promise<void> {
  if (!spec) throw new Error('no zstd implementation can be loaded: reinstall snap (npm ci)');
  current = { spec, zstd: await openZstdImpl(spec), ready: true };
}

/** Resolves when this thread's implementation can be used (a wasm module is instantiated): entry points await it once. */
export async function zstdReady(): Promise<void> {
  const c = selected();
  await c.zstd.ready;
  c.ready = true;
}

/** The implementation this process uses, on the calling thread. */
export function zstd(): Zstd {
  const c = selected();
  if (!c.ready) throw new Error(`zstd (${c.spec.kind}) is not ready yet: the entry point awaits zstdReady() first`);
  return c.zstd;
}

/** What worker threads pass to openZstd to use the same implementation. */
export function zstdSpec(): ZstdSpec {
  return selected().spec;
}

/**
 * Use `kind` from now on (for comparisons and tests; the CLI reads SNAP_ZSTD). Returns false when
 * this process cannot load it. Workers already started keep the implementation they opened.
 */
export async function useZstd(kind: ZstdKind): Promise<boolean> {
  const spec = zstdSpecFor(kind);
  if (!spec) return false;
  await select(spec);
  return true;
}
