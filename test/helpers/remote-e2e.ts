// Shared parts of the end-to-end tests of remote repositories (test/remote-*.test.ts): source
// trees to back up, and the checks every test makes of a repository through the built CLI.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { CLI, ROOT, type RunResult, describeTree, parseJson, snap, snapAsync, tmpDir } from './cli.js';

/** A tree with a few MiB of random data (several chunks), small files, a symlink and an empty folder. */
export function makeSource(seed: string, bigBytes = 3 * 1024 * 1024): string {
  const src = path.join(tmpDir(), `src-${seed}`);
  fs.mkdirSync(path.join(src, 'sub', 'deep'), { recursive: true });
  fs.mkdirSync(path.join(src, 'empty'));
  fs.writeFileSync(path.join(src, 'big.bin'), randomBytes(bigBytes));
  for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(src, 'sub', `f${i}.txt`), `${seed} file ${i}\n`.repeat(i + 1));
  fs.writeFileSync(path.join(src, 'sub', 'deep', 'same.txt'), 'the same in every tree\n');
  fs.symlinkSync('sub/f1.txt', path.join(src, 'link'));
  return src;
}

export function ok(args: string[], env: Record<string, string>): RunResult {
  const r = snap(args, { env });
  if (r.code !== 0) throw new Error(`snap ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r;
}

export interface ListedSnapshot {
  id: string;
  paths: string[];
  tags?: string[];
}

export function listSnapshots(repo: string, env: Record<string, string>): ListedSnapshot[] {
  return parseJson<ListedSnapshot[]>(ok(['--repo', repo, '--json', 'list'], env).stdout);
}

/** Restore snapshot `ref` and compare it with `src` entry by entry (bytes, modes, mtimes, links). */
export function expectRestoresExactly(repo: string, ref: string, src: string, env: Record<string, string>): void {
  const target = tmpDir('snap-restore-');
  ok(['--repo', repo, 'restore', ref, target], env);
  expect(describeTree(path.join(target, src))).toEqual(describeTree(src));
  fs.rmSync(target, { recursive: true, force: true });
}

/** `check --read-data` is clean. */
export function expectCheckClean(repo: string, env: Record<string, string>): void {
  const r = snap(['--repo', repo, 'check', '--read-data'], { env });
  expect([r.code, r.stderr]).toEqual([0, expect.anything()]);
}

/** snap started in the background: the process, what it has said on stderr so far, its exit code once it ends. */
export interface Running {
  child: ChildProcess;
  stderr(): string;
  exited: Promise<number | null>;
}

/** Start snap in the background (`stdin`: a pipe to write to; otherwise no input). */
export function startSnap(args: string[], env: Record<string, string>, o: { stdin?: boolean } = {}): Running {
  const child = o.stdin
    ? spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, SNAP_REPO: '', XDG_DATA_HOME: '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
    : snapAsync(args, { env });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.resume();
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, stderr: () => stderr, exited };
}

/** Run snap in the background; resolves with its exit code and what it said on stderr. */
export async function runSnap(args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const r = startSnap(args, env);
  return { code: await r.exited, stderr: r.stderr() };
}

/**
 * Two clients with caches of their own: b builds its index from the packs; a catches up with b's
 * backup, then with b's forget + gc (dropping the removed packs); a deleted cache is rebuilt.
 */
export function expectCachesCatchUp(repo: string, a: Record<string, string>, b: Record<string, string>, bytes?: number): void {
  ok(['--repo', repo, 'init', '--no-encryption'], a);
  const srcA = makeSource('a', bytes);
  const srcB = makeSource('b', bytes);
  ok(['--repo', repo, 'create', srcA], a);

  // Client b has never seen the repository: its index is built from the packs.
  const first = ok(['--repo', repo, 'list'], b);
  expect(first.stderr).toMatch(/index rebuilt: \d+ packs/);
  ok(['--repo', repo, 'create', srcB], b);

  // a learns b's packs and snapshot on its next open, without a rebuild.
  const seen = ok(['--repo', repo, 'create', srcA], a);
  expect(seen.stderr).toMatch(/caught up with the repository: [1-9]\d* new packs/);
  expect(seen.stderr).not.toMatch(/rebuilding/);
  expect(listSnapshots(repo, a)).toHaveLength(3);

  // b forgets a's snapshots and collects: a's index drops the removed packs before deduplicating.
  const aIds = listSnapshots(repo, b).filter((s) => s.paths[0] === srcA).map((s) => s.id);
  ok(['--repo', repo, 'forget', ...aIds], b);
  ok(['--repo', repo, 'gc'], b);
  const back = ok(['--repo', repo, 'create', srcA], a);
  expect(back.stderr).toMatch(/caught up with the repository: \d+ new packs, [1-9]\d* removed/);
  expectRestoresExactly(repo, 'latest', srcA, a);

  // The cache deleted: rebuilt from the repository, everything still there.
  fs.rmSync(path.join(a.XDG_CACHE_HOME!, 'snap'), { recursive: true, force: true });
  const rebuilt = ok(['--repo', repo, 'list'], a);
  expect(rebuilt.stderr).toMatch(/rebuilding it from the repository/);
  expect(listSnapshots(repo, a)).toHaveLength(2);
  expectRestoresExactly(repo, 'latest', srcA, a);
  expectCheckClean(repo, a);
}

/** Paths (relative to `root`) of the files named `name` below it. */
function findFiles(root: string, name: string): string[] {
  return (fs.readdirSync(root, { recursive: true, encoding: 'utf8' }) as string[]).filter((p) => path.basename(p) === name);
}

/**
 * While a long command on host a owns a's cache index (a backup reading a pipe that stays open),
 * host b backs up: another command on a (a client of that owner) sees b's packs, so b's snapshot
 * restores there and a's next backup of b's files adds no data.
 */
export async function expectClientCatchesUpBesideOwner(repo: string, a: Record<string, string>, b: Record<string, string>): Promise<void> {
  ok(['--repo', repo, 'init', '--no-encryption'], a);
  const srcB = makeSource('b-beside');
  ok(['--repo', repo, 'list'], a); // a's index exists and is complete
  // The owner: a backup of standard input that waits for its pipe.
  const owner = startSnap(['--repo', repo, 'create', '--stdin', '--stdin-filename', 'held.txt'], a, { stdin: true });
  try {
    owner.child.stdin!.write('held open\n');
    // Wait until the backup owns a's cache index (its owner record names its pid).
    const ownerPid = (): number | undefined => {
      const found = findFiles(a.XDG_CACHE_HOME!, 'snap-index.owner');
      for (const f of found) {
        try {
          return (JSON.parse(fs.readFileSync(path.resolve(a.XDG_CACHE_HOME!, f), 'utf8')) as { pid: number }).pid;
        } catch {
          // being written
        }
      }
      return undefined;
    };
    const deadline = Date.now() + 60_000;
    while (ownerPid() !== owner.child.pid) {
      if (Date.now() > deadline) throw new Error(`the stdin backup did not take a's index: ${owner.stderr()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    ok(['--repo', repo, 'create', srcB], b);
    const bId = listSnapshots(repo, b).find((s) => s.paths[0] === srcB)!.id;
    // On a, beside its owner: b's snapshot restores exactly.
    expectRestoresExactly(repo, bId, srcB, a);
    const again = parseJson<{ summary: { dataAdded: number } }>(ok(['--repo', repo, '--json', 'create', srcB], a).stdout);
    expect(again.summary.dataAdded).toBeLessThan(64 * 1024);
  } finally {
    owner.child.stdin!.end();
  }
  expect(await owner.exited, owner.stderr()).toBe(0);
  expectCheckClean(repo, a);
}

