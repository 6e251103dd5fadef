// Streaming zip writer with zip64. fflate's Zip cannot write zip64 (it only reads it), so the
// container is written here and only deflate is delegated to node:zlib (thread pool, streaming).
// File data is streamed with a data descriptor: CRC and compressed size are known only afterwards.
import { isUtf8 } from 'node:buffer';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import type { ArchiveEntry, ArchiveEntryType, ArchiveWriter, ByteSink } from './archive.js';

const MAX32 = 0xffffffff;
const MAX16 = 0xffff;
const STORE = 0;
const DEFLATE = 8;
const FLAG_DESCRIPTOR = 0x0008;
const FLAG_UTF8 = 0x0800;
const MADE_BY_UNIX = (3 << 8) | 63; // host Unix, spec 6.3: readers then honour the mode bits
const S_IFMT: Record<ArchiveEntryType, number> = {
  file: 0o100000, hardlink: 0o100000, dir: 0o040000, symlink: 0o120000,
  fifo: 0o010000, chardev: 0o020000, blockdev: 0o060000,
};

interface Member { crc: number; csize: number; usize: number }

export class ZipWriter implements ArchiveWriter {
  // Central directory records, encoded as entries finish: memory grows with the entry count
  // (~70 bytes + name each), never with the data size.
  private readonly central: Buffer[] = [];

  constructor(private readonly sink: ByteSink, private readonly level: number) {}

