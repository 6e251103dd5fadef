// Hidden directories (docs/design.md, "Restore"): a directory made inside one the restore made is
// created under a `.snap-restore-*` name, filled with its files under their own names, and renamed
// to its own name once complete; the first level made in a folder that existed keeps its own name
// and temporary names per file. What a killed restore leaves (such a directory, with files that may
// be cut short) is removed by the next restore into the same target, without following a symlink.
// Real repositories, real files, the writer threads.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { currentHost } from '../src/cli/host.js';
import { nullSink } from '../src/core/progress.js';
import { restoreSnapshot } from '../src/ops/restore/restore.js';
import { Repository } from '../src/repo/repository.js';
import { describeTree, snap } from './helpers/cli.js';
import { cleanupScratch, create, scratchDir } from './helpers/maint.js';

afterAll(cleanupScratch);

const TMP = '.snap-restore-';

/** Every `.snap-restore-*` entry under `dir`. */
function temps(dir: string): string[] {
  return spawnSync('find', [dir, '-name', `${TMP}*`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
}

/** Folders three deep with small files, a file of several chunks, hard links across folders, a symlink, a read-only folder. */
function source(src: string): void {
  const w = (rel: string, data: Buffer | string, mode = 0o644): void => {
    fs.mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
    fs.writeFileSync(path.join(src, rel), data, { mode });
  };
  w('top.txt', 'at the top\n');
  for (const d of ['a', 'a/b', 'a/b/c', 'x']) for (let i = 0; i < 5; i++) w(`${d}/f${i}`, `${d} ${i}\n`.repeat(i * 50 + 1));
  w('a/b/large.bin', randomBytes(3 * 1024 * 1024 + 5));
  w('a/private', 'mode 0400\n', 0o400);
  fs.linkSync(path.join(src, 'a', 'f1'), path.join(src, 'x', 'same-as-a-f1'));
  fs.symlinkSync('../a/b', path.join(src, 'x', 'to-b'));
  fs.chmodSync(path.join(src, 'a', 'b', 'c'), 0o555);
  const old = new Date('2020-02-02T02:02:02Z');
  for (const d of ['a/b/c', 'a/b', 'a', 'x']) fs.utimesSync(path.join(src, d), old, old);
}

/** A repository holding one snapshot of source(): its folders, what the source looks like, the snapshot, a target to restore into. */
function backedUp(): { base: string; repo: string; src: string; expected: ReturnType<typeof describeTree>; id: string; target: string } {
  const base = scratchDir('snap-restore-hidden-');
  const repo = path.join(base, 'repo');
  expect(snap(['--repo', repo, 'init']).code).toBe(0);
  const src = path.join(base, 'src');
  source(src);
  return { base, repo, src, expected: describeTree(src), id: create(repo, src).id, target: path.join(base, 'out') };
}

describe('restore: hidden directories', () => {
  it('below the first folder it makes, folders are made under a temporary name and renamed once complete; the tree restores exactly, nothing temporary is left', async () => {
    const { repo, src, expected, id, target } = backedUp();
    // Each folder the restore makes, as the kernel names it the moment it is made; and whether its
    // own path existed then.
    const made: { at: string; ownPathThere: boolean }[] = [];
    const r = await Repository.open(repo, { host: currentHost(), sink: nullSink });
    try {
      const s = (await r.listSnapshots()).find((x) => x.id === id)!;
      const res = await restoreSnapshot(r, s, {
        target,
        asRoot: process.getuid?.() === 0,
        sink: nullSink,
        testPause: async ({ kind, path: p }) => {
          if (kind !== 'dir') return;
          const at = p.toString();
          made.push({ at, ownPathThere: fs.existsSync(at) });
        },
      });
      expect(res.damaged).toEqual([]);
      expect(res.warnings).toBe(0);
    } finally {
      await r.close();
    }
    // The first level below the target (which existed: the restore made it) has its own name; every
    // folder below it was made under a temporary name, inside a parent under one too from the third
    // level on.
    const first = path.join(target, src.split('/')[1]!);
    expect(made[0]).toEqual({ at: first, ownPathThere: true });
    const below = made.slice(1);
    const levels = src.split('/').filter(Boolean).length - 1 + 4; // the source's path, then src, a, a/b, a/b/c (and x)
    expect(below.length).toBe(levels);
    for (const m of below) {
      expect(path.basename(m.at), m.at).toMatch(/^\.snap-restore-[0-9a-f]{8}-\d+-[0-9a-f]{8}-\d+$/); // host, pid, run, number (temp-names.ts)
      expect(m.ownPathThere).toBe(true); // the name the kernel gives is where it is
    }
    expect(below.filter((m) => path.basename(path.dirname(m.at)).startsWith(TMP)).length).toBe(levels - 1);
    // Then everything has its own name, as recorded (the read-only folder, the folders' times).
    expect(describeTree(path.join(target, src))).toEqual(expected);
    expect(temps(target)).toEqual([]);
    expect(fs.statSync(path.join(target, src, 'x', 'same-as-a-f1')).ino).toBe(fs.statSync(path.join(target, src, 'a', 'f1')).ino);
    fs.chmodSync(path.join(target, src, 'a', 'b', 'c'), 0o755); // for the scratch folder's removal
  });

  it('a hidden folder a killed restore left (files, a folder in it, a symlink out of it) is removed by the next restore into that target; what the symlink points to is untouched', () => {
    const { base, repo, src, expected, id, target } = backedUp();
    const parent = path.join(target, path.dirname(src));
    fs.mkdirSync(parent, { recursive: true });
    // What a restore killed with SIGKILL leaves in a folder that exists: a hidden folder holding
    // a complete file, one cut short under its own name, a folder, and a symlink to a folder
    // outside whose contents must survive.
    const outside = path.join(base, 'outside');
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'keep'), 'not the restore\'s\n');
    const left = path.join(parent, `${TMP}0badc0de-3`);
    fs.mkdirSync(path.join(left, `${TMP}0badc0de-4`), { recursive: true });
    fs.writeFileSync(path.join(left, 'f0'), 'complete\n');
    fs.writeFileSync(path.join(left, 'large.bin'), 'cut sh');
    fs.writeFileSync(path.join(left, `${TMP}0badc0de-4`, 'f1'), 'deeper\n');
    fs.symlinkSync(outside, path.join(left, 'link-out'));
    fs.symlinkSync(outside, path.join(parent, `${TMP}0badc0de-5`)); // a leftover name that is a symlink: removed as an entry
    const r = snap(['--repo', repo, 'restore', id, target]);
    expect(r.code, r.stderr).toBe(0);
    expect(temps(target)).toEqual([]);
    expect(fs.readdirSync(outside)).toEqual(['keep']);
    expect(fs.readFileSync(path.join(outside, 'keep'), 'utf8')).toBe('not the restore\'s\n');
    expect(describeTree(path.join(target, src))).toEqual(expected);
    fs.chmodSync(path.join(target, src, 'a', 'b', 'c'), 0o755);
  });
});
