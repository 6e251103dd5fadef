// Shared access (issue 11, docs/design.md "Sharing the index"): many snap processes on one
// repository at once, real processes and a real LevelDB. The first process to open the index owns
// it and serves the others over a socket; read-only commands and backups run together; gc waits
// for backups and says for whom.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CLI, ROOT, Rng, type Manifest, assertSameTree, cleanupTmp, cli, cliOk, genTree, listSnapshots, manifest, mutateTree, restoredAt, sleep, startCli, tmpDir,
} from './torture/lib.js';

afterAll(cleanupTmp);

const OWNER_FILE = 'snap-index.owner';

/**
 * A backup of standard input that the test feeds: it lasts exactly as long as the test wants
 * (until `finish()`), so "while a backup runs" does not depend on the machine's speed.
 */
class StreamBackup {
  readonly child: ChildProcess;
  readonly done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  private readonly hash = createHash('sha256');
  private fed = 0;
  private stopped = false;
  private feeding: Promise<void>;
  stderr = '';

  constructor(repo: string, private readonly rng: Rng, extra: string[] = []) {
    this.child = spawn(process.execPath, [CLI, '--repo', repo, '--json', ...extra, 'create', '--stdin', '--stdin-filename', 'stream.bin'], {
      cwd: ROOT,
      env: { ...process.env, SNAP_REPO: '', XDG_DATA_HOME: '' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    this.child.stdout!.on('data', (b: Buffer) => out.push(b));
    this.child.stderr!.on('data', (b: Buffer) => (this.stderr += b.toString()));
    this.child.stdin!.on('error', () => {}); // a backup that failed closes its input: seen in `done`
    this.done = new Promise((resolve) => this.child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString(), stderr: this.stderr })));
    this.feeding = this.feed();
  }

  /** Bytes fed so far. */
  get bytes(): number {
    return this.fed;
  }

  private async feed(): Promise<void> {
    // 256 KiB at a time, random (incompressible, never deduplicated), with a pause between.
    while (!this.stopped) {
      const b = Buffer.alloc(256 * 1024);
      for (let i = 0; i < b.length; i += 4) b.writeUInt32LE(this.rng.u32(), i);
      this.hash.update(b);
      this.fed += b.length;
      if (!this.child.stdin!.write(b)) await new Promise((r) => this.child.stdin!.once('drain', r));
      await sleep(20);
    }
  }

  /** End the input; resolves with the backup's result and the SHA-256 of what it was fed. */
  async finish(): Promise<{ code: number | null; stdout: string; stderr: string; sha: string }> {
    this.stopped = true;
    await this.feeding;
    this.child.stdin!.end();
    const r = await this.done;
    return { ...r, sha: this.hash.digest('hex') };
  }
}

