// `snap forget`: by reference or by retention policy (docs/retention.md), optionally followed by gc.
import { displayPath } from '../core/bytes.js';
import type { Command } from 'commander';
import { SnapError } from '../core/errors.js';
import { shortId } from '../core/ids.js';
import { parseDuration, type Duration } from '../model/duration.js';
import { type GroupField, isEmptyPolicy, type RetentionPolicy, UNLIMITED } from '../model/retention.js';
import { filterSnapshots, type SnapshotFilter } from '../ops/tree/refs.js';
import { type ForgetDecision, type ForgetGroup, planForget, removeSnapshots } from '../ops/maintain/forget.js';
import { type Ctx, withRepo } from './context.js';
import { filterOptions, resolveSnapshot } from './snapshot-args.js';
import { runGc } from './cmd-gc.js';
import { localDateTime, table } from './format.js';
import { collect } from './parse.js';
import { isoLocal } from '../view/json.js';

/** The retention flags (`--keep-*`), shared by forget and watch. */
export interface KeepFlags {
  keepLast?: string;
  keepHourly?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepYearly?: string;
  keepWithin?: string;
  keepWithinHourly?: string;
  keepWithinDaily?: string;
  keepWithinWeekly?: string;
  keepWithinMonthly?: string;
  keepWithinYearly?: string;
  keepTag: string[];
}

interface ForgetFlags extends SnapshotFilter, KeepFlags {
  groupBy: string;
  dryRun?: boolean;
  gc?: boolean;
  maxUnused: string;
}

