// `snap forget`: decide with a retention policy (model/retention.ts) which snapshots go, per group,
// and remove their records. Forgetting frees no data by itself: `snap gc` does, afterwards.
import { applyPolicy, type GroupField, groupSnapshots, type RetentionInput, type RetentionPolicy } from '../../model/retention.js';
import { encodeSnapshot, type Snapshot, type StoredSnapshot } from '../../model/snapshot.js';
import { snapshotName } from '../../repo/layout.js';
import type { Repository } from '../../repo/repository.js';

export interface ForgetDecision {
  snapshot: StoredSnapshot;
  reasons: string[];
}

export interface ForgetGroup {
  key: string;
  keep: ForgetDecision[];
  remove: ForgetDecision[];
}

export interface PolicyOptions {
  policy: RetentionPolicy;
  groupBy: GroupField[];
  now: Date;
  /** IANA zone for calendar buckets; default the process's local zone. */
  timeZone?: string;
}

/** The plan: per group, the snapshots kept (with every rule that kept them) and removed. Pure. */
export function planForget(snaps: StoredSnapshot[], o: PolicyOptions): ForgetGroup[] {
  const byId = new Map(snaps.map((s) => [s.id, s]));
  const inputs: RetentionInput[] = snaps.map((s) => ({ id: s.id, time: new Date(s.time), hostname: s.hostname, paths: s.paths, tags: s.tags }));
  const out: ForgetGroup[] = [];
  for (const [key, group] of groupSnapshots(inputs, o.groupBy)) {
    const r = applyPolicy(group, o.policy, o.now, { timeZone: o.timeZone });
    const back = (d: { snapshot: RetentionInput; reasons: string[] }): ForgetDecision => ({ snapshot: byId.get(d.snapshot.id)!, reasons: d.reasons });
    out.push({ key, keep: r.keep.map(back), remove: r.remove.map(back) });
  }
  return out;
}

/**
 * Remove snapshot records: the record in storage first, then its index entry. A crash between the
 * two leaves an index entry without a record, which the next open reconciles away.
 */
export async function removeSnapshots(repo: Repository, ids: string[]): Promise<number> {
  let n = 0;
  for (const id of ids) {
    await repo.backend.delete(snapshotName(id));
    await repo.index.removeSnapshot(id);
    n++;
  }
  return n;
}

/**
 * Save `draft` as the record that replaces `old` (a tag edit, a rewrite). With `forget`, the old
 * record is removed, but only once the new one is durable (saveSnapshot returns after its fsync
 * and rename): a crash in between leaves both, never neither. A draft that encodes to the old
 * record itself changes nothing.
 */
export async function replaceSnapshot(repo: Repository, old: StoredSnapshot, draft: Snapshot, forget: boolean): Promise<StoredSnapshot> {
  if (encodeSnapshot(draft).id === old.id) return old;
  const saved = await repo.saveSnapshot(draft);
  if (forget) await removeSnapshots(repo, [old.id]);
  return saved;
}

/** The draft of a replacement: the same record, naming the first snapshot of the chain in `original`. */
export function draftFrom(old: StoredSnapshot): Snapshot {
  const { id, ...rest } = old;
  return { ...rest, original: old.original ?? Buffer.from(id, 'hex') };
}
