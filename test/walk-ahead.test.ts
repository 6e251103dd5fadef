// The walk ahead (ops/backup/walk-ahead.ts): the sources' folders listed and their entries' lstat
// taken while the repository opens, then taken by the backup's walk. It must list what the backup
// would and enter only what the backup enters, and a backup that takes its listings must save what
// a backup without it saves. Real files and a real repository (local, LevelDB) in a temporary folder.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { currentHost } from '../src/cli/host.js';
import { fsEncode } from '../src/core/bytes.js';
import { createSnapshot, type CreateOptions } from '../src/ops/backup/create.js';
import { WalkAhead } from '../src/ops/backup/walk-ahead.js';
import { locateAbs } from '../src/ops/tree/navigate.js';
import { Repository } from '../src/repo/repository.js';
import { looksEncrypted } from '../src/repo/keys.js';
import { nullSink } from '../src/core/progress.js';
import { describeTree } from './helpers/cli.js';
import { restoreSnapshot } from '../src/ops/restore/restore.js';
import type { StoredSnapshot } from '../src/model/snapshot.js';
import { cleanupScratch, scratchDir } from './helpers/maint.js';

afterAll(cleanupScratch);

const CACHEDIR_TAG = 'Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n';

/** A source tree with something of every kind a walk meets, and folders each exclude option leaves out. */
function sourceTree(base: string): string {
  const src = path.join(base, 'src');
  const mk = (rel: string, data = `${rel}\n`): void => {
    fs.mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
    fs.writeFileSync(path.join(src, rel), data);
  };
  mk('a/one.txt');
  mk('a/deeper/two.txt');
  mk('a/deeper/deepest/three.txt');
  mk('skipped-by-pattern/x.txt');
  mk('cache/CACHEDIR.TAG', CACHEDIR_TAG);
  mk('cache/y.txt');
  mk('marked/.nobackup');
  mk('marked/z.txt');
  mk('big.bin', 'b'.repeat(5000));
  mk('small.txt');
  fs.symlinkSync('a', path.join(src, 'link-to-a'));
  spawnSync('mkfifo', [path.join(src, 'fifo')]);
  // A name that is not UTF-8.
  fs.writeFileSync(Buffer.concat([fsEncode(src), Buffer.from('/caf\xe9.txt', 'latin1')]), 'latin1 name\n');
  return src;
}

const LEAVE_OUT = { excludes: ['skipped-by-pattern'], excludeCaches: true, excludeIfPresent: ['.nobackup'], excludeLargerThan: 1000 };

