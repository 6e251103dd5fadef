// A backup's files-cache entries are written in batches once the data they name is durable
// (ops/backup/create.ts flushCache, store/object-store.ts durable): during the walk a batch waits
// beside it, without a flush, so packs of file data are written full and the walk does not stop
// for the storage. Real repository (local files, LevelDB) in a temporary folder. Crash safety of
// the batches (kill -9 while some are written and some wait): test/torture/crash.test.ts.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { currentHost } from '../src/cli/host.js';
import { nullSink } from '../src/core/progress.js';
import { createSnapshot } from '../src/ops/backup/create.js';
import { restoreSnapshot } from '../src/ops/restore/restore.js';
import { Repository } from '../src/repo/repository.js';
import { type CachedFile, decodeCachedFile, packCachedFiles, unpackCachedFiles } from '../src/index/files-cache.js';
import { describeTree } from './helpers/cli.js';
import { fsEncode } from '../src/core/bytes.js';
import { xattrBinding } from '../src/ops/fs/xattr-binding.js';
import { locateAbs } from '../src/ops/tree/navigate.js';
import { WalkAhead } from '../src/ops/backup/walk-ahead.js';
import type { StoredSnapshot } from '../src/model/snapshot.js';
import { cleanupScratch, scratchDir } from './helpers/maint.js';

afterAll(cleanupScratch);

const KiB = 1024;

/** Packs of the repository by the type of object they hold. */
async function packsByType(repo: Repository): Promise<{ blob: Set<string>; tree: Set<string> }> {
  const out = { blob: new Set<string>(), tree: new Set<string>() };
  for await (const [, loc] of repo.index.objects()) out[loc.type].add(loc.pack);
  return out;
}

describe('files-cache batches written beside the walk', () => {
  it('many batches in one backup: packs of file data are written full (no flush per batch); every entry is written, so the next backup reads nothing; both restore exactly', async () => {
    const base = scratchDir('snap-create-cache-');
    const src = path.join(base, 'src');
    for (let d = 0; d < 12; d++) {
      fs.mkdirSync(path.join(src, `d${d}`), { recursive: true });
      for (let i = 0; i < 25; i++) fs.writeFileSync(path.join(src, `d${d}`, `f${i}`), randomBytes(8 * KiB + i));
    }
    const repo = await Repository.init(path.join(base, 'repo'), { host: currentHost(), sink: nullSink }, { packSize: 64 * KiB });
    try {
      const opts = { paths: [src], cwd: base, host: currentHost(), program: 'snap test', sink: nullSink, cacheBatch: 20 };
      const first = await createSnapshot(repo, opts);
      expect(first.snapshot.summary.filesNew).toBe(300);
      // 300 files of about 8 KiB (2.4 MiB, incompressible) in 64 KiB packs: 38 packs of file data
      // written full, 40 here (the last one, and one more). A flush for each folder's batch (26
      // entries: a batch is written at the end of a folder once it holds 20) wrote each folder's
      // last pack half full: 48. (A batch is flushed when two wait already: slow storage.)
      const packs = await packsByType(repo);
      expect(packs.blob.size).toBeLessThanOrEqual(44);
      expect(packs.tree.size).toBeGreaterThan(0);
      // Every file's entry was written: the next backup reads no file.
      const second = await createSnapshot(repo, opts);
      expect(second.snapshot.summary.filesUnchanged).toBe(300);
      expect(second.snapshot.summary.bytesRead).toBe(0);
      for (const s of [first.snapshot, second.snapshot]) {
        const to = path.join(scratchDir('snap-create-cache-out-'), 'out');
        const r = await restoreSnapshot(repo, s, { target: to, asRoot: false, sink: {} });
        expect(r.damaged).toEqual([]);
        expect(describeTree(path.join(to, src))).toEqual(describeTree(src));
      }
    } finally {
      await repo.close();
    }
  }, 120_000);
});

