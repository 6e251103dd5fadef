// What several commands share about snapshots and entries: the --host/--tag/--path filter flags,
// resolving a snapshot reference against the filtered list, and the JSON shape of a snapshot record
// and of a tree entry (the same in `list --json`, `ls --json`, `find --json`, the web UI's API).
import type { Command } from 'commander';
import { shortId } from '../core/ids.js';
import { fsDecode } from '../core/bytes.js';
import type { StoredSnapshot } from '../model/snapshot.js';
import type { Node } from '../model/node.js';
import { filterSnapshots, resolveRef, type SnapshotFilter } from '../ops/tree/refs.js';
import type { Repository } from '../repo/repository.js';
import type { Ctx } from './context.js';
import { isoLocal, mtimeNs } from './format.js';
import { collect } from './parse.js';
import { whenParser } from './when.js';
import { mtimeDate, pathJson } from './browse-out.js';
import { cliNow } from './now.js';

export function snapshotJson(s: StoredSnapshot): Record<string, unknown> {
  return {
    id: s.id,
    short_id: shortId(s.id),
    time: isoLocal(new Date(s.time)),
    hostname: s.hostname,
    username: s.username,
    paths: s.paths,
    tags: s.tags,
    tree: s.tree.toString('hex'),
    parent: s.parent?.toString('hex'),
    original: s.original?.toString('hex'),
    program: s.program,
    excludes: s.excludes,
    summary: s.summary,
  };
}

export function filterOptions(cmd: Command): Command {
  return cmd
    .option('--host <host>', 'only snapshots from this host (repeatable)', collect, [])
    .option('--tag <tag>', 'only snapshots with this tag (repeatable: all must match)', collect, [])
    .option('--path <path>', 'only snapshots of this source path (repeatable)', collect, []);
}

export async function resolveSnapshot(ctx: Ctx, repo: Repository, ref: string, f: SnapshotFilter = {}): Promise<StoredSnapshot> {
  const snaps = filterSnapshots(await repo.listSnapshots(), f);
  return resolveRef(snaps, ref, cliNow(repo.clock), whenParser);
}

export function entryJson(p: Buffer, n: Node): Record<string, unknown> {
  return {
    ...pathJson(p),
    type: n.type,
    mode: n.mode,
    uid: n.uid,
    gid: n.gid,
    user: n.user,
    group: n.group,
    size: n.size,
    mtime: isoLocal(mtimeDate(n)),
    mtime_ns: mtimeNs(n),
    target: n.target ? fsDecode(n.target) : undefined,
  };
}