async function initRepo(): Promise<{ base: string; repo: string }> {
  const base = tmpDir('snap-shared-');
  const repo = path.join(base, 'repo');
  await cliOk(['--repo', repo, 'init']);
  return { base, repo };
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Wait until `f` is true (polling), or fail naming `what`. */
async function until(f: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

function ownerPid(repo: string): number | undefined {
  try {
    return (JSON.parse(fs.readFileSync(path.join(repo, 'index', OWNER_FILE), 'utf8')) as { pid: number }).pid;
  } catch {
    return undefined;
  }
}

function lockCount(repo: string): number {
  return fs.existsSync(path.join(repo, 'locks')) ? fs.readdirSync(path.join(repo, 'locks')).length : 0;
}

/** Restore one snapshot with the CLI and return the target. */
async function restoreTo(repo: string, id: string, extra: string[] = []): Promise<string> {
  const target = tmpDir('snap-shared-restore-');
  await cliOk(['--repo', repo, ...extra, 'restore', id, target]);
  return target;
}

describe('shared access', { timeout: 180_000 }, () => {
  it('list, ls -R, cat, diff, diff --live, find, export, drill and restore run while a backup runs, each right, none waiting', async () => {
    const rng = new Rng(0x5ea7);
    const { base, repo } = await initRepo();
    const src = path.join(base, 'tree');
    genTree(rng, src, { files: 30, dirs: 5, maxFile: 300_000, symlinks: true });
    fs.writeFileSync(path.join(src, 'notes.txt'), 'first version\n');
    const s0 = JSON.parse((await cliOk(['--repo', repo, '--json', 'create', src])).stdout).id as string;
    fs.writeFileSync(path.join(src, 'notes.txt'), 'second version, longer\n');
    fs.writeFileSync(path.join(src, 'added-later.txt'), 'new in the second snapshot\n');
    const want1: Manifest = manifest(src);
    const s1 = JSON.parse((await cliOk(['--repo', repo, '--json', 'create', src])).stdout).id as string;
    const names1 = spawnSync('find', [src], { encoding: 'utf8' }).stdout.trim().split('\n').length;

    const backup = new StreamBackup(repo, rng);
    await until(() => ownerPid(repo) === backup.child.pid, 'the backup to own the index');
    const rounds = 2;
    for (let round = 0; round < rounds; round++) {
      const what = `round ${round}`;
      const run = async (args: string[]): Promise<string> => {
        const r = await cliOk(['--repo', repo, '--lock-wait', '0', ...args]);
        expect(r.stderr, `${what}: snap ${args.join(' ')} waited`).not.toMatch(/waiting/);
        return r.stdout;
      };
      const listed = JSON.parse(await run(['list', '--json'])) as { id: string }[];
      expect(listed.map((s) => s.id), `${what}: list`).toEqual([s0, s1]);
      const ls = (await run(['ls', '-R', s1.slice(0, 8)])).trim().split('\n');
      expect(ls.length, `${what}: ls -R names every path (and the folders above the source)`).toBeGreaterThanOrEqual(names1);
      expect(ls.some((l) => l.endsWith('added-later.txt')), `${what}: ls -R`).toBe(true);
      expect(await run(['cat', s0.slice(0, 8), path.join(src, 'notes.txt')]), `${what}: cat`).toBe('first version\n');
      expect(await run(['cat', s1.slice(0, 8), path.join(src, 'notes.txt')]), `${what}: cat`).toBe('second version, longer\n');
      const diff = await run(['diff', s0.slice(0, 8), s1.slice(0, 8)]);
      expect(diff, `${what}: diff`).toMatch(/added-later\.txt/);
      expect(diff, `${what}: diff`).toMatch(/notes\.txt/);
      const found = await run(['find', 'added-later.txt']);
      expect(found, `${what}: find`).toContain(s1.slice(0, 8));
      expect(found, `${what}: find`).not.toContain(s0.slice(0, 8));
      const tar = path.join(base, `export-${round}.tar`);
      await run(['export', '--verify', s1.slice(0, 8), tar]);
      const inTar = spawnSync('tar', ['-xOf', tar, path.join(src, 'notes.txt').slice(1)]);
      if (inTar.status === 0) expect(inTar.stdout.toString(), `${what}: export`).toBe('second version, longer\n');
      const checked = JSON.parse(await run(['--json', 'check'])) as { problems: unknown[]; snapshots: number };
      expect([checked.problems, checked.snapshots], `${what}: check`).toEqual([[], 2]);
      const drilled = JSON.parse(await run(['--json', 'drill', '--full', '--against-source', s1.slice(0, 8)])) as { ok: boolean; files_verified: number; source: { compared: number } };
      const files1 = [...want1.values()].filter((e) => e.type === 'file').length;
      expect([drilled.ok, drilled.files_verified, drilled.source.compared], `${what}: drill`).toEqual([true, files1, files1]);
      expect(await run(['diff', s1.slice(0, 8), '--live']), `${what}: diff --live`).toMatch(/summary: no differences\n$/);
      const target = tmpDir('snap-shared-restore-');
      await run(['restore', s1.slice(0, 8), target]);
      assertSameTree(want1, manifest(restoredAt(target, src)), `${what}: restore`);
      fs.rmSync(target, { recursive: true, force: true });
      expect(backup.child.exitCode, `${what}: the backup is still running`).toBe(null);
    }
    expect(ownerPid(repo), 'the backup owned the index throughout').toBe(backup.child.pid);

    const r = await backup.finish();
    expect(r.code, r.stderr).toBe(0);
    const saved = JSON.parse(r.stdout) as { id: string };
    // Once saved, the next list shows it, and it restores the stream byte for byte.
    const after = await listSnapshots(repo);
    expect(after.map((s) => s.id)).toEqual([s0, s1, saved.id]);
    const target = await restoreTo(repo, saved.id.slice(0, 8));
    expect(sha(fs.readFileSync(path.join(target, 'stream.bin')))).toBe(r.sha);
    expect(fs.existsSync(path.join(repo, 'index', 'snap-index.sock')), 'the last process removed the socket').toBe(false);
    await cliOk(['--repo', repo, 'check']);
  });

  it('a long reader owns the index: backups are its clients, and take it over when it ends', async () => {
    const rng = new Rng(0xb0b);
    const { base, repo } = await initRepo();
    // The first backup of a stream is the owner; two directory backups start as its clients.
    const stream = new StreamBackup(repo, rng);
    await until(() => ownerPid(repo) === stream.child.pid, 'the stream backup to own the index');
    const trees = [0, 1].map((i) => {
      const d = path.join(base, `t${i}`);
      genTree(rng, d, { files: 40, dirs: 6, maxFile: 400_000, symlinks: true });
      return d;
    });
    const wants = trees.map((d) => manifest(d));
    const runs = trees.map((d) => startCli(['--repo', repo, '--json', 'create', d], { timeoutMs: 120_000 }));
    // End the owner while the clients may still run: one of them takes the index over.
    await sleep(300);
    const s = await stream.finish();
    expect(s.code, s.stderr).toBe(0);
    const results = await Promise.all(runs.map((r) => r.done));
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const ids = results.map((r) => (JSON.parse(r.stdout) as { id: string }).id);
    for (let i = 0; i < 2; i++) {
      const target = await restoreTo(repo, ids[i]!.slice(0, 8));
      assertSameTree(wants[i]!, manifest(restoredAt(target, trees[i]!)), `tree ${i}`);
    }
    await cliOk(['--repo', repo, 'check']);
  });

  it('two backups of different trees started at the same instant both succeed and restore exactly', async () => {
    const rng = new Rng(0x2b);
    const { base, repo } = await initRepo();
    const trees = [0, 1].map((i) => {
      const d = path.join(base, `src${i}`);
      genTree(rng, d, { files: 40, dirs: 6, maxFile: 400_000, symlinks: true });
      return d;
    });
    const all: { id: string; tree: string; want: Manifest }[] = [];
    for (let round = 0; round < 3; round++) {
      if (round > 0) for (const t of trees) mutateTree(rng, t, 400_000);
      const wants = trees.map((t) => manifest(t));
      // No process holds the index between rounds: both race to open it.
      expect(ownerPid(repo)).toBe(undefined);
      const rs = await Promise.all(trees.map((t) => cli(['--repo', repo, '--json', 'create', t])));
      rs.forEach((r, i) => {
        expect([r.code, r.stdout.length > 0], `round ${round}, backup ${i}: ${r.stderr}`).toEqual([0, true]);
        all.push({ id: (JSON.parse(r.stdout) as { id: string }).id, tree: trees[i]!, want: wants[i]! });
      });
    }
    const listed = (await listSnapshots(repo)).map((s) => s.id).sort();
    expect(listed).toEqual(all.map((a) => a.id).sort());
    for (const a of all) {
      const target = await restoreTo(repo, a.id.slice(0, 8));
      assertSameTree(a.want, manifest(restoredAt(target, a.tree)), `snapshot ${a.id.slice(0, 8)}`);
      fs.rmSync(target, { recursive: true, force: true });
    }
    const c = await cliOk(['--repo', repo, '--json', 'check']);
    expect((JSON.parse(c.stdout) as { problems: unknown[] }).problems).toEqual([]);
  });

  it('gc started during a backup waits, naming the backup and what to do; both finish; nothing is lost', async () => {
    const rng = new Rng(0x9c);
    const { base, repo } = await initRepo();
    const src = path.join(base, 'src');
    genTree(rng, src, { files: 20, dirs: 3, maxFile: 200_000 });
    const want = manifest(src);
    const first = JSON.parse((await cliOk(['--repo', repo, '--json', 'create', src])).stdout) as { id: string };
    await cliOk(['--repo', repo, 'forget', first.id.slice(0, 8)]); // gc has something to free

    const backup = new StreamBackup(repo, rng);
    await until(() => lockCount(repo) === 1 && backup.bytes > 1 << 20, 'the backup to hold its lock');
    const host = (await import('node:os')).hostname();
    // With no time to wait, gc fails at once and says who holds the repository.
    const quick = await cli(['--repo', repo, '--lock-wait', '0', 'gc']);
    expect(quick.code).not.toBe(0);
    expect(quick.stderr).toMatch(new RegExp(`SNAP_LOCKED`));
    expect(quick.stderr).toMatch(new RegExp(`a shared lock of 'create' \\(pid ${backup.child.pid} on ${host}, since \\d{4}-`));
    expect(quick.stderr).toMatch(/--lock-wait/);
    // With time, it waits (saying for whom) until the backup ends.
    const gc = startCli(['--repo', repo, '--lock-wait', '5m', 'gc'], { timeoutMs: 120_000 });
    let gcErr = '';
    gc.child.stderr!.on('data', (b: Buffer) => (gcErr += b.toString()));
    await until(() => /waiting for/.test(gcErr), "gc's waiting message");
    expect(gcErr).toMatch(new RegExp(`waiting for a shared lock of 'create' \\(pid ${backup.child.pid} on ${host}, since \\d{4}-[^)]*\\): it is released when that command ends`));
    expect(gcErr).toMatch(/--lock-wait; Ctrl-C stops waiting/);
    await sleep(500);
    expect(gc.child.exitCode, 'gc still waits while the backup runs').toBe(null);
    const b = await backup.finish();
    expect(b.code, b.stderr).toBe(0);
    const g = await gc.done;
    expect(g.code, g.stderr).toBe(0);
    const saved = JSON.parse(b.stdout) as { id: string };
    expect((await listSnapshots(repo)).map((s) => s.id)).toEqual([saved.id]);
    const target = await restoreTo(repo, saved.id.slice(0, 8));
    expect(sha(fs.readFileSync(path.join(target, 'stream.bin')))).toBe(b.sha);
    // The tree backed up again after gc restores exactly (gc freed only what nothing used).
    const again = JSON.parse((await cliOk(['--repo', repo, '--json', 'create', src])).stdout) as { id: string };
    const t2 = await restoreTo(repo, again.id.slice(0, 8));
    assertSameTree(want, manifest(restoredAt(t2, src)), 'after gc');
    await cliOk(['--repo', repo, 'check', '--read-data']);
  });

  it('a repository path too long for a socket address is shared through /proc/self/fd', async () => {
    const rng = new Rng(0x10);
    const deep = path.join(tmpDir('snap-shared-'), 'a-folder-name-of-sixty-characters-to-make-the-path-long-xx', 'and-another-one-of-sixty-characters-to-pass-108-bytes-xxxxx');
    const repo = path.join(deep, 'repo');
    expect(Buffer.byteLength(path.join(repo, 'index', 'snap-index.sock'))).toBeGreaterThan(108);
    await cliOk(['--repo', repo, 'init']);
    const backup = new StreamBackup(repo, rng);
    await until(() => ownerPid(repo) === backup.child.pid, 'the backup to own the index');
    const r = await cliOk(['--repo', repo, '--lock-wait', '0', 'list']);
    expect(r.stdout).toMatch(/no snapshots|0 snapshots/);
    const b = await backup.finish();
    expect(b.code, b.stderr).toBe(0);
    expect((await listSnapshots(repo)).length).toBe(1);
  });

  it('a socket and an owner record left by a killed owner are replaced by the next command', async () => {
    const rng = new Rng(0x11);
    const { base, repo } = await initRepo();
    const src = path.join(base, 'src');
    genTree(rng, src, { files: 5, dirs: 1, maxFile: 50_000 });
    await cliOk(['--repo', repo, 'create', src]);
    // A process that listened on the socket and died without cleaning up.
    const sock = path.join(repo, 'index', 'snap-index.sock');
    const dead = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((r) => dead.stdout!.once('data', r));
    dead.kill('SIGKILL');
    await new Promise((r) => dead.once('close', r));
    expect(fs.statSync(sock).isSocket()).toBe(true);
    fs.writeFileSync(path.join(repo, 'index', OWNER_FILE), JSON.stringify({ pid: dead.pid, host: 'here', command: 'create', since: new Date().toISOString() }));
    // Two commands at once: one replaces the socket, the other connects to it (or follows it).
    const [l1, l2] = await Promise.all([cli(['--repo', repo, '--lock-wait', '10s', 'list']), cli(['--repo', repo, '--lock-wait', '10s', 'ls', '-R', 'latest'])]);
    expect(l1.code, l1.stderr).toBe(0);
    expect(l2.code, l2.stderr).toBe(0);
    expect(l1.stdout).toMatch(/1 snapshot/);
    expect(fs.existsSync(sock), 'the last owner removed its socket').toBe(false);
    expect(fs.existsSync(path.join(repo, 'index', OWNER_FILE))).toBe(false);
  });

  it('a backup waits for an exclusive command, naming it', async () => {
    const rng = new Rng(0x77);
    const { base, repo } = await initRepo();
    const src = path.join(base, 'src');
    genTree(rng, src, { files: 5, dirs: 1, maxFile: 50_000 });
    // A live exclusive holder: this test process, recorded as a running 'forget'.
    const since = new Date().toISOString();
    const host = (await import('node:os')).hostname();
    const lock = path.join(repo, 'locks', 'a'.repeat(64));
    fs.mkdirSync(path.dirname(lock), { recursive: true, mode: 0o700 });
    fs.writeFileSync(lock, JSON.stringify({ host, pid: process.pid, time: since, refreshed: since, exclusive: true, command: 'forget' }));
    const run = startCli(['--repo', repo, '--lock-wait', '1m', 'create', src]);
    let err = '';
    run.child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    await until(() => /waiting for/.test(err), "the backup's waiting message");
    expect(err).toContain(`waiting for an exclusive lock of 'forget' (pid ${process.pid} on ${host}, since ${since}`);
    fs.rmSync(lock);
    const r = await run.done;
    expect(r.code, r.stderr).toBe(0);
  });
});