describe('files-cache entries packed while they wait (packCachedFiles)', () => {
  it('every entry comes back as its name and its stored value, in order: names that are not UTF-8, no chunks, many chunks, large numbers; none at all', () => {
    const id = (n: number): Buffer => Buffer.alloc(32, n);
    const entries: [Buffer, CachedFile][] = [
      [Buffer.from([0x66, 0xff, 0xfe, 0x00, 0x2f]), { size: 0, mtimeNs: 0n, ctimeNs: 1n, ino: 2n, dev: 3n, chunks: [], noXattrs: false }],
      [Buffer.from('a'), { size: 3 * 2 ** 40, mtimeNs: 1_733_000_000_123_456_789n, ctimeNs: 2n ** 63n - 1n, ino: 2n ** 64n - 1n, dev: 66306n, chunks: [id(1), id(2), id(3)], noXattrs: true }],
      [Buffer.alloc(255, 0x78), { size: 12, mtimeNs: 5n, ctimeNs: 6n, ino: 7n, dev: 8n, chunks: Array.from({ length: 300 }, (_, i) => id(i % 256)), noXattrs: false }],
    ];
    const out = [...unpackCachedFiles(packCachedFiles(entries))];
    expect(out.map(([name]) => name)).toEqual(entries.map(([name]) => name));
    expect(out.map(([, value]) => decodeCachedFile(value))).toEqual(entries.map(([, f]) => f));
    expect([...unpackCachedFiles(packCachedFiles([]))]).toEqual([]);
    // A buffer cut short is refused, never read past its end.
    const packed = packCachedFiles(entries);
    expect(() => [...unpackCachedFiles(packed.subarray(0, packed.length - 1))]).toThrow(/end early/);
  });
});

describe('files named as sources (a --files-from list)', () => {
  it('use their folder\'s files-cache entries: the next backup reads none of them, a changed one is read again; the folder\'s other entries and its record stay', async () => {
    const base = scratchDir('snap-create-cache-files-');
    const src = path.join(base, 'src');
    fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(src, `f${i}`), randomBytes(4 * KiB + i));
    fs.writeFileSync(path.join(src, 'sub', 'g'), randomBytes(3 * KiB));
    const repo = await Repository.init(path.join(base, 'repo'), { host: currentHost(), sink: nullSink }, { packSize: 64 * KiB });
    try {
      const common = { cwd: base, host: currentHost(), program: 'snap test', sink: nullSink };
      // The whole folder first: its entries and its record.
      await createSnapshot(repo, { ...common, paths: [src] });
      const record = await repo.index.getDirRecord(Buffer.from(src));
      expect(record).toBeDefined();
      const files = [0, 3, 7, 12].map((i) => path.join(src, `f${i}`));
      const named = { ...common, paths: [...files, path.join(src, 'sub', 'g')] };
      // Before: every file named as a source was read again, every time.
      const first = await createSnapshot(repo, named);
      expect(first.snapshot.summary.filesUnchanged).toBe(5);
      expect(first.snapshot.summary.bytesRead).toBe(0);
      fs.appendFileSync(files[1]!, 'changed');
      const second = await createSnapshot(repo, named);
      expect(second.snapshot.summary.filesChanged).toBe(1);
      expect(second.snapshot.summary.bytesRead).toBe(fs.statSync(files[1]!).size);
      const third = await createSnapshot(repo, named);
      expect(third.snapshot.summary.filesUnchanged).toBe(5);
      expect(third.snapshot.summary.bytesRead).toBe(0);
      // The folder's other files kept their entries (nothing was taken for stale), its record is as it was.
      expect((await repo.index.filesInDir(Buffer.from(src))).size).toBe(20);
      expect((await repo.index.getDirRecord(Buffer.from(src)))?.tree.equals(record!.tree)).toBe(true);
      // The whole folder again: the changed file's entry, written by the named backup, vouches for it.
      const whole = await createSnapshot(repo, { ...common, paths: [src] });
      expect(whole.snapshot.summary.bytesRead).toBe(0);
      expect(whole.snapshot.summary.filesUnchanged).toBe(21);
      // A first backup of only named files (no entries yet anywhere under their folders) reads them.
      const other = await Repository.init(path.join(base, 'repo2'), { host: currentHost(), sink: nullSink }, { packSize: 64 * KiB });
      const fresh = await createSnapshot(other, named);
      expect(fresh.snapshot.summary.filesNew).toBe(5);
      const again = await createSnapshot(other, named);
      expect(again.snapshot.summary.bytesRead).toBe(0);
      for (const [r, s] of [[repo, third.snapshot], [other, again.snapshot]] as const) {
        const to = path.join(scratchDir('snap-create-cache-out-'), 'out');
        expect((await restoreSnapshot(r, s, { target: to, asRoot: false, sink: {} })).damaged).toEqual([]);
        for (const f of [...files, path.join(src, 'sub', 'g')]) expect(fs.readFileSync(path.join(to, f)).equals(fs.readFileSync(f))).toBe(true);
      }
      await other.close();
    } finally {
      await repo.close();
    }
  }, 120_000);
});

