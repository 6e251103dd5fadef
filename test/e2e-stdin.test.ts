// Backups from a stream (--stdin, --stdin-from-command) and from lists of paths (--files-from*).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, newRepo, parseJson, snap, snapBytes, tmpDir } from './helpers/cli.js';
import { lockFiles } from './helpers/maint.js';
import { fsEncode } from '../src/core/bytes.js';

function snapIn(args: string[], input: Buffer | string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, input, env: { ...process.env, SNAP_REPO: '', XDG_DATA_HOME: '' }, maxBuffer: 1 << 30 });
  return { code: r.status ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

const count = (repo: string): number => (JSON.parse(snap(['--repo', repo, '--json', 'list']).stdout) as unknown[]).length;

describe('backup from a stream', () => {
  let repo: string;
  let data: Buffer;
  let file: string;
  beforeAll(() => {
    repo = newRepo();
    data = randomBytes(12 * 1024 * 1024);
    file = path.join(tmpDir(), 'dump.sql');
    fs.writeFileSync(file, data);
  });

  it('--stdin stores the stream as one owner-only file at /NAME, chunked as the same file would be', () => {
    const f = snap(['--repo', repo, '--json', 'create', file]);
    expect(f.code, f.stderr).toBe(0);
    const r = snapIn(['--repo', repo, '--json', 'create', '--stdin', '--stdin-filename', 'db.sql'], data);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as { paths: string[]; summary: Record<string, number> };
    expect(s.paths).toEqual(['/db.sql']);
    expect(s.summary.totalBytes).toBe(data.length);
    // The same content-defined chunks as the file: only the root tree is new.
    expect(s.summary.objectsAdded).toBe(1);
    expect(snap(['--repo', repo, 'cat', 'latest', '/db.sql']).stdoutBytes?.equals(data) ?? false).toBe(true);
    const ls = snap(['--repo', repo, 'ls', 'latest', '/', '-l']);
    expect(ls.stdout).toMatch(/-rw------- .* \/db\.sql/);
  });

  it('--stdin-from-command backs up the output of a command that succeeds', () => {
    const r = snap(['--repo', repo, 'create', '--stdin-from-command', '--stdin-filename', 'copy.bin', '--', 'cat', file]);
    expect(r.code, r.stderr).toBe(0);
    const back = spawnSync(process.execPath, [CLI, '--repo', repo, 'cat', 'latest', '/copy.bin'], { maxBuffer: 1 << 30 }).stdout;
    expect(back.equals(data)).toBe(true);
  });

  it('a command that fails (exit status, signal, not found) saves no snapshot', () => {
    const before = count(repo);
    const exit3 = snap(['--repo', repo, 'create', '--stdin-from-command', '--', 'sh', '-c', `head -c 3000000 '${file}'; exit 3`]);
    expect(exit3.code).toBe(1);
    expect(exit3.stderr).toMatch(/the command 'sh -c .*' exited with status 3; no snapshot was saved .*\[SNAP_COMMAND_FAILED\]/);
    const killed = snap(['--repo', repo, 'create', '--stdin-from-command', '--', 'sh', '-c', `head -c 100 '${file}'; kill -9 $$`]);
    expect(killed.code).toBe(1);
    expect(killed.stderr).toMatch(/was killed by SIGKILL.*\[SNAP_COMMAND_FAILED\]/);
    const missing = snap(['--repo', repo, 'create', '--stdin-from-command', '--', 'no-such-command-snap']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/could not be run.*\[SNAP_COMMAND_FAILED\]/);
    expect(count(repo)).toBe(before);
    const check = snap(['--repo', repo, 'check']);
    expect(check.code, check.stdout + check.stderr).toBe(0);
  });

  it('empty input is saved with a warning (exit 3); bad names and combinations are usage errors', () => {
    const empty = snapIn(['--repo', repo, 'create', '--stdin'], '');
    expect(empty.code).toBe(3);
    expect(empty.stderr).toMatch(/stdin: read 0 bytes/);
    for (const args of [
      ['--stdin', '--stdin-filename', 'a/b'],
      ['--stdin', '--stdin-filename', '..'],
      ['--stdin', file],
      ['--stdin', '--stdin-from-command', '--', 'true'],
      ['--stdin-from-command'],
    ]) {
      const r = snapIn(['--repo', repo, 'create', ...args], 'x');
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/\[SNAP_USAGE\]/);
    }
  });
});

