// create's exclude options: --exclude-caches, --exclude-if-present, --exclude-larger-than,
// absolute patterns, and the notice for patterns that matched nothing.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { newRepo, snap, tmpDir } from './helpers/cli.js';

const SIG = 'Signature: 8a477f597d28d172789f06886806bc55';

/** Back up src with extra args; return the set of paths (relative to src) the snapshot holds. */
function backedUp(repo: string, src: string, args: string[]): { paths: Set<string>; stderr: string; code: number } {
  const c = snap(['--repo', repo, 'create', src, ...args]);
  const t = tmpDir();
  const r = snap(['--repo', repo, 'restore', 'latest', t]);
  expect(r.code, r.stderr).toBe(0);
  const root = path.join(t, src);
  const paths = new Set<string>();
  const walk = (d: string): void => {
    for (const n of fs.readdirSync(d)) {
      const p = path.join(d, n);
      paths.add(path.relative(root, p));
      if (fs.lstatSync(p).isDirectory()) walk(p);
    }
  };
  walk(root);
  return { paths, stderr: c.stderr, code: c.code };
}

describe('exclude options', () => {
  let repo: string;
  let src: string;
  beforeAll(() => {
    repo = newRepo();
    src = path.join(tmpDir(), 'src');
    const w = (rel: string, data: string | Buffer): void => {
      fs.mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
      fs.writeFileSync(path.join(src, rel), data);
    };
    w('cache/CACHEDIR.TAG', `${SIG}\n# This file is a cache directory tag.\n`);
    w('cache/blob', 'cached');
    w('fake-cache/CACHEDIR.TAG', 'Signature: not the right one\n');
    w('fake-cache/kept', 'kept');
    w('project/.nobackup', '');
    w('project/src.c', 'int main;');
    w('big.iso', Buffer.alloc(300 * 1024, 1));
    w('small.txt', 'small');
    w('home/you/secret', 'secret');
    w('home/you/notes', 'notes');
  });

  it('--exclude-caches leaves out directories with a signed CACHEDIR.TAG, and only those', () => {
    const { paths, code, stderr } = backedUp(repo, src, ['--exclude-caches']);
    expect(code, stderr).toBe(0);
    expect(paths.has('cache')).toBe(false);
    expect(paths.has('fake-cache/kept')).toBe(true);
    expect(paths.has('fake-cache/CACHEDIR.TAG')).toBe(true);
  });

  it('--exclude-if-present NAME leaves out directories holding NAME', () => {
    const { paths } = backedUp(repo, src, ['--exclude-if-present', '.nobackup']);
    expect(paths.has('project')).toBe(false);
    expect(paths.has('cache/blob')).toBe(true);
  });

  it('--exclude-larger-than SIZE leaves out larger files only', () => {
    const { paths } = backedUp(repo, src, ['--exclude-larger-than', '200k']);
    expect(paths.has('big.iso')).toBe(false);
    expect(paths.has('small.txt')).toBe(true);
    const bad = snap(['--repo', repo, 'create', src, '--exclude-larger-than', 'lots']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/not a size: 'lots'.*\[SNAP_USAGE\]/);
  });

  it('an absolute pattern matches the absolute path; the .gitignore meaning (anchored at the source) still holds', () => {
    const abs = backedUp(repo, src, ['--exclude', path.join(src, 'home', 'you', 'secret')]);
    expect(abs.paths.has('home/you/secret')).toBe(false);
    expect(abs.paths.has('home/you/notes')).toBe(true);
    expect(abs.stderr).not.toMatch(/matched nothing/);
    const glob = backedUp(repo, src, ['--exclude', `${src}/home/*/notes`]);
    expect(glob.paths.has('home/you/notes')).toBe(false);
    const anchored = backedUp(repo, src, ['--exclude', '/home/you']);
    expect(anchored.paths.has('home/you')).toBe(false);
    expect(anchored.paths.has('small.txt')).toBe(true);
  });

  it('a pattern that matched nothing is reported at the end', () => {
    const r = backedUp(repo, src, ['--exclude', '/no/such/place', '--exclude', '*.txt', '--exclude', 'typo.isoo']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/exclude pattern '\/no\/such\/place' matched nothing/);
    expect(r.stderr).toMatch(/exclude pattern 'typo\.isoo' matched nothing/);
    expect(r.stderr).not.toMatch(/'\*\.txt' matched nothing/);
    expect(r.paths.has('small.txt')).toBe(false);
  });
});
