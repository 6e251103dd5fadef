// `snap diff REF1 REF2 [PATH]` and `snap diff REF --live [PATH]` (the snapshot against the disk): added (+), removed (-), content-modified (M), metadata-only (U)
// and type-changed (T) entries, streamed, then a summary.
import type { Command } from 'commander';
import type { Node } from '../model/node.js';
import { displayName, displayPath } from '../core/bytes.js';
import { SnapError } from '../core/errors.js';
import { diffLive } from '../ops/browse/diff-live.js';
import { diffSnapshots, emptySummary, summarize, type Change, type DiffCounts, type DiffSummary } from '../ops/browse/diff.js';
import type { SnapshotFilter } from '../ops/tree/refs.js';
import type { Repository } from '../repo/repository.js';
import { type Ctx, readRepo } from './context.js';
import { resolveSnapshot } from './snapshot-args.js';
import { JsonList, owner, plural, showPath, snapLabel, writeLine } from './browse-out.js';
import { bytes, localDateTime } from './format.js';
import { changeJson, mtimeDate, octal, snapRefJson } from '../view/json.js';

type Run = (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>;

interface DiffFlags extends SnapshotFilter {
  live?: boolean;
  readAll?: boolean;
}

export function registerDiff(cmd: Command, run: Run): void {
  cmd
    .argument('<ref1>', "the older snapshot: id prefix, 'latest' or a date")
    .argument('[ref2]', "the newer snapshot: id prefix, 'latest' or a date (with --live: the path)")
    .argument('[path]', 'only this file or directory (absolute, or relative to a source path)')
    .option('--live', 'compare the snapshot with the files on disk now: snap diff REF --live [PATH]')
    .option('--read-all', 'with --live: read every file of the recorded size and compare its content, even when its size, mtime and ctime say it is unchanged')
    .action(async (r1: string, r2: string | undefined, p: string | undefined, o: DiffFlags, c: Command) => {
      if (o.live) {
        if (p !== undefined) throw new SnapError('SNAP_USAGE', 'diff --live compares one snapshot with the disk: snap diff REF --live [PATH]');
        return run((ctx) => readRepo(ctx, (repo) => diffWithDisk(ctx, r1, r2, o, repo)), c);
      }
      if (o.readAll) throw new SnapError('SNAP_USAGE', '--read-all goes with --live');
      if (r2 === undefined) throw new SnapError('SNAP_USAGE', 'diff needs two snapshots (snap diff REF1 REF2 [PATH]), or one with --live (snap diff REF --live [PATH])');
      return run((ctx) => readRepo(ctx, (repo) => diff(ctx, r1, r2, p, o, repo)), c);
    });
}

async function diff(ctx: Ctx, r1: string, r2: string, p: string | undefined, o: SnapshotFilter, repo: Repository): Promise<void> {
  const a = await resolveSnapshot(ctx, repo, r1, o);
  const b = await resolveSnapshot(ctx, repo, r2, o);
  const list = new JsonList(`{"from":${JSON.stringify(snapRefJson(a))},"to":${JSON.stringify(snapRefJson(b))},"changes":[`);
  if (!ctx.json) await writeLine(`comparing ${snapLabel(a)} with ${snapLabel(b)}${p === undefined ? '' : `, ${displayPath(p)}`}`);
  await report(ctx, list, diffSnapshots(repo, a, b, p));
}

/** `diff REF --live [PATH]`: the snapshot against the files on disk now (ops/browse/diff-live.ts). */
async function diffWithDisk(ctx: Ctx, r1: string, p: string | undefined, o: DiffFlags, repo: Repository): Promise<void> {
  const a = await resolveSnapshot(ctx, repo, r1, o);
  let warnings = 0;
  const changes = diffLive(repo, a, p, {
    readAll: o.readAll === true,
    signal: ctx.signal,
    warn: (code, path, message) => {
      warnings++;
      const shown = displayName(path);
      ctx.sink.warn?.({ code, path: shown, message: `${shown}: ${message}` });
    },
  });
  const list = new JsonList(`{"from":${JSON.stringify(snapRefJson(a))},"to":"live","read_all":${o.readAll === true},"changes":[`);
  if (!ctx.json) await writeLine(`comparing ${snapLabel(a)} with the files on disk${p === undefined ? '' : `, ${displayPath(p)}`}${o.readAll ? ' (reading every file)' : ''}`);
  await report(ctx, list, changes);
  // Entries that could not be read were left out of the comparison: said, exit 3.
  if (warnings > 0) ctx.exitCode = 3;
}

async function report(ctx: Ctx, list: JsonList, changes: AsyncIterable<Change>): Promise<void> {
  const sum = emptySummary();
  for await (const ch of changes) {
    summarize(sum, ch);
    if (ctx.json) await list.item(changeJson(ch));
    else await writeLine(changeLine(ch));
  }
  if (ctx.json) await list.end(`],"summary":${JSON.stringify(sum)}}`);
  else await writeLine(summaryLine(sum));
}

const CODE = { added: '+', removed: '-' } as const;

function changeLine(ch: Change): string {
  const node = ch.after ?? ch.before!;
  let code: string;
  let detail = '';
  if (ch.kind !== 'modified') {
    code = CODE[ch.kind];
    if (node.type === 'file') detail = bytes(node.size);
    else if (node.type === 'symlink') detail = `-> ${displayName(node.target ?? Buffer.alloc(0))}`;
  } else if (ch.aspects.includes('type')) {
    code = 'T';
    detail = `${ch.before!.type} -> ${ch.after!.type}`;
  } else {
    code = ch.aspects.includes('content') ? 'M' : 'U';
    const parts = ch.aspects.includes('content') ? [`${bytes(ch.before!.size)} -> ${bytes(ch.after!.size)}`] : [];
    parts.push(...ch.fields.map((f) => fieldChange(f, ch.before!, ch.after!)));
    detail = parts.join(', ');
  }
  return `${code}  ${showPath(ch.path, node)}${detail ? `  ${detail}` : ''}`;
}

function fieldChange(f: Change['fields'][number], a: NonNullable<Change['before']>, b: NonNullable<Change['after']>): string {
  switch (f) {
    case 'mode':
      return `mode ${octal(a.mode)} -> ${octal(b.mode)}`;
    case 'owner':
      return `owner ${owner(a)} -> ${owner(b)}`;
    case 'mtime': {
      // Within one second, only the fraction tells the two apart.
      const frac = a.mtime.sec === b.mtime.sec ? (n: typeof a): string => `.${String(n.mtime.nsec).padStart(9, '0')}` : (): string => '';
      return `mtime ${localDateTime(mtimeDate(a))}${frac(a)} -> ${localDateTime(mtimeDate(b))}${frac(b)}`;
    }
    case 'target':
      return `target ${displayName(a.target ?? Buffer.alloc(0))} -> ${displayName(b.target ?? Buffer.alloc(0))}`;
    case 'rdev':
      return `device ${a.rdev ?? 0} -> ${b.rdev ?? 0}`;
    case 'xattrs':
      return `extended attributes ${xattrNames(a)} -> ${xattrNames(b)}`;
  }
}

function xattrNames(n: Node): string {
  return n.xattrs?.length ? n.xattrs.map((x) => displayName(x.name)).join(',') : '(none)';
}

function counted(c: DiffCounts): string {
  const parts = [
    c.files > 0 ? `${plural(c.files, 'file')} (${bytes(c.bytes)})` : '',
    c.dirs > 0 ? plural(c.dirs, 'dir') : '',
    c.others > 0 ? plural(c.others, 'other') : '',
  ].filter((x) => x !== '');
  return parts.length > 0 ? parts.join(', ') : 'nothing';
}

export function summaryLine(s: DiffSummary): string {
  const m = s.modified;
  const nothing = s.added.files + s.added.dirs + s.added.others + s.removed.files + s.removed.dirs + s.removed.others + m.content + m.metadataOnly === 0;
  if (nothing) return 'summary: no differences';
  return (
    `summary: added ${counted(s.added)}; removed ${counted(s.removed)}; ` +
    `modified ${m.content} in content (${bytes(m.bytesBefore)} -> ${bytes(m.bytesAfter)}), ${m.metadataOnly} in metadata only, ${m.type} in type`
  );
}