describe('--files-from', () => {
  let repo: string;
  let src: string;
  beforeAll(() => {
    repo = newRepo();
    src = path.join(tmpDir(), 'src');
    fs.mkdirSync(src);
    for (const n of ['a', 'b', 'c', '#hash', 'new\nline', ' spaced ', 'unlisted']) fs.writeFileSync(path.join(src, n), n);
  });

  const saved = (): string[] => {
    const r = snap(['--repo', repo, '--json', 'list']);
    return (JSON.parse(r.stdout) as { paths: string[] }[]).at(-1)!.paths;
  };

  it('lines: comments and empty lines skipped, CRLF accepted; verbatim keeps a leading #; several lists combine with paths', () => {
    const lines = path.join(tmpDir(), 'lines');
    fs.writeFileSync(lines, `# my list\n${src}/a\r\n\n${src}/b\n${src}/ spaced `);
    const verbatim = path.join(tmpDir(), 'verbatim');
    fs.writeFileSync(verbatim, `${src}/#hash\n`);
    const r = snap(['--repo', repo, 'create', path.join(src, 'c'), '--files-from', lines, '--files-from-verbatim', verbatim]);
    expect(r.code, r.stderr).toBe(0);
    expect(saved()).toEqual([`${src}/ spaced `, `${src}/#hash`, `${src}/a`, `${src}/b`, `${src}/c`].sort());
  });

  it('raw: NUL-separated, so a name may hold a newline; - reads the list from stdin', () => {
    const r = snapIn(['--repo', repo, 'create', '--files-from-raw', '-'], Buffer.from(`${src}/new\nline\0${src}/a\0`));
    expect(r.code, r.stderr).toBe(0);
    expect(saved()).toEqual([`${src}/a`, `${src}/new\nline`]);
    const t = tmpDir();
    expect(snap(['--repo', repo, 'restore', 'latest', t]).code).toBe(0);
    expect(fs.readFileSync(path.join(t, src, 'new\nline'), 'utf8')).toBe('new\nline');
  });

  it('a listed path that is missing fails as a path argument does; an empty list is a usage error', () => {
    const list = path.join(tmpDir(), 'l');
    fs.writeFileSync(list, `${src}/nope\n`);
    const r = snap(['--repo', repo, 'create', '--files-from', list]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nope.*\[SNAP_NOT_FOUND\]/);
    fs.writeFileSync(list, '# nothing\n\n');
    const e = snap(['--repo', repo, 'create', '--files-from', list]);
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(/name no paths/);
  });
});

