// Shared parts of the torture suite: a seeded PRNG (failures print their seed and reproduce with
// SNAP_SEED=<n>), random source trees, tree manifests and comparison, and running the built CLI
// as a child process (killable with SIGKILL, optionally as the unprivileged user `nobody`).
import { currentHost } from '../../src/cli/host.js';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { it, type TestContext } from 'vitest';
import { cliFor } from '../helpers/readable-cli.js';
import { trackedDirs } from '../helpers/cli.js';
import { launcherNodeFlags, launcherNodeFlagsFor } from '../helpers/node-flags.js';
import { Rng } from '../helpers/rng.js';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
/** The built CLI; SNAP_TORTURE_CLI points at a private copy when others rebuild dist/ meanwhile. */
export const CLI = process.env.SNAP_TORTURE_CLI ?? path.join(ROOT, 'dist', 'cli', 'main.js');
/** Runs the CLI of SNAP_RSS_CLI in its own process and records that process's peak RSS (VmHWM). */
export const RSS_WRAPPER = path.join(ROOT, 'test', 'helpers', 'rss-wrapper.mjs');
/** The Node.js flags the installed command starts with (bin/snap). */
export const CLI_NODE_FLAGS = launcherNodeFlags();

/** `npm run test:torture` sets SNAP_TORTURE=1: many more iterations and bigger inputs. */
export const LONG = (process.env.SNAP_TORTURE ?? '') !== '' && process.env.SNAP_TORTURE !== '0';

/**
 * SNAP_TORTURE_ENCRYPTED=1: the suites' repositories are encrypted (format 2, issue 12): made by
 * initSmallRepo with a password every CLI run and in-process open gets, indexes in a private cache.
 */
export const ENCRYPTED = (process.env.SNAP_TORTURE_ENCRYPTED ?? '') !== '' && process.env.SNAP_TORTURE_ENCRYPTED !== '0';
const TORTURE_PASSWORD = 'torture-password-8152';
const ENC_CACHE = ENCRYPTED ? fs.mkdtempSync(path.join(os.tmpdir(), 'snap-torture-cache-')) : '';
/** What the CLI needs for an encrypted repository (nothing for plain ones). */
export const ENC_ENV: Record<string, string> = ENCRYPTED ? { SNAP_PASSWORD: TORTURE_PASSWORD, SNAP_KDF_SCRYPT_N: '1024', XDG_CACHE_HOME: ENC_CACHE } : {};
/** The same for in-process Repository.open. */
export const ENC_OPEN = ENCRYPTED ? { password: async () => Buffer.from(TORTURE_PASSWORD), indexCache: path.join(ENC_CACHE, 'snap', 'index') } : {};

/**
 * The LevelDB index folder of a repository: `<repo>/index`, or for an encrypted one its folder in
 * the private cache (`<cache>/<repository id>-<hash of the path>/index`, src/repo/repository.ts).
 */
export function indexDirOf(repo: string): string {
  if (!ENCRYPTED) return path.join(repo, 'index');
  const root = path.join(ENC_CACHE, 'snap', 'index');
  const tail = `-${createHash('sha256').update(path.resolve(repo)).digest('hex').slice(0, 16)}`;
  const hit = fs.existsSync(root) ? fs.readdirSync(root).find((n) => n.endsWith(tail)) : undefined;
  if (!hit) throw new Error(`no cached index of ${repo} under ${root}`);
  return path.join(root, hit, 'index');
}

/**
 * After copying repository `from` to `to`: for an encrypted repository, copy its cached index
 * folder too, as the index travels with a plain repository's `index/` (nothing when `from` has none).
 */
export function copyIndexCache(from: string, to: string): void {
  if (!ENCRYPTED) return;
  let src: string;
  try {
    src = path.dirname(indexDirOf(from));
  } catch {
    return;
  }
  const id = path.basename(src).replace(/-[0-9a-f]{16}$/, '');
  const tail = createHash('sha256').update(path.resolve(to)).digest('hex').slice(0, 16);
  fs.cpSync(src, path.join(path.dirname(src), `${id}-${tail}`), { recursive: true });
}

