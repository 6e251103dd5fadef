// Foreign repositories (issue 20, items 1, 3 and 8): a local repository, or its index, owned by
// another user is refused (SNAP_FOREIGN_REPO) unless trusted (--trust-owner, SNAP_TRUSTED_REPOS),
// as git refuses one since CVE-2022-24765; an index folder that is, or holds, a symlink is refused
// whoever owns it; permission errors on an index are not damage (it is never deleted for them).
// Run as root, the second user is `nobody`; as another user these tests are skipped, visibly.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupTmp, cli, cliOk, tmpDir } from './lib.js';
import { noCrash } from './crafted-lib.js';

afterAll(cleanupTmp);

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;
const rootIt = isRoot ? it : it.skip;
if (!isRoot) console.warn('[foreign-repo] skipped: these tests need root, to make files owned by another user (nobody)');

/** A base folder others can enter (tmpDir makes 0700 folders). */
function openBase(): string {
  const base = tmpDir('snap-foreign-');
  fs.chmodSync(base, 0o755);
  return base;
}

function chownTree(p: string, uid: number, gid: number): void {
  fs.lchownSync(p, uid, gid);
  if (fs.lstatSync(p).isDirectory()) for (const n of fs.readdirSync(p)) chownTree(path.join(p, n), uid, gid);
}

/** A repository with one snapshot, then handed to nobody (as if nobody had made it). */
async function nobodysRepo(): Promise<{ base: string; repo: string }> {
  const base = openBase();
  const repo = path.join(base, 'repo');
  const src = path.join(base, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'f'), 'data');
  await cliOk(['--repo', repo, 'init']);
  await cliOk(['--repo', repo, 'create', src]);
  chownTree(repo, NOBODY, NOBODY);
  return { base, repo };
}

