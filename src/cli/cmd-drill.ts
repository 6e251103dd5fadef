// `snap drill [REF]`: a restore drill (docs/automation.md, "Restore drills"): restore a random
// sample of a snapshot's files (or everything) into a sandbox, verify every byte against the
// snapshot's ids, optionally compare with the unchanged source files, report, clean up. Exit 0
// when it passed, 1 with SNAP_DRILL_FAILED when a file failed, 3 when it passed with warnings.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Command } from 'commander';
import { SnapError, errnoCode, fromSystemError } from '../core/errors.js';
import { displayName, displayPath, fsPath } from '../core/bytes.js';
import { shortId } from '../core/ids.js';
import { type DrillEntry, type DrillReport, drillSnapshot, removeSandbox } from '../ops/maintain/drill.js';
import type { SnapshotFilter } from '../ops/tree/refs.js';
import { type Ctx, withRepo } from './context.js';
import { bytes } from './format.js';
import { filterOptions, resolveSnapshot } from './cmd-list.js';
import { pathJson, plural, snapLabel, snapRefJson } from './browse-out.js';

/** Files a drill picks when neither --sample nor --full is given. */
export const DEFAULT_SAMPLE = 20;

interface DrillFlags extends SnapshotFilter {
  sample?: string;
  full?: boolean;
  target?: string;
  keep?: boolean;
  againstSource?: boolean;
}

