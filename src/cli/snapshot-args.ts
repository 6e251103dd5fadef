// What several commands share about choosing snapshots: the --host/--tag/--path filter flags, and
// resolving a snapshot reference against the filtered list.
import type { Command } from 'commander';
import type { StoredSnapshot } from '../model/snapshot.js';
import { filterSnapshots, resolveRef, type SnapshotFilter } from '../ops/tree/refs.js';
import type { Repository } from '../repo/repository.js';
import type { Ctx } from './context.js';
import { collect } from './parse.js';
import { whenParser } from './when.js';

export function filterOptions(cmd: Command): Command {
  return cmd
    .option('--host <host>', 'only snapshots from this host (repeatable)', collect, [])
    .option('--tag <tag>', 'only snapshots with this tag (repeatable: all must match)', collect, [])
    .option('--path <path>', 'only snapshots of this source path (repeatable)', collect, []);
}

export async function resolveSnapshot(ctx: Ctx, repo: Repository, ref: string, f: SnapshotFilter = {}): Promise<StoredSnapshot> {
  const snaps = filterSnapshots(await repo.listSnapshots(), f);
  return resolveRef(snaps, ref, repo.clock.now(), whenParser);
}

