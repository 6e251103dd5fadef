// Regression tests for bugs the torture suite found, one per bug, named after it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
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

describe('regressions: repository failures during create', () => {
  it('a pack write failing with EIO fails the backup; it is not reported as unreadable source files', async () => {
    // Found by the fault-injection suite: create caught SNAP_IO from the object store as a
    // per-file "read failed" warning and went on, file after file.
    const { FaultBackend } = await import('../helpers/fault-backend.js');
    const { LocalBackend } = await import('../../src/backend/local.js');
    const { Repository } = await import('../../src/repo/repository.js');
    const { createSnapshot } = await import('../../src/ops/backup/create.js');
    const { currentHost } = await import('../../src/cli/host.js');
    const { SnapError } = await import('../../src/core/errors.js');
    const { initSmallRepo } = await import('./lib.js');
    const base = tmpDir();
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(src, `f${i}`), randomBytes(300_000)); // incompressible: packs fill
    const repo = path.join(base, 'repo');
    await initSmallRepo(repo);
    const warnings: string[] = [];
    const sink = { warn: (w: { message: string }) => void warnings.push(w.message) };
    const { ENC_OPEN } = await import('./lib.js');
    const r = await Repository.open(repo, { host: currentHost(), sink, ...ENC_OPEN, backend: (root) => new FaultBackend(new LocalBackend(root), { op: 'put', n: 1, kind: 'EIO', sticky: true }) });
    let err: unknown;
    try {
      await createSnapshot(r, { paths: [src], cwd: '/', host: currentHost(), program: 'test', sink });
    } catch (e) {
      err = e;
    } finally {
      await r.close().catch(() => {});
    }
    expect(err).toBeInstanceOf(SnapError);
    expect((err as InstanceType<typeof SnapError>).code).toBe('SNAP_IO');
    expect(warnings).toEqual([]);
  });

  it('the index on a full disk is SNAP_NO_SPACE, not an internal error', async () => {
    // Found by the tmpfs full-disk test: LevelDB's "IO error: ... No space left on device"
    // reached the CLI as SNAP_INTERNAL, after a "read failed" warning for each remaining file.
    const { levelError } = await import('../../src/index/level-index.js');
    const e = Object.assign(new Error('IO error: /r/index/000016.log: No space left on device'), { code: 'LEVEL_IO_ERROR' });
    const se = levelError(e, 'adding a pack') as { code?: string };
    expect(se.code).toBe('SNAP_NO_SPACE');
    const c = levelError(Object.assign(new Error('Corruption: bad block'), { code: 'LEVEL_CORRUPTION' }), 'lookup') as { code?: string };
    expect(c.code).toBe('SNAP_CORRUPT');
  });
});

describe('regressions: restore run twice', () => {
  it('a file whose mtime libuv rounds below the microsecond is still "identical" on the second run', async () => {
    // Found by the kill -9 restore loop: utimes goes through a double and is truncated to whole
    // microseconds, so a restored file can be ~1.03 µs older than its snapshot mtime; the 1 µs
    // comparison called it different and the resumed restore exited 3.
    const base = tmpDir();
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    const f = path.join(src, 'f');
    fs.writeFileSync(f, 'data');
    expect(spawnSync('touch', ['-m', '-d', '@1188675124.915932027', f]).status).toBe(0);
    const repo = path.join(base, 'repo');
    await cliOk(['--repo', repo, 'init']);
    await cliOk(['--repo', repo, 'create', src]);
    const out = path.join(base, 'out');
    await cliOk(['--repo', repo, 'restore', 'latest', out]);
    const again = await cliOk(['--repo', repo, 'restore', 'latest', out]);
    expect(again.stderr).not.toContain('differs');
  });
});

describe('regressions: a damaged index table', () => {
  it('every .ldb file truncated: commands rebuild the index instead of failing with an I/O error', async () => {
    // Found by the damage suite: LevelDB opened, then its first read failed ("Invalid argument",
    // "corrupted compressed block contents"): every command, `snap index rebuild` included, failed.
    const base = tmpDir();
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(src, `f${i}`), randomBytes(2000));
    const repo = path.join(base, 'repo');
    await cliOk(['--repo', repo, 'init']);
    await cliOk(['--repo', repo, 'create', src]);
    for (let i = 0; i < 3; i++) await cliOk(['--repo', repo, 'list']); // compacts the log into tables
    const tables = fs.readdirSync(path.join(repo, 'index')).filter((f) => f.endsWith('.ldb'));
    expect(tables.length).toBeGreaterThan(0);
    for (const t of tables) {
      const f = path.join(repo, 'index', t);
      fs.truncateSync(f, Math.floor(fs.statSync(f).size / 2));
    }
    const l = await cliOk(['--repo', repo, 'list']);
    expect(l.stderr).toMatch(/rebuil/);
    const out = path.join(base, 'out');
    await cliOk(['--repo', repo, 'restore', 'latest', out]);
    assertSameTree(manifest(src), manifest(restoredAt(out, src)), 'restore after the rebuild');
    await cliOk(['--repo', repo, 'index', 'rebuild']);
  });
});

describe('regressions: costly CBOR from an untrusted repository', () => {
  it('a tree holding a 1 MB bignum, or shared references, is SNAP_CORRUPT at once', async () => {
    // Found by the crafted-input test: `snap ls` of a tree with a 1 MB tag-2 bignum ran for
    // minutes (cbor-x converts bignums with a quadratic loop). Tags 28/29 (shared references)
    // could name one huge chunk list from a million entries. snap writes no tags: refuse them all.
    const { decodeTree } = await import('../../src/model/tree.js');
    const bignum = Buffer.concat([Buffer.from('a2617601', 'hex'), Buffer.from([0x67]), Buffer.from('entries'), Buffer.from([0xc2, 0x5a, 0x00, 0x10, 0x00, 0x00]), Buffer.alloc(1 << 20, 0xff)]);
    const t = Date.now();
    expect(() => decodeTree(bignum, 'tree')).toThrow(/a tag/);
    expect(Date.now() - t).toBeLessThan(1000);
    const shared = Buffer.concat([Buffer.from('a2617601', 'hex'), Buffer.from([0x67]), Buffer.from('entries'), Buffer.from('d81c81d81d00', 'hex')]);
    expect(() => decodeTree(shared, 'tree')).toThrow(/a tag/);
    expect(() => decodeTree(Buffer.concat([Buffer.from('a0', 'hex'), Buffer.from('00', 'hex')]), 'tree')).toThrow(/trailing/);
    expect(() => decodeTree(Buffer.from('9f', 'hex'), 'tree')).toThrow(/indefinite/);
  });
});
