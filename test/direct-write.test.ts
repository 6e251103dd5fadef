// Packs written past the page cache (core/direct-write.ts, LocalBackend's directWrites): every
// size round-trips byte for byte (whole 4 KiB blocks direct, the rest through the page cache),
// from views of shared memory at odd offsets as the object store hands them over, several at
// once; a file system or system that refuses O_DIRECT gets the blob the ordinary way, and so do
// all later ones; an error of the write itself is the put's error, leaving nothing behind; a full
// disk is SNAP_NO_SPACE. And a backup through the repository's own backend writes its packs this
// way and restores exactly.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../src/backend/local.js';
import { DIRECT_MIN, DIRECT_PIECE, DirectWriter } from '../src/core/direct-write.js';
import { isSnapError } from '../src/core/errors.js';
import { seededBytes } from './backend/conformance.js';
import { snap, trackedDirs } from './helpers/cli.js';
import { assertSameTree, manifest } from './helpers/tree.js';

const dirs = trackedDirs('direct-write');
afterAll(() => dirs.cleanup());

const MiB = 1 << 20;

/** Whether a file in `dir` can be written with O_DIRECT from some 16-byte step of a buffer (asked here, not of the code under test). */
function directWorksIn(dir: string): boolean {
  const p = path.join(dir, 'probe');
  const fd = fs.openSync(p, 'w');
  try {
    const d = fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_DIRECT);
    try {
      const b = Buffer.alloc(8192);
      for (let off = 0; off < 4096; off += 16) {
        try {
          fs.writeSync(d, b, off, 4096, 0);
          return true;
        } catch {
          // not aligned at this step
        }
      }
      return false;
    } finally {
      fs.closeSync(d);
    }
  } catch {
    return false;
  } finally {
    fs.closeSync(fd);
    fs.rmSync(p);
  }
}

/** Files in `dir` (recursively) whose names are temporary (a put that failed must leave none). */
function temps(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((n) => path.basename(n).startsWith('.tmp-'));
}

function einval(): Error {
  return Object.assign(new Error('EINVAL: invalid argument, open'), { code: 'EINVAL' });
}

describe('LocalBackend with direct writes', () => {
  it('round-trips every size byte for byte, from shared memory at odd offsets, several at once', async () => {
    const root = dirs.make('direct-');
    const b = new LocalBackend(path.join(root, 'repo'), { directWrites: true });
    const sizes = [DIRECT_MIN - 1, DIRECT_MIN, DIRECT_MIN + 1, DIRECT_PIECE, DIRECT_PIECE + 4095, 2 * DIRECT_PIECE + 4096, 16 * MiB + 12345, 9 * MiB + 1];
    for (const [i, size] of sizes.entries()) {
      const data = seededBytes(7, `blob-${i}`, size);
      // As the object store hands a pack over: a view of a SharedArrayBuffer, not at its start.
      const shared = new SharedArrayBuffer(size + 1000);
      const view = Buffer.from(shared, 333 + (i % 3), size);
      data.copy(view);
      await b.put(`data/0${i}/blob`, view);
      expect((await b.get(`data/0${i}/blob`)).equals(data), `size ${size}`).toBe(true);
    }
    // Four at once: each its own bounce buffer.
    const many = [0, 1, 2, 3].map((i) => seededBytes(8, `many-${i}`, 5 * MiB + i * 777));
    await Promise.all(many.map((d, i) => b.put(`data/1${i}/many`, d)));
    for (const [i, d] of many.entries()) expect((await b.get(`data/1${i}/many`)).equals(d)).toBe(true);
    // create-if-absent publishes the same way.
    const once = seededBytes(9, 'once', 3 * MiB + 5);
    expect(await b.putIfAbsent('data/20/once', once)).toBe(true);
    expect(await b.putIfAbsent('data/20/once', seededBytes(9, 'other', 3 * MiB))).toBe(false);
    expect((await b.get('data/20/once')).equals(once)).toBe(true);
    expect(temps(root)).toEqual([]);
    // Both putIfAbsent calls write their blob (the second finds the name taken only when it publishes).
    const large = sizes.filter((s) => s >= DIRECT_MIN).length + many.length + 2;
    if (directWorksIn(root)) {
      expect(b.direct!.stats.blobs).toBe(large);
      expect(b.direct!.stats.fellBack).toBe(0);
    } else {
      expect(b.direct!.stats.blobs).toBe(0);
      expect(b.direct!.off).toBe(true);
    }
  });

  it('a file system that refuses O_DIRECT gets the blob as before, and every later one', async () => {
    const root = dirs.make('direct-');
    let asked = 0;
    const w = new DirectWriter(() => {
      asked++;
      throw einval();
    });
    const b = new LocalBackend(path.join(root, 'repo'), { directWrites: w });
    const one = seededBytes(10, 'one', 6 * MiB + 3);
    const two = seededBytes(10, 'two', 2 * MiB);
    await b.put('data/00/one', one);
    await b.put('data/00/two', two);
    expect((await b.get('data/00/one')).equals(one)).toBe(true);
    expect((await b.get('data/00/two')).equals(two)).toBe(true);
    expect(w.off).toBe(true);
    expect(asked).toBe(1);
    expect(w.stats).toEqual({ blobs: 0, bytes: 0, fellBack: 1 });
  });

  it('an error of the direct write is the put\'s error, and leaves no blob and no temporary file', async () => {
    const root = dirs.make('direct-');
    // The file reopened for reading only: every write to it fails (EBADF), which is no reason to
    // write another way but a failure to report.
    const w = new DirectWriter((fd) => fs.openSync(`/proc/self/fd/${fd}`, fs.constants.O_RDONLY));
    const b = new LocalBackend(path.join(root, 'repo'), { directWrites: w });
    const err = await b.put('data/00/bad', seededBytes(11, 'bad', 3 * MiB)).catch((e: unknown) => e);
    expect(isSnapError(err, 'SNAP_IO')).toBe(true);
    expect(String((err as Error).message)).toContain('data/00/bad');
    expect(await b.exists('data/00/bad')).toBe(false);
    expect(temps(root)).toEqual([]);
  });

  it('a full disk is SNAP_NO_SPACE, with no temporary file left', async (ctx) => {
    if (process.getuid?.() !== 0) ctx.skip('needs root to mount a tmpfs');
    const mnt = dirs.make('direct-full-');
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'tmpfs', mnt]).status !== 0) ctx.skip('cannot mount a tmpfs here');
    try {
      const b = new LocalBackend(path.join(mnt, 'repo'), { directWrites: true });
      const err = await b.put('data/00/big', seededBytes(12, 'big', 16 * MiB)).catch((e: unknown) => e);
      expect(isSnapError(err, 'SNAP_NO_SPACE')).toBe(true);
      expect(temps(mnt)).toEqual([]);
      // Room again: the next blob is written (direct or not, as this tmpfs allows).
      const ok = seededBytes(12, 'ok', 2 * MiB + 1);
      await b.put('data/00/ok', ok);
      expect((await b.get('data/00/ok')).equals(ok)).toBe(true);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });
});

