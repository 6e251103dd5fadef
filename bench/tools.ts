// Tool drivers: how snap, restic and borg are asked to do each step. Every driver works on the
// same layout (RunDirs) so the runner can treat them alike.
import * as path from 'node:path';
import { capture, hasExecutable } from './measure.js';
import { REPO_ROOT } from './paths.js';
import { pinnedLauncher, pinSnapCli } from './pin.js';

export interface RunDirs {
  /** The copy of the corpus that is backed up (same path every run). */
  data: string;
  repo: string;
  /** restic's and borg's cache; snap keeps its local index inside the repository. */
  cache: string;
  restore: string;
  log: string;
}

/** A command line, or the reason the step cannot run with this tool. */
export type Command = { cmd: string; args: string[]; cwd?: string } | { unavailable: string };

export interface ToolDriver {
  name: string;
  /** Empty when installed; otherwise what to run to install it. */
  missing(): string;
  version(): string;
  env(d: RunDirs): NodeJS.ProcessEnv;
  init(d: RunDirs): { cmd: string; args: string[] };
  backup(d: RunDirs, n: number): Command;
  restoreLatest(d: RunDirs): Command;
  checkReadData(d: RunDirs): Command;
  /** Untimed lookups (e.g. the first snapshot's id) happen here, before the timed command. */
  forgetFirst(d: RunDirs): Command;
  gc(d: RunDirs): Command;
  /** Where the restored copy of `d.data` ends up. */
  restoredData(d: RunDirs): string;
  /** Bytes of stored repository data and of local derived state (cache / index). */
  sizes(d: RunDirs, du: (p: string) => number): { repo: number; cache: number };
}

const NOT_IMPLEMENTED = 'n/a (not implemented)';

/** Runs a private copy of the current build (see pin.ts), made when the driver is created. */
export function snapDriver(envOf: (d: RunDirs) => NodeJS.ProcessEnv = () => process.env, pin = 'bench'): ToolDriver {
  const node = process.execPath;
  const SNAP_CLI = pinSnapCli(pin);
  const revision = gitRevision();
  // Run as the installed command runs: through bin/snap (its Node flags), with this Node first on PATH.
  const launcher = pinnedLauncher(SNAP_CLI);
  const withNode = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({ ...env, PATH: `${path.dirname(node)}:${env.PATH ?? ''}` });
  const cli = (d: RunDirs, ...args: string[]): { cmd: string; args: string[] } => ({ cmd: launcher, args: ['--repo', d.repo, ...args] });
  const commands = snapCommands(SNAP_CLI);
  const has = (c: string): boolean => commands.has(c);
  const ifHas = (c: string, make: () => Command): Command => (has(c) ? make() : { unavailable: NOT_IMPLEMENTED });
  return {
    name: 'snap',
    missing: () => '',
    version: () => `${capture(node, [SNAP_CLI, '--version']).trim()} (${revision})`,
    env: (d) => withNode(envOf(d)),
    init: (d) => cli(d, 'init'),
    backup: (d) => cli(d, '--quiet', 'create', d.data),
    restoreLatest: (d) => cli(d, '--quiet', 'restore', 'latest', d.restore),
    checkReadData: (d) => ifHas('check', () => cli(d, 'check', '--read-data')),
    forgetFirst: (d) =>
      ifHas('forget', () => {
        const snaps = JSON.parse(capture(node, [SNAP_CLI, '--repo', d.repo, '--json', 'list'], { env: envOf(d) })) as { id: string; time: string }[];
        return cli(d, 'forget', firstByTime(snaps).id);
      }),
    gc: (d) => ifHas('gc', () => cli(d, 'gc')),
    restoredData: (d) => path.join(d.restore, d.data),
    sizes: (d, du) => {
      const index = du(path.join(d.repo, 'index'));
      return { repo: du(d.repo) - index - du(path.join(d.repo, 'reserve')), cache: index };
    },
  };
}

/**
 * snap on an encrypted repository (format 2, issue 12): the same commands with a password and the
 * index in the run's cache folder (an encrypted repository keeps it outside the repository).
 * The key file gets the default scrypt cost, paid once per command as a user pays it.
 */
