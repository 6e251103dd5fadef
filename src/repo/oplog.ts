// The operation log in storage: one blob per record under `log/` (docs/format.md, "Operation
// log"). A record is written once with putIfAbsent, which every backend makes atomic and durable
// (temporary name, fsync, rename, folder fsync for a local folder; one PUT for S3), so a crash
// leaves the whole record or none, and append-only storage accepts it (a new name, never a
// replacement).
import { randomHex } from '../core/ids.js';
import { SnapError } from '../core/errors.js';
import type { Backend } from '../backend/backend.js';
import { AppendOnlyBackend } from '../backend/append-only.js';
import { decodeLogRecord, encodeLogRecord, LOG_PREFIX, type LogRecord, logName, logNameTime } from '../model/oplog.js';

/** Append one record; through an append-only view of the storage, so nothing existing can be replaced. */
export async function appendLogRecord(storage: Backend, r: LogRecord): Promise<string> {
  const backend = storage.appendOnly ? storage : new AppendOnlyBackend(storage);
  // 64 random bits: two processes that start in the same millisecond still write two records.
  for (let attempt = 0; attempt < 3; attempt++) {
    const name = logName(new Date(r.start), randomHex(8));
    if (await backend.putIfAbsent(name, encodeLogRecord(r))) return name;
  }
  throw new SnapError('SNAP_INTERNAL', 'could not find a free name for a log record');
}

export interface LogEntry {
  name: string;
  record?: LogRecord;
  /** Set instead of `record` when the blob does not parse. */
  damage?: string;
}

/**
 * Every record whose start is at or after `since` (all without), oldest first. A record that does
 * not parse is returned with `damage` set, never skipped in silence; a blob under `log/` whose
 * name is not a record's is not a record and is ignored, as readers ignore unknown names.
 */
export async function readLog(backend: Pick<Backend, 'list' | 'get'>, o: { since?: Date; signal?: AbortSignal } = {}): Promise<LogEntry[]> {
  const names: string[] = [];
  for await (const b of backend.list(LOG_PREFIX)) {
    const t = logNameTime(b.name);
    if (t === undefined) continue;
    if (o.since && Date.parse(t) < o.since.getTime()) continue;
    names.push(b.name);
  }
  names.sort();
  const out: LogEntry[] = [];
  for (const name of names) {
    o.signal?.throwIfAborted();
    try {
      out.push({ name, record: decodeLogRecord(await backend.get(name), name) });
    } catch (e) {
      if (!(e instanceof SnapError) || (e.code !== 'SNAP_CORRUPT' && e.code !== 'SNAP_MISSING_OBJECT')) throw e;
      if (e.code === 'SNAP_MISSING_OBJECT') continue; // deleted between listing and reading
      out.push({ name, damage: e.message });
    }
  }
  return out;
}
