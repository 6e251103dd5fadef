// The encryption of a format 2 repository (docs/format.md, "Format 2: encrypted repositories"):
// a backend wrapper that seals every blob but `config` and `keys/*` on the way out and opens it on
// the way in, so every reader above (objects, pack tables, trees, snapshot records, locks, the
// operation log, the index rebuild) gets plaintext that was authenticated first, through the one
// path it already uses.
//
// A blob is sealed as a STREAM (Hoang, Reyhanitabar, Rogaway, Vizár 2015; as age and Tink do):
//   file nonce (32 random bytes) | segment 0 | segment 1 | ... | segment n-1
// each segment AES-256-GCM of 64 KiB of plaintext (the last 0 to 64 KiB) followed by its 16-byte
// tag, under a per-blob key HMAC-SHA256(data key, "snap-blob-key" | file nonce), with nonce
// = 0x00 * 5 | segment number (48-bit big-endian) | 0x01 for the last segment, 0x00 for others,
// and associated data = the blob's name. So a changed byte fails its segment; a dropped, repeated
// or reordered segment fails (the number is in the nonce); a truncated blob fails (its new last
// segment was not sealed as last); a blob moved to another name fails (the name is authenticated).
// Ranges are read segment-wise: reading an object of a pack reads and opens only the segments
// that hold it.
import { SnapError, isSnapError } from '../core/errors.js';
import { GCM_NONCE_BYTES, GCM_TAG_BYTES, gcmOpen, gcmSeal, hmacSha256, random } from '../core/crypto.js';
import { freeBuffer } from '../core/buffer-garbage.js';
import { type Backend, type BackendCapabilities, type BlobInfo, type PutHints, type StoredPieces, type TempSweep, type ThreadReadSpec, storedAsIs, tempSweepOf } from './backend.js';
import { checkRange } from './checks.js';

export const FILE_NONCE_BYTES = 32;
export const SEGMENT_BYTES = 64 * 1024;
const SEALED_SEGMENT = SEGMENT_BYTES + GCM_TAG_BYTES;
const KEY_LABEL = Buffer.from('snap-blob-key');

/**
 * Blobs stored as they are: the config (read before any key is known), the key files, and the
 * reserve for a full disk (random bytes that mean nothing: repo/reserve.ts).
 */
export function isPlaintextName(name: string): boolean {
  return name === 'config' || name.startsWith('keys/') || name === 'reserve';
}

/** Stored size of a blob of `plain` bytes. */
export function sealedSize(plain: number): number {
  const n = Math.max(1, Math.ceil(plain / SEGMENT_BYTES));
  return FILE_NONCE_BYTES + plain + n * GCM_TAG_BYTES;
}

/** Plaintext size of a stored blob of `sealed` bytes, or undefined when no sealed blob has that size. */
export function plainSize(sealed: number): number | undefined {
  if (sealed < FILE_NONCE_BYTES + GCM_TAG_BYTES) return undefined;
  const n = Math.ceil((sealed - FILE_NONCE_BYTES) / SEALED_SEGMENT);
  const p = sealed - FILE_NONCE_BYTES - n * GCM_TAG_BYTES;
  if (p < 0 || (n > 1 && p <= (n - 1) * SEGMENT_BYTES)) return undefined;
  return p;
}

/** For messages: `pack 1a2b3c4d5e6f`, `snapshot 1a2b3c4d`, or the name. */
export function describeBlob(name: string): string {
  let m = /^data\/[0-9a-f]{2}\/([0-9a-f]{64})$/.exec(name);
  if (m) return `pack ${m[1]!.slice(0, 12)}`;
  m = /^snapshots\/([0-9a-f]{64})$/.exec(name);
  if (m) return `snapshot ${m[1]!.slice(0, 8)}`;
  return name;
}

function segmentNonce(i: number, last: boolean): Buffer {
  const n = Buffer.alloc(GCM_NONCE_BYTES);
  n.writeUIntBE(i, 5, 6);
  n[11] = last ? 1 : 0;
  return n;
}

export function authFailure(name: string, detail: string): SnapError {
  return new SnapError('SNAP_CORRUPT', `${describeBlob(name)} failed authentication (${detail}): it was changed, truncated or moved after snap wrote it`);
}

/** A sealed blob's own key, from the data key and the blob's file nonce (its first FILE_NONCE_BYTES). */
export function blobKey(keys: BlobKeys, nonce: Uint8Array): Buffer {
  return hmacSha256(keys.dataKey, KEY_LABEL, nonce);
}

