// `snap create` (`snap init` is in cmd-init.ts).
import * as fs from 'node:fs';
import { spawn } from 'node:child_process';
import { addAbortSignal, PassThrough } from 'node:stream';
import type { Command } from 'commander';
import { fromSystemError, isSnapError, SnapError } from '../core/errors.js';
import { displayPath, fsDecode, fsPath, hasEscapedBytes } from '../core/bytes.js';
import { type FilesFromMode, parseFilesFrom } from '../model/files-from.js';
import { shortId } from '../core/ids.js';
import { Repository } from '../repo/repository.js';
import { type CreateOptions, createSnapshot, type StdinSource } from '../ops/backup/create.js';
import { WalkAhead } from '../ops/backup/walk-ahead.js';
import { looksEncrypted } from '../repo/keys.js';
import { useBackupHeap } from './backup-heap.js';
import { type Ctx, withRepo } from './context.js';
import { bytes, duration } from './format.js';
import { collect, parseSize, readPatternFiles } from './parse.js';
import { timeOption } from './when.js';
import { type BackupOutcome, type HookFlags, hookOptions, withHooks } from './hooks.js';
import { VERSION } from './version.js';
import { snapshotJson } from '../view/json.js';

/** Paths from a --files-from list: bytes, kept as lossless strings (core/bytes.ts); `-` is standard input. */
function readFilesFrom(file: string, mode: FilesFromMode): string[] {
  let data: Buffer;
  try {
    data = fs.readFileSync(file === '-' ? 0 : fsPath(file));
  } catch (e) {
    throw fromSystemError(e, `reading the list of paths ${displayPath(file)}`);
  }
  return parseFilesFrom(data, mode).map(fsDecode);
}

/**
 * Standard input as the stream to back up. A shell pipeline's exit status (`pipefail`) is not
 * visible from here: `pg_dump db | snap create --stdin` cannot tell a failed dump from a short
 * one. --stdin-from-command can (commandSource).
 */
function stdinSource(name: string, signal: AbortSignal): StdinSource {
  if (process.stdin.isTTY) throw new SnapError('SNAP_USAGE', '--stdin reads a pipe or a file, and standard input is a terminal');
  // Stopped (Ctrl-C, SIGTERM) while no data comes: the read ends at once instead of waiting for the producer.
  return { name, data: addAbortSignal(signal, process.stdin) };
}

interface CommandSource {
  source: StdinSource;
  /** Ends the command if it still runs (the backup failed or was stopped before reading all of it). */
  stop(): void;
}

/** A command's standard output as the stream to back up; a failure of the command fails the backup. */
function commandSource(argv: string[], name: string, signal: AbortSignal): CommandSource {
  // Node passes a program its arguments as UTF-8 text: bytes that are not UTF-8 cannot reach it.
  const bad = argv.find(hasEscapedBytes);
  if (bad !== undefined) {
    throw new SnapError('SNAP_USAGE', `--stdin-from-command cannot pass '${displayPath(bad)}' to the command: it is not UTF-8, and programs are started with text arguments (use a small script that names it)`);
  }
  const [cmd, ...args] = argv as [string, ...string[]];
  const child = spawn(cmd, args, { stdio: ['inherit', 'pipe', 'inherit'] });
  let spawnError: Error | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('error', (e) => {
      spawnError = e;
      resolve({ code: null, signal: null });
    });
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  const stop = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill();
  };
  // If the process ends at once (a second Ctrl-C), the command must not be left writing into a closed pipe.
  process.once('exit', stop);
  // Piped at once: Node resumes an exited child's output that nobody reads yet, discarding it
  // (a fast command ends while the repository is still being opened). pipe() keeps back-pressure.
  const data = addAbortSignal(signal, child.stdout.pipe(new PassThrough()));
  return {
    stop,
    source: {
      name,
      data,
      async finished() {
        const { code, signal } = await exited;
        const what = `the command '${argv.map(displayPath).join(' ')}'`;
        if (spawnError) throw new SnapError('SNAP_COMMAND_FAILED', `${what} could not be run: ${spawnError.message}; no snapshot was saved`);
        if (code !== 0) {
          throw new SnapError('SNAP_COMMAND_FAILED', `${what} ${signal ? `was killed by ${signal}` : `exited with status ${code}`}; no snapshot was saved (the data read is unreferenced: gc removes it)`);
        }
      },
    },
  };
}

