// Inputs of the scale benchmark: a tree of many small files and one large file, each generated
// once into the work folder (deterministically) and reused while its completion marker says so.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Generated {
  dir: string;
  files: number;
  bytes: number;
  /** Seconds it took to generate, 0 when reused. */
  seconds: number;
}

const MARKER = '.complete.json';
const FILES_PER_DIR = 100;
const DIRS_PER_DIR = 100;
const WORDS = 'alpha beta gamma delta snapshot chunk tree blob pack index restore backup hash file data node'.split(' ');

/**
 * `n` small files below `dir`/tree: 100 files per directory, 100 directories per parent
 * (a 1M-file tree has 10,000 leaf folders). Sizes 0..4 KiB, mean ~1 KiB; every file's content
 * starts with its number, so none deduplicates against another.
 */
export function smallFileTree(dir: string, n: number): Generated {
  const done = readMarker(dir);
  if (done && done.files === n) return { dir: path.join(dir, 'tree'), files: done.files, bytes: done.bytes, seconds: 0 };
  fs.rmSync(dir, { recursive: true, force: true });
  const t0 = Date.now();
  let bytes = 0;
  let made = '';
  for (let i = 0; i < n; i++) {
    const leaf = leafDir(dir, i);
    if (leaf !== made) {
      fs.mkdirSync(leaf, { recursive: true });
      made = leaf;
    }
    const content = fileContent(i);
    fs.writeFileSync(path.join(leaf, `f${i}.txt`), content);
    bytes += content.length;
    if (i > 0 && i % 100_000 === 0) process.stderr.write(`bench: generated ${i} of ${n} files\n`);
  }
  writeMarker(dir, { files: n, bytes });
  return { dir: path.join(dir, 'tree'), files: n, bytes, seconds: (Date.now() - t0) / 1000 };
}

function leafDir(dir: string, i: number): string {
  const leaf = Math.floor(i / FILES_PER_DIR);
  return path.join(dir, 'tree', `d${Math.floor(leaf / DIRS_PER_DIR)}`, `d${leaf % DIRS_PER_DIR}`);
}

function fileContent(i: number): Buffer {
  // sizes spread over 0..4095 (a multiplicative hash of i), skewed small by squaring
  const u = ((Math.imul(i + 1, 2654435761) >>> 0) % 4096) / 4096;
  const size = Math.floor(u * u * 4096);
  let s = `file ${i}\n`;
  for (let k = i; s.length < size; k = (k * 31 + 7) >>> 0) s += WORDS[k % WORDS.length] + (k % 11 === 0 ? '\n' : ' ');
  return Buffer.from(s.slice(0, Math.max(size, 0)));
}

export type LargeKind = 'random' | 'sparse';

/** Of a sparse file, one piece of data (keystream) every SPARSE_STRIDE bytes; the rest are holes. */
const SPARSE_DATA = 1 << 20;
const SPARSE_STRIDE = 16 << 20;

/**
 * One file of `bytes` bytes, written in 4 MiB pieces (the generator's memory stays flat too):
 * - `random`: AES-128-CTR keystream throughout (incompressible, never repeating: every chunk is
 *   new and really read, compressed, hashed and stored); needs `bytes` on disk, twice with the repository;
 * - `sparse`: 1 MiB of keystream every 16 MiB and holes between, so every byte is still read (holes
 *   read as zeros), chunked and hashed, but the file and the repository take 1/16 of the size on disk.
 */
export function largeFile(dir: string, bytes: number, kind: LargeKind): Generated {
  const done = readMarker(dir);
  if (done && done.bytes === bytes && done.kind === kind) return { dir: path.join(dir, 'big'), files: 1, bytes, seconds: 0 };
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'big'), { recursive: true });
  const t0 = Date.now();
  const fd = fs.openSync(path.join(dir, 'big', 'large.bin'), 'w');
  try {
    if (kind === 'random') writeKeystream(fd, 0, bytes);
    else {
      fs.ftruncateSync(fd, bytes);
      for (let at = 0; at < bytes; at += SPARSE_STRIDE) writeKeystream(fd, at, Math.min(SPARSE_DATA, bytes - at), at);
    }
  } finally {
    fs.closeSync(fd);
  }
  writeMarker(dir, { files: 1, bytes, kind });
  return { dir: path.join(dir, 'big'), files: 1, bytes, seconds: (Date.now() - t0) / 1000 };
}

/** `len` bytes of AES-128-CTR keystream at `pos`; `seed` makes each sparse piece different. */
function writeKeystream(fd: number, pos: number, len: number, seed = 0): void {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(Math.floor(seed / 2 ** 20), 0);
  const cipher = crypto.createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), iv);
  const zeros = Buffer.alloc(4 << 20);
  for (let done = 0; done < len; ) {
    const n = Math.min(zeros.length, len - done);
    fs.writeSync(fd, cipher.update(zeros.subarray(0, n)), 0, n, pos + done);
    done += n;
  }
}

interface Marker {
  files: number;
  bytes: number;
  kind?: LargeKind;
}

function readMarker(dir: string): Marker | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, MARKER), 'utf8')) as Marker;
  } catch {
    return undefined;
  }
}

function writeMarker(dir: string, m: Marker): void {
  fs.writeFileSync(path.join(dir, MARKER), JSON.stringify(m) + '\n');
}
