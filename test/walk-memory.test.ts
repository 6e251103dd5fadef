// What a backup keeps of each entry while its directory's tree is being made (ops/backup/create.ts):
// a LeanStat instead of Node's BigIntStats, names and small files' chunk ids as views of shared
// buffers (packedViews, IdSlab), files-cache entries of one shape. The memory itself is measured
// in bench (docs/performance.md, "Memory of a large directory's entries"); here: the helpers keep
// exactly what they were given, and a directory of many entries of every kind backs up, restores
// exactly and is recognised unchanged by the next backup.
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { currentHost } from '../src/cli/host.js';
import { packedViews } from '../src/core/bytes.js';
import { IdSlab, ID_BYTES, sha256 } from '../src/core/ids.js';
import { nullSink } from '../src/core/progress.js';
import { createSnapshot } from '../src/ops/backup/create.js';
import { checkRepository } from '../src/ops/maintain/check.js';
import { baseNode, LEAN_FIELDS, LeanStat, nodeType } from '../src/ops/fs/node-meta.js';
import { OwnerNames } from '../src/ops/fs/owners.js';
import { restoreSnapshot } from '../src/ops/restore/restore.js';
import { Repository } from '../src/repo/repository.js';
import { describeTree } from './helpers/cli.js';
import { cleanupScratch, scratchDir } from './helpers/maint.js';

afterAll(cleanupScratch);

describe('packedViews', () => {
  it('gives views of one buffer holding the same bytes, in order', () => {
    const parts = [Buffer.from('b'), Buffer.alloc(0), Buffer.from([0xff, 0x00, 0x2f]), Buffer.from('a longer name.txt')];
    const views = packedViews(parts);
    expect(views.map((v) => v.toString('hex'))).toEqual(parts.map((p) => p.toString('hex')));
    expect(new Set(views.map((v) => v.buffer)).size).toBe(1);
    // Copies: the parts may be reused.
    parts[2]!.fill(0);
    expect(views[2]!.equals(Buffer.from([0xff, 0x00, 0x2f]))).toBe(true);
    expect(packedViews([])).toEqual([]);
  });
});

describe('IdSlab', () => {
  it('keeps copies of ids, many to a buffer, across several buffers', () => {
    const slab = new IdSlab();
    const ids = Array.from({ length: 700 }, (_, i) => sha256(Buffer.from(`object ${i}`)));
    const kept = ids.map((id) => slab.keep(id));
    for (let i = 0; i < ids.length; i++) {
      expect(kept[i]!.length).toBe(ID_BYTES);
      expect(kept[i]!.equals(ids[i]!)).toBe(true);
    }
    ids[0]!.fill(0);
    expect(kept[0]!.equals(sha256(Buffer.from('object 0')))).toBe(true);
    const buffers = new Set(kept.map((k) => k.buffer));
    expect(buffers.size).toBeGreaterThan(1);
    expect(buffers.size).toBeLessThan(10);
  });
});

describe('LeanStat', () => {
  it('holds what lstat said of every kind of entry, and makes the same tree node', () => {
    const dir = scratchDir('snap-leanstat-');
    fs.writeFileSync(path.join(dir, 'file'), 'x');
    fs.mkdirSync(path.join(dir, 'dir'));
    fs.symlinkSync('file', path.join(dir, 'link'));
    expect(spawnSync('mkfifo', [path.join(dir, 'fifo')]).status).toBe(0);
    const owners = new OwnerNames();
    const rows = new BigInt64Array(LEAN_FIELDS * 2);
    for (const name of ['file', 'dir', 'link', 'fifo', '/dev/null']) {
      const p = name.startsWith('/') ? name : path.join(dir, name);
      const st = fs.lstatSync(p, { bigint: true });
      const lean = LeanStat.of(st);
      for (const k of ['dev', 'ino', 'mode', 'nlink', 'uid', 'gid', 'rdev', 'size', 'mtimeNs', 'ctimeNs'] as const) expect(lean[k]).toBe(st[k]);
      for (const k of ['isFile', 'isDirectory', 'isSymbolicLink', 'isFIFO', 'isSocket', 'isCharacterDevice', 'isBlockDevice'] as const) expect(lean[k]()).toBe(st[k]());
      expect(nodeType(lean)).toBe(nodeType(st));
      expect(baseNode(Buffer.from(name), lean, owners)).toEqual(baseNode(Buffer.from(name), st, owners));
      LeanStat.toRow(st, rows, LEAN_FIELDS);
      expect(LeanStat.fromRow(rows, LEAN_FIELDS)).toEqual(lean);
    }
  });
});

describe('a directory of many entries', () => {
  it('backs up, restores exactly, and the next backup reads none of its files', async () => {
    const base = scratchDir('snap-walk-memory-');
    const src = path.join(base, 'src');
    const big = path.join(src, 'many');
    fs.mkdirSync(big, { recursive: true });
    const N = 3000;
    for (let i = 0; i < N; i++) fs.writeFileSync(path.join(big, `f${String(i).padStart(5, '0')}`), i % 7 === 0 ? randomBytes(1500 + i) : `file ${i}\n`.repeat(1 + (i % 50)));
    fs.writeFileSync(path.join(big, 'empty'), '');
    fs.writeFileSync(path.join(big, 'smaller than a MiB'), randomBytes(900 * 1024));
    fs.writeFileSync(path.join(big, 'large'), randomBytes(3 * 1024 * 1024 + 17)); // chunk ids from the compression threads
    fs.writeFileSync(Buffer.concat([Buffer.from(big + '/'), Buffer.from([0x6e, 0xff, 0xfe])]), 'not UTF-8');
    fs.linkSync(path.join(big, 'f00001'), path.join(big, 'hard link'));
    fs.symlinkSync('f00002', path.join(big, 'symlink'));
    expect(spawnSync('mkfifo', [path.join(big, 'fifo')]).status).toBe(0);
    const files = N + 5;
    const repo = await Repository.init(path.join(base, 'repo'), { host: currentHost(), sink: nullSink });
    try {
      const opts = { paths: [src], cwd: base, host: currentHost(), program: 'snap test', sink: nullSink };
      const first = await createSnapshot(repo, opts);
      expect(first.warnings).toBe(0);
      expect(first.snapshot.summary.filesNew).toBe(files);
      const second = await createSnapshot(repo, opts);
      expect(second.snapshot.summary.filesUnchanged).toBe(files);
      expect(second.snapshot.summary.bytesRead).toBe(0);
      // One file changed: only it is read again, and both snapshots restore as their sources were.
      const before = describeTree(src);
      fs.appendFileSync(path.join(big, 'f00003'), 'more');
      const third = await createSnapshot(repo, opts);
      expect(third.snapshot.summary.filesChanged).toBe(1);
      expect(third.snapshot.summary.filesUnchanged).toBe(files - 1);
      for (const [s, want] of [
        [second.snapshot, before],
        [third.snapshot, describeTree(src)],
      ] as const) {
        const to = path.join(scratchDir('snap-walk-memory-out-'), 'out');
        const r = await restoreSnapshot(repo, s, { target: to, asRoot: false, sink: {} });
        expect(r.damaged).toEqual([]);
        expect(describeTree(path.join(to, src))).toEqual(want);
      }
      expect((await checkRepository(repo, { readData: { kind: 'all' }, sink: nullSink })).problems).toEqual([]);
    } finally {
      await repo.close();
    }
  }, 120_000);
});
