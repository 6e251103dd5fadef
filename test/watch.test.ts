// `snap watch` (docs/automation.md, "Watch"): the real CLI watching a real tree with the real
// watcher. Each change (new, changed, deleted, renamed file) is in the snapshot that follows; a
// fresh `mkdir -p` tree is found by the periodic rescan even when no event triggers a backup; a
// burst makes one or two snapshots; other commands (list, restore, create) run while it watches;
// SIGTERM ends it with exit 0 and no lock left; retention and hooks run per snapshot; each
// backup is one record in the operation log.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { snap, snapAsync, tmpDir } from './helpers/cli.js';
import { adopt, catFile, killWatchers, nth, sleep, snapshotPaths, snapshots, startWatch, waitFor } from './helpers/watch-run.js';

afterEach(killWatchers);

/** The repository's lock files (none before the first command that locks). */
/** Files under the repository's data/ (packs, and a pack being written). */
function packFiles(repo: string): number {
  const data = path.join(repo, 'data');
  return fs.existsSync(data) ? fs.readdirSync(data, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length : 0;
}

function lockFiles(repo: string): string[] {
  try {
    return fs.readdirSync(path.join(repo, 'locks'));
  } catch {
    return [];
  }
}


describe('snap watch', () => {
  it('backs up each change: new, changed, deleted and renamed files; a fresh mkdir -p tree', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'a'), 'one');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const w = startWatch(repo, [src, '--debounce', '500ms', '--max-interval', '1h']);
    const s1 = await nth(w, 1);
    expect(s1.reason).toBe('start');
    expect(snapshotPaths(repo, s1.id!, src)).toEqual(['a']);

    fs.writeFileSync(path.join(src, 'b'), 'new file');
    const s2 = await nth(w, 2);
    expect(s2.reason).toBe('changes');
    expect(snapshotPaths(repo, s2.id!, src)).toEqual(['a', 'b']);
    expect(s2).toMatchObject({ files_new: 1, files_changed: 0, files_unchanged: 1 });

    fs.writeFileSync(path.join(src, 'a'), 'one, changed');
    const s3 = await nth(w, 3);
    expect(catFile(repo, s3.id!, path.join(src, 'a'))).toBe('one, changed');
    expect(s3).toMatchObject({ files_new: 0, files_changed: 1, files_unchanged: 1 });

    fs.rmSync(path.join(src, 'b'));
    const s4 = await nth(w, 4);
    expect(snapshotPaths(repo, s4.id!, src)).toEqual(['a']);

    fs.renameSync(path.join(src, 'a'), path.join(src, 'renamed'));
    const s5 = await nth(w, 5);
    expect(snapshotPaths(repo, s5.id!, src)).toEqual(['renamed']);
    expect(catFile(repo, s5.id!, path.join(src, 'renamed'))).toBe('one, changed');

    fs.mkdirSync(path.join(src, 'x', 'y', 'z'), { recursive: true });
    fs.writeFileSync(path.join(src, 'x', 'y', 'z', 'deep'), 'deep inside');
    const s6 = await nth(w, 6);
    expect(snapshotPaths(repo, s6.id!, src)).toEqual(['renamed', 'x', 'x/y', 'x/y/z', 'x/y/z/deep']);
    expect(snapshots(w)).toHaveLength(6);

    w.child.kill('SIGTERM');
    const ex = await w.exited;
    expect(ex.code).toBe(0);
    expect(w.events.at(-1)).toMatchObject({ event: 'stop' });

    // One operation-log record per backup, each with the snapshot it added.
    const log = JSON.parse(snap(['--repo', repo, '--json', 'log']).stdout) as { command: string; result: string; snapshotsAdded: string[] }[];
    const watchRecs = log.filter((l) => l.command === 'watch');
    expect(watchRecs.map((l) => l.snapshotsAdded)).toEqual(snapshots(w).map((s) => [s.id]));
    expect(watchRecs.every((l) => l.result === 'ok')).toBe(true);
  }, 120_000);

  it('finds what no event announced by the periodic rescan (--max-interval); a rescan with no change saves nothing', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'a'), 'one');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    // Events would only lead to a backup after an hour: whatever is found in the test is the rescan's.
    const w = startWatch(repo, [src, '--debounce', '1h', '--max-delay', '1h', '--max-interval', '2s']);
    await nth(w, 1);
    await waitFor('a rescan that found nothing', () => w.events.find((e) => e.event === 'unchanged' && e.reason === 'rescan'), w);
    // A change beside the source (the folder above it gets a new time) is no change of the source.
    fs.writeFileSync(path.join(base, 'beside'), 'not watched');
    const seen = w.events.length;
    await waitFor('another rescan that found nothing', () => w.events.slice(seen).find((e) => e.event === 'unchanged' && e.reason === 'rescan'), w);
    expect(snapshots(w)).toHaveLength(1);
    fs.mkdirSync(path.join(src, 'p', 'q', 'r'), { recursive: true });
    fs.writeFileSync(path.join(src, 'p', 'q', 'r', 'f'), 'in a fresh tree');
    const s2 = await nth(w, 2);
    expect(s2.reason).toBe('rescan');
    expect(snapshotPaths(repo, s2.id!, src)).toEqual(['a', 'p', 'p/q', 'p/q/r', 'p/q/r/f']);
    w.child.kill('SIGINT');
    expect((await w.exited).code).toBe(0);
  }, 60_000);

  it('lets other commands use the repository between backups; SIGTERM ends it within seconds with the lock released', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    const other = path.join(base, 'other');
    fs.mkdirSync(src);
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(src, 'a'), 'one');
    fs.writeFileSync(path.join(other, 'o'), 'other');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const w = startWatch(repo, [src, '--debounce', '300ms']);
    const s1 = await nth(w, 1);
    // While it watches: list, restore and another backup, none waiting for a lock.
    const t0 = Date.now();
    const l = snap(['--repo', repo, 'list']);
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout).toContain(s1.id!.slice(0, 8));
    const target = path.join(base, 'restored');
    const r = snap(['--repo', repo, 'restore', s1.id!, target]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(target, src, 'a'), 'utf8')).toBe('one');
    const c = snap(['--repo', repo, 'create', other]);
    expect(c.code, c.stderr).toBe(0);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(r.stderr).not.toMatch(/waiting/);

    // Still watching afterwards.
    fs.writeFileSync(path.join(src, 'b'), 'two');
    await nth(w, 2);

    const stopAt = Date.now();
    w.child.kill('SIGTERM');
    const ex = await w.exited;
    expect(ex.code).toBe(0);
    expect(Date.now() - stopAt).toBeLessThan(5000);
    expect(w.stderr()).not.toMatch(/internal error|SNAP_INTERNAL/);
    expect(lockFiles(repo)).toEqual([]);
    // gc takes the exclusive lock: it would wait (and fail after --lock-wait) if watch had left one.
    const gc = snap(['--repo', repo, '--lock-wait', '2s', 'gc']);
    expect(gc.code, gc.stderr).toBe(0);
    expect(snap(['--repo', repo, 'check']).code).toBe(0);
  }, 60_000);

  it('SIGTERM in the middle of a backup abandons it safely: no snapshot record, check is clean, a restart backs up', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    // Incompressible data, enough that the first backup takes a while on a fast, idle machine too.
    for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(src, `f${i}`), randomBytes(1 << 20));
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const w = startWatch(repo, [src]);
    // Stopped once its first pack is stored: objects written, no snapshot record yet.
    await waitFor('the first pack of the first backup', () => packFiles(repo) > 0, w);
    w.child.kill('SIGTERM');
    const ex = await w.exited;
    expect(ex.code).toBe(0);
    expect(lockFiles(repo)).toEqual([]);
    const ck = snap(['--repo', repo, 'check']);
    expect(ck.code, ck.stdout + ck.stderr).toBe(0);
    // Stopped before it finished: no snapshot was saved.
    expect(snapshots(w)).toHaveLength(0);
    expect(snap(['--repo', repo, '--json', 'list']).stdout.trim()).toBe('[]');
    const w2 = startWatch(repo, [src]);
    const s = await nth(w2, 1, 60_000);
    expect(s.files).toBe(200);
    w2.child.kill('SIGTERM');
    expect((await w2.exited).code).toBe(0);
    const log = JSON.parse(snap(['--repo', repo, '--json', 'log']).stdout) as { command: string; result: string }[];
    expect(log.filter((l) => l.command === 'watch').map((l) => l.result)).toEqual(['interrupted', 'ok']);
  }, 120_000);

  it('kill -9 in the middle of a backup leaves a repository check calls clean; a restart backs up', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    // Incompressible, so the backup takes long enough to be caught in the middle on a fast, idle
    // machine too (mostly-zero files of this size were backed up in under 500 ms there).
    for (let i = 0; i < 150; i++) fs.writeFileSync(path.join(src, `f${i}`), randomBytes(1 << 20));
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const w = startWatch(repo, [src]);
    // Killed once its first pack is stored: objects written, no snapshot record yet.
    await waitFor('the first pack of the first backup', () => packFiles(repo) > 0, w);
    w.child.kill('SIGKILL');
    await w.exited;
    expect(snapshots(w)).toHaveLength(0);
    const ck = snap(['--repo', repo, 'check']);
    expect(ck.code, ck.stdout + ck.stderr).toBe(0);
    const w2 = startWatch(repo, [src]);
    const s = await nth(w2, 1, 60_000);
    expect(s.files).toBe(150);
    w2.child.kill('SIGTERM');
    expect((await w2.exited).code).toBe(0);
    expect(snap(['--repo', repo, 'check']).code).toBe(0);
  }, 120_000);

  it('a burst of 10,000 new files (100 new folders) makes at most two snapshots', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const w = startWatch(repo, [src, '--debounce', '2s']);
    await nth(w, 1);
    for (let d = 0; d < 100; d++) {
      fs.mkdirSync(path.join(src, `d${d}`));
      for (let i = 0; i < 100; i++) fs.writeFileSync(path.join(src, `d${d}`, `f${i}`), `${d}/${i}`);
    }
    const last = await waitFor('all 10,000 files in a snapshot', () => snapshots(w).find((s) => s.files === 10_000), w, 120_000);
    await sleep(4000); // nothing more comes
    expect(snapshots(w).length - 1).toBeLessThanOrEqual(2);
    expect(snapshots(w).at(-1)!.id).toBe(last.id);
    w.child.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 240_000);

  it('applies the retention policy after each snapshot, runs gc, and runs hooks with the result', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    const other = path.join(base, 'other');
    fs.mkdirSync(src);
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(src, 'a'), '0');
    fs.writeFileSync(path.join(other, 'o'), 'kept: not this watch’s paths');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    expect(snap(['--repo', repo, 'create', other]).code).toBe(0);
    const hookLog = path.join(base, 'hooks');
    const w = startWatch(repo, [src, '--debounce', '300ms', '--keep-last', '2', '--gc-every', '1ms', '--on-success', `echo "$SNAP_COMMAND $SNAP_HOOK_RESULT $SNAP_SNAPSHOT_ID" >> '${hookLog}'`]);
    await nth(w, 1);
    for (let i = 1; i <= 3; i++) {
      fs.writeFileSync(path.join(src, 'a'), String(i));
      await nth(w, i + 1);
    }
    await waitFor('the second forget', () => w.events.filter((e) => e.event === 'forget').length >= 2, w);
    // --gc-every: gc ran after the snapshots (each, here) and freed what the forgotten ones alone held.
    await waitFor('a gc that freed something', () => w.events.find((e) => e.event === 'gc' && (e.bytes_freed as number) > 0), w);
    const hookLines = (): string[] => (fs.existsSync(hookLog) ? fs.readFileSync(hookLog, 'utf8').trim().split('\n') : []);
    await waitFor('the last hook', () => hookLines().length >= 4, w);
    w.child.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
    const list = JSON.parse(snap(['--repo', repo, '--json', 'list']).stdout) as { id: string; paths: string[] }[];
    const ids = snapshots(w).map((s) => s.id!);
    expect(list.filter((s) => s.paths[0] === src).map((s) => s.id).sort()).toEqual(ids.slice(-2).sort());
    expect(list.filter((s) => s.paths[0] === other)).toHaveLength(1);
    const hooks = fs.readFileSync(hookLog, 'utf8').trim().split('\n');
    expect(hooks).toEqual(ids.map((id) => `watch ok ${id}`));
  }, 60_000);

  it('memory stays flat over hundreds of backups (each opens and closes the repository)', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(src, `f${i}`), String(i));
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    // A small heap: anything kept from backup to backup would end in an out-of-memory crash.
    const w = startWatch(repo, [src, '--max-interval', '50ms'], { NODE_OPTIONS: '--max-old-space-size=40' });
    const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${w.child.pid}/status`, 'utf8'))![1]) * 1024;
    const scans = (): number => w.events.filter((e) => e.event === 'unchanged').length;
    // The least of 20 readings over 2 s: a leak raises it, a backup caught mid-way (its buffers,
    // a LevelDB open) does not.
    const settled = async (): Promise<number> => {
      let least = Infinity;
      for (let i = 0; i < 20; i++) {
        least = Math.min(least, rss());
        await sleep(100);
      }
      return least;
    };
    await waitFor('30 rescans', () => scans() >= 30, w, 60_000);
    const early = await settled();
    await waitFor('200 rescans', () => scans() >= 200, w, 180_000);
    const late = await settled();
    expect(w.child.exitCode).toBeNull();
    expect(late - early).toBeLessThan(24 * 1024 * 1024);
    const fds = fs.readdirSync(`/proc/${w.child.pid}/fd`).length;
    expect(fds).toBeLessThan(64);
    w.child.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 300_000);

  it('watches a single file through its folder, not recursively', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const file = path.join(base, 'notes.txt');
    fs.writeFileSync(file, 'one');
    fs.mkdirSync(path.join(base, 'sub'));
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const w = startWatch(repo, [file, '--debounce', '300ms']);
    await nth(w, 1);
    // Changes beside it (and below its folder) are not its changes: no backup runs for them.
    fs.writeFileSync(path.join(base, 'other'), 'x');
    fs.writeFileSync(path.join(base, 'sub', 'deep'), 'x');
    await sleep(2000);
    expect(w.events.filter((e) => e.event === 'snapshot' || e.event === 'unchanged')).toHaveLength(1);
    fs.writeFileSync(file, 'two');
    const s2 = await nth(w, 2);
    expect(s2.reason).toBe('changes');
    expect(catFile(repo, s2.id!, file)).toBe('two');
    w.child.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 60_000);

  it('falls back to fs.watch where @parcel/watcher does not load (SNAP_WATCHER=fs.watch forces it)', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'a'), 'one');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const w = startWatch(repo, [src, '--debounce', '300ms'], { SNAP_WATCHER: 'fs.watch' });
    await nth(w, 1);
    expect(w.events[0]).toMatchObject({ event: 'start', watcher: 'fs.watch' });
    fs.mkdirSync(path.join(src, 'n', 'm'), { recursive: true });
    fs.writeFileSync(path.join(src, 'n', 'm', 'b'), 'two');
    const s2 = await nth(w, 2);
    expect(s2.reason).toBe('changes');
    expect(snapshotPaths(repo, s2.id!, src)).toEqual(['a', 'n', 'n/m', 'n/m/b']);
    w.child.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 60_000);

  it('waits for a repository locked by another command, fails after --lock-wait, and tries again until it gets in', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    const src = path.join(base, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'a'), 'one');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    // An exclusive lock of a live process (this test's): what a long gc holds.
    const now = new Date().toISOString();
    const lock = path.join(repo, 'locks', 'ab'.repeat(32));
    fs.mkdirSync(path.dirname(lock), { recursive: true });
    fs.writeFileSync(lock, JSON.stringify({ host: os.hostname(), pid: process.pid, time: now, refreshed: now, exclusive: true, command: 'gc' }));
    const child = snapAsync(['--repo', repo, '--json', '--lock-wait', '1s', 'watch', src, '--debounce', '300ms']);
    const w = adopt(child);
    const err = await waitFor('a backup that found the repository locked', () => w.events.find((e) => e.event === 'error'), w);
    expect(err).toMatchObject({ reason: 'start', code: 'SNAP_LOCKED' });
    expect(snapshots(w)).toHaveLength(0);
    fs.rmSync(lock);
    const s1 = await nth(w, 1);
    expect(s1.reason).toBe('retry');
    w.child.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
    const log = JSON.parse(snap(['--repo', repo, '--json', 'log']).stdout) as { command: string; result: string; error?: { code: string } }[];
    expect(log.filter((l) => l.command === 'watch').map((l) => `${l.result} ${l.error?.code ?? ''}`.trim())).toEqual(expect.arrayContaining(['failed SNAP_LOCKED', 'ok']));
  }, 60_000);

  it('refuses a source that does not exist at the start; keeps going (with a warning) when one vanishes later', async () => {
    const base = tmpDir();
    const repo = path.join(base, 'repo');
    expect(snap(['--repo', repo, 'init']).code).toBe(0);
    const missing = snap(['--repo', repo, 'watch', path.join(base, 'nope')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/SNAP_NOT_FOUND/);

    const src = path.join(base, 'src');
    fs.mkdirSync(path.join(src, 'inner'), { recursive: true });
    fs.writeFileSync(path.join(src, 'inner', 'f'), 'x');
    const w = startWatch(repo, [path.join(src, 'inner'), '--debounce', '300ms', '--max-interval', '1h']);
    await nth(w, 1);
    fs.rmSync(path.join(src, 'inner'), { recursive: true });
    const err = await waitFor('a failed backup', () => w.events.find((e) => e.event === 'error'), w);
    expect(err.code).toBe('SNAP_NOT_FOUND');
    fs.mkdirSync(path.join(src, 'inner'));
    fs.writeFileSync(path.join(src, 'inner', 'g'), 'back');
    const s2 = await nth(w, 2, 60_000);
    expect(snapshotPaths(repo, s2.id!, path.join(src, 'inner'))).toEqual(['g']);
    // The folder that came back is watched anew: its next change is an event, not a rescan.
    fs.writeFileSync(path.join(src, 'inner', 'h'), 'after');
    const s3 = await nth(w, 3);
    expect(s3.reason).toBe('changes');
    expect(snapshotPaths(repo, s3.id!, path.join(src, 'inner'))).toEqual(['g', 'h']);
    w.child.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
    const log = JSON.parse(snap(['--repo', repo, '--json', 'log']).stdout) as { command: string; result: string; error?: { code: string } }[];
    expect(log.some((l) => l.command === 'watch' && l.result === 'failed' && l.error?.code === 'SNAP_NOT_FOUND')).toBe(true);
  }, 90_000);
});
