// create --on-success / --on-failure (docs/automation.md, "Hooks"): real /bin/sh hooks run by the
// real CLI; the result arrives in SNAP_* variables; a failing hook is a warning and never changes
// the exit code; hook output never reaches standard output.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { snap, snapAsync, tmpDir } from './helpers/cli.js';

/** The SNAP_* variables a hook saw, from the file it wrote with `env`. */
function seen(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^(SNAP_[A-Z_]+)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

describe('create hooks', () => {
  const base = tmpDir();
  const repo = path.join(base, 'repo');
  const src = path.join(base, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'a'), 'hello hooks');
  const envFile = path.join(base, 'env');
  const dump = `env > '${envFile}'`;

  it('--on-success gets the snapshot id, counts and result; its output goes to stderr, not stdout', () => {
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const r = snap(['--repo', repo, '--json', 'create', src, '--on-success', `${dump}; echo from-the-hook`, '--on-failure', 'touch never']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { id: string; summary: { totalFiles: number; dataAdded: number; totalBytes: number } };
    expect(r.stderr).toContain('from-the-hook');
    const e = seen(envFile);
    expect(e).toMatchObject({
      SNAP_HOOK_RESULT: 'ok',
      SNAP_EXIT_CODE: '0',
      SNAP_SNAPSHOT_ID: out.id,
      SNAP_FILES: String(out.summary.totalFiles),
      SNAP_BYTES: String(out.summary.totalBytes),
      SNAP_BYTES_ADDED: String(out.summary.dataAdded),
      SNAP_WARNINGS: '0',
      SNAP_REPOSITORY: repo,
      SNAP_PATHS: src,
    });
    expect(e.SNAP_ERROR_CODE).toBeUndefined();
    expect(fs.existsSync(path.join(process.cwd(), 'never'))).toBe(false);
  });

  it('--on-failure gets the error code and message; the exit code is the backup’s', () => {
    fs.rmSync(envFile, { force: true });
    const r = snap(['--repo', repo, 'create', path.join(base, 'missing'), '--on-failure', dump, '--on-success', 'exit 0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\[SNAP_NOT_FOUND\]/);
    const e = seen(envFile);
    expect(e).toMatchObject({ SNAP_HOOK_RESULT: 'failed', SNAP_EXIT_CODE: '1', SNAP_ERROR_CODE: 'SNAP_NOT_FOUND' });
    expect(e.SNAP_ERROR_MESSAGE).toContain('missing');
    expect(e.SNAP_SNAPSHOT_ID).toBeUndefined();
  });

  it('a hook that fails is a warning (SNAP_HOOK_FAILED): exit 0 stays 0, exit 1 stays 1', () => {
    const ok = snap(['--repo', repo, 'create', src, '--on-success', 'exit 7']);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain('warning: the --on-success hook exited with status 7');
    const bad = snap(['--repo', repo, 'create', path.join(base, 'missing'), '--on-failure', 'kill -9 $$']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('warning: the --on-failure hook was killed by SIGKILL');
    const json = snap(['--repo', repo, '--json', 'create', src, '--on-success', 'exit 3']);
    expect(json.code).toBe(0);
    expect(json.stderr.trim().split('\n').map((l) => JSON.parse(l) as { warning?: { code: string } })).toContainEqual({ warning: expect.objectContaining({ code: 'SNAP_HOOK_FAILED' }) });
  });

  it('an interrupted backup runs --on-failure with SNAP_HOOK_RESULT=interrupted, and exits 130', async () => {
    fs.rmSync(envFile, { force: true });
    const child = snapAsync(['--repo', repo, 'create', '--stdin-from-command', '--on-failure', dump, '--', 'sleep', '60']);
    child.stdout.resume();
    child.stderr.resume();
    const code = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    const t0 = Date.now();
    while (!fs.existsSync(path.join(repo, 'locks')) || fs.readdirSync(path.join(repo, 'locks')).filter((n) => !n.startsWith('.')).length === 0) {
      if (Date.now() - t0 > 60_000) throw new Error('the backup never took its lock');
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGTERM');
    expect(await code).toBe(130);
    expect(seen(envFile)).toMatchObject({ SNAP_HOOK_RESULT: 'interrupted', SNAP_EXIT_CODE: '130', SNAP_ERROR_CODE: 'SNAP_INTERRUPTED' });
  }, 120_000);

  it('an empty hook command is a usage error', () => {
    const r = snap(['--repo', repo, 'create', src, '--on-success', ' ']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--on-success needs a command to run, .*\[SNAP_USAGE\]/);
  });
});
