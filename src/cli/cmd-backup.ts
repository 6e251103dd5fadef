// `snap init` and `snap create`.
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { fromSystemError, isSnapError, SnapError } from '../core/errors.js';
import { displayPath, fsDecode, fsPath, hasEscapedBytes } from '../core/bytes.js';
import { shortId } from '../core/ids.js';
import { Repository } from '../repo/repository.js';
import { createSnapshot } from '../ops/create.js';
import { type Ctx, makeCtx, withRepo } from './context.js';
import { bytes, duration } from './format.js';
import { collect } from './parse.js';
import { systemClock } from '../core/clock.js';
import { cliNow } from './now.js';
import { timeOption } from './when.js';
import { VERSION } from './version.js';
import { snapshotJson } from './cmd-list.js';

export function registerBackup(program: Command, run: (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>): void {
  program
    .command('init')
    .description('create a new, empty repository')
    .action(async (_o, cmd: Command) =>
      run(async (ctx) => {
        const { path: p } = ctx.repoPath();
        const repo = await Repository.init(p, { sink: ctx.sink });
        await repo.close();
        if (ctx.json) ctx.out(JSON.stringify({ repository: p, id: repo.config.id }));
        else ctx.out(`created repository ${repo.config.id.slice(0, 8)} at ${displayPath(p)}`);
      }, cmd),
    );

  program
    .command('create')
    .description('back up files and directories into a new snapshot')
    .argument('<path...>', 'files or directories to back up')
    .option('--tag <tag>', 'tag the snapshot (repeatable)', collect, [])
    .option('--exclude <pattern>', 'exclude paths matching a .gitignore-style pattern (repeatable)', collect, [])
    .option('--exclude-file <file>', 'read exclude patterns from a file, one per line (repeatable)', collect, [])
    .option('--time <date>', "record this time for the snapshot instead of now (importing old backups): 2026-03-03T14:00:00Z, '2026-03-03 14:00', yesterday, ...")
    .option('--one-file-system', 'do not cross into other file systems')
    .action(async (paths: string[], o: CreateFlags, cmd: Command) => run((ctx) => create(ctx, paths, o), cmd));
}

interface CreateFlags {
  tag: string[];
  exclude: string[];
  excludeFile: string[];
  time?: string;
  oneFileSystem?: boolean;
}

async function create(ctx: Ctx, paths: string[], o: CreateFlags): Promise<void> {
  const excludes = [...o.exclude];
  for (const f of o.excludeFile) {
    try {
      // Patterns are bytes, like the names they match: read them so, line by line.
      excludes.push(...fsDecode(fs.readFileSync(fsPath(f))).split(/\r?\n/));
    } catch (e) {
      throw fromSystemError(e, `exclude file ${displayPath(f)}`);
    }
  }
  for (const t of o.tag) if (hasEscapedBytes(t)) throw new SnapError('SNAP_USAGE', `a tag must be UTF-8 text: '${displayPath(t)}' is not`);
  const time = o.time !== undefined ? timeOption(o.time, cliNow(systemClock)) : undefined;
  const backup = (repo: Repository): ReturnType<typeof createSnapshot> =>
    createSnapshot(repo, {
      paths,
      cwd: ctx.cwd,
      tags: o.tag,
      excludes: excludes.filter((x) => x.trim() !== ''),
      time,
      oneFileSystem: o.oneFileSystem === true,
      host: ctx.host,
      program: `snap ${VERSION}`,
      sink: ctx.sink,
      signal: ctx.signal,
    });
  // The one command that creates the default repository when there is none (README).
  const r = await withRepo(ctx, backup, 'shared', { create: true }).catch((e: unknown) => {
    if (isSnapError(e, 'SNAP_INTERRUPTED')) {
      throw new SnapError('SNAP_INTERRUPTED', `${e.message}: no snapshot was saved (data already stored is reused by the next backup, or removed by 'snap gc')`);
    }
    throw e;
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
}