export function iters(short: number, long: number): number {
  return LONG ? long : short;
}

// ---------------------------------------------------------------------------------------------
// Seeded randomness

export { Rng } from '../helpers/rng.js';

export function newSeed(): number {
  const env = process.env.SNAP_SEED;
  if (env && /^\d+$/.test(env)) return Number(env) >>> 0;
  return (Math.random() * 0x1_0000_0000) >>> 0;
}

/**
 * A vitest test with a fresh seed. On failure the seed is printed and added to the error message,
 * so `SNAP_SEED=<seed> npx vitest run <file> -t <name>` replays the same choices. `ctx.skip(why)`
 * skips visibly, with its reason (a missing tool or privilege is never a silent pass).
 */
export function seededIt(name: string, fn: (rng: Rng, ctx: TestContext) => Promise<void>, timeoutMs?: number): void {
  it(name, async (ctx) => {
    const seed = newSeed();
    try {
      await fn(new Rng(seed), ctx);
    } catch (e) {
      if ((e as { code?: string } | undefined)?.code === 'VITEST_PENDING') throw e; // ctx.skip()
      const note = `[torture] "${name}" failed with seed ${seed} (rerun: SNAP_SEED=${seed})`;
      console.error(note);
      if (e instanceof Error) e.message = `${e.message}\n${note}`;
      throw e;
    }
    // The long mode's rounds (iters) take minutes: vitest's 120 s suits the short mode only.
  }, timeoutMs ?? (LONG ? 30 * 60_000 : undefined));
}

// ---------------------------------------------------------------------------------------------
// Temporary directories

const dirs = trackedDirs('[torture]');

/** A temporary directory of this test file, removed by cleanupTmp. */
export function tmpDir(prefix = 'snap-torture-'): string {
  return dirs.make(prefix);
}

/** Remove the temporary directories of this test file (call from afterAll; SNAP_KEEP_TMP keeps them). */
export function cleanupTmp(): void {
  dirs.cleanup();
}

// ---------------------------------------------------------------------------------------------
// Running the CLI

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Run as the unprivileged user nobody (65534) through setpriv. */
  asNobody?: boolean;
  /** Kill (and fail) a run that takes longer: "never hangs" is part of what is tested. */
  timeoutMs?: number;
}

export interface CliRun {
  child: ChildProcess;
  done: Promise<CliResult>;
}

export function startCli(args: string[], o: CliOptions = {}): CliRun {
  const env = { ...process.env, SNAP_REPO: '', XDG_DATA_HOME: '', ...ENC_ENV, ...o.env };
  const flags = launcherNodeFlagsFor(env, CLI_NODE_FLAGS);
  const [cmd, argv] = o.asNobody
    ? ['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, ...flags, cliFor(65534, 65534, path.resolve(CLI, '..', '..', '..')), ...args]]
    : [process.execPath, [...flags, CLI, ...args]];
  const child = spawn(cmd, argv as string[], {
    cwd: o.cwd ?? ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  const timeoutMs = o.timeoutMs ?? 120_000;
  const done = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`snap ${args.join(' ')} did not finish within ${timeoutMs} ms (a hang)`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
  });
  return { child, done };
}

export function cli(args: string[], o: CliOptions = {}): Promise<CliResult> {
  return startCli(args, o).done;
}

/** Run and require a given exit code; the message shows the output on mismatch. */
export async function cliOk(args: string[], o: CliOptions & { expect?: number[] } = {}): Promise<CliResult> {
  const r = await cli(args, o);
  const want = o.expect ?? [0];
  if (r.code === null || !want.includes(r.code)) {
    throw new Error(`snap ${args.join(' ')} exited ${r.code ?? r.signal} (wanted ${want.join('/')})\nstdout: ${r.stdout.slice(0, 4000)}\nstderr: ${r.stderr.slice(0, 4000)}`);
  }
  return r;
}

let commandList: Set<string> | undefined;

/** Commands the built CLI has (some are written by other people while this suite grows). */
export function hasCommand(name: string): boolean {
  if (!commandList) {
    const r = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
    commandList = new Set();
    let inCommands = false;
    for (const line of (r.stdout ?? '').split('\n')) {
      if (/^Commands:/.test(line)) inCommands = true;
      else if (inCommands) {
        const m = /^ {2}(\S+)/.exec(line);
        if (m) commandList.add(m[1]!.split('|')[0]!);
      }
    }
  }
  return commandList.has(name);
}

export interface ListedSnapshot {
  id: string;
  time: string;
  paths: string[];
  tags: string[];
  summary: Record<string, number>;
}

export async function listSnapshots(repo: string): Promise<ListedSnapshot[]> {
  const r = await cliOk(['--repo', repo, 'list', '--json']);
  return JSON.parse(r.stdout) as ListedSnapshot[];
}

/** Warning lines of a `--json` run (one JSON object per line on stderr). */
export function jsonWarnings(stderr: string): { code: string; path?: string; message: string }[] {
  const out: { code: string; path?: string; message: string }[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line) as { warning?: { code: string; path?: string; message: string } };
      if (o.warning) out.push(o.warning);
    } catch {
      // not ours
    }
  }
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------------
// Random source trees

