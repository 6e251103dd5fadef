// `snap find PATTERN` and `snap history PATH`: searching across snapshots.
import type { Command } from 'commander';
import { shortId } from '../core/ids.js';
import { displayPath } from '../core/bytes.js';
import { compileFindPattern, findInSnapshots } from '../ops/browse/find.js';
import { history, type Version } from '../ops/browse/history.js';
import { filterSnapshots, type SnapshotFilter } from '../ops/tree/refs.js';
import type { Repository } from '../repo/repository.js';
import type { StoredSnapshot } from '../model/snapshot.js';
import { type Ctx, readRepo } from './context.js';
import { JsonList, plural, showPath, snapLabel, writeLine } from './browse-out.js';
import { bytes, localDateTime, modeString } from './format.js';
import { applyWindow, type WindowFlags } from './list-window.js';
import { mtimeDate, nodeJson, pathJson, snapRefJson, versionJson } from '../view/json.js';

type Run = (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>;
type Flags = SnapshotFilter & WindowFlags;

async function selected(repo: Repository, o: Flags): Promise<StoredSnapshot[]> {
  return applyWindow(filterSnapshots(await repo.listSnapshots(), o), o, repo.clock.now());
}

export function registerFind(cmd: Command, run: Run): void {
  cmd
    .argument('<pattern>', "glob: '*.txt' matches names at any depth, '/home/*/x' whole paths, 'src/*.ts' path ends")
    .action(async (pattern: string, o: Flags, c: Command) => run((ctx) => readRepo(ctx, (repo) => find(ctx, repo, pattern, o)), c));
}

async function find(ctx: Ctx, repo: Repository, pattern: string, o: Flags): Promise<void> {
  const fp = compileFindPattern(pattern);
  const snaps = await selected(repo, o);
  const list = new JsonList('[');
  let found = 0;
  let inSnaps = 0;
  for await (const hit of findInSnapshots(repo, snaps, fp)) {
    found += hit.matches.length;
    inSnaps++;
    if (ctx.json) {
      await list.item({ snapshot: snapRefJson(hit.snapshot), matches: hit.matches.map((m) => ({ ...pathJson(m.path), ...nodeJson(m.node) })) });
      continue;
    }
    await writeLine(`snapshot ${snapLabel(hit.snapshot)} ${displayPath(hit.snapshot.hostname)} ${hit.snapshot.paths.map(displayPath).join(' ')}`);
    for (const m of hit.matches) {
      await writeLine(`  ${modeString(m.node)} ${bytes(m.node.size).padStart(10)}  ${localDateTime(mtimeDate(m.node))}  ${showPath(m.path, m.node)}`);
    }
  }
  if (ctx.json) await list.end(']');
  else await writeLine(`${plural(found, 'match', 'matches')} in ${inSnaps} of ${plural(snaps.length, 'snapshot')}`);
}

export function registerHistory(cmd: Command, run: Run): void {
  cmd
    .argument('<path>', 'a file or directory (absolute, or relative to a source path)')
    .action(async (p: string, o: Flags, c: Command) => run((ctx) => readRepo(ctx, (repo) => showHistory(ctx, repo, p, o)), c));
}

async function showHistory(ctx: Ctx, repo: Repository, p: string, o: Flags): Promise<void> {
  const snaps = await selected(repo, o);
  const list = new JsonList(`{"path":${JSON.stringify(p)},"versions":[`);
  let n = 0;
  for await (const v of history(repo, snaps, p)) {
    n++;
    if (ctx.json) await list.item(versionJson(v));
    else await writeLine(versionLine(v));
  }
  if (ctx.json) await list.end(']}');
  else await writeLine(`${plural(n, 'version')} of ${displayPath(p)} in ${plural(snaps.length, 'snapshot')} searched`);
}

function versionLine(v: Version): string {
  const head = `${v.event.padEnd(8)}  ${snapLabel(v.snapshot)}`;
  const span = v.seen > 1 ? `  (${v.seen} snapshots, until ${shortId(v.last.id)})` : '';
  if (!v.node) return head + span;
  const what = v.node.type === 'file' ? bytes(v.node.size) : v.node.type;
  const changed = v.aspects.length > 0 ? `  [${v.aspects.map((a) => (a === 'metadata' ? v.fields.join(',') : a)).join(', ')}]` : '';
  return `${head}  ${what.padStart(10)}  mtime ${localDateTime(mtimeDate(v.node))}${changed}${span}`;
}