describe('a backup through the repository writes its packs direct', () => {
  it('its packs are not in the page cache after it; checked with --read-data and restored exactly', async (ctx) => {
    const root = dirs.make('direct-e2e-');
    const src = path.join(root, 'src');
    fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(src, 'random.bin'), seededBytes(13, 'random', 40 * MiB + 7));
    fs.writeFileSync(path.join(src, 'sub', 'text.txt'), 'a line of text\n'.repeat(300_000));
    fs.writeFileSync(path.join(src, 'small'), 'x');
    const repo = path.join(root, 'repo');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const made = snap(['--repo', repo, 'create', src]);
    expect(made.code, made.stderr).toBe(0);
    const packs = fs
      .readdirSync(path.join(repo, 'data'), { recursive: true, encoding: 'utf8' })
      .filter((n) => /[0-9a-f]{64}$/.test(n))
      .map((n) => path.join(repo, 'data', n));
    const large = packs.filter((p) => fs.statSync(p).size >= DIRECT_MIN);
    expect(large.length).toBeGreaterThanOrEqual(2);
    expect(temps(repo)).toEqual([]);
    // Right after the backup, before anything reads them: a pack written direct has at most its
    // last partial page in the page cache (util-linux fincore counts the resident pages).
    const resident = spawnSync('fincore', ['--raw', '--noheadings', '--output', 'PAGES', ...large], { encoding: 'utf8' });
    const check = snap(['--repo', repo, 'check', '--read-data']);
    expect(check.code, check.stderr).toBe(0);
    const out = path.join(root, 'out');
    const r = snap(['--repo', repo, 'restore', 'latest', out]);
    expect(r.code, r.stderr).toBe(0);
    assertSameTree(manifest(src), manifest(path.join(out, src)), 'restored');
    if (resident.status !== 0) ctx.skip('no fincore here to count resident pages');
    if (!directWorksIn(root)) ctx.skip('this file system does not take O_DIRECT');
    const pages = resident.stdout.trim().split('\n').map(Number);
    expect(pages).toHaveLength(large.length);
    for (const n of pages) expect(n).toBeLessThanOrEqual(2);
  });
});
