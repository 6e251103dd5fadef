// Running commands under GNU time and measuring directories.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const GNU_TIME = '/usr/bin/time';

/** What GNU time reports for one command: `%e %U %S %M`. */
export interface Usage {
  wallS: number;
  userS: number;
  sysS: number;
  maxRssKb: number;
}

export interface TimedRun {
  exitCode: number;
  usage: Usage;
}

export interface RunOptions {
  /** stdout and stderr of the command are appended here. */
  log: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** Run `cmd args` under `/usr/bin/time -f '%e %U %S %M'`; output goes to the log, not to us. */
export function timed(cmd: string, args: string[], o: RunOptions): TimedRun {
  const tf = path.join(os.tmpdir(), `snap-bench-time-${process.pid}-${Date.now()}`);
  appendLog(o.log, `$ ${[cmd, ...args].join(' ')}${o.cwd ? `   (in ${o.cwd})` : ''}\n`);
  const fd = fs.openSync(o.log, 'a');
  try {
    const r = spawnSync(GNU_TIME, ['-f', '%e %U %S %M', '-o', tf, cmd, ...args], {
      cwd: o.cwd,
      env: o.env ?? process.env,
      stdio: ['ignore', fd, fd],
    });
    if (r.error) throw r.error;
    return { exitCode: r.status ?? 128, usage: parseUsage(fs.readFileSync(tf, 'utf8')) };
  } finally {
    fs.closeSync(fd);
    fs.rmSync(tf, { force: true });
  }
}

/** GNU time's output file: optionally "Command exited with non-zero status N", then our format line. */
export function parseUsage(text: string): Usage {
  const line = text.trim().split('\n').pop() ?? '';
  const [wallS, userS, sysS, maxRssKb] = line.trim().split(/\s+/).map(Number);
  if ([wallS, userS, sysS, maxRssKb].some((x) => x === undefined || Number.isNaN(x))) {
    throw new Error(`cannot parse GNU time output: ${JSON.stringify(text)}`);
  }
  return { wallS: wallS!, userS: userS!, sysS: sysS!, maxRssKb: maxRssKb! };
}

/** Run a command untimed and return its stdout; throws with its stderr when it fails. */
export function capture(cmd: string, args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(cmd, args, { cwd: o.cwd, env: o.env ?? process.env, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Run a command untimed, output to the log; throws when it fails. */
export function runLogged(cmd: string, args: string[], o: RunOptions): void {
  appendLog(o.log, `$ ${[cmd, ...args].join(' ')}\n`);
  const fd = fs.openSync(o.log, 'a');
  try {
    const r = spawnSync(cmd, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['ignore', fd, fd] });
    if (r.error) throw r.error;
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status} (see ${o.log})`);
  } finally {
    fs.closeSync(fd);
  }
}

/** `du -sb DIR` in bytes; 0 when the directory does not exist. */
export function duBytes(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  return Number(capture('du', ['-sb', dir]).split('\t')[0]);
}

/** Is an executable on PATH (or at this absolute path)? */
export function hasExecutable(name: string): boolean {
  if (path.isAbsolute(name)) return isExecutable(name);
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && isExecutable(path.join(d, name)));
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function appendLog(log: string, s: string): void {
  fs.appendFileSync(log, s);
}
