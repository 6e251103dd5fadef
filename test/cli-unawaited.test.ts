// A failure nobody waited for (an unhandled promise rejection) is a bug in snap; node's default
// ends the process with the error's stack trace and leaves the lock behind (a pack write on a full
// disk did that: full-disk.test.ts). The CLI's last resort (cli/program.ts): one line, the command
// stopped as by a signal (it unwinds, releasing its lock), exit status 1.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, CLI_NODE_FLAGS, ROOT, snap, trackedDirs } from './helpers/cli.js';

const dirs = trackedDirs('unawaited');
afterAll(() => dirs.cleanup());

/** `snap create --stdin` fed slowly (never ended), with a preload that rejects a promise nobody awaits after `afterMs`. */
function createWithStray(repo: string, afterMs: number, extra: string[] = []): Promise<{ code: number | null; stderr: string; ms: number }> {
  const preload = path.join(dirs.make('unawaited-'), 'stray.mjs');
  fs.writeFileSync(preload, `setTimeout(() => { Promise.reject(new Error('a stray failure')); }, ${afterMs}).unref();\n`);
  const started = Date.now();
  const child = spawn(process.execPath, [...CLI_NODE_FLAGS, '--import', preload, CLI, '--repo', repo, ...extra, 'create', '--stdin', '--stdin-filename', 'stream.bin'], {
    cwd: ROOT,
    env: { ...process.env, SNAP_REPO: '', XDG_DATA_HOME: '' },
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdin!.on('error', () => {});
  const feed = setInterval(() => child.stdin!.write(Buffer.alloc(256 * 1024, 1)), 20);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearInterval(feed);
      resolve({ code, stderr, ms: Date.now() - started });
    }),
  );
}

describe('a failure nobody waited for', () => {
  it('stops the command in one line (no stack trace), its lock released, exit 1; --debug adds the stack', async () => {
    const repo = path.join(dirs.make('unawaited-'), 'repo');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const r = await createWithStray(repo, 1500);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^snap: internal error: a failure nobody waited for: a stray failure \[SNAP_INTERNAL\] \(run with --debug for details\)$/m);
    expect(r.stderr).toMatch(/^snap: stopped by the internal error above \[SNAP_INTERNAL\]$/m);
    expect(r.stderr).not.toMatch(/Node\.js v|at .*\.js:\d+/);
    expect(r.ms, 'stopped, not left to read its input for ever').toBeLessThan(30_000);
    expect(fs.readdirSync(path.join(repo, 'locks')), 'the lock is released').toEqual([]);
    const listed = snap(['--repo', repo, 'list', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([]);

    const d = await createWithStray(repo, 1500, ['--debug']);
    expect(d.code, d.stderr).toBe(1);
    expect(d.stderr).toMatch(/^snap: internal error: a failure nobody waited for: a stray failure \[SNAP_INTERNAL\]$/m);
    expect(d.stderr).toMatch(/^Error: a stray failure\n\s+at /m);
    expect(fs.readdirSync(path.join(repo, 'locks'))).toEqual([]);
  }, 60_000);
});
