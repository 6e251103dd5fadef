// A backend that passes every call to a real one and counts the reads, by blob name: tests prove
// with it what a command read (a fresh client's catch-up reads index files, not pack headers)
// without replacing the server. Nothing is changed or faked on the way.
import type { Backend, BackendCapabilities, BlobInfo } from '../../src/backend/backend.js';

export class CountingBackend implements Backend {
  /** Every read (get, getRange, getStream, getInto) as the blob name it read. */
  readonly reads: string[] = [];

  constructor(readonly inner: Backend) {}

  get location(): string {
    return this.inner.location;
  }
  get appendOnly(): boolean | undefined {
    return this.inner.appendOnly;
  }
  /** Reads of blobs whose names start with `prefix` (`data/` for packs). */
  readsOf(prefix: string): string[] {
    return this.reads.filter((n) => n.startsWith(prefix));
  }
  reset(): void {
    this.reads.length = 0;
  }

  put(name: string, data: Uint8Array): Promise<void> {
    return this.inner.put(name, data);
  }
  putIfAbsent(name: string, data: Uint8Array): Promise<boolean> {
    return this.inner.putIfAbsent(name, data);
  }
  putStream(name: string, source: AsyncIterable<Uint8Array>, size?: number): Promise<void> {
    return this.inner.putStream(name, source, size);
  }
  get(name: string): Promise<Buffer> {
    this.reads.push(name);
    return this.inner.get(name);
  }
  getRange(name: string, offset: number, length: number): Promise<Buffer> {
    this.reads.push(name);
    return this.inner.getRange(name, offset, length);
  }
  getStream(name: string, range?: { offset: number; length: number }): AsyncIterable<Buffer> {
    this.reads.push(name);
    return this.inner.getStream(name, range);
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
  delete(name: string): Promise<void> {
    return this.inner.delete(name);
  }
  capabilities(): Promise<BackendCapabilities> {
    return this.inner.capabilities();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
