// `snap check`: verify the repository (structure always, stored data with --read-data), and the
// rendering of its report. The work is in ops/maintain/check.ts.
import type { Command } from 'commander';
import { shortId } from '../core/ids.js';
import { checkRepository, type CheckProblem, type CheckReport } from '../ops/maintain/check.js';
import { describeSubset, parseSubset, type Subset } from '../ops/maintain/check-subset.js';
import { type Ctx, readRepo } from './context.js';
import { bytes, localDateTime } from './format.js';
import { plural } from './browse-out.js';

type Run = (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>;

export function registerCheck(program: Command, run: Run): void {
  program
    .command('check')
    .description('verify the repository: structure always, stored data with --read-data')
    .option('--read-data', 'read every pack and verify every object')
    .option('--read-data-subset <part>', 'read a deterministic part of the packs: n/m (e.g. 1/5) or a percentage (e.g. 10%)')
    .action(async (o: { readData?: boolean; readDataSubset?: string }, cmd: Command) => run((ctx) => check(ctx, o), cmd));
}

async function check(ctx: Ctx, o: { readData?: boolean; readDataSubset?: string }): Promise<void> {
  const subset: Subset | undefined = o.readDataSubset ? parseSubset(o.readDataSubset) : o.readData ? { kind: 'all' } : undefined;
  const onProblem = ctx.json ? undefined : (p: CheckProblem) => ctx.out(`damage: ${p.message}`);
  // An encrypted repository's config was authenticated when it opened (else the open was refused),
  // unless its key file predates that (docs/format.md, "Authenticated config"): said here.
  let configAuthenticated: boolean | null = null;
  const r = await readRepo(ctx, (repo) => {
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
