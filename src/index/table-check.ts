// A check of LevelDB's table files (*.ldb) against their own block checksums, before anything in
// this process reads them. LevelDB does not verify those checksums on reads (classic-level gives
// no way to ask it to), and a damaged block does not always read back as an error: a flipped byte
// in a key length trips an assertion in LevelDB's C++ and the process aborts, and a flipped byte
// in a key moves an entry out of its range. The index is derived data, so a damaged table only
// means a rebuild, but only if it is noticed before LevelDB reads it.
//
// Tables are immutable: LevelDB writes each one once and only ever deletes it. So each file is
// checked once, and what was checked is remembered (name, size, times, inode) in CHECKED_FILE; a
// file changed since is checked again. Only tables that were there before the open and are still
// there unchanged are checked (CheckTablesOptions.before); those LevelDB writes while this process
// has it open are recorded when it closes, without being read (recordWrittenTables).
// The table layout (LevelDB's doc/table_format.md): blocks back to back, each followed by a type
// byte and a masked CRC-32C of the block and that byte; then the filter block, the metaindex
// block, the index block (which holds the data blocks' handles), and a 48-byte footer with the
// metaindex and index handles and a magic number. Blocks may be Snappy-compressed; only the index
// and metaindex blocks are decompressed here, to find the others.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fsPath } from '../core/bytes.js';
import { writeFileDurable } from '../core/durable.js';
import { randomHex } from '../core/ids.js';

/** Written next to the LevelDB: the table files found whole, one per line. */
export const CHECKED_FILE = 'snap-tables.checked';

const FOOTER = 48;
const TRAILER = 5;
const MAGIC_LO = 0x8b80fb57;
const MAGIC_HI = 0xdb477524;

// Slicing-by-8: eight tables, eight bytes per step (about four times the speed of one byte a step).
const CRC_TABLES = (() => {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) for (let k = 1; k < 8; k++) t[k * 256 + n] = t[(k - 1) * 256 + n]! >>> 8 ^ t[t[(k - 1) * 256 + n]! & 0xff]!;
  return t;
})();

/** CRC-32C (Castagnoli), as LevelDB computes it. */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length): number {
  const t = CRC_TABLES;
  let c = -1;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const lo = c ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
    c =
      t[1792 + (lo & 0xff)]! ^ t[1536 + ((lo >>> 8) & 0xff)]! ^ t[1280 + ((lo >>> 16) & 0xff)]! ^ t[1024 + (lo >>> 24)]! ^
      t[768 + buf[i + 4]!]! ^ t[512 + buf[i + 5]!]! ^ t[256 + buf[i + 6]!]! ^ t[buf[i + 7]!]!;
  }
  for (; i < end; i++) c = t[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** LevelDB stores CRCs masked (crc32c.h: Mask). */
export function maskCrc(crc: number): number {
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

class Damage extends Error {}

function varint(buf: Uint8Array, pos: { at: number }, end: number): number {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos.at >= end) throw new Damage('a number runs past its block');
    const b = buf[pos.at++]!;
    v += (b & 0x7f) * mul;
    if (!(b & 0x80)) {
      if (!Number.isSafeInteger(v)) throw new Damage('a number out of range');
      return v;
    }
    mul *= 128;
  }
  throw new Damage('a number longer than 10 bytes');
}

interface Handle {
  offset: number;
  size: number;
}

function handle(buf: Uint8Array, pos: { at: number }, end: number): Handle {
  return { offset: varint(buf, pos, end), size: varint(buf, pos, end) };
}