/** Segments a sealed blob of `sealed` bytes has. */
export function segmentCount(sealed: number): number {
  return Math.max(1, Math.ceil((sealed - FILE_NONCE_BYTES) / SEALED_SEGMENT));
}

/** Where segments first..last of a sealed blob of `sealed` bytes are stored: bytes start to end. */
export function segmentSpan(sealed: number, first: number, last: number): { start: number; end: number } {
  return { start: FILE_NONCE_BYTES + first * SEALED_SEGMENT, end: Math.min(sealed, FILE_NONCE_BYTES + (last + 1) * SEALED_SEGMENT) };
}

/**
 * Open segments first..last (of `count`) of the blob `name` sealed under `key`, read as `stored`
 * (the bytes segmentSpan names, which begin at `start` of the blob): their plaintext concatenated.
 * Opened in place: segment i's plaintext goes where the stored bytes begin, (i - first) * 64 KiB
 * from the start, which is before its own sealed bytes end, once they are read (as openBlob with
 * `into`), so `stored` must be the caller's to overwrite; a buffer per read for the plaintext was
 * a third of the memory a restore allocated, and of its garbage collections. One segment comes
 * back in a buffer of its own.
 */
export function openSegments(key: Buffer, name: string, first: number, last: number, count: number, stored: Buffer, start: number): Buffer {
  const ad = Buffer.from(name);
  let filled = 0;
  for (let i = first; i <= last; i++) {
    const at = (i - first) * SEALED_SEGMENT;
    const seg = stored.subarray(at, Math.min(stored.length, at + SEALED_SEGMENT));
    const opened = gcmOpen(key, segmentNonce(i, i === count - 1), seg, ad);
    if (!opened) throw authFailure(name, `segment ${i} of ${count}, stored bytes ${start + at} to ${start + at + seg.length}`);
    if (first === last) return opened; // the caller's: freeBuffer when it drops it (a segment cache's eviction)
    filled += opened.copy(stored, filled);
    freeBuffer(opened);
  }
  return stored.subarray(0, filled);
}

/** A read of `wanted` stored bytes at `start` that returned `got`. */
export function shortRead(name: string, start: number, wanted: number, got: number): SnapError {
  return new SnapError('SNAP_CORRUPT', `${describeBlob(name)}: a read of ${wanted} bytes at ${start} returned ${got}`);
}

/** A read of bytes offset..offset+length of a blob of `plain` bytes (opened) that reaches past its end. */
export function beyondEnd(name: string, offset: number, length: number, plain: number): SnapError {
  return new SnapError('SNAP_CORRUPT', `${describeBlob(name)} is shorter than expected: bytes ${offset} to ${offset + length} asked for, it holds ${plain}`);
}

/** The keys a sealed blob needs: the repository's data key. */
export interface BlobKeys {
  readonly dataKey: Buffer;
}

/** What a writer needs to seal blobs itself, on another thread: EncryptedBackend.sealing(). */
export interface BlobSealing {
  readonly keys: BlobKeys;
  /** The storage below wants the SHA-256 of the sealed bytes with them (Backend.wantsSha256). */
  readonly wantsSha256: boolean;
  /** Store bytes sealBlob sealed under `name` (with these keys), as they are; `hints` are of those bytes. */
  putSealed(name: string, sealed: Uint8Array, hints?: PutHints): Promise<void>;
}

/** Seal a whole blob; into `into` (from its start) when it has room for the sealed bytes. */
export function sealBlob(keys: BlobKeys, name: string, plain: Uint8Array, into?: Buffer): Buffer {
  const size = sealedSize(plain.length);
  const out = into && into.length >= size ? into.subarray(0, size) : Buffer.allocUnsafe(size);
  const nonce = random(FILE_NONCE_BYTES);
  nonce.copy(out, 0);
  const key = hmacSha256(keys.dataKey, KEY_LABEL, nonce);
  const ad = Buffer.from(name);
  const n = Math.max(1, Math.ceil(plain.length / SEGMENT_BYTES));
  let at = FILE_NONCE_BYTES;
  for (let i = 0; i < n; i++) {
    const seg = plain.subarray(i * SEGMENT_BYTES, Math.min(plain.length, (i + 1) * SEGMENT_BYTES));
    at += gcmSeal(key, segmentNonce(i, i === n - 1), seg, ad, out, at).length;
  }
  return out;
}

