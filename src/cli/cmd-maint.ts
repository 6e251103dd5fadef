// Maintenance commands: `snap forget` (cmd-forget.ts), `snap gc`, `snap check`, `snap stats`
// (`snap repair` is in cmd-repair.ts).
import type { Command } from 'commander';
import { shortId } from '../core/ids.js';
import { checkRepository, type CheckProblem, type CheckReport } from '../ops/maintain/check.js';
import { describeSubset, parseSubset, type Subset } from '../ops/maintain/check-subset.js';
import { repoStats, snapshotStats } from '../ops/maintain/stats.js';
import { type Ctx, withRepo } from './context.js';
import { registerForget } from './cmd-forget.js';
import { runGc, type GcFlags } from './cmd-gc.js';
import { filterOptions, resolveSnapshot } from './cmd-list.js';
import { filterSnapshots, type SnapshotFilter } from '../ops/tree/refs.js';
import { displayPath } from '../core/bytes.js';
import { bytes, localDateTime } from './format.js';
import { plural } from './browse-out.js';

type Run = (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>;

export function registerMaint(program: Command, run: Run): void {
  registerForget(program, run);

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
          ),
        cmd,
      ),
    );

  program
    .command('check')
    .description('verify the repository: structure always, stored data with --read-data')
    .option('--read-data', 'read every pack and verify every object')
    .option('--read-data-subset <part>', 'read a deterministic part of the packs: n/m (e.g. 1/5) or a percentage (e.g. 10%)')
    .action(async (o: { readData?: boolean; readDataSubset?: string }, cmd: Command) => run((ctx) => check(ctx, o), cmd));

  filterOptions(program.command('stats').description('repository totals, or one snapshot with REF: sizes, deduplication, compression'))
    .argument('[ref]', "snapshot: id prefix, 'latest' or a date")
    .action(async (ref: string | undefined, o: SnapshotFilter, cmd: Command) => run((ctx) => stats(ctx, ref, o), cmd));
}

async function check(ctx: Ctx, o: { readData?: boolean; readDataSubset?: string }): Promise<void> {
  const subset: Subset | undefined = o.readDataSubset ? parseSubset(o.readDataSubset) : o.readData ? { kind: 'all' } : undefined;
  const onProblem = ctx.json ? undefined : (p: CheckProblem) => ctx.out(`damage: ${p.message}`);
  // An encrypted repository's config was authenticated when it opened (else the open was refused),
  // unless its key file predates that (docs/format.md, "Authenticated config"): said here.
  let configAuthenticated: boolean | null = null;
  const r = await withRepo(ctx, (repo) => {
    configAuthenticated = repo.unlocked ? repo.unlocked.authenticated : null;
    return checkRepository(repo, { readData: subset, sink: ctx.sink, onProblem, signal: ctx.signal });
  });
  ctx.sink.done();
  if (ctx.json) ctx.out(JSON.stringify({ ...checkJson(r, subset), config_authenticated: configAuthenticated }, null, 2));
  else {
    if (configAuthenticated === false) {
      ctx.out(
        "note: the config is not authenticated: the key file this password opens was written before snap authenticated configs, so only this machine's record of it guards it; 'snap key passwd' writes a key file that does",
      );
    }
    for (const l of r.leftovers) ctx.out(`leftover: ${l.message}`);
    for (const a of r.affected) {
      const replaced = a.replacement ? `; 'snap repair' replaced it by ${shortId(a.replacement)}` : '';
      ctx.out(`snapshot ${shortId(a.snapshot)} (${localDateTime(new Date(a.time))}, ${a.hostname}) is damaged: ${plural(a.count, 'path')} affected${replaced}`);
      for (const p of a.paths) ctx.out(`    ${p}`);
      if (a.count > a.paths.length) ctx.out(`    ... and ${a.count - a.paths.length} more`);
    }
    ctx.out(
      `checked ${r.snapshots} snapshot(s), ${r.trees} trees, ${r.blobs} file chunks in ${r.packs} pack(s)` +
        (subset ? `; read ${r.packsRead} pack(s) (${bytes(r.bytesRead)}, ${describeSubset(subset)})` : '; data not read (use --read-data)'),
    );
    if (r.indexFiles > 0) ctx.out(`${r.indexFiles} index file(s)${r.packsWithoutIndexFile > 0 ? `; ${r.packsWithoutIndexFile} pack(s) in none (their headers are read instead: a backup stopped before its index file; the next gc or 'snap index rebuild' covers them)` : ''}`);
    if (r.unusedObjects > 0) ctx.out(`${r.unusedObjects} unused objects (${bytes(r.unusedBytes)}) can be freed with 'snap gc'`);
    if (r.problems.length === 0) ctx.out(r.leftovers.length ? `no damage found (${r.leftovers.length} leftover(s) that 'snap gc' removes)` : 'no damage found');
  }
  if (r.problems.length > 0) {
    if (ctx.json) {
      // printed above
    } else if (checkAdvice(r) === 'forget') {
      ctx.out(`each damaged snapshot already has a repaired replacement: 'snap repair --forget' removes the damaged originals (or 'snap forget ${r.affected.map((a) => shortId(a.snapshot)).join(' ')}')`);
    } else {
      ctx.out(`to keep everything intact and leave out only what is lost: 'snap repair${subset ? ' --read-data' : ''}' (see 'snap repair --help')`);
    }
    process.stderr.write(`snap: check found ${r.problems.length} problem(s); ${r.affected.length} snapshot(s) affected [SNAP_DAMAGED]\n`);
    ctx.exitCode = 1;
  }
}

