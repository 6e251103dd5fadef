// Archive writers for `snap export`: the shared entry model, the byte sink that honours
// back-pressure, and the factory. The format details live in tar.ts and zip.ts; both only
// `import type` from here, so there is no runtime import cycle.
import { once } from 'node:events';
import type { Transform } from 'node:stream';
import { finished } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { TarWriter } from './tar.js';
import { ZipWriter } from './zip.js';

export type ArchiveEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'fifo' | 'chardev' | 'blockdev';

export interface ArchiveEntry {
  /** Relative path bytes, '/'-separated, no leading slash; may be invalid UTF-8 and longer than 255 bytes. */
  path: Buffer;
  type: ArchiveEntryType;
  /** Permission bits including setuid/setgid/sticky (07777); file-type bits are ignored. */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  mtime: { sec: number; nsec: number };
  /** File size in bytes (0 for non-files); may exceed 4 GiB and 2^33. */
  size: number;
  /** Symlink target bytes, or for 'hardlink' the archive path of the first entry. */
  linkTarget?: Buffer;
  devMajor?: number;
  devMinor?: number;
  /**
   * File contents, exactly `size` bytes in total; a yielded chunk must not be modified afterwards
   * (the output stream may still hold it). Zip has no hard links, so the zip writer stores a
   * 'hardlink' entry as a full copy and needs `size` and `data` for it too (tar ignores them).
   */
  data?: () => AsyncIterable<Uint8Array>;
}

/**
 * Call add() one entry at a time, then finish(). After a rejection the archive is incomplete:
 * destroy the output and remove the file.
 */
export interface ArchiveWriter {
  /** Writes one entry; resolves once its bytes were accepted by the output (waits for 'drain'). */
  add(entry: ArchiveEntry): Promise<void>;
  /** Writes the trailer, ends the output (unless kept open) and waits until it is flushed. */
  finish(): Promise<void>;
}

export type ArchiveFormat = 'tar' | 'tar.gz' | 'zip';

/** Where the writers put their bytes; `position` is the count written so far (zip needs offsets). */
export interface ByteSink {
  readonly position: number;
  write(chunk: Uint8Array): Promise<void>;
  end(): Promise<void>;
}

export function formatFromName(name: string): ArchiveFormat | undefined {
  const lower = name.toLowerCase();
  if (lower.endsWith('.tar.gz') || lower.endsWith('.tgz')) return 'tar.gz';
  if (lower.endsWith('.tar')) return 'tar';
  if (lower.endsWith('.zip')) return 'zip';
  return undefined;
}

/**
 * `gzipLevel` (default 6) is the deflate level of both tar.gz and zip members. `keepOpen`: the
 * output is one the caller owns past the archive (a process's stdout, which Node never ends):
 * finishing waits until it took every byte instead of ending it.
 */
export function createArchiveWriter(
  format: ArchiveFormat,
  out: NodeJS.WritableStream,
  opts: { gzipLevel?: number; keepOpen?: boolean } = {},
): ArchiveWriter {
  const level = opts.gzipLevel ?? 6;
  const keepOpen = opts.keepOpen === true;
  switch (format) {
    case 'tar':
      return new TarWriter(new StreamSink(out, keepOpen));
    case 'tar.gz':
      // node:zlib measured 1.3-3x faster than fflate's Gzip and runs on the thread pool (see
      // docs/design.md, "Export formats"), leaving the main thread free to read the snapshot.
      return new TarWriter(new StreamSink(out, keepOpen, createGzip({ level })));
    case 'zip':
      return new ZipWriter(new StreamSink(out, keepOpen), level);
  }
}

/**
 * Writes into `out`, or into `transform` (gzip) piped into `out`. Any error on either stream fails
 * the pending and all later writes instead of leaving them waiting for a 'drain' that never comes.
 */
class StreamSink implements ByteSink {
  position = 0;
  private error: Error | undefined;
  /** Rejecters of the waits in progress. Not one long-lived promise raced on every wait: each
   *  Promise.race would leave a reaction on it, a leak proportional to the data size. */
  private readonly waiters = new Set<(e: Error) => void>();
  private readonly head: NodeJS.WritableStream;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly keepOpen: boolean,
    private readonly transform?: Transform,
  ) {
    const onError = (e: Error): void => {
      this.error ??= e;
      for (const reject of this.waiters) reject(e);
      this.waiters.clear();
    };
    out.on('error', onError);
    transform?.on('error', onError).pipe(out);
    this.head = transform ?? out;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.error) throw this.error;
    if (chunk.length === 0) return;
    this.position += chunk.length;
    if (!this.head.write(chunk)) await this.guard(once(this.head, 'drain'));
  }

  async end(): Promise<void> {
    if (this.error) throw this.error;
    // An output kept open (stdout: Node never ends it, pipe() skips it too): only wait until it took the bytes.
    const stdio = this.keepOpen;
    if (this.transform) {
      this.transform.end();
      await this.guard(finished(this.transform));
    } else if (!stdio) {
      this.out.end();
    }
    if (!stdio) await this.guard(finished(this.out));
    else if ((this.out as { writableNeedDrain?: boolean }).writableNeedDrain) await this.guard(once(this.out, 'drain'));
  }

  /** Waits for `p`, or fails as soon as either stream errors (then `p` may never settle). */
  private async guard(p: Promise<unknown>): Promise<void> {
    if (this.error) throw this.error;
    let onError: (e: Error) => void = () => {};
    const failed = new Promise<never>((_, reject) => this.waiters.add((onError = reject)));
    try {
      await Promise.race([p, failed]);
    } finally {
      this.waiters.delete(onError);
    }
  }
}