/**
 * Seal the blob in the first `length` bytes of `buf` where it is: the sealed bytes (the same as
 * sealBlob's) replace it from the start of `buf`, which must have room for them (sealedSize).
 * Segment i's sealed bytes go after the nonce and i tags, past where its plaintext was, so the
 * segments are sealed from the last to the first (each one's plaintext read before anything is
 * written over it) and the nonce is written last, over the first segment's old bytes. A backup's
 * packs are sealed this way: no second buffer of the pack's size (docs/performance.md).
 */
export function sealBlobInPlace(keys: BlobKeys, name: string, buf: Buffer, length: number): Buffer {
  const size = sealedSize(length);
  if (buf.length < size) throw new RangeError(`sealBlobInPlace: ${buf.length} bytes cannot hold ${size} sealed bytes`);
  const nonce = random(FILE_NONCE_BYTES);
  const key = hmacSha256(keys.dataKey, KEY_LABEL, nonce);
  const ad = Buffer.from(name);
  const n = Math.max(1, Math.ceil(length / SEGMENT_BYTES));
  for (let i = n - 1; i >= 0; i--) {
    const seg = buf.subarray(i * SEGMENT_BYTES, Math.min(length, (i + 1) * SEGMENT_BYTES));
    // gcmSeal reads the whole segment (its cipher's update returns a buffer of its own) before it
    // writes anything over it.
    gcmSeal(key, segmentNonce(i, i === n - 1), seg, ad, buf, FILE_NONCE_BYTES + i * SEALED_SEGMENT);
  }
  nonce.copy(buf, 0);
  return buf.subarray(0, size);
}

/**
 * Open a whole sealed blob. `tolerant`: instead of failing, damaged segments come back as zeros
 * and are counted (check and repair salvage the objects in the intact ones; every object in a
 * zeroed segment then fails its own verification). `into`: a buffer to open it into, when it is
 * large enough (the result is then a view of it).
 */
export function openBlob(keys: BlobKeys, name: string, sealed: Buffer, tolerant = false, into?: Buffer): { bytes: Buffer; damaged: number } {
  const size = plainSize(sealed.length);
  if (size === undefined && !tolerant) throw authFailure(name, `${sealed.length} bytes is no sealed size`);
  if (sealed.length < FILE_NONCE_BYTES) return { bytes: Buffer.alloc(0), damaged: 1 };
  const n = Math.max(1, Math.ceil((sealed.length - FILE_NONCE_BYTES) / SEALED_SEGMENT));
  const plain = Math.max(0, size ?? sealed.length - FILE_NONCE_BYTES - n * GCM_TAG_BYTES);
  // Into the caller's buffer when it is large enough, which may be `sealed` itself (check's
  // threads open packs in place): segment i's plaintext lands at i * 64 KiB, before its sealed
  // bytes (after the nonce and i tags), and only once they have been read.
  const out = into && into.length >= plain ? into.subarray(0, plain) : Buffer.alloc(plain);
  const key = blobKey(keys, sealed.subarray(0, FILE_NONCE_BYTES));
  const ad = Buffer.from(name);
  let damaged = size === undefined ? 1 : 0;
  for (let i = 0; i < n; i++) {
    const start = FILE_NONCE_BYTES + i * SEALED_SEGMENT;
    const seg = sealed.subarray(start, Math.min(sealed.length, start + SEALED_SEGMENT));
    const opened = gcmOpen(key, segmentNonce(i, i === n - 1), seg, ad);
    if (!opened) {
      if (!tolerant) throw authFailure(name, `segment ${i} of ${n}, stored bytes ${start} to ${start + seg.length}`);
      damaged++;
      out.fill(0, i * SEGMENT_BYTES, Math.min(plain, (i + 1) * SEGMENT_BYTES));
      continue;
    }
    opened.copy(out, i * SEGMENT_BYTES);
    freeBuffer(opened);
  }
  return { bytes: out, damaged };
}

interface Sealed {
  key: Buffer;
  /** The blob's file nonce (its first FILE_NONCE_BYTES stored bytes). */
  nonce: Buffer;
  sealed: number;
  plain: number;
}

/** Entries of the per-blob key cache (ranges of one pack are read many times during a restore). */
const CACHE_ENTRIES = 256;
/**
 * Opened segments kept (64 KiB each): small objects read one by one (trees while walking, small
 * files while restoring) mostly share segments, which are then opened once, not once per object.
 */
const SEGMENT_CACHE_ENTRIES = 32;

