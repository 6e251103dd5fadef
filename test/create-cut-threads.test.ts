// A changed large file is cut and hashed by a compression thread (ObjectStore.chunkFile,
// compress-worker.ts chunkFile) while the walk goes on with the next files and directories
// (ops/backup/create.ts chunkedOnThread; the directory's tree is made when its files are done).
// Real repositories (local files, LevelDB), plain and encrypted, in a temporary folder.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { currentHost } from '../src/cli/host.js';
import { fsEncode } from '../src/core/bytes.js';
import type { Node } from '../src/model/node.js';
import { nullSink } from '../src/core/progress.js';
import { createSnapshot } from '../src/ops/backup/create.js';
import { checkRepository } from '../src/ops/maintain/check.js';
import { restoreSnapshot } from '../src/ops/restore/restore.js';
import { locateAbs } from '../src/ops/tree/navigate.js';
import { Repository } from '../src/repo/repository.js';
import { FileChunker } from '../src/store/file-chunker.js';
import { objectId } from '../src/store/object-codec.js';
import { describeTree } from './helpers/cli.js';
import { cleanupScratch, scratchDir } from './helpers/maint.js';
import { seededBytes } from './helpers/rng.js';

afterAll(cleanupScratch);

const MiB = 1024 * 1024;
const PASSWORD = 'cut-threads-pw-7';

async function newRepo(encrypted: boolean): Promise<{ base: string; repo: Repository }> {
  const base = scratchDir('snap-cut-threads-');
  const enc = encrypted ? { password: async () => Buffer.from(PASSWORD), indexCache: path.join(base, 'cache'), encrypt: { password: Buffer.from(PASSWORD), scrypt: { N: 1024, r: 8, p: 1 } } } : {};
  const repo = await Repository.init(path.join(base, 'repo'), { host: currentHost(), sink: nullSink, ...enc }, { packSize: 4 * MiB });
  return { base, repo };
}

