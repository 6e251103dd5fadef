// A backend that never deletes or replaces a blob: the append-only use of a repository
// (ransomware resistance). A process that can only add cannot destroy earlier backups, whatever
// it is told. Lock files are the exception: taking, refreshing and releasing a lock rewrites and
// deletes files under `locks/`, which hold no backup data (as restic's rest-server does in its
// append-only mode). A remote backend whose credentials cannot delete reports the same
// capability (docs/maintenance.md, "Append-only use"); this wrapper gives it to any backend.
import { SnapError } from '../core/errors.js';
import { type Backend, type BackendCapabilities, type BlobInfo, type PutHints, type StoredPieces, type ThreadReadSpec, storedAsIs } from './backend.js';

export const LOCKS_PREFIX = 'locks/';

export class AppendOnlyBackend implements Backend {
  readonly appendOnly = true;
  constructor(private readonly inner: Backend) {}

  get location(): string {
    return this.inner.location;
  }

  /**
   * Every other blob's name is the hash of its content (or `config`, written once), so a blob
   * that exists already holds these bytes: keep it instead of replacing it.
   */
  get wantsSha256(): boolean | undefined {
    return this.inner.wantsSha256;
  }

  async put(name: string, data: Uint8Array, hints?: PutHints): Promise<void> {
    if (name.startsWith(LOCKS_PREFIX)) return this.inner.put(name, data, hints);
    await this.inner.putIfAbsent(name, data, hints);
  }

  putIfAbsent(name: string, data: Uint8Array, hints?: PutHints): Promise<boolean> {
    return this.inner.putIfAbsent(name, data, hints);
  }

  /** As put: a blob that exists already is kept (its source is read to the end and dropped). */
  async putStream(name: string, source: AsyncIterable<Uint8Array>, size?: number): Promise<void> {
    if (name.startsWith(LOCKS_PREFIX) || !(await this.inner.exists(name))) return this.inner.putStream(name, source, size);
    for await (const _ of source);
  }

  getStream(name: string, range?: { offset: number; length: number }): AsyncIterable<Buffer> {
    return this.inner.getStream(name, range);
  }

  freeSpace(): Promise<number | undefined> {
    return this.inner.freeSpace?.() ?? Promise.resolve(undefined);
  }

  capabilities(): Promise<BackendCapabilities> {
    return this.inner.capabilities();
  }

  /** Reads are the inner backend's. */
  threadReads(): ThreadReadSpec | undefined {
    return this.inner.threadReads?.();
  }

  storedRange(name: string, offset: number, length: number): Promise<StoredPieces> {
    return this.inner.storedRange ? this.inner.storedRange(name, offset, length) : storedAsIs(this.inner, name, offset, length);
  }

  get(name: string): Promise<Buffer> {
    return this.inner.get(name);
  }

  getRange(name: string, offset: number, length: number): Promise<Buffer> {
    return this.inner.getRange(name, offset, length);
  }

  getInto(name: string, scratch: Buffer): Promise<Buffer> {
    return this.inner.getInto ? this.inner.getInto(name, scratch) : this.inner.get(name);
  }

  stat(name: string): Promise<BlobInfo | undefined> {
    return this.inner.stat(name);
  }

  exists(name: string): Promise<boolean> {
    return this.inner.exists(name);
  }

  list(prefix: string): AsyncIterable<BlobInfo> {
    return this.inner.list(prefix);
  }

  async delete(name: string): Promise<void> {
    if (name.startsWith(LOCKS_PREFIX)) return this.inner.delete(name);
    throw appendOnlyError(`deleting ${name}`);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

export function appendOnlyError(doing: string): SnapError {
  return new SnapError(
    'SNAP_APPEND_ONLY',
    `the repository is used append-only (--append-only, SNAP_APPEND_ONLY, or storage that cannot delete), so ${doing} is refused; run it where deleting is allowed`,
  );
}
