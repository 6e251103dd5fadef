// What every command needs: global options, the sink, the repository (opened, or created by the
// commands that may), output, and the signal that stops it (interrupt.ts).
import * as os from 'node:os';
import * as path from 'node:path';
import type { Command } from 'commander';
import type { HostInfo } from '../core/host.js';
import { currentHost } from './host.js';
import type { Clock } from '../core/clock.js';
import { cliClock } from './now.js';
import { type OpenedStorage, type RepoOptions, Repository } from '../repo/repository.js';
import type { Unlocked } from '../repo/keys.js';
import { type PasswordOptions, repositoryPassword, sourcePassword } from './password.js';
import type { OwnerPolicy } from '../repo/ownership.js';
import { DEFAULT_LOCK_WAIT_MS, type LockKind, RepoLock } from '../repo/lock.js';
import { parseRepoLocation, type RepoLocation } from '../repo/location.js';
import { cacheRoot as cacheRootIn, remoteStorage } from '../repo/storage.js';
import { makeSink, type CliSink } from './sink.js';
import { parseWaitMs } from './parse.js';
import { rawCwd } from './argv.js';
import { defaultRepoPath } from './default-repo.js';
import { type Interrupts, writeOut } from './interrupt.js';
import { displayPath } from '../core/bytes.js';
import { SnapError } from '../core/errors.js';
import { type Changes, noChanges } from '../repo/repository.js';
import type { RepoHandle, RepoOpener } from '../ui/lease.js';
import type { DrillSummary } from '../model/oplog.js';

export interface GlobalOptions {
  repo?: string;
  json?: boolean;
  debug?: boolean;
  quiet?: boolean;
  lockWait?: string;
  appendOnly?: boolean;
  trustOwner?: boolean;
  passwordFile?: string;
  passwordCommand?: string;
}

export interface Ctx {
  opts: GlobalOptions;
  json: boolean;
  sink: CliSink;
  out: (s: string) => void;
  host: ReturnType<typeof currentHost>;
  /** The command's clock (cli/now.ts: SNAP_NOW fixes it), handed to the repositories it opens. */
  clock: Clock;
  /** Set by commands: the exit code when no error was thrown. */
  exitCode: number;
  /** The command's name as typed (`gc`, `index rebuild`), recorded in repository locks. */
  command: string;
  /** --lock-wait, if given. */
  lockWaitMs: number | undefined;
  /** Aborted by Ctrl-C, SIGTERM or a closed standard output: passed to ops as `signal`. */
  signal: AbortSignal;
  interrupts: Interrupts;
  /** The working directory, lossless (argv.ts); relative paths on the command line are relative to it. */
  cwd: string;
  /** The repository's location: `path` is its folder, or the canonical text of a remote location. */
  repoPath(): { path: string; isDefault: boolean; location: RepoLocation };
  /**
   * Open the repository. Only `create` passes `create: true`, and only the default repository
   * (SNAP_REPO or the XDG folder) is then created when missing or empty (README); every other
   * command fails with SNAP_NO_REPO.
   */
  openRepo(o?: { create?: boolean; lock?: LockKind; readOnly?: boolean; freesSpace?: boolean }): Promise<Repository>;
  /**
   * Open another repository than --repo (`snap copy --from-repo`), as --repo would be opened: the
   * same lock wait and owner policy; what it writes is not this command's operation-log change.
   * `plainOnly`: an encrypted repository fails with this error, before any password is asked for.
   */
  openRepoAt(text: string, o?: { lock?: LockKind; from?: PasswordOptions; plainOnly?: SnapError }): Promise<Repository>;
  /**
   * The repository's storage, its config checked and its keys unlocked, without the lock or the
   * index (Repository.openStorage): for `snap log`, which answers while another command holds the
   * lock. The caller closes the backend.
   */
  openStorage(): Promise<OpenedStorage>;
  /** What this command wrote to and deleted from the repository, for the operation log (cli/oplog.ts). */
  changes: Changes;
  /** Set by `drill` once it has a report: what it checked, for its operation-log record. */
  drilled?: DrillSummary;
  /** The encrypted repository this command opened, with its keys (the operation log is sealed with them). */
  opened?: { repoId: string; unlocked: Unlocked };
  /** The repository options of openRepo: lock, owner policy, password source, index cache. */
  repoOptions(o?: { lock?: LockKind }): RepoOptions & { host: HostInfo };
}

