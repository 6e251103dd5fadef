// The storage interface: immutable named blobs. Names are '/'-separated relative paths such as
// `config`, `snapshots/<id>` or `data/ab/<id>` (the rules are in names.ts). Nothing above this
// layer may assume a local filesystem: an S3-compatible backend implements the same interface,
// and every backend passes the same conformance suite (test/backend/conformance.ts).
//
// Errors every backend reports the same way:
// - a blob that does not exist: SNAP_MISSING_OBJECT (get, getRange, getInto, getStream);
//   stat says undefined, exists false, delete succeeds;
// - a range that reaches past the end of a blob: SNAP_CORRUPT naming the blob (a pack shorter
//   than its index says is damage, never a short read returned as if whole);
// - a name that breaks the rules of names.ts: SNAP_INTERNAL (names are made by snap, so a bad
//   one is a bug), before anything is touched.
export interface BlobInfo {
  name: string;
  size: number;
}

/** What a writer knows of a blob it puts. */
export interface PutHints {
  /**
   * The SHA-256 of exactly the bytes put. Used by backends that want it (Backend.wantsSha256),
   * ignored by the others; a wrong one fails the put (S3 checks it against what it received).
   */
  sha256?: Uint8Array;
}

/** What a backend can promise beyond the calls every backend has. */
export interface BackendCapabilities {
  /**
   * putIfAbsent is atomic: of any number of concurrent callers for one name exactly one returns
   * true and its bytes are the blob's. When false (an S3-compatible server that ignores
   * `If-None-Match`), putIfAbsent checks and then writes, and two racing callers can both
   * return true, the later write winning: a lock protocol must not rely on it alone.
   */
  atomicPutIfAbsent: boolean;
}

/**
 * How another thread reads blobs itself, with synchronous calls (Backend.threadReads; the reader is
 * backend/thread-reads.ts): plain data, which a worker thread is started with.
 */
export interface ThreadReadSpec {
  /** The local repository's folder. */
  root: string;
  /** An encrypted repository: its data key (every blob but `config` and `keys/*` is sealed). */
  keys?: { dataKey: Uint8Array };
}

/**
 * The stored bytes of part of a blob, as a local copy needs them for that part to be read from it
 * as from the storage (Backend.storedRange): pieces at their stored offsets, and the stored size.
 */
export interface StoredPieces {
  size: number;
  /** Each piece's bytes, or `length` bytes as they arrive (getStream: not held in memory whole). */
  pieces: ({ at: number; bytes: Buffer } | { at: number; length: number; stream: AsyncIterable<Buffer> })[];
}

/** StoredPieces of a blob stored as it is read: the range itself, streamed (a copy that short reads nothing past it). */
export function storedAsIs(b: Pick<Backend, 'getStream'>, name: string, offset: number, length: number): Promise<StoredPieces> {
  return Promise.resolve({ size: offset + length, pieces: [{ at: offset, length, stream: b.getStream(name, { offset, length }) }] });
}

