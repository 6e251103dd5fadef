// `snap watch` at its edges (docs/automation.md, "Watch"): the real CLI, the real @parcel/watcher,
// real files. A change made while a backup runs, after it read the folder, is in the next
// snapshot; a real inotify queue overflow (the kernel's queue made small, the watcher stopped
// during a burst) is found, scanned for, and the watch restarted; a rename between two sources,
// and a folder moved in with subfolders, are backed up and their later changes reported; a folder
// that could not be read is read again once it can be, event or not; `restore --delete` into the
// watched tree gives a snapshot of exactly the restored state; kill -9 while the operation-log
// record is written leaves the whole record or none, a clean check, and a watch that resumes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { ROOT, canSetpriv, describeTree, snap, snapAsync, tmpDir } from './helpers/cli.js';
import { adopt, bigTree, catFile, hook, killWatchers, matches, nth, sleep, snapshotPaths, snapshots, startWatch, waitFor } from './helpers/watch-run.js';

afterEach(killWatchers);

const QUEUE = '/proc/sys/fs/inotify/max_queued_events';

/** Whether this process may lower the kernel's inotify queue (root, /proc/sys writable). */
function canSetQueue(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    fs.writeFileSync(QUEUE, fs.readFileSync(QUEUE, 'utf8'));
    return true;
  } catch {
    return false;
  }
}

type WatchRecord = { command: string; result: string; snapshotsAdded: string[] };
const watchRecords = (repo: string): WatchRecord[] => {
  const r = snap(['--repo', repo, '--json', 'log']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as WatchRecord[]).filter((l) => l.command === 'watch');
};