/** The chunks the calling thread's chunker gives a file (what a backup without threads stores): id (hex) and length. */
function chunksHere(repo: Repository, file: string): { id: string; length: number }[] {
  const fd = fs.openSync(file, 'r');
  try {
    const c = new FileChunker(fd, repo.gear);
    const out: { id: string; length: number }[] = [];
    for (let chunk = c.next(); chunk; chunk = c.next()) out.push({ id: objectId(chunk, repo.objects.ctx).toString('hex'), length: chunk.length });
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

/** The entry a snapshot's tree holds at `p`, which must be of `type`. */
async function entryAt(repo: Repository, tree: Buffer, p: string, type: 'dir' | 'file'): Promise<Node> {
  const found = await locateAbs(repo, tree, fsEncode(p));
  expect(found?.node?.type).toBe(type);
  return found!.node!;
}

/** The tree id (hex) a snapshot's tree gives a folder. */
async function subtreeOf(repo: Repository, tree: Buffer, dir: string): Promise<string> {
  return (await entryAt(repo, tree, dir, 'dir')).tree!.toString('hex');
}

/** The chunk ids (hex) a snapshot's tree gives a file. */
async function chunksIn(repo: Repository, tree: Buffer, file: string): Promise<string[]> {
  return (await entryAt(repo, tree, file, 'file')).chunks!.map((c) => c.toString('hex'));
}

/**
 * A plain repository with one backup of a folder holding `big.bin` (`size` seeded bytes) and
 * `other.txt`: the options to back it up again, and the warnings' codes said since.
 */
async function backedUpOnce(size: number, seed: number): Promise<{ repo: Repository; src: string; f: string; warnings: string[]; opts: Parameters<typeof createSnapshot>[1] }> {
  const { base, repo } = await newRepo(false);
  const src = path.join(base, 'src');
  fs.mkdirSync(src);
  const f = path.join(src, 'big.bin');
  fs.writeFileSync(f, seededBytes(size, seed));
  fs.writeFileSync(path.join(src, 'other.txt'), 'kept\n');
  const warnings: string[] = [];
  const opts = { paths: [src], cwd: base, host: currentHost(), program: 'snap test', sink: { warn: (w: { code: string }) => void warnings.push(w.code) } };
  await createSnapshot(repo, opts);
  return { repo, src, f, warnings, opts };
}

/** Insert `bytes` in the middle of a file, keeping nothing else of its metadata. */
function insertMiddle(file: string, bytes: Buffer): void {
  const b = fs.readFileSync(file);
  const at = b.length >> 1;
  fs.writeFileSync(file, Buffer.concat([b.subarray(0, at), bytes, b.subarray(at)]));
}

describe('changed large files cut on the compression threads', () => {
  for (const encrypted of [false, true]) {
    it(`${encrypted ? 'encrypted' : 'plain'}: the chunks are those the calling thread would cut, only the new ones are stored, the walk goes on past their folders, and every snapshot restores exactly`, async () => {
      const { base, repo } = await newRepo(encrypted);
      try {
        const src = path.join(base, 'src');
        // More changed large files in one folder than are cut at once (CUTTING), a nested one, and
        // folders after them that the walk reaches while they are cut.
        const bigs: string[] = [];
        fs.mkdirSync(path.join(src, 'a-big'), { recursive: true });
        for (let i = 0; i < 6; i++) bigs.push(path.join(src, 'a-big', `f${i}.bin`));
        fs.mkdirSync(path.join(src, 'b-deep', 'x', 'y'), { recursive: true });
        bigs.push(path.join(src, 'b-deep', 'x', 'y', 'nested.bin'));
        bigs.forEach((f, i) => fs.writeFileSync(f, seededBytes(6 * MiB + i * 300_000, i + 1)));
        fs.writeFileSync(path.join(src, 'a-big', 'small.txt'), 'unchanged\n');
        for (let d = 0; d < 5; d++) {
          fs.mkdirSync(path.join(src, `c-small${d}`, 'sub'), { recursive: true });
          for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(src, `c-small${d}`, i % 2 ? 'sub' : '', `f${i}`), `file ${d}/${i}\n`.repeat(i + 1));
        }
        const opts = { paths: [src], cwd: base, host: currentHost(), program: 'snap test', sink: nullSink };
        const first = await createSnapshot(repo, opts);
        expect(first.stats.cutOnThreads).toBe(0); // new files are cut here
        const before = new Map<string, Set<string>>();
        for (const f of bigs) before.set(f, new Set(await chunksIn(repo, first.snapshot.tree, f)));
        const storedBefore = repo.objects.stats.rawBytesAdded;

        for (const [i, f] of bigs.entries()) insertMiddle(f, Buffer.from(`edit ${i}`));
        fs.appendFileSync(path.join(src, 'c-small3', 'f2'), 'changed too\n');
        const second = await createSnapshot(repo, opts);
        expect(second.stats.cutOnThreads).toBe(bigs.length);
        expect(second.snapshot.summary.filesChanged).toBe(bigs.length + 1);
        // Each file's chunks are those the calling thread cuts; only those the first backup lacked
        // (around each edit: the file keeps others) were stored, plus the trees and the small file.
        let fresh = 0;
        for (const f of bigs) {
          const here = chunksHere(repo, f);
          expect(await chunksIn(repo, second.snapshot.tree, f)).toEqual(here.map((c) => c.id));
          expect((await entryAt(repo, second.snapshot.tree, f, 'file')).size).toBe(fs.statSync(f).size);
          const kept = here.filter((c) => before.get(f)!.has(c.id));
          expect(kept.length).toBeGreaterThan(0);
          fresh += here.filter((c) => !before.get(f)!.has(c.id)).reduce((n, c) => n + c.length, 0);
        }
        const added = repo.objects.stats.rawBytesAdded - storedBefore;
        expect(added).toBeGreaterThanOrEqual(fresh);
        expect(added).toBeLessThan(fresh + 256 * 1024);
        // Nothing changed since: the files cache knows every cut file (nothing read, nothing cut).
        const third = await createSnapshot(repo, opts);
        expect(third.stats.cutOnThreads).toBe(0);
        expect(third.snapshot.summary.bytesRead).toBe(0);
        // The same tree below the source (the snapshot's root differs when a folder on the way to
        // it, such as the temporary folder other tests write in, changed meanwhile).
        expect(await subtreeOf(repo, third.snapshot.tree, src)).toEqual(await subtreeOf(repo, second.snapshot.tree, src));
        for (const s of [first.snapshot, second.snapshot]) {
          const to = path.join(scratchDir('snap-cut-threads-out-'), 'out');
          const r = await restoreSnapshot(repo, s, { target: to, asRoot: false, sink: {} });
          expect(r.damaged).toEqual([]);
          if (s === second.snapshot) expect(describeTree(path.join(to, src))).toEqual(describeTree(src));
        }
        expect((await checkRepository(repo, { readData: { kind: 'all' }, sink: nullSink })).problems).toEqual([]);
      } finally {
        await repo.close();
      }
    }, 120_000);
  }

  it('a file whose bytes changed between the thread reading it and the walk reading the new chunks again is stored as read then, under its own ids, and reported', async () => {
    const { repo, f, warnings, opts } = await backedUpOnce(3 * MiB, 9);
    try {
      fs.writeFileSync(f, seededBytes(3 * MiB, 10)); // every chunk new
      // The thread answers first; then the file changes again before the walk reads the new chunks.
      const chunkFile = repo.objects.chunkFile.bind(repo.objects);
      repo.objects.chunkFile = async (...a) => {
        const r = await chunkFile(...a);
        fs.writeFileSync(f, seededBytes(3 * MiB, 11));
        return r;
      };
      const second = await createSnapshot(repo, opts);
      expect(second.stats.cutOnThreads).toBe(1);
      expect(warnings).toContain('SNAP_CHANGED');
      const found = await locateAbs(repo, second.snapshot.tree, fsEncode(f));
      // The chunks cut from the second content hold the third one's bytes at the same places.
      const to = path.join(scratchDir('snap-cut-threads-out-'), 'out');
      const r = await restoreSnapshot(repo, second.snapshot, { target: to, asRoot: false, sink: {} });
      expect(r.damaged).toEqual([]);
      expect(fs.readFileSync(path.join(to, f)).equals(seededBytes(3 * MiB, 11))).toBe(true);
      expect(found!.node!.size).toBe(3 * MiB);
      expect((await checkRepository(repo, { readData: { kind: 'all' }, sink: nullSink })).problems).toEqual([]);
    } finally {
      await repo.close();
    }
  }, 120_000);

  it('a read error of the thread is the file\'s: reported, the file left out, the backup goes on', async () => {
    const { repo, src, f, warnings, opts } = await backedUpOnce(2 * MiB, 3);
    try {
      fs.appendFileSync(f, 'changed');
      // The thread reads a descriptor that reads fail on (a directory's): EISDIR comes back as its answer.
      const dirFd = fs.openSync(src, 'r');
      const chunkFile = repo.objects.chunkFile.bind(repo.objects);
      repo.objects.chunkFile = (_fd, size, gear) => chunkFile(dirFd, size, gear);
      try {
        const second = await createSnapshot(repo, opts);
        expect(second.stats.cutOnThreads).toBe(0);
        expect(warnings).toContain('EISDIR');
        expect(await locateAbs(repo, second.snapshot.tree, fsEncode(f))).toBeUndefined();
        expect((await locateAbs(repo, second.snapshot.tree, fsEncode(path.join(src, 'other.txt'))))?.node?.type).toBe('file');
      } finally {
        fs.closeSync(dirFd);
      }
    } finally {
      await repo.close();
    }
  }, 120_000);
});
