// Regression tests for the defects of issue 10 and its polish list, each named after the defect:
// the built CLI on real files, a real LevelDB, real pipes and real signals.
import { spawn, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCbor, encodeCbor } from '../src/model/cbor.js';
import { sha256, toHex } from '../src/core/ids.js';
import { fsDecode, fsEncode } from '../src/core/bytes.js';
import { LevelIndex } from '../src/index/level-index.js';
import type { StoredSnapshot } from '../src/model/snapshot.js';
import { canSetpriv, CLI, parseJson, ROOT, snap, snapBytes, type RunResult, tmpDir } from './helpers/cli.js';
import { cleanupScratch, findObject, lockFiles, packFile, packs, plantLock } from './helpers/maint.js';
import { cliFor, readableCopy, runsAs } from './helpers/readable-cli.js';

interface SnapJson {
  id: string;
  time: string;
  paths: string[];
  tags: string[];
  summary: { dirsNew: number; dirsUnchanged: number; dirsChanged: number; dataAdded: number; objectsAdded: number };
}

const UTC = { TZ: 'UTC' };

function initRepo(dir = tmpDir()): string {
  const repo = path.join(dir, 'repo');
  const r = snap(['--repo', repo, 'init']);
  expect(r.code, r.stderr).toBe(0);
  return repo;
}

