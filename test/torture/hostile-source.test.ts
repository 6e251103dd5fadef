// Strange and hostile source trees: FIFOs and sockets (never opened), device files, huge and deep
// directories, names with every byte but '/' and NUL, files that change while read, unreadable
// files (as the unprivileged user nobody), a source that is a symlink, repeated and overlapping
// sources, the repository inside the source. Every backup finishes, restores exactly what it
// could read, and says what it could not.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  LONG, type Manifest, type Rng, assertSameTree, cleanupTmp, cli, cliOk, genTree, iters, listSnapshots, manifest,
  restoreAllInProcess, restoreAndCompare, restoredAt, seededIt, sleep, tmpDir,
} from './lib.js';

afterAll(cleanupTmp);

const isRoot = process.getuid?.() === 0;
const canSetpriv = isRoot && spawnSync('setpriv', ['--version']).status === 0;

async function newRepo(base: string): Promise<string> {
  const repo = path.join(base, 'repo');
  await cliOk(['--repo', repo, 'init']);
  return repo;
}

async function latestId(repo: string): Promise<string> {
  const s = await listSnapshots(repo);
  return s[s.length - 1]!.id;
}

function listen(p: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(p, () => resolve(srv));
  });
}

describe('hostile sources', () => {
  it('FIFOs (no writer) and sockets are recorded by type and never opened; device files keep their numbers', async () => {
    const base = tmpDir();
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'plain'), 'x');
    expect(spawnSync('mkfifo', ['-m', '640', path.join(src, 'fifo')]).status).toBe(0);
    const srv = await listen(path.join(src, 'sock'));
    if (isRoot) {
      expect(spawnSync('mknod', ['-m', '600', path.join(src, 'chr'), 'c', '1', '3']).status).toBe(0);
      expect(spawnSync('mknod', ['-m', '640', path.join(src, 'blk'), 'b', '7', '200']).status).toBe(0);
    }
    const want = manifest(src);
    const repo = await newRepo(base);
    try {
      // A FIFO opened for reading would block forever: the timeout turns that into a failure.
      await cliOk(['--repo', repo, 'create', src], { timeoutMs: 30_000 });
    } finally {
      srv.close();
    }
    const ls = await cliOk(['--repo', repo, '--json', 'ls', 'latest', src]);
    const types = Object.fromEntries((JSON.parse(ls.stdout) as { entries: { path: string; type: string }[] }).entries.map((e) => [path.basename(e.path), e.type]));
    expect(types).toMatchObject({ fifo: 'fifo', sock: 'socket', plain: 'file', ...(isRoot ? { chr: 'chardev', blk: 'blockdev' } : {}) });
    // A socket cannot be recreated (its listener is gone); everything else comes back as it was.
    await restoreAndCompare(repo, await latestId(repo), src, want, 'special files', { absentOk: ['socket'] });
  });

  seededIt('a huge directory', async (rng) => {
    const n = iters(5_000, 100_000);
    const base = tmpDir();
    const src = path.join(base, 'big');
    fs.mkdirSync(src);
    for (let i = 0; i < n; i++) fs.writeFileSync(path.join(src, `entry-${i.toString(36)}-${rng.u32().toString(36)}`), i % 7 === 0 ? rng.bytes(rng.int(0, 2000)) : String(i));
    const want = manifest(src);
    const repo = await newRepo(base);
    await cliOk(['--repo', repo, 'create', src], { timeoutMs: 600_000 });
    await restoreAllInProcess(repo, [{ id: await latestId(repo), source: src, want, what: `${n}-entry directory` }]);
    if (!LONG) return;
    // The second backup of it comes from the files cache: same tree.
    await cliOk(['--repo', repo, 'create', src], { timeoutMs: 600_000 });
    await restoreAllInProcess(repo, [{ id: await latestId(repo), source: src, want, what: `${n}-entry directory, second backup` }]);
  }, LONG ? 1_200_000 : 120_000);

  it('1,000 levels of nesting', async () => {
    const base = tmpDir();
    const src = path.join(base, 'deep');
    let p = src;
    for (let i = 0; i < 1000; i++) p = path.join(p, 'd');
    fs.mkdirSync(p, { recursive: true });
    fs.writeFileSync(path.join(p, 'bottom'), 'the bottom');
    fs.symlinkSync('../../..', path.join(p, 'up'));
    const want = manifest(src);
    const repo = await newRepo(base);
    await cliOk(['--repo', repo, 'create', src]);
    await restoreAndCompare(repo, await latestId(repo), src, want, '1,000 levels');
  });

  seededIt('names with every byte except "/" and NUL', async (rng) => {
    const base = tmpDir();
    const src = path.join(base, 'names');
    fs.mkdirSync(src);
    const dir = Buffer.from(src);
    const put = (name: Buffer, data: Buffer | string): void => fs.writeFileSync(Buffer.concat([dir, Buffer.from('/'), name]), data);
    for (let b = 1; b <= 255; b++) {
      if (b === 0x2f) continue;
      put(b === 0x2e ? Buffer.from('...') : Buffer.from([b]), `byte ${b}`);
    }
    for (let i = 0; i < 3; i++) {
      const name = Buffer.from(Array.from({ length: rng.int(100, 255) }, () => rng.pick([...Array(255).keys()].map((x) => x + 1).filter((x) => x !== 0x2f))));
      if (name.equals(Buffer.from('.')) || name.equals(Buffer.from('..'))) continue;
      put(name, rng.bytes(100));
      fs.mkdirSync(Buffer.concat([dir, Buffer.from('/dir-'), name.subarray(0, 200)]));
    }
    fs.symlinkSync(Buffer.from([0xff, 0x0a, 0x2e, 0x2e, 0x2f, 0x80]), Buffer.concat([dir, Buffer.from('/link\n\xff', 'latin1')]));
    const want = manifest(src);
    expect(want.size).toBeGreaterThan(255);
    const repo = await newRepo(base);
    await cliOk(['--repo', repo, 'create', src]);
    await restoreAndCompare(repo, await latestId(repo), src, want, 'byte names');
  });

  seededIt('files that grow, shrink, vanish and are replaced while read', async (rng) => {
    const base = tmpDir();
    const src = path.join(base, 'src');
    const churn = path.join(src, 'churn');
    const calm = path.join(src, 'calm');
    genTree(rng, calm, { files: 40, dirs: 4, maxFile: 300_000 });
    fs.mkdirSync(churn);
    const names = Array.from({ length: 30 }, (_, i) => path.join(churn, `f${i}`));
    for (const n of names) fs.writeFileSync(n, rng.bytes(rng.int(0, 400_000)));
    const repo = path.join(base, 'repo');
    const { initSmallRepo } = await import('./lib.js');
    await initSmallRepo(repo);
    const writer = startWriter(names, rng.u32());
    try {
      for (let i = 0; i < iters(2, 15); i++) {
        const wantCalm = manifest(calm);
        const r = await cli(['--repo', repo, '--json', 'create', src], { timeoutMs: 60_000 });
        expect([0, 3], r.stderr).toContain(r.code);
        // Whatever was read restores without damage; the untouched part exactly.
        const target = tmpDir();
        const rr = await cli(['--repo', repo, 'restore', await latestId(repo), target]);
        expect(rr.code, rr.stderr).toBe(0);
        assertSameTree(wantCalm, manifest(restoredAt(target, calm)), `round ${i}: the untouched part`);
        fs.rmSync(target, { recursive: true, force: true });
        await sleep(rng.int(0, 200));
      }
    } finally {
      await stopWriter(writer);
    }
    // Once the writer stops, the next backup holds exactly what is on disk (no stale cache entry).
    await sleep(50);
    const want = manifest(src);
    await cliOk(['--repo', repo, 'create', src], { expect: [0, 3] });
    await restoreAllInProcess(repo, [{ id: await latestId(repo), source: src, want, what: 'after the writer stopped' }]);
  });

  it('a file rewritten (same size) right after it was read is read again by the next backup', async () => {
    // Guards the files cache against "racily clean" files: on file systems with coarse timestamps
    // a rewrite right after the read can leave size, mtime and ctime unchanged. (Linux 6.13+ gives
    // fine-grained ctimes to files whose times were just looked at, so this passes there anyway.)
    const { Repository } = await import('../../src/repo/repository.js');
    const { createSnapshot } = await import('../../src/ops/backup/create.js');
    const { catFile } = await import('../../src/ops/browse/browse.js');
    const { currentHost } = await import('../../src/cli/host.js');
    const base = tmpDir();
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    const N = 30;
    for (let i = 0; i < N; i++) fs.writeFileSync(path.join(src, `f${i}`), Buffer.alloc(1000, 0x41));
    const repo = await newRepo(base);
    const r = await Repository.open(repo, { host: currentHost(), sink: {} });
    try {
      const rewritten = new Set<string>();
      const sink = {
        progress: (c: { current?: string }) => {
          const p = c.current;
          if (p && !rewritten.has(p)) {
            rewritten.add(p);
            fs.writeFileSync(p, Buffer.alloc(1000, 0x42));
          }
        },
      };
      const o = { paths: [src], cwd: '/', host: currentHost(), program: 'test' };
      await createSnapshot(r, { ...o, sink });
      const second = await createSnapshot(r, { ...o, sink: {} });
      for (let i = 0; i < N; i++) {
        const { chunks } = await catFile(r, second.snapshot, path.join(src, `f${i}`));
        const parts: Buffer[] = [];
        for await (const c of chunks) parts.push(c);
        expect(Buffer.concat(parts).equals(Buffer.alloc(1000, 0x42)), `f${i} in the second snapshot`).toBe(true);
      }
    } finally {
      await r.close();
    }
  });

  it.skipIf(!canSetpriv)('unreadable files and directories, as the unprivileged user nobody', async () => {
    const base = tmpDir();
    fs.chmodSync(base, 0o755);
    const src = path.join(base, 'src');
    fs.mkdirSync(path.join(src, 'open', 'sub'), { recursive: true });
    fs.mkdirSync(path.join(src, 'locked'));
    fs.writeFileSync(path.join(src, 'open', 'readable'), 'hello');
    fs.writeFileSync(path.join(src, 'open', 'sub', 'also'), 'there');
    fs.writeFileSync(path.join(src, 'secret'), 'root only');
    fs.writeFileSync(path.join(src, 'locked', 'inside'), 'cannot list');
    fs.chmodSync(path.join(src, 'secret'), 0o600);
    fs.chmodSync(path.join(src, 'locked'), 0o700);
    for (const d of [src, path.join(src, 'open'), path.join(src, 'open', 'sub')]) fs.chmodSync(d, 0o755);
    for (const f of ['open/readable', 'open/sub/also']) fs.chmodSync(path.join(src, f), 0o644);
    const home = path.join(base, 'nobody');
    fs.mkdirSync(home);
    fs.chownSync(home, 65534, 65534);
    const repo = path.join(home, 'repo');
    const as = { asNobody: true, env: { HOME: home } };
    await cliOk(['--repo', repo, 'init'], as);
    const r = await cli(['--repo', repo, '--json', 'create', src], as);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain('secret');
    expect(r.stderr).toContain('locked');
    expect(r.stderr).not.toMatch(/SNAP_INTERNAL/);
    // The snapshot holds everything readable; the locked directory is there, empty.
    const want: Manifest = manifest(src);
    want.delete('secret');
    want.delete('locked/inside');
    const target = path.join(home, 'out');
    const rr = await cli(['--repo', repo, 'restore', 'latest', target], as);
    expect(rr.code, rr.stderr).toBe(0);
    const got = manifest(restoredAt(target, src));
    assertSameTree(want, got, 'restore as nobody', { mtimes: false });
    // The restored files belong to nobody: ownership needs root.
    expect(fs.statSync(path.join(restoredAt(target, src), 'open', 'readable')).uid).toBe(65534);
    // Device files cannot be made without root: skipped, said, exit 3.
    const devSrc = path.join(base, 'dev');
    fs.mkdirSync(devSrc, { mode: 0o755 });
    fs.chmodSync(devSrc, 0o755);
    expect(spawnSync('mknod', ['-m', '644', path.join(devSrc, 'null2'), 'c', '1', '3']).status).toBe(0);
    fs.writeFileSync(path.join(devSrc, 'f'), 'x', { mode: 0o644 });
    await cliOk(['--repo', repo, 'create', devSrc], as);
    const rd = await cli(['--repo', repo, 'restore', 'latest', path.join(home, 'out2')], as);
    expect(rd.code, rd.stderr).toBe(3);
    expect(rd.stderr).toMatch(/null2.*device|only root/);
    expect(fs.readFileSync(path.join(restoredAt(path.join(home, 'out2'), devSrc), 'f'), 'utf8')).toBe('x');
  });

  it('a source that is a symlink is recorded as the symlink, not followed', async () => {
    const base = tmpDir();
    const real = path.join(base, 'real');
    fs.mkdirSync(real);
    fs.writeFileSync(path.join(real, 'inside'), 'x');
    const link = path.join(base, 'link');
    fs.symlinkSync(real, link);
    const repo = await newRepo(base);
    await cliOk(['--repo', repo, 'create', link]);
    const ls = await cliOk(['--repo', repo, '--json', 'ls', 'latest', link]);
    const entries = (JSON.parse(ls.stdout) as { entries: { type: string; path: string }[] }).entries;
    expect(entries).toHaveLength(1);
    expect(entries[0]!.type).toBe('symlink');
    const target = tmpDir();
    await cliOk(['--repo', repo, 'restore', 'latest', target]);
    expect(fs.readlinkSync(restoredAt(target, link))).toBe(real);
    expect(fs.existsSync(restoredAt(target, path.join(real, 'inside')))).toBe(false);
  });

  seededIt('the same source twice, and overlapping sources, are backed up once', async (rng) => {
    const base = tmpDir();
    const src = path.join(base, 'src');
    genTree(rng, src, { files: 20, dirs: 4, maxFile: 50_000 });
    fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(src, 'sub', 'x'), 'x');
    const want = manifest(src);
    const repo = await newRepo(base);
    for (const args of [[src, src], [src, path.join(src, 'sub'), `${src}/`], [path.join(src, 'sub'), src, path.join(src, '.', 'sub')]]) {
      const r = await cliOk(['--repo', repo, 'create', ...args]);
      const snap = (await listSnapshots(repo)).at(-1)!;
      expect(snap.paths, args.join(' ')).toEqual([src]);
      await restoreAndCompare(repo, snap.id, src, want, `sources ${args.join(' ')}`);
      if (args.length > 2) expect(r.stderr).toMatch(/inside another source|once/);
    }
  });

  seededIt('the repository inside the source is left out', async (rng) => {
    const base = tmpDir();
    const src = path.join(base, 'src');
    genTree(rng, src, { files: 20, dirs: 3, maxFile: 100_000 });
    const repo = path.join(src, 'the-repo');
    await cliOk(['--repo', repo, 'init']);
    const want = manifest(src, { skip: (n) => n.toString() === 'the-repo' });
    // The source's own mtime changed when the repository was made in it: that is the state backed up.
    const r = await cliOk(['--repo', repo, 'create', src]);
    expect(r.stderr).toMatch(/repository itself/);
    const id = await latestId(repo);
    await restoreAndCompare(repo, id, src, want, 'repository inside the source');
    await cliOk(['--repo', repo, 'create', src]); // and again, with the repository grown
  });
});

