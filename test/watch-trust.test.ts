// `snap watch` trusting the previous walk (docs/automation.md, "What a backup reads"): the real
// CLI and the real @parcel/watcher on a real tree. A backup for changes reads only the folders
// above and at the reported paths, takes every other folder from the previous walk (the lstat
// count in --json shows it: a tenth or less of a full scan's), and still holds exactly the tree on
// disk (names, contents, modes, times) with the right totals. Events lost without a word (the test hook pauses delivery)
// are invisible to such a backup, which is what proves it did not read those folders, and are
// found by the full scan after an overflow (the hook injects one into the watcher's error path)
// and by the --max-interval rescan. A snapshot of the same paths by another process makes the
// next backup a full scan.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeTree, snap, tmpDir } from './helpers/cli.js';
import { type Running, bigTree, catFile, hook, killWatchers, matches, nth, sleep, snapshotPaths, snapshots, startWatch as startWatching, waitFor } from './helpers/watch-run.js';

function startWatch(repo: string, args: string[], control: string): Running {
  return startWatching(repo, args, { SNAP_WATCH_TEST_CONTROL: control });
}

afterEach(killWatchers);

describe('snap watch trusts the previous walk', () => {
  it('edits, creates, deletes, renames and a mkdir -p tree deep in a big untouched tree: exactly those changes, a tenth of the lstat calls of a full scan', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    const control = path.join(base, 'control');
    bigTree(src);
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const w = startWatch(repo, [src, '--debounce', '400ms', '--max-interval', '1h'], control);
    const s1 = await nth(w, 1);
    expect(s1).toMatchObject({ reason: 'start', scan: 'full', files: 2000, trusted_dirs: 0 });
    const fullLstats = s1.lstat_calls!;
    expect(fullLstats).toBeGreaterThanOrEqual(2000 + 240);

    // An edit and a new file, two folders deep.
    fs.writeFileSync(path.join(src, 'd7', 's3', 'f4'), 'edited, longer than before\n');
    fs.writeFileSync(path.join(src, 'd31', 's0', 'new'), 'a new file\n');
    const s2 = await nth(w, 2);
    expect(s2).toMatchObject({ reason: 'changes', scan: 'trusted', files_new: 1, files_changed: 1, files_unchanged: 1999 });
    matches(repo, s2, src);
    expect(catFile(repo, s2.id!, path.join(src, 'd7', 's3', 'f4'))).toBe('edited, longer than before\n');
    // Read: the root (40 folders), d7 and d31 (5 each), s3 and s0 (10 and 11 files); nothing else.
    expect(s2.lstat_calls!).toBeLessThan(100);
    expect(s2.readdir_calls).toBe(5);
    expect(s2.trusted_dirs).toBe(38 + 4 + 4);

    // A delete, a rename from one folder into another, a mode and a time changed (no content
    // change: only the events lead there; the restore below compares modes and times).
    fs.rmSync(path.join(src, 'd12', 's1', 'f0'));
    fs.renameSync(path.join(src, 'd20', 's2', 'f9'), path.join(src, 'd21', 's4', 'moved'));
    fs.chmodSync(path.join(src, 'd25', 's1', 'f1'), 0o600);
    fs.utimesSync(path.join(src, 'd26', 's2', 'f2'), new Date('2001-02-03T04:05:06Z'), new Date('2001-02-03T04:05:06Z'));
    fs.chmodSync(path.join(src, 'd27', 's3'), 0o700);
    const s3 = await nth(w, 3);
    // The two files whose ctime changed are read again (the files cache's rule).
    expect(s3).toMatchObject({ scan: 'trusted', files_new: 1, files_changed: 2, files_unchanged: 1997 });
    matches(repo, s3, src);
    expect(catFile(repo, s3.id!, path.join(src, 'd21', 's4', 'moved'))).toBe('file 20/2/9\n');
    // Six folders read, with their subfolders listed: still a tenth of a full scan.
    expect(s3.lstat_calls!).toBeLessThan(fullLstats / 10);

    // A fresh mkdir -p tree (the watcher reports its top only) is read completely; so is a
    // folder renamed into place.
    fs.mkdirSync(path.join(src, 'd5', 's0', 'x', 'y', 'z'), { recursive: true });
    fs.writeFileSync(path.join(src, 'd5', 's0', 'x', 'y', 'z', 'deep'), 'deep inside\n');
    fs.writeFileSync(path.join(src, 'd5', 's0', 'x', 'y', 'beside'), 'beside\n');
    fs.renameSync(path.join(src, 'd33'), path.join(src, 'd33-renamed'));
    const s4 = await nth(w, 4);
    expect(s4.scan).toBe('trusted');
    matches(repo, s4, src);
    expect(catFile(repo, s4.id!, path.join(src, 'd5', 's0', 'x', 'y', 'z', 'deep'))).toBe('deep inside\n');
    expect(s4.lstat_calls!).toBeLessThan(fullLstats / 10);

    // The last snapshot restored is the tree on disk: contents, modes, times.
    const target = path.join(base, 'restored');
    const r = snap(['--repo', repo, 'restore', s4.id!, target]);
    expect(r.code, r.stderr).toBe(0);
    expect(describeTree(path.join(target, src))).toEqual(describeTree(src));
    expect(snapshots(w)).toHaveLength(4);
    w.child.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 60_000);

  it('a change whose events were lost is not read by a trusted backup, and is found by the full scan after an overflow', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    const control = path.join(base, 'control');
    bigTree(src);
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const w = startWatch(repo, [src, '--debounce', '400ms', '--max-interval', '1h'], control);
    await nth(w, 1);

    // Events lost without a word: the watcher drops them.
    await hook(w, control, 'pause');
    fs.writeFileSync(path.join(src, 'd3', 's2', 'f1'), 'changed while events were lost\n');
    fs.writeFileSync(path.join(src, 'd3', 's2', 'unseen'), 'new while events were lost\n');
    await sleep(500);
    await hook(w, control, 'resume');
    fs.writeFileSync(path.join(src, 'd9', 's0', 'f0'), 'reported\n');
    const s2 = await nth(w, 2);
    // d3 was taken from the previous walk, unread: the snapshot holds its old contents.
    expect(s2).toMatchObject({ reason: 'changes', scan: 'trusted', files: 2000 });
    expect(catFile(repo, s2.id!, path.join(src, 'd9', 's0', 'f0'))).toBe('reported\n');
    expect(catFile(repo, s2.id!, path.join(src, 'd3', 's2', 'f1'))).toBe('file 3/2/1\n');
    expect(snapshotPaths(repo, s2.id!, src)).not.toContain(path.join('d3', 's2', 'unseen'));

    // The watcher reports an overflow: the next backup reads everything and finds both.
    await hook(w, control, 'overflow');
    await waitFor('lost-events', () => w.events.find((e) => e.event === 'lost-events'), w);
    const s3 = await nth(w, 3);
    expect(s3).toMatchObject({ reason: 'lost-events', scan: 'full', trusted_dirs: 0 });
    expect(s3.lstat_calls!).toBeGreaterThanOrEqual(2240);
    matches(repo, s3, src);
    expect(catFile(repo, s3.id!, path.join(src, 'd3', 's2', 'f1'))).toBe('changed while events were lost\n');

    // After the full scan, trusted backups again.
    fs.writeFileSync(path.join(src, 'd1', 's1', 'f1'), 'after the overflow\n');
    const s4 = await nth(w, 4);
    expect(s4.scan).toBe('trusted');
    matches(repo, s4, src);
    w.child.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 60_000);

  it('the --max-interval rescan finds a change never reported', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    const control = path.join(base, 'control');
    bigTree(src, 4);
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const w = startWatch(repo, [src, '--debounce', '300ms', '--max-interval', '4s'], control);
    await nth(w, 1);
    await hook(w, control, 'pause');
    fs.writeFileSync(path.join(src, 'd3', 's4', 'f2'), 'never reported\n');
    const s2 = await nth(w, 2);
    expect(s2).toMatchObject({ reason: 'rescan', scan: 'full' });
    expect(catFile(repo, s2.id!, path.join(src, 'd3', 's4', 'f2'))).toBe('never reported\n');
    matches(repo, s2, src);
    w.child.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 30_000);

  it('a snapshot of the same paths by another process makes the next backup a full scan', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    const control = path.join(base, 'control');
    bigTree(src, 4);
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const w = startWatch(repo, [src, '--debounce', '300ms', '--max-interval', '1h'], control);
    await nth(w, 1);
    fs.writeFileSync(path.join(src, 'd1', 's1', 'f1'), 'reported\n');
    expect((await nth(w, 2)).scan).toBe('trusted');
    // The watch's events are relative to its own snapshot, not to this one.
    const other = snap(['--repo', repo, 'create', src]);
    expect(other.code, other.stderr).toBe(0);
    fs.writeFileSync(path.join(src, 'd2', 's2', 'f2'), 'after the other snapshot\n');
    const s3 = await nth(w, 3);
    expect(s3).toMatchObject({ reason: 'changes', scan: 'full' });
    matches(repo, s3, src);
    // It follows the other process's snapshot.
    const list = JSON.parse(snap(['--repo', repo, '--json', 'list']).stdout) as { id: string; parent?: string }[];
    const otherId = list.find((l) => l.id !== s3.id && !snapshots(w).some((e) => e.id === l.id))!.id;
    expect(list.find((l) => l.id === s3.id)!.parent).toBe(otherId);
    w.child.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 30_000);
});