function ok(args: string[], env?: Record<string, string>): RunResult {
  const r = snap(args, { env });
  expect(r.code, `snap ${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r;
}

/** The snapshots, with times in UTC (TZ=UTC) so they compare as text. */
function listJson(repo: string): SnapJson[] {
  return parseJson<SnapJson[]>(ok(['--repo', repo, '--json', 'list'], UTC).stdout);
}

/** Start the CLI and resolve with its exit once it ends; `stderr()` is what it wrote so far. */
function start(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, SNAP_REPO: '', XDG_DATA_HOME: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, exited, stderr: () => stderr, stdout: () => stdout };
}

async function until(what: string, cond: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function tempFiles(repo: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (e.name.startsWith('.tmp-')) out.push(path.join(d, e.name));
    }
  };
  walk(repo);
  return out;
}

afterAll(() => cleanupScratch());

describe('defect 1: --time outside years 0000-9999 made the repository unusable', () => {
  it('refuses such times with SNAP_USAGE; times the format holds round-trip to the millisecond', () => {
    const repo = initRepo();
    const src = tmpDir();
    fs.writeFileSync(path.join(src, 'f'), 'x');
    for (const t of ['+010000-01-01T00:00:00Z', '-000001-01-01T00:00:00Z', '0000-01-01T00:00:00+01:00']) {
      const r = snap(['--repo', repo, 'create', src, '--time', t]);
      expect([r.code, r.stderr], t).toEqual([2, expect.stringMatching(/out of range: a snapshot records UTC times from 0000-01-01 to 9999-12-31.*\[SNAP_USAGE\]/)]);
    }
    for (const t of ['0000-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z', '2026-03-03T14:00:00.123Z']) ok(['--repo', repo, 'create', src, '--time', t]);
    // JSON keeps the milliseconds (polish: JSON times dropped sub-second precision).
    expect(listJson(repo).map((s) => s.time)).toEqual(['0000-01-01T00:00:00.000+00:00', '2026-03-03T14:00:00.123+00:00', '9999-12-31T23:59:59.999+00:00']);
    // Polish: year 0 printed as 0-01-01.
    const text = ok(['--repo', repo, 'list'], UTC).stdout;
    expect(text).toMatch(/ 0000-01-01 00:00:00 /);
    expect(text).toMatch(/ 9999-12-31 23:59:59 /);
    expect(ok(['--repo', repo, 'check']).stdout).toMatch(/no damage found/);
  });

  it('a record the others cannot load: list names and skips it, check reports it, repair moves it aside', async () => {
    const repo = initRepo();
    const src = tmpDir();
    fs.writeFileSync(path.join(src, 'f'), 'x');
    const good = parseJson<SnapJson>(ok(['--repo', repo, '--json', 'create', src]).stdout);
    // What an older snap wrote for `--time +010000-01-01T00:00:00Z`: the record in storage, and
    // in the index under a key whose time is 27 characters wide (list then failed for good).
    const rec = decodeCbor(fs.readFileSync(path.join(repo, 'snapshots', good.id)), 'record') as Record<string, unknown>;
    rec.time = '+010000-01-01T00:00:00.000Z';
    const bytes = encodeCbor(rec);
    const bad = toHex(sha256(bytes));
    fs.writeFileSync(path.join(repo, 'snapshots', bad), bytes, { mode: 0o600 });
    const config = JSON.parse(fs.readFileSync(path.join(repo, 'config'), 'utf8')) as { id: string };
    const { index } = await LevelIndex.open(path.join(repo, 'index'), { repoId: config.id, waitMs: 0, sink: {} });
    await index.putSnapshot({ id: bad, time: rec.time } as StoredSnapshot, bytes);
    await index.close();

    const l = snap(['--repo', repo, '--json', 'list']);
    expect(l.code, l.stderr).toBe(0);
    expect(parseJson<SnapJson[]>(l.stdout).map((s) => s.id)).toEqual([good.id]);
    expect(l.stderr).toContain(`snapshot ${bad.slice(0, 8)} is left out, its record is unreadable`);
    ok(['--repo', repo, 'ls', 'latest']);
    ok(['--repo', repo, 'create', src]);

    const c = snap(['--repo', repo, 'check']);
    expect(c.code).toBe(1);
    expect(c.stdout).toContain(`damage: snapshot record ${bad.slice(0, 8)} is damaged`);
    expect(c.stdout).toMatch(/is not a time of the form YYYY-MM-DDTHH:MM:SS\.mmmZ/);
    expect(c.stdout).not.toMatch(/no damage found/);
    expect(c.stderr).toMatch(/\[SNAP_DAMAGED\]/);

    const r = ok(['--repo', repo, 'repair']);
    expect(r.stdout).toMatch(new RegExp(`snapshot record ${bad.slice(0, 8)} is damaged .*moved to quarantine/`));
    expect(fs.existsSync(path.join(repo, 'quarantine', 'snapshots', bad))).toBe(true);
    expect(fs.existsSync(path.join(repo, 'snapshots', bad))).toBe(false);
    const after = snap(['--repo', repo, 'list']);
    expect([after.code, after.stderr]).toEqual([0, '']);
    expect(ok(['--repo', repo, 'check']).stdout).toMatch(/no damage found/);
  });
});

describe('defect 3: output into a closed pipe', () => {
  let repo: string;
  let src: string;
  let ids: string[];
  beforeAll(() => {
    repo = initRepo();
    src = tmpDir();
    // Enough output for every command to outgrow a pipe's 64 KiB: the reader is gone long before the end.
    const names = Array.from({ length: 2500 }, (_, i) => path.join(src, `file-${String(i).padStart(5, '0')}-${'x'.repeat(40)}`));
    for (const n of names) fs.writeFileSync(n, 'same content');
    fs.writeFileSync(path.join(src, 'big'), Buffer.alloc(4 << 20, 1));
    ok(['--repo', repo, 'create', src]);
    for (const n of names) fs.appendFileSync(n, '!');
    // One snapshot with every file as a source path: `list` prints one very long row.
    ok(['--repo', repo, 'create', ...names]);
    ids = listJson(repo).map((s) => s.id);
  }, 300_000);

  it.each([
    ['ls', ['ls', 'latest', '/', '-R']],
    ['ls --json', ['--json', 'ls', 'latest', '/', '-R']],
    ['cat', ['cat', '__FIRST__', 'big']],
    ['dups', ['dups', '__FIRST__']],
    ['list', ['list']],
    ['list --json', ['--json', 'list']],
    ['diff', ['diff', '__FIRST__', 'latest']],
    ['find', ['find', '*']],
    ['export', ['export', '__FIRST__', '-', '--format', 'tar']],
    ['restore --dry-run', ['restore', '__FIRST__', '/nonexistent-target', '--dry-run']],
    ['restore --dry-run --json', ['--json', 'restore', '__FIRST__', '/nonexistent-target', '--dry-run']],
    ['rewrite --dry-run', ['rewrite', '__FIRST__', '--exclude', 'file-*', '--dry-run']],
  ])('%s | head: stops quietly with 141, releases its lock', (_name, args) => {
    const a = args.map((x) => (x === '__FIRST__' ? ids[0]! : x));
    const script = `"${process.execPath}" "${CLI}" --repo "${repo}" ${a.map((x) => `'${x}'`).join(' ')} | head -c 1 >/dev/null; exit \${PIPESTATUS[0]}`;
    const r = spawnSync('bash', ['-c', script], { env: { ...process.env, SNAP_REPO: '' } });
    expect([r.status, r.stderr.toString()]).toEqual([141, '']);
    expect(lockFiles(repo)).toEqual([]);
    // The next command runs at once: no lock to wait for, none to break.
    const next = snap(['--repo', repo, '--lock-wait', '0', 'list', '--path', src]);
    expect([next.code, next.stderr]).toEqual([0, '']);
  });
});

describe('defect 4: arguments that are not UTF-8', () => {
  it('sources, cat, ls, restore --include, export --path, --exclude, find, history and --repo take raw bytes', () => {
    const base = tmpDir();
    const dir = Buffer.concat([Buffer.from(`${base}/dir`), Buffer.from([0xff])]);
    const file = Buffer.concat([dir, Buffer.from('/f'), Buffer.from([0xfe])]);
    const skip = Buffer.concat([dir, Buffer.from('/skip'), Buffer.from([0xfd])]);
    fs.mkdirSync(dir);
    fs.writeFileSync(file, 'bytes in the name');
    fs.writeFileSync(skip, 'excluded');
    const repo = Buffer.concat([Buffer.from(`${base}/repo`), Buffer.from([0xfc])]);
    const at = (...a: (string | Buffer)[]) => snapBytes(['--repo', repo, ...a]);
    const good = (r: RunResult) => {
      expect(r.code, r.stderr).toBe(0);
      return r;
    };
    good(at('init'));
    expect(fs.existsSync(Buffer.concat([repo, Buffer.from('/config')]))).toBe(true);
    const c = good(at('--json', 'create', dir, '--exclude', Buffer.concat([Buffer.from('skip'), Buffer.from([0xfd])])));
    const s = parseJson<SnapJson>(c.stdout);
    // JSON carries the path losslessly (a lone surrogate per byte, as Python's surrogateescape).
    expect(fsEncode(s.paths[0]!).equals(dir)).toBe(true);
    // The record holds it as a CBOR byte string; a UTF-8 path stays text (existing ids unchanged).
    const rec = decodeCbor(fs.readFileSync(Buffer.concat([repo, Buffer.from(`/snapshots/${s.id}`)])), 'record') as { paths: unknown[]; excludes: unknown[] };
    expect(Buffer.isBuffer(rec.paths[0]) || rec.paths[0] instanceof Uint8Array).toBe(true);
    expect(Buffer.from(rec.paths[0] as Uint8Array).equals(dir)).toBe(true);
    expect(rec.excludes[0] instanceof Uint8Array).toBe(true);

    expect(good(at('cat', 'latest', file)).stdout).toBe('bytes in the name');
    expect(good(at('cat', 'latest', Buffer.from([0x66, 0xfe]))).stdout).toBe('bytes in the name');
    // Shown escaped, one entry per line; the excluded file is not there.
    expect(good(at('ls', 'latest', dir)).stdout).toBe(`${base}/dir\\xff/f\\xfe\n`);
    expect(good(at('list')).stdout).toContain(`${base}/dir\\xff`);
    expect(good(at('find', Buffer.from([0x66, 0xfe]))).stdout).toMatch(/1 match in 1 of 1 snapshot/);
    expect(good(at('history', file)).stdout).toMatch(/1 version of .*\/dir\\xff\/f\\xfe in 1 snapshot/);
    expect(good(at('list', '--path', dir)).stdout).toMatch(/1 snapshot$/m);

    const target = tmpDir();
    good(at('restore', 'latest', target, '--include', file));
    expect(fs.readFileSync(Buffer.concat([Buffer.from(target), file])).toString()).toBe('bytes in the name');

    const tar = path.join(tmpDir(), 'x.tar');
    good(at('export', 'latest', tar, '--path', Buffer.from([0x66, 0xfe])));
    const names = spawnSync('tar', ['-tf', tar, '--warning=no-unknown-keyword', '--quoting-style=literal']).stdout;
    expect(names.includes(Buffer.concat([dir.subarray(1), Buffer.from('/f'), Buffer.from([0xfe])]))).toBe(true);

    // A UTF-8 source path is stored as text, as before.
    const plain = path.join(base, 'plain');
    fs.mkdirSync(plain);
    const p = parseJson<SnapJson>(good(at('--json', 'create', plain)).stdout);
    const prec = decodeCbor(fs.readFileSync(Buffer.concat([repo, Buffer.from(`/snapshots/${p.id}`)])), 'record') as { paths: unknown[] };
    expect(prec.paths).toEqual([plain]);
    expect(fsDecode(dir)).toBe(`${base}/dir\udcff`);
  });
});

describe('defect 5: SIGINT and SIGTERM in every command', () => {
  it('create: stops, keeps the packs written, writes no snapshot, releases the lock, one line, exit 130', async () => {
    const repo = initRepo();
    const src = tmpDir();
    // Random data (zstd cannot shrink it): a backup of several seconds, time to interrupt it.
    const fd = fs.openSync(path.join(src, 'big'), 'w');
    const chunk = Buffer.alloc(1 << 20);
    for (let i = 0; i < 400; i++) fs.writeSync(fd, randomFillSync(chunk));
    fs.closeSync(fd);
    const run = start(['--repo', repo, 'create', src]);
    await until('a pack written', () => fs.existsSync(path.join(repo, 'data')) && fs.readdirSync(path.join(repo, 'data')).length > 0);
    run.child.kill('SIGINT');
    const { code } = await run.exited;
    expect(code).toBe(130);
    expect(run.stderr().trim().split('\n')).toEqual([expect.stringMatching(/^snap: create interrupted by SIGINT: no snapshot was saved .*\[SNAP_INTERRUPTED\]$/)]);
    expect(fs.existsSync(path.join(repo, 'snapshots')) ? fs.readdirSync(path.join(repo, 'snapshots')) : []).toEqual([]);
    expect(lockFiles(repo)).toEqual([]);
    expect(tempFiles(repo)).toEqual([]);
    expect((await packs(repo)).size).toBeGreaterThan(0);
    // What was written is unreferenced, not damage; the next backup completes.
    const c = ok(['--repo', repo, 'check']);
    expect(c.stdout).toMatch(/unused objects .* can be freed with 'snap gc'/);
    expect(c.stdout).toMatch(/no damage found/);
    ok(['--repo', repo, 'create', src]);
  }, 180_000);

  it.each([
    ['SIGINT', ['list']],
    ['SIGTERM', ['restore', 'latest', '__TARGET__']],
    ['SIGINT', ['check']],
    ['SIGTERM', ['gc']],
  ] as const)('%s while %s waits for a lock: exit 130, no lock file left behind', async (sig, args) => {
    const repo = initRepo();
    const src = tmpDir();
    fs.writeFileSync(path.join(src, 'f'), 'x');
    ok(['--repo', repo, 'create', src]);
    // A live holder: this test process, on this host.
    const held = plantLock(repo, { pid: process.pid, exclusive: true, command: 'test' });
    const a = args.map((x) => (x === '__TARGET__' ? tmpDir() : x));
    const run = start(['--repo', repo, ...a]);
    await until('the command to wait', () => run.stderr().includes('waiting for'));
    run.child.kill(sig);
    const { code } = await run.exited;
    expect(code).toBe(130);
    expect(run.stderr()).toMatch(new RegExp(`^snap: ${a[0]} interrupted by ${sig} \\[SNAP_INTERRUPTED\\]$`, 'm'));
    expect(run.stderr()).not.toMatch(/\n\s+at /);
    expect(lockFiles(repo)).toEqual([held]);
  });

  it('gc removes temporary files of interrupted writes at once (it holds the repository alone)', () => {
    const repo = initRepo();
    const src = tmpDir();
    fs.writeFileSync(path.join(src, 'f'), 'x');
    ok(['--repo', repo, 'create', src]);
    fs.mkdirSync(path.join(repo, 'data', 'ab'), { recursive: true });
    fs.writeFileSync(path.join(repo, 'data', 'ab', '.tmp-0123456789abcdef'), 'half a pack');
    fs.writeFileSync(path.join(repo, 'snapshots', '.tmp-0123456789abcdef'), 'half a record');
    // Another process may be writing its lock file this instant: those stay until they are old.
    fs.writeFileSync(path.join(repo, 'locks', '.tmp-0123456789abcdef'), '{}');
    const r = ok(['--repo', repo, 'gc']);
    expect(r.stdout).toMatch(/removed 2 temporary file\(s\)/);
    expect(tempFiles(repo)).toEqual([path.join(repo, 'locks', '.tmp-0123456789abcdef')]);
  });
});

describe('defect 6: --time parsing is strict and speaks the date-reference vocabulary', () => {
  it('refuses 30 February everywhere; --time yesterday works as references do', () => {
    const repo = initRepo();
    const src = tmpDir();
    fs.writeFileSync(path.join(src, 'f'), 'x');
    for (const args of [['create', src, '--time', '2026-02-30T00:00:00Z'], ['list', '--since', '2026-02-30'], ['ls', '2026-02-30']]) {
      const r = snap(['--repo', repo, ...args]);
      expect([r.code, r.stderr], args.join(' ')).toEqual([2, expect.stringMatching(/2026-02 has no day 30 \[SNAP_USAGE\]/)]);
    }
    const env = { ...UTC, SNAP_NOW: '2026-03-10T12:00:00Z' };
    ok(['--repo', repo, 'create', src, '--time', 'yesterday'], env);
    ok(['--repo', repo, 'create', src, '--time', '3 days ago'], env);
    ok(['--repo', repo, 'create', src, '--time', '2026-03-05 14:30'], env);
    expect(listJson(repo).map((s) => s.time)).toEqual(['2026-03-05T14:30:00.000+00:00', '2026-03-07T12:00:00.000+00:00', '2026-03-09T00:00:00.000+00:00']);
    // The same words select those snapshots.
    expect(ok(['--repo', repo, '--json', 'ls', 'yesterday'], env).stdout).toContain('"time":"2026-03-09T00:00:00.000+00:00"');
  });
});

describe('defect 7: read-only commands never create repositories', () => {
  it('the default repository is created by create (and init) only', () => {
    const xdg = tmpDir();
    const env = { XDG_DATA_HOME: xdg };
    const target = tmpDir();
    for (const args of [['list'], ['ls', 'latest'], ['check'], ['stats'], ['find', 'x'], ['gc'], ['forget', 'latest'], ['restore', 'latest', target], ['index', 'rebuild'], ['tag', 'latest', '--add', 'x'], ['rewrite', 'latest', '--exclude', 'x']]) {
      const r = snap(args, { env });
      expect([r.code, r.stderr], args.join(' ')).toEqual([1, expect.stringMatching(/^snap: no repository at .*\/snap .*\[SNAP_NO_REPO\]\n$/)]);
    }
    const typo = path.join(tmpDir(), 'typo');
    expect(snap(['list'], { env: { SNAP_REPO: typo } }).code).toBe(1);
    expect(fs.existsSync(typo)).toBe(false);
    expect(fs.readdirSync(xdg)).toEqual([]);
  });

  it("a folder that holds other files: no advice to 'snap init' there (it would refuse)", () => {
    const full = tmpDir();
    fs.writeFileSync(path.join(full, 'x'), 'x');
    const r = snap(['--repo', full, 'list']);
    expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(/no repository at .*: the folder holds other files .*\[SNAP_NO_REPO\]/)]);
    expect(r.stderr).not.toContain(`snap init --repo ${full}'`);
  });
});