  async add(e: ArchiveEntry): Promise<void> {
    const name = e.type === 'dir' && e.path.at(-1) !== 0x2f ? Buffer.concat([e.path, Buffer.from('/')]) : e.path;
    if (name.length > MAX16) throw new Error(`${name.toString()}: name longer than zip allows (65535 bytes)`);
    const offset = this.sink.position;
    const hasData = e.type === 'file' || e.type === 'hardlink'; // zip has no hard links: store a copy
    const streamed = hasData && e.size > 0;
    // Size is known in advance, compressed size is not: announce zip64 in the local header when
    // even deflate's worst-case expansion (well under 1/8) could reach 4 GiB.
    const zip64Local = streamed && e.size + e.size / 8 + 1024 >= MAX32;
    const flags = (isUtf8(name) ? FLAG_UTF8 : 0) | (streamed ? FLAG_DESCRIPTOR : 0);
    const method = streamed ? DEFLATE : STORE;
    const [dosTime, dosDate] = dosDateTime(e.mtime.sec);
    const extras = [timeExtra(e.mtime.sec), ownerExtra(e.uid, e.gid)];

    let m: Member = { crc: 0, csize: 0, usize: 0 };
    let content: Buffer | undefined;
    if (e.type === 'symlink') {
      // Info-ZIP convention: S_IFLNK in the mode bits, the target as the (stored) content.
      content = e.linkTarget ?? Buffer.alloc(0);
      m = { crc: crc32(content, 0), csize: content.length, usize: content.length };
    } else if (hasData && !streamed) {
      await drainEmpty(e, name);
    }

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(zip64Local ? 45 : 20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(dosTime, 10);
    local.writeUInt16LE(dosDate, 12);
    local.writeUInt32LE(m.crc, 14);
    local.writeUInt32LE(zip64Local ? MAX32 : m.csize, 18);
    local.writeUInt32LE(zip64Local ? MAX32 : m.usize, 22);
    // Sizes follow in the descriptor; the zip64 extra tells readers it has 8-byte sizes.
    const localExtra = Buffer.concat([zip64Local ? zip64Extra([0, 0]) : Buffer.alloc(0), ...extras]);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(localExtra.length, 28);
    await this.sink.write(Buffer.concat([local, name, localExtra]));

    if (content) await this.sink.write(content);
    if (streamed) {
      m = await this.writeDeflated(e, name);
      if (!zip64Local && m.csize >= MAX32) throw new Error(`${name.toString()}: compressed size exceeds the zip64 estimate`);
      const d = Buffer.alloc(zip64Local ? 24 : 16);
      d.writeUInt32LE(0x08074b50, 0);
      d.writeUInt32LE(m.crc, 4);
      if (zip64Local) {
        d.writeBigUInt64LE(BigInt(m.csize), 8);
        d.writeBigUInt64LE(BigInt(m.usize), 16);
      } else {
        d.writeUInt32LE(m.csize, 8);
        d.writeUInt32LE(m.usize, 12);
      }
      await this.sink.write(d);
    }

    // Central record: zip64 extra holds exactly the fields that do not fit, in the fixed order.
    const big = [m.usize, m.csize, offset].map((v) => v >= MAX32);
    const zip64 = zip64Extra([m.usize, m.csize, offset].filter((_, i) => big[i]));
    const centralExtra = Buffer.concat([zip64, ...extras]);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(MADE_BY_UNIX, 4);
    c.writeUInt16LE(zip64Local || zip64.length > 0 ? 45 : 20, 6);
    c.writeUInt16LE(flags, 8);
    c.writeUInt16LE(method, 10);
    c.writeUInt16LE(dosTime, 12);
    c.writeUInt16LE(dosDate, 14);
    c.writeUInt32LE(m.crc, 16);
    c.writeUInt32LE(big[1] ? MAX32 : m.csize, 20);
    c.writeUInt32LE(big[0] ? MAX32 : m.usize, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt16LE(centralExtra.length, 30);
    // 32..41: comment length, disk, internal attributes: all zero
    const msdosDir = e.type === 'dir' ? 0x10 : 0;
    c.writeUInt32LE((((S_IFMT[e.type] | (e.mode & 0o7777)) << 16) | msdosDir) >>> 0, 38);
    c.writeUInt32LE(big[2] ? MAX32 : offset, 42);
    this.central.push(Buffer.concat([c, name, centralExtra]));
  }

  async finish(): Promise<void> {
    const cdOffset = this.sink.position;
    for (const record of this.central) await this.sink.write(record);
    const cdSize = this.sink.position - cdOffset;
    const count = this.central.length;
    if (count >= MAX16 || cdSize >= MAX32 || cdOffset >= MAX32) {
      const z = Buffer.alloc(56 + 20);
      const z64Offset = this.sink.position;
      z.writeUInt32LE(0x06064b50, 0); // zip64 end of central directory record
      z.writeBigUInt64LE(44n, 4); // size of the rest of the record
      z.writeUInt16LE(MADE_BY_UNIX, 12);
      z.writeUInt16LE(45, 14);
      z.writeBigUInt64LE(BigInt(count), 24);
      z.writeBigUInt64LE(BigInt(count), 32);
      z.writeBigUInt64LE(BigInt(cdSize), 40);
      z.writeBigUInt64LE(BigInt(cdOffset), 48);
      z.writeUInt32LE(0x07064b50, 56); // zip64 end of central directory locator
      z.writeBigUInt64LE(BigInt(z64Offset), 64);
      z.writeUInt32LE(1, 72); // total number of disks
      await this.sink.write(z);
    }
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(Math.min(count, MAX16), 8);
    end.writeUInt16LE(Math.min(count, MAX16), 10);
    end.writeUInt32LE(Math.min(cdSize, MAX32), 12);
    end.writeUInt32LE(Math.min(cdOffset, MAX32), 16);
    await this.sink.write(end);
    await this.sink.end();
  }

  /** Deflates the entry's data into the sink with back-pressure end to end; checks the size. */
  private async writeDeflated(e: ArchiveEntry, name: Buffer): Promise<Member> {
    if (!e.data) throw new Error(`${name.toString()}: no data for a ${e.size}-byte file`);
    const data = e.data;
    const m: Member = { crc: 0, csize: 0, usize: 0 };
    const sink = this.sink;
    async function* checked(): AsyncGenerator<Uint8Array> {
      for await (const chunk of data()) {
        m.usize += chunk.length;
        if (m.usize > e.size) break;
        m.crc = crc32(chunk, m.crc);
        yield chunk;
      }
    }
    await pipeline(
      Readable.from(checked(), { highWaterMark: 1 }),
      zlib.createDeflateRaw({ level: this.level }),
      async (compressed: AsyncIterable<Buffer>) => {
        for await (const chunk of compressed) {
          m.csize += chunk.length;
          await sink.write(chunk);
        }
      },
    );
    if (m.usize !== e.size) throw sizeError(name, m.usize, e.size);
    return m;
  }
}

async function drainEmpty(e: ArchiveEntry, name: Buffer): Promise<void> {
  if (!e.data) return;
  let n = 0;
  for await (const chunk of e.data()) if ((n += chunk.length) > 0) break;
  if (n !== 0) throw sizeError(name, n, 0);
}

function sizeError(name: Buffer, got: number, size: number): Error {
  return new Error(`${name.toString()}: data is ${got > size ? 'longer' : 'shorter'} than its size ${size}`);
}

function zip64Extra(values: number[]): Buffer {
  if (values.length === 0) return Buffer.alloc(0);
  const b = Buffer.alloc(4 + 8 * values.length);
  b.writeUInt16LE(0x0001, 0);
  b.writeUInt16LE(8 * values.length, 2);
  values.forEach((v, i) => b.writeBigUInt64LE(BigInt(v), 4 + 8 * i));
  return b;
}

/** Extended timestamp (0x5455): the exact Unix mtime, which unzip restores instead of DOS time. */
function timeExtra(sec: number): Buffer {
  if (!(sec >= -(2 ** 31) && sec < 2 ** 31)) return Buffer.alloc(0);
  const b = Buffer.alloc(9);
  b.writeUInt16LE(0x5455, 0);
  b.writeUInt16LE(5, 2);
  b.writeUInt8(1, 4); // flags: mtime present
  b.writeInt32LE(Math.floor(sec), 5);
  return b;
}

/** Info-ZIP Unix owner (0x7875), which `unzip -X` restores. */
function ownerExtra(uid: number, gid: number): Buffer {
  if (!(uid >= 0 && uid <= MAX32 && gid >= 0 && gid <= MAX32)) return Buffer.alloc(0);
  const b = Buffer.alloc(15);
  b.writeUInt16LE(0x7875, 0);
  b.writeUInt16LE(11, 2);
  b.writeUInt8(1, 4); // version
  b.writeUInt8(4, 5);
  b.writeUInt32LE(uid, 6);
  b.writeUInt8(4, 10);
  b.writeUInt32LE(gid, 11);
  return b;
}

/** MS-DOS local date/time (2-second steps), clamped to its 1980..2107 range. */
function dosDateTime(sec: number): [number, number] {
  const d = new Date(sec * 1000);
  const year = d.getFullYear();
  if (!(year >= 1980)) return sec > 0 ? dosMax() : [0, (1 << 5) | 1];
  if (year > 2107) return dosMax();
  const time = (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1);
  return [time, ((year - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate()];
}

function dosMax(): [number, number] {
  return [(23 << 11) | (59 << 5) | 29, (127 << 9) | (12 << 5) | 31];
}

// node:zlib has a native crc32 from Node 20.15/22.2; older Node 20 falls back to a table.
const nativeCrc = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
let table: Uint32Array | undefined;

export function crc32(data: Uint8Array, crc: number): number {
  if (nativeCrc) return nativeCrc(data, crc);
  table ??= Uint32Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  let c = ~crc >>> 0;
  for (const byte of data) c = (table[(c ^ byte) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}