export interface TreeSpec {
  files: number;
  dirs: number;
  /** Largest file; a few files get close to it. */
  maxFile: number;
  symlinks?: boolean;
  hardlinks?: boolean;
  fifos?: boolean;
}

const MODES = [0o644, 0o600, 0o755, 0o700, 0o640, 0o444, 0o400, 0o4755, 0o2750, 0o1777];

/** File contents: random, repeated text, zeros (sparse-ish), or a copy of an earlier file (dedup). */
export function content(rng: Rng, size: number, pool: Buffer[]): Buffer {
  const kind = rng.int(0, 9);
  if (kind === 0 && pool.length > 0) {
    const src = rng.pick(pool);
    return size <= src.length ? Buffer.from(src.subarray(0, size)) : Buffer.concat([src, rng.bytes(size - src.length)]);
  }
  if (kind === 1) return Buffer.alloc(size, 0);
  if (kind <= 3) {
    const word = Buffer.from(`line ${rng.u32()} of some compressible text\n`);
    const b = Buffer.alloc(size);
    for (let i = 0; i < size; i += word.length) word.copy(b, i);
    return b;
  }
  return rng.bytes(size);
}

export function fileSize(rng: Rng, max: number): number {
  const r = rng.float();
  if (r < 0.1) return 0;
  if (r < 0.6) return rng.int(1, 4096);
  if (r < 0.9) return rng.int(4097, Math.max(4097, Math.floor(max / 8)));
  return rng.int(Math.floor(max / 2), max);
}

function randomName(rng: Rng): string {
  const n = rng.int(1, 12);
  let s = '';
  for (let i = 0; i < n; i++) s += 'abcdefghijklmnopqrstuvwxyz0123456789_- .'[rng.int(0, 39)];
  s = s.trim() || 'x';
  if (s === '.' || s === '..') s = 'dot';
  return s;
}

function randomTime(rng: Rng): number {
  // Seconds with microseconds: restore sets times through a double, exact to about 1 µs.
  return rng.int(0, 2_000_000_000) + rng.int(0, 999_999) / 1e6;
}

