// A small zip reader for `snap export --verify`. It reads the central directory from the end
// (zip64 end record and locator when present, zip64 extra fields), streaming it record by record,
// and for each record checks the local header and streams the data (stored or raw deflate),
// checking CRC-32 and size. Memory stays constant: nothing is held but the current record.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { createInflateRaw } from 'node:zlib';
import { errnoCode } from '../../../core/errors.js';
import type { ArchiveEntryType } from './archive.js';
import { ByteReader, corrupt, type ReadEntry } from './read-entry.js';
import { crc32 } from './zip.js';

const MAX16 = 0xffff;
const MAX32 = 0xffffffff;
const EOCD = 0x06054b50;
const EOCD64 = 0x06064b50;
const LOCATOR64 = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const UNIX_HOST = 3;
const S_IFMT: Record<number, ArchiveEntryType> = {
  0o100000: 'file', 0o040000: 'dir', 0o120000: 'symlink', 0o010000: 'fifo', 0o020000: 'chardev', 0o060000: 'blockdev',
};
/** Symlink targets are read into memory; Linux caps them at 4 KiB. */
const MAX_LINK = 64 * 1024;
/** Read and inflate in 1 MiB steps, not 64/16 KiB: fewer round trips to the thread pool (see verify.ts). */
const READ_BUFFER = 1 << 20;

interface Directory {
  count: number;
  offset: number;
  size: number;
}

export async function* readZip(file: string, what = 'the zip archive'): AsyncGenerator<ReadEntry> {
  const fh = await fsp.open(file, 'r');
  let central: ByteReader | undefined;
  try {
    const dir = await findDirectory(fh, what);
    central = new ByteReader(dir.size > 0 ? fs.createReadStream(file, { start: dir.offset, end: dir.offset + dir.size - 1 }) : empty(), `${what}'s central directory`);
    for (let i = 0; i < dir.count; i++) {
      const e = await record(fh, file, central, what);
      if (e.type === 'symlink') {
        if (e.size > MAX_LINK) throw corrupt(`${what}: symlink ${e.path.toString()} has a ${e.size}-byte target`);
        const parts: Buffer[] = [];
        for await (const piece of e.data()) parts.push(Buffer.from(piece));
        e.linkTarget = Buffer.concat(parts);
      }
      yield e;
    }
    if (central.position !== dir.size) throw corrupt(`${what}: the central directory holds more than its ${dir.count} records`);
  } finally {
    await central?.close();
    await fh.close();
  }
}

/** The end of central directory record (searched backwards past a comment), then zip64's if needed. */
async function findDirectory(fh: fsp.FileHandle, what: string): Promise<Directory> {
  const { size } = await fh.stat();
  const tailLen = Math.min(size, 22 + MAX16);
  const tail = Buffer.alloc(tailLen);
  await fh.read(tail, 0, tailLen, size - tailLen);
  let at = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD && i + 22 + tail.readUInt16LE(i + 20) === tailLen) {
      at = i;
      break;
    }
  }
  if (at < 0) throw corrupt(`${what} has no end of central directory record (not a zip, or truncated)`);
  const dir: Directory = { count: tail.readUInt16LE(at + 10), size: tail.readUInt32LE(at + 12), offset: tail.readUInt32LE(at + 16) };
  const locAt = size - tailLen + at - 20;
  const loc = Buffer.alloc(20);
  if (locAt >= 0) await fh.read(loc, 0, 20, locAt);
  if (locAt >= 0 && loc.readUInt32LE(0) === LOCATOR64) {
    const recAt = Number(loc.readBigUInt64LE(8));
    const rec = Buffer.alloc(56);
    const { bytesRead } = await fh.read(rec, 0, 56, recAt);
    if (bytesRead !== 56 || rec.readUInt32LE(0) !== EOCD64) throw corrupt(`${what}: the zip64 locator points at no zip64 end record`);
    return { count: Number(rec.readBigUInt64LE(32)), size: Number(rec.readBigUInt64LE(40)), offset: Number(rec.readBigUInt64LE(48)) };
  }
  if (dir.count === MAX16 || dir.size === MAX32 || dir.offset === MAX32) throw corrupt(`${what}: zip64 values without a zip64 end record`);
  if (dir.offset + dir.size > size) throw corrupt(`${what}: the central directory lies past the end of the file`);
  return dir;
}