/** Where encrypted repositories keep their index: SNAP_CACHE_DIR, else $XDG_CACHE_HOME/snap or ~/.cache/snap. */
export function cacheRoot(): string {
  return cacheRootIn(process.env);
}

/** Where this machine remembers the encrypted repositories it opened (repo/known.ts). */
export function knownDir(): string {
  return path.join(cacheRoot(), 'known');
}

/**
 * Why --repo must be an encrypted repository: its password was given explicitly with
 * --password-file or --password-command (SNAP_PASSWORD is not: it is often set for every command).
 * Not for `copy`, whose source takes --repo's password when it has none of its own (the
 * destination may then be plain), unless the source has its own (--from-password-*).
 */
function explicitPassword(opts: GlobalOptions): string | undefined {
  const given = opts.passwordFile !== undefined ? '--password-file was given' : opts.passwordCommand !== undefined ? '--password-command was given' : undefined;
  if (!given) return undefined;
  const o = opts as GlobalOptions & Record<string, unknown>;
  if (o.allowPlain !== undefined) return undefined;
  const copying = o.fromRepo !== undefined || o.from !== undefined;
  if (copying && o.fromPasswordFile === undefined && o.fromPasswordCommand === undefined) return undefined;
  return given;
}

export function makeCtx(cmd: Command, interrupts: Interrupts): Ctx {
  const opts = cmd.optsWithGlobals() as GlobalOptions;
  const json = opts.json === true;
  const sink = makeSink({ json, quiet: opts.quiet === true, stream: process.stderr });
  const lockWaitMs = opts.lockWait ? parseWaitMs(opts.lockWait) : undefined;
  const signal = interrupts.signal;
  const cwd = rawCwd();
  const changes = noChanges();
  const ctx: Ctx = {
    opts,
    json,
    sink,
    out: (s) => void writeOut(s.endsWith('\n') ? s : s + '\n', signal),
    host: currentHost(),
    clock: cliClock(process.env),
    exitCode: 0,
    command: commandName(cmd),
    lockWaitMs,
    signal,
    interrupts,
    cwd,
    changes,
    repoPath() {
      if (opts.repo !== undefined) {
        const location = parseRepoLocation(opts.repo, cwd);
        return { path: location.path, isDefault: false, location };
      }
      if (process.env.SNAP_REPO) {
        const location = parseRepoLocation(process.env.SNAP_REPO, cwd);
        return { path: location.path, isDefault: true, location };
      }
      const p = defaultRepoPath();
      return { path: p, isDefault: true, location: { kind: 'local', path: p } };
    },
    repoOptions(o = {}) {
      const { path: p } = ctx.repoPath();
      // Append-only use (docs/maintenance.md): --append-only, or SNAP_APPEND_ONLY set to anything but '' or 0.
      const appendOnly = opts.appendOnly === true || !['', '0', undefined].includes(process.env.SNAP_APPEND_ONLY);
      const lock = o.lock ? { kind: o.lock, waitMs: lockWaitMs ?? DEFAULT_LOCK_WAIT_MS } : undefined;
      const owner = ownerPolicy(opts, cwd);
      const password = () => repositoryPassword({ file: opts.passwordFile, command: opts.passwordCommand }, cwd, displayPath(p));
      const indexCache = path.join(cacheRoot(), 'index');
      const opened = ctx.opened;
      const expectEncrypted = explicitPassword(opts);
      return { sink, lockWaitMs, signal, appendOnly, changes, lock, command: ctx.command, host: ctx.host, clock: ctx.clock, owner, password, indexCache, opened, known: knownDir(), expectEncrypted };
    },
    async openRepo(o = {}) {
      const { path: p, isDefault, location } = ctx.repoPath();
      const remote = await remoteStorage(location, process.env, signal);
      const ro = { ...ctx.repoOptions(o), remote, readOnly: o.readOnly, freesSpace: o.freesSpace };
      if (o.create && isDefault && (await Repository.isEmptyOrMissing(p, remote))) {
        if (remote) {
          await remote.backend.close();
          throw new SnapError('SNAP_NO_REPO', `no repository at ${displayPath(p)}: a remote repository is made by 'snap init' (encrypted unless it says --no-encryption)`);
        }
        sink.info?.(`created a new repository at ${displayPath(p)}`);
        return Repository.init(p, ro);
      }
      const repo = await Repository.open(p, ro);
      if (repo.unlocked) ctx.opened = { repoId: repo.config.id, unlocked: repo.unlocked };
      return repo;
    },
    async openStorage() {
      const { path: p, location } = ctx.repoPath();
      const opened = await Repository.openStorage(p, { ...ctx.repoOptions(), remote: await remoteStorage(location, process.env, signal) });
      if (opened.unlocked) ctx.opened = { repoId: opened.config.id, unlocked: opened.unlocked };
      return opened;
    },
    async openRepoAt(text, o = {}) {
      const location = parseRepoLocation(text, cwd);
      const lock = o.lock ? { kind: o.lock, waitMs: lockWaitMs ?? DEFAULT_LOCK_WAIT_MS } : undefined;
      const remote = await remoteStorage(location, process.env, signal);
      // An encrypted source is opened with its own password sources when given (o.from: copy's
      // --from-password-*), else with those of --repo (one password for both).
      const usual = { file: opts.passwordFile, command: opts.passwordCommand };
      const shown = displayPath(location.path);
      const plainOnly = o.plainOnly;
      const password = plainOnly ? () => Promise.reject(plainOnly) : () => (o.from ? sourcePassword(o.from, usual, cwd, shown) : repositoryPassword(usual, cwd, shown));
      const indexCache = path.join(cacheRoot(), 'index');
      // A source password given explicitly (--from-password-*) says the source is encrypted.
      const expectEncrypted = o.from?.file !== undefined ? '--from-password-file was given' : o.from?.command !== undefined ? '--from-password-command was given' : undefined;
      return Repository.open(location.path, {
        sink,
        lockWaitMs,
        signal,
        lock,
        command: ctx.command,
        host: ctx.host,
        clock: ctx.clock,
        owner: ownerPolicy(opts, cwd),
        remote,
        password,
        indexCache,
        known: knownDir(),
        expectEncrypted,
      });
    },
  };
  return ctx;
}