function checkJson(r: CheckReport, subset: Subset | undefined): Record<string, unknown> {
  return {
    ok: r.problems.length === 0,
    snapshots: r.snapshots,
    trees: r.trees,
    blobs: r.blobs,
    packs: r.packs,
    read_data: subset ? describeSubset(subset) : null,
    packs_read: r.packsRead,
    bytes_read: r.bytesRead,
    unused_objects: r.unusedObjects,
    unused_bytes: r.unusedBytes,
    index_files: r.indexFiles,
    packs_without_index_file: r.packsWithoutIndexFile,
    problems: r.problems,
    leftovers: r.leftovers,
    affected: r.affected,
    advice: r.problems.length === 0 ? null : checkAdvice(r),
  };
}

/**
 * What to do about the damage found. After a `snap repair` without --forget, the damaged
 * originals stay, and with them objects they name that repair moved aside: when that is all
 * there is (every problem a missing object, every affected snapshot replaced), running repair
 * again would change nothing; removing the originals is what is left.
 */
function checkAdvice(r: CheckReport): 'repair' | 'forget' {
  const onlyOriginals = r.affected.length > 0 && r.affected.every((a) => a.replacement) && r.problems.every((p) => p.kind === 'object-missing');
  return onlyOriginals ? 'forget' : 'repair';
}

/**
 * With --host/--tag/--path and no REF: the totals of the snapshots those select (what they use,
 * how much it deduplicates and compresses); with REF, they narrow which snapshot REF means.
 */
async function stats(ctx: Ctx, ref: string | undefined, f: SnapshotFilter): Promise<void> {
  await withRepo(ctx, async (repo) => {
    const all = await repo.listSnapshots();
    if (ref !== undefined) {
      const snap = await resolveSnapshot(ctx, repo, ref, f);
      const s = await snapshotStats(repo, snap, all, ctx.signal);
      if (ctx.json) return ctx.out(JSON.stringify({ snapshot: s.snapshot, logical_bytes: s.logicalBytes, files: s.files, objects: s.objects, unique_objects: s.uniqueObjects, unique_stored_bytes: s.uniqueStoredBytes, unique_raw_bytes: s.uniqueRawBytes }, null, 2));
      ctx.out(
        [
          `snapshot ${shortId(s.snapshot)} (${localDateTime(new Date(snap.time))}, ${snap.paths.map(displayPath).join(' ')})`,
          `  files:           ${s.files} (${bytes(s.logicalBytes)})`,
          `  objects:         ${s.objects}`,
          `  only in it:      ${s.uniqueObjects} objects, ${bytes(s.uniqueStoredBytes)} stored (${bytes(s.uniqueRawBytes)} uncompressed): what forget + gc would free`,
        ].join('\n'),
      );
      return;
    }
    const s = await repoStats(repo, filterSnapshots(all, f), ctx.signal);
    if (ctx.json) {
      return ctx.out(JSON.stringify({ snapshots: s.snapshots, objects: s.objects, trees: s.trees, blobs: s.blobs, packs: s.packs, pack_bytes: s.packBytes, stored_bytes: s.storedBytes, raw_bytes: s.rawBytes, logical_bytes: s.logicalBytes, dedup_ratio: s.dedupRatio, compression_ratio: s.compressionRatio }, null, 2));
    }
    ctx.out(
      [
        `snapshots:          ${s.snapshots}`,
        `unique objects:     ${s.objects} (${s.blobs} file chunks, ${s.trees} trees)`,
        `stored:             ${bytes(s.packBytes)} in ${s.packs} pack(s) (${bytes(s.storedBytes)} of used objects)`,
        `uncompressed:       ${bytes(s.rawBytes)}`,
        `logical (restored): ${bytes(s.logicalBytes)}`,
        `deduplication:      ${s.dedupRatio.toFixed(2)}x`,
        `compression:        ${s.compressionRatio.toFixed(2)}x`,
      ].join('\n'),
    );
  });
}