export function snapEncryptedDriver(pin = 'bench'): ToolDriver {
  const plain = snapDriver((d) => ({ ...process.env, SNAP_PASSWORD: 'bench', SNAP_CACHE_DIR: d.cache }), pin);
  return {
    ...plain,
    name: 'snap-enc',
    init: (d) => {
      const c = plain.init(d);
      return { cmd: c.cmd, args: [...c.args, '--encrypt'] };
    },
    // The reserve for a full disk (repo/reserve.ts: 16 MiB of a local repository, there only to be
    // removed when the disk fills up) is not stored data: left out, as the index is.
    sizes: (d, du) => ({ repo: du(d.repo) - du(path.join(d.repo, 'reserve')), cache: du(d.cache) }),
  };
}

/** The subcommands the built CLI offers, from `snap --help`. */
function snapCommands(cli: string): Set<string> {
  const help = capture(process.execPath, [cli, '--help']);
  const section = help.split(/^Commands:$/m)[1] ?? '';
  return new Set([...section.matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]!));
}

function gitRevision(): string {
  try {
    const rev = capture('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD']).trim();
    const dirty = capture('git', ['-C', REPO_ROOT, 'status', '--porcelain', '--', 'src']).trim() !== '';
    return `git ${rev}${dirty ? ' + uncommitted src changes' : ''}`;
  } catch {
    return 'no git';
  }
}

export function resticDriver(): ToolDriver {
  const r = (...args: string[]): { cmd: string; args: string[] } => ({ cmd: 'restic', args });
  return {
    name: 'restic',
    missing: () => (hasExecutable('restic') ? '' : 'apt-get install restic'),
    version: () => capture('restic', ['version']).trim(),
    env: resticEnv,
    init: () => r('init', '--repository-version', '2', '-q'),
    backup: (d) => r('backup', '-q', d.data),
    restoreLatest: (d) => r('restore', 'latest', '-q', '--target', d.restore),
    checkReadData: () => r('check', '--read-data', '-q'),
    forgetFirst: (d) => {
      const snaps = JSON.parse(capture('restic', ['snapshots', '--json', '-q'], { env: resticEnv(d) })) as { id: string; time: string }[];
      return r('forget', '-q', firstByTime(snaps).id);
    },
    gc: () => r('prune', '-q'),
    restoredData: (d) => path.join(d.restore, d.data),
    sizes: (d, du) => ({ repo: du(d.repo), cache: du(d.cache) }),
  };
}

/** Encryption cannot be turned off in restic: a fixed password. Compression stays `auto`. */
function resticEnv(d: RunDirs): NodeJS.ProcessEnv {
  return { ...process.env, RESTIC_PASSWORD: 'bench', RESTIC_REPOSITORY: d.repo, RESTIC_CACHE_DIR: d.cache };
}

export function borgDriver(): ToolDriver {
  const b = (...args: string[]): { cmd: string; args: string[] } => ({ cmd: 'borg', args });
  return {
    name: 'borg',
    missing: () => (hasExecutable('borg') ? '' : 'apt-get install borgbackup'),
    version: () => capture('borg', ['--version']).trim(),
    env: (d) => ({
      ...process.env,
      BORG_REPO: d.repo,
      BORG_BASE_DIR: d.cache,
      BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
      BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
    }),
    init: () => b('init', '-e', 'none'),
    backup: (d, n) => b('create', `::b${n}`, d.data),
    // extract writes below the current directory; the newest archive is the third backup
    restoreLatest: (d) => ({ ...b('extract', '::b3'), cwd: d.restore }),
    checkReadData: () => b('check', '--verify-data'),
    forgetFirst: () => b('delete', '::b1'),
    gc: () => b('compact'),
    restoredData: (d) => path.join(d.restore, d.data),
    sizes: (d, du) => ({ repo: du(d.repo), cache: du(d.cache) }),
  };
}

function firstByTime<T extends { time: string }>(snaps: T[]): T {
  const first = [...snaps].sort((a, b) => Date.parse(a.time) - Date.parse(b.time))[0];
  if (!first) throw new Error('no snapshots to forget');
  return first;
}

export const ALL_TOOLS: Record<string, () => ToolDriver> = { 'snap-enc': snapEncryptedDriver, snap: snapDriver, restic: resticDriver, borg: borgDriver };
