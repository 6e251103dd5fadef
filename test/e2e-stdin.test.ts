// Backups from a stream (--stdin, --stdin-from-command) and from lists of paths (--files-from*).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, newRepo, snap, tmpDir } from './helpers/cli.js';

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