/**
 * Clients a and b back up `bytes` each into `repo` at once while c forgets an older snapshot and
 * runs gc: gc waits for the backups' locks (or they for its) and removes nothing a finished
 * backup saved; both backups are listed and restore exactly, and check is clean.
 */
export async function expectConcurrentBackupsWithGc(repo: string, [a, b, c]: Record<string, string>[], bytes: number): Promise<void> {
  ok(['--repo', repo, 'init', '--no-encryption'], a!);
  const old = makeSource('old', 64 * 1024);
  ok(['--repo', repo, 'create', old], c!);
  const oldId = listSnapshots(repo, c!)[0]!.id;
  const srcA = makeSource('ca', bytes);
  const srcB = makeSource('cb', bytes);
  const [ra, rb, rc] = await Promise.all([
    runSnap(['--repo', repo, 'create', '--tag', 'a', srcA], a!),
    runSnap(['--repo', repo, 'create', '--tag', 'b', srcB], b!),
    runSnap(['--repo', repo, '--lock-wait', '5m', 'forget', oldId], c!).then((f) => (f.code === 0 ? runSnap(['--repo', repo, '--lock-wait', '5m', 'gc'], c!) : f)),
  ]);
  expect([ra.code, ra.stderr]).toEqual([0, expect.anything()]);
  expect([rb.code, rb.stderr]).toEqual([0, expect.anything()]);
  expect([rc.code, rc.stderr]).toEqual([0, expect.anything()]);
  const snaps = listSnapshots(repo, c!);
  const tagged = (t: string) => snaps.find((s) => s.tags?.includes(t));
  expect(snaps.map((s) => s.id)).not.toContain(oldId);
  expect(tagged('a')).toBeDefined();
  expect(tagged('b')).toBeDefined();
  expectRestoresExactly(repo, tagged('a')!.id, srcA, a!);
  expectRestoresExactly(repo, tagged('b')!.id, srcB, c!);
  expectCheckClean(repo, b!);
}

