// SFTP version 3 wire format (draft-ietf-secsh-filexfer-02, the version OpenSSH speaks): packet
// types, status codes, open flags, file attributes, and a small encoder and decoder. Every packet
// is `uint32 length, byte type, payload`; every request after INIT carries a uint32 id that its
// reply repeats. Strings are `uint32 length, bytes`: paths are bytes, not text.

export const FXP = {
  INIT: 1,
  VERSION: 2,
  OPEN: 3,
  CLOSE: 4,
  READ: 5,
  WRITE: 6,
  LSTAT: 7,
  FSTAT: 8,
  OPENDIR: 11,
  READDIR: 12,
  REMOVE: 13,
  MKDIR: 14,
  RMDIR: 15,
  STAT: 17,
  RENAME: 18,
  EXTENDED: 200,
  STATUS: 101,
  HANDLE: 102,
  DATA: 103,
  NAME: 104,
  ATTRS: 105,
  EXTENDED_REPLY: 201,
} as const;

/** SSH_FX_* status codes. */
export const FX = {
  OK: 0,
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const;

/** SSH_FXF_* open flags. */
export const FXF = { READ: 0x01, WRITE: 0x02, APPEND: 0x04, CREAT: 0x08, TRUNC: 0x10, EXCL: 0x20 } as const;

const ATTR_SIZE = 0x01;
const ATTR_UIDGID = 0x02;
const ATTR_PERMISSIONS = 0x04;
const ATTR_ACMODTIME = 0x08;
const ATTR_EXTENDED = 0x80000000;

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;

export interface Attrs {
  size?: number;
  uid?: number;
  gid?: number;
  permissions?: number;
  atime?: number;
  mtime?: number;
}

export interface NameEntry {
  filename: Buffer;
  attrs: Attrs;
}

/** A reply whose bytes do not parse: the peer is not speaking SFTP v3 (or a bug on either side). */
export class SftpProtocolError extends Error {}

/** Builds one packet: 4 length bytes, then the fields appended. */
export class Encoder {
  private parts: Buffer[] = [];
  private size = 0;

  private push(b: Buffer): this {
    this.parts.push(b);
    this.size += b.length;
    return this;
  }

  u8(n: number): this {
    return this.push(Buffer.of(n));
  }

  u32(n: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(n >>> 0);
    return this.push(b);
  }

  u64(n: number): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64BE(BigInt(n));
    return this.push(b);
  }

  string(s: Uint8Array | string): this {
    const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.from(s.buffer, s.byteOffset, s.byteLength);
    this.u32(b.length);
    return this.push(b);
  }

  attrs(a: Attrs): this {
    let flags = 0;
    if (a.size !== undefined) flags |= ATTR_SIZE;
    if (a.permissions !== undefined) flags |= ATTR_PERMISSIONS;
    this.u32(flags);
    if (a.size !== undefined) this.u64(a.size);
    if (a.permissions !== undefined) this.u32(a.permissions);
    return this;
  }

  /**
   * The packet, with `trailing` (a WRITE's data) counted in the length but kept as a separate
   * buffer, so large writes are not copied.
   */
  finish(trailingLength = 0): Buffer {
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32BE(this.size + trailingLength);
    return Buffer.concat([head, ...this.parts], 4 + this.size);
  }
}

/** Reads fields of one received packet. */
export class Decoder {
  constructor(
    private readonly buf: Buffer,
    private pos: number,
  ) {}

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new SftpProtocolError('a reply from the server is shorter than its fields');
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): number {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new SftpProtocolError('a size from the server is too large');
    return Number(v);
  }

  /** A view into the packet, not a copy. */
  string(): Buffer {
    const n = this.u32();
    this.need(n);
    const s = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  attrs(): Attrs {
    const flags = this.u32();
    const a: Attrs = {};
    if (flags & ATTR_SIZE) a.size = this.u64();
    if (flags & ATTR_UIDGID) {
      a.uid = this.u32();
      a.gid = this.u32();
    }
    if (flags & ATTR_PERMISSIONS) a.permissions = this.u32();
    if (flags & ATTR_ACMODTIME) {
      a.atime = this.u32();
      a.mtime = this.u32();
    }
    if (flags & ATTR_EXTENDED) {
      const n = this.u32();
      for (let i = 0; i < n; i++) {
        this.string();
        this.string();
      }
    }
    return a;
  }
}

export function isDir(a: Attrs): boolean {
  return a.permissions !== undefined && (a.permissions & S_IFMT) === S_IFDIR;
}

export function isRegular(a: Attrs): boolean {
  return a.permissions !== undefined && (a.permissions & S_IFMT) === S_IFREG;
}
