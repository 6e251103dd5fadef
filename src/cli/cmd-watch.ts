// `snap watch PATH...` (docs/automation.md, "Watch"): back up changes as they happen, for days.
// A backup runs at start (a full scan), after changes settle (--debounce of quiet, but at most
// --max-delay after the first change of a burst), after the watcher lost events, and every
// --max-interval in any case (events are hints: a fresh `mkdir -p` tree, a queue overflow or a
// change while snap was not running may give none). A backup for changes trusts the previous
// backup's walk for every folder with no reported path at or below it (create's `trust`); every
// other backup is a full scan (a `create` walk whose files cache re-reads only files whose size,
// times or inode changed). A backup that finds the tree exactly as in the previous snapshot
// saves nothing. Each backup takes the
// repository's shared lock and releases it when done, so every other command works between
// backups (and `list`, `restore`, another `create` during one). Failures (the repository locked
// for longer than --lock-wait, a source that vanished, a full disk) are warnings, retried with a
// growing pause; SIGINT or SIGTERM ends the watch with exit 0, a backup under way abandoned as an
// interrupted `create` is (no snapshot record, nothing half-written).
import * as path from 'node:path';
import type { Command } from 'commander';
import { SnapError, isSnapError } from '../core/errors.js';
import { displayPath, fsPath } from '../core/bytes.js';
import * as fs from 'node:fs';
import { shortId } from '../core/ids.js';
import { createSnapshot, type CreateResult, type WalkMemo } from '../ops/backup/create.js';
import { normalizeSources } from '../ops/fs/sources.js';
import { planForget, removeSnapshots } from '../ops/maintain/forget.js';
import { isEmptyPolicy, type RetentionPolicy } from '../model/retention.js';
import { fromSystemError } from '../core/errors.js';
import { type Ctx, withRepo } from './context.js';
import { bytes, duration, localDateTime } from './format.js';
import { collect, parseWaitMs } from './parse.js';
import { type HookFlags, hookEnv, hookOptions, runHook } from './hooks.js';
import { type KeepFlags, policyFromFlags } from './cmd-forget.js';
import { type ExcludeFlags, excludeOptions, excludeSettings } from './cmd-create.js';
import { runGc } from './cmd-gc.js';
import { recordOperation } from './oplog.js';
import { rawArgv } from './argv.js';
import { VERSION } from './version.js';
import { startWatcher, testHold, type Watcher } from './watcher.js';
import { EXIT_INTERRUPTED } from './interrupt.js';
import { isoLocal } from '../view/json.js';
import { useBackupHeap } from './backup-heap.js';

interface WatchFlags extends HookFlags, KeepFlags, ExcludeFlags {
  debounce: string;
  maxDelay: string;
  maxInterval: string;
  gcEvery?: string;
  tag: string[];
}

export function registerWatch(program: Command, run: (fn: (ctx: Ctx) => Promise<void>, cmd: Command) => Promise<void>): void {
  const c = program
    .command('watch')
    .description('watch files and directories and back up their changes as they happen (runs until stopped)')
    .argument('<path...>', 'files or directories to watch and back up')
    .option('--debounce <duration>', 'back up once changes have settled for this long', '30s')
    .option('--max-delay <duration>', 'back up at most this long after the first change, even if changes go on', '5m')
    .option('--max-interval <duration>', 'scan everything at least this often, whatever the events said', '1h')
    .option('--gc-every <duration>', 'run gc this often (after a backup); default never')
    .option('--tag <tag>', 'tag the snapshots (repeatable)', collect, [])
    .option('--one-file-system', 'do not cross into other file systems')
    .option('--keep-last <n>', 'after each snapshot, forget all but the n newest of these paths on this host')
    .option('--keep-hourly <n>', 'retention after each snapshot, as forget --keep-hourly')
    .option('--keep-daily <n>', 'the same per day')
    .option('--keep-weekly <n>', 'the same per ISO week')
    .option('--keep-monthly <n>', 'the same per month')
    .option('--keep-yearly <n>', 'the same per year')
    .option('--keep-within <duration>', 'keep every snapshot newer than this before the newest')
    .option('--keep-within-hourly <duration>', 'keep one snapshot per hour within this duration')
    .option('--keep-within-daily <duration>', 'keep one snapshot per day within this duration')
    .option('--keep-within-weekly <duration>', 'keep one snapshot per week within this duration')
    .option('--keep-within-monthly <duration>', 'keep one snapshot per month within this duration')
    .option('--keep-within-yearly <duration>', 'keep one snapshot per year within this duration')
    .option('--keep-tag <tags>', 'keep snapshots with all these comma-separated tags (repeatable)', collect, []);
  hookOptions(excludeOptions(c)).action(async (paths: string[], o: WatchFlags, cmd: Command) => {
    useBackupHeap(process.execArgv);
    return run((ctx) => watch(ctx, paths, o), cmd);
  });
}

