// `snap tag` and `snap rewrite`: edit existing snapshots by writing records that replace them.
import type { Command } from 'commander';
import { SnapError } from '../core/errors.js';
import { displayPath, hasEscapedBytes } from '../core/bytes.js';
import { shortId } from '../core/ids.js';
import { compileExcludes, unmatched } from '../model/exclude.js';
import type { StoredSnapshot } from '../model/snapshot.js';
import type { Repository } from '../repo/repository.js';
import { rewriteSnapshots } from '../ops/maintain/rewrite.js';
import { tagSnapshots } from '../ops/maintain/tag.js';
import { type Ctx, withRepo } from './context.js';
import { filterOptions, resolveSnapshot } from './cmd-list.js';
import { pathJson, showPath, snapLabel, writeLine } from './browse-out.js';
import { bytes } from './format.js';
import { collect, readPatternFiles } from './parse.js';
import { VERSION } from './version.js';
import type { SnapshotFilter } from '../ops/tree/refs.js';

type Run = (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>;

interface TagFlags extends SnapshotFilter {
  add: string[];
  remove: string[];
  set?: string[];
  dryRun?: boolean;
}

interface RewriteFlags extends SnapshotFilter {
  exclude: string[];
  excludeFile: string[];
  dryRun?: boolean;
  forget?: boolean;
}

/** Tags given as `--add a,b --add c`. */
const tagList = (v: string, prev: string[] = []): string[] => [...prev, ...v.split(',').map((t) => t.trim())];

export function registerEdit(program: Command, run: Run): void {
  filterOptions(program.command('tag').description('add, remove or set the tags of snapshots (a new record replaces each one)'))
    .argument('<ref...>', "snapshots: id prefix, 'latest' or a date")
    .option('--add <tags>', 'add these comma-separated tags (repeatable)', tagList, [])
    .option('--remove <tags>', 'remove these tags (repeatable)', tagList, [])
    .option('--set <tags>', "replace all tags with these ('' for none; repeatable)", tagList)
    .option('--dry-run', 'show the new tags; change nothing')
    .action(async (refs: string[], o: TagFlags, cmd: Command) => run((ctx) => tag(ctx, refs, o), cmd));

  filterOptions(program.command('rewrite').description('remove files from existing snapshots (new records; the originals stay unless --forget)'))
    .argument('<ref...>', "snapshots: id prefix, 'latest' or a date")
    .option('--exclude <pattern>', 'remove paths matching this pattern, as create --exclude takes it (repeatable)', collect, [])
    .option('--exclude-file <file>', 'read patterns from a file, one per line (repeatable)', collect, [])
    .option('--dry-run', 'list what would be removed; change nothing')
    .option('--forget', 'remove each original once its replacement is saved (then run snap gc to free the data)')
    .action(async (refs: string[], o: RewriteFlags, cmd: Command) => run((ctx) => rewrite(ctx, refs, o), cmd));
}

async function resolveAll(ctx: Ctx, repo: Repository, refs: string[], f: SnapshotFilter): Promise<StoredSnapshot[]> {
  const byId = new Map<string, StoredSnapshot>();
  for (const r of refs) {
    const s = await resolveSnapshot(ctx, repo, r, f);
    byId.set(s.id, s);
  }
  return [...byId.values()];
}

async function tag(ctx: Ctx, refs: string[], o: TagFlags): Promise<void> {
  if (o.set !== undefined && (o.add.length > 0 || o.remove.length > 0)) throw new SnapError('SNAP_USAGE', '--set replaces all tags; it cannot be combined with --add or --remove');
  if (o.set === undefined && o.add.length === 0 && o.remove.length === 0) throw new SnapError('SNAP_USAGE', 'give --add, --remove or --set');
  for (const t of [...o.add, ...o.remove, ...(o.set ?? [])]) if (hasEscapedBytes(t)) throw new SnapError('SNAP_USAGE', `a tag must be UTF-8 text: '${displayPath(t)}' is not`);
  const results = await withRepo(
    ctx,
    async (repo) => tagSnapshots(repo, await resolveAll(ctx, repo, refs, o), { add: o.add, remove: o.remove, set: o.set }, { dryRun: o.dryRun }),
    o.dryRun ? 'shared' : 'exclusive',
  );
  if (ctx.json) {
    ctx.out(JSON.stringify({ dry_run: o.dryRun === true, snapshots: results.map((r) => ({ original: r.old.id, tags: (r.replacement ?? r.old).tags, replacement: r.replacement?.id, changed: r.replacement !== undefined })) }, null, 2));
    return;
  }
  for (const r of results) {
    const tags = (r.replacement ?? r.old).tags.map(displayPath).join(',') || '(none)';
    if (!r.replacement) ctx.out(`snapshot ${snapLabel(r.old)}: tags unchanged (${tags})`);
    else if (o.dryRun) ctx.out(`snapshot ${snapLabel(r.old)}: tags would be ${tags}; would be replaced by ${shortId(r.replacement.id)} (dry run: nothing changed)`);
    else ctx.out(`snapshot ${snapLabel(r.old)}: tags ${tags}; replaced by ${shortId(r.replacement.id)} (the old record is removed)`);
  }
}

function patternsOf(o: RewriteFlags): string[] {
  return [...o.exclude, ...readPatternFiles(o.excludeFile)].filter((p) => p.trim() !== '' && !p.trim().startsWith('#'));
}

async function rewrite(ctx: Ctx, refs: string[], o: RewriteFlags): Promise<void> {
  const patterns = patternsOf(o);
  if (patterns.length === 0) throw new SnapError('SNAP_USAGE', 'give at least one --exclude pattern (or --exclude-file) naming what to remove');
  const rules = compileExcludes(patterns);
  const listed: { snapshot: string; entry: Record<string, string> }[] = [];
  const results = await withRepo(
    ctx,
    async (repo) =>
      rewriteSnapshots(repo, await resolveAll(ctx, repo, refs, o), {
        rules,
        patterns,
        dryRun: o.dryRun,
        forget: o.forget,
        program: `snap ${VERSION}`,
        signal: ctx.signal,
        onRemoved: async (snap, p, n) => {
          if (ctx.json) listed.push({ snapshot: snap.id, entry: { ...pathJson(p), type: n.type } });
          else await writeLine(`${o.dryRun ? 'would remove' : 'removed'} from ${shortId(snap.id)}: ${showPath(p, n)}`);
        },
      }),
    o.forget && !o.dryRun ? 'exclusive' : 'shared',
  );
  ctx.sink.done();
  for (const p of unmatched(rules)) ctx.sink.info?.(`exclude pattern '${displayPath(p)}' matched nothing`);
  if (ctx.json) {
    ctx.out(JSON.stringify({
      dry_run: o.dryRun === true,
      snapshots: results.map((r) => ({
        original: r.old.id, removed: listed.filter((l) => l.snapshot === r.old.id).map((l) => l.entry),
        removed_count: r.removed, removed_files: r.files, removed_bytes: r.bytes, replacement: r.replacement?.id, forgotten: r.forgotten,
      })),
    }, null, 2));
    return;
  }
  for (const r of results) {
    if (!r.replacement) {
      ctx.out(`snapshot ${snapLabel(r.old)}: nothing matched; unchanged`);
      continue;
    }
    const what = `${r.removed} entr${r.removed === 1 ? 'y' : 'ies'} (${r.files} files, ${bytes(r.bytes)})`;
    if (o.dryRun) ctx.out(`snapshot ${snapLabel(r.old)}: would remove ${what}; would be replaced by ${shortId(r.replacement.id)} (dry run: nothing changed)`);
    else ctx.out(`snapshot ${snapLabel(r.old)}: removed ${what}; replaced by ${shortId(r.replacement.id)}; ${r.forgotten ? 'the original is removed' : "the original is kept (add --forget to remove it)"}`);
  }
  if (!o.dryRun && results.some((r) => r.forgotten)) ctx.out("run 'snap gc' to free the data only the originals used");
}
