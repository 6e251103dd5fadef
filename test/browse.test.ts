// Browsing by date, end-to-end through the built CLI: date references with --host/--tag/--path
// filters, list --since/--until/--by, diff, find, history and dups against known edits between
// snapshots made with `create --time`. Plus two unit tests that pin the work saved by comparing
// tree ids (diff) and by caching matches per tree (find).
import { randomBytes, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Node } from '../src/model/node.js';
import { Tree } from '../src/model/tree.js';
import type { StoredSnapshot } from '../src/model/snapshot.js';
import { diffTrees, type TreeReader } from '../src/ops/browse/diff.js';
import { compileFindPattern, FindCache, findInSnapshots } from '../src/ops/browse/find.js';
import { history } from '../src/ops/browse/history.js';
import { parseJson, snap, tmpDir, type RunResult } from './helpers/cli.js';

const T = (iso: string): number => Date.parse(iso) / 1000;
const DIR_TIME = T('2026-01-01T00:00:00Z');
// The snapshots, in time order. `other` backs up a different folder.
const TIMES = {
  s1: '2026-03-01T10:00:00Z', // Sunday, 2026-W09
  other: '2026-03-02T12:00:00Z',
  s2: '2026-03-03T09:00:00Z', // Tuesday, 2026-W10
  s3: '2026-03-03T15:30:00Z',
  s4: '2026-03-10T08:00:00Z', // 2026-W11
  s5: '2026-04-02T12:00:00Z', // 2026-W14
} as const;
type Name = keyof typeof TIMES;
const NOW = '2026-03-04T12:00:00Z';

interface Ref {
  id: string;
  short_id: string;
}
interface SnapJson extends Ref {
  time: string;
  summary: { dataAdded: number; totalBytes: number };
}

let repo: string;
let src: string;
let other: string;
const ids = {} as Record<Name, string>;
const snaps = {} as Record<Name, SnapJson>;

function cli(args: string[], env: Record<string, string> = {}): RunResult {
  return snap(['--repo', repo, ...args], { env: { TZ: 'UTC', SNAP_NOW: NOW, ...env } });
}

