// fromSystemError: what a user reads of a failed system call.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fromSystemError } from '../src/core/errors.js';
import { newRepo, snap, tmpDir } from './helpers/cli.js';

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e,
  );
}

describe('fromSystemError', () => {
  it('names a path once where what was being done names it (a path longer than PATH_MAX: 4 KiB twice before)', async () => {
    const dir = tmpDir();
    const deep = path.join(dir, ...Array.from({ length: 30 }, () => 'd'.repeat(200)));
    const e = fromSystemError(await failure(fs.promises.lstat(deep)), `reading ${deep}`);
    expect([e.code, e.message]).toEqual(['SNAP_IO', `reading ${deep}: ENAMETOOLONG: name too long`]);

    const file = path.join(dir, 'f');
    fs.writeFileSync(file, '');
    const under = path.join(file, 'repo');
    const e2 = fromSystemError(await failure(fs.promises.mkdir(under)), `making the repository folder ${under}`);
    expect(e2.message).toBe(`making the repository folder ${under}: ENOTDIR: not a directory`);
  });

  it("keeps the path where what was being done does not name it, and the codes' own messages", async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, '');
    const e = fromSystemError(await failure(fs.promises.mkdir(path.join(file, 'x'))), 'making a folder');
    expect(e.message).toBe(`making a folder: ENOTDIR: not a directory, mkdir '${path.join(file, 'x')}'`);
    const gone = fromSystemError(await failure(fs.promises.readFile(path.join(dir, 'none'))), `reading ${path.join(dir, 'none')}`);
    expect([gone.code, gone.message]).toEqual(['SNAP_NOT_FOUND', `reading ${path.join(dir, 'none')}: no such file or directory`]);
  });

  it('a backup of a tree deeper than PATH_MAX: the warning names the deep path once (exit 3)', () => {
    const src = tmpDir();
    // Made level by level, each by its relative name: the whole path is too long for one call.
    const d = 'd'.repeat(200);
    execFileSync(process.execPath, ['-e', `const fs = require('fs'); for (let i = 0; i < 30; i++) { fs.mkdirSync('${d}'); process.chdir('${d}'); } fs.writeFileSync('f', 'x');`], { cwd: src });
    const repo = newRepo();
    const r = snap(['--repo', repo, 'create', src]);
    expect(r.code).toBe(3);
    const line = r.stderr.split('\n').find((l) => l.includes('ENAMETOOLONG'))!;
    expect(line).toMatch(/^warning: \/.*: cannot stat: ENAMETOOLONG: name too long$/);
    const shown = line.slice('warning: '.length, line.indexOf(': cannot stat'));
    expect(shown.length).toBeGreaterThan(4096);
    expect(line.split(shown).length - 1).toBe(1);
  });
});