/** Write a random tree under `root` (created). Directory modes and times are set last. */
export function genTree(rng: Rng, root: string, spec: TreeSpec): void {
  fs.mkdirSync(root, { recursive: true });
  const dirs = [root];
  for (let i = 0; i < spec.dirs; i++) {
    const d = path.join(rng.pick(dirs), randomName(rng));
    if (fs.existsSync(d)) continue;
    fs.mkdirSync(d);
    dirs.push(d);
  }
  const files: string[] = [];
  const pool: Buffer[] = [];
  for (let i = 0; i < spec.files; i++) {
    const f = path.join(rng.pick(dirs), randomName(rng));
    if (fs.existsSync(f)) continue;
    const data = content(rng, fileSize(rng, spec.maxFile), pool);
    if (data.length > 0 && pool.length < 8) pool.push(data);
    fs.writeFileSync(f, data);
    fs.chmodSync(f, rng.pick(MODES));
    fs.utimesSync(f, randomTime(rng), randomTime(rng));
    files.push(f);
  }
  if (spec.symlinks) {
    for (let i = 0; i < Math.ceil(spec.files / 10); i++) {
      const l = path.join(rng.pick(dirs), `link-${randomName(rng)}`);
      // lstat, not existsSync: a dangling link made earlier under the same name does not "exist".
      if (fs.lstatSync(l, { throwIfNoEntry: false })) continue;
      const target = rng.chance(0.5) && files.length ? path.relative(path.dirname(l), rng.pick(files)) : `/nonexistent/${randomName(rng)}`;
      fs.symlinkSync(target, l);
      fs.lutimesSync(l, randomTime(rng), randomTime(rng));
    }
  }
  if (spec.hardlinks && files.length > 0) {
    for (let i = 0; i < Math.ceil(spec.files / 20); i++) {
      const l = path.join(rng.pick(dirs), `hard-${randomName(rng)}`);
      if (fs.existsSync(l)) continue;
      fs.linkSync(rng.pick(files), l);
    }
  }
  if (spec.fifos) {
    const f = path.join(rng.pick(dirs), 'fifo');
    if (!fs.existsSync(f)) spawnSync('mkfifo', ['-m', '640', f]);
  }
  for (const d of dirs.slice(1).reverse()) {
    fs.chmodSync(d, rng.pick([0o755, 0o700, 0o750, 0o1777]));
    fs.utimesSync(d, randomTime(rng), randomTime(rng));
  }
}

/** Change a tree a little, as between two backups: edit, grow, shrink, delete, add files. */
export function mutateTree(rng: Rng, root: string, maxFile: number): void {
  const files: string[] = [];
  const dirs: string[] = [root];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        dirs.push(p);
        walk(p);
      } else if (e.isFile()) files.push(p);
    }
  };
  walk(root);
  const edits = rng.int(1, Math.max(1, Math.ceil(files.length / 5)));
  for (let i = 0; i < edits && files.length > 0; i++) {
    const f = rng.pick(files);
    const st = fs.statSync(f);
    fs.chmodSync(f, 0o600);
    const op = rng.int(0, 3);
    if (op === 0) fs.appendFileSync(f, rng.bytes(rng.int(1, 100_000)));
    else if (op === 1) fs.truncateSync(f, Math.floor(st.size / 2));
    else if (op === 2 && st.size > 0) {
      const fd = fs.openSync(f, 'r+');
      fs.writeSync(fd, rng.bytes(rng.int(1, 64)), 0, undefined, rng.int(0, st.size - 1));
      fs.closeSync(fd);
    } else fs.writeFileSync(f, content(rng, fileSize(rng, maxFile), []));
    fs.chmodSync(f, Number(st.mode & 0o7777));
  }
  for (let i = 0; i < rng.int(0, 3) && files.length > 1; i++) fs.rmSync(files.splice(rng.int(0, files.length - 1), 1)[0]!, { force: true });
  for (let i = 0; i < rng.int(0, 5); i++) {
    const f = path.join(rng.pick(dirs), `new-${rng.u32().toString(36)}`);
    try {
      fs.writeFileSync(f, content(rng, fileSize(rng, maxFile), []));
    } catch {
      // a read-only directory (mode 0555 etc.): fine, skip
    }
  }
}

export { type CompareOptions, type Entry, type Manifest, type ManifestOptions, assertSameTree, diffManifests, hashFile, manifest } from '../helpers/tree.js';
import { type CompareOptions, type Manifest, assertSameTree, manifest } from '../helpers/tree.js';