/** A background process that keeps changing files: grow, shrink, vanish, replace, rewrite. */
function startWriter(files: string[], seed: number): ChildProcess {
  const script = `
    const fs = require('fs');
    const files = ${JSON.stringify(files)};
    let s = ${seed} >>> 0;
    const rnd = (n) => { s = (s * 1664525 + 1013904223) >>> 0; return s % n; };
    const buf = Buffer.alloc(200000, 7);
    for (;;) {
      const f = files[rnd(files.length)];
      try {
        switch (rnd(6)) {
          case 0: fs.appendFileSync(f, buf.subarray(0, rnd(100000))); break;
          case 1: fs.truncateSync(f, rnd(50000)); break;
          case 2: fs.rmSync(f, { force: true }); break;
          case 3: fs.writeFileSync(f + '.new', buf.subarray(0, rnd(200000))); fs.renameSync(f + '.new', f); break;
          case 4: { const fd = fs.openSync(f, 'r+'); fs.writeSync(fd, buf, 0, 1000, rnd(100000)); fs.closeSync(fd); break; }
          default: fs.writeFileSync(f, buf.subarray(0, rnd(300000)));
        }
      } catch {}
      // Keep the files bounded: a writer that only grows would fill the disk.
      try { if (fs.statSync(f).size > 2000000) fs.truncateSync(f, 0); } catch {}
    }`;
  return spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
}

async function stopWriter(w: ChildProcess): Promise<void> {
  if (w.exitCode !== null) return;
  const done = new Promise((r) => w.once('exit', r));
  w.kill('SIGKILL');
  await done;
}
