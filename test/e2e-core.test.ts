// End-to-end: the built CLI on real files, a real LevelDB, real restores.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { canSetpriv, describeTree, parseJson, snap, tmpDir } from './helpers/cli.js';
import { seededBytes } from './helpers/rng.js';

interface SnapJson {
  id: string;
  time: string;
  hostname: string;
  paths: string[];
  tags: string[];
  summary: { dataAdded: number; totalFiles: number; filesUnchanged: number; warnings: number };
}

function listJson(repo: string): SnapJson[] {
  const r = snap(['--repo', repo, 'list', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return parseJson<SnapJson[]>(r.stdout);
}

function initRepo(): string {
  const repo = path.join(tmpDir(), 'repo');
  const r = snap(['--repo', repo, 'init']);
  expect(r.code, r.stderr).toBe(0);
  return repo;
}

/** A source tree with the awkward cases a restore must reproduce exactly. */
function makeAwkwardTree(root: string): void {
  const w = (p: string | Buffer, data: string | Buffer, mode = 0o644) => {
    fs.writeFileSync(p, data, { mode });
    fs.chmodSync(p, mode);
  };
  fs.mkdirSync(path.join(root, 'dir', 'empty-dir'), { recursive: true });
  fs.mkdirSync(path.join(root, 'dir', 'deep', 'er', 'est'), { recursive: true });
  w(path.join(root, 'empty'), '');
  w(path.join(root, 'small.txt'), 'hello\n');
  w(path.join(root, 'dir', 'deep', 'er', 'est', 'multi-chunk.bin'), Buffer.concat([randomBytes(1_500_000), Buffer.alloc(1_000_000, 7), randomBytes(900_000)]));
  w(path.join(root, 'exec.sh'), '#!/bin/sh\necho hi\n', 0o755);
  w(path.join(root, 'private'), 'secret', 0o600);
  w(path.join(root, 'setuid'), 'x', 0o4755);
  w(path.join(root, 'with space and\nnewline'), 'odd name');
  w(path.join(root, '--leading-dashes'), 'dashes');
  w(Buffer.concat([Buffer.from(root + '/'), Buffer.from([0x6e, 0xff, 0xfe, 0x80, 0x2e, 0x74])]), 'not utf-8 name');
  fs.symlinkSync('small.txt', path.join(root, 'link-rel'));
  fs.symlinkSync('/nonexistent/target', path.join(root, 'link-dangling'));
  fs.symlinkSync(Buffer.from([0x2e, 0x2f, 0xff]), path.join(root, 'link-bytes'));
  w(path.join(root, 'hard-a'), 'linked content');
  fs.linkSync(path.join(root, 'hard-a'), path.join(root, 'dir', 'hard-b'));
  spawnSync('mkfifo', [path.join(root, 'fifo')]);
  // sparse: 64 MiB with 4 KiB of data in the middle
  const fd = fs.openSync(path.join(root, 'sparse.img'), 'w');
  fs.writeSync(fd, Buffer.alloc(4096, 1), 0, 4096, 32 * 1024 * 1024);
  fs.ftruncateSync(fd, 64 * 1024 * 1024);
  fs.closeSync(fd);
  // times with nanoseconds, old and new; directories last (creating entries changes them)
  const ns = (p: string, sec: number) => fs.utimesSync(p, sec + 0.123456, sec + 0.123456);
  ns(path.join(root, 'small.txt'), 1_000_000_000);
  ns(path.join(root, 'exec.sh'), 86_400 * 365);
  for (const d of ['dir/deep/er/est', 'dir/deep/er', 'dir/deep', 'dir/empty-dir', 'dir']) ns(path.join(root, d), 1_600_000_000);
}

describe('create and restore', () => {
  let repo: string;
  let src: string;
  beforeAll(() => {
    repo = initRepo();
    src = path.join(tmpDir(), 'src');
    fs.mkdirSync(src);
    makeAwkwardTree(src);
  });

  it('restores bytes, modes, mtimes, symlinks, hard links, fifos, empty dirs and odd names exactly', () => {
    const c = snap(['--repo', repo, 'create', src]);
    expect(c.code, c.stderr).toBe(0);
    const target = tmpDir();
    const r = snap(['--repo', repo, 'restore', 'latest', target]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const restored = path.join(target, src);
    expect(describeTree(restored)).toEqual(describeTree(src));
    // hard links are links again, sparse files stay sparse
    expect(fs.statSync(path.join(restored, 'hard-a')).ino).toBe(fs.statSync(path.join(restored, 'dir', 'hard-b')).ino);
    expect(fs.statSync(path.join(restored, 'sparse.img')).blocks * 512).toBeLessThan(4 * 1024 * 1024);
    expect(fs.statSync(path.join(restored, 'fifo')).isFIFO()).toBe(true);
    // no temporary files are left behind
    expect(spawnSync('find', [target, '-name', '.snap-restore-*']).stdout.toString()).toBe('');
  });

  it('a second snapshot of unchanged data adds under 1% of the first and reads nothing', () => {
    const before = listJson(repo);
    const c = snap(['--repo', repo, 'create', src]);
    expect(c.code, c.stderr).toBe(0);
    const after = listJson(repo);
    expect(after.length).toBe(before.length + 1);
    const first = before[0]!;
    const second = after[after.length - 1]!;
    expect(second.summary.dataAdded).toBeLessThan(first.summary.dataAdded * 0.01);
    expect(second.summary.filesUnchanged).toBe(second.summary.totalFiles);
  });

  it('lists with ls -l, prints files with cat, and reports the right errors', () => {
    const ls = snap(['--repo', repo, 'ls', 'latest', src, '-l']);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout, ls.stdout).toMatch(/lrwxrwxrwx .*\/link-rel -> small\.txt\n/);
    expect(ls.stdout).toMatch(/-rwsr-xr-x .*\/setuid\n/);
    const cat = snap(['--repo', repo, 'cat', 'latest', path.join(src, 'dir/deep/er/est/multi-chunk.bin')]);
    expect(cat.code).toBe(0);
    expect(cat.stdoutBytes.equals(fs.readFileSync(path.join(src, 'dir/deep/er/est/multi-chunk.bin')))).toBe(true);
    const rel = snap(['--repo', repo, 'cat', 'latest', 'small.txt']);
    expect(rel.stdout).toBe('hello\n');
    const missing = snap(['--repo', repo, 'cat', 'latest', '/no/such/file']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/SNAP_NOT_FOUND/);
    expect(missing.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('unchanged directories', () => {
  // A backup reuses a directory's last tree when a digest of its entries' lstat results matches
  // (src/ops/backup/create.ts). Anything a tree records must make the digest differ.
  it('notices a rewrite that keeps size and mtime, a chmod, and a change of excludes', () => {
    const repo = initRepo();
    const src = tmpDir();
    fs.mkdirSync(path.join(src, 'd'));
    const f = path.join(src, 'd', 'same-size.txt');
    fs.writeFileSync(f, 'version one\n');
    fs.utimesSync(f, 1_500_000_000, 1_500_000_000);
    fs.writeFileSync(path.join(src, 'd', 'mode.sh'), 'echo\n');
    fs.writeFileSync(path.join(src, 'd', 'excluded-once.log'), 'log\n');
    const create = (...extra: string[]) => {
      const c = snap(['--repo', repo, 'create', src, '--json', ...extra]);
      expect(c.code, c.stderr).toBe(0);
      return parseJson<SnapJson>(c.stdout);
    };
    const cat = (p: string) => snap(['--repo', repo, 'cat', 'latest', p]);
    create('--exclude', '*.log');
    expect(create('--exclude', '*.log').summary.filesUnchanged).toBe(2);
    // Same length, mtime put back: only ctime tells.
    fs.writeFileSync(f, 'version two\n');
    fs.utimesSync(f, 1_500_000_000, 1_500_000_000);
    create('--exclude', '*.log');
    expect(cat(f).stdout).toBe('version two\n');
    fs.chmodSync(path.join(src, 'd', 'mode.sh'), 0o751);
    create('--exclude', '*.log');
    const ls = snap(['--repo', repo, 'ls', 'latest', path.join(src, 'd'), '-l']);
    expect(ls.stdout).toMatch(/-rwxr-x--x .*\/mode\.sh\n/);
    expect(ls.stdout).not.toMatch(/excluded-once/);
    // Nothing changed on disk, but the excludes did: the file must now be in the snapshot.
    create();
    expect(cat(path.join(src, 'd', 'excluded-once.log')).stdout).toBe('log\n');
    const target = tmpDir();
    expect(snap(['--repo', repo, 'restore', 'latest', target]).code).toBe(0);
    expect(describeTree(path.join(target, src))).toEqual(describeTree(src));
  });
});

describe('deduplication', () => {
  it('stores duplicate files once', () => {
    const repo = initRepo();
    const src = tmpDir();
    const data = randomBytes(3_000_000);
    for (const n of ['a', 'b', 'c']) fs.writeFileSync(path.join(src, n), data);
    const c = snap(['--repo', repo, 'create', src, '--json']);
    expect(c.code, c.stderr).toBe(0);
    const s = parseJson<SnapJson>(c.stdout);
    expect(s.summary.dataAdded).toBeGreaterThan(3_000_000);
    expect(s.summary.dataAdded).toBeLessThan(3_100_000);
  });

  it('a large file edited in the middle: only the chunks around the edit are stored again, and both snapshots restore exactly', () => {
    // Large files' chunk ids are computed by the compression threads: hashed and compressed at
    // once for a new file, hashed first and only the new chunks compressed for a changed one.
    const repo = initRepo();
    // Fixed bytes and a fixed gear seed (a plain config may carry any seed, docs/format.md): where
    // the chunker cuts depends on both. With init's random seed, what these bytes stored after
    // the edit ranged from 0.1 to 2.9 MB over 300 seeds (median 0.87 MB), once in 300 over the
    // bound below; with this seed the edit falls into one chunk of 3.7 MB, of which 3 MB are the
    // zeros, and about 0.7 MB is stored.
    const configFile = path.join(repo, 'config');
    const config = JSON.parse(fs.readFileSync(configFile, 'utf8')) as { chunker: { gearSeed: string } };
    config.chunker.gearSeed = '5eed'.repeat(16);
    fs.writeFileSync(configFile, JSON.stringify(config, null, 2) + '\n');
    const src = tmpDir();
    const big = Buffer.concat([seededBytes(5_000_000, 1), Buffer.alloc(3_000_000, 9), seededBytes(4_000_000, 2)]);
    fs.writeFileSync(path.join(src, 'big.bin'), big);
    fs.writeFileSync(path.join(src, 'copy.bin'), big);
    const first = parseJson<SnapJson>(snap(['--repo', repo, 'create', src, '--json']).stdout);
    expect(first.summary.dataAdded).toBeLessThan(9_200_000); // the copy is stored once, the zeros compress
    const edited = Buffer.concat([big.subarray(0, 6_000_000), Buffer.from('twelve bytes'), big.subarray(6_000_000)]);
    fs.writeFileSync(path.join(src, 'big.bin'), edited);
    const second = parseJson<SnapJson>(snap(['--repo', repo, 'create', src, '--json']).stdout);
    expect(second.summary.dataAdded).toBeGreaterThan(0);
    expect(second.summary.dataAdded).toBeLessThan(2_500_000); // a chunk or two, not the file
    for (const [snapshot, want] of [[first.id, big], [second.id, edited]] as const) {
      const out = path.join(tmpDir(), 'out');
      const r = snap(['--repo', repo, 'restore', snapshot, out]);
      expect(r.code, r.stderr).toBe(0);
      expect(fs.readFileSync(path.join(out, src, 'big.bin')).equals(want)).toBe(true);
      expect(fs.readFileSync(path.join(out, src, 'copy.bin')).equals(big)).toBe(true);
    }
    const check = snap(['--repo', repo, 'check', '--read-data']);
    expect(check.code, check.stdout + check.stderr).toBe(0);
  });
});

describe('warnings and partial backups', () => {
  it('reports a file changed during the backup', async () => {
    const repo = initRepo();
    const src = tmpDir();
    const f = path.join(src, 'growing.log');
    fs.writeFileSync(f, randomBytes(50_000_000));
    // A writer appends while the backup reads the file: 64 KiB a millisecond at most (about 64 MB/s)
    // and 1 GiB in all. Appending as fast as it could, it once wrote faster than the disk took it,
    // the backup's writes and fsyncs waited behind its dirty pages for a minute, and it filled the
    // disk (78 GB; CI's 2 GiB export beside it failed with SNAP_NO_SPACE).
    const { spawn } = await import('node:child_process');
    const w = spawn(process.execPath, ['-e', `const fs=require('fs');const b=Buffer.alloc(65536,1);let n=0;const t=setInterval(()=>{fs.appendFileSync(${JSON.stringify(f)},b);if((n+=b.length)>=2**30)clearInterval(t)},1)`]);
    await new Promise((r) => setTimeout(r, 300));
    const c = snap(['--repo', repo, 'create', src]);
    w.kill('SIGKILL');
    expect(c.stderr).toMatch(/growing\.log: changed while it was being read/);
    expect(c.code).toBe(3);
    expect(listJson(repo).length).toBe(1);
  });

  it.skipIf(!canSetpriv())('an unreadable file is a warning, exit 3, and a snapshot of the rest', () => {
    const base = tmpDir();
    fs.chownSync(base, 65534, 65534);
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'readable'), 'ok');
    fs.writeFileSync(path.join(src, 'secret'), 'no', { mode: 0o600 });
    fs.mkdirSync(path.join(src, 'locked'), { mode: 0o700 });
    fs.writeFileSync(path.join(src, 'locked', 'inside'), 'hidden');
    for (const p of [src, path.join(src, 'readable')]) fs.chownSync(p, 65534, 65534);
    const user = { uid: 65534, gid: 65534 };
    expect(snap(['--repo', repo, 'init'], { asUser: user }).code).toBe(0);
    const c = snap(['--repo', repo, '--json', 'create', src], { asUser: user });
    expect(c.code, c.stderr).toBe(3);
    expect(c.stderr).toMatch(/secret: cannot read/);
    // The summary counts what the snapshot holds: the readable file, not the one it could not read.
    const summary = (JSON.parse(c.stdout) as { summary: { totalFiles: number; filesNew: number; warnings: number } }).summary;
    expect([summary.totalFiles, summary.filesNew, summary.warnings]).toEqual([1, 1, 2]);
    expect(c.stderr).toMatch(/locked: cannot list directory/);
    const ls = snap(['--repo', repo, 'ls', 'latest', src], { asUser: user });
    expect(ls.stdout).toContain(`${src}/readable`);
    expect(ls.stdout).not.toContain(`${src}/secret`);
  });
});

describe('excludes', () => {
  it('applies --exclude and --exclude-file and always skips the repository', () => {
    const src = tmpDir();
    const repo = path.join(src, 'repo-inside');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    fs.mkdirSync(path.join(src, 'node_modules', 'x'), { recursive: true });
    fs.writeFileSync(path.join(src, 'node_modules', 'x', 'i.js'), '1');
    fs.writeFileSync(path.join(src, 'a.log'), 'log');
    fs.writeFileSync(path.join(src, 'keep.txt'), 'keep');
    fs.writeFileSync(path.join(src, 'b.tmp'), 'tmp');
    const exf = path.join(tmpDir(), 'excludes');
    fs.writeFileSync(exf, '# comment\n*.tmp\n');
    const c = snap(['--repo', repo, 'create', src, '--exclude', 'node_modules/', '--exclude', '*.log', '--exclude-file', exf]);
    expect(c.code, c.stderr).toBe(0);
    const ls = snap(['--repo', repo, 'ls', 'latest', src, '-R']);
    const names = ls.stdout.trim().split('\n').map((l) => path.basename(l));
    expect(names).toEqual(['keep.txt']);
  });
});

describe('repository handling', () => {
  it('rebuilds a deleted index on the next command and says so', () => {
    const repo = initRepo();
    const src = tmpDir();
    fs.writeFileSync(path.join(src, 'f'), 'data');
    expect(snap(['--repo', repo, 'create', src, '--tag', 'one']).code).toBe(0);
    expect(snap(['--repo', repo, 'create', src, '--time', '2020-01-02T03:04:05Z']).code).toBe(0);
    fs.rmSync(path.join(repo, 'index'), { recursive: true });
    const l = snap(['--repo', repo, 'list', '--json']);
    expect(l.code, l.stderr).toBe(0);
    expect(l.stderr).toMatch(/rebuilding it/);
    const snaps = parseJson<SnapJson[]>(l.stdout);
    expect(snaps.length).toBe(2);
    expect(new Date(snaps[0]!.time).toISOString()).toBe('2020-01-02T03:04:05.000Z'); // --time, oldest first
    expect(snaps[0]!.time).toMatch(/[+-]\d\d:\d\d$/);
    expect(snaps[1]!.tags).toEqual(['one']);
    const t = tmpDir();
    expect(snap(['--repo', repo, 'restore', 'latest', t]).code).toBe(0);
    expect(fs.readFileSync(path.join(t, src, 'f'), 'utf8')).toBe('data');
  });

  it('refuses a --repo that is not a repository and suggests init; create (only) makes the default one, with a notice', () => {
    const nowhere = path.join(tmpDir(), 'typo');
    const r = snap(['--repo', nowhere, 'list']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no repository at .*snap init/);
    expect(fs.existsSync(nowhere)).toBe(false);
    const xdg = tmpDir();
    // A read-only command never creates one, not even the default (issue 10, defect 7).
    const l = snap(['list'], { env: { XDG_DATA_HOME: xdg } });
    expect([l.code, l.stderr]).toEqual([1, expect.stringMatching(/no repository at .*snap.*\[SNAP_NO_REPO\]/)]);
    expect(fs.existsSync(path.join(xdg, 'snap'))).toBe(false);
    const src = tmpDir();
    fs.writeFileSync(path.join(src, 'f'), 'data');
    const d = snap(['create', src], { env: { XDG_DATA_HOME: xdg } });
    expect(d.code, d.stderr).toBe(0);
    expect(d.stderr).toMatch(/created a new repository at .*snap/);
    expect(fs.existsSync(path.join(xdg, 'snap', 'config'))).toBe(true);
  });

  it('resolves id prefixes and explains unknown and ambiguous references', () => {
    const repo = initRepo();
    const src = tmpDir();
    fs.writeFileSync(path.join(src, 'f'), 'data');
    for (let i = 0; i < 3; i++) expect(snap(['--repo', repo, 'create', src, '--tag', String(i)]).code).toBe(0);
    const snaps = listJson(repo);
    const one = snap(['--repo', repo, 'ls', snaps[1]!.id.slice(0, 10), src]);
    expect(one.code, one.stderr).toBe(0);
    const bad = snap(['--repo', repo, 'ls', 'zzzz', src]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/no snapshot matches 'zzzz'/);
    expect(bad.stderr).toContain(snaps[2]!.id.slice(0, 8));
    const usage = snap(['--repo', repo, 'restore', 'latest', tmpDir(), '--overwrite', 'sometimes']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/SNAP_USAGE/);
    const nosrc = snap(['--repo', repo, 'create', '/definitely/not/here']);
    expect(nosrc.code).toBe(1);
    expect(nosrc.stderr).toMatch(/source \/definitely\/not\/here: no such file/);
    expect(nosrc.stderr.trim().split('\n').length).toBe(1);
  });
});
