// Regression tests for bugs the torture suite found, one per bug, named after it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupTmp, cliOk, manifest, restoredAt, tmpDir, assertSameTree } from './lib.js';

afterAll(cleanupTmp);

describe('regressions', () => {
  it('restoring twice into one target: existing identical symlinks and FIFOs are not "differs" warnings', async () => {
    // Found by the kill -9 restore loop: a restore re-run after a crash exited 3 with
    // "exists and differs" for every symlink and FIFO the first run had already made.
    const base = tmpDir();
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'f'), 'x');
    fs.symlinkSync('f', path.join(src, 'link'));
    spawnSync('mkfifo', [path.join(src, 'fifo')]);
    const repo = path.join(base, 'repo');
    await cliOk(['--repo', repo, 'init']);
    await cliOk(['--repo', repo, 'create', src]);
    const out = path.join(base, 'out');
    await cliOk(['--repo', repo, 'restore', 'latest', out]);
    const again = await cliOk(['--repo', repo, 'restore', 'latest', out]);
    expect(again.stderr).not.toContain('differs');
    assertSameTree(manifest(src), manifest(restoredAt(out, src)), 'second restore');
  });
});
