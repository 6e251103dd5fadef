// zstd for the object codec, from whichever implementation this process can load, so that snap
// installs and runs without a compiler on every supported Node line:
//   - `zstd-napi` (optional dependency, a native addon built at install when build tools exist);
//   - `node:zlib` (zstdCompressSync/zstdDecompressSync, Node 22.15+ and 23.8+);
//   - `@bokuweb/zstd-wasm` (WebAssembly, no build step, any Node).
// All three write standard single frames that declare their content size (the format does not
// depend on which one wrote an object) and every frame is read with the same checks.
//
// Preference, measured in snap's create/restore/check (docs/performance.md, "zstd implementations"):
// zstd-napi when it is installed (it compresses and decompresses into buffers it reuses: a 1 GiB
// backup peaks at 193 MB of RSS, against 305-340 MB with node:zlib or wasm, which allocate every
// result afresh; CPU time is within 10 % of node:zlib's), then node:zlib, then wasm (30 % more CPU
// to restore).
//
// Worker threads (store/compress-worker.ts, ops/restore-worker.ts) import this module and select
// the main thread's implementation by its spec, so every thread applies identical checks.
import { createRequire } from 'node:module';
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

/** @bokuweb/zstd-wasm, as far as snap uses it. */
interface WasmModule {
  init(): Promise<void>;
  compress(src: Uint8Array, level: number): Uint8Array;
  decompress(frame: Uint8Array): Uint8Array;
}

/** node:zlib's zstd (Node 22.15+, 23.8+), typed here: snap builds with Node 20's @types/node. */
interface ZlibZstd {
  constants: { ZSTD_c_compressionLevel: number };
  zstdCompressSync(src: Uint8Array, o: object): Buffer;
  zstdDecompressSync(src: Uint8Array, o: object): Buffer;
}

const asBuffer = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength));

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
    return {
      ...base,
      // One call with all the input: zstd then records the content size in the frame header.
      // Output comes in 64 KiB pieces and stops past the input's size (the caller keeps only
      // smaller results): every buffer zlib allocates here is garbage for the worker's GC.
      compress(src, level) {
        try {
          return z.zstdCompressSync(src, { params: { [LEVEL]: level }, chunkSize: 64 * 1024, maxOutputLength: Math.max(64, src.length) });
        } catch (e) {
          if ((e as { code?: string } | undefined)?.code === 'ERR_BUFFER_TOO_LARGE') return asBuffer(src);
          throw e;
        }
      },
      // maxOutputLength stops a frame that holds more than it declares; a chunk of size + 1
      // takes the whole result in one allocation (with exactly size, zlib allocates another).
      decompress(frame, size) {
        return z.zstdDecompressSync(frame, { maxOutputLength: Math.max(1, size), chunkSize: Math.max(64, size + 1) });
      },
    };
  }
  if (spec.kind === 'wasm') {
    const w = require(spec.path!) as WasmModule;
    return {
      ...base,
      ready: w.init(),
      compress(src, level) {
        return asBuffer(w.compress(src, level));
      },
      // The module allocates the size the frame declares, which the caller checked.
      decompress(frame) {
        return asBuffer(w.decompress(frame));
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

let current: { spec: ZstdSpec; zstd: Zstd } | undefined;

async function select(spec: ZstdSpec | undefined): Promise<void> {
  if (!spec) throw new Error('no zstd implementation can be loaded: reinstall snap (npm ci)');
  current = { spec, zstd: await openZstdImpl(spec) };
}

await select(availableZstd()[0]);

/** The implementation this process uses, on the calling thread. */
export function zstd(): Zstd {
  return current!.zstd;
}

/** What worker threads pass to openZstd to use the same implementation. */
export function zstdSpec(): ZstdSpec {
  return current!.spec;
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
