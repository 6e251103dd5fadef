// Reads of a local repository's blobs on a worker thread, with synchronous calls (Backend.threadReads
// says how): a restore's writer threads read the objects they write themselves, so those bytes never
// pass through the main thread (ops/restore/writer.ts). The reads are the local backend's, with its
// checks (a regular file, opened never through a symlink and never blocking; a range past the end
// is SNAP_CORRUPT, a missing blob SNAP_MISSING_OBJECT), and on an encrypted repository its segments
// are opened as EncryptedBackend opens them (encrypted.ts openSegments: only the segments that
// hold the range, each authenticated). What a read returns is a view of the reader's own buffer,
// valid until its next read: a thread reads, unpacks and writes one object after another without
// a buffer per object.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fsPath } from '../core/bytes.js';
import { freeBuffer } from '../core/buffer-garbage.js';
import { errnoCode } from '../core/errors.js';
import { readFully } from '../core/read-fully.js';
import type { ThreadReadSpec } from './backend.js';
import { checkRange, shortBlobError } from './checks.js';
import { type BlobKeys, FILE_NONCE_BYTES, SEGMENT_BYTES, authFailure, beyondEnd, blobKey, isPlaintextName, openSegments, plainSize, segmentCount, segmentSpan, shortRead } from './encrypted.js';
import { MAX_WHOLE_READ, READ_FLAGS, kindOf, notFoundOr, notRegularError, tooLargeError } from './local.js';
import { checkBlobName } from './names.js';

/** Blobs kept open (a restore reads a few packs at a time, in bursts). */
const OPEN_BLOBS = 16;
/** Opened segments kept: small objects read one after the other mostly share a segment. */
const KEPT_SEGMENTS = 4;

interface OpenBlob {
  fd: number;
  size: number;
  /** Sealed blobs: the blob's key, its plaintext size and its segments. */
  key?: Buffer;
  plain: number;
  count: number;
}

export class ThreadBlobReader {
  private readonly keys: BlobKeys | undefined;
  private readonly blobs = new Map<string, OpenBlob>();
  /** Opened single segments by `name:number`, least recently used first. */
  private readonly segments = new Map<string, Buffer>();
  private scratch = Buffer.alloc(0);

  constructor(private readonly spec: ThreadReadSpec) {
    this.keys = spec.keys ? { dataKey: Buffer.from(spec.keys.dataKey) } : undefined;
  }

  /** `length` bytes at `offset` of the blob `name` (its plaintext on an encrypted repository): a view valid until the next read. */
  read(name: string, offset: number, length: number): Buffer {
    checkRange(name, offset, length);
    try {
      const b = this.open(name);
      return b.key ? this.readSealed(name, b, offset, length) : this.readPlain(name, b.fd, b.size, offset, length);
    } catch (e) {
      // A damaged or changed blob is opened again on its next read.
      this.forget(name);
      throw notFoundOr(e, name, this.spec.root);
    }
  }

