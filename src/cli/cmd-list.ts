// `snap list`, `snap ls`, `snap cat`.
import type { Command } from 'commander';
import { shortId } from '../core/ids.js';
import { displayName, displayPath } from '../core/bytes.js';
import type { Node } from '../model/node.js';
import type { Tree } from '../model/tree.js';
import { catFile, listPath } from '../ops/browse/browse.js';
import { filterSnapshots, type SnapshotFilter } from '../ops/tree/refs.js';
import type { Repository } from '../repo/repository.js';
import { type Ctx, readRepo } from './context.js';
import { bytes, localDateTime, modeString, table } from './format.js';
import { JsonList, plural, writeLine } from './browse-out.js';
import { filterOptions, resolveSnapshot } from './snapshot-args.js';
import { writeOutAsync } from './interrupt.js';
import { applyWindow, printCalendar, windowOptions, type WindowFlags } from './list-window.js';
import { entryJson, mtimeDate, snapRefJson, snapshotJson } from '../view/json.js';

export function registerList(program: Command, run: (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>): void {
  windowOptions(filterOptions(program.command('list').alias('snapshots').description('list snapshots, oldest first')))
    .option('--by <period>', 'a calendar instead: one line per day, week, month or year with snapshots')
    .action(async (o: SnapshotFilter & WindowFlags & { by?: string }, cmd: Command) =>
      run(async (ctx) => {
        const snaps = await readRepo(ctx, async (repo) => applyWindow(filterSnapshots(await repo.listSnapshots(), o), o, repo.clock.now()));
        if (o.by !== undefined) return printCalendar(ctx, snaps, o.by);
        if (ctx.json) return ctx.out(JSON.stringify(snaps.map(snapshotJson), null, 2));
        if (snaps.length === 0) return ctx.out('no snapshots');
        const rows = [['ID', 'Time', 'Host', 'Tags', 'Files', 'Size', 'Added', 'Paths']];
        for (const s of snaps) {
          rows.push([shortId(s.id), localDateTime(new Date(s.time)), displayPath(s.hostname), s.tags.map(displayPath).join(','), String(s.summary.totalFiles), bytes(s.summary.totalBytes), bytes(s.summary.dataAdded), s.paths.map(displayPath).join(' ')]);
        }
        ctx.out(table(rows, new Set([4, 5, 6])));
        ctx.out(plural(snaps.length, 'snapshot'));
      }, cmd),
  );

  filterOptions(program.command('ls').description('list a directory of a snapshot'))
    .argument('<ref>', "snapshot: id prefix, 'latest' or a date")
    .argument('[path]', 'path inside the snapshot', '/')
    .option('-l, --long', 'long format: mode, owner, size, time')
    .option('-R, --recursive', 'list subdirectories too')
    .action(async (ref: string, p: string, o: SnapshotFilter & { long?: boolean; recursive?: boolean }, cmd: Command) =>
      run((ctx) => readRepo(ctx, (repo) => ls(ctx, repo, ref, p, o)), cmd),
    );

  filterOptions(program.command('cat').description("write a file's contents from a snapshot to standard output"))
    .argument('<ref>', "snapshot: id prefix, 'latest' or a date")
    .argument('<path>', 'file inside the snapshot')
    .action(async (ref: string, p: string, o: SnapshotFilter, cmd: Command) =>
      run(
        (ctx) =>
          readRepo(ctx, async (repo) => {
            const snap = await resolveSnapshot(ctx, repo, ref, o);
            const { chunks } = await catFile(repo, snap, p);
            for await (const c of chunks) await writeOutAsync(c, ctx.signal);
          }),
        cmd,
      ),
    );
}

/** One JSON document, `{snapshot, entries: [...]}`, streamed entry by entry like the text form. */
async function ls(ctx: Ctx, repo: Repository, ref: string, p: string, o: SnapshotFilter & { long?: boolean; recursive?: boolean }): Promise<void> {
  const snap = await resolveSnapshot(ctx, repo, ref, o);
  const list = new JsonList(`{"snapshot":${JSON.stringify(snapRefJson(snap))},"entries":[`);
  const widths = new ColumnWidths();
  for await (const e of listPath(repo, snap, p, o.recursive === true)) {
    if (ctx.json) await list.item(entryJson(e.path, e.node));
    else await writeLine(o.long ? longLine(e.path, e.node, widths.of(e.siblings)) : displayName(e.path));
  }
  if (ctx.json) await list.end(']}');
}

/** Owner and size columns as wide as the widest in the directory, however long an owner name is. */
class ColumnWidths {
  private last: Tree | undefined;
  private w = { owner: 0, size: 0 };
  of(siblings: Tree): { owner: number; size: number } {
    if (siblings !== this.last) {
      this.last = siblings;
      this.w = { owner: 0, size: 0 };
      for (const n of siblings) {
        this.w.owner = Math.max(this.w.owner, ownerText(n).length);
        this.w.size = Math.max(this.w.size, String(n.size).length);
      }
    }
    return this.w;
  }
}

const ownerText = (n: Node): string => `${displayPath(n.user) || n.uid}/${displayPath(n.group) || n.gid}`;

function longLine(p: Buffer, n: Node, w: { owner: number; size: number }): string {
  const link = n.type === 'symlink' && n.target ? ` -> ${displayName(n.target)}` : '';
  return `${modeString(n)} ${ownerText(n).padEnd(w.owner)} ${String(n.size).padStart(w.size)} ${localDateTime(mtimeDate(n))} ${displayName(p)}${link}`;
}
