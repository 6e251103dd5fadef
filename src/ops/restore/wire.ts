// The messages of the restore writer threads (writer.ts posts batches, worker.ts runs them): a
// batch is one ArrayBuffer, moved to the thread and back, holding each job as numbers (a header of
// HEADER_FIELDS doubles) followed by its byte strings (stored data, temporary path, final path,
// id, the object's description or the pack it is in, the pack a thread reads it from); the answers are two numbers per
// job, with the rare ones (a failure, a time the file system did not hold) beside them. A batch of
// job objects was a structured clone of some 20 fields per file, and the objects themselves a good
// part of the main thread's garbage (docs/performance.md, "Restore: the writer threads read the
// objects").
import type { ErrorCode } from '../../core/errors.js';
import { objectWhat } from '../../store/object-codec.js';
import type { StoredAt } from '../../store/thread-pack-reads.js';
import type { TimeArg } from './time.js';

/** A job as the thread gets it. */
export interface Job {
  n: number;
  /** How the object is stored (CODEC_RAW or CODEC_ZSTD). */
  codec: number;
  rawLength: number;
  /** The object, for messages: "object … (in pack …)"; made by the thread from `inPack` when absent. */
  what?: string;
  /** The pack the object is in (for `what`, which the thread makes only then: not per file on the main thread). */
  inPack?: string;
  /** File size: trailing zero blocks are not written, a truncate sets the size. */
  size: number;
  mode: number;
  /** Set ownership (restores by root). */
  owner?: { uid: number; gid: number };
  /** atime and mtime (time.ts timeArg). */
  time: TimeArg;
  /** The times to expect afterwards, in ns (times before 1970, which a file system may not hold): time.ts heldTimes. */
  checkTime?: string[];
  /**
   * A chunk of a larger file (no paths): written at `pos` of the open descriptor `fd`, which the
   * main thread holds open until the job is answered and then finishes the file itself.
   */
  chunk?: { fd: number; pos: number };
  /** The thread reads the object itself from here (`data` is then empty). */
  from?: StoredAt;
  /** The object as stored (empty for an empty file, or with `from`). */
  data: Buffer;
  tmp: Buffer;
  dest: Buffer;
  /** The id the unpacked bytes must hash to (empty: an empty file, nothing to verify). */
  id: Buffer;
}

/** What a job's answer carries besides its number. */
export interface Answer {
  /** A chunk job: the file offset just past its last byte written (0 if all of it was zeros). */
  end: number;
  /** With checkTime: the mtime the file got instead (ns). */
  timeNs?: string;
  /** The object could not be read or failed verification (SNAP_CORRUPT, SNAP_MISSING_OBJECT...): nothing was written. */
  failed?: { code: ErrorCode; message: string };
  /** A system error (its errno code kept). */
  error?: { code?: string; message: string; syscall?: string; errno?: number };
}

/** A batch on its way to a thread: `jobs` jobs one after the other from the start of `buf`. */
export interface WireBatch {
  buf: ArrayBuffer;
  jobs: number;
}

/** A batch answered: per job its number and end (`results`, two doubles each), the rare parts by job index. */
export interface WireDone {
  buf: ArrayBuffer;
  results: Float64Array;
  rare?: [number, Omit<Answer, 'end'>][];
}

/** The last message a writer thread gets: it closes its port and its event loop ends (exit code 0). */
export interface WireClose {
  close: true;
}

const F_N = 0;
const F_FLAGS = 1;
const F_CODEC = 2;
const F_RAW = 3;
const F_SIZE = 4;
const F_MODE = 5;
const F_TIME = 6;
const F_UID = 7;
const F_GID = 8;
const F_FD = 9;
const F_POS = 10;
const F_AT = 11;
const F_LENGTH = 12;
/** Lengths of the byte strings, in their order: data, tmp, dest, id, what, pack, extra. */
const F_LENS = 13;
const STRINGS = 7;
const HEADER_FIELDS = F_LENS + STRINGS;
export const HEADER_BYTES = HEADER_FIELDS * 8;

const CHUNK = 1;
const OWNER = 2;
const FROM = 4;
/** The time and the times to check are in `extra` (JSON): a time before 1970 is a numeric string. */
const EXTRA = 8;
/** The `what` string is the pack's name (latin1): the thread makes the description (objectWhat). */
const WHAT_PACK = 16;