/** Why a backup runs. */
type Reason = 'start' | 'changes' | 'rescan' | 'lost-events' | 'retry';

/** More reported paths than this between two backups: the next one reads everything (memory stays bounded). */
const MAX_DIRTY = 50_000;

/** Errors that no retry mends: they end the watch. */
const FATAL = new Set(['SNAP_USAGE', 'SNAP_NO_REPO', 'SNAP_BAD_CONFIG', 'SNAP_FOREIGN_REPO']);

function positive(ms: number, flag: string): number {
  if (!(ms > 0)) throw new SnapError('SNAP_USAGE', `${flag} must be longer than 0`);
  return ms;
}

async function watch(ctx: Ctx, paths: string[], o: WatchFlags): Promise<void> {
  const debounceMs = positive(parseWaitMs(o.debounce), '--debounce');
  const maxDelayMs = Math.max(debounceMs, positive(parseWaitMs(o.maxDelay), '--max-delay'));
  const maxIntervalMs = positive(parseWaitMs(o.maxInterval), '--max-interval');
  const gcEveryMs = o.gcEvery !== undefined ? positive(parseWaitMs(o.gcEvery), '--gc-every') : undefined;
  const leaveOut = excludeSettings(o);
  const policy: RetentionPolicy = policyFromFlags(o);
  const prune = !isEmptyPolicy(policy);
  for (const [flag, v] of [['--on-success', o.onSuccess], ['--on-failure', o.onFailure]] as const) {
    if (v !== undefined && v.trim() === '') throw new SnapError('SNAP_USAGE', `${flag} needs a command to run`);
  }
  const { sources } = normalizeSources(paths, ctx.cwd);
  // A source that is not there at the start is a mistake (a typo); one that vanishes later is not.
  for (const s of sources) {
    try {
      fs.lstatSync(fsPath(s));
    } catch (e) {
      throw fromSystemError(e, `source ${displayPath(s)}`);
    }
  }
  // The repository's folder is never watched (a backup writes there); a remote one has none here.
  const { location } = ctx.repoPath();
  const ignored = location.kind === 'local' ? [path.resolve(location.path)] : [];
  const args = rawArgv(process.argv).slice(2);
  const signal = ctx.signal;

  // --- output: one line per backup (or one JSON object per event) ---
  const event = (json: Record<string, unknown>, text: string | undefined, toErr = false): void => {
    if (ctx.json) ctx.out(JSON.stringify({ time: isoLocal(new Date()), ...json }));
    else if (text !== undefined) {
      const line = `${localDateTime(new Date())} ${text}`;
      if (toErr) ctx.sink.info?.(line);
      else ctx.out(line);
    }
  };

  // --- the schedule ---
  let dirty = false;
  let firstChange = 0;
  let lastChange = 0;
  let lostEvents = false;
  /** The watcher may have missed events without saying so: the next backup (once changes settle) is a full scan. */
  let incomplete = false;
  let failures = 0;
  let retryAt: number | undefined;
  let lastScan = Date.now();
  let lastGc = Date.now();
  let wake: (() => void) | undefined;
  /** Watch anew after the next backup (events were lost, or a backup failed: a source folder may be new). */
  let rewatch = false;
  let saidUnwatched = '';
  const poke = (): void => wake?.();
  let watcher: Watcher | undefined;
  // --- what the next backup may trust (docs/automation.md, "What a backup reads") ---
  /** The previous backup's walk; undefined after a failure: the next backup reads everything. */
  let memo: WalkMemo | undefined;
  /** The paths reported since the previous backup started (events during a backup belong to the next). */
  let reported = new Set<string>();
  /** More paths were reported than `reported` keeps. */
  let tooMany = false;
  /** The watcher was (re)started since the previous backup started: events may have been missed meanwhile. */
  let restarted = true;
  const handlers = {
    change(paths: string[]): void {
      const now = Date.now();
      if (!dirty) firstChange = now;
      dirty = true;
      lastChange = now;
      for (const p of paths) {
        if (reported.size >= MAX_DIRTY) {
          tooMany = true;
          break;
        }
        reported.add(p);
      }
      poke();
    },
    lost(message: string): void {
      lostEvents = true;
      rewatch = true;
      memo = undefined;
      if (!signal.aborted) event({ event: 'lost-events', message }, `events may have been lost (${message}); scanning everything`, true);
      poke();
    },
    incomplete(message: string): void {
      if (!incomplete && !signal.aborted) event({ event: 'lost-events', message }, `events may have been lost (${message}); scanning everything once changes settle`, true);
      incomplete = true;
      rewatch = true;
      memo = undefined;
      handlers.change([]);
    },
  };
  /** Start (or restart) watching; what cannot be watched is said when it changes, not at every retry. */
  const watchAll = async (): Promise<void> => {
    rewatch = false;
    restarted = true;
    await watcher?.close();
    watcher = await startWatcher(sources, ignored, handlers);
    const now = watcher.unwatched.join('\0');
    if (now !== saidUnwatched) {
      for (const u of watcher.unwatched) {
        event({ event: 'unwatched', path: u }, `cannot watch ${u}; changes there are found by the rescan every ${o.maxInterval}`, true);
      }
    }
    saidUnwatched = now;
  };

  /** One backup, then retention and gc when due, one log record; throws when the watch must end. */
  const cycle = async (reason: Reason, since: { paths: Set<string>; tooMany: boolean; restarted: boolean }): Promise<void> => {
    const started = new Date();
    const c = ctx.changes;
    const reset = (): void => {
      c.snapshotsAdded.length = 0;
      c.snapshotsRemoved.length = 0;
      c.bytesAdded = 0;
      c.bytesFreed = 0;
      c.changed = false;
    };
    reset();
    ctx.sink.warnings.length = 0;
    let r: CreateResult | undefined;
    let failure: unknown;
    let code = 0;
    let removed = 0;
    // Only a backup for changes trusts the previous walk; a full scan runs at start, after lost
    // events, a watcher restart or a failure, at --max-interval, and where events are not all
    // there is (fs.watch, sources not watched). create itself reads everything when the previous
    // snapshot of these paths is not the walk's (another process backed them up meanwhile).
    const full = reason !== 'changes' || !memo || since.tooMany || since.restarted || watcher!.kind !== 'parcel' || watcher!.unwatched.length > 0;
    const trust = full ? undefined : { walk: memo!, dirty: since.paths };
    memo = undefined;
    const startedMs = Date.now();
    if (full) lastScan = startedMs;
    try {
      r = await withRepo(
        ctx,
        (repo) =>
          createSnapshot(repo, {
            paths: sources,
            cwd: ctx.cwd,
            tags: o.tag,
            ...leaveOut,
            host: ctx.host,
            program: `snap ${VERSION}`,
            sink: ctx.sink,
            signal,
            skipUnchanged: true,
            remember: true,
            trust,
            beforeSave: hold,
          }),
        'shared',
        { create: true },
      );
      ctx.sink.done();
      code = r.warnings > 0 ? 3 : 0;
      memo = r.walk;
      if (!r.trusted) lastScan = startedMs;
      const s = r.snapshot;
      const sum = s.summary;
      const scan = { scan: r.trusted ? 'trusted' : 'full', lstat_calls: r.stats.lstat, readdir_calls: r.stats.readdir, trusted_dirs: r.stats.trustedDirs };
      if (r.unchanged) {
        event({ event: 'unchanged', reason, parent: s.id, ...scan }, `${reason}: no changes since snapshot ${shortId(s.id)}`, true);
      } else {
        event(
          { event: 'snapshot', reason, id: s.id, short_id: shortId(s.id), files_new: sum.filesNew, files_changed: sum.filesChanged, files_unchanged: sum.filesUnchanged, files: sum.totalFiles, bytes: sum.totalBytes, bytes_read: sum.bytesRead, bytes_added: sum.dataAdded, duration_ms: sum.durationMs, warnings: r.warnings, ...scan },
          `snapshot ${shortId(s.id)} saved (${reason}): ${sum.filesNew} new, ${sum.filesChanged} changed, ${sum.filesUnchanged} unchanged files; added ${bytes(sum.dataAdded)} in ${duration(sum.durationMs)}${r.warnings > 0 ? `; ${r.warnings} warning(s)` : ''}`,
        );
        if (prune) await upkeep('retention (forget)', async () => void (removed = await retention(r!.snapshot.paths)));
        if (gcEveryMs !== undefined && Date.now() - lastGc >= gcEveryMs) await upkeep('gc', collectGarbage);
      }
      failures = 0;
      retryAt = undefined;
    } catch (e) {
      ctx.sink.done();
      failure = e;
      code = isSnapError(e, 'SNAP_INTERRUPTED') || signal.aborted ? EXIT_INTERRUPTED : 1;
    }
    // The backup filled the repository's disk: this watch's own retention and gc free what they
    // can at once (not at --gc-every), before the retry, with the reserve a full disk leaves them
    // (repo/reserve.ts). Without either, the retries fail until someone frees space.
    if (code === 1 && isSnapError(failure, 'SNAP_NO_SPACE') && !signal.aborted) {
      event({ event: 'full', message: (failure as SnapError).message }, `the repository's disk is full: ${prune || gcEveryMs !== undefined ? 'applying the retention policy and running gc before trying again' : "the backups fail until space is freed (give the watch --keep-* and --gc-every, or run 'snap forget' and 'snap gc')"}`, false);
      if (prune) await upkeep('retention (forget)', async () => void (removed += await retention(sources)), 'before the next try');
      if (gcEveryMs !== undefined) await upkeep('gc', collectGarbage, 'before the next try');
    }
    // The operation log: every backup that changed the repository, and every failed one.
    if (c.changed || (code !== 0 && code !== 3) || removed > 0) await recordOperation(ctx, args, started, code, failure, { always: true });
    // Recorded: the record main.ts writes when the watch ends must not count it again.
    reset();
    if (code === EXIT_INTERRUPTED) return;
    const hookCmd = failure === undefined ? (r?.unchanged ? undefined : o.onSuccess) : o.onFailure;
    if (hookCmd !== undefined) {
      await runHook(ctx, failure === undefined ? '--on-success' : '--on-failure', hookCmd, hookEnv(ctx, code, failure === undefined ? { snapshot: r!.snapshot, warnings: r!.warnings } : undefined, failure));
    }
    if (failure !== undefined) {
      const se = failure instanceof SnapError ? failure : new SnapError('SNAP_INTERNAL', failure instanceof Error ? failure.message : String(failure));
      if (FATAL.has(se.code)) throw se;
      failures++;
      rewatch = true; // a source folder that went away and comes back is a new folder to watch
      const pause = Math.min(maxIntervalMs, Math.max(debounceMs, 1000) * 2 ** Math.min(failures - 1, 16));
      retryAt = Date.now() + pause;
      event({ event: 'error', reason, code: se.code, message: se.message, retry_in_ms: pause }, `${reason}: backup failed: ${se.message} [${se.code}]; trying again in ${duration(pause)}`, false);
    }
  };

  /** The retention policy, applied to this watch's own snapshots (this host, these paths). */
  const retention = async (snapPaths: string[]): Promise<number> =>
    withRepo(
      ctx,
      async (repo) => {
        repo.assertMayDelete('watch --keep-* (forget deletes snapshot records)');
        const mine = (await repo.listSnapshots()).filter((s) => s.hostname === ctx.host.hostname && s.paths.join('\0') === snapPaths.join('\0'));
        const groups = planForget(mine, { policy, groupBy: [], now: repo.clock.now() });
        const ids = groups.flatMap((g) => g.remove.map((d) => d.snapshot.id));
        const n = ids.length > 0 ? await removeSnapshots(repo, ids) : 0;
        if (n > 0) event({ event: 'forget', removed: ids }, `forget: removed ${n} snapshot(s) (${ids.map(shortId).join(' ')})`);
        return n;
      },
      'exclusive',
      // As `snap forget`: on a full disk, the reserve makes room for the lock and the log.
      { freesSpace: true },
    );

  const collectGarbage = async (): Promise<void> => {
    await withRepo(
      ctx,
      async (repo, lock) => {
        const res = (await runGc({ ...ctx, json: true }, repo, lock, { maxUnused: '5%' })) as { result?: { bytes_freed?: number; packs_deleted?: number } };
        const freed = res.result?.bytes_freed ?? 0;
        event({ event: 'gc', ...res.result }, `gc: freed ${bytes(freed)} (${res.result?.packs_deleted ?? 0} packs deleted)`);
      },
      'exclusive',
      { freesSpace: true },
    );
    lastGc = Date.now();
  };

  /**
   * Retention or gc after a backup: failing (the repository busy for longer than --lock-wait, a
   * disk too full even for them) is a warning; the snapshot stands, and both run again later.
   */
  const upkeep = async (what: string, fn: () => Promise<void>, again = 'after the next snapshot'): Promise<void> => {
    try {
      await fn();
    } catch (e) {
      if (signal.aborted) throw e;
      const se = e instanceof SnapError ? e : new SnapError('SNAP_INTERNAL', e instanceof Error ? e.message : String(e));
      ctx.sink.warn?.({ code: se.code, message: `${what} did not run: ${se.message}; it runs again ${again}` });
    }
  };

  /** Sleep until `ms` passed, the watcher pokes, or the watch is stopped. */
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        wake = undefined;
        resolve();
      };
      const t = setTimeout(done, Math.max(0, ms));
      wake = done;
      signal.addEventListener('abort', done, { once: true });
    });

  const hold = testHold(signal);
  try {
    await watchAll();
    event(
      { event: 'start', paths: sources, watcher: watcher!.kind, debounce_ms: debounceMs, max_delay_ms: maxDelayMs, max_interval_ms: maxIntervalMs },
      `watching ${sources.map(displayPath).join(', ')} (${watcher!.kind === 'parcel' ? '@parcel/watcher' : 'fs.watch'}); backing up ${o.debounce} after changes settle, scanning everything every ${o.maxInterval}`,
      true,
    );
    let reason: Reason = 'start';
    while (!signal.aborted) {
      // After lost events or a failure, or with paths not watched (a source folder that was gone):
      // watch anew before the backup, so the full scan it makes covers the restart.
      // A full scan also folds the folders watched on their own (new ones) into one watch again.
      if (rewatch || watcher!.unwatched.length > 0 || (reason !== 'changes' && watcher!.extra > 0)) await watchAll();
      // New folders are watched (with their subfolders) before a backup reads them.
      await watcher!.settled();
      dirty = false;
      lostEvents = false;
      incomplete = false;
      // Taken in the same tick as the backup starts: a later event is the next backup's.
      const since = { paths: reported, tooMany, restarted };
      reported = new Set();
      tooMany = false;
      restarted = false;
      await cycle(reason, since);
      if (signal.aborted) break;
      // Wait for the next reason to back up.
      for (;;) {
        if (signal.aborted) break;
        const now = Date.now();
        const scanAt = lastScan + maxIntervalMs;
        const changeAt = dirty ? Math.min(lastChange + debounceMs, firstChange + maxDelayMs) : Infinity;
        // After a failure, nothing runs before the retry time (a locked repository is not hammered).
        const floor = retryAt ?? 0;
        if (lostEvents && now >= floor) {
          reason = 'lost-events';
          break;
        }
        const due = Math.max(floor, Math.min(scanAt, changeAt, retryAt ?? Infinity));
        if (now >= due) {
          reason = retryAt !== undefined && now >= retryAt && !dirty ? 'retry' : dirty && changeAt <= now ? (incomplete ? 'lost-events' : 'changes') : 'rescan';
          break;
        }
        await sleep(due - now);
      }
    }
  } finally {
    await watcher?.close();
  }
  // Stopped by SIGINT or SIGTERM: the normal end of a watch (exit 0).
  const why = signal.reason instanceof Error ? signal.reason.message : 'stopped';
  if (ctx.json) process.stdout.write(`${JSON.stringify({ time: isoLocal(new Date()), event: 'stop', reason: why })}\n`);
  else if (!ctx.opts.quiet) process.stderr.write(`snap: watch ${why}; stopped\n`);
  ctx.exitCode = 0;
}
