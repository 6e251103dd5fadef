// New large files are read in the lane, one after the other, while the walk goes on with the next
// files and directories (ops/backup/create.ts Archiver.lane; a directory's tree is made once its
// lane files are done). Real repositories (local files, LevelDB), plain and encrypted, in a
// temporary folder; the compression threads are real.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { currentHost } from '../src/cli/host.js';
import { fsEncode } from '../src/core/bytes.js';
import { SnapError, isSnapError } from '../src/core/errors.js';
import { nullSink } from '../src/core/progress.js';
import type { Node } from '../src/model/node.js';
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
const PASSWORD = 'lane-pw-5';

async function newRepo(encrypted: boolean): Promise<{ base: string; repo: Repository }> {
  const base = scratchDir('snap-lane-');
  const enc = encrypted ? { password: async () => Buffer.from(PASSWORD), indexCache: path.join(base, 'cache'), encrypt: { password: Buffer.from(PASSWORD), scrypt: { N: 1024, r: 8, p: 1 } } } : {};
  const repo = await Repository.init(path.join(base, 'repo'), { host: currentHost(), sink: nullSink, ...enc }, { packSize: 4 * MiB });
  return { base, repo };
}

/** The chunk ids (hex) the calling thread's chunker gives a file: what a backup without threads stores. */
function chunksHere(repo: Repository, file: string): string[] {
  const fd = fs.openSync(file, 'r');
  try {
    const c = new FileChunker(fd, repo.gear);
    const out: string[] = [];
    for (let chunk = c.next(); chunk; chunk = c.next()) out.push(objectId(chunk, repo.objects.ctx).toString('hex'));
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

/** The entry a snapshot's tree holds at `p` (undefined: none). */
async function entryAt(repo: Repository, tree: Buffer, p: string): Promise<Node | undefined> {
  return (await locateAbs(repo, tree, fsEncode(p)))?.node;
}

/**
 * Run `before` ahead of each of the store's addHashing calls (the lane's chunks), with the call's
 * number from 1; a throw is that call's failure. Returns how many calls were made so far.
 */
function beforeAddHashing(repo: Repository, before: (call: number) => Promise<void> | void): () => number {
  let calls = 0;
  const addHashing = repo.objects.addHashing.bind(repo.objects);
  repo.objects.addHashing = async (...a) => {
    await before(++calls);
    return addHashing(...a);
  };
  return () => calls;
}

/**
 * A source folder of `bigs` new large files in one folder (more than the lane queues at once),
 * one nested deeper, and folders of small files after them that the walk reaches meanwhile.
 */
function makeSource(base: string, bigs: number): { src: string; large: string[] } {
  const src = path.join(base, 'src');
  const large: string[] = [];
  fs.mkdirSync(path.join(src, 'a-big'), { recursive: true });
  for (let i = 0; i < bigs; i++) large.push(path.join(src, 'a-big', `f${String(i).padStart(2, '0')}.bin`));
  fs.mkdirSync(path.join(src, 'b-deep', 'x', 'y'), { recursive: true });
  large.push(path.join(src, 'b-deep', 'x', 'y', 'nested.bin'));
  large.forEach((f, i) => fs.writeFileSync(f, seededBytes(MiB + 100_000 + i * 150_000, i + 1)));
  fs.writeFileSync(path.join(src, 'a-big', 'small.txt'), 'small beside the large ones\n');
  fs.writeFileSync(path.join(src, 'b-deep', 'x', 'one.txt'), 'one\n');
  for (let d = 0; d < 5; d++) {
    fs.mkdirSync(path.join(src, `c-small${d}`, 'sub'), { recursive: true });
    for (let i = 0; i < 30; i++) fs.writeFileSync(path.join(src, `c-small${d}`, i % 2 ? 'sub' : '', `f${i}`), `file ${d}/${i}\n`.repeat(i * 40 + 1));
  }
  return { src, large };
}

describe('new large files read in the lane beside the walk', () => {
  for (const encrypted of [false, true]) {
    it(`${encrypted ? 'encrypted' : 'plain'}: every large file goes through the lane, its chunks are those the calling thread cuts, and the snapshot restores exactly`, async () => {
      const { base, repo } = await newRepo(encrypted);
      try {
        expect(repo.objects.threads).toBeGreaterThan(0);
        const { src, large } = makeSource(base, 18);
        const opts = { paths: [src], cwd: base, host: currentHost(), program: 'snap test', sink: nullSink };
        const first = await createSnapshot(repo, opts);
        expect(first.stats.inLane).toBe(large.length);
        expect(first.snapshot.summary.filesNew).toBe(large.length + 2 + 5 * 30);
        for (const f of large) {
          const node = await entryAt(repo, first.snapshot.tree, f);
          expect(node?.type).toBe('file');
          expect(node!.size).toBe(fs.statSync(f).size);
          expect(node!.chunks!.map((c) => c.toString('hex'))).toEqual(chunksHere(repo, f));
        }
        const to = path.join(scratchDir('snap-lane-out-'), 'out');
        const r = await restoreSnapshot(repo, first.snapshot, { target: to, asRoot: false, sink: {} });
        expect(r.damaged).toEqual([]);
        expect(describeTree(path.join(to, src))).toEqual(describeTree(src));
        expect((await checkRepository(repo, { readData: { kind: 'all' }, sink: nullSink })).problems).toEqual([]);
        // The files cache took every lane file: the next backup reads nothing and makes the same tree.
        const second = await createSnapshot(repo, opts);
        expect(second.stats.inLane).toBe(0);
        expect(second.snapshot.summary.bytesRead).toBe(0);
        expect((await entryAt(repo, second.snapshot.tree, src))!.tree!.equals((await entryAt(repo, first.snapshot.tree, src))!.tree!)).toBe(true);
      } finally {
        await repo.close();
      }
    }, 120_000);
  }

  it('a large file gone before its turn in the lane is a warning and left out; the others are stored', async () => {
    const { base, repo } = await newRepo(false);
    try {
      const { src, large } = makeSource(base, 3);
      const gone = large[1]!;
      // The first lane file's first chunk: the second one is removed before the lane opens it.
      beforeAddHashing(repo, () => fs.rmSync(gone, { force: true }));
      const warnings: { code: string; path?: string; message: string }[] = [];
      const first = await createSnapshot(repo, { paths: [src], cwd: base, host: currentHost(), program: 'snap test', sink: { warn: (w) => void warnings.push(w) } });
      expect(first.stats.inLane).toBe(large.length);
      // Said when the lane opened it (and by the walk too when it listed its attributes after it went).
      expect(warnings.length).toBeGreaterThan(0);
      for (const w of warnings) expect([w.code, w.path]).toEqual(['ENOENT', gone]);
      expect(warnings.some((w) => w.message.includes('cannot read'))).toBe(true);
      expect(await entryAt(repo, first.snapshot.tree, gone)).toBeUndefined();
      for (const f of large.filter((x) => x !== gone)) expect((await entryAt(repo, first.snapshot.tree, f))!.chunks!.map((c) => c.toString('hex'))).toEqual(chunksHere(repo, f));
      expect((await checkRepository(repo, { readData: { kind: 'all' }, sink: nullSink })).problems).toEqual([]);
    } finally {
      await repo.close();
    }
  }, 120_000);

  it('a store failure in the lane ends the backup with it: no snapshot, and the lane reads nothing more', async () => {
    const { base, repo } = await newRepo(true);
    try {
      const { src } = makeSource(base, 6);
      const calls = beforeAddHashing(repo, (n) => {
        if (n === 3) throw new SnapError('SNAP_IO', 'injected: the disk went away');
      });
      const err = await createSnapshot(repo, { paths: [src], cwd: base, host: currentHost(), program: 'snap test', sink: nullSink }).catch((e: unknown) => e);
      expect(isSnapError(err, 'SNAP_IO')).toBe(true);
      expect((err as Error).message).toContain('injected');
      const after = calls();
      await new Promise((r) => setTimeout(r, 300));
      expect(calls()).toBe(after);
      expect(await repo.listSnapshots()).toEqual([]);
      expect((await checkRepository(repo, { sink: nullSink })).problems).toEqual([]);
    } finally {
      await repo.close();
    }
  }, 120_000);

  it('a failure of the walk beside the lane ends the backup with it, and the lane stops at its next chunk', async () => {
    const { base, repo } = await newRepo(false);
    try {
      const { src, large } = makeSource(base, 6);
      // Backed up once without the large files, so that the second backup asks the files cache of every folder.
      const aside = path.join(base, 'aside');
      fs.renameSync(path.join(src, 'a-big'), aside);
      const opts = { paths: [src], cwd: base, host: currentHost(), program: 'snap test', sink: nullSink };
      await createSnapshot(repo, opts);
      fs.renameSync(aside, path.join(src, 'a-big'));
      // Each chunk of the lane takes 20 ms more, so that the walk fails while the lane has files left.
      const calls = beforeAddHashing(repo, () => new Promise((r) => setTimeout(r, 20)));
      // The index fails the walk at a folder after the large files' one, while they are in the lane.
      const getDirRecord = repo.index.getDirRecord.bind(repo.index);
      repo.index.getDirRecord = (dir) => {
        if (dir.toString().endsWith('c-small1')) return Promise.reject(new SnapError('SNAP_IO', 'injected: the index went away'));
        return getDirRecord(dir);
      };
      const err = await createSnapshot(repo, opts).catch((e: unknown) => e);
      expect((err as Error).message).toContain('injected');
      const after = calls();
      await new Promise((r) => setTimeout(r, 500));
      expect(calls()).toBe(after);
      // Not every large file was read: the lane stopped.
      const chunks = large.reduce((n, f) => n + chunksHere(repo, f).length, 0);
      expect(after).toBeLessThan(chunks);
      expect((await repo.listSnapshots()).length).toBe(1);
    } finally {
      await repo.close();
    }
  }, 120_000);

  it('a backup stopped while files wait in the lane ends with the reason, saves nothing, and the lane reads nothing more', async () => {
    const { base, repo } = await newRepo(false);
    try {
      const { src } = makeSource(base, 6);
      const stop = new AbortController();
      const calls = beforeAddHashing(repo, (n) => {
        if (n === 2) stop.abort(new SnapError('SNAP_INTERRUPTED', 'stopped by the test'));
      });
      const err = await createSnapshot(repo, { paths: [src], cwd: base, host: currentHost(), program: 'snap test', sink: nullSink, signal: stop.signal }).catch((e: unknown) => e);
      expect(isSnapError(err, 'SNAP_INTERRUPTED')).toBe(true);
      expect((err as Error).message).toBe('stopped by the test');
      const after = calls();
      await new Promise((r) => setTimeout(r, 300));
      expect(calls()).toBe(after);
      expect(after).toBeLessThan(20);
      expect(await repo.listSnapshots()).toEqual([]);
      expect((await checkRepository(repo, { readData: { kind: 'all' }, sink: nullSink })).problems).toEqual([]);
    } finally {
      await repo.close();
    }
  }, 120_000);
});
