// Building crafted repositories for the hardening tests (issue 20): raw objects in packs written
// straight into storage, trees and snapshot records of any shape, and running the CLI with its
// peak RSS recorded (crafted input must not make memory explode).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Transform } from 'node:stream';
import { LocalBackend } from '../../src/backend/local.js';
import { encodeCbor } from '../../src/model/cbor.js';
import { encodeSnapshot } from '../../src/model/snapshot.js';
import { PackBuilder, packName } from '../../src/store/pack.js';
import { CLI, CLI_NODE_FLAGS, RSS_WRAPPER, cliOk, tmpDir } from './lib.js';
import { launcherNodeFlagsFor } from '../helpers/node-flags.js';

export const sha = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

export interface RawObject {
  raw?: Buffer;
  /** The id, when `raw` is not given (a claim without the bytes). */
  id?: Buffer;
  stored?: Buffer;
  codec?: number;
  rawLength?: number;
}

/** Store objects (bytes as given, codec raw unless told) in one pack of their type; their ids. */
export async function putObjects(repo: string, type: 'blob' | 'tree', objs: RawObject[]): Promise<Buffer[]> {
  const b = new PackBuilder();
  const ids: Buffer[] = [];
  for (const o of objs) {
    const id = o.id ?? sha(o.raw!);
    ids.push(id);
    const stored = o.stored ?? o.raw!;
    b.add(id, type, stored, o.rawLength ?? o.raw?.length ?? stored.length, o.codec ?? 0);
  }
  const { id, bytes } = b.seal();
  await new LocalBackend(repo).put(packName(id), bytes);
  return ids;
}

export const ZERO_SUMMARY = {
  filesNew: 0, filesChanged: 0, filesUnchanged: 0, dirsNew: 0, dirsChanged: 0, dirsUnchanged: 0,
  bytesRead: 0, totalBytes: 0, totalFiles: 0, dataAdded: 0, objectsAdded: 0, warnings: 0, durationMs: 0,
};

/** A snapshot record for a root tree, written straight into storage. */
export async function putSnapshot(repo: string, tree: Buffer, o: { tag?: string; hostname?: string; username?: string; paths?: string[] } = {}): Promise<string> {
  const { id, bytes } = encodeSnapshot({
    time: new Date().toISOString(), hostname: o.hostname ?? 'crafted', username: o.username ?? 'mallory', paths: o.paths ?? ['/x'], tags: [o.tag ?? 'crafted'], tree,
    program: 'crafted', excludes: [], summary: ZERO_SUMMARY,
  });
  await new LocalBackend(repo).put(`snapshots/${id}`, bytes);
  return id;
}

export function fileNode(name: Buffer | string, chunks: Buffer[], size: number): Record<string, unknown> {
  return { name: Buffer.from(name), type: 'file', mode: 0o644, uid: 0, gid: 0, user: '', group: '', mtime: [1, 0], size, chunks };
}

export function dirNode(name: Buffer | string, tree: Buffer): Record<string, unknown> {
  return { name: Buffer.from(name), type: 'dir', mode: 0o755, uid: 0, gid: 0, user: '', group: '', mtime: [1, 0], size: 0, tree };
}

export function treeBytes(entries: unknown[]): Buffer {
  return encodeCbor({ v: 1, entries });
}

export async function freshRepo(): Promise<{ base: string; repo: string }> {
  const base = tmpDir('snap-harden-');
  const repo = path.join(base, 'repo');
  await cliOk(['--repo', repo, 'init']);
  return { base, repo };
}

export interface RssResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Peak RSS of the CLI process, MiB (its VmHWM, read in the process itself). */
  rssMiB: number;
}

/**
 * Run the built CLI with its peak RSS recorded (test/helpers/rss-wrapper.mjs: it imports the CLI and
 * writes its VmHWM at exit). Killed, and failed, after `timeoutMs`.
 */
