// The index protocol between snap processes (docs/design.md, "Sharing the index"): over a Unix
// socket, frames of a 4-byte big-endian length and a CBOR array. A request is
// [id, op, ...args]; its answer is [id, 0, result] or [id, 1, SNAP_* code, message]. Requests on
// one connection may be answered out of order. Both ends are processes of the same user (the
// socket lives in the owner-only index folder), but a frame is still checked for size and shape.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Encoder } from 'cbor-x';
import { fsEncode, hasEscapedBytes } from '../core/bytes.js';
import { ErrorCodes, SnapError, errnoCode, type ErrorCode } from '../core/errors.js';

/** Bumped when a request or an answer changes meaning; a client refuses another version. */
export const PROTOCOL_VERSION = 1;
/** The socket's name in the index folder. */
export const SOCKET_NAME = 'snap-index.sock';
/** Larger frames are refused (a page is capped well below this). */
export const MAX_FRAME = 64 * 1024 * 1024;

const codec = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false, pack: false });

export function encodeFrame(value: unknown): Buffer {
  const body = codec.encode(value);
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  frame.set(body, 4);
  return frame;
}

/** Splits a byte stream into decoded frames. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  /** Feed bytes; returns the complete frames they finish. Throws on a frame too large or not CBOR. */
  push(chunk: Buffer): unknown[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: unknown[] = [];
    while (this.buf.length >= 4) {
      const n = this.buf.readUInt32BE(0);
      if (n > MAX_FRAME) throw new SnapError('SNAP_IO', `index protocol: a frame of ${n} bytes is too large`);
      if (this.buf.length < 4 + n) break;
      out.push(codec.decode(this.buf.subarray(4, 4 + n)));
      this.buf = this.buf.subarray(4 + n);
    }
    return out;
  }
}

export const bytes = (v: unknown): Buffer => {
  if (v instanceof Uint8Array) return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new SnapError('SNAP_IO', 'index protocol: expected a byte string');
};
export const bytesOrUndefined = (v: unknown): Buffer | undefined => (v === null || v === undefined ? undefined : bytes(v));

/**
 * Where the socket is bound and reached. A socket address holds at most 107 bytes: a longer path
 * (or one that is not UTF-8) is reached through the folder held open, as /proc/self/fd/N/name.
 */
export class SocketPath {
  private fd: number | undefined;
  private readonly direct: string | undefined;

  constructor(readonly dir: string) {
    const direct = path.join(dir, SOCKET_NAME);
    if (!hasEscapedBytes(direct) && Buffer.byteLength(direct) <= 100) this.direct = direct;
    else this.refresh();
  }

  get path(): string {
    return this.direct ?? `/proc/self/fd/${this.fd}/${SOCKET_NAME}`;
  }

  /** Hold the folder now at `dir` (after an index reset replaced it, the old one is gone). */
  refresh(): void {
    if (this.direct !== undefined) return;
    const fd = fs.openSync(fsEncode(this.dir), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    this.close();
    this.fd = fd;
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/** The connection to the owner went away (it exited, was killed, or handed the index over). */
export class Disconnected extends Error {
  constructor(why: string) {
    super(`the index owner went away (${why})`);
  }
}

export interface OwnerInfo {
  v: number;
  pid: number;
  host: string;
  command: string;
  since: string;
}

/** A client's connection to the owner. */
export class IndexConnection {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private closedWith: Disconnected | undefined;
  owner: OwnerInfo | undefined;

  private constructor(private readonly sock: net.Socket) {
    const reader = new FrameReader();
    sock.on('data', (chunk: Buffer) => {
      let frames: unknown[];
      try {
        frames = reader.push(chunk);
      } catch (e) {
        this.fail(`a bad frame: ${e instanceof Error ? e.message : String(e)}`);
        return;
      }
      for (const f of frames) this.answer(f);
    });
    sock.on('error', (e) => this.fail(e.message));
    sock.on('close', () => this.fail('connection closed'));
  }

  /** Connect and greet; undefined when no owner listens there (no socket, or a stale one). */
  static async connect(where: string): Promise<IndexConnection | undefined> {
    const sock = await new Promise<net.Socket | undefined>((resolve, reject) => {
      const s = net.createConnection(where);
      const onError = (e: Error): void => {
        s.destroy();
        const code = errnoCode(e);
        if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ENOTSOCK') resolve(undefined);
        else reject(new SnapError('SNAP_IO', `connecting to the index owner at ${where}: ${e.message}`, { cause: e }));
      };
      s.once('error', onError);
      s.once('connect', () => {
        s.off('error', onError);
        resolve(s);
      });
    });
    if (!sock) return undefined;
    const c = new IndexConnection(sock);
    try {
      const info = (await c.request('hello', PROTOCOL_VERSION)) as OwnerInfo;
      if (!info || info.v !== PROTOCOL_VERSION) {
        c.close();
        throw new SnapError('SNAP_LOCKED', `the repository index is held by a snap process that speaks another index protocol (pid ${info?.pid ?? '?'}); let it finish, or upgrade it`);
      }
      c.owner = info;
      return c;
    } catch (e) {
      c.close();
      if (e instanceof Disconnected) return undefined; // the owner was closing: treat as absent
      throw e;
    }
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  request(op: string, ...args: unknown[]): Promise<unknown> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      // Only a connection with requests under way keeps the process running (see answer()).
      if (this.waiting.size === 1) this.sock.ref();
      this.sock.write(encodeFrame([id, op, ...args]));
    });
  }

  close(): void {
    this.fail('closed by this process');
    this.sock.destroy();
  }

  private answer(f: unknown): void {
    if (!Array.isArray(f) || typeof f[0] !== 'number') return this.fail('a bad answer');
    const w = this.waiting.get(f[0]);
    if (!w) return;
    this.waiting.delete(f[0]);
    // Idle, the connection does not keep this process alive: a command that ends without closing
    // its repository still exits (its owner then sees the connection close).
    if (this.waiting.size === 0) this.sock.unref();
    if (f[1] === 0) w.resolve(f[2]);
    else w.reject(new SnapError((typeof f[2] === 'string' && f[2] in ErrorCodes ? f[2] : 'SNAP_IO') as ErrorCode, String(f[3])));
  }

  private fail(why: string): void {
    if (!this.closedWith) this.closedWith = new Disconnected(why);
    for (const w of this.waiting.values()) w.reject(this.closedWith);
    this.waiting.clear();
    this.sock.destroy();
  }
}
