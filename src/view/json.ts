// The JSON forms of what snap shows: snapshot records, tree entries, paths (bytes kept exactly:
// `path` with lone surrogates for invalid UTF-8, and `path_hex`), diff changes, versions of a
// path, planned restore entries. What the CLI prints with --json and what the web UI's API serves
// are these same objects (docs/ui.md), so both cli/ and ui/ take them from here.
import { fsDecode } from '../core/bytes.js';
import { shortId } from '../core/ids.js';
import type { Node } from '../model/node.js';
import type { StoredSnapshot } from '../model/snapshot.js';
import type { Change } from '../ops/browse/diff.js';
import type { Version } from '../ops/browse/history.js';
import type { PlannedEntry } from '../ops/restore/restore.js';

export const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** Years 0-9999 as four digits (`0000-01-01`), as ISO 8601 writes them. */
export const year = (d: Date): string => pad(d.getFullYear(), 4);

/**
 * ISO 8601 in local time with its offset and milliseconds, e.g. 2026-03-03T14:00:05.250+01:00:
 * the JSON form of every time (snapshot times are recorded to the millisecond).
 */
export function isoLocal(d: Date): string {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const a = Math.abs(off);
  return `${year(d)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

/** A node's mtime as nanoseconds since the epoch in decimal: `[-1, 250000000]` is "-750000000", the epoch "0". */
export function mtimeNs(n: Node): string {
  return (BigInt(n.mtime.sec) * 1_000_000_000n + BigInt(n.mtime.nsec)).toString();
}

export const mtimeDate = (n: Node): Date => new Date(n.mtime.sec * 1000 + Math.floor(n.mtime.nsec / 1e6));

export const octal = (mode: number): string => mode.toString(8).padStart(4, '0');

export const pathJson = (p: Buffer): Record<string, string> => ({ path: fsDecode(p), path_hex: p.toString('hex') });

export function nodeJson(n: Node): Record<string, unknown> {
  return {
    type: n.type,
    size: n.size,
    mode: octal(n.mode),
    uid: n.uid,
    gid: n.gid,
    user: n.user,
    group: n.group,
    mtime: isoLocal(mtimeDate(n)),
    mtime_ns: mtimeNs(n),
    chunks: n.chunks?.length,
    tree: n.tree?.toString('hex'),
    target: n.target ? fsDecode(n.target) : undefined,
  };
}

export function snapRefJson(s: StoredSnapshot): Record<string, unknown> {
  return { id: s.id, short_id: shortId(s.id), time: isoLocal(new Date(s.time)), hostname: s.hostname, paths: s.paths, tags: s.tags };
}

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

export function changeJson(ch: Change): Record<string, unknown> {
  return {
    kind: ch.kind,
    ...pathJson(ch.path),
    type: (ch.after ?? ch.before)!.type,
    aspects: ch.aspects,
    fields: ch.fields,
    before: ch.before ? nodeJson(ch.before) : undefined,
    after: ch.after ? nodeJson(ch.after) : undefined,
  };
}

export function versionJson(v: Version): Record<string, unknown> {
  return {
    event: v.event,
    snapshot: snapRefJson(v.snapshot),
    last: snapRefJson(v.last),
    seen: v.seen,
    aspects: v.aspects,
    fields: v.fields,
    entry: v.node ? nodeJson(v.node) : undefined,
  };
}

export function plannedJson(e: PlannedEntry): Record<string, unknown> {
  return { ...pathJson(e.dest), type: e.linkTo ? 'hardlink' : e.node.type, size: e.node.size, ...(e.linkTo ? { link_to: fsDecode(e.linkTo) } : {}) };
}