describe('files-cache entries and extended attributes', () => {
  const xb = xattrBinding();

  /** The extended attribute names of `file` in snapshot `s`, as its tree node holds them. */
  async function xattrNames(repo: Repository, s: StoredSnapshot, file: string): Promise<string[]> {
    const hit = await locateAbs(repo, s.tree, fsEncode(file));
    return (hit?.node.xattrs ?? []).map((x) => x.name.toString());
  }

  /** A files-cache entry for `file` as it is now on disk, naming `chunks`. */
  function entryNow(file: string, chunks: Buffer[], noXattrs: boolean): [Buffer, CachedFile] {
    const st = fs.lstatSync(file, { bigint: true });
    return [Buffer.from(path.basename(file)), { size: Number(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino, dev: st.dev, chunks, noXattrs }];
  }

  it.skipIf(!xb)('say when their file had none; the next backup of a changed folder lists none for such a file of the same stamp, lists them once its ctime moved, and entries of before the flag learn it [skipped without @napi-rs/xattr]', async (ctx) => {
    const base = scratchDir('snap-create-cache-xattr-');
    const src = path.join(base, 'src');
    fs.mkdirSync(src, { recursive: true });
    const f = (n: string): string => path.join(src, n);
    for (const n of ['plain', 'tagged', 'older', 'other']) fs.writeFileSync(f(n), `${n}\n`);
    try {
      xb!.setAttributeSync(f('tagged'), 'user.color', Buffer.from('blue'));
    } catch {
      ctx.skip(); // a file system without user attributes
    }
    const repo = await Repository.init(path.join(base, 'repo'), { host: currentHost(), sink: nullSink }, { packSize: 64 * KiB });
    try {
      const opts = { paths: [src], cwd: base, host: currentHost(), program: 'snap test', sink: nullSink };
      const dir = Buffer.from(src);
      await createSnapshot(repo, opts);
      const first = await repo.index.filesInDir(dir);
      expect(first.get('plain')?.noXattrs).toBe(true);
      expect(first.get('tagged')?.noXattrs).toBe(false);

      // 'plain' gets an attribute (its ctime moves), and an entry of its new stamp that says it has
      // none; 'older' an entry of its stamp as a snap of before the flag wrote it. The folder
      // changes ('other'), so the next backup makes its tree again.
      xb!.setAttributeSync(f('plain'), 'user.later', Buffer.from('added'));
      await repo.index.putFilesInDirs([{ dir, files: packCachedFiles([entryNow(f('plain'), first.get('plain')!.chunks, true), entryNow(f('older'), first.get('older')!.chunks, false)]), stale: [] }]);
      fs.appendFileSync(f('other'), 'changed\n');
      const second = await createSnapshot(repo, opts);
      expect(second.snapshot.summary.filesChanged).toBe(1);
      expect(second.snapshot.summary.filesUnchanged).toBe(3);
      // The entry vouched for 'plain': its attributes were not listed (what the ctime rule saves).
      expect(await xattrNames(repo, second.snapshot, f('plain'))).toEqual([]);
      expect(await xattrNames(repo, second.snapshot, f('tagged'))).toEqual(['user.color']);
      // 'older' was listed (its entry did not say) and its entry now says it has none.
      const after = await repo.index.filesInDir(dir);
      expect(after.get('older')?.noXattrs).toBe(true);
      expect(after.get('other')?.noXattrs).toBe(true);

      // As a backup that listed it would have left it: an entry of the stamp without the flag.
      await repo.index.putFilesInDirs([{ dir, files: packCachedFiles([entryNow(f('plain'), first.get('plain')!.chunks, false)]), stale: [] }]);
      fs.appendFileSync(f('other'), 'changed again\n');
      const third = await createSnapshot(repo, opts);
      expect(await xattrNames(repo, third.snapshot, f('plain'))).toEqual(['user.later']);
      expect((await repo.index.filesInDir(dir)).get('plain')?.noXattrs).toBe(false);

      // And by the real rule: an attribute set on a file of a folder that changes is seen, its
      // ctime having moved (e2e-xattr.test.ts: the same through the CLI).
      xb!.setAttributeSync(f('older'), 'user.now', Buffer.from('1'));
      fs.appendFileSync(f('other'), 'and again\n');
      const fourth = await createSnapshot(repo, opts);
      expect(await xattrNames(repo, fourth.snapshot, f('older'))).toEqual(['user.now']);
      // (its ctime is in its stamp: it is read again, as a file whose content changed)
      expect(fourth.snapshot.summary.bytesRead).toBe(fs.statSync(f('other')).size + fs.statSync(f('older')).size);
      const to = path.join(scratchDir('snap-create-cache-out-'), 'out');
      expect((await restoreSnapshot(repo, fourth.snapshot, { target: to, asRoot: false, sink: {} })).damaged).toEqual([]);
      expect(xb!.listAttributesSync(path.join(to, f('older')))).toEqual(['user.now']);
    } finally {
      await repo.close();
    }
  }, 120_000);
});

describe('small files read straight into the ring (ObjectStore.addRead)', () => {
  it('are stored exactly, each content once; one that grew after its lstat is stored as read, with a warning, and read again by the next backup', async () => {
    const base = scratchDir('snap-create-addread-');
    const src = path.join(base, 'src');
    fs.mkdirSync(path.join(src, 'small'), { recursive: true });
    // More than the first MiB a store compresses itself (then the threads and the ring are used).
    fs.writeFileSync(path.join(src, 'big.bin'), randomBytes(3 * 1024 * KiB));
    const some = Array.from({ length: 40 }, (_, i) => randomBytes(100 + i * 997));
    for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(src, 'small', `f${i}`), some[i % some.length]!);
    const grow = path.join(src, 'small', 'grow.txt');
    fs.writeFileSync(grow, randomBytes(5000));
    const warnings: string[] = [];
    const sink = { ...nullSink, warn: (w: { code: string; path?: string }) => void warnings.push(`${w.code} ${w.path ?? ''}`) };
    const repo = await Repository.init(path.join(base, 'repo'), { host: currentHost(), sink: nullSink }, { packSize: 256 * KiB });
    try {
      const opts = { paths: [src], cwd: base, host: currentHost(), program: 'snap test', sink };
      // Listed (lstat) at 5000 bytes, read at more.
      const w = new WalkAhead({ ...opts });
      await w.done;
      fs.appendFileSync(grow, 'grown after it was listed\n');
      const first = await createSnapshot(repo, { ...opts, ahead: w });
      expect(repo.objects.stats.readIntoRing).toBeGreaterThanOrEqual(250);
      expect(first.snapshot.summary.filesNew).toBe(302);
      // 40 distinct small contents, the big file's chunks, trees: the repeats were not stored again.
      expect(repo.objects.stats.objectsAdded).toBeLessThan(60);
      expect(warnings).toEqual([`SNAP_CHANGED ${grow}`]);
      const to = path.join(scratchDir('snap-create-cache-out-'), 'out');
      expect((await restoreSnapshot(repo, first.snapshot, { target: to, asRoot: false, sink: {} })).damaged).toEqual([]);
      const got = describeTree(path.join(to, src));
      const want = describeTree(src);
      // The grown file has its bytes as read (all of them: its size is taken when it is opened)
      // and the time its lstat saw.
      expect(fs.readFileSync(path.join(to, grow)).equals(fs.readFileSync(grow))).toBe(true);
      for (const m of [got, want]) expect(m.delete(Buffer.from('small/grow.txt').toString('hex'))).toBe(true);
      expect(got).toEqual(want);
      // Not trusted by the files cache: read again (and only it).
      const second = await createSnapshot(repo, opts);
      expect(second.snapshot.summary.bytesRead).toBe(fs.statSync(grow).size);
      expect(second.snapshot.summary.filesUnchanged).toBe(301);
    } finally {
      await repo.close();
    }
  }, 120_000);
});