describe('names that are not UTF-8 (issue 10, defect 4) in stream and list backups', () => {
  let repo: string;
  let src: Buffer;
  let file: Buffer;
  beforeAll(() => {
    repo = newRepo();
    src = Buffer.concat([Buffer.from(path.join(tmpDir(), 'src')), Buffer.from([0xff])]);
    file = Buffer.concat([src, Buffer.from('/n'), Buffer.from([0xfe, 0x0a, 0x41])]); // also a newline in the name
    fs.mkdirSync(src);
    fs.writeFileSync(file, 'listed bytes');
  });

  const lastPaths = (): Buffer[] => parseJson<{ paths: string[] }[]>(snap(['--repo', repo, '--json', 'list']).stdout).at(-1)!.paths.map(fsEncode);

  it('--files-from and --files-from-raw back up a listed path that is not UTF-8, exactly', () => {
    const lines = path.join(tmpDir(), 'lines');
    fs.writeFileSync(lines, Buffer.concat([Buffer.from('# sources\n'), src, Buffer.from('\n')]));
    const a = snap(['--repo', repo, 'create', '--files-from', lines]);
    expect(a.code, a.stderr).toBe(0);
    expect(lastPaths()).toEqual([src]);
    // Shown escaped in the summary line, never as replacement characters.
    expect(a.stdout).toContain(`${src.subarray(0, -1).toString()}\\xff`);

    const raw = snapIn(['--repo', repo, 'create', '--files-from-raw', '-'], Buffer.concat([file, Buffer.from([0])]));
    expect(raw.code, raw.stderr).toBe(0);
    expect(lastPaths()).toEqual([file]);
    const t = tmpDir();
    expect(snap(['--repo', repo, 'restore', 'latest', t]).code).toBe(0);
    expect(fs.readFileSync(Buffer.concat([Buffer.from(t), file])).toString()).toBe('listed bytes');
    const cat = snapBytes(['--repo', repo, 'cat', 'latest', file]);
    expect([cat.code, cat.stdout]).toEqual([0, 'listed bytes']);
  });

  it('--stdin-filename takes bytes; a --stdin-from-command argument that is not UTF-8 is refused, not changed', () => {
    const name = Buffer.from([0x64, 0x62, 0xff]);
    const r = snapBytes(['--repo', repo, 'create', '--stdin', '--stdin-filename', name], { input: 'from a pipe' });
    expect(r.code, r.stderr).toBe(0);
    expect(lastPaths()).toEqual([Buffer.concat([Buffer.from('/'), name])]);
    expect(snapBytes(['--repo', repo, 'cat', 'latest', Buffer.concat([Buffer.from('/'), name])]).stdout).toBe('from a pipe');
    expect(snap(['--repo', repo, 'ls', 'latest', '/']).stdout).toBe('/db\\xff\n');

    const before = lastPaths();
    const bad = snapBytes(['--repo', repo, 'create', '--stdin-from-command', '--', 'cat', file]);
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringMatching(/--stdin-from-command cannot pass '.*\\xff\/n\\xfe\\nA' to the command: it is not UTF-8.*\[SNAP_USAGE\]/)]);
    expect(lastPaths()).toEqual(before);
  });
});

describe('stopping a backup from a stream (issue 10, defect 5)', () => {
  /** What these tests started, ended if a failed test left it running. */
  const started: number[] = [];
  afterAll(() => {
    for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });

  /** Start `snap create` with a stdin pipe that stays open and sends nothing. */
  function start(repo: string, args: string[]) {
    const child = spawn(process.execPath, [CLI, '--repo', repo, 'create', ...args], { cwd: ROOT, env: { ...process.env, SNAP_REPO: '', XDG_DATA_HOME: '' }, stdio: ['pipe', 'pipe', 'pipe'] });
    started.push(child.pid!);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    return { child, exited, stderr: () => stderr };
  }

  async function until(what: string, cond: () => boolean): Promise<void> {
    const end = Date.now() + 60_000;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  it('--stdin waiting for data: SIGTERM stops it at once (exit 130), no snapshot, no lock left', async () => {
    const repo = newRepo();
    const run = start(repo, ['--stdin']);
    run.child.stdin.write('some data, then nothing more for a long time');
    await until('the backup to hold its lock', () => lockFiles(repo).length > 0);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(130);
    run.child.stdin.destroy();
    expect(run.stderr()).toMatch(/^snap: create interrupted by SIGTERM: no snapshot was saved .*\[SNAP_INTERRUPTED\]\n$/);
    expect(count(repo)).toBe(0);
    expect(lockFiles(repo)).toEqual([]);
  }, 120_000);

  it('--stdin-from-command: SIGTERM stops the backup and ends the command it started', async () => {
    const repo = newRepo();
    const pidFile = path.join(tmpDir(), 'pid');
    const run = start(repo, ['--stdin-from-command', '--', 'sh', '-c', `echo $$ > '${pidFile}'; exec sleep 600`]);
    await until('the command to run and the backup to hold its lock', () => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').endsWith('\n') && lockFiles(repo).length > 0);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    started.push(pid);
    expect(alive(pid)).toBe(true);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(130);
    expect(run.stderr()).toMatch(/^snap: create interrupted by SIGTERM: no snapshot was saved .*\[SNAP_INTERRUPTED\]\n$/);
    await until('the command to end', () => !alive(pid));
    expect(count(repo)).toBe(0);
    expect(lockFiles(repo)).toEqual([]);
  }, 120_000);
});
