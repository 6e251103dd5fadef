// The operation log in `check` and `repair` (docs/format.md, "Operation log"): every record under
// `log/` must parse. A damaged record holds no backup data, but it is damage in storage like any
// other, so check reports it; repair moves it to `quarantine/log/` (copied there durably before it
// leaves `log/`), as it does with damaged snapshot records.
import { isSnapError, SnapError } from '../../core/errors.js';
import { copyAsStored, getForSalvage } from '../../backend/encrypted.js';
import type { Backend } from '../../backend/backend.js';
import { decodeLogRecord } from '../../model/oplog.js';
import { QUARANTINE } from '../../repo/layout.js';
import { readLog } from '../../repo/oplog.js';

export interface DamagedLogRecord {
  /** The blob name, `log/<start>-<random>`. */
  name: string;
  message: string;
}

/** Every record that does not parse, and how many records there are in all. */
export async function checkLog(backend: Pick<Backend, 'list' | 'get'>, signal?: AbortSignal): Promise<{ records: number; damaged: DamagedLogRecord[] }> {
  const entries = await readLog(backend, { signal });
  return { records: entries.length, damaged: entries.filter((e) => e.damage).map((e) => ({ name: e.name, message: e.damage! })) };
}

/**
 * Move damaged records aside. Each is read again first: only a record that is still there and
 * still does not parse moves. Returns the names moved (or, in a dry run, that would move).
 */
export async function quarantineLog(
  backend: Backend,
  damaged: DamagedLogRecord[],
  o: { dryRun?: boolean; beforeDelete?(): Promise<void> | void },
): Promise<DamagedLogRecord[]> {
  const moved: DamagedLogRecord[] = [];
  for (const d of damaged) {
    let bytes: Buffer;
    let sealDamage = 0;
    try {
      ({ bytes, damaged: sealDamage } = await getForSalvage(backend, d.name));
    } catch (e) {
      if (isSnapError(e, 'SNAP_MISSING_OBJECT')) continue;
      throw e;
    }
    try {
      if (sealDamage > 0) throw new SnapError('SNAP_CORRUPT', `${d.name} failed authentication`);
      decodeLogRecord(bytes, d.name);
      continue; // it reads now: the check met a failed read, not damage
    } catch (e) {
      if (!isSnapError(e, 'SNAP_CORRUPT')) throw e;
    }
    moved.push(d);
    if (o.dryRun) continue;
    await copyAsStored(backend, d.name, `${QUARANTINE}${d.name}`, bytes);
    await o.beforeDelete?.();
    await backend.delete(d.name);
  }
  return moved;
}