/** What to leave out of a backup: the exclude options of create and watch. */
export function excludeOptions(cmd: Command): Command {
  return cmd
    .option('--exclude <pattern>', 'exclude paths matching a .gitignore-style pattern (repeatable)', collect, [])
    .option('--exclude-file <file>', 'read exclude patterns from a file, one per line (repeatable)', collect, [])
    .option('--exclude-caches', 'leave out directories that hold a CACHEDIR.TAG file with its standard signature')
    .option('--exclude-if-present <name>', 'leave out directories that hold an entry of this name (repeatable)', collect, [])
    .option('--exclude-larger-than <size>', 'leave out files larger than this (e.g. 500M, 2G)');
}

/** The flags of excludeOptions and --one-file-system, as create and watch both take them. */
export interface ExcludeFlags {
  exclude: string[];
  excludeFile: string[];
  excludeCaches?: boolean;
  excludeIfPresent: string[];
  excludeLargerThan?: string;
  oneFileSystem?: boolean;
}

/** ExcludeFlags as createSnapshot takes them: patterns from the flags and files (blank lines dropped), sizes parsed. */
export function excludeSettings(o: ExcludeFlags): Pick<CreateOptions, 'excludes' | 'oneFileSystem' | 'excludeCaches' | 'excludeIfPresent' | 'excludeLargerThan'> {
  return {
    excludes: [...o.exclude, ...readPatternFiles(o.excludeFile)].filter((x) => x.trim() !== ''),
    oneFileSystem: o.oneFileSystem === true,
    excludeCaches: o.excludeCaches === true,
    excludeIfPresent: o.excludeIfPresent,
    excludeLargerThan: o.excludeLargerThan !== undefined ? parseSize(o.excludeLargerThan) : undefined,
  };
}