/** One central directory record, checked against its local header. */
async function record(fh: fsp.FileHandle, file: string, central: ByteReader, what: string): Promise<ReadEntry> {
  const c = await central.exact(46);
  if (c.readUInt32LE(0) !== CENTRAL) throw corrupt(`${what}: a central directory record at byte ${central.position - 46} has no signature`);
  const madeBy = c.readUInt16LE(4);
  const flags = c.readUInt16LE(8);
  const method = c.readUInt16LE(10);
  const crc = c.readUInt32LE(16);
  let csize = c.readUInt32LE(20);
  let usize = c.readUInt32LE(24);
  const nameLen = c.readUInt16LE(28);
  const extraLen = c.readUInt16LE(30);
  const commentLen = c.readUInt16LE(32);
  const attrs = c.readUInt32LE(38);
  let offset = c.readUInt32LE(42);
  const name = Buffer.from(await central.exact(nameLen));
  const extra = Buffer.from(await central.exact(extraLen));
  await central.skip(commentLen);
  const shown = name.toString();

  const e: Partial<ReadEntry> & { path: Buffer } = { path: name };
  for (let p = 0; p + 4 <= extra.length; ) {
    const id = extra.readUInt16LE(p);
    const len = extra.readUInt16LE(p + 2);
    const body = extra.subarray(p + 4, p + 4 + len);
    if (body.length !== len) throw corrupt(`${what}: ${shown}: a truncated extra field`);
    if (id === 0x0001) {
      // zip64: exactly the fields that are 0xFFFFFFFF in the record, in this order.
      let q = 0;
      const next = (): number => {
        if (q + 8 > body.length) throw corrupt(`${what}: ${shown}: a short zip64 extra field`);
        q += 8;
        return Number(body.readBigUInt64LE(q - 8));
      };
      if (usize === MAX32) usize = next();
      if (csize === MAX32) csize = next();
      if (offset === MAX32) offset = next();
    } else if (id === 0x5455 && len >= 5 && (body[0]! & 1) !== 0) {
      e.mtime = { sec: body.readInt32LE(1), nsec: 0 };
    } else if (id === 0x7875 && len >= 1 && body[0] === 1) {
      const ids = uidGid(body);
      if (ids) [e.uid, e.gid] = ids;
    }
    p += 4 + len;
  }

  const mode = madeBy >> 8 === UNIX_HOST ? attrs >>> 16 : 0;
  const type = mode !== 0 ? S_IFMT[mode & 0o170000] : name[name.length - 1] === 0x2f ? 'dir' : 'file';
  if (!type) throw corrupt(`${what}: ${shown}: unknown file type ${(mode & 0o170000).toString(8)}`);
  if (method !== 0 && method !== 8) throw corrupt(`${what}: ${shown}: unsupported compression method ${method}`);
  if (flags & 0x0001) throw corrupt(`${what}: ${shown}: encrypted`);

  const local = Buffer.alloc(30);
  const { bytesRead } = await fh.read(local, 0, 30, offset);
  if (bytesRead !== 30 || local.readUInt32LE(0) !== LOCAL) throw corrupt(`${what}: ${shown}: no local header at byte ${offset}`);
  const localName = Buffer.alloc(local.readUInt16LE(26));
  await fh.read(localName, 0, localName.length, offset + 30);
  if (!localName.equals(name)) throw corrupt(`${what}: ${shown}: the local header names ${localName.toString()}`);
  if (local.readUInt16LE(8) !== method) throw corrupt(`${what}: ${shown}: local and central headers disagree on the compression method`);
  const start = offset + 30 + localName.length + local.readUInt16LE(28);

  e.path = type === 'dir' && name.length > 1 && name[name.length - 1] === 0x2f ? name.subarray(0, name.length - 1) : name;
  let used = false;
  return {
    ...e,
    type,
    mode: mode & 0o7777,
    size: usize,
    data: () => {
      if (used) throw new Error('zip entry data read twice');
      used = true;
      return contents(file, start, csize, usize, crc, method, `${what}: ${shown}`);
    },
  };
}

async function* empty(): AsyncGenerator<Buffer> {}

function uidGid(body: Buffer): [number, number] | undefined {
  const uidLen = body[1];
  if (uidLen === undefined || uidLen > 6 || body.length < 3 + uidLen) return undefined;
  const gidLen = body[2 + uidLen];
  if (gidLen === undefined || gidLen > 6 || body.length < 3 + uidLen + gidLen) return undefined;
  const le = (off: number, len: number): number => (len === 0 ? 0 : body.readUIntLE(off, len));
  return [le(2, uidLen), le(3 + uidLen, gidLen)];
}

/** The stored bytes, inflated if deflated; CRC-32 and size are checked at the end. */
async function* contents(file: string, start: number, csize: number, usize: number, crc: number, method: number, what: string): AsyncGenerator<Buffer> {
  if (csize === 0 && usize === 0) return;
  const raw = fs.createReadStream(file, { start, end: start + csize - 1, highWaterMark: READ_BUFFER });
  let stream: NodeJS.ReadableStream = raw;
  if (method === 8) {
    const inflate = createInflateRaw({ chunkSize: READ_BUFFER });
    raw.on('error', (e) => inflate.destroy(e));
    stream = raw.pipe(inflate);
  }
  let n = 0;
  let sum = 0;
  try {
    for await (const piece of stream as AsyncIterable<Buffer>) {
      n += piece.length;
      if (n > usize) throw corrupt(`${what}: holds more than its size ${usize}`);
      sum = crc32(piece, sum);
      yield piece;
    }
  } catch (e) {
    // zlib's errors carry Z_* codes (Z_DATA_ERROR, Z_BUF_ERROR): damaged deflate data.
    if (errnoCode(e)?.startsWith('Z_')) throw corrupt(`${what}: its compressed data is damaged (${(e as Error).message})`);
    throw e;
  } finally {
    raw.destroy();
    if (stream !== raw) (stream as unknown as { destroy(): void }).destroy();
  }
  if (n !== usize) throw corrupt(`${what}: holds ${n} bytes, not its size ${usize}`);
  if (sum !== crc) throw corrupt(`${what}: CRC-32 mismatch (the data is damaged)`);
}
