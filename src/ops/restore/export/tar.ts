// POSIX pax tar writer (ustar headers, plus a pax 'x' header when a field does not fit).
// Hand-written rather than tar-stream: the header is ~80 lines, and tar-stream neither writes
// hdrcharset=BINARY for names that are not UTF-8 nor nanosecond mtimes, which a backup needs.
import { isUtf8 } from 'node:buffer';
import type { ArchiveEntry, ArchiveEntryType, ArchiveWriter, ByteSink } from './archive.js';

const BLOCK = 512;
const TYPEFLAG: Record<ArchiveEntryType, string> = {
  file: '0', hardlink: '1', symlink: '2', chardev: '3', blockdev: '4', dir: '5', fifo: '6',
};
const SLASH = 0x2f;

export class TarWriter implements ArchiveWriter {
  constructor(private readonly sink: ByteSink) {}

  async add(e: ArchiveEntry): Promise<void> {
    const path = e.type === 'dir' && e.path.at(-1) !== SLASH ? Buffer.concat([e.path, Buffer.from('/')]) : e.path;
    const size = e.type === 'file' ? e.size : 0; // hard links carry no data in tar
    const pax: Array<[string, Buffer]> = [];
    const h = Buffer.alloc(BLOCK);

    const split = ustarSplit(path);
    if (split) {
      split.name.copy(h, 0);
      split.prefix.copy(h, 345);
    } else {
      pax.push(['path', path]);
      portable(path.subarray(0, 100)).copy(h, 0); // a hint for readers that ignore pax
    }
    octal(h, 100, 8, e.mode & 0o7777);
    if (!numeric(h, 108, 8, e.uid)) pax.push(['uid', Buffer.from(String(e.uid))]);
    if (!numeric(h, 116, 8, e.gid)) pax.push(['gid', Buffer.from(String(e.gid))]);
    if (!numeric(h, 124, 12, size)) pax.push(['size', Buffer.from(String(size))]);
    if (!numeric(h, 136, 12, e.mtime.sec) || e.mtime.nsec !== 0) pax.push(['mtime', Buffer.from(paxTime(e.mtime))]);
    h.write(TYPEFLAG[e.type], 156, 'latin1');
    if (e.linkTarget && (e.type === 'symlink' || e.type === 'hardlink')) {
      if (e.linkTarget.length <= 100 && isPortable(e.linkTarget)) e.linkTarget.copy(h, 157);
      else pax.push(['linkpath', e.linkTarget]);
    }
    h.write('ustar\x0000', 257, 'latin1');
    for (const [key, value, off] of [['uname', e.uname, 265], ['gname', e.gname, 297]] as const) {
      const bytes = Buffer.from(value, 'utf8');
      if (bytes.length <= 32 && isPortable(bytes)) bytes.copy(h, off);
      else pax.push([key, bytes]);
    }
    if (e.type === 'chardev' || e.type === 'blockdev') {
      numeric(h, 329, 8, e.devMajor ?? 0);
      numeric(h, 337, 8, e.devMinor ?? 0);
    }
    checksum(h);

    if (pax.length > 0) await this.writePax(path, e.mtime.sec, pax);
    await this.sink.write(h);
    if (e.type === 'file') await this.writeData(e, path);
  }

  async finish(): Promise<void> {
    await this.sink.write(Buffer.alloc(2 * BLOCK)); // end-of-archive: two zero blocks
    await this.sink.end();
  }

  private async writePax(path: Buffer, mtime: number, records: Array<[string, Buffer]>): Promise<void> {
    // Pax values must be UTF-8 unless hdrcharset=BINARY comes first; GNU tar does the same and
    // then restores the raw bytes, so arbitrary names round-trip.
    if (records.some(([k, v]) => (k === 'path' || k === 'linkpath') && !isUtf8(v))) {
      records.unshift(['hdrcharset', Buffer.from('BINARY')]);
    }
    const body = Buffer.concat(records.map(([k, v]) => paxRecord(k, v)));
    const h = Buffer.alloc(BLOCK);
    const base = path.subarray(path.lastIndexOf(SLASH, path.length - 2) + 1);
    portable(Buffer.concat([Buffer.from('PaxHeaders/'), base]).subarray(0, 100)).copy(h, 0);
    octal(h, 100, 8, 0o644);
    octal(h, 108, 8, 0);
    octal(h, 116, 8, 0);
    octal(h, 124, 12, body.length);
    numeric(h, 136, 12, Math.max(0, mtime));
    h.write('x', 156, 'latin1');
    h.write('ustar\x0000', 257, 'latin1');
    checksum(h);
    await this.sink.write(h);
    await this.sink.write(padded(body));
  }