export function registerCreate(program: Command, run: (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>): void {
  const createCmd = program
    .command('create')
    .description('back up files and directories into a new snapshot')
    .argument('[path...]', 'files or directories to back up (with --stdin-from-command: the command and its arguments, after --)')
    .option('--tag <tag>', 'tag the snapshot (repeatable)', collect, [])
    .option('--time <date>', "record this time for the snapshot instead of now (importing old backups): 2026-03-03T14:00:00Z, '2026-03-03 14:00', yesterday, ...")
    .option('--one-file-system', 'do not cross into other file systems')
    .option('--files-from <file>', "back up the paths listed in FILE, one per line; '#' lines and empty lines skipped; '-' for stdin (repeatable)", collect, [])
    .option('--files-from-verbatim <file>', 'back up the paths listed in FILE, one per line, exactly as written (repeatable)', collect, [])
    .option('--files-from-raw <file>', 'back up the paths listed in FILE, separated by NUL bytes, as find -print0 writes them (repeatable)', collect, [])
    .option('--stdin', 'back up what is read from standard input, as one file (see --stdin-filename)')
    .option('--stdin-filename <name>', 'the name of the file --stdin or --stdin-from-command makes', 'stdin')
    .option('--stdin-from-command', "run the command given after -- and back up its output; a command that fails (exit status not 0) saves no snapshot")
  hookOptions(excludeOptions(createCmd)).action(async (paths: string[], o: CreateFlags & HookFlags, cmd: Command) => {
    useBackupHeap(process.execArgv);
    return run((ctx) => withHooks(ctx, o, () => create(ctx, paths, o)), cmd);
  });
}

interface CreateFlags extends ExcludeFlags {
  tag: string[];
  time?: string;
  filesFrom: string[];
  filesFromVerbatim: string[];
  filesFromRaw: string[];
  stdin?: boolean;
  stdinFilename: string;
  stdinFromCommand?: boolean;
}

async function create(ctx: Ctx, paths: string[], o: CreateFlags): Promise<BackupOutcome> {
  for (const t of o.tag) if (hasEscapedBytes(t)) throw new SnapError('SNAP_USAGE', `a tag must be UTF-8 text: '${displayPath(t)}' is not`);
  const time = o.time !== undefined ? timeOption(o.time, ctx.clock.now()) : undefined;
  const leaveOut = excludeSettings(o);
  const listed = [
    ...o.filesFrom.map((f) => [f, 'lines'] as const),
    ...o.filesFromVerbatim.map((f) => [f, 'verbatim'] as const),
    ...o.filesFromRaw.map((f) => [f, 'raw'] as const),
  ];
  const streamed = o.stdin === true || o.stdinFromCommand === true;
  if (o.stdin && o.stdinFromCommand) throw new SnapError('SNAP_USAGE', '--stdin and --stdin-from-command exclude each other');
  if (streamed && listed.length > 0) throw new SnapError('SNAP_USAGE', '--files-from cannot be combined with --stdin or --stdin-from-command');
  if (o.stdin && paths.length > 0) throw new SnapError('SNAP_USAGE', `--stdin backs up standard input only; paths given too: ${paths.map(displayPath).join(' ')}`);
  if (o.stdinFromCommand && paths.length === 0) throw new SnapError('SNAP_USAGE', '--stdin-from-command needs the command to run, after --: snap create --stdin-from-command -- pg_dump mydb');
  const sources = streamed ? [] : [...paths, ...listed.flatMap(([f, mode]) => readFilesFrom(f, mode))];
  if (!streamed && sources.length === 0) throw new SnapError('SNAP_USAGE', listed.length > 0 ? 'the --files-from lists name no paths' : 'name at least one path to back up');
  const command = o.stdinFromCommand ? commandSource(paths, o.stdinFilename, ctx.signal) : undefined;
  const stdin = command?.source ?? (o.stdin ? stdinSource(o.stdinFilename, ctx.signal) : undefined);
  // The sources walked while the repository opens, where that takes a while: an encrypted one
  // derives its key (about 0.4 s), remote storage answers over the network. A plain local one opens
  // in a few ms: the walk ahead would only cost (docs/performance.md, "A backup where little changed").
  const { location } = ctx.repoPath();
  const slowOpen = location.kind !== 'local' || looksEncrypted(location.path);
  const ahead = streamed || !slowOpen ? undefined : new WalkAhead({ paths: sources, cwd: ctx.cwd, ...leaveOut, signal: ctx.signal });
  const backup = (repo: Repository): ReturnType<typeof createSnapshot> =>
    createSnapshot(repo, {
      paths: sources,
      stdin,
      ahead,
      cwd: ctx.cwd,
      tags: o.tag,
      ...leaveOut,
      time,
      host: ctx.host,
      program: `snap ${VERSION}`,
      sink: ctx.sink,
      signal: ctx.signal,
      // Test hook (the torture suite's kill -9 of backups): files-cache batches of a few entries.
      cacheBatch: positiveInt(process.env.SNAP_CREATE_TEST_CACHE_BATCH),
    });
  // The one command that creates the default repository when there is none (README).
  const r = await withRepo(ctx, backup, 'shared', { create: true })
    .catch((e: unknown) => {
      if (isSnapError(e, 'SNAP_INTERRUPTED')) {
        throw new SnapError('SNAP_INTERRUPTED', `${e.message}: no snapshot was saved (data already stored is reused by the next backup, or removed by 'snap gc')`);
      }
      throw e;
    })
    .finally(() => {
      command?.stop();
      ahead?.stop();
    });
  ctx.sink.done();
  const s = r.snapshot;
  const sum = s.summary;
  if (ctx.json) ctx.out(JSON.stringify(snapshotJson(s)));
  else {
    ctx.out(
      [
        `snapshot ${shortId(s.id)} saved (${s.paths.map(displayPath).join(', ')})`,
        `  files: ${sum.filesNew} new, ${sum.filesChanged} changed, ${sum.filesUnchanged} unchanged (${sum.totalFiles} in all, ${bytes(sum.totalBytes)})`,
        `  dirs:  ${sum.dirsNew} new, ${sum.dirsChanged} changed, ${sum.dirsUnchanged} unchanged`,
        `  read ${bytes(sum.bytesRead)}, added ${bytes(sum.dataAdded)} to the repository (${sum.objectsAdded} objects) in ${duration(sum.durationMs)}`,
        ...(r.warnings > 0 ? [`  ${r.warnings} warning(s): some files were not backed up or changed while read (see above)`] : []),
      ].join('\n'),
    );
  }
  if (r.warnings > 0) ctx.exitCode = 3;
  return { snapshot: s, warnings: r.warnings };
}

/** A test hook's number: a positive integer, else undefined (the default applies). */
function positiveInt(v: string | undefined): number | undefined {
  const n = Number(v);
  return v !== undefined && Number.isSafeInteger(n) && n > 0 ? n : undefined;
}
