// Restore against other local users and crafted snapshots (issue 20, restore side; issue 10,
// defects 2 and 9). A restore run by root into a folder another user can write is raced by a
// process running as `nobody` that swaps directories for symlinks and temporary nodes for
// symlinks to root's files: nothing outside the target may change. Crafted snapshots: nesting
// of 5,000 levels (paths far beyond PATH_MAX), a tree DAG that expands to 2^40 entries, hard
// links whose recorded contents differ, times before 1970.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Crafter, craftSnapshot, fileNode, node } from '../helpers/craft.js';
import { type CliResult, LONG, cleanupTmp, cli, cliOk, iters, sleep, tmpDir } from './lib.js';
import { canSetpriv } from '../helpers/cli.js';
import { expectRestoredTime } from '../helpers/times.js';

afterAll(cleanupTmp);

const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;
const canRace = asRoot && canSetpriv();
const raceIt = canRace ? it : it.skip;
if (!canRace) console.info('[torture] restore races skipped: they need root and setpriv (a racing process runs as nobody)');

// ---------------------------------------------------------------------------------------------
// Crafted snapshots through the repository's own API

/** A new repository holding one snapshot whose root tree `build` makes. */
async function crafted(build: (c: Crafter) => Promise<Buffer>): Promise<{ repo: string; id: string }> {
  const repo = path.join(tmpDir(), 'repo');
  await cliOk(['--repo', repo, 'init']);
  return { repo, id: await craftSnapshot(repo, build) };
}