/** Snappy's block format (the raw one LevelDB uses, no framing). */
export function snappyDecompress(src: Uint8Array): Buffer {
  const pos = { at: 0 };
  const n = varint(src, pos, src.length);
  if (n > 64 * 1024 * 1024) throw new Damage('a compressed block claims to be larger than 64 MiB');
  const out = Buffer.allocUnsafe(n);
  let o = 0;
  let i = pos.at;
  while (i < src.length) {
    const tag = src[i++]!;
    let len: number;
    let off: number;
    switch (tag & 3) {
      case 0: {
        len = tag >>> 2;
        if (len >= 60) {
          const bytes = len - 59;
          if (i + bytes > src.length) throw new Damage('a literal length runs past the block');
          len = 0;
          for (let k = 0; k < bytes; k++) len += src[i + k]! * 2 ** (8 * k);
          i += bytes;
        }
        len += 1;
        if (i + len > src.length || o + len > n) throw new Damage('a literal runs past the block');
        out.set(src.subarray(i, i + len), o);
        i += len;
        o += len;
        continue;
      }
      case 1:
        if (i + 1 > src.length) throw new Damage('a copy runs past the block');
        len = ((tag >>> 2) & 7) + 4;
        off = ((tag >>> 5) << 8) | src[i++]!;
        break;
      case 2:
        if (i + 2 > src.length) throw new Damage('a copy runs past the block');
        len = (tag >>> 2) + 1;
        off = src[i]! | (src[i + 1]! << 8);
        i += 2;
        break;
      default:
        if (i + 4 > src.length) throw new Damage('a copy runs past the block');
        len = (tag >>> 2) + 1;
        off = (src[i]! | (src[i + 1]! << 8) | (src[i + 2]! << 16) | (src[i + 3]! << 24)) >>> 0;
        i += 4;
    }
    if (off === 0 || off > o || o + len > n) throw new Damage('a copy reaches outside the block');
    for (let k = 0; k < len; k++, o++) out[o] = out[o - off]!;
  }
  if (o !== n) throw new Damage('a compressed block is shorter than it claims');
  return out;
}

/** A block's contents after its checksum matched, decompressed when asked. */
function block(file: Uint8Array, h: Handle, what: string, contents: boolean): Buffer | undefined {
  const end = h.offset + h.size;
  if (end + TRAILER > file.length - FOOTER) throw new Damage(`the ${what} block lies outside the file`);
  const type = file[end]!;
  const stored = ((file[end + 1]! | (file[end + 2]! << 8) | (file[end + 3]! << 16) | (file[end + 4]! << 24)) >>> 0);
  if (maskCrc(crc32c(file, h.offset, end + 1)) !== stored) throw new Damage(`the ${what} block at offset ${h.offset} fails its checksum`);
  if (type !== 0 && type !== 1) throw new Damage(`the ${what} block has an unknown compression type ${type}`);
  if (!contents) return undefined;
  const raw = file.subarray(h.offset, end);
  return type === 1 ? snappyDecompress(raw) : Buffer.from(raw.buffer, raw.byteOffset, raw.length);
}

/**
 * A block's entries (block_builder.cc: shared, unshared, value length, key delta, value), each as
 * the bytes of the key it shares with the one before, its own key bytes and its value.
 */
function* blockEntries(b: Buffer, what: string): Generator<{ shared: number; keyDelta: Buffer; value: Buffer }> {
  if (b.length < 4) throw new Damage(`the ${what} block is too short`);
  const restarts = b.readUInt32LE(b.length - 4);
  const end = b.length - 4 - 4 * restarts;
  if (restarts < 1 || end < 0) throw new Damage(`the ${what} block's restart points do not fit`);
  const pos = { at: 0 };
  let keyLength = 0;
  while (pos.at < end) {
    const shared = varint(b, pos, end);
    const unshared = varint(b, pos, end);
    const valueLength = varint(b, pos, end);
    if (shared > keyLength) throw new Damage(`an entry of the ${what} block shares more than the key before it`);
    keyLength = shared + unshared;
    if (pos.at + unshared + valueLength > end) throw new Damage(`an entry of the ${what} block runs past it`);
    const keyDelta = b.subarray(pos.at, pos.at + unshared);
    pos.at += unshared;
    yield { shared, keyDelta, value: b.subarray(pos.at, pos.at + valueLength) };
    pos.at += valueLength;
  }
}

