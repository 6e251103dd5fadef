// Object compression. Each stored object carries a one-byte codec id, so objects written with
// different codecs can live in one repository. Compression runs on libuv's thread pool
// (node:zlib's async API), off the main thread, so chunking and hashing overlap with it and both
// cores work. node:zlib deflate level 1 is 3-4x faster than fflate here (RESULTS.md §3.2).
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { SnapError } from '../core/errors.js';
import type { CodecName } from '../model/config.js';
import { MAX_OBJECT_BYTES } from './limits.js';
import { zstd } from './zstd.js';

export const CODEC_RAW = 0;
export const CODEC_DEFLATE = 1;
export const CODEC_ZSTD = 2;

/**
 * zstd (default since format 1's codec 2): on the benchmark corpus level 3 stores 0.481 of the
 * input for 3.7 s of CPU, deflate level 1 0.505 for 15.9 s, and decompresses 3x faster
 * (docs/performance.md, "Codecs"). Every zstd implementation (store/zstd.ts) is synchronous; at
 * these speeds compressing on the main thread costs less than deflate's thread-pool jobs did.
 * Incompressible data passes at 2-2.5 GB/s; where it comes in long runs, a fast trial is cheaper
 * still (TRIAL_MIN_BYTES).
 */

/** Codecs that compress synchronously on the calling thread (see compressSync). */
export function isSyncCodec(codec: CodecName): boolean {
  return codec !== 'deflate';
}

/**
 * Incompressible data (video, photos, archives, encrypted files) costs zstd at level 3 about
 * 0.45 ms a MiB to find nothing, a fifth of a compression thread's work on such a file in an
 * encrypted repository (docs/performance.md, "Incompressible chunks tried fast"). When the caller
 * guesses an object is incompressible (the large object before it was stored raw), an object of
 * TRIAL_MIN_BYTES or more is first compressed at TRIAL_LEVEL, about 40 % cheaper there, and
 * stored raw when that saves under TRIAL_MIN_SAVING. The trial reads the whole object, so it sees
 * what samples miss (repeats far apart in an otherwise random chunk); on the benchmark corpus it
 * stored raw only chunks that level 3 stores raw too.
 */
export const TRIAL_MIN_BYTES = 256 * 1024;
const TRIAL_LEVEL = -1;
const TRIAL_MIN_SAVING = 0.02;

/**
 * zstd or no compression (`guessRaw`: see TRIAL_MIN_BYTES). The returned data may be a view of a
 * scratch buffer or of `raw` itself, valid only until the next call: copy it before awaiting
 * anything.
 */
export function compressSync(raw: Buffer, codec: CodecName, level: number, guessRaw = false): Compressed {
  if (codec === 'none' || raw.length < 64) return { codec: CODEC_RAW, data: raw };
  const zs = zstd();
  if (guessRaw && raw.length >= TRIAL_MIN_BYTES && zs.compress(raw, TRIAL_LEVEL).length > raw.length * (1 - TRIAL_MIN_SAVING)) {
    return { codec: CODEC_RAW, data: raw };
  }
  const z = zs.compress(raw, level);
  return z.length > raw.length * (1 - MIN_SAVING) ? { codec: CODEC_RAW, data: raw } : { codec: CODEC_ZSTD, data: z };
}

function zstdDecompress(data: Buffer, rawLength: number, what: string, scratch?: Buffer): Buffer {
  const z = zstd();
  let size: number | null;
  try {
    size = z.frameContentSize(data);
  } catch (e) {
    throw new SnapError('SNAP_CORRUPT', `${what} is not a zstd frame`, { cause: e });
  }
  if (size !== rawLength) throw new SnapError('SNAP_CORRUPT', `${what} declares ${String(size)} bytes, expected ${rawLength}`);
  let out: Buffer;
  try {
    out = z.decompress(data, rawLength, scratch);
  } catch (e) {
    throw new SnapError('SNAP_CORRUPT', `${what} does not decompress`, { cause: e });
  }
  if (out.length !== rawLength) throw new SnapError('SNAP_CORRUPT', `${what} has ${out.length} bytes, expected ${rawLength}`);
  return out;
}

const deflateRaw = promisify(zlib.deflateRaw);
const inflateRaw = promisify(zlib.inflateRaw);

