// `snap stats`: repository totals, or one snapshot's sizes, deduplication and compression.
import type { Command } from 'commander';
import { shortId } from '../core/ids.js';
import { repoStats, snapshotStats } from '../ops/maintain/stats.js';
import { type Ctx, readRepo } from './context.js';
import { filterOptions, resolveSnapshot } from './snapshot-args.js';
import { filterSnapshots, type SnapshotFilter } from '../ops/tree/refs.js';
import { displayPath } from '../core/bytes.js';
import { bytes, localDateTime } from './format.js';

type Run = (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>;

export function registerStats(program: Command, run: Run): void {
  filterOptions(program.command('stats').description('repository totals, or one snapshot with REF: sizes, deduplication, compression'))
    .argument('[ref]', "snapshot: id prefix, 'latest' or a date")
    .action(async (ref: string | undefined, o: SnapshotFilter, cmd: Command) => run((ctx) => stats(ctx, ref, o), cmd));
}

async function stats(ctx: Ctx, ref: string | undefined, f: SnapshotFilter): Promise<void> {
  await readRepo(ctx, async (repo) => {
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
