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
}

export interface Watcher {
  readonly kind: 'parcel' | 'fs.watch';
  /** Sources that could not be watched, with why (missing, a name that is not UTF-8, the watch limit): rescans cover them. */
  readonly unwatched: string[];
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
 * Watch `sources` (absolute paths). A source that is a directory is watched recursively; a file,
 * through its parent directory (fs.watch, not recursive), keeping only its own events. Events under `ignore` (the
 * repository, when it lies inside a source: a backup writes there) are dropped.
 */
export async function startWatcher(sources: string[], ignore: string[], handlers: WatchHandlers): Promise<Watcher> {
  const mod = loadParcel();
  const hook = testHook(handlers);
  const h = hook.handlers;
  const unwatched: string[] = [];
  const closers: (() => Promise<void>)[] = [];
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
        const sub = await mod.subscribe(
          dir,
          (err, events) => {
            if (err) {
              h.lost(err.message);
              return;
            }
            const mine = events.filter((e) => keep(e.path));
            if (mine.length > 0) h.change(mine.map((e) => e.path));
          },
          { ignore: ign },
        );
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
    async close() {
      hook.close();
      for (const c of closers.splice(0)) await c().catch(() => undefined);
    },
  };
}

/**
 * Fault injection for tests, only when SNAP_WATCH_TEST_CONTROL names a file: on SIGUSR2 the
 * watcher reads it and does what it says: `pause` drops every event from then on without a word
 * (events lost as the kernel may lose them), `resume` delivers them again, `overflow` reports lost
 * events as a queue overflow does (the real watcher's error path). The signal handler stays for
 * the life of the process (no gap while the watcher restarts).
 */
const hookState: { installed: boolean; paused: boolean; lost?: (m: string) => void } = { installed: false, paused: false };

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
    });
  }
  const lost = (m: string): void => h.lost(m);
  hookState.lost = lost;
  return {
    handlers: { change: (paths) => (hookState.paused ? undefined : h.change(paths)), lost },
    close: () => {
      if (hookState.lost === lost) hookState.lost = undefined;
    },
  };
}
