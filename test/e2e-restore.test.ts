// Restore options: --include, --dry-run, --overwrite never|if-changed|always, ownership as root.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { snap, snapBytes, tmpDir } from './helpers/cli.js';

describe('restore options', () => {
  let repo: string;
  let src: string;
  beforeAll(() => {
    repo = path.join(tmpDir(), 'repo');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    src = path.join(tmpDir(), 'src');
    fs.mkdirSync(path.join(src, 'keep', 'inner'), { recursive: true });
    fs.mkdirSync(path.join(src, 'other'));
    fs.writeFileSync(path.join(src, 'keep', 'inner', 'a.txt'), 'A');
    fs.writeFileSync(path.join(src, 'keep', 'b.txt'), 'B');
    fs.writeFileSync(path.join(src, 'other', 'c.txt'), 'C');
    fs.writeFileSync(path.join(src, 'owned'), 'owned');
    if (process.getuid?.() === 0) fs.chownSync(path.join(src, 'owned'), 1234, 5678);
    const c = snap(['--repo', repo, 'create', src]);
    expect(c.code, c.stderr).toBe(0);
  });

  it('--include restores only the named subtree (and the directories leading to it)', () => {
    const t = tmpDir();
    const r = snap(['--repo', repo, 'restore', 'latest', t, '--include', path.join(src, 'keep', 'inner')]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(t, src, 'keep', 'inner', 'a.txt'), 'utf8')).toBe('A');
    expect(fs.existsSync(path.join(t, src, 'keep', 'b.txt'))).toBe(false);
    expect(fs.existsSync(path.join(t, src, 'other'))).toBe(false);
    const none = snap(['--repo', repo, 'restore', 'latest', t, '--include', path.join(src, 'nope')]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/nope is not in snapshot/);
  });

  it('a target whose name is not UTF-8 is created and used as those bytes, given absolute or relative', () => {
    const base = tmpDir();
    const abs = Buffer.concat([Buffer.from(base + '/t-'), Buffer.from([0xff]), Buffer.from('/sub')]);
    const r = snapBytes(['--repo', repo, 'restore', 'latest', abs]);
    expect(r.code, r.stderr).toBe(0);
    const inAbs = Buffer.concat([abs, Buffer.from(path.join(src, 'keep', 'b.txt'))]);
    expect(fs.readFileSync(inAbs, 'utf8')).toBe('B');
    // Relative, from a working directory that is not UTF-8 either.
    const cwd = Buffer.concat([Buffer.from(base + '/t-'), Buffer.from([0xff])]);
    const rel = Buffer.concat([Buffer.from('rel-'), Buffer.from([0xfe])]);
    const r2 = snapBytes(['--repo', repo, 'restore', 'latest', rel], { cwdBytes: cwd });
    expect(r2.code, r2.stderr).toBe(0);
    expect(fs.readFileSync(Buffer.concat([cwd, Buffer.from('/'), rel, Buffer.from(path.join(src, 'keep', 'b.txt'))]), 'utf8')).toBe('B');
    // Nothing was made under a mangled (U+FFFD) name.
    expect(fs.readdirSync(base, { encoding: 'buffer' }).map((n) => n.toString('hex'))).toEqual([Buffer.concat([Buffer.from('t-'), Buffer.from([0xff])]).toString('hex')]);
  });

  it('--dry-run writes nothing and says what it would restore', () => {
    const t = path.join(tmpDir(), 'not-created');
    const r = snap(['--repo', repo, 'restore', 'latest', t, '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/would restore snapshot .*: 4 files/);
    expect(fs.existsSync(t)).toBe(false);
  });

  it('never (default) keeps an existing different file, if-changed and always replace it', () => {
    const t = tmpDir();
    expect(snap(['--repo', repo, 'restore', 'latest', t]).code).toBe(0);
    const b = path.join(t, src, 'keep', 'b.txt');
    fs.writeFileSync(b, 'edited locally');
    const never = snap(['--repo', repo, 'restore', 'latest', t]);
    expect(never.code).toBe(3);
    expect(never.stderr).toMatch(/b\.txt: exists and differs; not overwritten/);
    expect(fs.readFileSync(b, 'utf8')).toBe('edited locally');
    // identical files are not reported, only the one that differs
    expect(never.stderr.match(/warning:/g)?.length).toBe(1);
    const ifChanged = snap(['--repo', repo, 'restore', 'latest', t, '--overwrite', 'if-changed']);
    expect(ifChanged.code, ifChanged.stderr).toBe(0);
    expect(fs.readFileSync(b, 'utf8')).toBe('B');
    fs.writeFileSync(b, 'again');
    const always = snap(['--repo', repo, 'restore', 'latest', t, '--overwrite', 'always']);
    expect(always.code, always.stderr).toBe(0);
    expect(fs.readFileSync(b, 'utf8')).toBe('B');
  });

  it.skipIf(process.getuid?.() !== 0)('restores numeric ownership when run as root', () => {
    const t = tmpDir();
    expect(snap(['--repo', repo, 'restore', 'latest', t]).code).toBe(0);
    const st = fs.statSync(path.join(t, src, 'owned'));
    expect([st.uid, st.gid]).toEqual([1234, 5678]);
  });
});