function blockValues(b: Buffer, what: string): Buffer[] {
  return Array.from(blockEntries(b, what), (e) => e.value);
}

export interface TableBlock {
  kind: 'data' | 'filter' | 'metaindex' | 'index';
  offset: number;
  size: number;
  compressed: boolean;
}

/** The blocks of one table file, each checked against its checksum; throws Damage saying what is wrong. */
export function tableBlocks(file: Uint8Array): TableBlock[] {
  if (file.length < FOOTER) throw new Damage('shorter than a table footer');
  const f = Buffer.from(file.buffer, file.byteOffset + file.length - FOOTER, FOOTER);
  if (f.readUInt32LE(40) !== MAGIC_LO || f.readUInt32LE(44) !== MAGIC_HI) throw new Damage('the footer has no table magic number');
  const pos = { at: 0 };
  const meta = handle(f, pos, 40);
  const index = handle(f, pos, 40);
  const blocks: TableBlock[] = [];
  const add = (kind: TableBlock['kind'], h: Handle, contents: boolean): Buffer | undefined => {
    const b = block(file, h, kind, contents);
    blocks.push({ kind, ...h, compressed: file[h.offset + h.size] === 1 });
    return b;
  };
  for (const v of blockValues(add('index', index, true)!, 'index')) add('data', handle(v, { at: 0 }, v.length), false);
  for (const v of blockValues(add('metaindex', meta, true)!, 'metaindex')) add('filter', handle(v, { at: 0 }, v.length), false);
  // The blocks tile the file: nothing between them is left unchecked.
  const sorted = [...blocks].sort((a, b) => a.offset - b.offset);
  let at = 0;
  for (const h of sorted) {
    if (h.offset !== at) throw new Damage(`bytes ${at}..${h.offset} belong to no block`);
    at = h.offset + h.size + TRAILER;
  }
  if (at !== file.length - FOOTER) throw new Damage(`bytes ${at}..${file.length - FOOTER} belong to no block`);
  return blocks;
}

/**
 * The entries of a whole table's data blocks, in order (the same decoding LevelDB does; `snap`
 * has no use for it, the tests prove the decoder on LevelDB's own files with it).
 */
export function tableEntries(file: Uint8Array): [Buffer, Buffer][] {
  const out: [Buffer, Buffer][] = [];
  for (const h of tableBlocks(file).filter((x) => x.kind === 'data')) {
    let last = Buffer.alloc(0);
    for (const e of blockEntries(block(file, h, 'data', true)!, 'data')) {
      last = Buffer.concat([last.subarray(0, e.shared), e.keyDelta]);
      out.push([last, Buffer.from(e.value)]);
    }
  }
  return out;
}

/** The damage found in one table file, or undefined when it is whole. */
export function tableDamage(file: Uint8Array): string | undefined {
  try {
    tableBlocks(file);
    return undefined;
  } catch (e) {
    if (e instanceof Damage) return e.message;
    throw e;
  }
}

type Stamp = string;

async function stampOf(file: string): Promise<Stamp | undefined> {
  try {
    const st = await fsp.stat(fsPath(file), { bigint: true });
    return `${st.size} ${st.mtimeNs} ${st.ctimeNs} ${st.ino}`;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** The table files of the LevelDB at `dir` and their stamps (size, times, inode). */
export async function tableStamps(dir: string): Promise<Map<string, Stamp>> {
  const out = new Map<string, Stamp>();
  const names = await fsp.readdir(fsPath(dir)).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [] as string[];
    throw e;
  });
  for (const name of names.filter((n) => n.endsWith('.ldb') || n.endsWith('.sst')).sort()) {
    const stamp = await stampOf(path.join(dir, name));
    if (stamp !== undefined) out.set(name, stamp);
  }
  return out;
}

export interface CheckTablesOptions {
  /** Check every table, not only those not checked before (their stamps in CHECKED_FILE). */
  all?: boolean;
  /**
   * The tables as they were before LevelDB was opened (tableStamps). Only those still there
   * unchanged are checked: opening deletes files a crashed process left half written, and a
   * compaction that starts at once writes new files and deletes old ones while this check runs.
   */
  before?: Map<string, Stamp>;
}

