// The content-addressed object store: objects (chunks and trees) named by the SHA-256 of their
// uncompressed bytes, stored once, compressed, bundled into packs. Adding is pipelined: the
// caller hashes, compression runs on the thread pool, full packs are written and then indexed.
// Memory is bounded by `maxInflightBytes` plus one open pack per object type.
import { availableParallelism } from 'node:os';
import pLimit from 'p-limit';
import { SnapError } from '../core/errors.js';
import { readFully } from '../core/read-fully.js';
import { sha256, toHex } from '../core/ids.js';
import type { Backend } from '../backend/backend.js';
import type { CodecName } from '../model/config.js';
import { isSyncCodec } from './codec.js';
import { type CodecContext, decodeAndVerify, encodeObject, encodeObjectSync, ID_BYTES, objectId, objectWhat, PLAIN } from './object-codec.js';
import { chunkFileOnWorkers, compressOnWorkers, defaultCompressWorkers, finishPackOnWorkers, giveBackShared, takeShared } from './compress-pool.js';
import type { ChunkFileDone, PackDone } from './compress-worker.js';
import type { Gear } from './chunker.js';
import { type BlobKeys, type BlobSealing, sealedSize } from '../backend/encrypted.js';
import { type ObjectType, PackBuilder, type PackEntry, packName } from './pack.js';
import { checkObjectClaim } from './limits.js';

/**
 * Compressions started at once. node:zlib allocates a deflate state (~300 KB) when a job is
 * submitted, not when a pool thread runs it: with thousands of small files queued against the
 * byte budget alone, peak RSS reached 340-540 MB on a 239k-file home directory. A few more jobs
 * than cores keep every core busy.
 */
const MAX_COMPRESSIONS = Math.max(2, availableParallelism()) + 2;

/**
 * Sealed packs being written at once (each up to packSize plus one object), unless the store is
 * told otherwise (ObjectStoreOptions.packWrites): one for a local disk, where a second did not
 * make a backup faster; a remote repository gets more (repo/repository.ts), so that uploads overlap.
 */
const PACK_WRITES = 1;

/**
 * A batch for a compression worker is sent once it holds this many bytes or objects: small files
 * travel together, so the cost of a message (tens of µs of main-thread time) is paid per batch,
 * not per 1.6 KB file, while a 1 MiB chunk goes on its own.
 */
const JOB_BYTES = 256 * 1024;
const JOB_OBJECTS = 256;

/**
 * Raw bytes a store compresses (and packs it seals) on the calling thread before it first uses its
 * compression threads (ObjectStoreOptions.inlineStartBytes). Starting a thread takes about 100 ms
 * (an isolate, zstd's module): a backup in which nothing changed adds a tree or two (the folders
 * above the sources) and waited 120-150 ms at its flush for a thread to seal a 200-byte pack.
 * 1 MiB is a few ms of zstd on this thread; a larger backup starts the threads right after it.
 */
const INLINE_START_BYTES = 1024 * 1024;

/** addHashing hashes first (compressing only what is new) once this share of the objects it hashed lately was stored already. */
const STORED_SHARE_HASH_FIRST = 0.5;
/** Objects the moving average of that share spans, about. */
const STORED_SHARE_SPAN = 8;

/** Objects waiting in the ring for (or back from) a worker: one contiguous region of it. */
interface RingJob {
  off: number;
  end: number;
  types: ObjectType[];
  /** The objects' ids; none in a hashing job (addHashing), whose worker computes them. */
  ids: Buffer[];
  objs: number[]; // (offset, raw length) pairs
  sent: boolean;
  result?: Int32Array;
  /** A hashing job: the callers waiting for each object's id, in order. */
  hashing?: IdWaiter[];
  /** A hashing job for content probably stored already: the thread only hashes; what is new is compressed after the lookups. */
  hashOnly?: boolean;
  /** Someone waits for its objects to be appended (durable): told when it leaves the ring. */
  drained?: Deferred;
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(e: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => {}); // awaited by whoever asked; a failure nobody waits for is not unhandled
  return { promise, resolve, reject };
}

interface IdWaiter {
  resolve(id: Buffer): void;
  reject(e: unknown): void;
}

export interface ObjectLocation {
  pack: string;
  type: ObjectType;
  offset: number;
  length: number;
  rawLength: number;
  codec: number;
}

/** What the store needs from the index (implemented by index/ over LevelDB). */
export interface LocationIndex {
  lookup(id: Buffer): Promise<ObjectLocation | undefined>;
  /** lookup, answered at once where it can be (this process holds the index), else a promise. */
  lookupNow?(id: Buffer): ObjectLocation | undefined | Promise<ObjectLocation | undefined>;
  /** Whether lookupNow answers at once now (false: another process holds the index, and serves it). */
  readonly answersAtOnce?: boolean;
  /** Called only after the pack is durable in the backend. */
  addPack(packId: string, size: number, entries: PackEntry[]): Promise<void>;
}