export class EncryptedBackend implements Backend {
  readonly removeTempFiles?: TempSweep;
  private readonly cache = new Map<string, Sealed>();
  /** Opened segments by blob key (hex) and number: a blob written anew has another key, so never a stale hit. */
  private readonly segments = new Map<string, Buffer>();

  constructor(
    readonly inner: Backend,
    private readonly keys: BlobKeys,
  ) {
    this.removeTempFiles = tempSweepOf(inner);
  }

  get location(): string {
    return this.inner.location;
  }
  get appendOnly(): boolean | undefined {
    return this.inner.appendOnly;
  }

  async put(name: string, data: Uint8Array): Promise<void> {
    this.cache.delete(name);
    await this.inner.put(name, isPlaintextName(name) ? data : sealBlob(this.keys, name, data));
  }

  /**
   * How a writer that seals blobs on another thread (a backup's packs: store/object-store.ts)
   * stores them: the keys to seal with (sealBlob), and the put of bytes sealed under `name`.
   */
  sealing(): BlobSealing {
    return {
      keys: this.keys,
      wantsSha256: this.inner.wantsSha256 === true,
      putSealed: async (name, sealed, hints) => {
        if (isPlaintextName(name)) throw new Error(`${name} is stored in the clear, never sealed`);
        this.cache.delete(name);
        await this.inner.put(name, sealed, hints);
      },
    };
  }

  async putIfAbsent(name: string, data: Uint8Array): Promise<boolean> {
    this.cache.delete(name);
    return this.inner.putIfAbsent(name, isPlaintextName(name) ? data : sealBlob(this.keys, name, data));
  }

  async putStream(name: string, source: AsyncIterable<Uint8Array>, size?: number): Promise<void> {
    this.cache.delete(name);
    if (isPlaintextName(name)) return this.inner.putStream(name, source, size);
    const keys = this.keys;
    async function* sealed(): AsyncIterable<Uint8Array> {
      const nonce = random(FILE_NONCE_BYTES);
      yield nonce;
      const key = hmacSha256(keys.dataKey, KEY_LABEL, nonce);
      const ad = Buffer.from(name);
      // One segment is held back until the next byte (or the end) shows whether it is the last.
      let pending = Buffer.alloc(0);
      let i = 0;
      for await (const piece of source) {
        pending = pending.length === 0 ? Buffer.from(piece) : Buffer.concat([pending, piece]);
        while (pending.length > SEGMENT_BYTES) {
          yield gcmSeal(key, segmentNonce(i++, false), pending.subarray(0, SEGMENT_BYTES), ad);
          pending = pending.subarray(SEGMENT_BYTES);
        }
      }
      yield gcmSeal(key, segmentNonce(i, true), pending, ad);
    }
    return this.inner.putStream(name, sealed(), size === undefined ? undefined : sealedSize(size));
  }

  async get(name: string): Promise<Buffer> {
    const stored = await this.inner.get(name);
    return isPlaintextName(name) ? stored : openBlob(this.keys, name, stored).bytes;
  }

  /** The whole blob, its damaged segments as zeros (see openBlob). */
  async getTolerant(name: string): Promise<{ bytes: Buffer; damaged: number }> {
    const stored = await this.inner.get(name);
    return isPlaintextName(name) ? { bytes: stored, damaged: 0 } : openBlob(this.keys, name, stored, true);
  }

  /**
   * A blob's stored bytes (into `scratch` when the storage fills a given buffer and it is large
   * enough) and the keys that open them with openBlob, for a reader that opens it on another
   * thread (check --read-data). A blob stored in the clear comes without keys.
   */
  async getSealed(name: string, scratch?: Buffer): Promise<{ stored: Buffer; keys?: BlobKeys }> {
    const stored = scratch && this.inner.getInto ? await this.inner.getInto(name, scratch) : await this.inner.get(name);
    return isPlaintextName(name) ? { stored } : { stored, keys: this.keys };
  }