/** Walk down `names` from `root` through directory descriptors (paths longer than PATH_MAX cannot be named whole). */
function openDeep(root: string, names: string[]): number {
  let fd = fs.openSync(root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  for (const n of names) {
    const next = fs.openSync(`/proc/self/fd/${fd}/${n}`, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    fs.closeSync(fd);
    fd = next;
  }
  return fd;
}

function rmDeep(dir: string): void {
  // rm -rf copes with any depth (it works with descriptors too)
  spawnSync('rm', ['-rf', '--', dir]);
}

describe('crafted nesting and tree DAGs', () => {
  it('5,000 levels of nesting (a path of 10,000 bytes, beyond PATH_MAX) restore completely, with every directory\'s metadata', async () => {
    const DEPTH = 5000;
    const { repo, id } = await crafted(async (c) => {
      let t = await c.tree([await fileNode(c, 'bottom', 'the bottom\n', { mode: 0o640, mtime: { sec: 1_500_000_000, nsec: 123_456_000 } })]);
      for (let i = 0; i < DEPTH; i++) t = await c.tree([node('d', 'dir', { tree: t, mode: 0o751, mtime: { sec: 1_400_000_000 + i, nsec: 0 } })]);
      return t;
    });
    const target = tmpDir('snap-restore-deep-');
    try {
      const r = await cli(['--repo', repo, 'restore', id, target], { timeoutMs: 300_000 });
      expect(r.stderr).not.toMatch(/Maximum call stack|SNAP_INTERNAL/);
      expect(r.code, r.stderr).toBe(0);
      const names = Array<string>(DEPTH).fill('d');
      const fd = openDeep(target, names);
      try {
        expect(fs.readFileSync(`/proc/self/fd/${fd}/bottom`, 'utf8')).toBe('the bottom\n');
        const st = fs.statSync(`/proc/self/fd/${fd}/bottom`, { bigint: true });
        expect(Number(st.mode & 0o7777n)).toBe(0o640);
        expectRestoredTime(st.mtimeNs, 1_500_000_000_123_456_000n, 'bottom');
        const dst = fs.fstatSync(fd);
        expect(dst.mode & 0o7777).toBe(0o751);
        expect(Math.round(dst.mtimeMs / 1000)).toBe(1_400_000_000); // the deepest directory's time
      } finally {
        fs.closeSync(fd);
      }
      const top = fs.statSync(path.join(target, 'd'));
      expect(top.mode & 0o7777).toBe(0o751);
      expect(Math.round(top.mtimeMs / 1000)).toBe(1_400_000_000 + DEPTH - 1);
    } finally {
      rmDeep(target);
    }
  }, 600_000);

  it('a tree DAG of 40 levels, two links each (2^40 entries), is refused before anything is written', async () => {
    const { repo, id } = await crafted(async (c) => {
      let t = await c.tree([await fileNode(c, 'leaf', 'x')]);
      for (let i = 0; i < 40; i++) t = await c.tree([node('a', 'dir', { tree: t }), node('b', 'dir', { tree: t })]);
      return t;
    });
    const target = tmpDir('snap-restore-dag-');
    const t0 = Date.now();
    const r = await cli(['--repo', repo, 'restore', id, target], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/expands to \d+ entries, more than any backup holds .*nothing was restored \[SNAP_CORRUPT\]/);
    expect(fs.readdirSync(target)).toEqual([]);
    const dry = await cli(['--repo', repo, 'restore', '--dry-run', id, target], { timeoutMs: 60_000 });
    expect(dry.code).toBe(1);
    expect(dry.stderr).toMatch(/\[SNAP_CORRUPT\]/);
    console.info(`[torture] the 2^40 DAG was refused in ${Date.now() - t0} ms`);
  }, 120_000);

  it('a DAG larger than the target file system can hold is refused with SNAP_NO_SPACE; repeated trees of a real size restore in full', async () => {
    // 24 levels: 50 million entries, more than the inodes of most file systems (the target says how many it has).
    const { repo, id } = await crafted(async (c) => {
      let t = await c.tree([await fileNode(c, 'leaf', 'x')]);
      for (let i = 0; i < 24; i++) t = await c.tree([node('a', 'dir', { tree: t }), node('b', 'dir', { tree: t })]);
      return t;
    });
    const target = tmpDir('snap-restore-dag-');
    const inodes = fs.statfsSync(target).files;
    const r = await cli(['--repo', repo, 'restore', id, target], { timeoutMs: 60_000 });
    if (inodes > 0 && inodes < 3 * 2 ** 24) {
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/needs \d+ files and folders, but the target file system holds at most \d+ in all; nothing was restored \[SNAP_NO_SPACE\]/);
      expect(fs.readdirSync(target)).toEqual([]);
    } else console.info(`[torture] the target file system reports ${inodes} inodes: the inode bound is not exercised here`);
    // Identical directories are one tree: 2^8 copies of one small tree are a real backup's shape.
    const small = await crafted(async (c) => {
      let t = await c.tree([await fileNode(c, 'leaf', 'x')]);
      for (let i = 0; i < 8; i++) t = await c.tree([node('a', 'dir', { tree: t }), node('b', 'dir', { tree: t })]);
      return t;
    });
    const t2 = tmpDir('snap-restore-dag-');
    await cliOk(['--repo', small.repo, 'restore', small.id, t2]);
    expect(spawnSync('find', [t2, '-name', 'leaf']).stdout.toString().trim().split('\n')).toHaveLength(256);
  }, 120_000);
});

describe('hard links', () => {
  it('links only members the snapshot records as identical; a member whose content changed between reads is written as recorded', async () => {
    const { repo, id } = await crafted(async (c) => {
      const inode = { dev: 1, ino: 42, links: 3 };
      return c.tree([
        await fileNode(c, 'a', 'first read\n', { inode }),
        await fileNode(c, 'b', 'second read, changed\n', { inode, mtime: { sec: 1_600_000_001, nsec: 0 } }),
        await fileNode(c, 'c', 'first read\n', { inode }),
      ]);
    });
    const target = tmpDir('snap-restore-links-');
    await cliOk(['--repo', repo, 'restore', id, target]);
    const a = fs.statSync(path.join(target, 'a'));
    const b = fs.statSync(path.join(target, 'b'));
    const c = fs.statSync(path.join(target, 'c'));
    expect(fs.readFileSync(path.join(target, 'a'), 'utf8')).toBe('first read\n');
    expect(fs.readFileSync(path.join(target, 'b'), 'utf8')).toBe('second read, changed\n');
    expect(fs.readFileSync(path.join(target, 'c'), 'utf8')).toBe('first read\n');
    expect(c.ino).toBe(a.ino);
    expect(b.ino).not.toBe(a.ino);
    expect(a.nlink).toBe(2);
    // What cat says is what restore wrote.
    expect((await cliOk(['--repo', repo, 'cat', id, '/b'])).stdout).toBe('second read, changed\n');
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------
// Races with another user

/**
 * The racing process, as nobody. 'dirs': again and again, every directory it can reach under the
 * target (the target is its own) is renamed away and replaced by a symlink to root's folder.
 * 'temps': in the folders given, every `.snap-restore-*` temporary entry is replaced by a symlink
 * to root's file, as fast as it can.
 */
const RACER = `
const fs = require('fs');
const [mode, victimDir, victimFile, ...dirs] = process.argv.slice(1);
function swap(p, to) {
  try {
    fs.renameSync(p, p + '.moved');
    fs.symlinkSync(to, p);
  } catch {}
}
function sweep(dir, depth) {
  let names;
  try { names = fs.readdirSync(dir); } catch { return; }
  for (const name of names) {
    if (name.endsWith('.moved')) continue;
    const p = dir + '/' + name;
    let st;
    try { st = fs.lstatSync(p); } catch { continue; }
    if (st.isDirectory()) {
      if (depth < 12) sweep(p, depth + 1);
      swap(p, victimDir);
    }
  }
}
function temps() {
  for (const dir of dirs) {
    let names;
    try { names = fs.readdirSync(dir); } catch { continue; }
    for (const name of names) if (name.startsWith('.snap-restore-') && !name.endsWith('.moved')) swap(dir + '/' + name, victimFile);
  }
}
const end = Date.now() + 120000;
while (Date.now() < end) mode === 'dirs' ? sweep(dirs[0], 0) : temps();
`;

function startRacer(mode: 'dirs' | 'temps', v: Victim, dirs: string[]): ChildProcess {
  return spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '-e', RACER, mode, v.dir, v.file, ...dirs], { stdio: 'ignore', cwd: '/' });
}

interface Victim {
  dir: string;
  file: string;
  state(): string;
}

/** A root-only folder and file the racer points its symlinks at; `state()` is everything about them. */
function victim(): Victim {
  const base = tmpDir('snap-victim-');
  fs.chmodSync(base, 0o755);
  const dir = path.join(base, 'root-only');
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.writeFileSync(path.join(dir, 'keep'), 'root data\n', { mode: 0o600 });
  const file = path.join(base, 'secret');
  fs.writeFileSync(file, 'root secret\n', { mode: 0o600 });
  const state = (): string => {
    const out: string[] = [];
    for (const p of [dir, file, ...fs.readdirSync(dir).map((n) => path.join(dir, n))]) {
      const st = fs.lstatSync(p);
      out.push(`${p} ${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)} ${st.isFile() ? fs.readFileSync(p, 'utf8') : ''}`);
    }
    return out.join('\n');
  };
  return { dir, file, state };
}

/** A source with folders of small files, FIFOs and symlinks: a restore of a second or so. */
function raceSource(files: number, fifos: number): string {
  const src = tmpDir('snap-race-src-');
  for (let d = 0; d < 8; d++) {
    const dir = path.join(src, `d${d}`, 'sub');
    fs.mkdirSync(dir, { recursive: true });
    for (let i = 0; i < files; i++) fs.writeFileSync(path.join(dir, `f${i}`), `file ${d}/${i}\n`);
    for (let i = 0; i < fifos; i++) spawnSync('mkfifo', [path.join(src, `d${d}`, `p${i}`)]);
    fs.symlinkSync('sub/f1', path.join(src, `d${d}`, 'link'));
    fs.chmodSync(path.join(src, `d${d}`), 0o777);
  }
  return src;
}

/** A target owned by nobody; the folders in `pre` (relative to it) made by nobody too, so the racer can work inside. */
function nobodyTarget(pre: string[]): string {
  const target = tmpDir('snap-race-target-');
  fs.chmodSync(target, 0o755);
  for (const rel of pre) {
    let p = target;
    for (const part of rel.split('/').filter(Boolean)) {
      p = path.join(p, part);
      if (fs.existsSync(p)) continue;
      fs.mkdirSync(p);
      fs.chownSync(p, NOBODY, NOBODY);
    }
  }
  fs.chownSync(target, NOBODY, NOBODY);
  return target;
}

async function race(what: string, src: string, mode: 'dirs' | 'temps', pre: string[], racedDirs: (target: string) => string[]): Promise<void> {
  const repo = path.join(tmpDir(), 'repo');
  await cliOk(['--repo', repo, 'init']);
  await cliOk(['--repo', repo, 'create', src]);
  const v = victim();
  const before = v.state();
  const runs = iters(6, 40);
  let swaps = 0;
  for (let i = 0; i < runs; i++) {
    const target = nobodyTarget(pre);
    const racer = startRacer(mode, v, racedDirs(target));
    await sleep(50);
    const r = await cli(['--repo', repo, 'restore', 'latest', target], { timeoutMs: 120_000 });
    racer.kill('SIGKILL');
    expect(v.state(), `run ${i}: root's files changed`).toBe(before);
    expect(r.stderr).not.toMatch(/SNAP_INTERNAL|\n\s+at /);
    expect([0, 3], r.stderr).toContain(r.code);
    swaps += spawnSync('find', [target, '-name', '*.moved']).stdout.toString().split('\n').filter(Boolean).length;
    rmDeep(target);
  }
  console.info(`[torture] ${what}: ${runs} raced restores, ${swaps} swaps by the racer, nothing outside the target changed`);
  // A racer that never got a swap in (not started, no permission, too slow) would prove nothing.
  expect(swaps, `${what}: swaps that landed`).toBeGreaterThan(0);
}

describe('a restore raced by another user (issue 20, items 1 and 2)', () => {
  raceIt('item 1: directories swapped for symlinks to a root-only folder never redirect a write, chown or chmod', async () => {
    const src = raceSource(150, 2);
    await race('directories swapped', src, 'dirs', [], (target) => [target]);
  }, LONG ? 1_800_000 : 600_000);

  raceIt('item 1, in folders the other user made: the same', async () => {
    const src = raceSource(150, 2);
    await race('directories swapped in folders of nobody', src, 'dirs', [src], (target) => [target]);
  }, LONG ? 1_800_000 : 600_000);

  raceIt("item 2: temporary special-file nodes swapped for symlinks to root's file never get its chown or chmod", async () => {
    const src = raceSource(1, 40);
    const dirs = Array.from({ length: 8 }, (_, d) => path.join(src, `d${d}`));
    await race('temporary nodes swapped', src, 'temps', dirs, (target) => [target, ...dirs.map((d) => path.join(target, d))]);
  }, LONG ? 1_800_000 : 600_000);
});

// ---------------------------------------------------------------------------------------------
// The same swaps, at the very moment that matters, every time (SNAP_RESTORE_TEST_PAUSE,
// src/cli/restore-test-pause.ts): the restore stops right after it made a directory or a temporary
// special-file node, the test swaps that entry for a symlink to root's folder or file as nobody,
// and the restore goes on. Against a restore that writes through paths (snap before commit
// ddab403) both tests fail: its files land in root's folder and root's folder and file get the
// recorded owner and mode (nobody, 0777 and 0666).

/** Swap `p` for a symlink to `to`, as nobody: true when it landed. */
function swapAsNobody(p: string, to: string): boolean {
  const r = spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'sh', '-c', 'mv -- "$1" "$1.moved" && ln -s -- "$2" "$1"', 'sh', p, to], { cwd: '/' });
  return r.status === 0;
}

/**
 * Run a restore that pauses at each point (SNAP_RESTORE_TEST_PAUSE), calling `act` at each with the
 * kind (`dir`, `temp`) and the entry's path; the restore goes on once `act` returns.
 */
async function pausedRestore(args: string[], act: (kind: string, p: string) => void): Promise<{ r: CliResult; pauses: number }> {
  const control = tmpDir('snap-pause-');
  const file = path.join(control, 'paused');
  let pauses = 0;
  let running = true;
  let failed: unknown;
  const follow = (async (): Promise<void> => {
    while (running) {
      let at: Buffer;
      try {
        at = fs.readFileSync(file);
      } catch {
        await sleep(2);
        continue;
      }
      const tab = at.indexOf(0x09);
      pauses++;
      try {
        act(at.subarray(0, tab).toString(), at.subarray(tab + 1).toString());
      } catch (e) {
        failed ??= e;
      }
      fs.rmSync(file); // the restore goes on
    }
  })();
  let r: CliResult;
  try {
    r = await cli(args, { env: { SNAP_RESTORE_TEST_PAUSE: control }, timeoutMs: 120_000 });
  } finally {
    running = false;
    await follow;
  }
  if (failed) throw failed;
  return { r, pauses };
}

/** A source of folders d0..d3 owned by nobody (mode 0777), each with files in sub/ and FIFOs of mode 0666. */
function nobodySource(): string {
  const src = tmpDir('snap-pause-src-');
  for (let d = 0; d < 4; d++) {
    const dir = path.join(src, `d${d}`);
    fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
    for (let i = 0; i < 5; i++) fs.writeFileSync(path.join(dir, 'sub', `f${i}`), `file ${d}/${i}\n`);
    for (let i = 0; i < 3; i++) spawnSync('mkfifo', ['-m', '666', path.join(dir, `p${i}`)]);
  }
  spawnSync('chown', ['-R', `${NOBODY}:${NOBODY}`, src]);
  for (let d = 0; d < 4; d++) fs.chmodSync(path.join(src, `d${d}`), 0o777);
  return src;
}

describe('a restore paused where a swap matters (issue 20, items 1 and 2, deterministic)', () => {
  raceIt('item 1: a directory swapped for a symlink to a root-only folder right after it was made: not entered, reported, nothing outside the target changed, exit 3', async () => {
    const src = nobodySource();
    const repo = path.join(tmpDir(), 'repo');
    await cliOk(['--repo', repo, 'init']);
    await cliOk(['--repo', repo, 'create', src]);
    const v = victim();
    const before = v.state();
    const target = nobodyTarget([src]);
    let swapped: string | undefined;
    const { r, pauses } = await pausedRestore(['--repo', repo, 'restore', 'latest', target], (kind, p) => {
      if (kind !== 'dir' || swapped || path.basename(p) !== 'd1') return;
      expect(swapAsNobody(p, v.dir), `swap of ${p}`).toBe(true);
      swapped = p;
    });
    expect(swapped, `the restore paused at d1 (${pauses} pauses)`).toBe(path.join(target, src, 'd1'));
    expect(v.state(), "root's folder changed").toBe(before);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain(`${swapped}: was made by this restore and then replaced by another (a symlink, not followed) before it was opened; nothing is written through it`);
    expect(r.stderr).not.toMatch(/SNAP_INTERNAL|\n\s+at /);
    expect(fs.readlinkSync(swapped!)).toBe(v.dir);
    expect(fs.readdirSync(`${swapped}.moved`)).toEqual([]);
    // Everything else is restored, with its recorded owner and mode.
    for (const d of ['d0', 'd2', 'd3']) {
      expect(fs.readFileSync(path.join(target, src, d, 'sub', 'f4'), 'utf8')).toBe(`file ${d.slice(1)}/4\n`);
      const st = fs.statSync(path.join(target, src, d));
      expect([st.uid, st.mode & 0o7777]).toEqual([NOBODY, 0o777]);
    }
    rmDeep(target);
  }, 120_000);

  raceIt("item 2: a temporary FIFO swapped for a symlink to root's file right after it was made: refused, reported, root's file untouched, exit 3", async () => {
    const src = nobodySource();
    const repo = path.join(tmpDir(), 'repo');
    await cliOk(['--repo', repo, 'init']);
    await cliOk(['--repo', repo, 'create', src]);
    const v = victim();
    const before = v.state();
    // The FIFOs' folders made by nobody, so that user can rename in them.
    const target = nobodyTarget(['d0', 'd1', 'd2', 'd3'].map((d) => path.join(src, d)));
    let swapped: string | undefined;
    const { r, pauses } = await pausedRestore(['--repo', repo, 'restore', 'latest', target], (kind, p) => {
      if (kind !== 'temp' || swapped) return;
      expect(path.basename(p)).toMatch(/^\.snap-restore-/);
      expect(fs.lstatSync(p).isFIFO()).toBe(true);
      expect(swapAsNobody(p, v.file), `swap of ${p}`).toBe(true);
      swapped = p;
    });
    expect(swapped, `the restore paused at a temporary node (${pauses} pauses)`).toBeDefined();
    expect(v.state(), "root's file changed").toBe(before);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/its temporary entry was replaced by another \(a symlink\) while it was restored; not restored/);
    expect(r.stderr).not.toMatch(/SNAP_INTERNAL|\n\s+at /);
    // The symlink put in its place is removed; the FIFO it moved away stays where the other user put it.
    expect(fs.existsSync(swapped!)).toBe(false);
    expect(fs.lstatSync(`${swapped}.moved`).isFIFO()).toBe(true);
    // 12 FIFOs were recorded: 11 are restored, with their recorded owner and mode.
    const fifos = spawnSync('find', [target, '-type', 'p', '-name', 'p*']).stdout.toString().split('\n').filter(Boolean);
    expect(fifos).toHaveLength(11);
    for (const f of fifos) {
      const st = fs.lstatSync(f);
      expect([st.uid, st.mode & 0o7777]).toEqual([NOBODY, 0o666]);
    }
    rmDeep(target);
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------
// Paths and limits of the target

describe('restore targets', () => {
  it('a target whose path is longer than PATH_MAX below an existing folder, reached by handles: everything restored', async () => {
    // A snapshot path of 40 names of 200 bytes: 8 KB, twice PATH_MAX.
    const names = Array.from({ length: 40 }, (_, i) => `${String(i).padStart(3, '0')}${'n'.repeat(197)}`);
    const { repo, id } = await crafted(async (c) => {
      let t = await c.tree([await fileNode(c, 'deep', 'deep file\n'), node('fifo', 'fifo'), node('sym', 'symlink', { target: Buffer.from('deep') })]);
      for (let i = names.length - 1; i >= 0; i--) t = await c.tree([node(names[i]!, 'dir', { tree: t, mode: 0o700 }), await fileNode(c, `side${i}`, `side ${i}\n`)]);
      return t;
    });
    const target = tmpDir('snap-restore-long-');
    try {
      const r = await cli(['--repo', repo, 'restore', id, target]);
      expect(r.code, r.stderr).toBe(0);
      const fd = openDeep(target, names);
      try {
        expect(fs.readFileSync(`/proc/self/fd/${fd}/deep`, 'utf8')).toBe('deep file\n');
        expect(fs.lstatSync(`/proc/self/fd/${fd}/fifo`).isFIFO()).toBe(true);
        expect(fs.readlinkSync(`/proc/self/fd/${fd}/sym`)).toBe('deep');
      } finally {
        fs.closeSync(fd);
      }
      expect(fs.readFileSync(path.join(target, 'side0'), 'utf8')).toBe('side 0\n');
    } finally {
      rmDeep(target);
    }
  }, 120_000);
});

describe('restore targets: a directory the file system refuses', () => {
  it('issue 20 item 5: a directory that cannot be made (a 300-byte name) is named in a warning by its place in the target; everything else, directory metadata included, is restored; exit 3', async () => {
    const long = 'd'.repeat(300); // NAME_MAX is 255 bytes
    const { repo, id } = await crafted(async (c) => {
      const inner = await c.tree([await fileNode(c, 'lost', 'never restored\n')]);
      const sub = await c.tree([await fileNode(c, 'kept', 'kept\n')]);
      return c.tree([node(long, 'dir', { tree: inner }), node('sub', 'dir', { tree: sub, mode: 0o750 }), await fileNode(c, 'sibling', 'sibling\n')]);
    });
    const target = tmpDir('snap-restore-enametoolong-');
    const r = await cli(['--repo', repo, 'restore', id, target]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(new RegExp(`warning: .*${long.slice(0, 40)}`));
    expect(r.stderr).not.toMatch(/\/proc\/self\/fd/);
    expect(fs.readFileSync(path.join(target, 'sibling'), 'utf8')).toBe('sibling\n');
    expect(fs.readFileSync(path.join(target, 'sub', 'kept'), 'utf8')).toBe('kept\n');
    expect(fs.statSync(path.join(target, 'sub')).mode & 0o7777).toBe(0o750);
  }, 120_000);
});

describe('restore as a user who is not root', () => {
  raceIt('into a folder of its own that it may write but not read (mode 0300 when met): files restored, the recorded mode set', async () => {
    const base = tmpDir('snap-nobody-');
    fs.chmodSync(base, 0o755);
    fs.chownSync(base, NOBODY, NOBODY);
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(src, 'sub', 'f'), 'data\n');
    spawnSync('chown', ['-R', `${NOBODY}:${NOBODY}`, src]);
    await cliOk(['--repo', repo, 'init'], { asNobody: true });
    await cliOk(['--repo', repo, 'create', src], { asNobody: true });
    const target = path.join(base, 'target');
    await cliOk(['--repo', repo, 'restore', 'latest', target], { asNobody: true });
    // The second restore meets sub as a folder of mode 0300 that exists: it cannot list it, and
    // must still work inside it (a descriptor that only names it) and set its recorded mode.
    const sub = path.join(target, src, 'sub');
    fs.chmodSync(sub, 0o300);
    fs.rmSync(path.join(sub, 'f'));
    await cliOk(['--repo', repo, 'restore', '--overwrite', 'if-changed', 'latest', target], { asNobody: true });
    expect(fs.readFileSync(path.join(sub, 'f'), 'utf8')).toBe('data\n');
    expect(fs.statSync(sub).mode & 0o777).toBe(0o755);
  }, 120_000);
});