/**
 * Who may open a local repository (src/repo/ownership.ts): its owner; anyone with --trust-owner;
 * SNAP_TRUSTED_REPOS lists trusted folders, separated by ':' ('*' trusts every folder).
 */
export function ownerPolicy(opts: GlobalOptions, cwd: string): OwnerPolicy | undefined {
  const uid = process.geteuid?.();
  if (uid === undefined) return undefined;
  const trusted = (process.env.SNAP_TRUSTED_REPOS ?? '').split(':').filter((t) => t !== '').map((t) => (t === '*' ? t : path.resolve(cwd, t)));
  return { uid, trustAny: opts.trustOwner === true, trusted };
}

function commandName(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

export type LockMode = 'shared' | 'exclusive' | 'none';

/**
 * Take the repository's lock (docs/format.md, "Locks"), open the repository, run `fn`, always close
 * (which releases the lock). The lock comes first: the index no longer serializes processes (it is
 * shared, docs/design.md), and a process waiting for an exclusive command (gc) holds nothing.
 */
export async function withRepo<T>(
  ctx: Ctx,
  fn: (repo: Repository, lock: RepoLock | undefined) => Promise<T>,
  lock: LockMode = 'shared',
  o: { create?: boolean; readOnly?: boolean; freesSpace?: boolean } = {},
): Promise<T> {
  const repo = await ctx.openRepo({ ...o, lock: lock === 'none' ? undefined : lock });
  try {
    return await fn(repo, repo.lock);
  } finally {
    await repo.close();
  }
}

/**
 * withRepo for a command that only reads the repository: on a full disk its index, which LevelDB
 * cannot open without writing, is rebuilt in memory instead (RepoOptions.readOnly).
 */
export function readRepo<T>(ctx: Ctx, fn: (repo: Repository) => Promise<T>): Promise<T> {
  return withRepo(ctx, fn, 'shared', { readOnly: true });
}

/**
 * The repository for one stretch of work of a long-running command (`snap ui`'s requests, `snap
 * mount`'s reads), through withRepo: the lock and index every read-only command takes, held only
 * until the handle is closed (ui/lease.ts closes it when idle).
 */
export function repoOpener(ctx: Ctx): RepoOpener {
  return () =>
    new Promise<RepoHandle>((resolve, reject) => {
      const used = withRepo(ctx, (repo) => new Promise<void>((endUse) => resolve({ repo, close: () => (endUse(), used) })));
      used.catch(reject);
    });
}
