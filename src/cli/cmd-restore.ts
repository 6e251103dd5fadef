// `snap restore`.
import * as path from 'node:path';
import type { Command } from 'commander';
import { SnapError } from '../core/errors.js';
import { shortId } from '../core/ids.js';
import { restoreSnapshot, type OverwritePolicy, type PlannedEntry } from '../ops/restore/restore.js';
import { type Ctx, readRepo } from './context.js';
import { bytes } from './format.js';
import { collect } from './parse.js';
import { filterOptions, resolveSnapshot } from './snapshot-args.js';
import { JsonList, plural, showPath, writeLine } from './browse-out.js';
import { displayName, displayPath } from '../core/bytes.js';
import { restoreTestPause } from './restore-test-pause.js';
import { pathJson, plannedJson } from '../view/json.js';

/** A dry run's line: type, path (directories end in /), size of files, the first path of a hard link. */
function plannedLine(e: PlannedEntry): string {
  const n = e.node;
  const extra = e.linkTo ? ` => ${displayName(e.linkTo)}` : n.type === 'file' ? ` (${bytes(n.size)})` : '';
  return `${(e.linkTo ? 'hardlink' : n.type).padEnd(8)} ${showPath(e.dest, n)}${extra}`;
}

interface RestoreFlags {
  include: string[];
  dryRun?: boolean;
  overwrite: string;
  delete?: boolean;
  host: string[];
  tag: string[];
  path: string[];
}

export function registerRestore(program: Command, run: (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>): void {
  filterOptions(program.command('restore').description('restore a snapshot under a target directory (each path at TARGET/<path>)'))
    .argument('<ref>', "snapshot: id prefix, 'latest' or a date")
    .argument('<target>', 'directory to restore into')
    .option('--include <path>', 'restore only this path: absolute, or relative to a backed-up path, as ls and cat take it (repeatable)', collect, [])
    .option('--dry-run', 'list what would be restored; write nothing')
    .option('--overwrite <policy>', 'existing files that differ: never, if-changed or always (default never; with --delete if-changed)', 'never')
    .option('--delete', 'mirror: below the restored paths, remove what the snapshot does not have (as rsync --delete); try it with --dry-run first')
    .action(async (ref: string, target: string, o: RestoreFlags, cmd: Command) => {
      // A mirror replaces files that differ: --delete changes the default to if-changed.
      if (o.delete && cmd.getOptionValueSource('overwrite') === 'default') o.overwrite = 'if-changed';
      return run((ctx) => restore(ctx, ref, target, o), cmd);
    });
}

async function restore(ctx: Ctx, ref: string, target: string, o: RestoreFlags): Promise<void> {
  if (!['never', 'if-changed', 'always'].includes(o.overwrite)) {
    throw new SnapError('SNAP_USAGE', `--overwrite must be never, if-changed or always (not '${o.overwrite}')`);
  }
  if (o.delete && o.overwrite === 'never') {
    throw new SnapError('SNAP_USAGE', '--delete makes the target match the snapshot, which replaces files that differ: it cannot be combined with --overwrite never');
  }
  let list: JsonList | undefined;
  const { snap, r } = await readRepo(ctx, async (repo) => {
    const snap = await resolveSnapshot(ctx, repo, ref, o);
    if (o.dryRun && ctx.json) list = new JsonList(`{"snapshot":${JSON.stringify(snap.id)},"target":${JSON.stringify(target)},"dry_run":true,"entries":[`);
    const r = await restoreSnapshot(repo, snap, {
      // Relative to the working directory as given (lossless: a folder whose name is not UTF-8).
      target: path.resolve(ctx.cwd, target),
      include: o.include,
      dryRun: o.dryRun === true,
      onPlanned: o.dryRun ? (e) => (list ? list.item(plannedJson(e)) : writeLine(plannedLine(e))) : undefined,
      delete: o.delete === true,
      // Every removal of a dry run is listed (as `remove`); a real run counts them.
      onRemoved: o.dryRun ? (x) => (list ? list.item({ ...pathJson(x.dest), type: 'remove', dir: x.dir }) : writeLine(`${'remove'.padEnd(8)} ${displayName(x.dest)}${x.dir ? '/' : ''}`)) : undefined,
      overwrite: o.overwrite as OverwritePolicy,
      asRoot: ctx.host.uid === 0,
      sink: ctx.sink,
      signal: ctx.signal,
      testPause: restoreTestPause(process.env.SNAP_RESTORE_TEST_PAUSE),
    });
    return { snap, r };
  });
  ctx.sink.done();
  if (list) await list.end(`],${JSON.stringify(r).slice(1)}`);
  else if (ctx.json) ctx.out(JSON.stringify({ snapshot: snap.id, target, dry_run: o.dryRun === true, ...r }));
  else {
    const verb = o.dryRun ? 'would restore' : 'restored';
    ctx.out(
      `${verb} snapshot ${shortId(snap.id)} to ${displayPath(target)}: ${plural(r.files, 'file')} (${bytes(r.bytes)}), ${plural(r.dirs, 'dir')}, ` +
        `${plural(r.links, 'hard link')}, ${plural(r.special, 'other entry', 'other entries')}`,
    );
    if (r.unchanged > 0) ctx.out(`  ${plural(r.unchanged, 'file')} already present and identical`);
    if (o.delete) ctx.out(`  ${o.dryRun ? 'would remove' : 'removed'} ${plural(r.removed, 'entry', 'entries')} the snapshot does not have`);
    if (r.skipped > 0) ctx.out(`  ${plural(r.skipped, 'entry', 'entries')} skipped (see warnings above)`);
    if (r.damaged.length > 0) ctx.out(`  ${plural(r.damaged.length, 'file')} NOT restored because their data is damaged:\n${r.damaged.map((d) => `    ${d}`).join('\n')}`);
  }
  if (r.damaged.length > 0 || r.warnings > 0) ctx.exitCode = 3;
}
