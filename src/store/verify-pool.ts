// Whole-pack verification for `check --read-data` on worker threads (verify-worker.ts): opening
// (encrypted repositories), hashing and decompressing are most of a read-data check's CPU time,
// and on the main thread they ran one pack after another, after the tree walk, while the next
// pack's read waited. Now they run beside the walk and the index lookups. Pack buffers move to a
// thread and back (transferred, never copied; an encrypted pack is opened in place), so memory is
// the buffers in flight plus one object scratch per thread (docs/performance.md, "check
// --read-data on threads"). On a local repository the threads read the packs themselves
// (verifyStored): one buffer per thread, and no pack waits for the main thread to be handed over.
import { availableParallelism } from 'node:os';
import { SnapError } from '../core/errors.js';
import { workerUrl } from '../core/worker-url.js';
import type { BlobKeys } from '../backend/encrypted.js';
import type { CodecContext } from './object-codec.js';
import type { PackVerdict } from './pack-verify.js';
import type { PackReadSpec } from './thread-pack-reads.js';
import { ThreadPool } from './thread-pool.js';
import type { VerifyReply, VerifyRequest, VerifyWorkerData } from './verify-worker.js';
import { zstdSpec } from './zstd.js';

/**
 * Threads for this machine: one per available core but the one the main thread keeps busy (the
 * walk, the index), at least 1 and at most 4: each holds a pack and an object scratch. On 2 cores
 * one thread was faster than none and smaller; two were faster still but 60-70 MB larger.
 */
export function defaultVerifyThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

export class PackVerifier {
  private readonly pool: ThreadPool<VerifyRequest, VerifyReply>;

  /** Whether the threads read packs themselves (verifyStored). */
  readonly readsPacks: boolean;

  /** `reads`: how the threads read packs themselves (Repository.threadReads), when they can. */
  constructor(ctx: CodecContext, readonly threads = defaultVerifyThreads(), reads?: PackReadSpec) {
    this.readsPacks = reads !== undefined;
    const verify: VerifyWorkerData = { zstd: zstdSpec(), codec: ctx, reads };
    this.pool = new ThreadPool({ url: workerUrl('./verify-worker.js', import.meta.url), workerData: { verify }, threads, what: 'a check thread' });
  }

  /**
   * Verify the pack in the first `length` bytes of `buffer` (as stored: sealed, when `keys` are
   * given, and opened on the thread). `buffer` must be the whole of its own ArrayBuffer: it moves
   * to the thread (every other view of it becomes empty) and comes back with the verdict, for the
   * next read.
   */
  async verify(pack: string, buffer: Buffer, length: number, keys?: BlobKeys): Promise<{ verdict: PackVerdict; buffer: Buffer }> {
    const ab = buffer.buffer;
    if (buffer.byteOffset !== 0 || !(ab instanceof ArrayBuffer) || ab.byteLength !== buffer.length) throw new Error('PackVerifier.verify: the buffer must be a whole ArrayBuffer of its own');
    const r = await this.pool.run({ pack, buffer: ab, length, ...(keys ? { keys: { dataKey: keys.dataKey } } : {}) }, [ab]);
    return { verdict: r.verdict!, buffer: Buffer.from(r.buffer!) };
  }

  /**
   * Verify a pack the thread reads itself (readsPacks), as stored; a pack it cannot read comes back
   * as `error` (SNAP_MISSING_OBJECT, SNAP_CORRUPT for one that is not a regular file, SNAP_IO...),
   * as the repository's read would have thrown it. Jobs wait on their thread, none holds memory
   * until it runs.
   */
  async verifyStored(pack: string): Promise<{ verdict: PackVerdict } | { error: SnapError }> {
    const r = await this.pool.run({ pack, read: true });
    if (r.readError) return { error: new SnapError(r.readError.code, r.readError.message) };
    return { verdict: r.verdict! };
  }
}