export interface ObjectStoreOptions {
  codec: CodecName;
  level: number;
  packSize: number;
  maxInflightBytes?: number;
  /** zstd compression threads; 0 compresses on the calling thread. Default: one per core but one (defaultCompressWorkers). */
  compressWorkers?: number;
  /** How objects are sealed and opened (store/object-codec.ts); PLAIN by default. */
  codecContext?: CodecContext;
  /**
   * An encrypted repository's packs: sealed by the compression threads and stored through this,
   * instead of being sealed by the backend's put on this thread (EncryptedBackend.sealing()).
   */
  sealing?: BlobSealing;
  /** Full packs written at once (each held in memory until written): 1 by default. */
  packWrites?: number;
  /** Raw bytes compressed and packs sealed on the calling thread before the threads are first used (INLINE_START_BYTES by default). */
  inlineStartBytes?: number;
}

export interface AddResult {
  id: Buffer;
  added: boolean;
}

export class ObjectStore {
  private readonly pending = new Set<string>();
  private readonly builders = new Map<ObjectType, PackBuilder>();
  private readonly tasks = new Set<Promise<void>>();
  /** Open packs someone waits for (durable): told when each is written and indexed. */
  private readonly written = new Map<PackBuilder, Deferred>();
  /** Set by settle: open packs are never written. */
  private stopped: unknown;
  private failure: unknown;
  private inflight = 0;
  private waiters: (() => void)[] = [];
  private readonly compressLimit = pLimit(MAX_COMPRESSIONS);
  private readonly spareBuffers: Buffer[] = [];
  /** Buffers sealed packs were in, for the next ones (as many as packs are written at once). */
  private readonly spareSealed: ArrayBuffer[] = [];
  private readonly maxPackWrites: number;
  /** The sealing keys as sent with each pack: a copy in a buffer of its own (a message clones a view's whole buffer). */
  private readonly sealKeys: BlobKeys | undefined;
  private packWrites = 0;
  private packWaiters: (() => void)[] = [];
  /** Packs of file data that hold a buffer: the open one, those waiting for a write slot, those being written. */
  private readonly blobPacks = new Set<PackBuilder>();
  private blobPackWaiters: (() => void)[] = [];
  private readonly maxInflight: number;
  private readonly workers: number;
  // The ring: raw objects copied in by add(), compressed in place by the workers, appended to
  // packs in ring order by drainRing(), then their space is reused.
  private ring: SharedArrayBuffer | undefined;
  private ringBuf: Buffer<ArrayBufferLike> = Buffer.alloc(0);
  private readonly jobs: RingJob[] = [];
  private openJob: RingJob | undefined;
  private sendScheduled = false;
  private draining = false;
  private ringWaiters: (() => void)[] = [];
  /**
   * Of the objects hashed on the threads lately, the share found stored already (a moving
   * average): when most are, addHashing only hashes first (as for `likelyStored`), so content
   * that is stored but has no files-cache entry (after gc, a copy of backed-up files) is not
   * compressed for nothing.
   */
  private storedShare = 0;
  /** What may still be compressed or sealed here before the threads are first used (beforeThreads); 0 once they are. */
  private inlineBudget: number;
  /**
   * `inlined`: objects compressed on the calling thread because the ring was full and the threads
   * behind; `hashedFirst`: objects addHashing had hashed before anything was compressed;
   * `compressedStored`: objects addHashing had compressed and then found stored already;
   * `readIntoRing`: objects addRead read straight into the ring (stored then or found stored).
   */
  readonly stats = { objectsAdded: 0, bytesAdded: 0, rawBytesAdded: 0, packsWritten: 0, inlined: 0, hashedFirst: 0, compressedStored: 0, readIntoRing: 0 };
  /** The codec context every object of this store is encoded and decoded with. */
  readonly ctx: CodecContext;

  constructor(
    private readonly backend: Backend,
    private readonly index: LocationIndex,
    private readonly opts: ObjectStoreOptions,
  ) {
    // Enough raw data in flight to keep every compression slot busy with average (1 MiB) chunks.
    this.maxInflight = opts.maxInflightBytes ?? Math.max(16, MAX_COMPRESSIONS * 4) * 1024 * 1024;
    this.workers = opts.codec === 'zstd' ? (opts.compressWorkers ?? defaultCompressWorkers()) : 0;
    this.ctx = opts.codecContext ?? PLAIN;
    this.maxPackWrites = Math.max(1, opts.packWrites ?? PACK_WRITES);
    this.inlineBudget = this.workers > 0 ? Math.max(0, opts.inlineStartBytes ?? INLINE_START_BYTES) : 0;
    const k = opts.sealing?.keys.dataKey;
    this.sealKeys = k ? { dataKey: Buffer.from(Uint8Array.from(k).buffer) } : undefined;
  }

  /** Compression threads this store uses (0: it compresses on the calling thread). */
  get threads(): number {
    return this.workers;
  }

