// Regression tests for issue 10's restore defects, each named after the defect (the others are in
// defects.test.ts): the built CLI on real files, a real repository, real signals.
import { spawn, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, snap, type RunResult, tmpDir } from './helpers/cli.js';
import { cleanupScratch, lockFiles } from './helpers/maint.js';
import { craftSnapshot, fileNode } from './helpers/craft.js';
import { expectRestoredTime } from './helpers/times.js';

afterAll(() => cleanupScratch());

function ok(args: string[]): RunResult {
  const r = snap(args);
  expect(r.code, `snap ${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r;
}

function initRepo(): string {
  const repo = path.join(tmpDir(), 'repo');
  ok(['--repo', repo, 'init']);
  return repo;
}

/** Every `.snap-restore-*` entry under `dir`. */
function restoreTemps(dir: string): string[] {
  return spawnSync('find', [dir, '-name', '.snap-restore-*'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
}

function mtimeNs(p: string): bigint {
  return fs.lstatSync(p, { bigint: true }).mtimeNs;
}

/** Whether the file system at `dir` holds a time before 1901 (ext4 does not; tmpfs, xfs and btrfs do). */
function holdsVeryOldTimes(dir: string): boolean {
  const probe = path.join(dir, '.probe');
  fs.writeFileSync(probe, '');
  fs.utimesSync(probe, new Date('1800-06-01T00:00:00Z'), new Date('1800-06-01T00:00:00Z'));
  const held = fs.statSync(probe).mtime.getTime() === Date.parse('1800-06-01T00:00:00Z');
  fs.rmSync(probe);
  return held;
}

describe('defect 2: files dated before 1970 were restored with the current time', () => {
  it('restores the recorded times of files, folders and symlinks before 1970 exactly; a second restore finds them identical', () => {
    const repo = initRepo();
    const src = tmpDir();
    fs.mkdirSync(path.join(src, 'old'));
    fs.writeFileSync(path.join(src, 'old', 'f'), 'from 1960\n');
    fs.symlinkSync('f', path.join(src, 'old', 'l'));
    // Nanoseconds as a file system records them; restore sets whole microseconds, as tar does.
    const touch = (stamp: string, p: string, nofollow = false): void => {
      const r = spawnSync('touch', [...(nofollow ? ['-h'] : []), '-d', stamp, p]);
      expect(r.status).toBe(0);
    };
    touch('1960-03-04 05:06:07.123456000Z', path.join(src, 'old', 'f'));
    touch('1969-12-31 23:59:59.999999000Z', path.join(src, 'old', 'l'), true);
    touch('1950-01-01 00:00:00.000001000Z', path.join(src, 'old'));
    ok(['--repo', repo, 'create', src]);
    const target = tmpDir();
    ok(['--repo', repo, 'restore', 'latest', target]);
    const at = path.join(target, src, 'old');
    expectRestoredTime(mtimeNs(path.join(at, 'f')), mtimeNs(path.join(src, 'old', 'f')), 'old/f');
    expectRestoredTime(mtimeNs(path.join(at, 'l')), mtimeNs(path.join(src, 'old', 'l')), 'old/l');
    expectRestoredTime(mtimeNs(at), mtimeNs(path.join(src, 'old')), 'old');
    expectRestoredTime(mtimeNs(path.join(at, 'f')), -310_157_632_876_544_000n, 'old/f');
    const again = ok(['--repo', repo, 'restore', 'latest', target]);
    expect(again.stderr).not.toMatch(/exists and differs/);
    expect(again.stdout).toMatch(/2 files already present and identical/);
  });

  it('a time the target file system cannot hold (before 1901 on ext4) is a warning naming the file, exit 3; never silence', async () => {
    const repo = initRepo();
    const id = await craftSnapshot(repo, async (c) => c.tree([await fileNode(c, 'ancient', 'x\n', { mtime: { sec: -5_364_662_400, nsec: 500_000_000 } })]));
    const target = tmpDir();
    const r = snap(['--repo', repo, 'restore', id, target]);
    if (holdsVeryOldTimes(target)) {
      expect(r.code, r.stderr).toBe(0);
      expect(mtimeNs(path.join(target, 'ancient'))).toBe(-5_364_662_399_500_000_000n);
    } else {
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/warning: .*ancient: its time 1800-01-01T00:00:00\.500Z could not be set \(the target file system holds .*\)/);
      expect(fs.readFileSync(path.join(target, 'ancient'), 'utf8')).toBe('x\n');
    }
  });
});

describe('defect 5: Ctrl-C during restore', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)('%s: stops, leaves no temporary file, releases the lock, one line, exit 130; the next restore completes', async (sig) => {
    const repo = initRepo();
    const src = tmpDir();
    // Random data (zstd cannot shrink it) in large and small files: a restore of some seconds.
    const fd = fs.openSync(path.join(src, 'big'), 'w');
    const chunk = Buffer.alloc(1 << 20);
    for (let i = 0; i < 120; i++) fs.writeSync(fd, randomFillSync(chunk));
    fs.closeSync(fd);
    for (let d = 0; d < 20; d++) {
      fs.mkdirSync(path.join(src, `d${d}`));
      for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(src, `d${d}`, `f${i}`), randomFillSync(Buffer.alloc(3000)));
    }
    ok(['--repo', repo, 'create', src]);
    const target = tmpDir();
    const child = spawn(process.execPath, [CLI, '--repo', repo, 'restore', 'latest', target], { cwd: ROOT, env: { ...process.env, SNAP_REPO: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const end = Date.now() + 60_000;
    // Until the restore has made its first folder (the ones below it are made under temporary
    // names and get their own once complete: docs/design.md, "Restore").
    while (!(fs.existsSync(target) && fs.readdirSync(target).length > 0) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 150));
    child.kill(sig);
    const code = await exited;
    if (code === 0) {
      console.info('[defects] the restore finished before the signal arrived: nothing to check this time');
      return;
    }
    expect(code).toBe(130);
    expect(stderr.trim().split('\n')).toEqual([`snap: restore interrupted by ${sig} [SNAP_INTERRUPTED]`]);
    expect(restoreTemps(target)).toEqual([]);
    expect(lockFiles(repo)).toEqual([]);
    // What is there under its own name is whole.
    let there = 0;
    for (const rel of ['big', ...Array.from({ length: 20 * 200 }, (_, k) => path.join(`d${Math.floor(k / 200)}`, `f${k % 200}`))]) {
      const p = path.join(target, src, rel);
      if (!fs.existsSync(p)) continue;
      there++;
      expect(fs.readFileSync(p).equals(fs.readFileSync(path.join(src, rel))), rel).toBe(true);
    }
    console.info(`[defects] ${sig}: ${there} of ${20 * 200 + 1} files there after the stop`);
    const r = ok(['--repo', repo, 'restore', '--overwrite', 'if-changed', 'latest', target]);
    expect(r.stderr).toBe('');
    expect(fs.readFileSync(path.join(target, src, 'big')).equals(fs.readFileSync(path.join(src, 'big')))).toBe(true);
  }, 240_000);

  it('a restore removes the temporary files an earlier, killed restore left in the folders it writes', () => {
    const repo = initRepo();
    const src = tmpDir();
    fs.mkdirSync(path.join(src, 'sub'));
    fs.writeFileSync(path.join(src, 'sub', 'f'), 'data\n');
    ok(['--repo', repo, 'create', src]);
    const target = tmpDir();
    fs.mkdirSync(path.join(target, src, 'sub'), { recursive: true });
    // What a restore killed with SIGKILL leaves: a half-written file, a special-file node.
    fs.writeFileSync(path.join(target, src, 'sub', '.snap-restore-0badc0de-7'), 'half');
    fs.writeFileSync(path.join(target, '.snap-restore-0123456789abcdef'), '');
    const kept = path.join(target, src, 'sub', 'snap-restore-is-not-a-leftover');
    fs.writeFileSync(kept, 'mine');
    ok(['--repo', repo, 'restore', 'latest', target]);
    expect(restoreTemps(target)).toEqual([]);
    expect(fs.readFileSync(kept, 'utf8')).toBe('mine');
    expect(fs.readFileSync(path.join(target, src, 'sub', 'f'), 'utf8')).toBe('data\n');
  });
});

describe('defect 9: snap restore latest /proc/x hung at 80% CPU', () => {
  it.each(['/proc/x', '/proc/self/snap-restore', '/sys/kernel/x/y'])('%s: refused at once as a pseudo file system, nothing created', (target) => {
    const repo = initRepo();
    const src = tmpDir();
    fs.writeFileSync(path.join(src, 'f'), 'x');
    ok(['--repo', repo, 'create', src]);
    const t0 = Date.now();
    const r = snap(['--repo', repo, 'restore', 'latest', target]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^snap: restore target .* is on (proc|sysfs), a pseudo file system that holds no files; choose a folder on a disk \[SNAP_USAGE\]$/m);
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(fs.existsSync(target)).toBe(false);
  });

  it('a target several folders deep is created one folder at a time (no recursive mkdir)', () => {
    const repo = initRepo();
    const src = tmpDir();
    fs.writeFileSync(path.join(src, 'f'), 'x');
    ok(['--repo', repo, 'create', src]);
    const target = path.join(tmpDir(), 'a', 'b', 'c');
    ok(['--repo', repo, 'restore', 'latest', target]);
    expect(fs.readFileSync(path.join(target, src, 'f'), 'utf8')).toBe('x');
    expect(fs.statSync(path.join(target, '..')).mode & 0o777).toBe(0o700);
  });
});

describe('check: a file whose chunks do not add up to its recorded size', () => {
  it('is damage check names with its snapshot and path (restore refuses that file); the rest stays clean', async () => {
    const repo = initRepo();
    const id = await craftSnapshot(repo, async (c) => {
      const sub = await c.tree([await fileNode(c, 'short', 'twelve bytes', { size: 4096 }), await fileNode(c, 'fine', 'fine\n')]);
      return c.tree([{ ...(await fileNode(c, 'x', '')), name: Buffer.from('dir'), type: 'dir', size: 0, chunks: undefined, tree: sub }]);
    });
    const c = snap(['--repo', repo, 'check']);
    expect(c.code, c.stderr).toBe(1);
    expect(c.stdout).toMatch(/file "short" in tree [0-9a-f]{16} records 4096 bytes but its chunks hold 12: restore refuses it/);
    expect(c.stdout).toContain(id.slice(0, 8));
    expect(c.stdout).toContain('/dir/short');
    expect(c.stdout).not.toContain('/dir/fine');
    expect(c.stdout).not.toMatch(/no damage found/);
    const target = tmpDir();
    const r = snap(['--repo', repo, 'restore', id, target]);
    expect(r.stderr).toMatch(/short: chunks hold 12 bytes but the file has 4096; not restored/);
    expect(fs.readFileSync(path.join(target, 'dir', 'fine'), 'utf8')).toBe('fine\n');
  });
});