export function cliRss(args: string[], o: { timeoutMs?: number; env?: Record<string, string>; onStart?: (pid: number) => void; holdStdout?: boolean } = {}): Promise<RssResult> {
  const dir = tmpDir('snap-rss-');
  const rssFile = path.join(dir, 'rss');
  const env = { ...process.env, SNAP_RSS_FILE: rssFile, SNAP_RSS_CLI: CLI, SNAP_REPO: '', ...o.env };
  const child = spawn(process.execPath, [...launcherNodeFlagsFor(env, CLI_NODE_FLAGS), RSS_WRAPPER, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  o.onStart?.(child.pid!);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  // holdStdout: nobody reads standard output, so the command blocks once the pipe is full.
  if (!o.holdStdout) child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  const timeoutMs = o.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`snap ${args.join(' ')} did not finish within ${timeoutMs} ms (a hang?)`));
    }, timeoutMs);
    child.on('exit', () => {
      if (o.holdStdout) child.stdout.destroy();
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const rss = fs.existsSync(rssFile) ? Number(fs.readFileSync(rssFile, 'utf8')) / (1024 * 1024) : NaN;
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), rssMiB: rss });
    });
  });
}

/** No stack trace, no internal error, no raw Node error code in what a command printed. */
export function noCrash(stderr: string): string[] {
  const bad: string[] = [];
  if (/SNAP_INTERNAL/.test(stderr)) bad.push('SNAP_INTERNAL');
  if (/\n\s+at .+:\d+:\d+\)?/.test(stderr)) bad.push('a stack trace');
  if (/ERR_[A-Z_]+/.test(stderr)) bad.push('a raw Node error code');
  if (/Maximum call stack/.test(stderr)) bad.push('stack overflow');
  return bad;
}

interface ZstdCCtx {
  setPledgedSrcSize(n: number): void;
  compressStream2(dst: Buffer, src: Uint8Array, end: number): [number, number, number];
}

/**
 * One zstd frame that records its content size, compressed from pieces as they come (so a test can
 * make a frame of hundreds of MB of content without holding it), and the SHA-256 of the content.
 * With node:zlib's streaming zstd where this Node has it (22.15+, 24+: an install without build
 * tools has no zstd-napi binding), else with zstd-napi's.
 */
export async function zstdFrame(total: number, pieces: Iterable<Buffer>): Promise<{ frame: Buffer; id: Buffer }> {
  // Typed here: the tests build with Node 20's @types/node, which predates zstd in node:zlib.
  const zlib = (await import('node:zlib')) as unknown as { createZstdCompress?: (o: { pledgedSrcSize: number }) => Transform };
  const h = createHash('sha256');
  const out: Buffer[] = [];
  if (typeof zlib.createZstdCompress === 'function') {
    const c = zlib.createZstdCompress({ pledgedSrcSize: total });
    c.on('data', (d: Buffer) => out.push(d));
    const ended = once(c, 'end');
    for (const p of pieces) {
      h.update(p);
      if (!c.write(p)) await once(c, 'drain');
    }
    c.end();
    await ended;
    return { frame: Buffer.concat(out), id: h.digest() };
  }
  const { createRequire } = await import('node:module');
  const z = createRequire(import.meta.url)('zstd-napi/binding') as { CCtx: new () => ZstdCCtx };
  const cctx = new z.CCtx();
  cctx.setPledgedSrcSize(total);
  const buf = Buffer.allocUnsafe(1 << 20);
  const feed = (src: Buffer, end: number): void => {
    let rest = src;
    for (;;) {
      const [left, produced, consumed] = cctx.compressStream2(buf, rest, end);
      if (produced > 0) out.push(Buffer.from(buf.subarray(0, produced)));
      rest = rest.subarray(consumed);
      if (rest.length === 0 && (end === 0 || left === 0)) return;
    }
  };
  for (const p of pieces) {
    h.update(p);
    feed(p, 0);
  }
  feed(Buffer.alloc(0), 2);
  return { frame: Buffer.concat(out), id: h.digest() };
}