  async has(id: Buffer): Promise<boolean> {
    return this.pending.has(toHex(id)) || (await this.index.lookup(id)) !== undefined;
  }

  /** The uncompressed size of a stored object, from the index (pending objects of this process are not counted). */
  async rawLength(id: Buffer): Promise<number | undefined> {
    return (await this.index.lookup(id))?.rawLength;
  }

  /**
   * Store an object unless it is already stored. Resolves once accepted, before it is durable:
   * call flush(). `raw` may be reused by the caller as soon as this resolves.
   */
  async add(type: ObjectType, raw: Buffer, id: Buffer = objectId(raw, this.ctx)): Promise<AddResult> {
    this.throwIfFailed();
    if (!(await this.claim(id))) return { id, added: false };
    // Into the ring; if the threads are behind (other work on the cores), rather than wait idle,
    // this thread compresses the object itself, below.
    const early = this.beforeThreads(raw.length, true);
    if (this.workers > 0 && !early && raw.length >= 64 && raw.length <= this.maxInflight && (await this.intoRing(type, id, raw))) return { id, added: true };
    if (isSyncCodec(this.opts.codec)) {
      // zstd (and no compression) run right here: the object is compressed and copied into its
      // pack before add() returns, so nothing per chunk outlives this call and the caller's buffer
      // is free again. A 1 GiB backup allocating a chunk and an output buffer per chunk peaked
      // at 415 MB of RSS, garbage V8 collects late while its own heap stays small.
      if (this.workers > 0 && !early) this.stats.inlined++;
      const c = encodeObjectSync(raw, this.opts.codec, this.opts.level, this.ctx);
      await this.append(type, id, c.data, raw.length, c.codec);
      return { id, added: true };
    }
    while (this.inflight > 0 && this.inflight + raw.length > this.maxInflight) {
      await new Promise<void>((r) => this.waiters.push(r));
    }
    this.throwIfFailed();
    const copy = Buffer.from(raw); // compressed later, on the thread pool
    this.inflight += copy.length;
    this.track(this.compressAndPack(type, id, copy).finally(() => this.release(copy.length)));
    return { id, added: true };
  }

  /**
   * Store a small object read from `fd` (its first `size` bytes, read at offsets from 0: the
   * descriptor's own offset does not move) straight into the ring, where a thread compresses it:
   * the bytes are not copied from a read buffer into the ring (a first backup's small files are
   * about 430 MB of the bench corpus). `hash` names what was read. Undefined, with nothing read or
   * stored, when this cannot be done at once here (no threads or before them, no room in the ring,
   * a lookup that has to wait: the caller then reads the file and calls add()); else its id (none
   * when the file ended before its first byte), whether it was added, and the bytes read, fewer than
   * `size` when the file ended sooner. A read error is thrown as the system error it is.
   */
  addRead(type: ObjectType, fd: number, size: number, hash: (raw: Buffer) => Buffer): { id: Buffer | undefined; added: boolean; length: number } | undefined {
    this.throwIfFailed();
    if (this.workers === 0 || this.inlineBudget > 0 || size < 64 || size > this.maxInflight || !this.index.lookupNow || this.index.answersAtOnce === false) return undefined;
    if (!this.ring) {
      this.ring = takeShared(this.maxInflight);
      this.ringBuf = Buffer.from(this.ring);
    }
    const off = this.allocRing(size);
    if (off < 0) return undefined;
    // Nothing here awaits until the object is in a job (reserveRing) or found stored: no other add
    // can take this space meanwhile.
    const got = readFully(fd, this.ringBuf.subarray(off, off + size), 0);
    if (got === 0) return { id: undefined, added: false, length: 0 };
    this.stats.readIntoRing++;
    const raw = this.ringBuf.subarray(off, off + got);
    const id = hash(raw);
    const hex = toHex(id);
    if (this.pending.has(hex)) return { id, added: false, length: got };
    const found = this.index.lookupNow(id);
    if (found instanceof Promise) {
      // The index has just gone to another process (its owner ended): asked again by the caller's add().
      found.catch(() => {});
      this.stats.readIntoRing--;
      return undefined;
    }
    if (found) return { id, added: false, length: got };
    this.pending.add(hex);
    this.reserveRing(type, id, off, got);
    return { id, added: true, length: got };
  }