/**
 * Check the table files of the LevelDB at `dir` not checked before (all of them with `all`), while
 * this process holds its LOCK. Returns the first damage found ("000123.ldb: ..."), or undefined.
 */
export async function checkTables(dir: string, o: CheckTablesOptions = {}): Promise<string | undefined> {
  const now = await tableStamps(dir);
  const known = o.all ? new Set<string>() : await readRecord(dir);
  const checked: string[] = [];
  let changed = false;
  // One buffer for every table read (a table is 2 MiB at most by LevelDB's default): a large index
  // checked after a big backup is hundreds of tables, and a buffer each would pile up until GC.
  let buf = Buffer.alloc(0);
  for (const [name, stamp] of now) {
    const line = `${name} ${stamp}`;
    if (known.has(line)) {
      checked.push(line);
      continue;
    }
    if (o.before && o.before.get(name) !== stamp) continue;
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(fsPath(path.join(dir, name)), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // deleted by a compaction meanwhile
      throw e;
    }
    let bytes: Buffer;
    try {
      const size = Number((await fh.stat()).size);
      if (size > buf.length) buf = Buffer.allocUnsafe(Math.max(size, 2 * 1024 * 1024));
      let have = 0;
      while (have < size) {
        const { bytesRead } = await fh.read(buf, have, size - have, have);
        if (bytesRead === 0) break;
        have += bytesRead;
      }
      bytes = buf.subarray(0, have);
    } finally {
      await fh.close();
    }
    const damage = tableDamage(bytes);
    if (damage !== undefined) return `${name}: ${damage}`;
    changed = true;
    checked.push(line);
  }
  if (changed || checked.length !== known.size) {
    // A record that cannot be written (a full disk) only means the same files are checked again.
    await writeRecord(dir, checked).catch(() => {});
  }
  return undefined;
}

/** Replace the record of checked tables beside the LevelDB at `dir` with `lines`. */
async function writeRecord(dir: string, lines: string[]): Promise<void> {
  const record = path.join(dir, CHECKED_FILE);
  const tmp = `${record}.${randomHex(4)}.tmp`;
  await writeFileDurable({ dir: fsPath(dir), tmp: fsPath(tmp), dest: fsPath(record) }, lines.map((l) => `${l}\n`).join(''));
}

/** The lines of the record of checked tables beside the LevelDB at `dir` (none if there is none). */
async function readRecord(dir: string): Promise<Set<string>> {
  try {
    return new Set((await fsp.readFile(fsPath(path.join(dir, CHECKED_FILE)), 'latin1')).split('\n').filter((l) => l !== ''));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    return new Set();
  }
}

/**
 * After this process has closed the LevelDB at `dir`: the tables LevelDB wrote while it was open
 * (not there before the open) join the record of checked tables without being read. LevelDB
 * writes each table whole while its LOCK keeps every other process out, so they are as sound as
 * those checked at the open, and one changed later has another stamp and is checked again.
 * Without this, the next command read every table the last one wrote (a backup of the bench
 * corpus writes 6 MiB of them; 25 ms of the nothing-changed backup after it). A process that
 * ends without closing (killed) records nothing, and its tables are checked at the next open.
 * Best effort: a record that cannot be written only means those tables are checked then.
 */
export async function recordWrittenTables(dir: string, before: Map<string, Stamp>): Promise<void> {
  try {
    const known = await readRecord(dir);
    const now = await tableStamps(dir);
    const lines: string[] = [];
    for (const [name, stamp] of now) {
      const line = `${name} ${stamp}`;
      if (known.has(line) || !before.has(name)) lines.push(line);
    }
    if (lines.length === known.size && lines.every((l) => known.has(l))) return;
    await writeRecord(dir, lines);
  } catch {
    // the tables are checked at the next open instead
  }
}
