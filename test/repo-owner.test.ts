// Root running a command on a user's local repository that it trusts (--trust-owner or
// SNAP_TRUSTED_REPOS: a system backup into a folder the user set up) gives every folder and file it
// makes there to the repository's owner. Before, the first root backup made `data/`, `locks/` and
// `snapshots/` root's (mode 0700) and its packs and snapshot records root's (0600): the owner's next
// command could not take a lock, nor read a snapshot. Needs root and setpriv; skipped otherwise.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canSetpriv, snap, trackedDirs } from './helpers/cli.js';
import { assertSameTree, manifest } from './helpers/tree.js';

const dirs = trackedDirs('repo-owner');
afterAll(() => dirs.cleanup());

const NOBODY = { uid: 65534, gid: 65534 };

/** Everything under `root` (itself included) that is not owned by nobody, as "uid:gid mode path". */
function notNobodys(root: string): string[] {
  const out: string[] = [];
  const visit = (p: string): void => {
    const st = fs.lstatSync(p);
    if (st.uid !== NOBODY.uid || st.gid !== NOBODY.gid) out.push(`${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)} ${path.relative(root, p)}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) visit(path.join(p, n));
  };
  visit(root);
  return out;
}

describe("root's commands on a user's trusted repository", () => {
  it.skipIf(!canSetpriv()).each([
    ['plain', [] as string[]],
    ['encrypted', ['--encrypt']],
  ])('%s: what root writes is the owner’s, who then backs up, checks, restores, forgets and collects as before', (_kind, initArgs) => {
    const base = dirs.make('repo-owner-');
    fs.chmodSync(base, 0o755);
    const src = path.join(base, 'src');
    fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
    for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(src, i % 2 ? 'sub' : '', `f${i}`), Buffer.alloc(40_000 + i * 1000, i));
    fs.writeFileSync(path.join(src, 'notes.txt'), 'backed up by root\n');
    for (const p of [src, path.join(src, 'sub')]) fs.chmodSync(p, 0o755);
    const want = manifest(src);
    const repo = path.join(base, 'repo');
    fs.mkdirSync(repo, { mode: 0o700 });
    fs.chownSync(repo, NOBODY.uid, NOBODY.gid);
    const env = { SNAP_PASSWORD: 'the owner and root both know it' };
    // nobody's own cache (an encrypted repository's index is kept there), as a user has one in their home.
    const cache = path.join(base, 'nobody-cache');
    fs.mkdirSync(cache, { mode: 0o700 });
    fs.chownSync(cache, NOBODY.uid, NOBODY.gid);
    const asNobody = { asUser: NOBODY, env: { ...env, XDG_CACHE_HOME: cache } };

    const init = snap(['--repo', repo, 'init', ...initArgs], asNobody);
    expect(init.code, init.stderr).toBe(0);
    expect(notNobodys(repo), 'init made by nobody').toEqual([]);

    // Root backs up into it (trusting it), twice, and lists and checks it.
    for (const args of [['create', src], ['create', src], ['list'], ['check']]) {
      const r = snap(['--repo', repo, '--trust-owner', ...args], { env });
      expect(r.code, `root: ${args[0]}: ${r.stderr}`).toBe(0);
    }
    expect(fs.readdirSync(path.join(repo, 'snapshots')).filter((n) => !n.startsWith('.'))).toHaveLength(2);
    expect(notNobodys(repo), 'everything root made is nobody’s').toEqual([]);

    // The owner uses it as before: root's snapshots read, new data written, old data collected.
    fs.writeFileSync(path.join(src, 'notes.txt'), 'changed by its owner\n');
    const want2 = manifest(src);
    for (const args of [['create', src], ['check', '--read-data'], ['forget', '--keep-last', '1'], ['gc'], ['check', '--read-data']]) {
      const r = snap(['--repo', repo, ...args], asNobody);
      expect(r.code, `nobody: ${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
    const target = path.join(base, 'restored');
    fs.mkdirSync(target);
    fs.chownSync(target, NOBODY.uid, NOBODY.gid);
    const restored = snap(['--repo', repo, 'restore', 'latest', target], asNobody);
    expect(restored.code, restored.stderr).toBe(0);
    assertSameTree(want2, manifest(path.join(target, src)), 'the owner’s snapshot');
    expect(want2.size).toBe(want.size);
    expect(notNobodys(repo)).toEqual([]);
  }, 120_000);

  it.skipIf(!canSetpriv())('an encrypted repository whose index folder cannot be made in the cache (another user’s): SNAP_PERMISSION naming it', () => {
    const base = dirs.make('repo-owner-');
    fs.chmodSync(base, 0o755);
    const repo = path.join(base, 'repo');
    fs.mkdirSync(repo, { mode: 0o700 });
    fs.chownSync(repo, NOBODY.uid, NOBODY.gid);
    const rootsCache = path.join(base, 'roots-cache'); // root's, 0700: nobody may not make anything in it
    fs.mkdirSync(rootsCache, { mode: 0o700 });
    const r = snap(['--repo', repo, 'init', '--encrypt'], { asUser: NOBODY, env: { SNAP_PASSWORD: 'pw', XDG_CACHE_HOME: rootsCache } });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^snap: making the folder of the repository index .*roots-cache\/snap\/index\/.*: permission denied \[SNAP_PERMISSION\]$/m);
    expect(r.stderr).not.toMatch(/SNAP_INTERNAL/);
  });
});
