// `snap restore --delete` (issue 15, mirror restores): the real CLI, real files. Below the
// restored paths the target ends up exactly as the snapshot; what is beside them stays; a
// symlink planted in the target (to a directory outside, or where the snapshot has a directory)
// is removed as a link and never followed; --dry-run lists exactly the removals and changes nothing.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { snap, tmpDir } from './helpers/cli.js';

/** Every path under `root` (relative), with a type letter and, for files, the contents. */
function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = fs.lstatSync(p);
      const rel = path.relative(root, p);
      if (st.isSymbolicLink()) out.push(`l ${rel} -> ${fs.readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.push(`d ${rel}`);
        walk(p);
      } else out.push(`f ${rel} ${fs.readFileSync(p, 'utf8')}`);
    }
  };
  walk(root);
  return out;
}

function setup(): { base: string; repo: string; src: string; id: string; outside: string } {
  const base = tmpDir();
  const repo = path.join(base, 'repo');
  const src = path.join(base, 'src');
  fs.mkdirSync(path.join(src, 'd', 'e'), { recursive: true });
  fs.mkdirSync(path.join(src, 'keepdir'));
  fs.writeFileSync(path.join(src, 'a'), 'A');
  fs.writeFileSync(path.join(src, 'd', 'b'), 'B');
  fs.writeFileSync(path.join(src, 'd', 'e', 'c'), 'C');
  fs.writeFileSync(path.join(src, 'wasfile'), 'F');
  fs.mkdirSync(path.join(src, 'wasdir'));
  fs.writeFileSync(path.join(src, 'wasdir', 'in'), 'I');
  const outside = path.join(base, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'precious'), 'do not touch');
  expect(snap(['--repo', repo, 'init']).code).toBe(0);
  const c = snap(['--repo', repo, '--json', 'create', src]);
  expect(c.code, c.stderr).toBe(0);
  return { base, repo, src, id: (JSON.parse(c.stdout) as { id: string }).id, outside };
}

describe('restore --delete', () => {
  it('removes extra files, directories and symlinks below the restored path, keeps what is beside it, never follows a symlink', () => {
    const { base, repo, src, id, outside } = setup();
    const target = path.join(base, 'target');
    expect(snap(['--repo', repo, 'restore', id, target]).code).toBe(0);
    const restored = tree(target);
    const m = path.join(target, src); // the restored path inside the target
    // Planted: an extra file, an extra directory tree, a symlink to a directory outside (an extra
    // name), a symlink in place of a directory the snapshot has, a directory where the snapshot has
    // a file, a file where it has a directory, a changed file; and beside the restored path, a file.
    fs.writeFileSync(path.join(m, 'extra'), 'x');
    fs.mkdirSync(path.join(m, 'd', 'newdir', 'sub'), { recursive: true });
    fs.writeFileSync(path.join(m, 'd', 'newdir', 'sub', 'z'), 'z');
    fs.symlinkSync(outside, path.join(m, 'd', 'link'));
    fs.rmSync(path.join(m, 'd', 'e'), { recursive: true });
    fs.symlinkSync(outside, path.join(m, 'd', 'e'));
    fs.rmSync(path.join(m, 'wasfile'));
    fs.mkdirSync(path.join(m, 'wasfile'));
    fs.writeFileSync(path.join(m, 'wasfile', 'inner'), 'i');
    fs.rmSync(path.join(m, 'wasdir'), { recursive: true });
    fs.writeFileSync(path.join(m, 'wasdir'), 'now a file');
    fs.writeFileSync(path.join(m, 'a'), 'changed');
    const beside = path.join(path.dirname(m), 'beside');
    fs.writeFileSync(beside, 'not under the restored path');
    fs.writeFileSync(path.join(target, 'top'), 'at the target’s top');
    const planted = tree(target);
    const outsideBefore = tree(outside);

    // Dry run: exactly the removals, contents before their directory; nothing changes.
    const dry = snap(['--repo', repo, 'restore', id, target, '--delete', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    const removals = dry.stdout.split('\n').filter((l) => l.startsWith('remove')).map((l) => l.replace(/^remove\s+/, '')).sort();
    const t = fs.realpathSync(target);
    const at = (p: string): string => path.join(t, src, p);
    expect(removals).toEqual(
      [at('extra'), at('d/newdir/sub/z'), `${at('d/newdir/sub')}/`, `${at('d/newdir')}/`, at('d/link'), at('d/e'), at('wasfile/inner'), `${at('wasfile')}/`, at('wasdir')].sort(),
    );
    const ordered = dry.stdout.split('\n').filter((l) => l.startsWith('remove'));
    expect(ordered.findIndex((l) => l.endsWith('/sub/z'))).toBeLessThan(ordered.findIndex((l) => l.endsWith('/sub/')));
    expect(dry.stdout).toMatch(/would remove 9 entries/);
    expect(tree(target)).toEqual(planted);
    expect(tree(outside)).toEqual(outsideBefore);

    const r = snap(['--repo', repo, 'restore', id, target, '--delete']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/removed 9 entries/);
    // Below the restored path: exactly the snapshot; beside it and at the top: as it was.
    expect([...tree(target)].sort()).toEqual([...restored, `f ${path.relative(target, beside)} not under the restored path`, 'f top at the target’s top'].sort());
    expect(tree(m)).toEqual(tree(src));
    expect(tree(outside)).toEqual(outsideBefore);
    expect(fs.readFileSync(path.join(outside, 'precious'), 'utf8')).toBe('do not touch');
  });

  it('a file whose mode (or owner, as root) alone differs from the snapshot gets the snapshot\'s, content untouched', () => {
    const { base, repo, src, id } = setup();
    const target = path.join(base, 'target');
    expect(snap(['--repo', repo, 'restore', id, target]).code).toBe(0);
    const a = path.join(target, src, 'a');
    const want = fs.statSync(path.join(src, 'a'));
    const before = fs.statSync(a, { bigint: true }).mtimeNs;
    fs.chmodSync(a, 0o600); // size and time stay as the snapshot has them: only the mode differs
    const asRoot = process.getuid?.() === 0;
    if (asRoot) fs.chownSync(a, 65534, 65534);
    expect(fs.statSync(a, { bigint: true }).mtimeNs).toBe(before);
    const r = snap(['--repo', repo, 'restore', id, target, '--delete']);
    expect(r.code, r.stderr).toBe(0);
    const got = fs.statSync(a);
    expect((got.mode & 0o7777).toString(8)).toBe((want.mode & 0o7777).toString(8));
    if (asRoot) expect([got.uid, got.gid]).toEqual([want.uid, want.gid]);
    expect(fs.readFileSync(a, 'utf8')).toBe('A');
  });

  it('with --include prunes only below the included path', () => {
    const { base, repo, src, id } = setup();
    const target = path.join(base, 'target');
    expect(snap(['--repo', repo, 'restore', id, target]).code).toBe(0);
    const m = path.join(target, src);
    fs.writeFileSync(path.join(m, 'd', 'extra-in-d'), 'goes');
    fs.writeFileSync(path.join(m, 'extra-at-top'), 'stays: not under --include d');
    const r = snap(['--repo', repo, 'restore', id, target, '--delete', '--include', 'd']);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(path.join(m, 'd', 'extra-in-d'))).toBe(false);
    expect(fs.readFileSync(path.join(m, 'extra-at-top'), 'utf8')).toBe('stays: not under --include d');
    expect(tree(path.join(m, 'd'))).toEqual(tree(path.join(src, 'd')));
  });

  it('replaces a symlink planted at the restored path itself without following it', () => {
    const { base, repo, src, id, outside } = setup();
    const target = path.join(base, 'target');
    const m = path.join(target, src);
    fs.mkdirSync(path.dirname(m), { recursive: true });
    fs.symlinkSync(outside, m);
    const outsideBefore = tree(outside);
    const dry = snap(['--repo', repo, 'restore', id, target, '--delete', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout.split('\n').filter((l) => l.startsWith('remove'))).toEqual([`remove   ${path.join(fs.realpathSync(target), src)}`]);
    const r = snap(['--repo', repo, 'restore', id, target, '--delete']);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.lstatSync(m).isDirectory()).toBe(true);
    expect(tree(m)).toEqual(tree(src));
    expect(tree(outside)).toEqual(outsideBefore);
    // Without --delete the symlink is refused (not followed) and nothing is written through it.
    const t2 = path.join(base, 'target2');
    fs.mkdirSync(path.dirname(path.join(t2, src)), { recursive: true });
    fs.symlinkSync(outside, path.join(t2, src));
    const r2 = snap(['--repo', repo, 'restore', id, t2]);
    expect(r2.code).toBe(3);
    expect(r2.stderr).toMatch(/exists and is not a directory/);
    expect(tree(outside)).toEqual(outsideBefore);
  });

  it('a restored path that is a file replaces a directory planted in its place, and nothing beside it', () => {
    const { base, repo, src } = setup();
    const file = path.join(src, 'a');
    const c = snap(['--repo', repo, '--json', 'create', file]);
    expect(c.code, c.stderr).toBe(0);
    const id = (JSON.parse(c.stdout) as { id: string }).id;
    const target = path.join(base, 'target');
    fs.mkdirSync(path.join(target, file, 'inner'), { recursive: true });
    fs.writeFileSync(path.join(target, file, 'inner', 'x'), 'x');
    fs.writeFileSync(path.join(target, src, 'beside'), 'stays');
    const dry = snap(['--repo', repo, 'restore', id, target, '--delete', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    const t = path.join(fs.realpathSync(target), file);
    expect(dry.stdout.split('\n').filter((l) => l.startsWith('remove'))).toEqual([`remove   ${t}/inner/x`, `remove   ${t}/inner/`, `remove   ${t}/`]);
    const r = snap(['--repo', repo, 'restore', id, target, '--delete']);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(target, file), 'utf8')).toBe('A');
    expect(fs.readFileSync(path.join(target, src, 'beside'), 'utf8')).toBe('stays');
  });

  it('lists removals in --json dry runs; refuses --overwrite never', () => {
    const { base, repo, src, id } = setup();
    const target = path.join(base, 'target');
    expect(snap(['--repo', repo, 'restore', id, target]).code).toBe(0);
    fs.writeFileSync(path.join(target, src, 'extra'), 'x');
    const dry = snap(['--repo', repo, '--json', 'restore', id, target, '--delete', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    const j = JSON.parse(dry.stdout) as { entries: { type: string; path: string }[]; removed: number };
    expect(j.entries.filter((e) => e.type === 'remove').map((e) => path.basename(e.path))).toEqual(['extra']);
    expect(j.removed).toBe(1);
    expect(fs.existsSync(path.join(target, src, 'extra'))).toBe(true);
    const bad = snap(['--repo', repo, 'restore', id, target, '--delete', '--overwrite', 'never']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/SNAP_USAGE/);
  });
});