export interface Backend {
  /** A human-readable location, for messages. */
  readonly location: string;
  /**
   * Capability: true when this backend cannot delete or replace blobs (except lock files under
   * `locks/`): append-only use. Commands that delete refuse up front with SNAP_APPEND_ONLY.
   */
  readonly appendOnly?: boolean;
  /**
   * Capability: put() and putIfAbsent() spare work given PutHints.sha256 (S3 signs the payload's
   * SHA-256): a writer that has it, or can compute it on another thread, passes it.
   */
  readonly wantsSha256?: boolean;
  /** Write a blob atomically and durably (readers see all of it or nothing); replaces an existing one. */
  put(name: string, data: Uint8Array, hints?: PutHints): Promise<void>;
  /** Like put, but only if no blob has that name; returns false (and writes nothing) if one exists. */
  putIfAbsent(name: string, data: Uint8Array, hints?: PutHints): Promise<boolean>;
  /**
   * Like put, with the bytes coming from `source` piece by piece, so a large blob never sits
   * whole in memory (the backend holds at most a bounded amount: a local file is written as the
   * pieces arrive; S3 uploads parts of a fixed size). Atomic like put: if `source` throws, or
   * yields a different number of bytes than `size` (when given), the call fails and the blob
   * is absent (or, if it existed, unchanged) for every reader. The pieces may be reused by the
   * source once the next one is asked for.
   */
  putStream(name: string, source: AsyncIterable<Uint8Array>, size?: number): Promise<void>;
  get(name: string): Promise<Buffer>;
  /**
   * `length` bytes from `offset`; all of them or an error (SNAP_CORRUPT if the blob is shorter).
   * Like get's, the buffer is the caller's: the backend keeps no reference to it (EncryptedBackend
   * opens sealed bytes in place in it).
   */
  getRange(name: string, offset: number, length: number): Promise<Buffer>;
  /**
   * A blob, or `length` bytes of it from `offset`, as pieces in order, holding a bounded amount
   * in memory whatever the size. The iteration throws rather than end short: a connection that
   * drops or a blob shorter than asked for is an error, never a silently truncated result. Each
   * piece is the caller's: the backend never reuses or writes to it once yielded, so a caller may
   * keep it, or free it once done with it (core/buffer-garbage.ts, freeBuffer: the restore's spool).
   */
  getStream(name: string, range?: { offset: number; length: number }): AsyncIterable<Buffer>;
  /**
   * Optional: like get, but into `scratch` when it is large enough (the result is then a view of
   * it, valid until the caller reuses it), else into a new buffer. Lets a reader of many large
   * blobs (check --read-data) reuse one buffer instead of leaving one of garbage per blob.
   */
  getInto?(name: string, scratch: Buffer): Promise<Buffer>;
  /** Size of a blob, or undefined if it does not exist. */
  stat(name: string): Promise<BlobInfo | undefined>;
  exists(name: string): Promise<boolean>;
  /**
   * Every blob whose name starts with `prefix` (a folder such as `snapshots/`, or '' for all),
   * in no particular order. Only complete blobs with valid names are listed: never a temporary
   * file or an upload in progress.
   */
  list(prefix: string): AsyncIterable<BlobInfo>;
  /**
   * Remove a blob; removing a missing blob is not an error. A store that refuses deletes (S3
   * credentials without s3:DeleteObject, as an append-only setup gives) fails with
   * SNAP_PERMISSION naming the blob.
   */
  delete(name: string): Promise<void>;
  /**
   * Optional: how a worker thread reads this backend's blobs itself (ThreadReadSpec), so that bytes
   * it works on need not pass through the main thread (a restore's writer threads read the objects
   * they write). Only where such reads are exactly this backend's reads: a local folder, and the
   * wrappers that read through to it. Undefined: reads are made here.
   */
  threadReads?(): ThreadReadSpec | undefined;
  /**
   * Optional: the stored bytes that a local copy of the blob needs for bytes offset..offset+length
   * to be read from it as they are read here (StoredPieces): a backend that transforms what it
   * stores (EncryptedBackend: the nonce and the sealed segments). Without it, the range as read.
   */
  storedRange?(name: string, offset: number, length: number): Promise<StoredPieces>;
  /**
   * Optional: the bytes this process may still write where the blobs are stored (a local file
   * system's free space; an SFTP server's, where it answers statvfs@openssh.com). Undefined where
   * that is not known or means nothing (object storage). Only where it is known does a repository
   * keep the reserve for a full disk (repo/reserve.ts).
   */
  freeSpace?(): Promise<number | undefined>;
  /** What this backend promises (see BackendCapabilities); may ask the server once. */
  capabilities(): Promise<BackendCapabilities>;
  close(): Promise<void>;
}

/**
 * A backend's sweep of temporary files (local and SFTP have one; gc finds it by name): below the
 * folder `prefix` (`data/`, `locks/`, ...; '' everywhere), or with `topOnly` in that folder alone.
 */
export type TempSweep = (prefix: string, olderThanMs?: number, topOnly?: boolean) => Promise<number>;

/** The temporary-file sweep of `inner`, bound to it, for a wrapper to pass through (undefined when it has none). */
export function tempSweepOf(inner: Backend): TempSweep | undefined {
  const sweep = (inner as { removeTempFiles?: TempSweep }).removeTempFiles;
  return typeof sweep === 'function' ? (prefix, olderThanMs, topOnly) => sweep.call(inner, prefix, olderThanMs, topOnly) : undefined;
}
