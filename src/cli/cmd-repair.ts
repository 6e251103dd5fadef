// `snap repair`: the CLI side (rendering). The work is in ops/maintain/repair.ts.
import type { Command } from 'commander';
import { shortId } from '../core/ids.js';
import { repairIncomplete, repairRepository, type RepairReport } from '../ops/maintain/repair.js';
import { type Ctx, withRepo } from './context.js';
import { bytes, localDateTime } from './format.js';
import { VERSION } from './version.js';

interface RepairFlags {
  dryRun?: boolean;
  forget?: boolean;
  readData?: boolean;
}

export function registerRepair(program: Command, run: (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>): void {
  program
    .command('repair')
    .description('rebuild the index, move damaged packs aside and write snapshots that leave out damaged files')
    .option('--read-data', 'verify every object, not only the structure (reads the whole repository)')
    .option('--forget', 'remove each damaged snapshot once its repaired replacement is saved')
    .option('--dry-run', 'report what would be done; change nothing')
    .action(async (o: RepairFlags, cmd: Command) => run((ctx) => repair(ctx, o), cmd));
}

async function repair(ctx: Ctx, o: RepairFlags): Promise<void> {
  const r = await withRepo(
    ctx,
    (repo, lock) => {
      // Repair moves damaged packs and records to quarantine/ (a delete) and, with --forget, deletes originals.
      if (!o.dryRun) repo.assertMayDelete(o.forget ? 'repair --forget' : 'repair (it moves damaged data to quarantine/)');
      return repairRepository(repo, {
        sink: ctx.sink,
        dryRun: o.dryRun,
        forget: o.forget,
        readData: o.readData,
        program: `snap ${VERSION}`,
        beforeDelete: lock ? () => lock.assertHeld() : undefined,
        signal: ctx.signal,
      });
    },
    'exclusive',
  );
  ctx.sink.done();
  if (ctx.json) ctx.out(JSON.stringify(repairJson(r), null, 2));
  else for (const l of repairText(r, o)) ctx.out(l);
  if (repairIncomplete(r)) ctx.exitCode = 1;
}

function repairText(r: RepairReport, o: RepairFlags): string[] {
  const out: string[] = [];
  if (r.index) out.push(`index rebuilt: ${r.index.packs} packs, ${r.index.objects} objects, ${r.index.snapshots} snapshots`);
  for (const f of r.indexFiles?.damaged ?? []) out.push(`index file ${f} is damaged; ${r.dryRun ? 'would be rewritten' : 'rewritten'} from the pack headers`);
  if (r.indexFiles && r.indexFiles.written + r.indexFiles.removed > 0) out.push(`index files: ${r.indexFiles.written} written, ${r.indexFiles.removed} removed`);
  const nothing = r.packs.length === 0 && r.snapshots.length === 0 && r.records.length === 0 && r.logRecords.length === 0 && (r.indexFiles?.damaged.length ?? 0) === 0;
  if (nothing) {
    out.push(`no damage found${o.readData ? '' : ' in the structure (add --read-data to verify every object)'}; nothing to repair`);
    return out;
  }
  const would = r.dryRun ? 'would move' : 'moved';
  for (const p of r.packs) {
    out.push(`pack ${shortId(p.pack)} (${bytes(p.size)}): ${p.reason}`);
    out.push(`    ${p.salvaged} intact object(s) ${r.dryRun ? 'would be copied' : 'copied'} to new packs, ${p.lost} lost; ${p.quarantined || r.dryRun ? `${would} to quarantine/` : 'left in place (unreadable)'}`);
  }
  for (const l of r.logRecords) out.push(`${l.reason}; ${would} to quarantine/`);
  for (const rec of r.records) out.push(`snapshot record ${shortId(rec.id)} is damaged (${rec.reason}); ${rec.quarantined || r.dryRun ? `${would} to quarantine/` : 'left in place'}`);
  for (const s of r.snapshots) {
    const head = `snapshot ${shortId(s.original)} (${localDateTime(new Date(s.time))}, ${s.hostname}): ${s.removedCount} damaged path(s)`;
    if (s.unrepairable) out.push(`${head}; cannot be repaired: ${s.unrepairable}`);
    else {
      const verb = s.earlier ? 'already replaced by' : r.dryRun ? 'would be replaced by' : 'replaced by';
      const fate = s.forgotten ? '; the damaged original is removed' : r.dryRun && o.forget ? '; the damaged original would be removed' : '; the damaged original is kept';
      out.push(`${head}; ${verb} ${shortId(s.replacement!)} (tag 'repaired')${fate}`);
    }
    for (const p of s.removed) out.push(`    left out: ${p}`);
    if (s.removedCount > s.removed.length) out.push(`    ... and ${s.removedCount - s.removed.length} more`);
  }
  if (r.dryRun) out.push('dry run: nothing changed');
  else if (!o.forget && r.snapshots.some((s) => s.replacement)) {
    out.push("the damaged originals are kept (check still reports them): 'snap repair --forget' or 'snap forget ID' removes them");
  }
  return out;
}

function repairJson(r: RepairReport): Record<string, unknown> {
  return {
    dry_run: r.dryRun,
    index: r.index ?? null,
    problems_found: r.problemsFound,
    packs: r.packs.map((p) => ({ pack: p.pack, size: p.size, reason: p.reason, salvaged: p.salvaged, lost: p.lost, quarantined: p.quarantined })),
    records: r.records,
    log_records: r.logRecords,
    index_files: r.indexFiles ?? null,
    snapshots: r.snapshots.map((s) => ({
      original: s.original,
      time: s.time,
      hostname: s.hostname,
      removed: s.removed,
      removed_count: s.removedCount,
      replacement: s.replacement ?? null,
      forgotten: s.forgotten,
      earlier: s.earlier === true,
      unrepairable: s.unrepairable ?? null,
    })),
  };
}
