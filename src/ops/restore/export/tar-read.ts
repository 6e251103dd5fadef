// A small streaming tar reader for `snap export --verify`: ustar headers (checksummed), pax 'x'
// records (path, linkpath, size, mtime, uid, gid, uname, gname), GNU 'L'/'K' long names and
// base-256 numbers. Data is handed out as it streams, so memory does not grow with entry sizes.
import type { ArchiveEntryType } from './archive.js';
import { ByteReader, corrupt, type ReadEntry } from './read-entry.js';

const BLOCK = 512;
const TYPES: Record<string, ArchiveEntryType> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'chardev', '4': 'blockdev', '5': 'dir', '6': 'fifo',
};
/** A pax or GNU long-name body larger than this is not something snap writes: refuse, bounded memory. */
const MAX_META = 1024 * 1024;

export async function* readTar(source: AsyncIterable<Buffer>, what = 'the tar archive'): AsyncGenerator<ReadEntry> {
  const r = new ByteReader(source, what);
  try {
    let pax = new Map<string, Buffer>();
    let longName: Buffer | undefined;
    let longLink: Buffer | undefined;
    for (;;) {
      const at = r.position;
      const h = await r.read(BLOCK);
      if (!h) throw corrupt(`${what} ends without its end-of-archive blocks`);
      if (h.every((c) => c === 0)) {
        const h2 = await r.read(BLOCK);
        if (!h2 || !h2.every((c) => c === 0)) throw corrupt(`${what}: a zero block at byte ${at} is not followed by a second one`);
        return;
      }
      checkSum(h, at, what);
      const flag = String.fromCharCode(h[156]!);
      let size = num(h, 124, 12);
      const meta = async (): Promise<Buffer> => {
        if (size > MAX_META) throw corrupt(`${what}: an extended header at byte ${at} is ${size} bytes long`);
        const body = Buffer.from(await r.exact(size));
        await r.skip(pad(size));
        return body;
      };
      if (flag === 'x') {
        pax = parsePax(await meta(), at, what);
        continue;
      }
      if (flag === 'g') {
        await meta(); // global records: snap writes none, and none of them changes what is checked
        continue;
      }
      if (flag === 'L' || flag === 'K') {
        const body = await meta();
        const end = body.indexOf(0);
        if (flag === 'L') longName = end < 0 ? body : body.subarray(0, end);
        else longLink = end < 0 ? body : body.subarray(0, end);
        continue;
      }
      const type = TYPES[flag];
      if (!type) throw corrupt(`${what}: unsupported entry type '${flag}' at byte ${at}`);
      const paxSize = pax.get('size');
      if (paxSize) size = paxInt(paxSize, 'size', at, what);

      const ustar = h.subarray(257, 262).toString('latin1') === 'ustar';
      const prefix = ustar ? cstr(h, 345, 155) : Buffer.alloc(0);
      let path = pax.get('path') ?? longName ?? (prefix.length > 0 ? Buffer.concat([prefix, Buffer.from('/'), cstr(h, 0, 100)]) : Buffer.from(cstr(h, 0, 100)));
      if (type === 'dir' && path.length > 1 && path[path.length - 1] === 0x2f) path = path.subarray(0, path.length - 1);
      const e: ReadEntry = {
        path: Buffer.from(path),
        type,
        mode: num(h, 100, 8) & 0o7777,
        uid: pax.has('uid') ? paxInt(pax.get('uid')!, 'uid', at, what) : num(h, 108, 8),
        gid: pax.has('gid') ? paxInt(pax.get('gid')!, 'gid', at, what) : num(h, 116, 8),
        uname: pax.get('uname') ?? Buffer.from(cstr(h, 265, 32)),
        gname: pax.get('gname') ?? Buffer.from(cstr(h, 297, 32)),
        mtime: pax.has('mtime') ? paxTime(pax.get('mtime')!, at, what) : { sec: num(h, 136, 12), nsec: 0 },
        size: type === 'file' ? size : 0,
        data: () => data(),
      };
      if (type === 'symlink' || type === 'hardlink') e.linkTarget = Buffer.from(pax.get('linkpath') ?? longLink ?? cstr(h, 157, 100));
      if (type === 'chardev' || type === 'blockdev') {
        e.devMajor = num(h, 329, 8);
        e.devMinor = num(h, 337, 8);
      }
      // Only regular files carry data in what snap writes; for others the size field is skipped too.
      let left = size;
      async function* data(): AsyncGenerator<Buffer> {
        for await (const piece of r.take(left)) {
          left -= piece.length;
          yield piece;
        }
      }
      pax = new Map();
      longName = longLink = undefined;
      yield e;
      await r.skip(left);
      await r.skip(pad(size));
    }
  } finally {
    await r.close();
  }
}

function pad(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

function checkSum(h: Buffer, at: number, what: string): void {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  if (num(h, 148, 8) !== sum) throw corrupt(`${what}: the header at byte ${at} fails its checksum`);
}

/** Bytes up to the first NUL. */
function cstr(h: Buffer, off: number, len: number): Buffer {
  const field = h.subarray(off, off + len);
  const end = field.indexOf(0);
  return end < 0 ? field : field.subarray(0, end);
}

/** Octal, or GNU base-256 when the high bit of the first byte is set (0xff: negative). */
function num(h: Buffer, off: number, len: number): number {
  const first = h[off]!;
  if (first & 0x80) {
    let v = BigInt(first & 0x7f);
    for (let i = off + 1; i < off + len; i++) v = (v << 8n) | BigInt(h[i]!);
    if (first === 0xff) v -= 1n << BigInt(8 * len - 1);
    return Number(v);
  }
  const s = h.toString('latin1', off, off + len).replace(/[\0 ]+$/g, '').trim();
  return s === '' ? 0 : parseInt(s, 8);
}

/** "<len> key=value\n" records; values stay bytes (hdrcharset=BINARY names are not UTF-8). */
function parsePax(body: Buffer, at: number, what: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0) break; // padding
    const space = body.indexOf(0x20, pos);
    const len = space > pos ? Number(body.toString('latin1', pos, space)) : NaN;
    const eq = body.indexOf(0x3d, space);
    if (!Number.isInteger(len) || len <= 0 || pos + len > body.length || eq < 0 || eq >= pos + len || body[pos + len - 1] !== 0x0a) {
      throw corrupt(`${what}: a malformed pax record in the header at byte ${at}`);
    }
    out.set(body.toString('utf8', space + 1, eq), body.subarray(eq + 1, pos + len - 1));
    pos += len;
  }
  return out;
}

function paxInt(v: Buffer, key: string, at: number, what: string): number {
  const s = v.toString('latin1');
  if (!/^\d+$/.test(s)) throw corrupt(`${what}: pax ${key} '${s}' at byte ${at} is not a number`);
  return Number(s);
}

/** pax time "[-]sec[.frac]": a negative value is -(sec + frac), so the seconds borrow one. */
function paxTime(v: Buffer, at: number, what: string): { sec: number; nsec: number } {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(v.toString('latin1'));
  if (!m) throw corrupt(`${what}: pax mtime '${v.toString('latin1')}' at byte ${at} is not a time`);
  const whole = Number(m[2]);
  const nsec = Number((m[3] ?? '').slice(0, 9).padEnd(9, '0'));
  if (m[1] !== '-') return { sec: whole, nsec };
  return nsec === 0 ? { sec: -whole, nsec: 0 } : { sec: -whole - 1, nsec: 1e9 - nsec };
}
