// Nesting depth and DAG sharing (issue 20, item 6). Trees name subtrees by id, so a repository can
// nest thousands of levels (a real backup 2,000 levels deep exists) or share one subtree under two
// names at each of 40 levels (2^40 paths from 40 trees). Every walk is iterative (no recursion, so
// no "Maximum call stack size exceeded"); walks that need only each tree once (check, stats, the
// affected-paths search) read each tree once; walks that must expand paths (ls -R, find, export,
// dups, diff) refuse a snapshot whose paths would exceed what any file system holds, with a clear
// error, at once. Identical directories legitimately share a tree: a real backup is never refused.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupTmp, cliOk, tmpDir } from './lib.js';
import { cliRss, dirNode, fileNode, freshRepo, noCrash, putObjects, putSnapshot, sha, treeBytes } from './crafted-lib.js';

afterAll(cleanupTmp);

const RSS_BOUND_MIB = 300;

/** Trees bottom-up: level `depth` holds a file; each level above holds `links` names of the level below. */
async function chain(repo: string, depth: number, links: number, withBlob = true): Promise<Buffer> {
  const content = Buffer.from('deep content\n');
  const [blob] = withBlob ? await putObjects(repo, 'blob', [{ raw: content }]) : [sha(content)];
  const trees: Buffer[] = [];
  let below = treeBytes([fileNode('f', [blob!], content.length)]);
  trees.push(below);
  for (let i = 0; i < depth; i++) {
    const id = sha(below);
    const names = links === 1 ? ['d'] : Array.from({ length: links }, (_, k) => String.fromCharCode(97 + k));
    below = treeBytes(names.map((n) => dirNode(n, id)));
    trees.push(below);
  }
  for (let i = 0; i < trees.length; i += 2000) await putObjects(repo, 'tree', trees.slice(i, i + 2000).map((raw) => ({ raw })));
  return sha(below);
}

function expectClean(r: { code: number | null; stderr: string; rssMiB: number }, code: number, what: string): void {
  expect(r.code, `${what}\n${r.stderr.slice(0, 2000)}`).toBe(code);
  expect(noCrash(r.stderr), `${what}\n${r.stderr.slice(0, 2000)}`).toEqual([]);
  expect(r.rssMiB, `${what}: peak RSS (MiB)`).toBeLessThan(RSS_BOUND_MIB);
}

describe('5,000 levels of nesting', () => {
  it('ls -R, find, export, dups, diff, stats, check and check of a damaged object all work, without recursion', async () => {
    const { base, repo } = await freshRepo();
    const depth = 5000;
    const root = await chain(repo, depth, 1);
    const deep = await putSnapshot(repo, root, { tag: 'deep' });
    const [empty] = await putObjects(repo, 'tree', [{ raw: treeBytes([]) }]);
    const none = await putSnapshot(repo, empty!, { tag: 'empty' });
    await cliOk(['--repo', repo, 'index', 'rebuild']);
    const ls = await cliRss(['--repo', repo, 'ls', '-R', deep, '/']);
    expectClean(ls, 0, 'ls -R');
    expect(ls.stdout.split('\n').filter((l) => l.trim() !== '').length).toBe(depth + 1);
    const find = await cliRss(['--repo', repo, 'find', 'f']);
    expectClean(find, 0, 'find');
    expect(find.stdout).toContain(`${'/d'.repeat(depth)}/f`);
    const out = path.join(base, 'deep.tar');
    expectClean(await cliRss(['--repo', repo, 'export', deep, out]), 0, 'export');
    const tar = spawnSync('tar', ['-tf', out], { encoding: 'utf8', maxBuffer: 1 << 28 });
    expect(tar.status).toBe(0);
    expect(tar.stdout).toContain(`${'d/'.repeat(depth)}f`);
    expectClean(await cliRss(['--repo', repo, 'dups', deep]), 0, 'dups');
    const diff = await cliRss(['--repo', repo, 'diff', none, deep]);
    expectClean(diff, 0, 'diff');
    expect(diff.stdout).toContain(`${'/d'.repeat(depth)}/f`);
    expectClean(await cliRss(['--repo', repo, 'stats', deep]), 0, 'stats');
    expectClean(await cliRss(['--repo', repo, 'check', '--read-data']), 0, 'check');
  }, 300_000);

  it('check names the path of a missing object 5,000 levels down (the affected-paths walk); repair replaces the snapshot', async () => {
    const { repo } = await freshRepo();
    const root = await chain(repo, 5000, 1, false); // the file's chunk is nowhere
    await putSnapshot(repo, root);
    await cliOk(['--repo', repo, 'index', 'rebuild']);
    const c = await cliRss(['--repo', repo, 'check']);
    expectClean(c, 1, 'check');
    expect(c.stdout + c.stderr).toContain(`${'/d'.repeat(20)}`);
    // repair rewrites the 5,000 trees on the way to the lost file (bottom-up, without recursion).
    const r = await cliRss(['--repo', repo, 'repair', '--forget']);
    expectClean(r, 0, 'repair');
    const after = await cliRss(['--repo', repo, 'check']);
    expectClean(after, 0, 'check after repair');
  }, 180_000);
});

