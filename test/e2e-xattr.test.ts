// Extended attributes and POSIX ACLs: backed up, restored, noticed when changed, warned about
// when a file system cannot store them or the optional binding is missing.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, canSetpriv, newRepo, snap, tmpDir } from './helpers/cli.js';

const has = (cmd: string): boolean => spawnSync(cmd, ['--version']).status === 0;
const TOOLS = has('setfattr') && has('getfattr') && has('setfacl') && has('getfacl');
const SKIP = TOOLS ? '' : ' [SKIPPED: needs setfattr/getfattr and setfacl/getfacl: apt-get install attr acl]';

function run(cmd: string, args: string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Every attribute (hex values) of every entry under dir, paths relative to it, symlinks not followed. */
function dump(dir: string): string {
  return run('getfattr', ['-R', '-h', '-d', '-m', '-', '-e', 'hex', '.'], dir);
}

/** The CLI as on a machine without @napi-rs/xattr. */
function snapNoBinding(args: string[]) {
  const r = spawnSync(process.execPath, ['-r', path.join(ROOT, 'test', 'helpers', 'hide-xattr.cjs'), CLI, ...args], {
    env: { ...process.env, SNAP_REPO: '', XDG_DATA_HOME: '' },
  });
  return { code: r.status ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

function snapshotIds(repo: string): string[] {
  const r = snap(['--repo', repo, 'list', '--json']);
  return (JSON.parse(r.stdout) as { id: string }[]).map((s) => s.id);
}

describe.skipIf(!TOOLS)(`extended attributes and ACLs${SKIP}`, () => {
  let repo: string;
  let src: string;
  beforeAll(() => {
    repo = newRepo();
    src = path.join(tmpDir(), 'src');
    fs.mkdirSync(path.join(src, 'dir', 'sub'), { recursive: true });
    fs.writeFileSync(path.join(src, 'plain'), 'no attributes');
    fs.writeFileSync(path.join(src, 'tagged'), 'user attributes');
    fs.writeFileSync(path.join(src, 'acl'), 'an access ACL');
    fs.writeFileSync(path.join(src, 'readonly'), 'read-only, with an attribute');
    fs.writeFileSync(path.join(src, 'big'), Buffer.alloc(3 * 1024 * 1024, 1)); // several chunks: written on the main thread
    fs.symlinkSync('plain', path.join(src, 'link'));
    run('setfattr', ['-n', 'user.color', '-v', 'blue', path.join(src, 'tagged')]);
    run('setfattr', ['-n', 'user.binary', '-v', '0x00ff00', path.join(src, 'tagged')]);
    run('setfattr', ['-n', 'user.empty', path.join(src, 'tagged')]);
    run('setfattr', ['-n', 'user.big', '-v', '0x' + 'ab'.repeat(3000), path.join(src, 'big')]);
    run('setfacl', ['-m', 'u:nobody:rw,g:nogroup:r', path.join(src, 'acl')]);
    run('setfacl', ['-d', '-m', 'u:nobody:rwx', path.join(src, 'dir')]);
    run('setfacl', ['-m', 'u:nobody:rx', path.join(src, 'dir')]);
    run('setfattr', ['-n', 'user.dir', '-v', 'on a directory', path.join(src, 'dir', 'sub')]);
    run('setfattr', ['-n', 'user.ro', '-v', '1', path.join(src, 'readonly')]);
    fs.chmodSync(path.join(src, 'readonly'), 0o444);
    const c = snap(['--repo', repo, 'create', src]);
    expect(c.code, c.stderr).toBe(0);
  });

  it('restores user attributes, access and default ACLs on files and directories, exactly', () => {
    const t = tmpDir();
    const r = snap(['--repo', repo, 'restore', 'latest', t]);
    expect(r.code, r.stderr).toBe(0);
    const restored = path.join(t, src);
    const before = dump(src);
    expect(before).toMatch(/user\.color=0x626c7565/);
    expect(before).toMatch(/system\.posix_acl_default=/);
    expect(dump(restored)).toBe(before);
    expect(run('getfacl', ['-p', path.join(restored, 'acl')]).replace(restored, '')).toBe(run('getfacl', ['-p', path.join(src, 'acl')]).replace(src, ''));
    expect(fs.statSync(path.join(restored, 'readonly')).mode & 0o7777).toBe(0o444);
    expect(fs.statSync(path.join(restored, 'acl')).mode & 0o7777).toBe(fs.statSync(path.join(src, 'acl')).mode & 0o7777);
    // A file created in the restored directory inherits its default ACL.
    fs.writeFileSync(path.join(restored, 'dir', 'new'), '');
    expect(run('getfacl', ['-p', path.join(restored, 'dir', 'new')])).toMatch(/user:nobody:/);
  });

  it('a changed attribute (same content, same mtime) is noticed by the next backup', () => {
    const f = path.join(src, 'plain');
    const mtime = fs.statSync(f).mtime;
    run('setfattr', ['-n', 'user.later', '-v', 'added', f]);
    fs.utimesSync(f, mtime, mtime);
    run('setfattr', ['-n', 'user.dir', '-v', 'changed', path.join(src, 'dir', 'sub')]);
    const c = snap(['--repo', repo, 'create', src]);
    expect(c.code, c.stderr).toBe(0);
    const ids = snapshotIds(repo);
    const diff = snap(['--repo', repo, 'diff', ids.at(-2)!, ids.at(-1)!]);
    expect(diff.code, diff.stderr).toBe(0);
    expect(diff.stdout).toMatch(/plain.*extended attributes \(none\) -> user\.later/);
    expect(diff.stdout).toMatch(/sub.*extended attributes user\.dir -> user\.dir/);
    const t = tmpDir();
    expect(snap(['--repo', repo, 'restore', 'latest', t]).code).toBe(0);
    expect(dump(path.join(t, src))).toBe(dump(src));
  });

  it.skipIf(!canSetpriv())('a user who is not root restores user attributes on a read-only file [skipped unless root with setpriv]', () => {
    const base = tmpDir();
    fs.chmodSync(base, 0o755);
    fs.chownSync(base, 65534, 65534);
    const user = { uid: 65534, gid: 65534 };
    const own = path.join(base, 'src');
    fs.mkdirSync(own);
    const f = path.join(own, 'ro');
    fs.writeFileSync(f, 'read-only');
    run('setfattr', ['-n', 'user.mine', '-v', 'kept', f]);
    fs.chmodSync(f, 0o444);
    for (const p of [own, f]) fs.chownSync(p, 65534, 65534);
    const r2 = path.join(base, 'repo');
    expect(snap(['--repo', r2, 'init'], { asUser: user }).code).toBe(0);
    const c = snap(['--repo', r2, 'create', own], { asUser: user });
    expect(c.code, c.stderr).toBe(0);
    const t = path.join(base, 'target');
    const r = snap(['--repo', r2, 'restore', 'latest', t], { asUser: user });
    expect(r.code, r.stderr).toBe(0);
    const back = path.join(t, f);
    expect(run('getfattr', ['-n', 'user.mine', '--only-values', back])).toBe('kept');
    expect(fs.statSync(back).mode & 0o7777).toBe(0o444);
  });

  it('warns, naming each attribute, when the target file system cannot store attributes', (ctx) => {
    const mnt = tmpDir();
    if (spawnSync('mount', ['-t', 'ramfs', 'none', mnt]).status !== 0) {
      console.warn('SKIPPED: mounting a ramfs (a file system without xattrs) needs root with CAP_SYS_ADMIN');
      ctx.skip();
      return;
    }
    try {
      const r = snap(['--repo', repo, 'restore', 'latest', mnt, '--include', path.join(src, 'tagged')]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/tagged: extended attribute user\.color not restored: the target file system cannot store it/);
      expect(r.stderr).toMatch(/tagged: extended attribute user\.binary not restored/);
      expect(fs.readFileSync(path.join(mnt, src, 'tagged'), 'utf8')).toBe('user attributes');
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  it('without the optional binding: backs up everything else and says once that attributes are left out', () => {
    const c = snapNoBinding(['--repo', repo, 'create', src]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stderr.match(/extended attributes and ACLs are not backed up: the optional package @napi-rs\/xattr/g)?.length).toBe(1);
    const t = tmpDir();
    // Restoring a snapshot that holds attributes: said once, and the restore is incomplete (exit 3).
    const r = snapNoBinding(['--repo', repo, 'restore', snapshotIds(repo).at(-2)!, t]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr.match(/extended attributes and ACLs are not restored/g)?.length).toBe(1);
    expect(fs.readFileSync(path.join(t, src, 'tagged'), 'utf8')).toBe('user attributes');
    // The snapshot made without the binding is then complete except for attributes; a backup with
    // the binding again does not reuse its attribute-less trees.
    const again = snap(['--repo', repo, 'create', src]);
    expect(again.code, again.stderr).toBe(0);
    const t2 = tmpDir();
    expect(snap(['--repo', repo, 'restore', 'latest', t2]).code).toBe(0);
    expect(dump(path.join(t2, src))).toBe(dump(src));
  });
});
