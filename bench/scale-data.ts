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

/**
 * One file of `bytes` bytes of AES-128-CTR keystream (incompressible, never repeating, so every
 * chunk is new and really read and stored), written in 4 MiB pieces: the generator's memory stays flat too.
 */
export function largeFile(dir: string, bytes: number): Generated {
  const done = readMarker(dir);
  if (done && done.bytes === bytes) return { dir: path.join(dir, 'big'), files: 1, bytes, seconds: 0 };
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'big'), { recursive: true });
  const t0 = Date.now();
  const cipher = crypto.createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0));
  const zeros = Buffer.alloc(4 << 20);
  const fd = fs.openSync(path.join(dir, 'big', 'large.bin'), 'w');
  try {
    for (let left = bytes; left > 0; left -= zeros.length) {
      const piece = cipher.update(left >= zeros.length ? zeros : zeros.subarray(0, left));
      fs.writeSync(fd, piece);
    }
  } finally {
    fs.closeSync(fd);
  }
  writeMarker(dir, { files: 1, bytes });
  return { dir: path.join(dir, 'big'), files: 1, bytes, seconds: (Date.now() - t0) / 1000 };
}

function readMarker(dir: string): { files: number; bytes: number } | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, MARKER), 'utf8')) as { files: number; bytes: number };
  } catch {
    return undefined;
  }
}

function writeMarker(dir: string, m: { files: number; bytes: number }): void {
  fs.writeFileSync(path.join(dir, MARKER), JSON.stringify(m) + '\n');
}