  /**
   * A blob's whole file as stored (sealed, on an encrypted repository: not opened), in `into` when it
   * fits there (else in a new buffer), with the local backend's checks and errors (getInto): `check
   * --read-data`'s threads read the packs they verify. Fewer bytes than the file's size only when it
   * shrank meanwhile (the verification then finds it damaged). Nothing is kept open.
   */
  readStored(name: string, into: Buffer): Buffer {
    checkBlobName(name);
    let fd: number | undefined;
    try {
      const f = this.openRegular(name);
      fd = f.fd;
      if (f.size > MAX_WHOLE_READ) throw tooLargeError(name, this.spec.root, f.size);
      const buf = f.size <= into.length ? into.subarray(0, f.size) : Buffer.allocUnsafeSlow(f.size);
      return buf.subarray(0, readFully(fd, buf, 0));
    } catch (e) {
      throw notFoundOr(e, name, this.spec.root);
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  /** Open a blob's file as the local backend does: never through a symlink, never blocking, a regular file only (closed again otherwise). */
  private openRegular(name: string): { fd: number; size: number } {
    let fd: number;
    try {
      fd = fs.openSync(fsPath(path.join(this.spec.root, name)), READ_FLAGS);
    } catch (e) {
      if (errnoCode(e) === 'ELOOP') throw notRegularError(name, this.spec.root, 'a symbolic link');
      throw e;
    }
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw notRegularError(name, this.spec.root, kindOf(st));
      return { fd, size: st.size };
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** Close every blob kept open. */
  close(): void {
    for (const name of [...this.blobs.keys()]) this.forget(name);
  }

  private open(name: string): OpenBlob {
    const kept = this.blobs.get(name);
    if (kept) {
      this.blobs.delete(name); // most recently used goes last
      this.blobs.set(name, kept);
      return kept;
    }
    checkBlobName(name);
    this.closeRemoved();
    const { fd, size } = this.openRegular(name);
    try {
      const b: OpenBlob = { fd, size, plain: size, count: 0 };
      if (this.keys && !isPlaintextName(name)) {
        const plain = plainSize(size);
        if (plain === undefined) throw authFailure(name, `${size} bytes is no sealed size`);
        b.key = blobKey(this.keys, this.readPlain(name, fd, size, 0, FILE_NONCE_BYTES));
        b.plain = plain;
        b.count = segmentCount(size);
      }
      if (this.blobs.size >= OPEN_BLOBS) this.forget(this.blobs.keys().next().value!);
      this.blobs.set(name, b);
      return b;
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /**
   * Close blobs removed since they were opened (a restore's spool removes its copies as it goes):
   * an open descriptor would keep a removed copy's disk space taken until the end.
   */
  private closeRemoved(): void {
    for (const [name, b] of [...this.blobs]) if (fs.fstatSync(b.fd).nlink === 0) this.forget(name);
  }

  private forget(name: string): void {
    const b = this.blobs.get(name);
    if (b) {
      this.blobs.delete(name);
      fs.closeSync(b.fd);
    }
    for (const k of [...this.segments.keys()]) if (k.startsWith(`${name}:`)) this.segments.delete(k);
  }

  private buffer(length: number): Buffer {
    if (this.scratch.length < length) this.scratch = Buffer.allocUnsafe(Math.max(length, 2 * this.scratch.length, 1 << 20));
    return this.scratch.subarray(0, length);
  }

  /** `length` bytes at `offset` of the blob's file, as stored (in the reader's buffer). */
  private readPlain(name: string, fd: number, size: number, offset: number, length: number): Buffer {
    const into = this.buffer(length);
    if (readFully(fd, into, offset) < length) throw shortBlobError(name, this.spec.root, offset, length, size);
    return into;
  }

  private readSealed(name: string, b: OpenBlob, offset: number, length: number): Buffer {
    if (offset + length > b.plain) throw beyondEnd(name, offset, length, b.plain);
    if (length === 0) return Buffer.alloc(0);
    const first = Math.floor(offset / SEGMENT_BYTES);
    const last = Math.floor((offset + length - 1) / SEGMENT_BYTES);
    const from = offset - first * SEGMENT_BYTES;
    const k = first === last ? `${name}:${first}` : '';
    let opened = k ? this.segments.get(k) : undefined;
    if (opened) {
      this.segments.delete(k);
      this.segments.set(k, opened);
      return opened.subarray(from, from + length);
    }
    const { start, end } = segmentSpan(b.size, first, last);
    const stored = this.buffer(end - start);
    const got = readFully(b.fd, stored, start);
    if (got !== end - start) throw shortRead(name, start, end - start, got);
    opened = openSegments(b.key!, name, first, last, b.count, stored, start);
    if (k) {
      // One segment comes back in a buffer of its own (openSegments): kept for the next reads.
      if (this.segments.size >= KEPT_SEGMENTS) {
        // Freed now: what an earlier read returned of it is past its validity (the next read).
        const [oldest, dropped] = this.segments.entries().next().value!;
        this.segments.delete(oldest);
        freeBuffer(dropped);
      }
      this.segments.set(k, opened);
    }
    return opened.subarray(from, from + length);
  }
}

