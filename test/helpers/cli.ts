// Run the built CLI as a child process (the way users run it) and describe trees on disk.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cliFor, nodeFor } from './readable-cli.js';
import { launcherNodeFlags, launcherNodeFlagsFor } from './node-flags.js';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
/** The Node.js flags the installed command starts with (bin/snap; helpers/node-flags.ts). */
export const CLI_NODE_FLAGS = launcherNodeFlags();

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

export interface RunOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Run as another user (uid, gid) via setpriv. */
  asUser?: { uid: number; gid: number };
}

function command(args: string[], o: RunOptions): { cmd: string; argv: string[] } {
  // As bin/snap starts it: its flags, unless NODE_OPTIONS sizes the heap itself.
  const flags = launcherNodeFlagsFor({ ...process.env, ...o.env }, CLI_NODE_FLAGS);
  if (o.asUser) {
    // A checkout in a private folder is not readable by that user: cliFor copies what it runs.
    const cli = cliFor(o.asUser.uid, o.asUser.gid, ROOT);
    return { cmd: 'setpriv', argv: [`--reuid=${o.asUser.uid}`, `--regid=${o.asUser.gid}`, '--clear-groups', nodeFor(o.asUser.uid, o.asUser.gid), ...flags, cli, ...args] };
  }
  return { cmd: process.execPath, argv: [...flags, CLI, ...args] };
}

export function snap(args: string[], o: RunOptions = {}): RunResult {
  const { cmd, argv } = command(args, o);
  const r = spawnSync(cmd, argv, {
    cwd: o.cwd ?? ROOT,
    env: { ...process.env, SNAP_REPO: '', XDG_DATA_HOME: '', ...o.env },
    maxBuffer: 1024 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString(), stdoutBytes: r.stdout };
}

/** A bash word for any bytes: $'\xNN...'. */
const bashWord = (a: string | Buffer): string => `$'${[...(typeof a === 'string' ? Buffer.from(a) : a)].map((x) => `\\x${x.toString(16).padStart(2, '0')}`).join('')}'`;

/** Run the CLI with arguments that are arbitrary bytes (Node's spawn takes only strings), through bash. */
export function snapBytes(args: (string | Buffer)[], o: { env?: Record<string, string>; cwd?: string; input?: Buffer | string; cwdBytes?: Buffer } = {}): RunResult {
  // cwdBytes: a working directory whose name is any bytes (spawn's cwd takes only strings).
  const script = `${o.cwdBytes ? `cd ${bashWord(o.cwdBytes)} && ` : ''}exec ${bashWord(process.execPath)} ${[...CLI_NODE_FLAGS, CLI].map(bashWord).join(' ')} ${args.map(bashWord).join(' ')}`;
  const r = spawnSync('bash', ['-c', script], { cwd: o.cwd ?? ROOT, input: o.input, env: { ...process.env, SNAP_REPO: '', XDG_DATA_HOME: '', ...o.env }, maxBuffer: 1 << 30 });
  return { code: r.status ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString(), stdoutBytes: r.stdout };
}

/** Start the CLI without waiting (for kill -9 and concurrency tests). */
export function snapAsync(args: string[], o: RunOptions = {}) {
  const { cmd, argv } = command(args, o);
  return spawn(cmd, argv, { cwd: o.cwd ?? ROOT, env: { ...process.env, SNAP_REPO: '', XDG_DATA_HOME: '', ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A new, initialised repository in a temporary folder. */
export function newRepo(): string {
  const repo = path.join(tmpDir(), 'repo');
  const r = snap(['--repo', repo, 'init']);
  if (r.code !== 0) throw new Error(`snap init failed: ${r.stderr}`);
  return repo;
}

/** A new temporary directory (under the test run's TMPDIR, removed with it: global-setup.ts). */
export function tmpDir(prefix = 'snap-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * Temporary directories a test file removes itself once done (they can be large): `make` is
 * tmpDir that remembers, `cleanup` removes what was made (call it from afterAll). SNAP_KEEP_TMP
 * keeps them for a post-mortem. One list per caller, so one suite's cleanup never removes
 * another's folders.
 */
export function trackedDirs(label: string): { make(prefix: string): string; cleanup(): void } {
  const made: string[] = [];
  return {
    make(prefix) {
      const d = tmpDir(prefix);
      made.push(d);
      return d;
    },
    cleanup() {
      if (process.env.SNAP_KEEP_TMP) {
        console.info(`${label} SNAP_KEEP_TMP: kept ${made.splice(0).join(' ')}`);
        return;
      }
      for (const d of made.splice(0)) {
        try {
          fs.rmSync(d, { recursive: true, force: true });
        } catch {
          // a mount point or a permission oddity: leave it in the run's temporary folder
        }
      }
    },
  };
}

export { type EntryDesc, describeTree } from './tree.js';

export function canSetpriv(): boolean {
  return spawnSync('setpriv', ['--version']).status === 0 && process.getuid?.() === 0;
}

export function parseJson<T = unknown>(s: string): T {
  return JSON.parse(s) as T;
}