function ok(args: string[], env: Record<string, string> = {}): RunResult {
  const r = cli(args, env);
  expect(r.code, `snap ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}

function put(rel: string, data: string | Buffer, mtime: string, mode = 0o644): void {
  const p = path.join(src, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, data);
  fs.chmodSync(p, mode);
  fs.utimesSync(p, T(mtime), T(mtime));
}

/** Directories get one fixed mtime, so a diff shows only the edits made on purpose. */
function fixDirs(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) fixDirs(path.join(dir, e.name));
  fs.utimesSync(dir, DIR_TIME, DIR_TIME);
}

function create(name: Name, dir: string, tags: string[]): void {
  fixDirs(dir);
  const r = ok(['--json', 'create', dir, '--time', TIMES[name], ...tags.flatMap((t) => ['--tag', t])]);
  snaps[name] = parseJson<SnapJson>(r.stdout);
  ids[name] = snaps[name].id;
}

const BIG = randomBytes(200_000);

beforeAll(() => {
  const base = tmpDir();
  repo = path.join(base, 'repo');
  src = path.join(base, 'src');
  other = path.join(base, 'other');
  ok(['init']);

  const t1 = TIMES.s1;
  put('a.txt', 'alpha\n', t1);
  put('docs/readme.md', 'readme v1\n', t1);
  put('docs/notes.txt', 'notes\n', t1);
  put('run.sh', '#!/bin/sh\n', t1);
  put('photos/big.bin', BIG, t1);
  put('photos/copy.bin', BIG, t1);
  put('backup/big-again.bin', BIG, t1);
  put('small1.txt', 'dup\n', t1);
  put('docs/small2.txt', 'dup\n', t1);
  put('hard1', 'hard-linked\n', t1);
  fs.linkSync(path.join(src, 'hard1'), path.join(src, 'docs', 'hard2'));
  put('hard3', 'hard-linked\n', t1); // same content, another inode
  put('empty1', '', t1);
  put('empty2', '', t1);
  put('olddir/f.txt', 'f\n', t1);
  fs.symlinkSync('a.txt', path.join(src, 'link'));
  create('s1', src, ['daily']);

  fs.mkdirSync(other);
  fs.writeFileSync(path.join(other, 'readme.md'), 'other\n');
  create('other', other, ['other']);

  // s2: new content for a.txt; run.sh only made executable
  put('a.txt', 'alpha\nbeta\n', TIMES.s2);
  fs.chmodSync(path.join(src, 'run.sh'), 0o755);
  create('s2', src, ['daily']);

  // s3: a file deleted, one added, a directory renamed
  fs.rmSync(path.join(src, 'docs', 'notes.txt'));
  put('docs/new.txt', 'new\n', TIMES.s3);
  fs.renameSync(path.join(src, 'olddir'), path.join(src, 'newdir'));
  create('s3', src, ['daily']);

  // s4: the symlink becomes a regular file
  fs.rmSync(path.join(src, 'link'));
  put('link', 'now a file\n', TIMES.s4);
  create('s4', src, ['weekly']);

  // s5: a.txt back to its first content
  put('a.txt', 'alpha\n', TIMES.s5);
  create('s5', src, ['daily']);
});

const at = (rel: string): string => path.join(src, rel);

/** Which snapshot a reference resolves to (dups --json names it). */
function resolves(ref: string, extra: string[] = [], env: Record<string, string> = {}): string {
  const r = ok(['--json', 'dups', ref, ...extra], env);
  return parseJson<{ snapshot: Ref }>(r.stdout).snapshot.id;
}

describe('date references', () => {
  it('pick the newest snapshot at or before the end of the named day, minute or month', () => {
    const p = ['--path', src];
    expect(resolves('2026-03-03', p)).toBe(ids.s3);
    expect(resolves('2026-03-03T14:00', p)).toBe(ids.s2);
    expect(resolves('2026-03-03 14:00', p)).toBe(ids.s2);
    expect(resolves('2026-03-03T15:30', p)).toBe(ids.s3); // the whole minute counts
    expect(resolves('2026-03-03T15:29', p)).toBe(ids.s2);
    expect(resolves('2026-03', p)).toBe(ids.s4);
    expect(resolves('latest', p)).toBe(ids.s5);
  });

  it('apply --path, --tag and --host before resolving the date', () => {
    expect(resolves('2026-03-02')).toBe(ids.other);
    expect(resolves('2026-03-02', ['--path', src])).toBe(ids.s1);
    expect(resolves('2026-03-02', ['--tag', 'daily'])).toBe(ids.s1);
    expect(resolves('2026-03-20', ['--tag', 'daily'])).toBe(ids.s3);
    expect(resolves('2026-03-20', ['--tag', 'weekly'])).toBe(ids.s4);
    expect(resolves('2026-03-02', ['--host', os.hostname()])).toBe(ids.other);
    const none = cli(['dups', '2026-03-02', '--host', 'no-such-host']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no snapshots \(matching the filters\).*SNAP_NOT_FOUND/);
  });

  it('resolve yesterday and "N days ago" against now (SNAP_NOW)', () => {
    expect(resolves('yesterday', ['--path', src])).toBe(ids.s3); // 2026-03-03 ends after s3
    expect(resolves('today', ['--path', src])).toBe(ids.s3);
    expect(resolves('2 days ago')).toBe(ids.other); // 2026-03-02T12:00 exactly
    expect(resolves('2 days ago', ['--path', src])).toBe(ids.s1);
    expect(resolves('3 days ago')).toBe(ids.s1);
    expect(resolves('1w ago', [], { SNAP_NOW: '2026-03-10T09:00:00Z' })).toBe(ids.s2);
  });

  it('before the first snapshot is an error naming the earliest one', () => {
    for (const ref of ['2026-02-28', '1w ago', '2026-03-01T09:59']) {
      const r = cli(['ls', ref, '--path', src]);
      expect(r.code, ref).toBe(1);
      expect(r.stderr).toContain(`the earliest is ${ids.s1.slice(0, 8)} from 2026-03-01T10:00:00.000Z`);
      expect(r.stderr).toContain('SNAP_NOT_FOUND');
    }
    // Days are local days: at UTC+14, s1 (10:00 UTC) is already 2 March.
    expect(cli(['ls', '2026-03-01'], { TZ: 'Pacific/Kiritimati' }).stderr).toContain('the earliest is');
    expect(resolves('2026-03-01', [], { TZ: 'America/New_York' })).toBe(ids.s1);
  });

  it('work for cat and ls with a path relative to the source', () => {
    expect(ok(['cat', '2026-03-01', 'a.txt', '--path', src]).stdout).toBe('alpha\n');
    expect(ok(['cat', '2026-03-03 09:00', 'a.txt', '--path', src]).stdout).toBe('alpha\nbeta\n');
    expect(ok(['ls', 'yesterday', 'docs']).stdout.split('\n').filter(Boolean)).toEqual(
      ['docs/hard2', 'docs/new.txt', 'docs/readme.md', 'docs/small2.txt'].map(at),
    );
  });

  it('reject impossible dates as usage errors', () => {
    const r = cli(['ls', '2026-02-30']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('SNAP_USAGE');
  });
});

describe('list --since/--until/--by', () => {
  const listIds = (args: string[]): string[] => parseJson<Ref[]>(ok(['--json', 'list', ...args]).stdout).map((s) => s.id);

  it('--since takes the start of the period, --until its end', () => {
    expect(listIds(['--since', '2026-03-03', '--until', '2026-03-03'])).toEqual([ids.s2, ids.s3]);
    expect(listIds(['--since', '2026-03-03 14:00'])).toEqual([ids.s3, ids.s4, ids.s5]);
    expect(listIds(['--until', '2026-03-03T09:00'])).toEqual([ids.s1, ids.other, ids.s2]);
    expect(listIds(['--since', '2026-04'])).toEqual([ids.s5]);
    expect(listIds(['--until', 'yesterday', '--tag', 'daily'])).toEqual([ids.s1, ids.s2, ids.s3]);
    expect(listIds(['--since', '3 days ago', '--path', src])).toEqual([ids.s2, ids.s3, ids.s4, ids.s5]);
  });

  it('refuses what is not a date, and a window that ends before it starts', () => {
    for (const args of [['--since', 'tomorrow'], ['--until', '2026-13'], ['--since', '2026-03-04', '--until', '2026-03-03'], ['--by', 'decade']]) {
      const r = cli(['list', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain('SNAP_USAGE');
    }
  });

  interface Period {
    period: string;
    count: number;
    added: number;
    size: number;
    newest: Ref;
  }
  const cal = (args: string[]): Period[] => parseJson<Period[]>(ok(['--json', 'list', ...args]).stdout);
  const added = (...names: Name[]): number => names.reduce((s, n) => s + snaps[n].summary.dataAdded, 0);

  it('--by day, week and month: count, bytes added, size of the newest', () => {
    const pick = (p: Period[]) => p.map((x) => [x.period, x.count, x.added, x.size, x.newest.id]);
    const size = (n: Name): number => snaps[n].summary.totalBytes;
    expect(pick(cal(['--by', 'day', '--path', src]))).toEqual([
      ['2026-03-01', 1, added('s1'), size('s1'), ids.s1],
      ['2026-03-03', 2, added('s2', 's3'), size('s3'), ids.s3],
      ['2026-03-10', 1, added('s4'), size('s4'), ids.s4],
      ['2026-04-02', 1, added('s5'), size('s5'), ids.s5],
    ]);
    expect(pick(cal(['--by', 'week']))).toEqual([
      ['2026-W09', 1, added('s1'), size('s1'), ids.s1],
      ['2026-W10', 3, added('other', 's2', 's3'), size('s3'), ids.s3],
      ['2026-W11', 1, added('s4'), size('s4'), ids.s4],
      ['2026-W14', 1, added('s5'), size('s5'), ids.s5],
    ]);
    expect(pick(cal(['--by', 'month', '--until', '2026-03']))).toEqual([['2026-03', 5, added('s1', 'other', 's2', 's3', 's4'), size('s4'), ids.s4]]);
    expect(pick(cal(['--by', 'monthly', '--since', '2026-04']))).toEqual([['2026-04', 1, added('s5'), size('s5'), ids.s5]]);
    expect(pick(cal(['--by', 'year', '--path', src]))).toEqual([['2026', 5, added('s1', 's2', 's3', 's4', 's5'), size('s5'), ids.s5]]);
  });

  it('--by prints one line per period for people', () => {
    const out = ok(['list', '--by', 'month', '--path', src]).stdout.split('\n');
    expect(out[0]).toMatch(/^Period\s+Snapshots\s+Added\s+Size\s+Newest$/);
    expect(out[1]).toMatch(new RegExp(`^2026-03\\s+4\\s+.*${ids.s4.slice(0, 8)} 2026-03-10 08:00:00$`));
    expect(out[2]).toMatch(new RegExp(`^2026-04\\s+1\\s+.*${ids.s5.slice(0, 8)} 2026-04-02 12:00:00$`));
    expect(out[3]).toMatch(/^5 snapshots in 2 months, .* added$/);
  });
});

interface ChangeJson {
  kind: string;
  path: string;
  type: string;
  aspects: string[];
  fields: string[];
  before?: { size: number; mode: string; type: string };
  after?: { size: number; mode: string; type: string };
}
interface DiffJson {
  from: Ref;
  to: Ref;
  changes: ChangeJson[];
  summary: {
    added: { files: number; dirs: number; others: number; bytes: number };
    removed: { files: number; dirs: number; others: number; bytes: number };
    modified: { content: number; metadataOnly: number; type: number; bytesBefore: number; bytesAfter: number };
  };
}

describe('diff', () => {
  const diff = (a: Name, b: Name, p = src): DiffJson => parseJson<DiffJson>(ok(['--json', 'diff', ids[a], ids[b], p]).stdout);
  const brief = (d: DiffJson) => d.changes.map((c) => [c.kind, c.path, c.aspects.join('+'), c.fields.join('+')]);

  it('content change with its mtime, and a chmod-only change', () => {
    const d = diff('s1', 's2');
    expect(d.from.id).toBe(ids.s1);
    expect(d.to.id).toBe(ids.s2);
    expect(brief(d)).toEqual([
      ['modified', at('a.txt'), 'content+metadata', 'mtime'],
      ['modified', at('run.sh'), 'metadata', 'mode'],
    ]);
    expect([d.changes[0]!.before!.size, d.changes[0]!.after!.size]).toEqual([6, 11]);
    expect([d.changes[1]!.before!.mode, d.changes[1]!.after!.mode]).toEqual(['0644', '0755']);
    expect(d.summary.modified).toEqual({ content: 1, metadataOnly: 1, type: 0, bytesBefore: 6, bytesAfter: 11 });
    expect(d.summary.added).toEqual({ files: 0, dirs: 0, others: 0, bytes: 0 });
  });

  it('deleted and added files, and a renamed directory as removed plus added', () => {
    const d = diff('s2', 's3');
    expect(brief(d)).toEqual([
      ['added', at('docs/new.txt'), '', ''],
      ['removed', at('docs/notes.txt'), '', ''],
      ['added', at('newdir'), '', ''],
      ['added', at('newdir/f.txt'), '', ''],
      ['removed', at('olddir'), '', ''],
      ['removed', at('olddir/f.txt'), '', ''],
    ]);
    expect(d.summary.added).toEqual({ files: 2, dirs: 1, others: 0, bytes: 4 + 2 });
    expect(d.summary.removed).toEqual({ files: 2, dirs: 1, others: 0, bytes: 6 + 2 });
  });

  it('a type change, and several snapshots apart', () => {
    expect(brief(diff('s3', 's4'))).toEqual([['modified', at('link'), 'type', '']]);
    const d = diff('s1', 's5');
    expect(brief(d)).toEqual([
      ['modified', at('a.txt'), 'metadata', 'mtime'], // same content as in s1 again
      ['added', at('docs/new.txt'), '', ''],
      ['removed', at('docs/notes.txt'), '', ''],
      ['modified', at('link'), 'type', ''],
      ['added', at('newdir'), '', ''],
      ['added', at('newdir/f.txt'), '', ''],
      ['removed', at('olddir'), '', ''],
      ['removed', at('olddir/f.txt'), '', ''],
      ['modified', at('run.sh'), 'metadata', 'mode'],
    ]);
    expect(d.summary.modified.type).toBe(1);
    expect(d.summary.added.files).toBe(3); // new.txt, f.txt and link as a file
    expect(d.summary.removed.others).toBe(1); // link as a symlink
  });

  it('of one file or directory, by a relative path, and of identical snapshots', () => {
    expect(brief(parseJson<DiffJson>(ok(['--json', 'diff', ids.s1, ids.s3, 'a.txt', '--path', src]).stdout))).toEqual([
      ['modified', at('a.txt'), 'content+metadata', 'mtime'],
    ]);
    expect(brief(diff('s2', 's3', at('docs')))).toEqual([
      ['added', at('docs/new.txt'), '', ''],
      ['removed', at('docs/notes.txt'), '', ''],
    ]);
    expect(brief(diff('s1', 's3', at('olddir')))).toEqual([
      ['removed', at('olddir'), '', ''],
      ['removed', at('olddir/f.txt'), '', ''],
    ]);
    expect(diff('s4', 's4').changes).toEqual([]);
    const missing = cli(['diff', ids.s1, ids.s2, at('nowhere')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('SNAP_NOT_FOUND');
  });

  it('prints one line per change and a summary for people, with dates as references', () => {
    const out = ok(['diff', '2026-03-01', '2026-03-03', src, '--path', src]).stdout.split('\n').filter(Boolean);
    expect(out).toEqual([
      `comparing ${ids.s1.slice(0, 8)} (2026-03-01 10:00:00) with ${ids.s3.slice(0, 8)} (2026-03-03 15:30:00), ${src}`,
      `M  ${at('a.txt')}  6 B -> 11 B, mtime 2026-03-01 10:00:00 -> 2026-03-03 09:00:00`,
      `+  ${at('docs/new.txt')}  4 B`,
      `-  ${at('docs/notes.txt')}  6 B`,
      `+  ${at('newdir')}/`,
      `+  ${at('newdir/f.txt')}  2 B`,
      `-  ${at('olddir')}/`,
      `-  ${at('olddir/f.txt')}  2 B`,
      `U  ${at('run.sh')}  mode 0644 -> 0755`,
      'summary: added 2 files (6 B), 1 dir; removed 2 files (8 B), 1 dir; modified 1 in content (6 B -> 11 B), 1 in metadata only, 0 in type',
    ]);
    expect(ok(['diff', ids.s4, ids.s4]).stdout).toContain('summary: no differences');
  });
});

interface FindJson {
  snapshot: Ref;
  matches: Array<{ path: string; type: string; size: number; mtime: string }>;
}

describe('find', () => {
  const find = (args: string[]): Array<[string, string[]]> =>
    parseJson<FindJson[]>(ok(['--json', 'find', ...args]).stdout).map((h) => [h.snapshot.id, h.matches.map((m) => m.path)]);

  it('matches names at any depth with a pattern without a slash', () => {
    const s1 = ['a.txt', 'docs/notes.txt', 'docs/small2.txt', 'olddir/f.txt', 'small1.txt'].map(at);
    const s3 = ['a.txt', 'docs/new.txt', 'docs/small2.txt', 'newdir/f.txt', 'small1.txt'].map(at);
    expect(find(['*.txt'])).toEqual([
      [ids.s1, s1],
      [ids.s2, s1],
      [ids.s3, s3],
      [ids.s4, s3],
      [ids.s5, s3],
    ]);
  });

  it('matches path ends, whole paths and directories only', () => {
    expect(find(['docs/*.md', '--path', src])).toEqual(['s1', 's2', 's3', 's4', 's5'].map((n) => [ids[n as Name], [at('docs/readme.md')]]));
    expect(find(['*.md'])).toEqual([
      [ids.s1, [at('docs/readme.md')]],
      [ids.other, [path.join(other, 'readme.md')]],
      ...['s2', 's3', 's4', 's5'].map((n) => [ids[n as Name], [at('docs/readme.md')]]),
    ]);
    expect(find([`${src}/*/f.txt`])).toEqual([
      [ids.s1, [at('olddir/f.txt')]],
      [ids.s2, [at('olddir/f.txt')]],
      ...['s3', 's4', 's5'].map((n) => [ids[n as Name], [at('newdir/f.txt')]]),
    ]);
    expect(find(['/f.txt'])).toEqual([]); // anchored at the root: no such path
    expect(find(['olddir/'])).toEqual([
      [ids.s1, [at('olddir')]],
      [ids.s2, [at('olddir')]],
    ]);
    expect(find(['link/'])).toEqual([]); // never a directory
    expect(find(['hard?'])).toEqual(['s1', 's2', 's3', 's4', 's5'].map((n) => [ids[n as Name], ['hard1', 'hard3', 'docs/hard2'].map(at).sort()]));
  });

  it('honours --since/--until and reports size and mtime', () => {
    const hits = parseJson<FindJson[]>(ok(['--json', 'find', 'a.txt', '--since', '2026-03-03', '--until', '2026-03-03']).stdout);
    expect(hits.map((h) => h.snapshot.id)).toEqual([ids.s2, ids.s3]);
    expect(hits[0]!.matches).toMatchObject([{ path: at('a.txt'), type: 'file', size: 11, mtime: '2026-03-03T09:00:00.000+00:00' }]);
    const out = ok(['find', 'new.txt']).stdout.split('\n').filter(Boolean);
    expect(out[0]).toBe(`snapshot ${ids.s3.slice(0, 8)} (2026-03-03 15:30:00) ${os.hostname()} ${src}`);
    expect(out[1]).toBe(`  -rw-r--r--        4 B  2026-03-03 15:30:00  ${at('docs/new.txt')}`);
    expect(out.at(-1)).toBe('3 matches in 3 of 6 snapshots');
  });

  it('refuses an empty pattern', () => {
    expect(cli(['find', '']).code).toBe(2);
  });
});

interface HistoryJson {
  path: string;
  versions: Array<{ event: string; snapshot: Ref; last: Ref; seen: number; aspects: string[]; fields: string[]; entry?: { type: string; size: number } }>;
}

describe('history', () => {
  const hist = (p: string, extra: string[] = []) =>
    parseJson<HistoryJson>(ok(['--json', 'history', p, ...extra]).stdout).versions.map((v) => [
      v.event,
      v.snapshot.id,
      v.last.id,
      v.seen,
      v.aspects.join('+'),
      v.fields.join('+'),
      v.entry ? `${v.entry.type}:${v.entry.size}` : '',
    ]);

  it('lists each version of a file with where it changed', () => {
    const expected = [
      ['added', ids.s1, ids.s1, 1, '', '', 'file:6'],
      ['modified', ids.s2, ids.s4, 3, 'content+metadata', 'mtime', 'file:11'],
      ['modified', ids.s5, ids.s5, 1, 'content+metadata', 'mtime', 'file:6'],
    ];
    expect(hist(at('a.txt'))).toEqual(expected);
    // A relative path, and filters; the snapshot of another folder never counts as a deletion.
    expect(hist('a.txt', ['--path', src])).toEqual(expected);
    expect(hist(at('a.txt'), ['--since', '2026-03-03'])).toEqual([
      ['added', ids.s2, ids.s4, 3, '', '', 'file:11'],
      ['modified', ids.s5, ids.s5, 1, 'content+metadata', 'mtime', 'file:6'],
    ]);
  });

  it('shows deletions, metadata-only changes, type changes and directories', () => {
    expect(hist(at('docs/notes.txt'))).toEqual([
      ['added', ids.s1, ids.s2, 2, '', '', 'file:6'],
      ['deleted', ids.s3, ids.s5, 3, '', '', ''],
    ]);
    expect(hist(at('run.sh'))).toEqual([
      ['added', ids.s1, ids.s1, 1, '', '', 'file:10'],
      ['modified', ids.s2, ids.s5, 4, 'metadata', 'mode', 'file:10'],
    ]);
    expect(hist(at('link'))).toEqual([
      ['added', ids.s1, ids.s3, 3, '', '', 'symlink:0'],
      ['modified', ids.s4, ids.s5, 2, 'type', '', 'file:11'],
    ]);
    expect(hist(at('newdir'))).toEqual([['added', ids.s3, ids.s5, 3, '', '', 'dir:0']]);
    expect(hist(at('docs'))).toEqual([
      ['added', ids.s1, ids.s2, 2, '', '', 'dir:0'],
      ['modified', ids.s3, ids.s5, 3, 'content', '', 'dir:0'],
    ]);
  });

  it('prints versions for people, and a path in no snapshot is an error', () => {
    const out = ok(['history', at('docs/notes.txt')]).stdout.split('\n').filter(Boolean);
    expect(out).toEqual([
      `added     ${ids.s1.slice(0, 8)} (2026-03-01 10:00:00)         6 B  mtime 2026-03-01 10:00:00  (2 snapshots, until ${ids.s2.slice(0, 8)})`,
      `deleted   ${ids.s3.slice(0, 8)} (2026-03-03 15:30:00)  (3 snapshots, until ${ids.s5.slice(0, 8)})`,
      `2 versions of ${at('docs/notes.txt')} in 6 snapshots searched`,
    ]);
    const r = cli(['history', at('nowhere')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('SNAP_NOT_FOUND');
  });
});

interface DupsJson {
  snapshot: Ref;
  groups: Array<{ size: number; wasted: number; copies: Array<{ paths: Array<{ path: string }> }> }>;
  duplicate_files: number;
  wasted: number;
}

describe('dups', () => {
  const dups = (args: string[]) => {
    const d = parseJson<DupsJson>(ok(['--json', 'dups', ...args]).stdout);
    return { ...d, groups: d.groups.map((g) => [g.size, g.wasted, g.copies.map((c) => c.paths.map((p) => p.path))]) };
  };

  it('groups identical files, largest waste first; hard links are one file, empty files none', () => {
    const d = dups([ids.s1]);
    expect(d.snapshot.id).toBe(ids.s1);
    expect(d.groups).toEqual([
      [200_000, 400_000, [[at('backup/big-again.bin')], [at('photos/big.bin')], [at('photos/copy.bin')]]],
      [12, 12, [[at('docs/hard2'), at('hard1')], [at('hard3')]]],
      [4, 4, [[at('docs/small2.txt')], [at('small1.txt')]]],
    ]);
    expect(d.duplicate_files).toBe(4);
    expect(d.wasted).toBe(400_016);
  });

  it('defaults to the latest snapshot, and takes --min-size and a directory', () => {
    expect(dups(['--path', src]).snapshot.id).toBe(ids.s5);
    expect(dups([ids.s1, '--min-size', '1K']).groups).toEqual([
      [200_000, 400_000, [[at('backup/big-again.bin')], [at('photos/big.bin')], [at('photos/copy.bin')]]],
    ]);
    expect(dups([ids.s1, at('photos')]).groups).toEqual([[200_000, 200_000, [[at('photos/big.bin')], [at('photos/copy.bin')]]]]);
    expect(dups([ids.s1, '--min-size', '1M']).groups).toEqual([]);
    expect(cli(['dups', ids.s1, '--min-size', 'lots']).code).toBe(2);
  });

  it('prints groups for people', () => {
    const out = ok(['dups', ids.s1, '--min-size', '10']).stdout.split('\n');
    expect(out).toEqual([
      `snapshot ${ids.s1.slice(0, 8)} (2026-03-01 10:00:00): 8 files scanned`,
      '',
      '390.6 KiB in duplicates: 3 copies of 195.3 KiB',
      `  ${at('backup/big-again.bin')}`,
      `  ${at('photos/big.bin')}`,
      `  ${at('photos/copy.bin')}`,
      '',
      '12 B in duplicates: 2 copies of 12 B',
      `  ${at('docs/hard2')}  =  ${at('hard1')}  (hard links)`,
      `  ${at('hard3')}`,
      '',
      '2 groups, 3 duplicate files; without deduplication they would take 390.6 KiB',
      '',
    ]);
  });
});

// ---- unit tests: the work the tree-id comparison and the find cache save ----

const id = (s: string): Buffer => createHash('sha256').update(s).digest();
const fileNode = (name: string, content: string): Node => ({
  name: Buffer.from(name), type: 'file', mode: 0o644, uid: 0, gid: 0, user: '', group: '', mtime: { sec: 0, nsec: 0 }, size: content.length, chunks: [id(content)],
});
const dirNode = (name: string, tree: Buffer): Node => ({
  name: Buffer.from(name), type: 'dir', mode: 0o755, uid: 0, gid: 0, user: '', group: '', mtime: { sec: 0, nsec: 0 }, size: 0, tree,
});

/** An in-memory tree store that counts reads. */
class Trees implements TreeReader {
  private trees = new Map<string, Tree>();
  reads = 0;
  put(nodes: Node[]): Buffer {
    const sorted = [...nodes].sort((a, b) => Buffer.compare(a.name, b.name));
    const key = id(JSON.stringify(sorted.map((n) => [n.name.toString(), n.type, n.chunks?.[0]?.toString('hex'), n.tree?.toString('hex')])));
    this.trees.set(key.toString('hex'), Tree.of(sorted));
    return key;
  }
  async readTree(t: Buffer): Promise<Tree> {
    this.reads++;
    return this.trees.get(t.toString('hex'))!;
  }
}

/** A root of `n` directories, each with two files; `edit` changes one file in directory `edit`. */
function bigTree(trees: Trees, n: number, edit?: number): Buffer {
  const dirs: Node[] = [];
  for (let i = 0; i < n; i++) {
    const sub = trees.put([fileNode('a.txt', `a${i}${i === edit ? 'changed' : ''}`), fileNode('b.dat', `b${i}`)]);
    dirs.push(dirNode(`d${String(i).padStart(4, '0')}`, sub));
  }
  return trees.put(dirs);
}

describe('unchanged subtrees are skipped', () => {
  it('diff reads only the trees on the path to a change', async () => {
    const trees = new Trees();
    const a = bigTree(trees, 1000);
    const b = bigTree(trees, 1000, 417);
    trees.reads = 0;
    const changes = [];
    for await (const c of diffTrees(trees, a, b, Buffer.from('/'))) changes.push([c.kind, c.path.toString(), c.aspects]);
    expect(changes).toEqual([['modified', '/d0417/a.txt', ['content']]]);
    expect(trees.reads).toBe(4); // two roots, two versions of d0417
  });

  it('find walks each distinct tree once across similar snapshots', async () => {
    const trees = new Trees();
    const roots = [bigTree(trees, 500), bigTree(trees, 500, 3), bigTree(trees, 500, 3), bigTree(trees, 500, 9)];
    const snapsOf = roots.map((tree, i) => ({ id: String(i).repeat(64), tree }) as unknown as StoredSnapshot);
    trees.reads = 0;
    const cache = new FindCache();
    const counts: number[] = [];
    for await (const hit of findInSnapshots(trees, snapsOf, compileFindPattern('a.txt'), cache)) counts.push(hit.matches.length);
    expect(counts).toEqual([500, 500, 500, 500]);
    // 501 trees for the first snapshot, then a new root and one new directory per changed snapshot
    expect(trees.reads).toBe(501 + 2 + 0 + 2);
  });

  it('history reads each distinct tree on the path once', async () => {
    const trees = new Trees();
    // Every snapshot edits another directory, so every root differs; d0005 changes in one of them.
    const snapsOf = Array.from({ length: 50 }, (_, i) => ({ id: String(i).padStart(64, '0'), paths: ['/'], tree: bigTree(trees, 200, i) }) as unknown as StoredSnapshot);
    trees.reads = 0;
    const versions = [];
    for await (const v of history(trees, snapsOf, '/d0005/a.txt')) versions.push([v.event, v.snapshot.id.slice(-2), v.seen, v.aspects]);
    expect(versions).toEqual([
      ['added', '00', 5, []],
      ['modified', '05', 1, ['content']],
      ['modified', '06', 44, ['content']],
    ]);
    expect(trees.reads).toBe(50 + 2); // every root, and the two versions of d0005
  });
});