/**
 * A 24 MiB backup into `repo` (two packs of up to 16 MiB) whose server `restart` stops and starts
 * again once the first new pack is listed (by `viewer`, a backend on the same place), so the next
 * pack is on its way. snap retries until the server is back, or fails; either way check is clean,
 * every listed snapshot restores exactly, and a backup then completes.
 */
export async function expectBackupThroughRestart(repo: string, env: Record<string, string>, viewer: Backend, restart: () => Promise<void>): Promise<void> {
  ok(['--repo', repo, 'init', '--no-encryption'], env);
  const base = makeSource('base', 128 * 1024);
  ok(['--repo', repo, 'create', base], env);
  const packs = async (): Promise<number> => {
    let n = 0;
    for await (const b of viewer.list('data/')) if (b) n++;
    return n;
  };
  const before = await packs();
  const src = makeSource('big', 24 * 1024 * 1024);
  const { child, stderr, exited } = startSnap(['--repo', repo, 'create', src], env);
  const until = Date.now() + 120_000;
  while ((await packs()) === before && child.exitCode === null && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  expect(child.exitCode, 'the backup ended before the server could be stopped').toBeNull();
  await restart();
  const code = await exited;
  expect([0, 1], stderr()).toContain(code);
  expectCheckClean(repo, env);
  for (const s of listSnapshots(repo, env)) expectRestoresExactly(repo, s.id, s.paths[0] === base ? base : src, env);
  if (code !== 0) ok(['--repo', repo, 'create', src], env);
  expectRestoresExactly(repo, 'latest', src, env);
}

/**
 * A remote repository from init to gc by one client: init refused without a password (remote
 * repositories are encrypted by default), init --no-encryption, a second init refused, two
 * backups listed, restored exactly and checked, the index in the cache folder (keyed by the
 * repository id, nothing of it on the server), forget + gc, and the operation log. Returns the
 * id of the snapshot that is left.
 */
export function expectInitToGc(repo: string, env: Record<string, string>, bytes?: number): string {
  const refused = snap(['--repo', repo, 'init'], { env });
  expect([refused.code, refused.stderr]).toEqual([1, expect.stringMatching(/\[SNAP_NO_PASSWORD\]/)]);
  const r = ok(['--repo', repo, 'init', '--no-encryption'], env);
  expect(r.stdout).toContain(`at ${repo}`);
  const again = snap(['--repo', repo, 'init', '--no-encryption'], { env });
  expect([again.code, again.stderr]).toEqual([1, expect.stringContaining('SNAP_REPO_EXISTS')]);

  const src = makeSource('one', bytes);
  ok(['--repo', repo, 'create', src], env);
  fs.writeFileSync(path.join(src, 'sub', 'f3.txt'), 'changed\n');
  ok(['--repo', repo, 'create', '--tag', 'second', src], env);
  const snaps = listSnapshots(repo, env);
  expect(snaps).toHaveLength(2);
  expectRestoresExactly(repo, 'latest', src, env);
  expectCheckClean(repo, env);

  const cache = path.join(env.XDG_CACHE_HOME!, 'snap');
  const ids = fs.readdirSync(cache);
  expect(ids).toHaveLength(1);
  expect(fs.existsSync(path.join(cache, ids[0]!, 'index'))).toBe(true);

  ok(['--repo', repo, 'forget', snaps[0]!.id], env);
  ok(['--repo', repo, 'gc'], env);
  expect(listSnapshots(repo, env).map((s) => s.id)).toEqual([snaps[1]!.id]);
  expectRestoresExactly(repo, snaps[1]!.id, src, env);
  expectCheckClean(repo, env);
  // The operation log is kept in the repository too.
  expect(ok(['--repo', repo, 'log'], env).stdout).toMatch(/gc/);
  return snaps[1]!.id;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Wait until `probe` holds, checking every 50 ms; fail naming `what` after `ms`. */
export async function until(what: string, ms: number, probe: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