describe('a DAG: 40 levels, two names for the same subtree at each', () => {
  it('check and stats read each tree once; ls -R, find, export, dups and diff refuse at once with a clear error', async () => {
    const { base, repo } = await freshRepo();
    const root = await chain(repo, 40, 2);
    const dag = await putSnapshot(repo, root, { tag: 'dag' });
    const [empty] = await putObjects(repo, 'tree', [{ raw: treeBytes([]) }]);
    const none = await putSnapshot(repo, empty!, { tag: 'empty' });
    await cliOk(['--repo', repo, 'index', 'rebuild']);
    const c = await cliRss(['--repo', repo, '--json', 'check', '--read-data'], { timeoutMs: 30_000 });
    expectClean(c, 0, 'check');
    expect(JSON.parse(c.stdout).trees).toBe(42);
    expectClean(await cliRss(['--repo', repo, 'stats', dag], { timeoutMs: 30_000 }), 0, 'stats');
    for (const args of [['ls', '-R', dag, '/'], ['find', 'f'], ['export', dag, path.join(base, 'dag.tar')], ['dups', dag], ['diff', none, dag]]) {
      const r = await cliRss(['--repo', repo, ...args], { timeoutMs: 30_000 });
      expectClean(r, 1, args[0]!);
      expect(r.stderr, args[0]).toMatch(/expand to more than 4294967296 paths.*\[SNAP_CORRUPT\]/s);
    }
    // Paths of one branch can still be listed.
    const one = await cliRss(['--repo', repo, 'ls', dag, `/${'a/'.repeat(39)}a`], { timeoutMs: 30_000 });
    expectClean(one, 0, 'ls of one directory');
    expect(one.stdout).toMatch(/f/);
  }, 300_000);

  it('a real backup with identical directories (sharing trees) is listed, found and exported in full', async () => {
    const base = tmpDir('snap-dag-real-');
    const repo = path.join(base, 'repo');
    await cliOk(['--repo', repo, 'init']);
    const src = path.join(base, 'src');
    // 4 levels, 3 identical copies at each: 81 identical leaf directories, 121 directories in all.
    const make = (dir: string, level: number): void => {
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'file'), 'same\n');
      fs.utimesSync(path.join(dir, 'file'), 1, 1);
      if (level < 4) for (const n of ['x', 'y', 'z']) make(path.join(dir, n), level + 1);
      fs.utimesSync(dir, 1, 1);
    };
    make(src, 0);
    for (let l = 4; l >= 0; l--) {
      // Directory times again, bottom-up (writing children changed them).
    }
    const walk = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name));
      fs.utimesSync(d, 1, 1);
    };
    walk(src);
    await cliOk(['--repo', repo, 'create', src]);
    const ls = await cliOk(['--repo', repo, 'ls', '-R', 'latest', src]);
    expect(ls.stdout.split('\n').filter((l) => /file/.test(l)).length).toBe(121);
    const find = await cliOk(['--repo', repo, 'find', 'file']);
    expect(find.stdout.split('\n').filter((l) => /file/.test(l)).length).toBe(121);
    const out = path.join(base, 'real.tar');
    await cliOk(['--repo', repo, 'export', 'latest', out]);
    expect(spawnSync('tar', ['-tf', out], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.endsWith('/file')).length).toBe(121);
  }, 120_000);
});

describe('a real backup 2,000 levels deep', () => {
  it('is backed up and exported as .tar', async () => {
    const base = tmpDir('snap-deep-real-');
    const repo = path.join(base, 'repo');
    await cliOk(['--repo', repo, 'init']);
    const src = path.join(base, 's');
    fs.mkdirSync(src);
    // Made with relative steps: the whole path is longer than PATH_MAX only near the bottom.
    const depth = 2000;
    const mk = spawnSync('sh', ['-c', `cd "$0" && i=0; while [ $i -lt ${depth} ]; do mkdir d && cd d || exit 1; i=$((i+1)); done; echo bottom > f`, src]);
    expect(mk.status, String(mk.stderr)).toBe(0);
    const c = await cliRss(['--repo', repo, 'create', src], { timeoutMs: 120_000 });
    expect([0, 3], c.stderr.slice(0, 2000)).toContain(c.code);
    expect(noCrash(c.stderr)).toEqual([]);
    const out = path.join(base, 'deep.tar');
    const e = await cliRss(['--repo', repo, 'export', 'latest', out], { timeoutMs: 120_000 });
    expectClean(e, 0, 'export');
    const names = spawnSync('tar', ['-tf', out], { encoding: 'utf8', maxBuffer: 1 << 28 }).stdout.split('\n').filter((l) => l !== '');
    expect(names.length).toBeGreaterThan(1000);
    // Cleanup of a tree deeper than PATH_MAX: rm -rf copes.
    spawnSync('rm', ['-rf', src]);
  }, 300_000);
});