describe('a repository owned by another user', () => {
  rootIt('root refuses it with SNAP_FOREIGN_REPO, unless trusted by --trust-owner or SNAP_TRUSTED_REPOS', async () => {
    const { base, repo } = await nobodysRepo();
    for (const args of [['list'], ['check'], ['ls', 'latest', '/']]) {
      const r = await cli(['--repo', repo, ...args]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/belongs to uid 65534, not to root.*--trust-owner.*\[SNAP_FOREIGN_REPO\]/s);
      expect(noCrash(r.stderr)).toEqual([]);
    }
    await cliOk(['--repo', repo, '--trust-owner', 'list']);
    await cliOk(['--repo', repo, 'list'], { env: { SNAP_TRUSTED_REPOS: `/nonexistent:${repo}` } });
    // Another folder in the list trusts nothing here; a relative entry is relative to the working folder.
    const other = await cli(['--repo', repo, 'list'], { env: { SNAP_TRUSTED_REPOS: path.join(base, 'elsewhere') } });
    expect(other.stderr).toMatch(/\[SNAP_FOREIGN_REPO\]/);
    await cliOk(['--repo', repo, 'list'], { cwd: base, env: { SNAP_TRUSTED_REPOS: 'repo' } });
  });

  rootIt("symlinks planted as LevelDB's next MANIFEST files do not make root overwrite a file (issue 20, item 3)", async () => {
    const { base, repo } = await nobodysRepo();
    const victim = path.join(base, 'victim');
    fs.writeFileSync(victim, 'root-only secret\n', { mode: 0o600 });
    const index = path.join(repo, 'index');
    const existing = new Set(fs.readdirSync(index));
    const planted: string[] = [];
    for (let n = 1; n <= 60; n++) {
      for (const name of [`MANIFEST-${String(n).padStart(6, '0')}`, `${String(n).padStart(6, '0')}.log`, `${String(n).padStart(6, '0')}.ldb`]) {
        if (existing.has(name)) continue;
        fs.symlinkSync(victim, path.join(index, name));
        fs.lchownSync(path.join(index, name), NOBODY, NOBODY);
        planted.push(name);
      }
    }
    expect(planted.length).toBeGreaterThan(100);
    for (const trust of [[], ['--trust-owner']]) {
      for (const cmd of [['list'], ['index', 'rebuild'], ['create', path.join(base, 'src')]]) {
        const r = await cli(['--repo', repo, ...trust, ...cmd]);
        expect(r.code, `${trust.join(' ')} ${cmd[0]}: ${r.stderr}`).toBe(1);
        expect(r.stderr).toMatch(/\[SNAP_FOREIGN_REPO\]/);
        if (trust.length > 0) expect(r.stderr).toMatch(/holds a symbolic link/);
        expect(fs.readFileSync(victim, 'utf8'), 'the victim file is untouched').toBe('root-only secret\n');
        expect(fs.statSync(victim).uid).toBe(0);
        expect(fs.statSync(victim).mode & 0o777).toBe(0o600);
      }
    }
    for (const name of planted) expect(fs.lstatSync(path.join(index, name)).isSymbolicLink(), name).toBe(true);
  });

  rootIt('an index folder that is a symlink is refused, trusted or not, and what it points at is untouched', async () => {
    const { base, repo } = await nobodysRepo();
    const elsewhere = path.join(base, 'elsewhere');
    fs.mkdirSync(elsewhere);
    fs.writeFileSync(path.join(elsewhere, 'keep'), 'x');
    fs.rmSync(path.join(repo, 'index'), { recursive: true });
    fs.symlinkSync(elsewhere, path.join(repo, 'index'));
    const r = await cli(['--repo', repo, '--trust-owner', 'list']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is a symbolic link.*\[SNAP_FOREIGN_REPO\]/s);
    expect(fs.readdirSync(elsewhere)).toEqual(['keep']);
  });

  rootIt('a repository of root run by nobody: refused; its index is never deleted or rebuilt as "damaged" (permission is not damage)', async () => {
    // nobody's repository folder, but the index was made by root (who ran it with --trust-owner).
    const { repo } = await nobodysRepo();
    chownTree(path.join(repo, 'index'), 0, 0);
    await cliOk(['--repo', repo, '--trust-owner', 'list']);
    const before = fs.readdirSync(path.join(repo, 'index')).sort();
    const r = await cli(['--repo', repo, 'list'], { asNobody: true });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/the index folder .* belongs to root, not to uid 65534.*\[SNAP_FOREIGN_REPO\]/s);
    const t = await cli(['--repo', repo, '--trust-owner', 'list'], { asNobody: true });
    expect(t.code, t.stderr).toBe(1);
    expect(t.stderr).toMatch(/\[SNAP_PERMISSION\]/);
    expect(t.stderr).not.toMatch(/damaged|rebuil/);
    expect(noCrash(t.stderr)).toEqual([]);
    expect(fs.readdirSync(path.join(repo, 'index')).sort(), 'the index is as it was').toEqual(before);
    expect(fs.statSync(path.join(repo, 'index')).uid).toBe(0);
    // Its owner still uses it.
    await cliOk(['--repo', repo, '--trust-owner', 'list']);
  });

  rootIt("root's command on nobody's trusted repository gives the index files it wrote to nobody; files root left unreadable (killed before that) are rebuilt by nobody, saying why", async () => {
    const { repo } = await nobodysRepo();
    const index = path.join(repo, 'index');
    // Root, trusting the repository, reads it: LevelDB writes a new log and manifest at each open,
    // and the index's records; what root leaves in the index folder is nobody's.
    const before = new Set(fs.readdirSync(index));
    await cliOk(['--repo', repo, '--trust-owner', 'check']);
    expect(fs.readdirSync(index).filter((n) => !before.has(n)).length, 'files root wrote').toBeGreaterThan(0);
    for (const n of fs.readdirSync(index)) expect(fs.statSync(path.join(index, n)).uid, n).toBe(NOBODY);
    const quiet = await cli(['--repo', repo, 'list'], { asNobody: true });
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stdout).toMatch(/1 snapshot/);
    expect(quiet.stderr).not.toMatch(/rebuil|damaged/);
    // As if root had been killed before giving them back: files of the index that nobody cannot open.
    for (const n of fs.readdirSync(index)) {
      fs.chownSync(path.join(index, n), 0, 0);
      fs.chmodSync(path.join(index, n), 0o600);
    }
    const r = await cli(['--repo', repo, 'list'], { asNobody: true });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1 snapshot/);
    expect(r.stderr).toMatch(/the repository index is not readable by this user \(another user wrote files in it\); rebuilding it/);
    expect(noCrash(r.stderr)).toEqual([]);
    for (const n of fs.readdirSync(index)) expect(fs.statSync(path.join(index, n)).uid, n).toBe(NOBODY);
    const again = await cli(['--repo', repo, 'list'], { asNobody: true });
    expect(again.stderr).not.toMatch(/rebuil|damaged/);
  });

  rootIt("nobody's own repository works for nobody (the check does not get in the owner's way)", async () => {
    const { repo } = await nobodysRepo();
    const r = await cli(['--repo', repo, 'list'], { asNobody: true });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1 snapshot/);
  });
});
