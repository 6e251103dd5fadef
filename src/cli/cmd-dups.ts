// `snap dups [REF] [PATH]`: groups of identical files inside one snapshot, largest waste first.
import type { Command } from 'commander';
import { SnapError } from '../core/errors.js';
import { displayPath } from '../core/bytes.js';
import { findDups } from '../ops/browse/dups.js';
import { locate } from '../ops/tree/navigate.js';
import type { SnapshotFilter } from '../ops/tree/refs.js';
import type { Repository } from '../repo/repository.js';
import { type Ctx, readRepo } from './context.js';
import { resolveSnapshot } from './snapshot-args.js';
import { plural, showPath, snapLabel } from './browse-out.js';
import { bytes } from './format.js';
import { pathJson, snapRefJson } from '../view/json.js';

type Run = (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>;
type Flags = SnapshotFilter & { minSize?: string };

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4 };

/** `4096`, `64K`, `1.5 MiB` (binary units). */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new SnapError('SNAP_USAGE', `not a size: '${text}' (examples: 4096, 64K, 1.5MiB)`);
  return Math.round(Number(m[1]) * unit);
}

export function registerDups(cmd: Command, run: Run): void {
  cmd
    .argument('[ref]', "snapshot: id prefix, 'latest' or a date", 'latest')
    .argument('[path]', 'only below this directory (absolute, or relative to a source path)')
    .option('--min-size <size>', 'ignore files smaller than this (e.g. 4K, 1MiB)')
    .action(async (ref: string, p: string | undefined, o: Flags, c: Command) => run((ctx) => readRepo(ctx, (repo) => dups(ctx, repo, ref, p, o)), c));
}

async function dups(ctx: Ctx, repo: Repository, ref: string, p: string | undefined, o: Flags): Promise<void> {
  const minSize = o.minSize === undefined ? undefined : parseSize(o.minSize);
  const snap = await resolveSnapshot(ctx, repo, ref, o);
  let tree = snap.tree;
  let dir: Buffer = Buffer.from('/');
  if (p !== undefined) {
    const at = await locate(repo, snap, p);
    if (at.node && at.node.type !== 'dir') throw new SnapError('SNAP_USAGE', `${displayPath(p)} is a ${at.node.type}, not a directory`);
    tree = at.tree!;
    dir = at.path.length === 0 ? dir : at.path;
  }
  const r = await findDups(repo, tree, dir, { minSize, signal: ctx.signal });
  if (ctx.json) {
    const groups = r.groups.map((g) => ({ size: g.size, chunks: g.chunks, wasted: g.wasted, copies: g.copies.map((c) => ({ paths: c.paths.map(pathJson) })) }));
    return ctx.out(JSON.stringify({ snapshot: snapRefJson(snap), groups, duplicate_files: r.duplicateFiles, wasted: r.wasted, files_scanned: r.filesScanned }, null, 2));
  }
  ctx.out(`snapshot ${snapLabel(snap)}: ${plural(r.filesScanned, 'file')} scanned`);
  for (const g of r.groups) {
    ctx.out(`\n${bytes(g.wasted)} in duplicates: ${g.copies.length} copies of ${bytes(g.size)}`);
    for (const c of g.copies) ctx.out(`  ${c.paths.map((x) => showPath(x)).join('  =  ')}${c.paths.length > 1 ? '  (hard links)' : ''}`);
  }
  if (r.groups.length > 0) ctx.out('');
  ctx.out(
    r.groups.length === 0
      ? 'no duplicate files'
      : `${plural(r.groups.length, 'group')}, ${plural(r.duplicateFiles, 'duplicate file')}; without deduplication they would take ${bytes(r.wasted)}`,
  );
}
