// Ctrl-C or SIGTERM while the CLI is still loading (before program.ts installs its handlers: 0.2 s
// and more on a busy machine, the key derivation beside it) ended the process at once by the
// signal, with no word (status 143 for SIGTERM). early-signals.ts keeps it from main.ts's first
// line on, and the command stops as it does for a signal a moment later. The load of program.js is
// held by module hooks (helpers/slow-program-hooks.mjs) so the signal surely comes during it.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, snap, trackedDirs } from './helpers/cli.js';

const dirs = trackedDirs('early-signal');
afterAll(() => dirs.cleanup());

/** Start `snap args` with program.js held; send `signals` once it is being loaded. */
function signalWhileLoading(args: string[], signals: NodeJS.Signals[], env: Record<string, string> = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = spawn(process.execPath, ['--import', path.join(ROOT, 'test/helpers/slow-program.mjs'), CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, SNAP_REPO: '', XDG_DATA_HOME: '', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  let sent = false;
  child.stderr!.on('data', (b: Buffer) => {
    stderr += b.toString();
    if (!sent && stderr.includes('test hook: loading program.js')) {
      sent = true;
      // Apart: a signal sent while the same one is still pending is delivered once.
      signals.forEach((s, i) => setTimeout(() => child.kill(s), i * 300));
    }
  });
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
}

describe('a signal while the CLI loads', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('%s: the command stops before it starts: one line, status 130, no lock, no snapshot', async (sig) => {
    const base = dirs.make('early-signal-');
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'f'), 'data');
    const env = { SNAP_PASSWORD: 'early' };
    expect(snap(['--repo', repo, 'init', '--encrypt'], { env }).code).toBe(0);
    const r = await signalWhileLoading(['--repo', repo, 'create', src], [sig], env);
    expect(r.signal, r.stderr).toBe(null);
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(new RegExp(`^snap: create interrupted by ${sig}.*\\[SNAP_INTERRUPTED\\]$`, 'm'));
    expect(r.stderr).not.toMatch(/SNAP_INTERNAL|at .*\.js:\d+/);
    expect(fs.readdirSync(path.join(repo, 'locks')).filter((n) => !n.startsWith('.'))).toEqual([]);
    const listed = snap(['--repo', repo, 'list', '--json'], { env });
    expect(JSON.parse(listed.stdout)).toEqual([]);
  }, 60_000);

  it('two signals: the second stops it at once, saying so (status 130)', async () => {
    const r = await signalWhileLoading(['--version'], ['SIGINT', 'SIGINT']);
    expect(r.signal, r.stderr).toBe(null);
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/interrupted by SIGINT again; stopped at once .*\[SNAP_INTERRUPTED\]/);
  }, 60_000);
});