describe('defect 8: --repo with a scheme', () => {
  it('an unsupported scheme is a usage error listing the supported ones, never a folder', () => {
    const cwd = tmpDir();
    for (const loc of ['b2:bucket/path', 'ftp:user@host:/srv/repo', 'rest:http://x/']) {
      for (const cmd of ['init', 'list']) {
        const r = snap(['--repo', loc, cmd], { cwd });
        expect([r.code, r.stderr], loc).toEqual([2, expect.stringMatching(/unsupported repository location .*Supported: a local folder \(DIR or local:DIR\), s3:.*sftp:.*\[SNAP_USAGE\]/)]);
      }
      const e = snap(['create', cwd], { cwd, env: { SNAP_REPO: loc } });
      expect(e.code).toBe(2);
    }
    expect(fs.readdirSync(cwd)).toEqual([]);
  });

  it("local:DIR is a folder; a ':' after a '/' is part of a folder name", () => {
    const cwd = tmpDir();
    ok(['--repo', `local:${path.join(cwd, 'one')}`, 'init']);
    expect(fs.existsSync(path.join(cwd, 'one', 'config'))).toBe(true);
    expect(snap(['--repo', './a:b', 'init'], { cwd }).code).toBe(0);
    expect(fs.existsSync(path.join(cwd, 'a:b', 'config'))).toBe(true);
  });
});

