// Moving bytes through an open SFTP file handle with many requests in flight: one request of the
// server's largest size at a time would wait a round trip per 255 KiB, so writes and reads are
// issued `window` at a time and matched as their replies come back (measured in docs/performance.md,
// "SFTP backend": 8 to 16 requests in flight reach what loopback ssh carries).
import type { SftpSession } from './sftp-session.js';

/** Writes pieces at increasing offsets of one handle, at most `window` WRITE requests in flight. */
export class PipelinedWriter {
  private offset = 0;
  private active = 0;
  private failure: { e: unknown } | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly s: SftpSession,
    private readonly handle: Buffer,
    private readonly window: number,
  ) {}

  /** Bytes handed to write() so far. */
  get written(): number {
    return this.offset;
  }

  private settle(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async slot(): Promise<void> {
    while (this.active >= this.window && !this.failure) await new Promise<void>((r) => (this.wake = r));
    if (this.failure) throw this.failure.e;
  }

  /**
   * Queue `data` for writing. With `copy`, the bytes are copied first, so the caller may reuse
   * its buffer as soon as this returns; without, `data` must stay unchanged until flush().
   */
  async write(data: Uint8Array, copy: boolean): Promise<void> {
    const max = this.s.limits.maxWrite;
    for (let at = 0; at < data.length; ) {
      await this.slot();
      const len = Math.min(max, data.length - at);
      const piece = copy ? Buffer.from(data.subarray(at, at + len)) : data.subarray(at, at + len);
      this.active++;
      this.s.write(this.handle, this.offset, piece).then(
        () => {
          this.active--;
          this.settle();
        },
        (e: unknown) => {
          this.active--;
          this.failure ??= { e };
          this.settle();
        },
      );
      this.offset += len;
      at += len;
    }
  }

  /** Wait until every write has been answered; throws the first failure. */
  async flush(): Promise<void> {
    while (this.active > 0 && !this.failure) await new Promise<void>((r) => (this.wake = r));
    if (this.failure) throw this.failure.e;
  }
}

/**
 * Read `[pos, pos + length)` of an open file into `into`, with up to `window` READ requests in
 * flight; a short reply is followed by a request for the rest. Returns how many bytes there were
 * (fewer when the file ends first).
 */
export function readRange(s: SftpSession, h: Buffer, into: Buffer, pos: number, length: number, window: number): Promise<number> {
  const size = s.limits.maxRead;
  const rest: Array<[number, number]> = []; // pieces still to ask for, after short replies
  let next = 0;
  let active = 0;
  let end = length; // lowered when the file ends earlier
  let failed = false;
  return new Promise<number>((resolve, reject) => {
    const ask = (off: number, len: number): void => {
      active++;
      s.read(h, pos + off, len, into, off).then(
        (n) => {
          active--;
          if (n === 0) end = Math.min(end, off);
          else if (n < len) rest.push([off + n, len - n]);
          pump();
        },
        (e: unknown) => {
          if (!failed) reject(e);
          failed = true;
        },
      );
    };
    const pump = (): void => {
      while (!failed && active < window) {
        const piece = rest.pop();
        if (piece) {
          if (piece[0] < end) ask(piece[0], Math.min(piece[1], end - piece[0]));
          continue;
        }
        if (next >= end) break;
        const len = Math.min(size, end - next);
        ask(next, len);
        next += len;
      }
      if (!failed && active === 0 && rest.length === 0 && next >= end) resolve(end);
    };
    if (length === 0) resolve(0);
    else pump();
  });
}

/** For a server that does not report sizes: read until it says end of file. */
export async function readToEnd(s: SftpSession, h: Buffer): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let pos = 0; ; ) {
    const piece = Buffer.allocUnsafe(s.limits.maxRead);
    const n = await s.read(h, pos, piece.length, piece, 0);
    if (n === 0) return Buffer.concat(parts);
    parts.push(piece.subarray(0, n));
    pos += n;
  }
}
