// Object compression. Each stored object carries a one-byte codec id, so objects written with
// different codecs can live in one repository. Compression runs on libuv's thread pool
// (node:zlib's async API), off the main thread, so chunking and hashing overlap with it and both
// cores work. node:zlib deflate level 1 is 3-4x faster than fflate here (RESULTS.md §3.2).
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { SnapError } from '../core/errors.js';
import type { CodecName } from '../model/config.js';

export const CODEC_RAW = 0;
export const CODEC_DEFLATE = 1;

const deflateRaw = promisify(zlib.deflateRaw);
const inflateRaw = promisify(zlib.inflateRaw);

/** Below this, a trial on a sample decides; compressing a whole incompressible chunk is wasted work. */
const SAMPLE = 64 * 1024;
/** Objects up to this size are compressed synchronously (see compress). */
const SYNC_LIMIT = 16 * 1024;
/** Keep the compressed form only when it saves at least this share. */
const MIN_SAVING = 0.05;

export interface Compressed {
  codec: number;
  data: Buffer;
}

export async function compress(raw: Buffer, codec: CodecName, level: number): Promise<Compressed> {
  if (codec === 'none' || raw.length < 64) return { codec: CODEC_RAW, data: raw };
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

export async function decompress(codec: number, data: Buffer, rawLength: number, what: string): Promise<Buffer> {
  let out: Buffer;
  if (codec === CODEC_RAW) out = data;
  else if (codec === CODEC_DEFLATE) {
    try {
      // maxOutputLength bounds memory on a crafted object that claims to be small but inflates hugely.
      out = await inflateRaw(data, { maxOutputLength: Math.max(rawLength, 1) });
    } catch (e) {
      throw new SnapError('SNAP_CORRUPT', `${what} does not decompress`, { cause: e });
    }
  } else throw new SnapError('SNAP_CORRUPT', `${what} uses unknown codec ${codec}`);
  if (out.length !== rawLength) throw new SnapError('SNAP_CORRUPT', `${what} has ${out.length} bytes, expected ${rawLength}`);
  return out;
}