describe('the walk ahead', () => {
  it('lists every folder the backup enters, with each entry\'s lstat, in the backup\'s order; enters nothing the backup leaves out; each folder is taken once', async () => {
    const src = sourceTree(scratchDir('snap-ahead-'));
    const w = new WalkAhead({ paths: [src], cwd: '/', ...LEAVE_OUT });
    await w.done;
    const root = w.take(fsEncode(src));
    expect(root).toBeDefined();
    const names = fs.readdirSync(src, { encoding: 'buffer' }).sort(Buffer.compare);
    expect(root!.names).toEqual(names);
    root!.names.forEach((n, i) => {
      const st = fs.lstatSync(Buffer.concat([fsEncode(src), Buffer.from('/'), n]), { bigint: true });
      const got = root!.stats[i]!;
      for (const k of ['dev', 'ino', 'mode', 'nlink', 'uid', 'gid', 'rdev', 'size', 'mtimeNs', 'ctimeNs'] as const) expect(got[k]).toBe(st[k]);
      for (const k of ['isFile', 'isDirectory', 'isSymbolicLink', 'isFIFO', 'isSocket', 'isCharacterDevice', 'isBlockDevice'] as const) expect(got[k]()).toBe(st[k]());
    });
    expect(w.take(fsEncode(src))).toBeUndefined();
    for (const d of ['a', 'a/deeper', 'a/deeper/deepest']) expect(w.take(fsEncode(path.join(src, d)))?.names.length).toBeGreaterThan(0);
    // Left out by a pattern, a CACHEDIR.TAG, an --exclude-if-present name; a symlink is not followed.
    for (const d of ['skipped-by-pattern', 'cache', 'marked', 'link-to-a']) expect(w.take(fsEncode(path.join(src, d)))).toBeUndefined();
    expect(w.counts).toEqual({ listed: names.length + 2 + 2 + 1, taken: names.length + 2 + 2 + 1 });
  });

  it('stops at its limit, when stopped, and when the command is stopped; an entry that vanished is left to the backup', async () => {
    const src = sourceTree(scratchDir('snap-ahead-'));
    const count = fs.readdirSync(src).length;
    const limited = new WalkAhead({ paths: [src], cwd: '/', limit: count });
    await limited.done;
    expect(limited.take(fsEncode(src))?.names).toHaveLength(count); // the first folder whole, then no more
    expect(limited.take(fsEncode(path.join(src, 'a')))).toBeUndefined();
    // A folder reached in part is left to the backup whole.
    const part = new WalkAhead({ paths: [src], cwd: '/', limit: 3 });
    await part.done;
    expect(part.counts.listed).toBe(3);
    expect(part.take(fsEncode(src))).toBeUndefined();
    const stopped = new WalkAhead({ paths: [src], cwd: '/' });
    stopped.stop();
    await stopped.done;
    expect(stopped.counts.listed).toBe(0);
    const ac = new AbortController();
    ac.abort();
    const aborted = new WalkAhead({ paths: [src], cwd: '/', signal: ac.signal });
    await aborted.done;
    expect(aborted.counts.listed).toBe(0);
    // Listed, then removed before the backup takes it: the stat of what was there.
    const w = new WalkAhead({ paths: [src], cwd: '/' });
    await w.done;
    fs.rmSync(path.join(src, 'small.txt'));
    const root = w.take(fsEncode(src))!;
    expect(root.names.map(String)).toContain('small.txt');
    // A source that is not there, or not a folder: nothing listed (the backup says so itself).
    const none = new WalkAhead({ paths: [path.join(src, 'missing'), path.join(src, 'a', 'one.txt')], cwd: '/' });
    await none.done;
    expect(none.counts.listed).toBe(0);
  });

  it('a folder too large for one slice of work is listed across several, whole', async () => {
    const src = path.join(scratchDir('snap-ahead-'), 'src');
    fs.mkdirSync(path.join(src, 'many'), { recursive: true });
    for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(src, 'many', `f${i}`), '');
    fs.mkdirSync(path.join(src, 'many', 'sub'));
    const w = new WalkAhead({ paths: [src], cwd: '/' });
    await w.done;
    const many = w.take(fsEncode(path.join(src, 'many')))!;
    expect(many.names).toHaveLength(3001);
    expect(many.stats.every((st) => st !== undefined)).toBe(true);
    expect(many.names.map(String)).toEqual(fs.readdirSync(path.join(src, 'many')).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    expect(w.take(fsEncode(path.join(src, 'many', 'sub')))?.names).toEqual([]);
    // With room for fewer entries than its size says it may hold, it is not listed at all (a
    // folder of a million names would be read, then dropped): the backup lists it itself.
    for (let i = 3000; i < 6000; i++) fs.writeFileSync(path.join(src, 'many', `f${i}`), '');
    const size = fs.statSync(path.join(src, 'many')).size;
    expect(size).toBeGreaterThan(64 * 1024);
    const small = new WalkAhead({ paths: [src], cwd: '/', limit: Math.floor(size / 20) - 1 });
    await small.done;
    expect(small.take(fsEncode(path.join(src, 'many')))).toBeUndefined();
    expect(small.counts.listed).toBe(1); // the source folder: 'many' itself
    expect(small.take(fsEncode(src))?.names.map(String)).toEqual(['many']);
  });

  it('a walk older than a few seconds (a lock waited for) is not taken: the backup lists everything itself', async () => {
    const src = sourceTree(scratchDir('snap-ahead-'));
    const w = new WalkAhead({ paths: [src], cwd: '/' });
    await w.done;
    expect(w.claim(w.startedAt + 60_000)).toBe(false);
    expect(w.take(fsEncode(src))).toBeUndefined();
    const fresh = new WalkAhead({ paths: [src], cwd: '/' });
    await fresh.done;
    expect(fresh.claim()).toBe(true);
    expect(fresh.take(fsEncode(src))).toBeDefined();
  });

  it('with --one-file-system, a file system mounted inside a source is not entered', async (ctx) => {
    const src = sourceTree(scratchDir('snap-ahead-'));
    const mnt = path.join(src, 'a', 'mounted');
    fs.mkdirSync(mnt);
    if (process.getuid?.() !== 0 || spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]).status !== 0) ctx.skip('needs root to mount a tmpfs');
    try {
      fs.mkdirSync(path.join(mnt, 'inside'));
      const one = new WalkAhead({ paths: [src], cwd: '/', oneFileSystem: true });
      await one.done;
      expect(one.take(fsEncode(path.join(src, 'a')))?.names.map(String)).toContain('mounted');
      expect(one.take(fsEncode(mnt))).toBeUndefined();
      const all = new WalkAhead({ paths: [src], cwd: '/' });
      await all.done;
      expect(all.take(fsEncode(mnt))?.names.map(String)).toEqual(['inside']);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });
});

