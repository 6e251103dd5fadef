// Stored objects read by a worker thread itself, from a local repository's packs
// (Backend.threadReads, backend/thread-reads.ts): the form in which ops' threads (a restore's
// writers) get those reads, by an object's place in a pack, without reaching the storage layer.
import type { ThreadReadSpec } from '../backend/backend.js';
import { ThreadBlobReader } from '../backend/thread-reads.js';
import { packName } from './pack.js';

/** How a thread reads packs itself (Repository.threadReads): plain data, sent to the thread as it is. */
export type PackReadSpec = ThreadReadSpec;

/** Where an object is stored: `length` bytes at `offset` of the pack `pack` (its id, hex). */
export interface StoredAt {
  pack: string;
  offset: number;
  length: number;
}

export class ThreadPackReader {
  private readonly blobs: ThreadBlobReader;

  constructor(spec: PackReadSpec) {
    this.blobs = new ThreadBlobReader(spec);
  }

  /** An object's stored bytes (opened, on an encrypted repository): a view valid until the next read. */
  read(at: StoredAt): Buffer {
    return this.blobs.read(packName(at.pack), at.offset, at.length);
  }

  close(): void {
    this.blobs.close();
  }
}
