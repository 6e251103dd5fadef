// The browsing commands: `snap diff`, `snap find`, `snap history`, `snap dups` (docs/browsing.md).
import type { Command } from 'commander';
import type { Ctx } from './context.js';
import { filterOptions } from './snapshot-args.js';
import { registerDiff } from './cmd-diff.js';
import { registerDups } from './cmd-dups.js';
import { registerFind, registerHistory } from './cmd-find.js';
import { windowOptions } from './list-window.js';

type Run = (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>;

export function registerBrowse(program: Command, run: Run): void {
  registerDiff(filterOptions(program.command('diff').description('what changed between two snapshots, or (--live) since a snapshot on disk, of everything or one path')), run);
  registerFind(windowOptions(filterOptions(program.command('find').description('which snapshots hold paths matching a pattern'))), run);
  registerHistory(windowOptions(filterOptions(program.command('history').description('every version of a file or directory across snapshots'))), run);
  registerDups(filterOptions(program.command('dups').description('files with identical content inside a snapshot')), run);
}
