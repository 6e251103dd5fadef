// zip64 end to end: a sparse 4200 MiB source file (a few bytes of data in zeros) is backed up
// (it dedups to a handful of chunks), exported to .zip with --verify, and checked by Python's
// zipfile (every CRC) and zipinfo. Measured on this 2-core machine: 76-78 s in all, idle or
// under a load average of 6, most of it the backup of 4.1 GiB of zeros; export with --verify and
// Python's testzip() take the rest. Close to the ~90 s budget of a normal test, and slower on
// a busy CI machine, so it runs only with SNAP_TORTURE (npm run test:torture); test/export.test.ts
// keeps a zip64 reader case (offsets past 4 GiB, 66000 entries) that takes seconds.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { snap, tmpDir } from '../helpers/cli.js';

const TORTURE = (process.env.SNAP_TORTURE ?? '') !== '' && process.env.SNAP_TORTURE !== '0';
const SIZE = 4200 * 2 ** 20;
const base = tmpDir('snap-export-zip64-');
afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

describe.skipIf(!TORTURE)('export: a sparse file over 4 GiB to zip64', () => {
  it('backs up, exports with --verify; Python zipfile checks every CRC and the size', () => {
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    const big = path.join(src, 'sparse.img');
    const fd = fs.openSync(big, 'w');
    fs.ftruncateSync(fd, SIZE);
    fs.writeSync(fd, Buffer.from('hello'), 0, 5, 1000);
    fs.writeSync(fd, Buffer.from('tail'), 0, 4, SIZE - 100);
    fs.closeSync(fd);
    const repo = path.join(base, 'repo');
    for (const args of [['init'], ['create', src]]) {
      const r = snap(['--repo', repo, ...args]);
      expect(r.code, r.stderr).toBe(0);
    }
    fs.rmSync(big); // the repository holds it now; no 4 GiB file is needed on disk
    const out = path.join(base, 'big.zip');
    const r = snap(['--repo', repo, 'export', 'latest', out, '--verify']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/verified .*big\.zip: \d+ entries and 4\.10 GiB of file data match the snapshot/);
    expect(fs.statSync(out).size).toBeLessThan(64 * 2 ** 20); // zeros deflate ~1000:1

    const name = big.slice(1);
    const py = String.raw`
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
i = z.getinfo(sys.argv[2])
with z.open(i) as f:
    head = f.read(1005)[1000:]
print(z.testzip(), i.file_size, head.decode())`;
    const p = spawnSync('python3', ['-c', py, out, name], { maxBuffer: 1 << 20 });
    expect(p.status, p.stderr.toString()).toBe(0);
    expect(p.stdout.toString().trim()).toBe(`None ${SIZE} hello`);
    const info = spawnSync('zipinfo', [out, name]);
    expect(info.stdout.toString()).toMatch(new RegExp(`^-rw-r--r-- .* ${SIZE} bX defN `, 'm'));
  }, 900_000);
});