describe('snap watch at its edges', () => {
  it('a change made while a backup runs, after it read that folder, is in the next snapshot', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    const control = path.join(base, 'control');
    bigTree(src, 4);
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const w = startWatch(repo, [src, '--debounce', '300ms', '--max-interval', '1h'], { SNAP_WATCH_TEST_CONTROL: control });
    await nth(w, 1);
    // The next backup stops after its walk, before it saves.
    await hook(w, control, 'hold');
    fs.writeFileSync(path.join(src, 'd1', 's1', 'f1'), 'the edit that starts the backup\n');
    await waitFor('the backup to hold after its walk', () => fs.existsSync(`${control}.held`), w);
    // It has read d1/s1 (reported) and taken d2/s3 from the previous walk; both change now.
    fs.writeFileSync(path.join(src, 'd1', 's1', 'f2'), 'changed while the backup held\n');
    fs.writeFileSync(path.join(src, 'd1', 's1', 'new'), 'new while the backup held\n');
    fs.writeFileSync(path.join(src, 'd2', 's3', 'f0'), 'changed in a trusted folder while the backup held\n');
    await sleep(1000); // their events arrive while it holds
    await hook(w, control, 'release');
    const s2 = await nth(w, 2);
    expect(s2).toMatchObject({ reason: 'changes', scan: 'trusted' });
    expect(catFile(repo, s2.id!, path.join(src, 'd1', 's1', 'f1'))).toBe('the edit that starts the backup\n');
    // The walk was over before these changes: this snapshot does not hold them...
    expect(catFile(repo, s2.id!, path.join(src, 'd1', 's1', 'f2'))).toBe('file 1/1/2\n');
    expect(snapshotPaths(repo, s2.id!, src)).not.toContain(path.join('d1', 's1', 'new'));
    // ...the next one does: their events were not used up by the backup that was running.
    const s3 = await nth(w, 3);
    expect(s3).toMatchObject({ reason: 'changes', scan: 'trusted' });
    matches(repo, s3, src);
    expect(catFile(repo, s3.id!, path.join(src, 'd1', 's1', 'f2'))).toBe('changed while the backup held\n');
    expect(catFile(repo, s3.id!, path.join(src, 'd2', 's3', 'f0'))).toBe('changed in a trusted folder while the backup held\n');
    w.child.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 60_000);

  it.skipIf(!canSetQueue())('a real inotify queue overflow is reported, scanned for, and the watch restarted (skipped unless root with a writable /proc/sys)', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    bigTree(src, 10);
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    // The watcher's inotify instance gets the queue size of when it starts: 64 events. Only
    // for as long as the watch takes to start (other processes' watchers start meanwhile too).
    const was = fs.readFileSync(QUEUE, 'utf8').trim();
    let w;
    try {
      fs.writeFileSync(QUEUE, '64');
      w = startWatch(repo, [src, '--debounce', '500ms', '--max-interval', '1h']);
      await waitFor('the watch to start', () => w!.events.find((e) => e.event === 'start'), w);
    } finally {
      fs.writeFileSync(QUEUE, was);
    }
    expect(fs.readFileSync(QUEUE, 'utf8').trim()).toBe(was);
    await nth(w, 1);
    // The watch stopped (SIGSTOP: its reading thread too) during a burst of about 700 events:
    // the kernel queues 64 and drops the rest, as when a reader falls behind.
    process.kill(w.child.pid!, 'SIGSTOP');
    try {
      for (let i = 0; i < 10; i++) {
        for (let k = 0; k < 20; k++) fs.writeFileSync(path.join(src, `d${i}`, 's2', `burst${k}`), `burst ${i}/${k}\n`);
        fs.mkdirSync(path.join(src, `d${i}`, 'fresh', 'inner'), { recursive: true });
        fs.writeFileSync(path.join(src, `d${i}`, 'fresh', 'inner', 'f'), `fresh ${i}\n`);
        fs.writeFileSync(path.join(src, `d${i}`, 's4', 'f9'), `edited in the burst ${i}\n`);
      }
    } finally {
      process.kill(w.child.pid!, 'SIGCONT');
    }
    const lost = await waitFor('lost-events', () => w!.events.find((e) => e.event === 'lost-events'), w);
    expect(String(lost.message)).toMatch(/max_queued_events 64/);
    const s2 = await nth(w, 2);
    expect(s2).toMatchObject({ reason: 'lost-events', scan: 'full', trusted_dirs: 0 });
    matches(repo, s2, src);
    expect(catFile(repo, s2.id!, path.join(src, 'd9', 's4', 'f9'))).toBe('edited in the burst 9\n');
    // The watch was restarted: a folder made while events were dropped is watched, so a change
    // in it is an event and a trusted backup finds it.
    fs.writeFileSync(path.join(src, 'd7', 'fresh', 'inner', 'later'), 'after the overflow\n');
    const s3 = await nth(w, 3);
    expect(s3).toMatchObject({ reason: 'changes', scan: 'trusted' });
    matches(repo, s3, src);
    w.child.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 90_000);

  it('a file and a folder with subfolders moved from one source to another: only under the second, and their later changes are events', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const a = path.join(base, 'A');
    const b = path.join(base, 'B');
    fs.mkdirSync(path.join(a, 'dir', 'sub', 'deeper'), { recursive: true });
    fs.mkdirSync(b);
    fs.writeFileSync(path.join(a, 'x'), 'the file x\n');
    fs.writeFileSync(path.join(a, 'stays'), 'stays in A\n');
    fs.writeFileSync(path.join(a, 'dir', 'top'), 'top of dir\n');
    fs.writeFileSync(path.join(a, 'dir', 'sub', 'f'), 'in sub\n');
    fs.writeFileSync(path.join(a, 'dir', 'sub', 'deeper', 'g'), 'in deeper\n');
    fs.writeFileSync(path.join(b, 'b'), 'in B\n');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const w = startWatch(repo, [a, b, '--debounce', '400ms', '--max-interval', '1h']);
    const s1 = await nth(w, 1);
    expect(snapshotPaths(repo, s1.id!, a)).toEqual(['dir', 'dir/sub', 'dir/sub/deeper', 'dir/sub/deeper/g', 'dir/sub/f', 'dir/top', 'stays', 'x']);

    fs.renameSync(path.join(a, 'x'), path.join(b, 'x'));
    fs.renameSync(path.join(a, 'dir'), path.join(b, 'dir'));
    const s2 = await nth(w, 2);
    expect(s2).toMatchObject({ reason: 'changes', scan: 'trusted' });
    expect(snapshotPaths(repo, s2.id!, a)).toEqual(['stays']);
    expect(snapshotPaths(repo, s2.id!, b)).toEqual(['b', 'dir', 'dir/sub', 'dir/sub/deeper', 'dir/sub/deeper/g', 'dir/sub/f', 'dir/top', 'x']);
    expect(catFile(repo, s2.id!, path.join(b, 'x'))).toBe('the file x\n');
    expect(catFile(repo, s2.id!, path.join(b, 'dir', 'sub', 'deeper', 'g'))).toBe('in deeper\n');
    expect(s2.files).toBe(6);

    // Changes inside the folder that moved in, in subfolders the watcher did not watch by themselves.
    fs.writeFileSync(path.join(b, 'dir', 'sub', 'deeper', 'g'), 'edited after the move\n');
    fs.writeFileSync(path.join(b, 'dir', 'sub', 'new'), 'new after the move\n');
    const s3 = await nth(w, 3);
    expect(s3).toMatchObject({ reason: 'changes', scan: 'trusted' });
    expect(catFile(repo, s3.id!, path.join(b, 'dir', 'sub', 'deeper', 'g'))).toBe('edited after the move\n');
    expect(snapshotPaths(repo, s3.id!, b)).toContain('dir/sub/new');

    // Moved within B, then changed inside: the events name the new place.
    fs.renameSync(path.join(b, 'dir'), path.join(b, 'moved'));
    const s4 = await nth(w, 4);
    expect(snapshotPaths(repo, s4.id!, b)).toEqual(['b', 'moved', 'moved/sub', 'moved/sub/deeper', 'moved/sub/deeper/g', 'moved/sub/f', 'moved/sub/new', 'moved/top', 'x']);
    fs.writeFileSync(path.join(b, 'moved', 'sub', 'f'), 'edited after the second move\n');
    const s5 = await nth(w, 5);
    expect(s5).toMatchObject({ reason: 'changes', scan: 'trusted' });
    expect(catFile(repo, s5.id!, path.join(b, 'moved', 'sub', 'f'))).toBe('edited after the second move\n');
    expect(snapshotPaths(repo, s5.id!, a)).toEqual(['stays']);

    // The source's own attributes changed, twice (each a backup, which may save nothing: a
    // source's own mode is in the folder above it): its watch goes on.
    const backups = (): number => w.events.filter((e) => e.event === 'snapshot' || e.event === 'unchanged').length;
    for (const mode of [0o700, 0o755]) {
      const n = backups();
      fs.chmodSync(b, mode);
      await waitFor('a backup after the chmod', () => backups() > n, w);
    }
    const n = snapshots(w).length;
    fs.writeFileSync(path.join(b, 'b'), 'after the source was chmodded\n');
    const s8 = await nth(w, n + 1);
    expect(s8).toMatchObject({ reason: 'changes', scan: 'trusted' });
    expect(catFile(repo, s8.id!, path.join(b, 'b'))).toBe('after the source was chmodded\n');
    w.child.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 60_000);

  it.skipIf(!canSetpriv())('a folder that could not be read is read again once it can be, with no event for it; one unreadable at start is watched once readable (skipped unless root with setpriv)', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    const control = path.join(base, 'control');
    bigTree(src, 4);
    const locked = path.join(src, 'd2', 's3');
    const early = path.join(src, 'd3', 's1');
    // Everything belongs to nobody, who runs the watch; root (this test) changes the mode.
    const own = (p: string): void => {
      fs.chownSync(p, 65534, 65534);
      if (fs.lstatSync(p).isDirectory()) for (const n of fs.readdirSync(p)) own(path.join(p, n));
    };
    own(base);
    const user = { uid: 65534, gid: 65534 };
    expect(snap(['--repo', repo, 'init'], { asUser: user }).code).toBe(0);
    // This test (root) reads nobody's repository too.
    const trusted = process.env.SNAP_TRUSTED_REPOS;
    process.env.SNAP_TRUSTED_REPOS = repo;
    onTestFinished(() => {
      if (trusted === undefined) delete process.env.SNAP_TRUSTED_REPOS;
      else process.env.SNAP_TRUSTED_REPOS = trusted;
    });
    // One folder cannot be read from the start: the watcher cannot list it either.
    fs.chmodSync(early, 0o000);
    const w = adopt(snapAsync(['--repo', repo, '--json', 'watch', src, '--debounce', '400ms', '--max-interval', '1h'], { asUser: user, env: { SNAP_WATCH_TEST_CONTROL: control } }));
    expect(await nth(w, 1)).toMatchObject({ reason: 'start', warnings: 1 });
    fs.chmodSync(locked, 0o000);
    const s2 = await nth(w, 2);
    expect(s2).toMatchObject({ reason: 'changes', warnings: 2 });
    expect(w.stderr()).toMatch(/s3: cannot list directory/);
    expect(snapshotPaths(repo, s2.id!, src).filter((p) => p.startsWith('d2/s3/'))).toEqual([]);
    // Readable again, with its event dropped: only a change elsewhere is reported.
    await hook(w, control, 'pause');
    fs.chmodSync(locked, 0o755);
    await sleep(500);
    await hook(w, control, 'resume');
    fs.writeFileSync(path.join(src, 'd0', 's0', 'f0'), 'elsewhere\n');
    const s3 = await nth(w, 3);
    expect(s3).toMatchObject({ reason: 'changes', scan: 'trusted', warnings: 1 });
    expect(catFile(repo, s3.id!, path.join(locked, 'f4'))).toBe('file 2/3/4\n');
    expect(snapshotPaths(repo, s3.id!, src).filter((p) => p.startsWith('d2/s3/'))).toHaveLength(10);
    // The folder unreadable from the start becomes readable (an event), and is watched from then
    // on: a change in it later is an event too.
    fs.chmodSync(early, 0o755);
    const s4 = await nth(w, 4);
    expect(s4).toMatchObject({ reason: 'changes', warnings: 0 });
    matches(repo, s4, src);
    fs.writeFileSync(path.join(early, 'f2'), 'changed once readable\n');
    const s5 = await nth(w, 5);
    expect(s5).toMatchObject({ reason: 'changes', scan: 'trusted' });
    expect(catFile(repo, s5.id!, path.join(early, 'f2'))).toBe('changed once readable\n');
    matches(repo, s5, src);
    w.child.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 60_000);

  it('restore --delete of an older snapshot into the watched tree: the next snapshot is exactly the restored tree', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const orig = path.join(base, 'orig');
    const target = path.join(base, 'target');
    bigTree(orig, 4);
    fs.symlinkSync('d1/s1/f1', path.join(orig, 'link'));
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const c = snap(['--repo', repo, '--json', 'create', orig]);
    expect(c.code, c.stderr).toBe(0);
    const old = (JSON.parse(c.stdout) as { id: string }).id;
    // The watched tree is that snapshot restored (at target + its path), then changed.
    expect(snap(['--repo', repo, 'restore', old, target]).code).toBe(0);
    const src = path.join(target, orig);
    const w = startWatch(repo, [src, '--debounce', '500ms', '--max-interval', '1h']);
    await nth(w, 1);
    fs.writeFileSync(path.join(src, 'd0', 's0', 'f0'), 'changed later\n');
    fs.writeFileSync(path.join(src, 'd0', 's1', 'extra-file'), 'extra, deep in a folder\n');
    fs.rmSync(path.join(src, 'd1', 's2'), { recursive: true });
    fs.mkdirSync(path.join(src, 'extra', 'deeper'), { recursive: true });
    fs.writeFileSync(path.join(src, 'extra', 'deeper', 'x'), 'extra\n');
    fs.renameSync(path.join(src, 'd3'), path.join(src, 'd3-renamed'));
    fs.rmSync(path.join(src, 'link'));
    fs.writeFileSync(path.join(src, 'link'), 'a file where the link was\n');
    const s2 = await nth(w, 2);
    matches(repo, s2, src);

    // Mirror the old snapshot back while the watch runs.
    const r = snap(['--repo', repo, 'restore', old, target, '--delete']);
    expect(r.code, r.stderr).toBe(0);
    expect(describeTree(src)).toEqual(describeTree(orig));
    // The backups that follow settle on the restored tree (the first may have started mid-way).
    const backups = (): number => w.events.filter((e) => e.event === 'snapshot' || e.event === 'unchanged').length;
    let n = backups();
    await waitFor('a backup after the restore', () => backups() > n, w);
    for (;;) {
      n = backups();
      await sleep(2000);
      if (backups() === n) break;
    }
    const last = snapshots(w).at(-1)!;
    expect(last.id).not.toBe(s2.id);
    matches(repo, last, src);
    const again = path.join(base, 'again');
    const rr = snap(['--repo', repo, 'restore', last.id!, again]);
    expect(rr.code, rr.stderr).toBe(0);
    expect(describeTree(path.join(again, src))).toEqual(describeTree(orig));
    w.child.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 90_000);

  it('kill -9 while it writes its operation-log record: the whole record or none, check is clean, a restarted watch resumes', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'a'), 'one\n');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const preload = path.join(ROOT, 'test', 'helpers', 'kill-at.cjs');
    let records = 0;
    for (const at of ['created', 'written', 'synced', 'linked']) {
      // Something new: the watch's first backup saves a snapshot, then writes its record.
      fs.writeFileSync(path.join(src, at), `${at}\n`);
      const w = startWatch(repo, [src, '--debounce', '300ms'], { NODE_OPTIONS: `--require ${preload}`, SNAP_TEST_KILL_DIR: path.join(repo, 'log'), SNAP_TEST_KILL_AT: at });
      const ex = await w.exited;
      expect(ex.signal, `${at}: ${w.stderr()}`).toBe('SIGKILL');
      expect(snapshots(w)).toHaveLength(1);
      // Only a record that was linked into place is there, whole.
      if (at === 'linked') records++;
      const recs = watchRecords(repo);
      expect(recs, at).toHaveLength(records);
      if (at === 'linked') expect(recs.at(-1)).toMatchObject({ result: 'ok', snapshotsAdded: [snapshots(w)[0]!.id] });
      const log = snap(['--repo', repo, 'log']);
      expect(log.code, log.stderr).toBe(0);
      expect(log.stderr).toBe('');
      const ck = snap(['--repo', repo, 'check']);
      expect(ck.code, `${at}: ${ck.stdout}${ck.stderr}`).toBe(0);
    }
    // A restarted watch resumes from the last snapshot: nothing new at start, the next change saved and recorded.
    const w = startWatch(repo, [src, '--debounce', '300ms', '--max-interval', '1h']);
    await waitFor('a start backup with nothing new', () => w.events.find((e) => e.event === 'unchanged' && e.reason === 'start'), w);
    fs.writeFileSync(path.join(src, 'after'), 'after the kills\n');
    const s = await nth(w, 1);
    expect(s.reason).toBe('changes');
    expect(snapshotPaths(repo, s.id!, src)).toEqual(['a', 'after', 'created', 'linked', 'synced', 'written']);
    w.child.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
    // Its records: the snapshot it saved (a start backup that saved nothing may add one with none).
    const recs = watchRecords(repo).slice(records);
    expect(recs.every((r) => r.result === 'ok')).toBe(true);
    expect(recs.flatMap((r) => r.snapshotsAdded)).toEqual([s.id]);
    expect(snap(['--repo', repo, 'check']).code).toBe(0);
  }, 120_000);
});
