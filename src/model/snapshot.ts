// A snapshot record: what was backed up, when, from where, and the root tree. Stored as CBOR at
// `snapshots/<sha256 of the record>`.
import { SnapError } from '../core/errors.js';
import { asId, sha256, toHex } from '../core/ids.js';
import { fsDecode, fsEncode, hasEscapedBytes } from '../core/bytes.js';
import { asArray, asRecord, asString, asStringArray, asUint, decodeCbor, encodeCbor, type Rec } from './cbor.js';

export const SNAPSHOT_VERSION = 1;

/**
 * A snapshot time is UTC to the millisecond, always `YYYY-MM-DDTHH:MM:SS.mmmZ` (24 characters,
 * years 0000-9999): the index keys snapshots by it, so its width is fixed (docs/format.md).
 */
const TIME_FORM = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
export const TIME_RANGE = 'UTC times from 0000-01-01 to 9999-12-31, to the millisecond';

/** The record form of `d`, or undefined when the format cannot hold it (years before 0000 or after 9999). */
export function snapshotTime(d: Date): string | undefined {
  if (Number.isNaN(d.getTime())) return undefined;
  const s = d.toISOString();
  return TIME_FORM.test(s) ? s : undefined;
}

/** Whether `s` is a time exactly as records hold it (a real date, in the canonical form). */
export function isSnapshotTime(s: string): boolean {
  return TIME_FORM.test(s) && snapshotTime(new Date(s)) === s;
}

export interface SnapshotSummary {
  filesNew: number;
  filesChanged: number;
  filesUnchanged: number;
  dirsNew: number;
  dirsChanged: number;
  dirsUnchanged: number;
  bytesRead: number; // bytes of file contents read from the source
  totalBytes: number; // logical size of every file in the snapshot
  totalFiles: number;
  dataAdded: number; // bytes added to the repository after dedup and compression (pack payload)
  objectsAdded: number;
  warnings: number;
  durationMs: number;
}

export interface Snapshot {
  time: string; // ISO 8601, UTC, millisecond precision
  hostname: string;
  username: string;
  /** Source paths as lossless strings (core/bytes.ts fsDecode): a path that is not UTF-8 is stored as bytes. */
  paths: string[];
  tags: string[];
  tree: Buffer;
  parent?: Buffer;
  /** Set by `snap repair` on a snapshot that replaces a damaged one: the damaged one's id. */
  original?: Buffer;
  program: string;
  /** Exclude patterns, lossless strings like `paths`. */
  excludes: string[];
  summary: SnapshotSummary;
}

export interface StoredSnapshot extends Snapshot {
  id: string; // hex
}

const SUMMARY_KEYS: (keyof SnapshotSummary)[] = [
  'filesNew', 'filesChanged', 'filesUnchanged', 'dirsNew', 'dirsChanged', 'dirsUnchanged',
  'bytesRead', 'totalBytes', 'totalFiles', 'dataAdded', 'objectsAdded', 'warnings', 'durationMs',
];

export function encodeSnapshot(s: Snapshot): { id: string; bytes: Buffer } {
  // Never write a record that readers would refuse: one such record made every command fail.
  if (!isSnapshotTime(s.time)) throw new SnapError('SNAP_USAGE', `cannot record the snapshot time ${s.time}: the format holds ${TIME_RANGE}`);
  const rec: Rec = {
    v: SNAPSHOT_VERSION,
    time: s.time,
    hostname: s.hostname,
    username: s.username,
    paths: s.paths.map(pathItem),
    tags: s.tags,
    tree: s.tree,
    program: s.program,
    excludes: s.excludes.map(pathItem),
    summary: Object.fromEntries(SUMMARY_KEYS.map((k) => [k, s.summary[k]])),
  };
  if (s.parent) rec.parent = s.parent;
  if (s.original) rec.original = s.original;
  const bytes = encodeCbor(rec);
  return { id: toHex(sha256(bytes)), bytes };
}

export function decodeSnapshot(bytes: Uint8Array, id: string): StoredSnapshot {
  const what = `snapshot ${id.slice(0, 8)}`;
  if (toHex(sha256(bytes)) !== id) throw new SnapError('SNAP_CORRUPT', `${what}: content does not match its id`);
  const r = asRecord(decodeCbor(bytes, what), what);
  const v = asUint(r.v, `${what}.v`);
  if (v !== SNAPSHOT_VERSION) throw new SnapError('SNAP_CORRUPT', `${what}: unsupported snapshot version ${v}`);
  const time = asString(r.time, `${what}.time`);
  if (!isSnapshotTime(time)) throw new SnapError('SNAP_CORRUPT', `${what}.time: ${JSON.stringify(time)} is not a time of the form YYYY-MM-DDTHH:MM:SS.mmmZ`);
  const sum = asRecord(r.summary, `${what}.summary`);
  const summary = Object.fromEntries(SUMMARY_KEYS.map((k) => [k, asUint(sum[k] ?? 0, `${what}.summary.${k}`)])) as unknown as SnapshotSummary;
  const snap: StoredSnapshot = {
    id,
    time,
    hostname: asString(r.hostname, `${what}.hostname`),
    username: asString(r.username, `${what}.username`),
    paths: asPathArray(r.paths, `${what}.paths`),
    tags: asStringArray(r.tags, `${what}.tags`),
    tree: asId(r.tree, `${what}.tree`),
    program: asString(r.program, `${what}.program`),
    excludes: asPathArray(r.excludes ?? [], `${what}.excludes`),
    summary,
  };
  if (r.parent !== undefined) snap.parent = asId(r.parent, `${what}.parent`);
  if (r.original !== undefined) snap.original = asId(r.original, `${what}.original`);
  return snap;
}

/**
 * A path (or exclude pattern) in a record: text when it is UTF-8, as every record had it before,
 * so their ids do not change; a CBOR byte string otherwise (docs/format.md).
 */
function pathItem(p: string): string | Buffer {
  return hasEscapedBytes(p) ? fsEncode(p) : p;
}

function asPathArray(v: unknown, what: string): string[] {
  return asArray(v, what).map((x, i) => (x instanceof Uint8Array ? fsDecode(x) : asString(x, `${what}[${i}]`)));
}