/** What a job needs besides its numbers, encoded (utf8 for the strings). */
export interface Encoded {
  job: Job;
  what: Buffer;
  pack: Buffer;
  extra: Buffer | undefined;
  bytes: number;
}

const NONE = Buffer.alloc(0);

/** A job's strings encoded and its size in a batch (8-byte aligned). */
export function encode(job: Job): Encoded {
  const what = job.what !== undefined ? Buffer.from(job.what) : Buffer.from(job.inPack ?? '', 'latin1');
  const pack = job.from ? Buffer.from(job.from.pack, 'latin1') : NONE;
  const extra = typeof job.time === 'string' || job.checkTime !== undefined ? Buffer.from(JSON.stringify({ time: job.time, checkTime: job.checkTime })) : undefined;
  const strings = job.data.length + job.tmp.length + job.dest.length + job.id.length + what.length + pack.length + (extra?.length ?? 0);
  return { job, what, pack, extra, bytes: HEADER_BYTES + Math.ceil(strings / 8) * 8 };
}

/** Write an encoded job at `off` of `buf` (8-byte aligned, with room for e.bytes). */
export function put(buf: ArrayBuffer, off: number, e: Encoded): void {
  const j = e.job;
  const h = new Float64Array(buf, off, HEADER_FIELDS);
  h[F_N] = j.n;
  h[F_FLAGS] = (j.chunk ? CHUNK : 0) | (j.owner ? OWNER : 0) | (j.from ? FROM : 0) | (e.extra ? EXTRA : 0) | (j.what === undefined ? WHAT_PACK : 0);
  h[F_CODEC] = j.codec;
  h[F_RAW] = j.rawLength;
  h[F_SIZE] = j.size;
  h[F_MODE] = j.mode;
  h[F_TIME] = typeof j.time === 'number' ? j.time : 0;
  h[F_UID] = j.owner?.uid ?? 0;
  h[F_GID] = j.owner?.gid ?? 0;
  h[F_FD] = j.chunk?.fd ?? 0;
  h[F_POS] = j.chunk?.pos ?? 0;
  h[F_AT] = j.from?.offset ?? 0;
  h[F_LENGTH] = j.from?.length ?? 0;
  const into = new Uint8Array(buf);
  let at = off + HEADER_BYTES;
  let i = F_LENS;
  for (const s of [j.data, j.tmp, j.dest, j.id, e.what, e.pack, e.extra ?? NONE]) {
    into.set(s, at);
    at += s.length;
    h[i++] = s.length;
  }
}

/** The jobs of a batch, in order (their byte strings are views of the batch's buffer), each with its `what`. */
export function* jobsIn({ buf, jobs }: WireBatch): Iterable<Job & { what: string }> {
  const all = Buffer.from(buf);
  let off = 0;
  for (let k = 0; k < jobs; k++) {
    const h = new Float64Array(buf, off, HEADER_FIELDS);
    const flags = h[F_FLAGS]!;
    let at = off + HEADER_BYTES;
    const s: Buffer[] = [];
    for (let i = 0; i < STRINGS; i++) {
      const len = h[F_LENS + i]!;
      s.push(all.subarray(at, at + len));
      at += len;
    }
    const [data, tmp, dest, id, what, pack, extra] = s as [Buffer, Buffer, Buffer, Buffer, Buffer, Buffer, Buffer];
    const more = flags & EXTRA ? (JSON.parse(extra.toString()) as { time: TimeArg; checkTime?: string[] }) : undefined;
    yield {
      n: h[F_N]!,
      codec: h[F_CODEC]!,
      rawLength: h[F_RAW]!,
      what: flags & WHAT_PACK ? objectWhat(id, what.toString('latin1')) : what.toString(),
      size: h[F_SIZE]!,
      mode: h[F_MODE]!,
      owner: flags & OWNER ? { uid: h[F_UID]!, gid: h[F_GID]! } : undefined,
      time: more ? more.time : h[F_TIME]!,
      checkTime: more?.checkTime,
      chunk: flags & CHUNK ? { fd: h[F_FD]!, pos: h[F_POS]! } : undefined,
      from: flags & FROM ? { pack: pack.toString('latin1'), offset: h[F_AT]!, length: h[F_LENGTH]! } : undefined,
      data,
      tmp,
      dest,
      id,
    };
    off = at + ((8 - (at % 8)) % 8);
  }
}
