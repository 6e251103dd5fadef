// A backend that notes what a command changed, for the operation log (docs/automation.md): the
// snapshot records it wrote and deleted and the bytes of the blobs it wrote and deleted. It
// watches the calls themselves, so it counts this process's changes only, never a concurrent
// command's, and needs nothing from the commands. Lock files and log records are not counted.
import { type Backend, type BackendCapabilities, type BlobInfo, type PutHints, type StoredPieces, type TempSweep, type ThreadReadSpec, storedAsIs, tempSweepOf } from './backend.js';

export interface Changes {
  snapshotsAdded: string[];
  snapshotsRemoved: string[];
  bytesAdded: number;
  bytesFreed: number;
  /** Whether any blob (other than lock files) was written or deleted. */
  changed: boolean;
}

export function noChanges(): Changes {
  return { snapshotsAdded: [], snapshotsRemoved: [], bytesAdded: 0, bytesFreed: 0, changed: false };
}

const SNAPSHOT = /^snapshots\/([0-9a-f]{64})$/;
// The reserve for a full disk (repo/reserve.ts) is room kept, not data: never counted either.
const counted = (name: string): boolean => !name.startsWith('locks/') && !name.startsWith('log/') && !name.startsWith('quarantine/log/') && name !== 'reserve';

export class RecordingBackend implements Backend {
  private readonly seen = new Set<string>();
  /**
   * The local backend's sweep of temporary files (gc finds it by name, ops/maintain/gc.ts): passed through
   * when the inner backend has it. The files it removes were never blobs, so nothing is counted.
   */
  readonly removeTempFiles?: TempSweep;

  constructor(
    private readonly inner: Backend,
    readonly changes: Changes,
  ) {
    this.removeTempFiles = tempSweepOf(inner);
  }

  get location(): string {
    return this.inner.location;
  }
  get appendOnly(): boolean | undefined {
    return this.inner.appendOnly;
  }

  private added(name: string, size: number): void {
    if (!counted(name)) return;
    this.changes.changed = true;
    this.changes.bytesAdded += size;
    const m = SNAPSHOT.exec(name);
    if (m && !this.seen.has(`+${m[1]!}`)) {
      this.seen.add(`+${m[1]!}`);
      this.changes.snapshotsAdded.push(m[1]!);
    }
  }

  get wantsSha256(): boolean | undefined {
    return this.inner.wantsSha256;
  }

  async put(name: string, data: Uint8Array, hints?: PutHints): Promise<void> {
    await this.inner.put(name, data, hints);
    this.added(name, data.length);
  }

  async putIfAbsent(name: string, data: Uint8Array, hints?: PutHints): Promise<boolean> {
    const done = await this.inner.putIfAbsent(name, data, hints);
    if (done) this.added(name, data.length);
    return done;
  }

  async putStream(name: string, source: AsyncIterable<Uint8Array>, size?: number): Promise<void> {
    let n = 0;
    async function* count(): AsyncIterable<Uint8Array> {
      for await (const piece of source) {
        n += piece.length;
        yield piece;
      }
    }
    await this.inner.putStream(name, count(), size);
    this.added(name, n);
  }

  get(name: string): Promise<Buffer> {
    return this.inner.get(name);
  }
  getRange(name: string, offset: number, length: number): Promise<Buffer> {
    return this.inner.getRange(name, offset, length);
  }
  getStream(name: string, range?: { offset: number; length: number }): AsyncIterable<Buffer> {
    return this.inner.getStream(name, range);
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
    if (!counted(name)) return this.inner.delete(name);
    // One stat per delete (deletes are few: forget's records, gc's packs) rather than remembering
    // the size of every blob listed, which for a large repository is memory without bound.
    const size = (await this.inner.stat(name))?.size;
    await this.inner.delete(name);
    if (size === undefined) return; // it was not there: nothing freed
    this.changes.changed = true;
    this.changes.bytesFreed += size;
    const m = SNAPSHOT.exec(name);
    if (m && !this.seen.has(`-${m[1]!}`)) {
      this.seen.add(`-${m[1]!}`);
      this.changes.snapshotsRemoved.push(m[1]!);
    }
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
  close(): Promise<void> {
    return this.inner.close();
  }
}
