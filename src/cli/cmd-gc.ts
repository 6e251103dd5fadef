// `snap gc`: the command, and the rendering of its plan and result (also used by forget --gc). The work is in ops/maintain/gc.ts.
import type { Command } from 'commander';
import { SnapError } from '../core/errors.js';
import type { RepoLock } from '../repo/lock.js';
import type { Repository } from '../repo/repository.js';
import { executeGc, type GcPlan, type GcResult, planGc } from '../ops/maintain/gc.js';
import { parsePercent } from '../ops/maintain/gc-plan.js';
import { type Ctx, withRepo } from './context.js';
import { RESERVE_BYTES } from '../repo/reserve.js';
import { bytes } from './format.js';

export interface GcFlags {
  dryRun?: boolean;
  maxUnused: string;
  /** Snapshots a dry-run forget would remove: the plan leaves them out. */
  without?: string[];
}

export function parseMaxUnused(s: string): number {
  const v = parsePercent(s);
  if (v === undefined) throw new SnapError('SNAP_USAGE', `--max-unused takes a percentage from 0% to 100% (e.g. 5%), not '${s}'`);
  return v;
}

export function planJson(p: GcPlan): Record<string, unknown> {
  return {
    snapshots: p.snapshotIds.size,
    objects_used: p.marks.trees.size + p.marks.blobs.size,
    objects_indexed: p.objectsBefore,
    packs: p.packsBefore,
    size: p.sizeBefore,
    max_unused: p.maxUnused,
    objects_to_free: p.totals.objectsToFree,
    bytes_to_free: p.totals.bytesToFree,
    bytes_to_copy: p.totals.bytesToCopy,
    pack_actions: p.totals.packs,
    packs_changed: p.decisions
      .filter((d) => d.action !== 'keep')
      .map((d) => ({ id: d.usage.id, action: d.action, size: d.usage.size, used_bytes: d.usage.usedBytes, unused_bytes: d.usage.unusedBytes })),
  };
}

export function planText(p: GcPlan): string[] {
  const a = p.totals.packs;
  const lines = [
    `${p.snapshotIds.size} snapshot(s) use ${p.marks.trees.size + p.marks.blobs.size} objects; the index holds ${p.objectsBefore} in ${p.packsBefore} pack(s) (${bytes(p.sizeBefore)})`,
    `plan: delete ${a.delete} unused pack(s), rewrite ${a.rewrite} partly used pack(s) (copying ${bytes(p.totals.bytesToCopy)}), keep ${a.keep}` +
      (a.reindex ? `, index ${a.reindex} unindexed pack(s) that hold needed objects` : '') +
      (a.unindex ? `, drop ${a.unindex} missing unused pack(s) from the index` : ''),
    `      frees ${p.totals.objectsToFree} objects, about ${bytes(p.totals.bytesToFree)}`,
  ];
  return lines;
}

export function resultJson(r: GcResult): Record<string, unknown> {
  return {
    objects_freed: r.objectsFreed,
    packs_deleted: r.packsDeleted,
    packs_rewritten: r.packsRewritten,
    packs_written: r.packsWritten,
    packs_reindexed: r.packsReindexed,
    bytes_freed: r.bytesFreed,
    size_before: r.sizeBefore,
    size_after: r.sizeAfter,
    packs_after: r.packsAfter,
    temp_files_removed: r.tempFilesRemoved,
    files_cache_dropped: r.filesCacheDropped ?? 0,
    damaged_packs_kept: r.damagedKept,
    index_files_written: r.indexFilesWritten,
    index_files_removed: r.indexFilesRemoved,
    reserve: r.reserve,
  };
}

export function resultText(r: GcResult): string {
  return (
    `gc: freed ${r.objectsFreed} objects; deleted ${r.packsDeleted} pack(s), rewrote ${r.packsRewritten} into ${r.packsWritten} new pack(s)` +
    (r.packsReindexed ? `, indexed ${r.packsReindexed}` : '') +
    (r.tempFilesRemoved ? `, removed ${r.tempFilesRemoved} temporary file(s)` : '') +
    (r.indexFilesRemoved ? `, compacted ${r.indexFilesRemoved} index file(s) into ${r.indexFilesWritten}` : '') +
    `\n    repository size ${bytes(r.sizeBefore)} -> ${bytes(r.sizeAfter)} (freed ${bytes(r.bytesFreed)})` +
    (r.damagedKept.length ? `\n    ${r.damagedKept.length} pack(s) with damaged objects kept as they are: run 'snap check --read-data', then 'snap repair --read-data'` : '') +
    (r.reserve === 'made' ? `\n    wrote the repository's reserve for a full disk again (${RESERVE_BYTES / 1024 / 1024} MiB)` : '') +
    (r.reserve === 'no-room' ? `\n    no reserve for a full disk: less than ${(2 * RESERVE_BYTES) / 1024 / 1024} MiB free on the repository's disk ('snap gc' writes it once there is room)` : '')
  );
}

/** Plan and (unless dry-run) execute; returns the JSON form for callers that embed it (forget --gc). */
export async function runGc(ctx: Ctx, repo: Repository, lock: RepoLock | undefined, o: GcFlags): Promise<Record<string, unknown>> {
  if (!o.dryRun) repo.assertMayDelete('gc (it deletes packs)');
  const opts = {
    maxUnused: parseMaxUnused(o.maxUnused),
    sink: ctx.sink,
    beforeDelete: lock ? () => lock.assertHeld() : undefined,
    excludeSnapshots: o.without ? new Set(o.without) : undefined,
    signal: ctx.signal,
    exclusive: lock?.exclusive === true,
  };
  const plan = await planGc(repo, opts);
  if (!ctx.json) for (const l of planText(plan)) ctx.out(l);
  if (o.dryRun) {
    if (!ctx.json) ctx.out('dry run: nothing changed');
    return { dry_run: true, plan: planJson(plan) };
  }
  const r = await executeGc(repo, plan, opts);
  if (!ctx.json) ctx.out(resultText(r));
  if (r.damagedKept.length > 0) ctx.exitCode = 1;
  return { dry_run: false, plan: planJson(plan), result: resultJson(r) };
}

type Run = (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>;

export function registerGc(program: Command, run: Run): void {
  program
    .command('gc')
    .description('free the space of data no snapshot uses (plan, then execute)')
    .option('--dry-run', 'print the plan; change nothing')
    .option('--max-unused <percent>', 'rewrite a pack when more than this share of it is unused', '5%')
    .action(async (o: GcFlags, cmd: Command) =>
      run(
        (ctx) =>
          withRepo(
            ctx,
            async (repo, lock) => {
              const r = await runGc(ctx, repo, lock, o);
              if (ctx.json) ctx.out(JSON.stringify(r, null, 2));
            },
            'exclusive',
            { freesSpace: o.dryRun !== true },
          ),
        cmd,
      ),
    );
}