export function registerDrill(program: Command, run: (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>): void {
  filterOptions(program.command('drill').description('restore drill: restore a random sample of files (or everything) into a sandbox and verify every byte'))
    .argument('[ref]', "snapshot: id prefix, 'latest' or a date", 'latest')
    .option('--sample <n>', `restore and verify this many files picked at random (default ${DEFAULT_SAMPLE})`)
    .option('--full', 'restore and verify the whole snapshot')
    .option('--target <dir>', 'restore into this folder (absent or empty) instead of a fresh temporary one')
    .option('--keep', 'leave the restored files in the sandbox for inspection (otherwise they are removed)')
    .option('--against-source', 'also compare each restored file byte for byte with the file on disk at its path, when that has not changed since the snapshot')
    .action(async (ref: string, o: DrillFlags, cmd: Command) => run((ctx) => drill(ctx, ref, o), cmd));
}

function sampleSize(o: DrillFlags): number | undefined {
  if (o.full && o.sample !== undefined) throw new SnapError('SNAP_USAGE', '--sample and --full exclude each other');
  if (o.full) return undefined;
  if (o.sample === undefined) return DEFAULT_SAMPLE;
  if (!/^\d+$/.test(o.sample) || Number(o.sample) < 1 || !Number.isSafeInteger(Number(o.sample))) {
    throw new SnapError('SNAP_USAGE', `--sample must be a number of files, 1 or more (not '${o.sample}')`);
  }
  return Number(o.sample);
}

/** The sandbox: the --target folder (made when absent, refused when not empty) or a fresh private temporary one. */
function makeSandbox(ctx: Ctx, target: string | undefined): { dir: string; made: boolean } {
  if (target === undefined) return { dir: fs.mkdtempSync(path.join(os.tmpdir(), 'snap-drill-')), made: true };
  const dir = path.resolve(ctx.cwd, target);
  const p = fsPath(dir);
  try {
    const names = fs.readdirSync(p);
    if (names.length > 0) throw new SnapError('SNAP_EXISTS', `--target ${displayPath(dir)} is not empty: a drill restores into an empty or absent folder`);
    return { dir, made: false };
  } catch (e) {
    if (e instanceof SnapError) throw e;
    if (errnoCode(e) !== 'ENOENT') throw fromSystemError(e, `drill target ${displayPath(dir)}`);
  }
  try {
    fs.mkdirSync(p, { mode: 0o700 });
  } catch (e) {
    throw fromSystemError(e, `drill target ${displayPath(dir)}`);
  }
  return { dir, made: true };
}

async function drill(ctx: Ctx, ref: string, o: DrillFlags): Promise<void> {
  const sample = sampleSize(o);
  const { snap, r, sandbox } = await withRepo(ctx, async (repo) => {
    const snap = await resolveSnapshot(ctx, repo, ref, o);
    const sandbox = makeSandbox(ctx, o.target);
    try {
      const r = await drillSnapshot(repo, snap, { sample, sandbox: sandbox.dir, againstSource: o.againstSource === true, hostname: ctx.host.hostname, asRoot: ctx.host.uid === 0, sink: ctx.sink, signal: ctx.signal });
      ctx.drilled = {
        snapshot: snap.id, full: r.full, filesVerified: r.filesVerified, bytesVerified: r.bytesVerified, failed: r.failedCount,
        ...(r.source ? { sourceCompared: r.source.compared, sourceSkipped: r.source.skippedCount } : {}),
      };
      return { snap, r, sandbox };
    } finally {
      // Removed whatever happened (a failure, Ctrl-C), unless asked to keep it.
      if (!o.keep) {
        try {
          removeSandbox(sandbox.dir, !sandbox.made);
        } catch (e) {
          ctx.sink.warn?.({ code: errnoCode(e) ?? 'SNAP_IO', path: displayPath(sandbox.dir), message: `the sandbox ${displayPath(sandbox.dir)} could not be removed: ${(e as Error).message}` });
        }
      }
    }
  });
  ctx.sink.done();
  const kept = o.keep === true;
  if (ctx.json) ctx.out(JSON.stringify(reportJson(r, snap, sample, o.target !== undefined || kept ? sandbox.dir : null, kept)));
  else for (const line of reportLines(r, snapLabel(snap), sample, o.target !== undefined ? sandbox.dir : undefined, kept ? sandbox.dir : undefined)) ctx.out(line);
  if (r.failedCount > 0) {
    const first = r.failed[0]!;
    throw new SnapError('SNAP_DRILL_FAILED', `drill of snapshot ${shortId(snap.id)} failed: ${plural(r.failedCount, 'problem')}, the first: ${entryText(first)}`);
  }
  if (r.warnings > 0) ctx.exitCode = 3;
}

const entryText = (e: DrillEntry): string => (e.path ? `${displayName(e.path)}: ${e.reason}` : e.reason);

const entryJson = (e: DrillEntry): Record<string, unknown> => ({ ...(e.path ? pathJson(e.path) : { path: null }), reason: e.reason });

function reportJson(r: DrillReport, snap: Parameters<typeof snapRefJson>[0], sample: number | undefined, sandbox: string | null, kept: boolean): Record<string, unknown> {
  return {
    ok: r.failedCount === 0,
    snapshot: snapRefJson(snap),
    full: r.full,
    sample: sample ?? null,
    sandbox,
    kept,
    files_in_snapshot: r.filesInSnapshot,
    files_picked: r.filesPicked,
    files_verified: r.filesVerified,
    bytes_verified: r.bytesVerified,
    symlinks_verified: r.symlinksVerified,
    failed: r.failed.map(entryJson),
    failed_count: r.failedCount,
    source: r.source ? { compared: r.source.compared, bytes: r.source.bytes, skipped: r.source.skipped.map(entryJson), skipped_count: r.source.skippedCount } : null,
    warnings: r.warnings,
  };
}

function reportLines(r: DrillReport, label: string, sample: number | undefined, target: string | undefined, kept: string | undefined): string[] {
  const where = target !== undefined ? displayPath(target) : 'a temporary sandbox';
  const what = r.full ? `all ${plural(r.filesPicked, 'file')}` : `a random sample of ${r.filesPicked} of ${plural(r.filesInSnapshot, 'file')}`;
  const out = [`drill of snapshot ${label}: restored ${what} into ${where}${sample !== undefined && r.full && r.filesPicked < sample ? ` (the snapshot holds fewer than ${sample})` : ''}`];
  out.push(`verified ${plural(r.filesVerified, 'file')} (${bytes(r.bytesVerified)})${r.symlinksVerified > 0 ? ` and ${plural(r.symlinksVerified, 'symlink')}` : ''} against the snapshot's ids`);
  if (r.source) {
    out.push(`compared ${plural(r.source.compared, 'file')} (${bytes(r.source.bytes)}) with their unchanged source files; skipped ${r.source.skippedCount} that changed since the snapshot or are gone`);
    for (const s of r.source.skipped) out.push(`  skipped ${entryText(s)}`);
    if (r.source.skippedCount > r.source.skipped.length) out.push(`  ... and ${r.source.skippedCount - r.source.skipped.length} more`);
  }
  for (const f of r.failed) out.push(`FAILED ${entryText(f)}`);
  if (r.failedCount > r.failed.length) out.push(`... and ${r.failedCount - r.failed.length} more failures`);
  if (kept !== undefined) out.push(`the restored files are kept in ${displayPath(kept)}`);
  out.push(r.failedCount === 0 ? `drill passed${r.warnings > 0 ? ` with ${plural(r.warnings, 'warning')} (see above)` : ''}` : `drill FAILED: ${plural(r.failedCount, 'problem')}`);
  return out;
}