/** Where `snap restore` puts a source path under a target: TARGET/<absolute path>. */
export function restoredAt(target: string, source: string): string {
  return path.join(target, source);
}

export const RESTORE_TMP = Buffer.from('.snap-restore-');

export function isRestoreTemp(name: Buffer): boolean {
  return name.subarray(0, RESTORE_TMP.length).equals(RESTORE_TMP);
}

/** Restore one snapshot into a fresh target and compare it with an expected manifest of `source`. */
export async function restoreAndCompare(repo: string, id: string, source: string, want: Manifest, what: string, o: CompareOptions = {}): Promise<void> {
  const target = tmpDir('snap-restore-');
  try {
    await cliOk(['--repo', repo, 'restore', id, target]);
    assertSameTree(want, manifest(restoredAt(target, source)), `${what} (snapshot ${id.slice(0, 8)})`, o);
  } finally {
    fs.rmSync(target, { recursive: true, force: true });
  }
}

/** Every file and folder under `dir` with group or other permission bits set. */
export function notOwnerOnly(dir: string): string[] {
  const bad: string[] = [];
  const stack = [dir];
  while (stack.length > 0) {
    const d = stack.pop()!;
    const st = fs.lstatSync(d);
    if ((st.mode & 0o077) !== 0 && !st.isSymbolicLink()) bad.push(`${d} (${(st.mode & 0o7777).toString(8)})`);
    if (st.isDirectory()) for (const n of fs.readdirSync(d)) stack.push(path.join(d, n));
  }
  return bad;
}

/** Make a repository with small chunks and packs, so small trees exercise many chunks and packs. */
export async function initSmallRepo(repo: string): Promise<void> {
  const { Repository } = await import('../../src/repo/repository.js');
  const { randomHex } = await import('../../src/core/ids.js');
  const encrypt = ENCRYPTED ? { password: Buffer.from(TORTURE_PASSWORD), scrypt: { N: 1024, r: 8, p: 1 } } : undefined;
  const r = await Repository.init(repo, { host: currentHost(), sink: {}, encrypt, ...ENC_OPEN }, {
    chunker: { algorithm: 'fastcdc-gear32-nc2', minSize: 4096, avgSize: 16384, maxSize: 65536, ...(ENCRYPTED ? {} : { gearSeed: randomHex(32) }) },
    packSize: 256 * 1024,
  });
  await r.close();
}

export interface Expectation {
  id: string;
  source: string;
  want: Manifest;
  what: string;
}

/**
 * Restore snapshots in-process (one repository open for all: much faster than a CLI run each)
 * and compare each with its expected manifest. The CLI's restore is exercised elsewhere.
 */
export async function restoreAllInProcess(repo: string, list: Expectation[], o: CompareOptions = {}): Promise<void> {
  if (list.length === 0) return;
  const { Repository } = await import('../../src/repo/repository.js');
  const { restoreSnapshot } = await import('../../src/ops/restore/restore.js');
  const quiet = { warn: () => {}, info: () => {} };
  const r = await Repository.open(repo, { host: currentHost(), sink: quiet, lockWaitMs: 30_000, ...ENC_OPEN });
  try {
    const snaps = await r.listSnapshots();
    for (const e of list) {
      const snap = snaps.find((s) => s.id === e.id);
      if (!snap) throw new Error(`${e.what}: snapshot ${e.id.slice(0, 8)} is not listed`);
      const target = tmpDir('snap-restore-');
      try {
        const res = await restoreSnapshot(r, snap, { target, asRoot: process.getuid?.() === 0, sink: quiet });
        if (res.damaged.length > 0) throw new Error(`${e.what}: snapshot ${e.id.slice(0, 8)} has damaged files: ${res.damaged.slice(0, 5).join(', ')}`);
        assertSameTree(e.want, manifest(restoredAt(target, e.source)), `${e.what} (snapshot ${e.id.slice(0, 8)})`, o);
      } finally {
        fs.rmSync(target, { recursive: true, force: true });
      }
    }
  } finally {
    await r.close();
  }
}