  private async writeData(e: ArchiveEntry, path: Buffer): Promise<void> {
    let n = 0;
    if (e.data) {
      for await (const chunk of e.data()) {
        n += chunk.length;
        if (n > e.size) break; // never write past the size announced in the header
        await this.sink.write(chunk);
      }
    }
    if (n !== e.size) throw new Error(`${path.toString()}: data is ${n > e.size ? 'longer' : 'shorter'} than its size ${e.size}`);
    const pad = (BLOCK - (e.size % BLOCK)) % BLOCK;
    if (pad > 0) await this.sink.write(Buffer.alloc(pad));
  }
}

/** ustar name (100 bytes) + prefix (155), split at a '/'; undefined when pax `path` is needed. */
function ustarSplit(path: Buffer): { name: Buffer; prefix: Buffer } | undefined {
  if (!isPortable(path)) return undefined;
  if (path.length <= 100) return { name: path, prefix: Buffer.alloc(0) };
  for (let i = path.indexOf(SLASH); i >= 0 && i <= 155; i = path.indexOf(SLASH, i + 1)) {
    if (path.length - i - 1 <= 100 && i + 1 < path.length) {
      return { name: path.subarray(i + 1), prefix: path.subarray(0, i) };
    }
  }
  return undefined;
}

/** ASCII without NUL: safe in fixed ustar fields for every reader. */
function isPortable(b: Buffer): boolean {
  return b.every((c) => c > 0 && c < 0x80);
}

function portable(b: Buffer): Buffer {
  return Buffer.from(b.map((c) => (c > 0x20 && c < 0x7f ? c : 0x5f)));
}

function paxRecord(key: string, value: Buffer): Buffer {
  // "<len> key=value\n" where <len> counts its own digits.
  const rest = key.length + value.length + 3;
  let len = rest + 1;
  while (len !== rest + String(len).length) len = rest + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`), value, Buffer.from('\n')]);
}

/** pax time "sec.nnnnnnnnn"; negative times read as sec + nsec/1e9, so borrow a second. */
function paxTime({ sec, nsec }: { sec: number; nsec: number }): string {
  if (nsec === 0) return String(sec);
  if (sec >= 0) return `${sec}.${String(nsec).padStart(9, '0')}`;
  return `-${-(sec + 1)}.${String(1e9 - nsec).padStart(9, '0')}`;
}

function octal(h: Buffer, off: number, width: number, v: number): void {
  h.write(v.toString(8).padStart(width - 1, '0'), off, width - 1, 'latin1');
}

/**
 * Octal when the value fits (returns true); otherwise GNU base-256 so old readers stay in sync
 * (returns false: the caller adds the pax record, which POSIX readers prefer).
 */
function numeric(h: Buffer, off: number, width: number, v: number): boolean {
  if (Number.isInteger(v) && v >= 0 && v < 8 ** (width - 1)) {
    octal(h, off, width, v);
    return true;
  }
  let x = BigInt(Math.trunc(v));
  for (let i = off + width - 1; i > off; i--, x >>= 8n) h[i] = Number(x & 0xffn);
  h[off] = v < 0 ? 0xff : 0x80;
  return false;
}

function checksum(h: Buffer): void {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of h) sum += c;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
}

function padded(b: Buffer): Buffer {
  const pad = (BLOCK - (b.length % BLOCK)) % BLOCK;
  return pad === 0 ? b : Buffer.concat([b, Buffer.alloc(pad)]);
}