describe('defect 10: the CLI as nobody from a private (0700) checkout', () => {
  it.skipIf(!canSetpriv())('copies what nobody runs to a readable place when the checkout is private', () => {
    // A checkout nobody cannot read: a copy of dist/ and the dependencies in a 0700 folder.
    const home = tmpDir('snap-private-home-');
    fs.chmodSync(home, 0o700);
    const checkout = path.join(home, 'snap');
    fs.renameSync(path.dirname(path.dirname(path.dirname(readableCopy(ROOT)))), checkout);
    expect(runsAs(65534, 65534, path.join(checkout, 'dist', 'cli', 'main.js'))).toBe(false);
    const cli = cliFor(65534, 65534, checkout);
    expect(cli.startsWith(home)).toBe(false);
    expect(runsAs(65534, 65534, cli)).toBe(true);
  });
});

describe('defect 11: test helpers close what they open', () => {
  it('packs() leaves no pack file open (no DEP0137 when handles are collected)', async () => {
    const repo = initRepo();
    const src = tmpDir();
    fs.writeFileSync(path.join(src, 'f'), 'x');
    ok(['--repo', repo, 'create', src]);
    expect((await packs(repo)).size).toBeGreaterThan(0);
    const open = async (): Promise<string[]> => {
      const out: string[] = [];
      for (const fd of fs.readdirSync('/proc/self/fd')) {
        const to = (() => {
          try {
            return fs.readlinkSync(`/proc/self/fd/${fd}`);
          } catch {
            return '';
          }
        })();
        if (to.startsWith(path.join(repo, 'data'))) out.push(to);
      }
      return out;
    };
    await new Promise((r) => setTimeout(r, 50)); // closing is asynchronous
    expect(await open()).toEqual([]);
  });
});