  /**
   * Store an object unless it is already stored, its id computed by a compression thread together
   * with its compressed form (a new large file's chunks: the thread that reads and chunks files
   * then does not hash them; docs/performance.md, "Chunk ids on the compression threads"). Resolves
   * once `raw` is copied (the caller may reuse it) with the id to come: it resolves once the object
   * is known stored or already there (added and stats as for add()), and rejects if the store fails
   * first. Objects a thread cannot take (no threads, too small or too large for the ring) are
   * hashed and added here. An object found already stored was compressed for nothing: meant for
   * content that is probably new. `likelyStored` (a changed file's chunks, mostly stored already):
   * the thread only hashes, and only the objects the lookups find new are compressed, by a thread,
   * before they are appended.
   */
  async addHashing(type: ObjectType, raw: Buffer, likelyStored = false): Promise<{ id: Promise<Buffer> }> {
    this.throwIfFailed();
    if (this.workers > 0 && raw.length >= 64 && raw.length <= this.maxInflight && !this.beforeThreads(raw.length, false)) {
      let waiter: IdWaiter | undefined;
      const id = new Promise<Buffer>((resolve, reject) => (waiter = { resolve, reject }));
      id.catch(() => {}); // the caller may stop before awaiting it (a read error): not unhandled
      if (await this.intoRing(type, undefined, raw, waiter, likelyStored || this.storedShare > STORED_SHARE_HASH_FIRST)) return { id };
    }
    const r = await this.add(type, raw);
    this.noteStored(!r.added);
    return { id: Promise.resolve(r.id) };
  }

  /**
   * Resolves once objects take at most `share` of the ring, or none of them is another producer's
   * (objects with their ids: hashed by the caller), at once when there is no ring: for a producer of
   * objects the threads hash (addHashing) that gives way to the others, so that they find room and
   * the threads' work is spread (the backup's lane of large files, ops/backup/create.ts). Alone, it
   * has the whole ring.
   */
  async ringRoom(share: number): Promise<void> {
    while (this.ringUsed() > share * this.maxInflight && this.jobs.some((j) => j.hashing === undefined)) {
      this.throwIfFailed();
      await new Promise<void>((r) => this.ringWaiters.push(r));
    }
    this.throwIfFailed();
  }

  /** Bytes of the ring from its oldest job's start to its newest one's end (jobs hold it in order, wrapping once). */
  private ringUsed(): number {
    const first = this.jobs[0];
    const last = this.jobs[this.jobs.length - 1];
    if (!first || !last) return 0;
    return last.end >= first.off ? last.end - first.off : this.maxInflight - first.off + last.end;
  }