/** Below this, a trial on a sample decides; compressing a whole incompressible chunk is wasted work. */
const SAMPLE = 64 * 1024;
/** Objects up to this size are compressed synchronously (see compress). */
const SYNC_LIMIT = 16 * 1024;
/** Keep the compressed form only when it saves at least this share. */
export const MIN_SAVING = 0.05;

export interface Compressed {
  codec: number;
  data: Buffer;
}

export async function compress(raw: Buffer, codec: CodecName, level: number): Promise<Compressed> {
  if (codec === 'none' || raw.length < 64) return { codec: CODEC_RAW, data: raw };
  if (isSyncCodec(codec)) {
    const c = compressSync(raw, codec, level);
    return { codec: c.codec, data: c.data === raw ? raw : Buffer.from(c.data) };
  }
  if (raw.length > SAMPLE * 2) {
    // Trial-compress a sample from the middle: random and already-compressed data is skipped
    // at the cost of 64 KiB of work instead of the whole chunk.
    const mid = Math.floor(raw.length / 2) - SAMPLE / 2;
    const trial = await deflateRaw(raw.subarray(mid, mid + SAMPLE), { level });
    if (trial.length > SAMPLE * (1 - MIN_SAVING)) return { codec: CODEC_RAW, data: raw };
  }
  // Small objects are compressed right here: starting an async zlib job costs ~69 µs of this
  // thread's time (its deflate state is set up before the job is queued), more than compressing
  // 1.6 KB (the corpus's median file) synchronously, 23 µs (bench/codecs measurements, --cpu-prof).
  const out = raw.length <= SYNC_LIMIT ? zlib.deflateRawSync(raw, { level }) : await deflateRaw(raw, { level });
  if (out.length > raw.length * (1 - MIN_SAVING)) return { codec: CODEC_RAW, data: raw };
  return { codec: CODEC_DEFLATE, data: out };
}

/** A crafted size is refused before anything is allocated for it (store/limits.ts). */
function checkRawLength(rawLength: number, what: string): void {
  if (rawLength > MAX_OBJECT_BYTES) throw new SnapError('SNAP_CORRUPT', `${what} claims ${rawLength} bytes, more than any object snap writes`);
}

function checkLength(out: Buffer, rawLength: number, what: string): Buffer {
  if (out.length !== rawLength) throw new SnapError('SNAP_CORRUPT', `${what} has ${out.length} bytes, expected ${rawLength}`);
  return out;
}

/** inflateRaw options: maxOutputLength bounds memory on a crafted object that claims to be small but inflates hugely. */
function inflateOptions(rawLength: number): zlib.ZlibOptions {
  // 1 MiB output steps: with the default 16 KiB, inflating an 8 MiB chunk took 30 ms instead of 13.
  return { maxOutputLength: Math.max(rawLength, 1), chunkSize: Math.min(Math.max(rawLength, 64), 1024 * 1024) };
}

/**
 * Decompress on the calling thread (worker threads unpack this way; store/object-codec.ts).
 * `scratch`: zstd decompresses into it when it is large enough (the result is then a view of it).
 */
export function decompressSync(codec: number, data: Buffer, rawLength: number, what: string, scratch?: Buffer): Buffer {
  checkRawLength(rawLength, what);
  let out: Buffer;
  if (codec === CODEC_RAW) out = data;
  else if (codec === CODEC_DEFLATE) {
    try {
      out = zlib.inflateRawSync(data, inflateOptions(rawLength));
    } catch (e) {
      throw new SnapError('SNAP_CORRUPT', `${what} does not decompress`, { cause: e });
    }
  } else if (codec === CODEC_ZSTD) out = zstdDecompress(data, rawLength, what, scratch);
  else throw new SnapError('SNAP_CORRUPT', `${what} uses unknown codec ${codec}`);
  return checkLength(out, rawLength, what);
}

/**
 * Decompress: deflate on libuv's thread pool, the others as decompressSync (same checks).
 * `scratch`: zstd decompresses into it when it is large enough (the result is then a view of it).
 */
export async function decompress(codec: number, data: Buffer, rawLength: number, what: string, scratch?: Buffer): Promise<Buffer> {
  if (codec !== CODEC_DEFLATE) return decompressSync(codec, data, rawLength, what, scratch);
  checkRawLength(rawLength, what);
  let out: Buffer;
  try {
    out = await inflateRaw(data, inflateOptions(rawLength));
  } catch (e) {
    throw new SnapError('SNAP_CORRUPT', `${what} does not decompress`, { cause: e });
  }
  return checkLength(out, rawLength, what);
}