describe('polish', () => {
  it('a first backup counts its directories as new, never unchanged (even identical empty ones)', () => {
    const repo = initRepo();
    const src = tmpDir();
    for (let i = 0; i < 5; i++) fs.mkdirSync(path.join(src, `empty-${i}`));
    const first = parseJson<SnapJson>(ok(['--repo', repo, '--json', 'create', src]).stdout).summary;
    expect([first.dirsNew, first.dirsChanged, first.dirsUnchanged]).toEqual([6, 0, 0]);
    const second = parseJson<SnapJson>(ok(['--repo', repo, '--json', 'create', src]).stdout).summary;
    expect([second.dirsNew, second.dirsChanged, second.dirsUnchanged]).toEqual([0, 0, 6]);
  });

  it('ls and find escape control characters: a name cannot fake a line of output', () => {
    const repo = initRepo();
    const src = tmpDir();
    for (const n of ['a\nfake line', 'tab\there', 'esc\x1b[31mred', 'back\\slash']) fs.writeFileSync(path.join(src, n), 'x');
    ok(['--repo', repo, 'create', src]);
    expect(ok(['--repo', repo, 'ls', 'latest', src]).stdout.split('\n')).toEqual([
      `${src}/a\\nfake line`,
      `${src}/back\\\\slash`,
      `${src}/esc\\x1b[31mred`,
      `${src}/tab\\there`,
      '',
    ]);
    const f = ok(['--repo', repo, 'find', '*fake*']).stdout;
    expect(f).toContain(`${src}/a\\nfake line\n`);
    expect(f).not.toMatch(/\x1b/);
  });

  it('ls -l aligns its columns per directory, whatever the owner names and sizes', () => {
    const repo = initRepo();
    const src = tmpDir();
    fs.writeFileSync(path.join(src, 'a'), 'x');
    fs.writeFileSync(path.join(src, 'b'), Buffer.alloc(123456));
    if (process.getuid?.() === 0) fs.chownSync(path.join(src, 'b'), 65534, 65534);
    ok(['--repo', repo, 'create', src]);
    const lines = ok(['--repo', repo, 'ls', 'latest', src, '-l']).stdout.trim().split('\n');
    const dateAt = lines.map((l) => l.search(/\d{4}-\d\d-\d\d \d\d:/));
    expect(new Set(dateAt).size, lines.join('\n')).toBe(1);
  });

  it('index rebuild prints its result once', () => {
    const repo = initRepo();
    const r = ok(['--repo', repo, 'index', 'rebuild']);
    expect(`${r.stdout}${r.stderr}`.match(/index rebuilt/g)).toHaveLength(1);
  });

  it('ls --json is one document, like every other command', () => {
    const repo = initRepo();
    const src = tmpDir();
    fs.writeFileSync(path.join(src, 'f'), 'x');
    ok(['--repo', repo, 'create', src]);
    const doc = parseJson<{ snapshot: { id: string }; entries: { path: string; type: string; mtime: string }[] }>(ok(['--repo', repo, '--json', 'ls', 'latest', src]).stdout);
    expect(doc.entries.map((e) => [e.path, e.type])).toEqual([[`${src}/f`, 'file']]);
    expect(doc.entries[0]!.mtime).toMatch(/\.\d{3}[+-]\d\d:\d\d$/);
    expect(doc.snapshot.id).toHaveLength(64);
  });

  it("after repair without --forget, check says what is left ('--forget'); replacements add nothing", async () => {
    const repo = initRepo();
    const src = tmpDir();
    fs.writeFileSync(path.join(src, 'victim'), Buffer.alloc(100_000, 7));
    fs.writeFileSync(path.join(src, 'fine'), 'intact');
    const orig = parseJson<SnapJson>(ok(['--repo', repo, '--json', 'create', src]).stdout);
    const { pack, entry } = await findObject(repo, sha256(Buffer.alloc(100_000, 7)));
    const fd = fs.openSync(packFile(repo, pack), 'r+');
    fs.writeSync(fd, Buffer.from([0xee]), 0, 1, entry.offset + 5);
    fs.closeSync(fd);
    const before = snap(['--repo', repo, 'check', '--read-data']);
    expect(before.stdout).toMatch(/'snap repair --read-data'/);
    ok(['--repo', repo, 'repair', '--read-data']);
    const c = snap(['--repo', repo, '--json', 'check', '--read-data']);
    expect(c.code).toBe(1);
    const report = parseJson<{ advice: string; affected: { snapshot: string; replacement?: string }[] }>(c.stdout);
    expect(report.advice).toBe('forget');
    const repl = report.affected.find((a) => a.snapshot === orig.id)!.replacement!;
    const text = snap(['--repo', repo, 'check', '--read-data']).stdout;
    expect(text).toMatch(/'snap repair --forget' removes the damaged originals/);
    expect(text).not.toMatch(/to keep everything intact/);
    const replacement = listJson(repo).find((s) => s.id === repl)!;
    expect([replacement.summary.dataAdded, replacement.summary.objectsAdded]).toEqual([0, 0]);
    // Repair again writes nothing new; with --forget it removes the original.
    expect(ok(['--repo', repo, 'repair']).stdout).toContain(`already replaced by ${repl.slice(0, 8)}`);
    expect(listJson(repo)).toHaveLength(2);
    ok(['--repo', repo, 'repair', '--forget']);
    expect(listJson(repo).map((s) => s.id)).toEqual([repl]);
    expect(ok(['--repo', repo, 'check', '--read-data']).stdout).toMatch(/no damage found/);
  });

  it("plurals: '1 file', '1 entry'", () => {
    const repo = initRepo();
    const src = tmpDir();
    fs.writeFileSync(path.join(src, 'f'), 'x');
    ok(['--repo', repo, 'create', src]);
    const r = ok(['--repo', repo, 'restore', 'latest', tmpDir(), '--include', path.join(src, 'f')]);
    expect(r.stdout).toMatch(/: 1 file \(1 B\), \d+ dirs, 0 hard links, 0 other entries/);
    const out = path.join(tmpDir(), 'one.tar');
    expect(ok(['--repo', repo, 'export', 'latest', out, '--path', 'f', '--verify']).stdout).not.toMatch(/\b1 (entries|files)\b/);
  });

  it('list --path DIR/ with a trailing slash, and stats --host/--tag/--path', () => {
    const repo = initRepo();
    const a = tmpDir();
    const b = tmpDir();
    fs.writeFileSync(path.join(a, 'f'), 'x');
    fs.writeFileSync(path.join(b, 'g'), 'yy');
    ok(['--repo', repo, 'create', a, '--tag', 'one']);
    ok(['--repo', repo, 'create', b, '--tag', 'two']);
    expect(ok(['--repo', repo, 'list', '--path', `${a}/`]).stdout).toMatch(/^1 snapshot$/m);
    const st = (...f: string[]) => parseJson<{ snapshots: number; logical_bytes: number }>(ok(['--repo', repo, '--json', 'stats', ...f]).stdout);
    expect(st().snapshots).toBe(2);
    expect(st('--tag', 'one')).toMatchObject({ snapshots: 1, logical_bytes: 1 });
    expect(st('--path', `${b}/`)).toMatchObject({ snapshots: 1, logical_bytes: 2 });
    expect(st('--host', 'no-such-host').snapshots).toBe(0);
    expect(parseJson<{ snapshot: string }>(ok(['--repo', repo, '--json', 'stats', 'latest', '--tag', 'one']).stdout).snapshot).toBe(listJson(repo)[0]!.id);
  });

  it("commander's own errors in snap's form, exit 2; short id prefixes say why", () => {
    const repo = initRepo();
    for (const [args, msg] of [
      [['list', 'extra'], /^snap: too many arguments for 'list'\. Expected 0 arguments but got 1\. \[SNAP_USAGE\]\n$/],
      [['list', '--nope'], /^snap: unknown option '--nope' \[SNAP_USAGE\]\n$/],
      [['ls'], /^snap: missing required argument 'ref' \[SNAP_USAGE\]\n$/],
      [['index', 'rebuild', 'x'], /^snap: too many arguments for 'rebuild'.* \[SNAP_USAGE\]\n$/],
      [['tag'], /^snap: missing required argument 'ref' \[SNAP_USAGE\]\n$/],
      [['rewrite', 'latest', '--nope'], /^snap: unknown option '--nope' \[SNAP_USAGE\]\n$/],
      [['restore', 'latest'], /^snap: missing required argument 'target' \[SNAP_USAGE\]\n$/],
      [['ls', 'ab1'], /^snap: snapshot reference 'ab1' is too short: an id prefix needs at least 4 hex digits \[SNAP_USAGE\]\n$/],
    ] as const) {
      const r = snap(['--repo', repo, ...args]);
      expect([r.code, r.stderr], args.join(' ')).toEqual([2, expect.stringMatching(msg)]);
    }
  });

  it('the repository inside a source: said on the first backup of those paths, not on every run', () => {
    const src = tmpDir();
    fs.writeFileSync(path.join(src, 'f'), 'x');
    const repo = path.join(src, 'repo');
    ok(['--repo', repo, 'init']);
    expect(ok(['--repo', repo, 'create', src]).stderr).toMatch(/is the repository itself; it is not backed up/);
    expect(ok(['--repo', repo, 'create', src]).stderr).not.toMatch(/repository itself/);
  });
});