  /**
   * Chunk a large file on a compression thread, with its chunks' ids (objectId): the thread reads
   * `fd` (open until this settles) from its start, at most `size` bytes. Undefined when this store
   * has no threads (the caller chunks it itself).
   */
  async chunkFile(fd: number, size: number, gear: Gear): Promise<ChunkFileDone | undefined> {
    this.throwIfFailed();
    if (this.workers === 0) return undefined;
    this.inlineBudget = 0;
    // A read error comes back as the answer; a rejection is the thread's own failure, never the file's.
    return chunkFileOnWorkers({ fd, size, gear }, this.workers, this.ctx).catch((e: unknown) => {
      throw new SnapError('SNAP_INTERNAL', `a compression thread failed to cut a file: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    });
  }

  /**
   * Whether `n` raw bytes (an object, or a pack to seal) are dealt with on this thread because the
   * threads have not been used yet and the store is within INLINE_START_BYTES; `take`: count them.
   * Anything larger than what is left uses the threads from then on.
   */
  private beforeThreads(n: number, take: boolean): boolean {
    if (n > this.inlineBudget) {
      this.inlineBudget = 0;
      return false;
    }
    if (take) this.inlineBudget -= n;
    return true;
  }

  /**
   * Copy an object into the ring (addToRing), waiting for room while the storage is behind; false
   * when the ring stays full because the threads are behind (the caller then does the work).
   */
  private async intoRing(type: ObjectType, id: Buffer | undefined, raw: Buffer, waiter?: IdWaiter, hashOnly = false): Promise<boolean> {
    if (this.addToRing(type, id, raw, waiter, hashOnly)) return true;
    // The ring is full. Results that came back are processed on the event loop, which this thread
    // may not have visited for a while (reading a large file awaits nothing else): visit it once.
    await new Promise<void>((r) => setImmediate(r));
    this.throwIfFailed();
    if (this.addToRing(type, id, raw, waiter, hashOnly)) return true;
    // Full because the storage is behind (the oldest batch is compressed and waits to be
    // appended, or every pack write slot is taken): compressing on the calling thread would not
    // store anything sooner, and on a machine that also runs the storage (a local gateway) it takes
    // the CPU the writes need. Wait for room. Only threads still at work on the oldest batch are "behind".
    while (this.jobs[0]?.result !== undefined || this.packWrites >= this.maxPackWrites) {
      await new Promise<void>((r) => this.ringWaiters.push(r));
      this.throwIfFailed();
      if (this.addToRing(type, id, raw, waiter, hashOnly)) return true;
    }
    return false;
  }

  /**
   * Copy an object into the ring, to be compressed by a worker; false when the ring is full, so
   * the bytes in flight never exceed maxInflight (plus what the packs hold). Without an id, the
   * worker computes it and `waiter` gets it (addHashing).
   */
  private addToRing(type: ObjectType, id: Buffer | undefined, raw: Buffer, waiter?: IdWaiter, hashOnly = false): boolean {
    if (!this.ring) {
      this.ring = takeShared(this.maxInflight);
      this.ringBuf = Buffer.from(this.ring);
    }
    const off = this.allocRing(raw.length);
    if (off < 0) {
      this.sendOpenJob();
      return false;
    }
    raw.copy(this.ringBuf, off);
    this.reserveRing(type, id, off, raw.length, waiter, hashOnly);
    return true;
  }

  /** Put the object at `off` in the ring (`length` bytes, right after the last job's) into the open job, sending jobs as they fill. */
  private reserveRing(type: ObjectType, id: Buffer | undefined, off: number, length: number, waiter?: IdWaiter, hashOnly = false): void {
    let j = this.openJob;
    // A job hashes all its objects or none.
    if (!j || j.end !== off || (j.hashing !== undefined) !== (id === undefined) || (j.hashOnly === true) !== (id === undefined && hashOnly)) {
      this.sendOpenJob();
      j = this.openJob = { off, end: off, types: [], ids: [], objs: [], sent: false, ...(id === undefined ? { hashing: [], ...(hashOnly ? { hashOnly } : {}) } : {}) };
      this.jobs.push(j);
    }
    j.types.push(type);
    if (id) j.ids.push(id);
    else j.hashing!.push(waiter!);
    if (j.hashOnly) this.stats.hashedFirst++;
    j.objs.push(off, length);
    j.end = off + length;
    if (j.end - j.off >= JOB_BYTES || j.types.length >= JOB_OBJECTS) this.sendOpenJob();
    else if (!this.sendScheduled) {
      // A batch is never left waiting for more objects once this thread has nothing else to do.
      this.sendScheduled = true;
      setImmediate(() => {
        this.sendScheduled = false;
        this.sendOpenJob();
      });
    }
  }

  /** Where `n` bytes fit in the ring after the last job, or -1. Jobs hold it in order, wrapping once. */
  private allocRing(n: number): number {
    if (this.jobs.length === 0) return 0;
    const first = this.jobs[0]!.off;
    const last = this.jobs[this.jobs.length - 1]!;
    if (last.off >= first) {
      if (this.maxInflight - last.end >= n) return last.end;
      return first >= n ? 0 : -1;
    }
    return first - last.end >= n ? last.end : -1;
  }

  private sendOpenJob(): void {
    const j = this.openJob;
    if (!j) return;
    this.openJob = undefined;
    j.sent = true;
    const hash = j.hashing !== undefined;
    const hashOnly = j.hashOnly === true;
    compressOnWorkers({ ring: this.ring!, level: this.opts.level, objs: Int32Array.from(j.objs), ...(hash ? { hash } : {}), ...(hashOnly ? { hashOnly } : {}) }, this.workers, this.ctx).then(
      (r) => {
        j.result = r;
        if (j === this.jobs[0]) void this.drainRing();
      },
      (e: unknown) => this.fail(e),
    );
  }

  /** Append compressed objects to their packs in ring order, freeing ring space as jobs finish. */
  private async drainRing(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      for (let j = this.jobs[0]; j?.result; j = this.jobs[0]) {
        if (j.hashOnly) {
          await this.drainHashOnly(j);
          this.jobs.shift();
          j.drained?.resolve();
          this.wakeRing();
          continue;
        }
        const r = j.result;
        for (let i = 0; i < j.types.length; i++) {
          const off = j.objs[2 * i]!;
          const data = this.ringBuf.subarray(off, off + r[2 * i + 1]!);
          if (j.hashing) {
            // The id the thread computed; stored once, as add() does.
            const id = hashedId(j, i);
            const fresh = await this.claim(id);
            this.noteStored(!fresh);
            if (fresh) await this.append(j.types[i]!, id, data, j.objs[2 * i + 1]!, r[2 * i]!);
            else this.stats.compressedStored++;
            j.hashing[i]?.resolve(id); // none left once the store failed (fail() told them)
            continue;
          }
          await this.append(j.types[i]!, j.ids[i]!, data, j.objs[2 * i + 1]!, r[2 * i]!);
        }
        this.jobs.shift();
        j.drained?.resolve();
        this.wakeRing();
      }
    } catch (e) {
      this.fail(e);
    } finally {
      this.draining = false;
      this.wakeRing();
    }
  }

  /**
   * A hash-only job back from its thread: each object is looked up (claimed first, as add() does);
   * the new ones, still as they were in the ring, are then compressed by a thread (one batch) and
   * appended in order; the others are dropped, compressed by no one.
   */
  private async drainHashOnly(j: RingJob): Promise<void> {
    const fresh: { i: number; id: Buffer }[] = [];
    for (let i = 0; i < j.types.length; i++) {
      const id = hashedId(j, i);
      const isNew = await this.claim(id);
      this.noteStored(!isNew);
      if (isNew) fresh.push({ i, id });
      j.hashing?.[i]?.resolve(id);
    }
    if (fresh.length === 0) return;
    const objs = new Int32Array(fresh.length * 2);
    fresh.forEach((f, k) => objs.set([j.objs[2 * f.i]!, j.objs[2 * f.i + 1]!], 2 * k));
    const c = await compressOnWorkers({ ring: this.ring!, level: this.opts.level, objs }, this.workers, this.ctx);
    for (const [k, f] of fresh.entries()) {
      const off = j.objs[2 * f.i]!;
      await this.append(j.types[f.i]!, f.id, this.ringBuf.subarray(off, off + c[2 * k + 1]!), j.objs[2 * f.i + 1]!, c[2 * k]!);
    }
  }

  /**
   * Claim an id for this store (true), or learn it is stored or being stored already (false).
   * Claimed before the index is asked, so a concurrent add of the same id dedups.
   */
  private async claim(id: Buffer): Promise<boolean> {
    const hex = toHex(id);
    if (this.pending.has(hex)) return false;
    this.pending.add(hex);
    if (await this.index.lookup(id)) {
      this.pending.delete(hex);
      return false;
    }
    return true;
  }

  private noteStored(stored: boolean): void {
    this.storedShare += ((stored ? 1 : 0) - this.storedShare) / STORED_SHARE_SPAN;
  }

  private wakeRing(): void {
    const w = this.ringWaiters;
    this.ringWaiters = [];
    for (const r of w) r();
  }

  private async compressAndPack(type: ObjectType, id: Buffer, raw: Buffer): Promise<void> {
    const c = await this.compressLimit(() => encodeObject(raw, this.opts.codec, this.opts.level, this.ctx));
    await this.append(type, id, c.data, raw.length, c.codec);
  }

  /** Copy a stored object into its type's open pack (its bytes before anything is awaited); write the pack when full. */
  private async append(type: ObjectType, id: Buffer, data: Buffer, rawLength: number, codec: number): Promise<void> {
    let b = this.builders.get(type);
    if (!b && type === 'blob') {
      // At most one open pack of file data beside the maxPackWrites being written (or waiting for
      // a slot): a full pack waiting while another is written no longer lets a third buffer fill.
      // `data` is a view the caller reuses once this yields (the ring, a compression scratch):
      // copied first when this must wait.
      if (this.blobPacks.size > this.maxPackWrites) data = Buffer.from(data);
      while (!(b = this.builders.get(type)) && this.blobPacks.size > this.maxPackWrites) await new Promise<void>((r) => this.blobPackWaiters.push(r));
      this.throwIfFailed();
      if (!b) {
        this.builders.set(type, (b = new PackBuilder(this.packBuffer())));
        this.blobPacks.add(b);
      }
    }
    if (!b) this.builders.set(type, (b = new PackBuilder(undefined)));
    b.add(id, type, data, rawLength, codec);
    this.stats.objectsAdded++;
    this.stats.bytesAdded += data.length;
    this.stats.rawBytesAdded += rawLength;
    if (b.isFull(this.opts.packSize)) {
      this.builders.delete(type);
      // At most maxPackWrites sealed packs wait for the storage; the caller waits for a slot, so
      // slow storage slows `add`, not memory.
      while (this.packWrites >= this.maxPackWrites) await new Promise<void>((r) => this.packWaiters.push(r));
      this.packWrites++;
      this.track(
        this.writePack(b).finally(() => {
          this.packWrites--;
          this.packWaiters.shift()?.();
        }),
      );
    }
  }

  /**
   * A buffer for a pack of file data. With compression threads, which name and seal the packs, a
   * shared one from the process's spares (compress-pool.ts): it never moves between the threads
   * (compress-worker.ts, PackJob), and goes back to the spares once the pack is written.
   */
  private packBuffer(): Buffer {
    const size = this.opts.packSize * 2;
    if (this.workers > 0) return Buffer.from(takeShared(size));
    return this.spareBuffers.pop() ?? Buffer.allocUnsafe(size);
  }

  private async writePack(b: PackBuilder): Promise<void> {
    try {
      await this.storePack(b);
    } finally {
      if (this.blobPacks.delete(b)) {
        const w = this.blobPackWaiters;
        this.blobPackWaiters = [];
        for (const r of w) r();
      }
    }
  }

  private async storePack(b: PackBuilder): Promise<void> {
    const { id, length, entries, buffer } = await this.finishPack(b);
    await this.index.addPack(id, length, entries);
    this.written.get(b)?.resolve();
    this.written.delete(b);
    // put() has finished with the bytes: the next pack reuses the buffer. Allocating one per pack
    // left tens of uncollected 32 MiB buffers (V8 sees little JS-heap pressure while zstd runs
    // on the main thread): a 1 GiB backup peaked at 400 MB of RSS.
    if (buffer.buffer instanceof SharedArrayBuffer) giveBackShared(buffer.buffer);
    else if (buffer.length >= this.opts.packSize * 2 && this.spareBuffers.length < this.maxPackWrites + 1) this.spareBuffers.push(buffer);
    this.stats.packsWritten++;
    for (const e of entries) this.pending.delete(toHex(e.id));
  }

  /**
   * Name and store a full pack. Write order (docs/format.md): the pack is durable before its index
   * entries exist. With compression threads, they hash (and, encrypted, seal) the pack: 1 GiB of
   * packs is about 0.35 s of SHA-256 and 0.25 s of AES-GCM that this thread, which reads, chunks
   * and hashes the files, no longer spends (docs/performance.md).
   */
  private async finishPack(b: PackBuilder): Promise<{ id: string; length: number; entries: PackEntry[]; buffer: Buffer }> {
    const { bytes, entries, buffer } = b.finish();
    if (this.workers === 0 || !ownsWholeBuffer(buffer) || this.beforeThreads(bytes.length, true)) {
      const hash = sha256(bytes);
      const id = toHex(hash);
      await this.backend.put(packName(id), bytes, { sha256: hash });
      return { id, length: bytes.length, entries, buffer };
    }
    // A shared buffer (a pack of file data) stays here while a thread works in it, and is sealed
    // where it is (sealBlobInPlace; its capacity, twice the pack size, has room for the tags), or
    // else into a shared buffer from the process's spares, given back once stored. Any other
    // buffer (a pack of trees) is moved to the thread (empty here until the result brings it
    // back), with a spare of this store to seal into.
    const length = bytes.length;
    const sealing = this.opts.sealing;
    const shared = buffer.buffer instanceof SharedArrayBuffer;
    const inPlace = sealing !== undefined && shared && buffer.length >= sealedSize(length);
    let into: ArrayBuffer | SharedArrayBuffer | undefined;
    if (sealing && !inPlace) {
      if (shared) into = takeShared(sealedSize(buffer.length));
      else {
        const spare = this.spareSealed.findIndex((s) => s.byteLength >= sealedSize(length));
        if (spare >= 0) into = this.spareSealed.splice(spare, 1)[0];
      }
    }
    const job = { buffer: buffer.buffer, length, keys: this.sealKeys, into, ...(inPlace ? { inPlace } : {}), ...(sealing?.wantsSha256 ? { hashSealed: true } : {}) };
    let done: PackDone;
    try {
      done = await finishPackOnWorkers(job, this.workers, this.ctx);
    } catch (e) {
      if (into instanceof SharedArrayBuffer) giveBackShared(into);
      throw e;
    }
    const back = done.buffer ? Buffer.from(done.buffer) : buffer;
    if (done.sealed && sealing) {
      const hash = done.sealed.sha256;
      const sealedIn = done.sealed.inPlace ? back.buffer : (done.sealed.buffer ?? into!);
      try {
        await sealing.putSealed(packName(done.id), Buffer.from(sealedIn, 0, done.sealed.length), hash ? { sha256: hash } : undefined);
      } finally {
        // Sealed in place, it is the pack's own buffer: that goes back once indexed (writePack).
        if (!done.sealed.inPlace) {
          if (sealedIn instanceof SharedArrayBuffer) giveBackShared(sealedIn);
          else if (this.spareSealed.length < this.maxPackWrites) this.spareSealed.push(sealedIn);
        }
      }
    } else {
      // The pack's name is the SHA-256 of these bytes (storage that signs it need not hash them).
      await this.backend.put(packName(done.id), back.subarray(0, length), { sha256: Buffer.from(done.id, 'hex') });
    }
    return { id: done.id, length, entries, buffer: back };
  }

  private track(p: Promise<void>): void {
    const t: Promise<void> = p.catch((e) => this.fail(e)).finally(() => this.tasks.delete(t));
    this.tasks.add(t);
  }

  /** The store has failed: the first failure is kept, and every caller waiting on an id hears of it. */
  private fail(e: unknown): void {
    this.failure ??= e;
    for (const j of this.jobs) {
      for (const w of j.hashing ?? []) w.reject(this.failure);
      if (j.hashing) j.hashing = [];
      j.drained?.reject(this.failure);
    }
    for (const w of this.written.values()) w.reject(this.failure);
    this.written.clear();
    this.wakeRing();
  }

  private release(n: number): void {
    this.inflight -= n;
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /**
   * After a failure or a stop: wait for the compression jobs and pack writes already under way
   * (so no write is cut off by the process ending), start nothing new, and never throw. Objects
   * still in open packs are dropped; packs already written stay, unreferenced until used.
   */
  async settle(): Promise<void> {
    while (this.jobs.length > 0 && this.failure === undefined) {
      await new Promise<void>((r) => this.ringWaiters.push(r));
    }
    while (this.tasks.size > 0) await Promise.all([...this.tasks]);
    // Open packs are never written now: whoever waits for them (durable) hears so, now or later.
    this.stopped = this.failure ?? new SnapError('SNAP_INTERNAL', 'the object store stopped before these objects were written');
    for (const w of this.written.values()) w.reject(this.stopped);
    this.written.clear();
    this.giveBackRing();
  }

  /** The ring back to the process's spare ones once no batch in it is out (compress-pool.ts). */
  private giveBackRing(): void {
    if (!this.ring || this.jobs.length > 0 || this.openJob) return;
    giveBackShared(this.ring);
    this.ring = undefined;
    this.ringBuf = Buffer.alloc(0);
  }

  /**
   * Resolves once every object accepted before the call is written durably and indexed, without
   * writing a pack of file data half full: the open one is written when it fills, or by flush.
   * The open pack of trees is written at once (trees are small: it may not fill before the
   * backup ends). A backup's files-cache entries wait for this while the backup goes on, instead
   * of a flush, which stops the walk until the storage has every pack. Rejects if the store fails
   * or is stopped (settle) first.
   */
  async durable(): Promise<void> {
    this.throwIfFailed();
    // The ring's objects are appended, in order, once its last job now has left it.
    const last = this.jobs[this.jobs.length - 1];
    if (last) await (last.drained ??= deferred()).promise;
    // Compressions off the ring (a codec compressed asynchronously) append when they finish;
    // pack writes under way are waited for with them. What is appended is then in an open pack,
    // in one being written (tasks: waited for), or written.
    const open = (): Promise<void>[] => {
      if (this.stopped !== undefined) throw this.stopped; // nothing is written after settle
      const waits: Promise<void>[] = [];
      for (const [type, b] of [...this.builders]) {
        if (b.count === 0) continue;
        waits.push(this.whenWritten(b));
        if (type !== 'blob') {
          this.builders.delete(type);
          this.track(this.writePack(b));
        }
      }
      return waits;
    };
    const first = open();
    await Promise.all([...this.tasks]);
    await Promise.all([...first, ...open()]);
    this.throwIfFailed();
  }

  /** Told when the open pack `b` is written and indexed (or the store fails). */
  private whenWritten(b: PackBuilder): Promise<void> {
    if (this.stopped !== undefined) return Promise.reject(this.stopped);
    let d = this.written.get(b);
    if (!d) this.written.set(b, (d = deferred()));
    return d.promise;
  }

  /** Wait for every accepted object to be written durably and indexed. */
  async flush(): Promise<void> {
    this.sendOpenJob();
    while (this.jobs.length > 0 && this.failure === undefined) {
      await new Promise<void>((r) => this.ringWaiters.push(r));
    }
    for (;;) {
      while (this.tasks.size > 0) await Promise.all([...this.tasks]);
      this.throwIfFailed();
      const open = [...this.builders.values()].filter((b) => b.count > 0);
      this.builders.clear();
      if (open.length === 0) break;
      for (const b of open) this.track(this.writePack(b));
    }
    this.throwIfFailed();
    this.giveBackRing();
  }

  /** Read and verify an object. A hash mismatch names the object and its pack. */
  async get(id: Buffer, expectType?: ObjectType): Promise<Buffer> {
    const hex = toHex(id);
    const loc = await this.index.lookup(id);
    if (!loc) throw new SnapError('SNAP_MISSING_OBJECT', `object ${hex.slice(0, 16)} is not in the repository index`);
    if (expectType && loc.type !== expectType) {
      throw new SnapError('SNAP_CORRUPT', `object ${hex.slice(0, 16)} is a ${loc.type}, expected a ${expectType}`);
    }
    return readObjectAt(this.backend, id, loc, this.ctx);
  }
}

/** Whether `b` is the whole of a buffer of its own: shared, or an ArrayBuffer that can be moved to a thread and back. */
function ownsWholeBuffer(b: Buffer): boolean {
  return (b.buffer instanceof ArrayBuffer || b.buffer instanceof SharedArrayBuffer) && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength;
}

/** Read one object at a known location and decode and verify it (store/object-codec.ts). */
export function readObjectAt(backend: Backend, id: Buffer, loc: ObjectLocation, ctx: CodecContext = PLAIN): Promise<Buffer> {
  return readObjectVia((pack, offset, length) => backend.getRange(packName(pack), offset, length), id, loc, ctx);
}

/** Stored bytes of a pack (`length` at `offset`), however they are fetched (a PackReader: store/pack-reader.ts). */
export type StoredRead = (pack: string, offset: number, length: number) => Promise<Buffer>;

/** readObjectAt with the stored bytes from `read`: the same claim check, decoding and verification. */
export async function readObjectVia(read: StoredRead, id: Buffer, loc: ObjectLocation, ctx: CodecContext = PLAIN): Promise<Buffer> {
  checkObjectClaim(id, loc); // before anything is read or allocated for it
  const stored = await read(loc.pack, loc.offset, loc.length);
  return decodeAndVerify(stored, { id, codec: loc.codec, rawLength: loc.rawLength, what: objectWhat(id, loc.pack) }, ctx);
}

/** Object i's id in a hashing job's result: after the (codec, length) pairs (compress-worker.ts). */
function hashedId(j: RingJob, i: number): Buffer {
  const r = j.result!;
  return Buffer.from(new Uint8Array(r.buffer, r.byteOffset + j.objs.length * 4 + i * ID_BYTES, ID_BYTES));
}
