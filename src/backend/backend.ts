// The storage interface: immutable named blobs. Names are '/'-separated relative paths such as
// `config`, `snapshots/<id>` or `data/ab/<id>`. Nothing above this layer may assume a local
// filesystem: an S3-compatible backend implements the same interface.
export interface BlobInfo {
  name: string;
  size: number;
}

export interface Backend {
  /** A human-readable location, for messages. */
  readonly location: string;
  /**
   * Capability: true when this backend cannot delete or replace blobs (except lock files under
   * `locks/`): append-only use. Commands that delete refuse up front with SNAP_APPEND_ONLY.
   */
  readonly appendOnly?: boolean;
  /** Write a blob atomically and durably (readers see all of it or nothing); replaces an existing one. */
  put(name: string, data: Uint8Array): Promise<void>;
  /** Like put, but only if no blob has that name; returns false (and writes nothing) if one exists. */
  putIfAbsent(name: string, data: Uint8Array): Promise<boolean>;
  get(name: string): Promise<Buffer>;
  getRange(name: string, offset: number, length: number): Promise<Buffer>;
  /**
   * Optional: like get, but into `scratch` when it is large enough (the result is then a view of
   * it, valid until the caller reuses it), else into a new buffer. Lets a reader of many large
   * blobs (check --read-data) reuse one buffer instead of leaving one of garbage per blob.
   */
  getInto?(name: string, scratch: Buffer): Promise<Buffer>;
  /** Size of a blob, or undefined if it does not exist. */
  stat(name: string): Promise<BlobInfo | undefined>;
  exists(name: string): Promise<boolean>;
  /** Every blob whose name starts with `prefix` (a folder such as `snapshots/`), in no particular order. */
  list(prefix: string): AsyncIterable<BlobInfo>;
  /** Remove a blob; removing a missing blob is not an error. */
  delete(name: string): Promise<void>;
  close(): Promise<void>;
}