/**
 * The CBOR of a tree of `n` file entries named by an 8-byte big-endian counter (so sorted and
 * unique), in pieces of about 16 MiB: `{v: 1, entries: [...]}` with a 4-byte array count.
 */
export function* bigTreePieces(n: number): Generator<Buffer> {
  const head = Buffer.concat([treeBytes([]).subarray(0, -1), Buffer.from([0x9a, n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255])]);
  yield head;
  const tpl = encodeCbor(fileNode(Buffer.alloc(8), [], 0));
  const at = tpl.indexOf(Buffer.from([0x48, 0, 0, 0, 0, 0, 0, 0, 0])) + 1; // the name: a byte string of 8
  const per = Math.floor((16 << 20) / tpl.length);
  for (let i = 0; i < n; ) {
    const k = Math.min(per, n - i);
    const piece = Buffer.allocUnsafe(k * tpl.length);
    for (let j = 0; j < k; j++, i++) {
      tpl.copy(piece, j * tpl.length);
      piece.writeUInt32BE(Math.floor(i / 2 ** 32), j * tpl.length + at);
      piece.writeUInt32BE(i >>> 0, j * tpl.length + at + 4);
    }
    yield piece;
  }
}

/** The size in bytes of bigTreePieces(n). */
export function bigTreeSize(n: number): number {
  return treeBytes([]).length - 1 + 5 + n * encodeCbor(fileNode(Buffer.alloc(8), [], 0)).length;
}

/** A zstd frame header that claims `size` bytes of zeros, as RLE blocks of 128 KiB (4 bytes each). */
export function zstdZeros(size: number): Buffer {
  const block = 128 * 1024;
  const blocks = Math.ceil(size / block);
  const out = Buffer.alloc(4 + 1 + 8 + blocks * 4);
  out.writeUInt32LE(0xfd2fb528, 0);
  out[4] = (3 << 6) | (1 << 5); // 8-byte content size, single segment
  out.writeBigUInt64LE(BigInt(size), 5);
  let pos = 13;
  for (let i = 0; i < blocks; i++) {
    const n = Math.min(block, size - i * block);
    const last = i === blocks - 1 ? 1 : 0;
    const hdr = last | (1 << 1) | (n << 3); // RLE block
    out[pos] = hdr & 255;
    out[pos + 1] = (hdr >> 8) & 255;
    out[pos + 2] = (hdr >> 16) & 255;
    out[pos + 3] = 0;
    pos += 4;
  }
  return out;
}

/** SHA-256 of `size` zero bytes, hashed in 64 MiB steps. */
export function zerosId(size: number): Buffer {
  const h = createHash('sha256');
  const z = Buffer.alloc(64 << 20);
  for (let left = size; left > 0; left -= z.length) h.update(left >= z.length ? z : z.subarray(0, left));
  return h.digest();
}

/**
 * The CBOR of a valid tree of `n` empty files named `f0000000`, `f0000001`, ... (8 bytes, so
 * sorted and unique), in pieces of about 16 MiB, as bigTreePieces: a directory at the entry cap.
 */
export function* namedTreePieces(n: number): Generator<Buffer> {
  const head = Buffer.concat([treeBytes([]).subarray(0, -1), Buffer.from([0x9a, n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255])]);
  yield head;
  const tpl = encodeCbor(fileNode(Buffer.alloc(8), [], 0));
  const at = tpl.indexOf(Buffer.from([0x48, 0, 0, 0, 0, 0, 0, 0, 0])) + 1;
  const per = Math.floor((16 << 20) / tpl.length);
  for (let i = 0; i < n; ) {
    const k = Math.min(per, n - i);
    const piece = Buffer.allocUnsafe(k * tpl.length);
    for (let j = 0; j < k; j++, i++) {
      tpl.copy(piece, j * tpl.length);
      piece.write(`f${String(i).padStart(7, '0')}`, j * tpl.length + at, 'latin1');
    }
    yield piece;
  }
}