  private async sealedInfo(name: string): Promise<Sealed> {
    const hit = this.cache.get(name);
    if (hit) return hit;
    const st = await this.inner.stat(name);
    if (!st) throw new SnapError('SNAP_MISSING_OBJECT', `${describeBlob(name)} is missing`);
    const plain = plainSize(st.size);
    if (plain === undefined) throw authFailure(name, `${st.size} bytes is no sealed size`);
    const nonce = await this.inner.getRange(name, 0, FILE_NONCE_BYTES);
    if (nonce.length !== FILE_NONCE_BYTES) throw shortRead(name, 0, FILE_NONCE_BYTES, nonce.length);
    const info = { key: blobKey(this.keys, nonce), nonce, sealed: st.size, plain };
    if (this.cache.size >= CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(name, info);
    return info;
  }

  async getRange(name: string, offset: number, length: number): Promise<Buffer> {
    if (isPlaintextName(name)) return this.inner.getRange(name, offset, length);
    // A read of several segments from the first, of a blob not read before (a restore fetching a
    // pack whole): its nonce comes in the same request as the segments, not in one of its own.
    if (!this.cache.has(name) && offset < SEGMENT_BYTES && offset + length > SEGMENT_BYTES) return this.readFromStart(name, offset, length);
    try {
      return await this.readRange(name, offset, length, await this.sealedInfo(name));
    } catch (e) {
      // A blob deleted and written again under the same name (a pack gc or repair wrote anew) has
      // a new nonce: read its header again before calling it damage.
      if (!this.cache.has(name) || !isSnapError(e, 'SNAP_CORRUPT')) throw e;
      this.cache.delete(name);
      return this.readRange(name, offset, length, await this.sealedInfo(name));
    }
  }

  private async readFromStart(name: string, offset: number, length: number): Promise<Buffer> {
    const { info, stored } = await this.fetchFromStart(name, offset, length);
    const last = Math.floor((offset + length - 1) / SEGMENT_BYTES);
    const out = await this.readSegments(name, info, 0, last, segmentCount(info.sealed), stored.subarray(FILE_NONCE_BYTES));
    return out.subarray(offset, offset + length);
  }

  /** The stored bytes of a blob not read before, from its start to the end of the segment holding offset + length - 1 (its nonce in the same request); its info kept. */
  private async fetchFromStart(name: string, offset: number, length: number): Promise<{ info: Sealed; stored: Buffer }> {
    const { sealed, plain, end } = await this.spanFromStart(name, offset, length);
    const stored = await this.inner.getRange(name, 0, end);
    if (stored.length !== end) throw shortRead(name, 0, end, stored.length);
    const nonce = Buffer.from(stored.subarray(0, FILE_NONCE_BYTES));
    const info = { key: blobKey(this.keys, nonce), nonce, sealed, plain };
    if (this.cache.size >= CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(name, info);
    return { info, stored };
  }

  /** The blob's sizes, and where the stored bytes from its start through plaintext offset+length end. */
  private async spanFromStart(name: string, offset: number, length: number): Promise<{ sealed: number; plain: number; end: number }> {
    const st = await this.inner.stat(name);
    if (!st) throw new SnapError('SNAP_MISSING_OBJECT', `${describeBlob(name)} is missing`);
    const plain = plainSize(st.size);
    if (plain === undefined) throw authFailure(name, `${st.size} bytes is no sealed size`);
    if (offset + length > plain) throw beyondEnd(name, offset, length, plain);
    return { sealed: st.size, plain, end: segmentSpan(st.size, 0, Math.floor((offset + length - 1) / SEGMENT_BYTES)).end };
  }

  /**
   * What a local copy of the blob needs for its bytes offset..offset+length to be read from it as
   * from here (Backend.storedRange): its nonce and the sealed segments that hold them, each at its
   * stored place, and its stored size; fetched as getRange fetches them, opened by the reader of
   * the copy (backend/thread-reads.ts, or this class over a local folder).
   */
  async storedRange(name: string, offset: number, length: number): Promise<StoredPieces> {
    checkRange(name, offset, length);
    if (isPlaintextName(name) || length === 0) return storedAsIs(this, name, offset, length);
    if (!this.cache.has(name) && offset < SEGMENT_BYTES) {
      // From the start, the nonce with it (one request for the bytes, after the size's).
      const { sealed, end } = await this.spanFromStart(name, offset, length);
      return { size: sealed, pieces: [{ at: 0, length: end, stream: this.inner.getStream(name, { offset: 0, length: end }) }] };
    }
    const s = await this.sealedInfo(name);
    if (offset + length > s.plain) throw beyondEnd(name, offset, length, s.plain);
    const { start, end } = segmentSpan(s.sealed, Math.floor(offset / SEGMENT_BYTES), Math.floor((offset + length - 1) / SEGMENT_BYTES));
    return { size: s.sealed, pieces: [{ at: 0, bytes: s.nonce }, { at: start, length: end - start, stream: this.inner.getStream(name, { offset: start, length: end - start }) }] };
  }

  private async readRange(name: string, offset: number, length: number, s: Sealed): Promise<Buffer> {
    if (offset < 0 || length < 0 || offset + length > s.plain) {
      throw beyondEnd(name, offset, length, s.plain);
    }
    if (length === 0) return Buffer.alloc(0);
    const first = Math.floor(offset / SEGMENT_BYTES);
    const last = Math.floor((offset + length - 1) / SEGMENT_BYTES);
    const count = segmentCount(s.sealed);
    if (first === last) {
      const k = `${s.key.toString('hex')}:${first}`;
      let seg = this.segments.get(k);
      if (seg) {
        this.segments.delete(k); // most recently used goes last
        this.segments.set(k, seg);
      } else {
        seg = await this.readSegments(name, s, first, first, count);
        if (this.segments.size >= SEGMENT_CACHE_ENTRIES) {
          // Only the cache holds its segments (what a read returns is a copy): freed now.
          const [oldest, dropped] = this.segments.entries().next().value!;
          this.segments.delete(oldest);
          freeBuffer(dropped);
        }
        this.segments.set(k, seg);
      }
      const from = offset - first * SEGMENT_BYTES;
      // A copy: callers may keep or reuse what they get.
      return Buffer.from(seg.subarray(from, from + length));
    }
    const out = await this.readSegments(name, s, first, last, count);
    const from = offset - first * SEGMENT_BYTES;
    return out.subarray(from, from + length);
  }

  /** Read and open segments first..last of a blob, their plaintext concatenated (`read`: those segments as stored, read already). */
  private async readSegments(name: string, s: Sealed, first: number, last: number, count: number, read?: Buffer): Promise<Buffer> {
    const { start, end } = segmentSpan(s.sealed, first, last);
    const stored = read ?? (await this.inner.getRange(name, start, end - start));
    if (stored.length !== end - start) throw shortRead(name, start, end - start, stored.length);
    return openSegments(s.key, name, first, last, count, stored, start);
  }

  async *getStream(name: string, range?: { offset: number; length: number }): AsyncIterable<Buffer> {
    if (isPlaintextName(name)) {
      yield* this.inner.getStream(name, range);
      return;
    }
    const s = await this.sealedInfo(name);
    const offset = range?.offset ?? 0;
    const length = range?.length ?? s.plain - offset;
    const step = 16 * SEGMENT_BYTES;
    for (let at = offset; at < offset + length; ) {
      const n = Math.min(step - (at % SEGMENT_BYTES), offset + length - at);
      yield await this.readRange(name, at, n, s);
      at += n;
    }
  }

  async stat(name: string): Promise<BlobInfo | undefined> {
    const st = await this.inner.stat(name);
    if (!st || isPlaintextName(name)) return st;
    return { name: st.name, size: plainSize(st.size) ?? 0 };
  }

  exists(name: string): Promise<boolean> {
    return this.inner.exists(name);
  }

  async *list(prefix: string): AsyncIterable<BlobInfo> {
    for await (const b of this.inner.list(prefix)) yield isPlaintextName(b.name) ? b : { name: b.name, size: plainSize(b.size) ?? 0 };
  }

  async delete(name: string): Promise<void> {
    this.cache.delete(name);
    await this.inner.delete(name);
  }

  freeSpace(): Promise<number | undefined> {
    return this.inner.freeSpace?.() ?? Promise.resolve(undefined);
  }

  capabilities(): Promise<BackendCapabilities> {
    return this.inner.capabilities();
  }

  /** The inner backend's, with the data key: the thread opens what it reads (backend/thread-reads.ts). */
  threadReads(): ThreadReadSpec | undefined {
    const inner = this.inner.threadReads?.();
    return inner && !inner.keys ? { ...inner, keys: this.keys } : undefined;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * A whole blob for salvage (check --read-data, repair): from an encrypted repository, its damaged
 * segments as zeros and counted; from a plain one, as stored.
 */
export async function getForSalvage(b: Backend, name: string): Promise<{ bytes: Buffer; damaged: number; sealed: boolean }> {
  return b instanceof EncryptedBackend ? { ...(await b.getTolerant(name)), sealed: true } : { bytes: await b.get(name), damaged: 0, sealed: false };
}

/** Copy a blob as stored, byte for byte, to another name (repair's quarantine): sealed blobs stay sealed as they were. */
export async function copyAsStored(b: Backend, from: string, to: string, plain: Buffer): Promise<void> {
  if (b instanceof EncryptedBackend) await b.inner.put(to, await b.inner.get(from));
  else await b.put(to, plain);
}
