// The file watcher of `snap watch` (docs/automation.md, "Watch"). Events are hints: they say
// which paths changed; a backup for changes reads those folders (a reported folder completely)
// and trusts the rest from the previous walk, and a full scan (at start, after lost events, every
// --max-interval) finds whatever the events missed, so a lost event delays a change until the
// next full scan and never loses it.
// @parcel/watcher (inotify on Linux, from a prebuilt binary: no compiler needed) is used when it
// loads; otherwise node's fs.watch({ recursive: true }) (docs/design.md, "snap watch").
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { displayPath, fsPath, hasEscapedBytes } from '../core/bytes.js';

export interface WatchHandlers {
  /** Something changed at these paths (absolute; a folder's events may stand for more inside it). */
  change(paths: string[]): void;
  /** The watcher lost events (a queue overflow) or failed: a full scan is due. */
  lost(message: string): void;
  /**
   * The watcher may have missed events without saying so (a burst as large as the kernel's queue;
   * more new folders than it follows): once changes settle, watch anew and scan everything.
   */
  incomplete(message: string): void;
}

export interface Watcher {
  readonly kind: 'parcel' | 'fs.watch';
  /** Sources that could not be watched, with why (missing, a name that is not UTF-8, the watch limit): rescans cover them. */
  readonly unwatched: string[];
  /** Folders watched on their own besides the sources (see `follow`): a restart folds them in. */
  readonly extra: number;
  /** Resolves when the folders being added to the watch are watched (a backup waits for it). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

interface ParcelModule {
  subscribe(dir: string, fn: (err: Error | null, events: { path: string; type: string }[]) => unknown, opts?: { ignore?: string[] }): Promise<{ unsubscribe(): Promise<void> }>;
}

let parcel: ParcelModule | null | undefined;

/** @parcel/watcher, or null when it cannot be loaded here (no prebuilt binary for this system). */
function loadParcel(): ParcelModule | null {
  if (parcel !== undefined) return parcel;
  if (process.env.SNAP_WATCHER === 'fs.watch') return (parcel = null);
  try {
    parcel = createRequire(import.meta.url)('@parcel/watcher') as ParcelModule;
  } catch {
    parcel = null;
  }
  return parcel;
}

/** The file watcher `snap watch` uses here: @parcel/watcher when it loads, else fs.watch. */
export function watcherKind(): '@parcel/watcher' | 'fs.watch' {
  return loadParcel() ? '@parcel/watcher' : 'fs.watch';
}

/** Whether `p` is `dir` or inside it. */
function under(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/**
 * The kernel's inotify queue: how many events one watcher instance holds before it drops the rest
 * (Linux; undefined elsewhere). Read when a watch starts: an instance keeps the limit it began with.
 */
export function inotifyQueueLimit(): number | undefined {
  try {
    const n = Number(fs.readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Events counted over this long (two halves) against the kernel's queue (see `startWatcher`). */
const BURST_WINDOW_MS = 2000;
/** More folders than this watched on their own besides the sources: restart instead. */
const MAX_EXTRA = 100;

/**
 * Watch `sources` (absolute paths). A source that is a directory is watched recursively; a file,
 * through its parent directory (fs.watch, not recursive), keeping only its own events. Events under `ignore` (the
 * repository, when it lies inside a source: a backup writes there) are dropped.
 *
 * Two gaps of @parcel/watcher 2.x on Linux (read in its src/linux/InotifyBackend.cc, seen in
 * test/watch-edge.test.ts) are closed here:
 * - It drops the kernel's IN_Q_OVERFLOW without a word: a queue overflow never reaches its
 *   callback. An overflow means the kernel queued max_queued_events events before they were
 *   read, and each is delivered afterwards as at most one path (a new file is two to four events:
 *   create, modify, attributes). So when the events of any two seconds reach a quarter of the
 *   queue, events may have been lost: `incomplete` (a restart and a full scan once changes
 *   settle). A large burst (an unpacked archive) costs a full scan; a lost change cannot hide.
 * - A folder that appears (created, or moved in, from another source or within one) is watched
 *   by itself only: its subfolders that were there before it was watched (a folder moved in, the
 *   inner folders of a fast `mkdir -p`) are not, and the watches of a folder moved within the tree
 *   keep reporting its old paths. A folder it could not list when it started (unreadable) is not
 *   watched at all, and a chmod that makes it readable does not change that. So each folder that
 *   appears with subfolders, and each folder whose attributes change (a chmod, a new time), is
 *   watched as a tree of its own as well (`extra`), until the next restart folds it in.
 */
export async function startWatcher(sources: string[], ignore: string[], handlers: WatchHandlers): Promise<Watcher> {
  const mod = loadParcel();
  const hook = testHook(handlers);
  const h = hook.handlers;
  const unwatched: string[] = [];
  const closers: (() => Promise<void>)[] = [];
  let closed = false;
  // The burst check: events of the current and the previous half window.
  const queue = mod ? inotifyQueueLimit() : undefined;
  const limit = queue === undefined ? Infinity : Math.max(1, Math.floor(queue / 4));
  let half = 0;
  let now = 0;
  let before = 0;
  let saidBurst = false;
  const count = (n: number): void => {
    const t = Math.floor(Date.now() / (BURST_WINDOW_MS / 2));
    if (t !== half) {
      before = t === half + 1 ? now : 0;
      now = 0;
      half = t;
      saidBurst = false;
    }
    now += n;
    if (!saidBurst && now + before >= limit) {
      saidBurst = true;
      h.incomplete(`${now + before} events within ${BURST_WINDOW_MS / 1000} s, a quarter of the kernel's inotify queue (max_queued_events ${queue}) or more; @parcel/watcher does not report an overflow`);
    }
  };
  // Folders watched on their own (see above), by path; a folder that appears again is watched anew.
  const extra = new Map<string, Promise<(() => Promise<void>) | undefined>>();
  let saidExtra = false;
  const follow = (dir: string, always: boolean, ign: string[], cb: (err: Error | null, events: { path: string; type: string }[]) => void): void => {
    if (closed || !mod) return;
    let subdirs = false;
    try {
      subdirs = fs.readdirSync(dir, { withFileTypes: true }).some((d) => d.isDirectory());
    } catch {
      return; // gone again, a file, or still unreadable: nothing (more) to watch
    }
    if (!subdirs && !always) return;
    if (!extra.has(dir) && extra.size >= MAX_EXTRA) {
      if (!saidExtra) h.incomplete(`more than ${MAX_EXTRA} folders to watch on their own (new ones with subfolders, or with new attributes)`);
      saidExtra = true;
      return;
    }
    const prev = extra.get(dir);
    extra.set(
      dir,
      (async () => {
        const stop = await prev;
        await stop?.().catch(() => undefined);
        if (closed) return undefined;
        try {
          // A callback of its own: @parcel/watcher shares one watcher per folder and options, and
          // unsubscribing a callback it already had would end that other subscription.
          const sub = await mod.subscribe(dir, (err, events) => cb(err, events), { ignore: ign });
          return () => sub.unsubscribe();
        } catch (e) {
          // Its subfolders cannot all be watched (one is unreadable, the watch limit): scan instead.
          if (!closed && fs.existsSync(dir)) h.incomplete(`cannot watch the new folder ${displayPath(dir)} (${e instanceof Error ? e.message : String(e)})`);
          return undefined;
        }
      })(),
    );
  };
  for (const src of sources) {
    let dir = src;
    let only: string | undefined;
    try {
      if (!fs.statSync(fsPath(src)).isDirectory()) {
        dir = path.dirname(src);
        only = src;
      }
    } catch (e) {
      unwatched.push(`${displayPath(src)} (${e instanceof Error ? e.message : String(e)})`);
      continue;
    }
    // Neither watcher takes a path that is not UTF-8: such a source is covered by rescans only.
    if (hasEscapedBytes(dir)) {
      unwatched.push(`${displayPath(src)} (its name is not UTF-8)`);
      continue;
    }
    const ign = ignore.filter((i) => under(i, dir));
    const keep = (p: string): boolean => (only === undefined || p === only) && !ign.some((i) => under(p, i));
    try {
      if (only !== undefined) {
        // A file: its folder alone, not recursively (a file in the home folder must not watch all of it).
        const base = path.basename(only);
        const w = fs.watch(dir, { persistent: true }, (_type, name) => {
          if (name === null || name.toString() === base) h.change([only]);
        });
        w.on('error', (e) => h.lost(e.message));
        closers.push(async () => w.close());
      } else if (mod) {
        const cb = (err: Error | null, events: { path: string; type: string }[]): void => {
          if (err) {
            h.lost(err.message);
            return;
          }
          count(events.length);
          const mine = events.filter((e) => keep(e.path));
          if (mine.length === 0) return;
          // Not the source itself: its watch is this one.
          for (const e of mine) if (e.type !== 'delete' && e.path !== dir && !hasEscapedBytes(e.path)) follow(e.path, e.type === 'update', ign.filter((i) => under(i, e.path)), cb);
          h.change(mine.map((e) => e.path));
        };
        const sub = await mod.subscribe(dir, cb, { ignore: ign });
        closers.push(() => sub.unsubscribe());
      } else {
        const w = fs.watch(dir, { recursive: true, persistent: true }, (_type, name) => {
          const p = name ? path.join(dir, name.toString()) : dir;
          if (keep(p)) h.change([p]);
        });
        w.on('error', (e) => h.lost(e.message));
        closers.push(async () => w.close());
      }
    } catch (e) {
      // The inotify watch limit, a folder that went away: said once by the caller, covered by rescans.
      unwatched.push(`${displayPath(src)} (${e instanceof Error ? e.message : String(e)})`);
    }
  }
  return {
    kind: mod ? 'parcel' : 'fs.watch',
    unwatched,
    get extra() {
      return extra.size;
    },
    async settled() {
      await Promise.all(extra.values());
    },
    async close() {
      closed = true;
      hook.close();
      for (const c of closers.splice(0)) await c().catch(() => undefined);
      for (const p of [...extra.values()]) await (await p)?.().catch(() => undefined);
      extra.clear();
    },
  };
}

/**
 * Fault injection for tests, only when SNAP_WATCH_TEST_CONTROL names a file: on SIGUSR2 the
 * watcher reads it and does what it says: `pause` drops every event from then on without a word
 * (events lost as the kernel may lose them), `resume` delivers them again, `overflow` reports lost
 * events as a queue overflow does (the real watcher's error path), `hold` makes the next backup
 * wait after its walk, before it saves (see `testHold`), until `release`. The signal handler stays
 * for the life of the process (no gap while the watcher restarts).
 */
const hookState: { installed: boolean; paused: boolean; held: boolean; lost?: (m: string) => void } = { installed: false, paused: false, held: false };

function testHook(h: WatchHandlers): { handlers: WatchHandlers; close(): void } {
  const control = process.env.SNAP_WATCH_TEST_CONTROL;
  if (!control) return { handlers: h, close: () => undefined };
  if (!hookState.installed) {
    hookState.installed = true;
    process.on('SIGUSR2', () => {
      let what = '';
      try {
        what = fs.readFileSync(control, 'utf8').trim();
      } catch {
        return;
      }
      if (what === 'pause') hookState.paused = true;
      else if (what === 'resume') hookState.paused = false;
      else if (what === 'overflow') hookState.lost?.('test hook: events overflowed');
      else if (what === 'hold') hookState.held = true;
      else if (what === 'release') hookState.held = false;
    });
  }
  const lost = (m: string): void => h.lost(m);
  hookState.lost = lost;
  return {
    handlers: { change: (paths) => (hookState.paused ? undefined : h.change(paths)), lost, incomplete: (m) => h.incomplete(m) },
    close: () => {
      if (hookState.lost === lost) hookState.lost = undefined;
    },
  };
}

/**
 * The test hook's pause point in a backup (SNAP_WATCH_TEST_CONTROL only; undefined otherwise):
 * after `hold`, the next backup that gets there creates CONTROL.held and waits until `release`
 * (or until it is stopped), so a test can change files after the walk and before the snapshot.
 */
export function testHold(signal: AbortSignal): (() => Promise<void>) | undefined {
  const control = process.env.SNAP_WATCH_TEST_CONTROL;
  if (!control) return undefined;
  return async () => {
    if (!hookState.held) return;
    fs.writeFileSync(`${control}.held`, '');
    while (hookState.held && !signal.aborted) await new Promise((res) => setTimeout(res, 50));
    fs.rmSync(`${control}.held`, { force: true });
  };
}