export function registerForget(program: Command, run: (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>): void {
  const c = filterOptions(program.command('forget').description('remove snapshots, named or chosen by a retention policy (see docs/retention.md)'))
    .argument('[ref...]', "snapshots to remove: id prefix, 'latest' or a date")
    .option('--keep-last <n>', "keep the n newest snapshots ('unlimited' for all)")
    .option('--keep-hourly <n>', 'keep the newest snapshot of each of the n newest hours with snapshots')
    .option('--keep-daily <n>', 'the same per day')
    .option('--keep-weekly <n>', 'the same per ISO week')
    .option('--keep-monthly <n>', 'the same per month')
    .option('--keep-yearly <n>', 'the same per year')
    .option('--keep-within <duration>', 'keep every snapshot newer than this before the newest (e.g. 30d, 1y6m)')
    .option('--keep-within-hourly <duration>', 'keep one snapshot per hour within this duration')
    .option('--keep-within-daily <duration>', 'keep one snapshot per day within this duration')
    .option('--keep-within-weekly <duration>', 'keep one snapshot per week within this duration')
    .option('--keep-within-monthly <duration>', 'keep one snapshot per month within this duration')
    .option('--keep-within-yearly <duration>', 'keep one snapshot per year within this duration')
    .option('--keep-tag <tags>', "keep snapshots with all these comma-separated tags (repeatable; '' = untagged)", collect, [])
    .option('--group-by <fields>', 'apply the policy per group of host, paths, tags (comma-separated; empty = one group)', 'host,paths')
    .option('--dry-run', 'show what would be kept and removed, and why; change nothing')
    .option('--gc', 'run gc afterwards to free the data only the removed snapshots used')
    .option('--max-unused <percent>', 'with --gc: see snap gc', '5%');
  c.action(async (refs: string[], o: ForgetFlags, cmd: Command) => run((ctx) => forget(ctx, refs, o), cmd));
}

function count(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (v === 'unlimited') return UNLIMITED;
  if (!/^(0|[1-9]\d{0,8}|-1)$/.test(v)) throw new SnapError('SNAP_USAGE', `${flag} takes a whole number or 'unlimited', not '${v}'`);
  return Number(v);
}

function dur(v: string | undefined): Duration | undefined {
  return v === undefined ? undefined : parseDuration(v);
}

export function policyFromFlags(o: KeepFlags): RetentionPolicy {
  return {
    last: count(o.keepLast, '--keep-last'),
    hourly: count(o.keepHourly, '--keep-hourly'),
    daily: count(o.keepDaily, '--keep-daily'),
    weekly: count(o.keepWeekly, '--keep-weekly'),
    monthly: count(o.keepMonthly, '--keep-monthly'),
    yearly: count(o.keepYearly, '--keep-yearly'),
    within: dur(o.keepWithin),
    withinHourly: dur(o.keepWithinHourly),
    withinDaily: dur(o.keepWithinDaily),
    withinWeekly: dur(o.keepWithinWeekly),
    withinMonthly: dur(o.keepWithinMonthly),
    withinYearly: dur(o.keepWithinYearly),
    tags: o.keepTag.length ? o.keepTag.map((t) => t.split(',').map((x) => x.trim())) : undefined,
  };
}

function groupBy(s: string): GroupField[] {
  const fields = s.split(',').map((x) => x.trim()).filter((x) => x !== '');
  for (const f of fields) {
    if (f !== 'host' && f !== 'paths' && f !== 'tags') throw new SnapError('SNAP_USAGE', `--group-by takes host, paths and tags, not '${f}'`);
  }
  return fields as GroupField[];
}

const decisionJson = (d: ForgetDecision): Record<string, unknown> => ({
  id: d.snapshot.id,
  short_id: shortId(d.snapshot.id),
  time: isoLocal(new Date(d.snapshot.time)),
  hostname: d.snapshot.hostname,
  paths: d.snapshot.paths,
  tags: d.snapshot.tags,
  reasons: d.reasons,
});

function groupText(g: ForgetGroup): string {
  const rows = [['', 'ID', 'Time', 'Host', 'Tags', 'Reasons']];
  for (const d of g.keep) rows.push(['keep', shortId(d.snapshot.id), localDateTime(new Date(d.snapshot.time)), displayPath(d.snapshot.hostname), d.snapshot.tags.map(displayPath).join(','), d.reasons.join(', ')]);
  for (const d of g.remove) rows.push(['remove', shortId(d.snapshot.id), localDateTime(new Date(d.snapshot.time)), displayPath(d.snapshot.hostname), d.snapshot.tags.map(displayPath).join(','), '']);
  return `${g.key ? `group ${g.key}` : 'all snapshots'}: keep ${g.keep.length}, remove ${g.remove.length}\n${table(rows)
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n')}`;
}

async function forget(ctx: Ctx, refs: string[], o: ForgetFlags): Promise<void> {
  const policy = policyFromFlags(o);
  const byPolicy = !isEmptyPolicy(policy);
  const groups = groupBy(o.groupBy);
  if (refs.length > 0 && byPolicy) throw new SnapError('SNAP_USAGE', 'give either snapshot references or --keep-* options, not both');
  if (refs.length === 0 && !byPolicy) {
    throw new SnapError('SNAP_USAGE', "name the snapshots to forget, or give a policy (--keep-last, --keep-daily, ...); an empty policy would remove everything, so it is refused");
  }
  await withRepo(
    ctx,
    async (repo, lock) => {
      if (!o.dryRun) repo.assertMayDelete('forget (it deletes snapshot records)');
      let groupsOut: ForgetGroup[] = [];
      let removeIds: string[];
      if (byPolicy) {
        const snaps = filterSnapshots(await repo.listSnapshots(), o);
        groupsOut = planForget(snaps, { policy, groupBy: groups, now: repo.clock.now() });
        removeIds = groupsOut.flatMap((g) => g.remove.map((d) => d.snapshot.id));
        if (!ctx.json) for (const g of groupsOut) ctx.out(groupText(g));
      } else {
        const ids = new Set<string>();
        for (const r of refs) ids.add((await resolveSnapshot(ctx, repo, r, o)).id);
        removeIds = [...ids];
      }
      const json: Record<string, unknown> = {
        dry_run: o.dryRun === true,
        groups: groupsOut.map((g) => ({ group: g.key, keep: g.keep.map(decisionJson), remove: g.remove.map(decisionJson) })),
        removed: o.dryRun ? [] : removeIds,
        would_remove: o.dryRun ? removeIds : undefined,
      };
      if (o.dryRun) {
        if (!ctx.json) ctx.out(`dry run: would remove ${removeIds.length} snapshot(s)${byPolicy ? '' : `: ${removeIds.map(shortId).join(' ')}`}; nothing changed`);
      } else {
        const n = await removeSnapshots(repo, removeIds);
        if (!ctx.json) {
          ctx.out(`removed ${n} snapshot(s)${byPolicy || n === 0 ? '' : `: ${removeIds.map(shortId).join(' ')}`}`);
          if (!o.gc && n > 0) ctx.out("run 'snap gc' to free the data only they used");
        }
      }
      if (o.gc) json.gc = await runGc(ctx, repo, lock, { dryRun: o.dryRun, maxUnused: o.maxUnused, without: o.dryRun ? removeIds : undefined });
      if (ctx.json) ctx.out(JSON.stringify(json, null, 2));
    },
    'exclusive',
    { freesSpace: o.dryRun !== true },
  );
}
