// --one-file-system: a mount point inside a source is recorded as an empty directory, its
// contents are not read. Needs root to mount a tmpfs; skipped otherwise.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { snap, tmpDir } from './helpers/cli.js';

const src = tmpDir();
const mnt = path.join(src, 'mounted');
fs.mkdirSync(mnt);
const mounted = process.getuid?.() === 0 && spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]).status === 0;

describe('--one-file-system', () => {
  afterAll(() => {
    if (mounted) spawnSync('umount', [mnt]);
  });

  it('records the mount point but not what is mounted there', (ctx) => {
    if (!mounted) ctx.skip('needs root to mount a tmpfs inside the source');
    fs.writeFileSync(path.join(mnt, 'other-fs.txt'), 'on tmpfs');
    fs.writeFileSync(path.join(src, 'same-fs.txt'), 'on the source fs');
    const repo = path.join(tmpDir(), 'repo');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    expect(snap(['--repo', repo, 'create', src, '--one-file-system', '--tag', 'one']).code).toBe(0);
    const one = snap(['--repo', repo, 'ls', 'latest', src, '-R']).stdout.trim().split('\n');
    expect(one).toEqual([mnt, path.join(src, 'same-fs.txt')]);
    expect(snap(['--repo', repo, 'create', src]).code).toBe(0);
    const all = snap(['--repo', repo, 'ls', 'latest', src, '-R']).stdout.trim().split('\n');
    expect(all).toEqual([mnt, path.join(mnt, 'other-fs.txt'), path.join(src, 'same-fs.txt')]);
  });
});