describe('where the CLI walks ahead', () => {
  it('an encrypted local repository (its key takes a while to derive) looks encrypted; a plain one, or none, does not', async () => {
    const base = scratchDir('snap-ahead-repos-');
    const plain = await Repository.init(path.join(base, 'plain'), { host: currentHost(), sink: nullSink });
    await plain.close();
    const pw = Buffer.from('walk-ahead-pw');
    const enc = await Repository.init(path.join(base, 'enc'), { host: currentHost(), sink: nullSink, password: async () => pw, indexCache: path.join(base, 'cache'), encrypt: { password: pw, scrypt: { N: 1024, r: 8, p: 1 } } });
    await enc.close();
    expect(looksEncrypted(path.join(base, 'enc'))).toBe(true);
    expect(looksEncrypted(path.join(base, 'plain'))).toBe(false);
    expect(looksEncrypted(path.join(base, 'none'))).toBe(false);
  });
});

describe('a backup that takes the walk ahead', () => {
  /** `leaveOut`: the exclude options (without them, every entry is backed up and restored). */
  async function setup(leaveOut = {}): Promise<{ base: string; src: string; repo: Repository; opts: CreateOptions; warnings: string[] }> {
    const base = scratchDir('snap-ahead-backup-');
    const src = sourceTree(base);
    const repo = await Repository.init(path.join(base, 'repo'), { host: currentHost(), sink: nullSink });
    const warnings: string[] = [];
    // Not SNAP_XATTR: the xattr binding cannot ask for the attributes of the name that is not UTF-8, said once per backup.
    const opts: CreateOptions = { paths: [src], cwd: base, host: currentHost(), program: 'snap test', ...leaveOut, sink: { warn: (w) => void (w.code !== 'SNAP_XATTR' && warnings.push(`${w.code} ${w.message}`)) } };
    return { base, src, repo, opts, warnings };
  }

  /** The tree of the source in a snapshot (the folders above it change with whatever else happens in them). */
  async function srcTree(repo: Repository, s: StoredSnapshot, src: string): Promise<string> {
    return (await locateAbs(repo, s.tree, fsEncode(src)))!.tree!.toString('hex');
  }

  /** The snapshot restored into a fresh folder, described (helpers/tree.ts). */
  async function restored(base: string, repo: Repository, s: StoredSnapshot, src: string): Promise<ReturnType<typeof describeTree>> {
    const to = fs.mkdtempSync(path.join(base, 'restored-'));
    const r = await restoreSnapshot(repo, s, { target: to, asRoot: false, sink: {} });
    expect(r.damaged).toEqual([]);
    return describeTree(path.join(to, src));
  }

  it('saves what a backup without it saves, first backup and unchanged, and counts as started when the walk did', async () => {
    const { base, src, repo, opts, warnings } = await setup(LEAVE_OUT);
    const plain = await createSnapshot(repo, opts);
    const w = new WalkAhead({ ...opts });
    await w.done;
    const ahead = await createSnapshot(repo, { ...opts, ahead: w });
    expect(w.counts.taken).toBe(w.counts.listed);
    expect(w.counts.taken).toBeGreaterThan(10);
    expect(await srcTree(repo, ahead.snapshot, src)).toBe(await srcTree(repo, plain.snapshot, src));
    expect(ahead.snapshot.summary.filesUnchanged).toBe(plain.snapshot.summary.totalFiles);
    expect(ahead.snapshot.summary.totalFiles).toBe(plain.snapshot.summary.totalFiles);
    expect(ahead.stats.lstat).toBe(plain.stats.lstat);
    expect(ahead.stats.readdir).toBe(plain.stats.readdir);
    // The record's time less its duration is not after the walk ahead started.
    expect(Date.parse(ahead.snapshot.time) - ahead.snapshot.summary.durationMs).toBeLessThanOrEqual(w.startedAt);
    // A first backup through it (a fresh repository: nothing in the files cache) saves the same tree.
    const other = await Repository.init(path.join(base, 'repo2'), { host: currentHost(), sink: nullSink });
    const w2 = new WalkAhead({ ...opts });
    await w2.done;
    const first = await createSnapshot(other, { ...opts, ahead: w2 });
    expect(w2.counts.taken).toBe(w2.counts.listed);
    expect(await srcTree(other, first.snapshot, src)).toBe(await srcTree(repo, plain.snapshot, src));
    expect(await restored(base, other, first.snapshot, src)).toEqual(await restored(base, repo, plain.snapshot, src));
    expect(warnings).toEqual([]);
    await other.close();
    await repo.close();
  });

  it('entries changed or removed after the walk ahead listed them: the backup saves them as listed, as a walk at that moment would, and the next backup sees every change', async () => {
    const { base, src, repo, opts, warnings } = await setup();
    const before = await createSnapshot(repo, opts);
    const w = new WalkAhead({ ...opts });
    await w.done;
    fs.rmSync(path.join(src, 'small.txt'));
    fs.rmSync(path.join(src, 'a', 'deeper'), { recursive: true });
    fs.writeFileSync(path.join(src, 'a', 'one.txt'), 'rewritten after the walk ahead listed it, and longer\n');
    fs.writeFileSync(path.join(src, 'new.txt'), 'made after the walk ahead listed the folder\n');
    const listed = await createSnapshot(repo, { ...opts, ahead: w });
    expect(await srcTree(repo, listed.snapshot, src)).toBe(await srcTree(repo, before.snapshot, src));
    // Its start is before the changes: whatever trusts its files' stamps sees them as later.
    expect(Date.parse(listed.snapshot.time) - listed.snapshot.summary.durationMs).toBeLessThanOrEqual(w.startedAt);
    const after = await createSnapshot(repo, opts);
    expect(after.snapshot.summary.filesChanged).toBe(1);
    expect(after.snapshot.summary.filesNew).toBe(1);
    expect(await restored(base, repo, after.snapshot, src)).toEqual(describeTree(src));
    expect(warnings).toEqual([]);
    await repo.close();
  });

  it('a file changed between the walk ahead and its read: stored as read, with a warning, and not trusted by the files cache', async () => {
    const { base, src, repo, opts, warnings } = await setup();
    const w = new WalkAhead({ ...opts });
    await w.done;
    // Listed at 2 bytes; read at more: a first backup reads every file.
    fs.appendFileSync(path.join(src, 'a', 'one.txt'), 'grown after it was listed\n');
    const first = await createSnapshot(repo, { ...opts, ahead: w });
    expect(warnings.filter((m) => m.startsWith('SNAP_CHANGED'))).toHaveLength(1);
    expect(warnings[0]).toContain('one.txt');
    const second = await createSnapshot(repo, opts);
    // Read again (the files cache did not take it), and now as it is.
    expect(second.snapshot.summary.filesNew).toBe(1);
    expect(second.snapshot.summary.bytesRead).toBe(fs.statSync(path.join(src, 'a', 'one.txt')).size);
    expect(await restored(base, repo, second.snapshot, src)).toEqual(describeTree(src));
    expect(first.snapshot.id).not.toBe(second.snapshot.id);
    await repo.close();
  });
});
